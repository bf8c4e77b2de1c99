//! End-to-end tests of `zenith serve` with the process runtime and the bundled demo app:
//! a real daemon in a temporary data directory, driven by the real CLI.

mod auth;
mod canary;
mod deploy;
mod docker;
mod durability;
mod force;
mod state;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn zenith_bin() -> PathBuf {
    PathBuf::from(assert_cmd::cargo::cargo_bin!("zenith"))
}

/// A daemon running in a temporary data directory; killed when dropped.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        let d = Daemon {
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        d.spawn()
    }

    fn spawn(mut self) -> Daemon {
        let _ = std::fs::remove_file(self.data().join("daemon.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(zenith_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--router-host",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(self.data())
            .env("RUST_LOG", "info")
            .env("ZENITH_INSECURE_TEST_KDF", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for(Duration::from_secs(30), "the daemon to start", || {
            self.data().join("daemon.json").exists()
        });
        self
    }

    /// kill -9, then a new daemon on the same data directory.
    pub fn crash_and_restart(mut self) -> Daemon {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        self.spawn()
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_raw(c.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        c.wait().unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(zenith_bin());
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ZENITH_DATA_DIR", self.data());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "zenith {args:?} failed ({:?}):\n{}\n{}\n--- daemon log ---\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `zenith app status APP` as JSON.
    pub fn status(&self, app: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["app", "status", app, "--output-format", "json"])).unwrap()
    }

    /// Writes a spec for the demo app and returns its path.
    pub fn spec(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Graceful: the daemon stops its replicas, so no test leaves processes behind.
            let pid = rustix::process::Pid::from_raw(c.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One GET over a fresh connection; the status code and body, or the error in words.
pub fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {buf:?}"))?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((code, body))
}

/// A demo-app spec. `extra` goes into the service table.
pub fn demo_spec(app: &str, port: u16, version: &str, replicas: u32, extra: &str) -> String {
    let bin = zenith_bin();
    format!(
        r#"[app]
name = "{app}"

[services.web]
command = ["{bin}", "demo-app"]
replicas = {replicas}
port = {port}
env = {{ DEMO_VERSION = "{version}" }}
stop_grace = "5s"
drain_timeout = "5s"
{extra}

[services.web.health]
http = "/health"
interval = "200ms"
timeout = "1s"
retries = 2

[services.web.update]
max_surge = 1
max_unavailable = 0
order = "start-first"
progress_deadline = "8s"
"#,
        bin = bin.display()
    )
}

/// A raw GET of the daemon's API with the admin token; the whole answer, head included.
pub fn api_get(d: &Daemon, path: &str) -> String {
    use std::io::{Read, Write};
    let token = std::fs::read_to_string(d.data().join("admin.token")).unwrap();
    let discovery: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.data().join("daemon.json")).unwrap()).unwrap();
    let api = discovery["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let mut s = std::net::TcpStream::connect(&api).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token.trim()
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// One POST over a fresh connection; the status and body.
pub fn post(port: u16, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
}
