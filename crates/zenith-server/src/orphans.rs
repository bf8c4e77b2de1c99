//! Finding replicas nobody tracks any more: a daemon killed between starting a replica and
//! recording it leaves a process that no record names. Every replica carries its daemon's
//! marker and its own id in its environment, so a starting daemon can find such processes in
//! /proc and end them before it adopts the rest.

use std::collections::HashSet;

use rustix::process::{Pid, Signal};

/// Kills (SIGKILL, whole process group) every process that carries `marker` as its
/// `ZENITH_DAEMON_ID` but whose `ZENITH_REPLICA_ID` is not in `known`.
pub fn sweep(marker: &str, known: &[String]) {
    let known: HashSet<&str> = known.iter().map(String::as_str).collect();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in proc_dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Processes of other users are unreadable: they cannot be ours.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let mut daemon = None;
        let mut replica = None;
        for var in environ.split(|b| *b == 0) {
            if let Some(v) = var.strip_prefix(b"ZENITH_DAEMON_ID=") {
                daemon = Some(v);
            } else if let Some(v) = var.strip_prefix(b"ZENITH_REPLICA_ID=") {
                replica = std::str::from_utf8(v).ok();
            }
        }
        let (Some(daemon), Some(replica)) = (daemon, replica) else {
            continue;
        };
        if daemon != marker.as_bytes() || known.contains(replica) {
            continue;
        }
        let Some(pid) = Pid::from_raw(pid as i32) else {
            continue;
        };
        tracing::warn!(replica, pid = pid.as_raw_nonzero().get(), "ending an orphaned replica");
        match rustix::process::getpgid(Some(pid)) {
            Ok(pgid) => {
                let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
            }
            Err(_) => {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
    }
}
