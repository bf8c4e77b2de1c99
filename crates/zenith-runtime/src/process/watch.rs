//! One watcher task per replica: it waits for the group leader to end, kills what the leader
//! left in its group, and reports exactly one `Exit`. Our own children are waited on through a
//! pidfd before they are reaped, so the group id cannot be recycled while the leftovers are
//! killed; adopted replicas are not our children and end with `ExitStatus::Unknown`.

use std::os::unix::process::ExitStatusExt;

use rustix::process::Signal;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::launch;
use super::procfs::{self, ExitWatch};
use crate::{Exit, ExitStatus, ReplicaRecord, ReplicaSpec, RuntimeError};

/// What the runtime keeps per replica, for `stop` and for dropping the watchers.
pub(super) struct Tracked {
    pub pid: u32,
    pub start_time: u64,
    pub pgid: i32,
    /// Turns `true` once the replica has ended and its `Exit` has been sent.
    pub gone: watch::Receiver<bool>,
    pub task: AbortHandle,
}

impl Tracked {
    pub fn is_gone(&self) -> bool {
        is_gone(&self.gone)
    }
}

pub(super) fn is_gone(gone: &watch::Receiver<bool>) -> bool {
    *gone.borrow() || gone.has_changed().is_err()
}

/// Resolves once the replica has ended (or its watcher was dropped).
pub(super) async fn wait_gone(mut gone: watch::Receiver<bool>) {
    // An error means the watcher is gone too; there is nothing left to wait for.
    let _ = gone.wait_for(|gone| *gone).await;
}

/// Watches a freshly spawned child and returns its record.
pub(super) fn watch_child(
    spec: &ReplicaSpec,
    mut child: Child,
    exits: mpsc::UnboundedSender<Exit>,
) -> Result<(Tracked, ReplicaRecord), RuntimeError> {
    let id = spec.id.clone();
    let setup = child.id().ok_or("exited before its pid was known").and_then(|pid| {
        // Our unreaped child keeps its pid, so reading its stat first is safe.
        let stat = procfs::read_stat(pid)
            .ok()
            .flatten()
            .ok_or("has no readable /proc/PID/stat")?;
        let exit_watch = ExitWatch::open(pid, stat.start_time)
            .inspect_err(|e| {
                tracing::warn!(replica = %spec.id, pid, error = %e,
                    "cannot watch the replica's exit before reaping; its leftovers will not be killed");
            })
            .ok();
        Ok((pid, stat, exit_watch))
    });
    let (pid, stat, exit_watch) = match setup {
        Ok(setup) => setup,
        Err(message) => {
            // Nothing may be left started: the child is killed and reaped in the background.
            if let Err(e) = child.start_kill() {
                tracing::warn!(replica = %id, error = %e, "could not kill a half-started replica");
            }
            return Err(RuntimeError::Other {
                id,
                message: format!("started but {message}; it was killed"),
            });
        }
    };
    let pgid = stat.pgid;
    let (gone_tx, gone) = watch::channel(false);
    let task_id = id.clone();
    let task = tokio::spawn(async move {
        if let Some(exit_watch) = exit_watch {
            exit_watch.exited().await;
            kill_leftovers(&task_id, pgid);
        }
        let status = match child.wait().await {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => ExitStatus::Code(code),
                (None, Some(signal)) => ExitStatus::Signal(signal),
                (None, None) => ExitStatus::Unknown,
            },
            Err(e) => {
                tracing::warn!(replica = %task_id, error = %e, "could not wait for replica");
                ExitStatus::Unknown
            }
        };
        report(task_id, status, &exits, &gone_tx);
    });
    let record = ReplicaRecord {
        id: spec.id.clone(),
        pid,
        start_time: stat.start_time,
        log_path: launch::log_path(spec),
        container: None,
    };
    let tracked = Tracked {
        pid,
        start_time: stat.start_time,
        pgid,
        gone,
        task: task.abort_handle(),
    };
    Ok((tracked, record))
}

/// Takes back a replica of an earlier daemon. `Ok(None)` when the pid is gone or now belongs to
/// another process. Watching uses a pidfd (opened *before* the start time is compared, so both
/// are about the same process), or a 200 ms poll of /proc on kernels without pidfds.
pub(super) fn watch_adopted(
    record: &ReplicaRecord,
    exits: mpsc::UnboundedSender<Exit>,
) -> Result<Option<Tracked>, RuntimeError> {
    let other = |message: String| RuntimeError::Other {
        id: record.id.clone(),
        message,
    };
    let exit_watch = match ExitWatch::open(record.pid, record.start_time) {
        Ok(exit_watch) => exit_watch,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => return Ok(None),
        Err(e) => return Err(other(format!("cannot watch process {}: {e}", record.pid))),
    };
    let stat = match procfs::read_stat(record.pid) {
        Ok(Some(stat)) if stat.start_time == record.start_time && !stat.has_exited() => stat,
        Ok(_) => return Ok(None),
        Err(e) => return Err(other(format!("cannot inspect process {}: {e}", record.pid))),
    };
    if i64::from(stat.pgid) != i64::from(record.pid) {
        return Err(other(format!(
            "process {} is no longer the leader of its own process group (group {}); \
             refusing to manage it: stop it by hand",
            record.pid, stat.pgid
        )));
    }
    let (gone_tx, gone) = watch::channel(false);
    let id = record.id.clone();
    let pgid = stat.pgid;
    let task = tokio::spawn(async move {
        exit_watch.exited().await;
        // The leader is not our child: its parent reaps it, so unlike for our own children the
        // group id could in theory be recycled before this kill. That needs the pid counter to
        // wrap *and* the new process to lead its own group within microseconds; accepted.
        kill_leftovers(&id, pgid);
        report(id, ExitStatus::Unknown, &exits, &gone_tx);
    });
    Ok(Some(Tracked {
        pid: record.pid,
        start_time: record.start_time,
        pgid,
        gone,
        task: task.abort_handle(),
    }))
}

/// The leader has ended: kill what it left in its group (a replica is its whole group).
fn kill_leftovers(id: &str, pgid: i32) {
    if let Err(e) = procfs::signal_group(pgid, Signal::KILL) {
        tracing::warn!(replica = id, pgid, error = %e, "could not kill the rest of the process group");
    }
}

fn report(id: String, status: ExitStatus, exits: &mpsc::UnboundedSender<Exit>, gone: &watch::Sender<bool>) {
    tracing::info!(replica = %id, %status, "replica exited");
    if exits.send(Exit { id, status }).is_err() {
        tracing::debug!("nobody listens for exits any more");
    }
    // `send_replace` stores the value even when no receiver is left.
    gone.send_replace(true);
}
