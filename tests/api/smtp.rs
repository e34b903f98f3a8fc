//! A real SMTP server process for the mail tests: `tests/smtp/catcher.py`
//! (aiosmtpd, in a virtualenv under target/ made on first use from the pinned
//! requirements), writing each message it accepts to a folder of its own;
//! plain, or speaking TLS with a certificate from a throwaway CA made here.
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

/// How the catcher speaks to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP, no STARTTLS offered.
    None,
    /// STARTTLS offered, and required before mail is taken.
    Starttls,
    /// TLS from the first byte (smtps).
    Wrapper,
}

pub struct SmtpServer {
    pub port: u16,
    tls: Tls,
    dir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(Tls::None)
    }

    /// A server speaking `tls`, with a certificate for 127.0.0.1 signed by a
    /// CA of its own (`ca_file`), which no public root vouches for.
    pub fn start_with(tls: Tls) -> SmtpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("taskgate-smtp-{}", uuid::Uuid::new_v4()));
        let mut server = SmtpServer {
            port,
            tls,
            dir,
            child: None,
        };
        if tls != Tls::None {
            server.make_certificates();
        }
        server.start_again();
        server
    }

    /// `mail.smtp_url` for this server, asking for the TLS it speaks.
    pub fn url(&self) -> String {
        match self.tls {
            Tls::None => format!("smtp://127.0.0.1:{}", self.port),
            Tls::Starttls => format!("smtp://127.0.0.1:{}?tls=required", self.port),
            Tls::Wrapper => format!("smtps://127.0.0.1:{}", self.port),
        }
    }

    /// The PEM file of the CA that signed this server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.certificates().join("ca.pem")
    }

    fn certificates(&self) -> PathBuf {
        self.dir.with_extension("tls")
    }

    fn make_certificates(&self) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("a CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("server parameters")
            .signed_by(&key, &Issuer::new(ca, ca_key))
            .expect("a server certificate");
        let folder = self.certificates();
        std::fs::create_dir_all(&folder).expect("a certificate folder");
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("server.pem", cert.pem()),
            ("server.key", key.serialize_pem()),
        ] {
            std::fs::write(folder.join(name), pem).expect("a certificate file");
        }
    }

    /// Starts (again) on the same port and folder.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new(python());
        command
            .arg(project_dir().join("tests/smtp/catcher.py"))
            .arg(self.port.to_string())
            .arg(&self.dir);
        if self.tls != Tls::None {
            let folder = self.certificates();
            let mode = if self.tls == Tls::Starttls {
                "starttls"
            } else {
                "wrapper"
            };
            command
                .arg(mode)
                .arg(folder.join("server.pem"))
                .arg(folder.join("server.key"));
        }
        let mut child = command
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
        let _ = std::fs::remove_dir_all(self.certificates());
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

/// The TLS version a message came over ("TLSv1.3"), or "none": the catcher's
/// first header line.
pub fn tls_of(message: &str) -> &str {
    message
        .lines()
        .find_map(|l| l.strip_prefix("X-Catcher-TLS: "))
        .expect("the catcher's TLS header")
        .trim()
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
