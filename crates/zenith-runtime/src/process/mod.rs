//! The process driver: replicas are local processes, each the leader of its own process group,
//! logging to a file it holds itself. Replicas outlive the daemon (no kill-on-drop); a new
//! daemon takes them back with `adopt`, checked by pid *and* start time so a recycled pid is
//! never mistaken for a replica. A replica is its whole group: `stop` signals the group, and
//! when the leader ends, whatever it left in its group is killed (as the kernel does to a
//! container's processes when its first process exits).

mod exec;
pub(crate) mod launch;
pub(crate) mod procfs;
mod watch;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustix::process::Signal;
use tokio::sync::mpsc;

pub use launch::{INHERITED_ENV, REPLICA_ID_ENV, SECRETS_DIR_ENV};

use crate::{BoxFuture, ExecOutput, Exit, ReplicaRecord, ReplicaSpec, Runtime, RuntimeError};
use watch::Tracked;

/// How long `stop` waits for a group that was sent SIGKILL before it reports an error (a
/// process stuck in uninterruptible sleep cannot die sooner).
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Runs replicas as local processes. Dropping it stops *watching* them (no more `Exit`s from
/// this instance) but leaves them running, as a daemon crash would.
///
/// ```no_run
/// # async fn demo(spec: zenith_runtime::ReplicaSpec) -> Result<(), zenith_runtime::RuntimeError> {
/// use std::time::Duration;
/// use zenith_runtime::{ProcessRuntime, Runtime};
///
/// let runtime = ProcessRuntime::new();
/// let (exits_tx, mut exits) = tokio::sync::mpsc::unbounded_channel();
/// let record = runtime.start(&spec, exits_tx).await?;
/// // Persist `record`: a restarted daemon hands it to `adopt`.
/// runtime.stop(&record.id, Duration::from_secs(10)).await?;
/// let exit = exits.recv().await; // Some(Exit { status: Signal(15), .. })
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ProcessRuntime {
    replicas: Mutex<HashMap<String, Tracked>>,
}

impl ProcessRuntime {
    /// A runtime watching no replica yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn replicas(&self) -> MutexGuard<'_, HashMap<String, Tracked>> {
        // The map holds plain data and no code panics while holding the lock.
        self.replicas.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a watched replica, dropping entries of replicas that have ended meanwhile.
    fn track(&self, id: &str, tracked: Tracked) {
        let mut replicas = self.replicas();
        replicas.retain(|_, t| !t.is_gone());
        replicas.insert(id.to_string(), tracked);
    }

    fn is_running(&self, id: &str) -> bool {
        self.replicas().get(id).is_some_and(|t| !t.is_gone())
    }

    async fn start_replica(
        &self,
        spec: &ReplicaSpec,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Result<ReplicaRecord, RuntimeError> {
        let other = |message: &str| RuntimeError::Other {
            id: spec.id.clone(),
            message: message.to_string(),
        };
        if self.is_running(&spec.id) {
            return Err(other("is already running; stop it before starting it again"));
        }
        let mut cmd = launch::command(spec, &spec.command)
            .ok_or_else(|| other("has an empty command; give the program to run"))?;
        launch::install_secrets(spec)?;
        let (stdout, stderr) = launch::open_log(spec)?;
        cmd.stdout(stdout).stderr(stderr);
        let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            id: spec.id.clone(),
            source,
        })?;
        // The command holds our copies of the log descriptors; only the child needs them.
        drop(cmd);
        let (tracked, record) = watch::watch_child(spec, child, exits)?;
        self.track(&spec.id, tracked);
        tracing::info!(replica = %spec.id, pid = record.pid, log = %record.log_path.display(), "replica started");
        Ok(record)
    }

    async fn adopt_replica(
        &self,
        record: &ReplicaRecord,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Result<bool, RuntimeError> {
        if let Some(t) = self.replicas().get(&record.id)
            && !t.is_gone()
        {
            return Ok(t.pid == record.pid && t.start_time == record.start_time);
        }
        match watch::watch_adopted(record, exits)? {
            Some(tracked) => {
                self.track(&record.id, tracked);
                tracing::info!(replica = %record.id, pid = record.pid, "replica adopted");
                Ok(true)
            }
            None => {
                tracing::info!(replica = %record.id, pid = record.pid, "replica to adopt is gone");
                Ok(false)
            }
        }
    }

    async fn stop_replica(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let Some((pid, pgid, gone)) = self.replicas().get(id).map(|t| (t.pid, t.pgid, t.gone.clone())) else {
            tracing::debug!(replica = id, "stop: not a replica of this runtime; nothing to do");
            return Ok(());
        };
        let signal_error = |source| RuntimeError::Signal {
            id: id.to_string(),
            pgid,
            source,
        };
        if !watch::is_gone(&gone) {
            tracing::info!(replica = id, pgid, ?grace, "stopping replica: SIGTERM");
            procfs::signal_group(pgid, Signal::TERM).map_err(signal_error)?;
            if tokio::time::timeout(grace, watch::wait_gone(gone.clone()))
                .await
                .is_err()
            {
                tracing::warn!(replica = id, pgid, ?grace, "replica outlived its grace period: SIGKILL");
                procfs::signal_group(pgid, Signal::KILL).map_err(signal_error)?;
                if tokio::time::timeout(KILL_WAIT, watch::wait_gone(gone)).await.is_err() {
                    return Err(RuntimeError::Other {
                        id: id.to_string(),
                        message: format!("process {pid} is still running {KILL_WAIT:?} after SIGKILL"),
                    });
                }
            }
        }
        let mut replicas = self.replicas();
        if replicas.get(id).is_some_and(|t| t.pid == pid) {
            replicas.remove(id);
        }
        Ok(())
    }
}

impl Drop for ProcessRuntime {
    fn drop(&mut self) {
        for tracked in self.replicas().values() {
            tracked.task.abort();
        }
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<ReplicaRecord, RuntimeError>> {
        Box::pin(self.start_replica(spec, exits))
    }

    fn adopt<'a>(
        &'a self,
        record: &'a ReplicaRecord,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(self.adopt_replica(record, exits))
    }

    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.stop_replica(id, grace))
    }

    fn exec<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>> {
        Box::pin(exec::exec(spec, command, timeout))
    }

    fn cpu_time(&self, record: &ReplicaRecord) -> Option<Duration> {
        procfs::cpu_time(record.pid, record.start_time)
    }
}
