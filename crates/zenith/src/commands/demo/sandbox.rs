//! Where the demo runs and how it always cleans up: a fresh temporary directory, a daemon
//! started as a child process in it, and Ctrl-C turned into an orderly stop. A daemon left
//! running after the demo is a bug, so the child is stopped on every path out, a panic
//! included ([`Daemon`]'s `Drop`), and the daemon in turn stops the replicas it started.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// How long the daemon may take to answer its first health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon may take to stop its replicas after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The error of a run stopped by Ctrl-C (or SIGTERM, SIGHUP).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Set once a stop signal arrives; every wait of the demo looks at it.
#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Catches SIGINT, SIGTERM and SIGHUP for the rest of the process's life, so that a
    /// signal ends the demo through its cleanup instead of killing it with a daemon still
    /// running. Returns once the handlers are in place.
    pub fn install() -> anyhow::Result<Interrupt> {
        use tokio::signal::unix::{SignalKind, signal};
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the signal watcher")?;
        let (ready, installed) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("demo-signals".into())
            .spawn(move || {
                rt.block_on(async move {
                    let handlers = (|| {
                        Ok::<_, std::io::Error>((
                            signal(SignalKind::interrupt())?,
                            signal(SignalKind::terminate())?,
                            signal(SignalKind::hangup())?,
                        ))
                    })();
                    let (mut int, mut term, mut hup) = match handlers {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                            _ = hup.recv() => {}
                        }
                        if set.swap(true, Ordering::SeqCst) {
                            eprintln!("still stopping: the daemon is stopping its replicas");
                        }
                    }
                });
            })
            .context("cannot start the signal watcher")?;
        installed
            .recv()
            .context("the signal watcher ended")?
            .context("cannot catch Ctrl-C")?;
        Ok(Interrupt(flag))
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        Ok(())
    }

    /// Sleeps for `d`, waking early (with [`Interrupted`]) on a signal.
    pub fn sleep(&self, d: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + d;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

/// A fresh private directory under `$TMPDIR`: the daemon's data, its log and the specs.
pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn create() -> anyhow::Result<Sandbox> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let mut random = [0u8; 4];
            getrandom::fill(&mut random).map_err(|e| anyhow!("no randomness for a directory name: {e}"))?;
            let dir = base.join(format!("zenith-demo-{:08x}", u32::from_le_bytes(random)));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Sandbox { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}; set TMPDIR elsewhere", dir.display()));
                }
            }
        }
        bail!("cannot find a free directory name in {}", base.display())
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    pub fn remove(&self) -> anyhow::Result<()> {
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("cannot remove {}", self.dir.display()))
    }
}

/// `zenith serve` as a child process; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub pid: u32,
    /// The API's base URL, from the discovery file.
    pub address: String,
}

impl Daemon {
    /// Starts the daemon on a free loopback port (the kernel picks it, the discovery file
    /// tells it) and waits for its health endpoint.
    pub fn start(sandbox: &Sandbox, interrupt: &Interrupt) -> anyhow::Result<Daemon> {
        let exe = std::env::current_exe().context("cannot find the zenith binary to run the daemon")?;
        let log = std::fs::File::create(sandbox.log())
            .with_context(|| format!("cannot create {}", sandbox.log().display()))?;
        let child = Command::new(&exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--router-host",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(sandbox.data())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the daemon's log file")?)
            .stderr(log)
            // Its own process group: Ctrl-C reaches only the demo, which then stops the
            // traffic and the daemon in order instead of both racing to exit.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let mut daemon = Daemon {
            pid: child.id(),
            child: Some(child),
            address: String::new(),
        };
        daemon.address = daemon.wait_ready(&sandbox.data(), &sandbox.log(), interrupt)?;
        Ok(daemon)
    }

    fn wait_ready(&mut self, data: &Path, log: &Path, interrupt: &Interrupt) -> anyhow::Result<String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let start = Instant::now();
        loop {
            interrupt.check()?;
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("cannot watch the daemon")?
            {
                bail!(
                    "the daemon exited ({status}) before it was ready; its log is {}",
                    log.display()
                );
            }
            let address = std::fs::read(data.join("daemon.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|d| d["address"].as_str().map(String::from));
            if let Some(address) = address
                && agent.get(format!("{address}/v1/health")).call().is_ok()
            {
                return Ok(address);
            }
            if start.elapsed() > START_TIMEOUT {
                bail!(
                    "the daemon did not answer within {START_TIMEOUT:?}; its log is {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then wait for the daemon to stop its replicas; SIGKILL after [`STOP_TIMEOUT`].
    /// Returns whether it stopped by itself.
    pub fn stop(&mut self) -> anyhow::Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        if child.try_wait().ok().flatten().is_some() {
            return Ok(true);
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if child.try_wait().context("cannot watch the daemon")?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(false)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Which of `pids` still run `zenith demo-app` (a pid reused by another program does not
/// count).
pub fn still_running(pids: impl IntoIterator<Item = u32>) -> Vec<u32> {
    pids.into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"demo-app"))
        })
        .collect()
}
