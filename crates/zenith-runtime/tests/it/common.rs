//! Shared fixtures: a temporary work and run directory, specs running `/bin/sh -c SCRIPT`, and
//! bounded waits for exits and for conditions on the file system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use zenith_runtime::{Exit, ReplicaSpec};

/// Generous bound on every wait: a loaded machine is slow, never this slow.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs_err::create_dir_all(dir.path().join("work")).expect("work dir");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The replicas' working directory.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn spec(&self, id: &str, script: &str) -> ReplicaSpec {
        ReplicaSpec {
            id: id.to_string(),
            command: sh(script),
            workdir: self.work(),
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            run_dir: self.dir.path().join("run"),
            container: None,
        }
    }
}

pub fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

pub async fn next_exit(exits: &mut mpsc::UnboundedReceiver<Exit>) -> Exit {
    tokio::time::timeout(PATIENCE, exits.recv())
        .await
        .expect("no exit reported in time")
        .expect("exit channel closed")
}

/// Polls `condition` until it holds; panics naming `what` after [`PATIENCE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn read(path: &Path) -> String {
    fs_err::read_to_string(path).unwrap_or_default()
}

/// True while `pid` is a process that has not exited (zombies count as exited).
pub fn pid_alive(pid: u32) -> bool {
    let stat = read(&PathBuf::from(format!("/proc/{pid}/stat")));
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X') | None),
        None => false,
    }
}

/// Reads a pid that a script wrote to `file` in the work directory.
pub async fn pid_from(fx: &Fixture, file: &str) -> u32 {
    let path = fx.work().join(file);
    wait_until(file, || read(&path).ends_with('\n')).await;
    read(&path).trim().parse().expect("a pid")
}
