//! A real SMTP server process for the mail tests: `tests/smtp/catcher.py`
//! (aiosmtpd, in a virtualenv under target/ made on first use from the pinned
//! requirements), writing each message it accepts to a folder of its own.
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::helpers::project_dir;

/// The virtualenv's python, made once per test run (pip from PyPI).
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = project_dir().join("target/smtp-venv");
        let requirements = project_dir().join("tests/smtp/requirements.txt");
        let marker = venv.join("requirements.txt");
        let wanted = std::fs::read(&requirements).expect("tests/smtp/requirements.txt");
        if std::fs::read(&marker).ok().as_deref() != Some(wanted.as_slice()) {
            let ok = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
            assert!(
                ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)),
                "python3 -m venv failed (scripts/test installs python3-venv)"
            );
            assert!(
                ok(Command::new(venv.join("bin/pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                    .arg(&requirements)),
                "pip install -r tests/smtp/requirements.txt failed"
            );
            std::fs::write(&marker, &wanted).expect("venv marker");
        }
        venv.join("bin/python")
    })
}

pub struct SmtpServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("taskgate-smtp-{}", uuid::Uuid::new_v4()));
        let mut server = SmtpServer {
            port,
            dir,
            child: None,
        };
        server.start_again();
        server
    }

    /// `mail.smtp_url` for this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and folder.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(python())
            .arg(project_dir().join("tests/smtp/catcher.py"))
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP catcher starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the catcher says it is ready");
        assert_eq!(line.trim(), "ready", "SMTP catcher did not start");
        self.child = Some(child);
    }

    /// Stops it: connections to its port are refused until `start_again`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, oldest first, as its raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("a message file"))
            .collect()
    }

    /// Waits until at least `n` messages arrived (or panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                started.elapsed() < within,
                "{} message(s) after {within:?}, expected {n}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The reset token in a message's link, whatever transfer encoding it got.
pub fn reset_token(message: &str) -> String {
    // Quoted-printable: soft line breaks and `=` written as `=3D`.
    let text = message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = text.find("token=").expect("a reset link in the mail") + "token=".len();
    text[at..at + 64].to_owned()
}

/// The address a message went to.
pub fn recipient(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .expect("a To header")
        .trim()
        .to_owned()
}
