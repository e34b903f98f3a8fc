//! A throwaway PostgreSQL cluster on its own port, for tests that break the
//! database. The machine's shared server is never stopped or reconfigured.
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

pub struct ThrowawayCluster {
    dir: PathBuf,
    bindir: PathBuf,
    pub port: u16,
}

fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return dir.into();
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("initdb").exists());
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop()
        .expect("PostgreSQL server binaries (initdb) are needed: scripts/test installs them")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// PostgreSQL refuses to run as root: run its tools as `postgres` then.
fn pg_command(program: PathBuf) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ThrowawayCluster {
    /// initdb + start on a free port, trust auth for `postgres`.
    pub fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("taskgate-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(&dir);
                    c
                },
                "chown cluster dir",
            );
        }
        let bindir = bindir();
        let mut initdb = pg_command(bindir.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]);
        run(initdb, "initdb");
        let cluster = ThrowawayCluster {
            dir,
            bindir,
            port: free_port(),
        };
        cluster.resume();
        cluster
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server the hard way, as a crash or a lost host would.
    pub fn halt(&self) {
        let mut cmd = pg_command(self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        run(cmd, "pg_ctl stop");
    }

    /// Starts (again) on the same port and data.
    pub fn resume(&self) {
        let mut cmd = pg_command(self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            ))
            .arg("start");
        run(cmd, "pg_ctl start");
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let mut cmd = pg_command(self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = cmd.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
