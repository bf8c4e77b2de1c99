//! Running workloads. A [`Runtime`] starts, watches, stops and re-adopts replicas; the process
//! driver is the embedded default. Health probes and the restart policy's arithmetic live here
//! too. It knows nothing of traffic or revisions: callers hand it a [`ReplicaSpec`] and get
//! exits back on a channel.

pub mod docker;
mod error;
pub mod health;
pub mod logs;
mod process;
pub mod restart;
mod runtimes;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use docker::DockerRuntime;
pub use error::RuntimeError;
pub use health::{HealthState, HealthTracker, probe};
pub use logs::{LogFollower, read_log_tail, rotate_log};
pub use process::{INHERITED_ENV, ProcessRuntime, REPLICA_ID_ENV, SECRETS_DIR_ENV};
pub use restart::{RestartDecision, RestartTracker};
pub use runtimes::Runtimes;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything needed to start one replica.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    /// Unique for the daemon's lifetime and beyond (it names log files and records).
    pub id: String,
    pub command: Vec<String>,
    pub workdir: PathBuf,
    /// The full environment additions, `PORT` included (the caller allocates ports).
    pub env: BTreeMap<String, String>,
    /// Secret name → source file; materialized as 0400 files in a 0700 directory whose path
    /// is given to the replica as `ZENITH_SECRETS_DIR`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Where the replica's own files live (logs, secrets): `<dir>/<id>/…`.
    pub run_dir: PathBuf,
    /// `Some` for a container of the Docker runtime; `None` for a local process.
    pub container: Option<ContainerSpec>,
}

/// What makes a replica a container: its image, the Docker-only settings of its service, and
/// the labels that mark it as zenith's.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub image: String,
    /// The host port (on 127.0.0.1) published to the container's port; `None` for a worker.
    pub host_port: Option<u16>,
    pub settings: zenith_spec::model::ContainerSettings,
    /// Extra labels (app, service, revision); the runtime adds its own.
    pub labels: BTreeMap<String, String>,
}

/// What the caller persists so that a restarted daemon can find the replica again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub id: String,
    pub pid: u32,
    /// Process start time (clock ticks since boot, from /proc/PID/stat) to tell a reused pid.
    pub start_time: u64,
    pub log_path: PathBuf,
    /// The container's id, for a replica of the Docker runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
    /// An adopted replica is not our child, so its exit status cannot be known.
    Unknown,
}

impl ExitStatus {
    pub fn success(self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => write!(f, "signal {signal}"),
            ExitStatus::Unknown => f.write_str("an unknown status (adopted replica)"),
        }
    }
}

/// Sent once for every replica that ends, whether it crashed or was stopped.
#[derive(Debug, Clone)]
pub struct Exit {
    pub id: String,
    pub status: ExitStatus,
}

pub trait Runtime: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Starts a replica; its end is reported on `exits`.
    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<ReplicaRecord, RuntimeError>>;

    /// Takes a replica of an earlier daemon back under watch. `Ok(false)` when it is gone
    /// (or its pid now belongs to another process).
    fn adopt<'a>(
        &'a self,
        record: &'a ReplicaRecord,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<bool, RuntimeError>>;

    /// SIGTERM to the replica's process group, SIGKILL after `grace`; returns once it is gone.
    /// Idempotent. The `Exit` is also sent on the channel.
    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Runs a command in the replica's environment (workdir, env) with a timeout: exec health
    /// probes and pre-stop hooks.
    fn exec<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>>;

    /// CPU time the replica's main process has used since it started, for canary analysis;
    /// `None` when the runtime cannot tell or the replica is gone.
    fn cpu_time(&self, _record: &ReplicaRecord) -> Option<Duration> {
        None
    }

    /// The health the runtime itself reports (a container image's HEALTHCHECK); `Err` with
    /// the reason while it is not healthy, or when the runtime has no such notion.
    fn reported_health<'a>(&'a self, spec: &'a ReplicaSpec) -> BoxFuture<'a, Result<(), String>> {
        let _ = spec;
        Box::pin(async { Err(format!("the {} runtime reports no health of its own", self.name())) })
    }
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: ExitStatus,
    /// The last few KiB of stdout and stderr together.
    pub output: String,
}
