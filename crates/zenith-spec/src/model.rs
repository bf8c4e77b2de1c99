//! The validated app model: what the daemon stores in a revision and what the runtime, router
//! and rollout crates consume. Every value here has passed validation; paths are absolute.
//! Parsing and validation live elsewhere; these types never see raw user input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One app: a named set of services deployed together as one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    /// How many revisions the daemon keeps for `rollout history` and `rollback` (default 10).
    pub revision_history_limit: u32,
    /// In the order the file declares them: started in this order, stopped in reverse.
    pub services: Vec<ServiceSpec>,
}

impl AppSpec {
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// A digest of the canonical JSON form: two specs that run the same thing have the same
    /// digest, whatever the formatting of the files they came from.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("the model always serializes");
        blake3::hash(&json).to_hex()[..16].to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// A local process supervised by the daemon (the embedded default).
    Process,
    /// A Docker container from [`ServiceSpec::image`]. The spec accepts it so that compose
    /// files convert; the daemon refuses it until the Docker runtime exists.
    Docker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub runtime: RuntimeKind,
    /// The container image (`Some` exactly when `runtime` is [`RuntimeKind::Docker`]).
    pub image: Option<String>,
    /// argv, run without a shell. A command written as one string in the file becomes
    /// `["/bin/sh", "-c", STRING]`. For Docker it replaces the image's CMD (the image's
    /// ENTRYPOINT is kept); empty means the image's own CMD.
    pub command: Vec<String>,
    /// Working directory of each replica (default: the spec file's directory).
    pub workdir: PathBuf,
    pub replicas: u32,
    /// Extra environment; the runtime adds `PORT` (the replica's own port) and
    /// `ZENITH_SECRETS_DIR`.
    pub env: BTreeMap<String, String>,
    /// Secret name → file holding its value. Replicas see them as files, never as env values,
    /// and their contents are never logged or stored in revisions.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Directories holding the service's state (snapshot hooks act on them).
    pub state_dirs: Vec<PathBuf>,
    /// Public port of the daemon's router for this service; `None` for services that serve no
    /// HTTP (workers).
    pub port: Option<u16>,
    pub health: Option<HealthCheck>,
    pub restart: RestartPolicy,
    pub update: UpdateStrategy,
    /// Command run in the replica's environment before it is stopped.
    pub pre_stop: Option<Vec<String>>,
    /// Time between SIGTERM and SIGKILL (default 10 s).
    pub stop_grace: Duration,
    /// How long a leaving replica may finish in-flight requests (default 30 s).
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures before a healthy replica is declared unhealthy.
    pub retries: u32,
    /// Failures during this time after start do not count.
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Probe {
    /// GET `http://127.0.0.1:$PORT{path}`; any 2xx or 3xx is healthy.
    Http { path: String },
    /// A TCP connect to `127.0.0.1:$PORT`.
    Tcp,
    /// A command run in the replica's environment; exit 0 is healthy.
    Exec { command: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    /// Wait before each restart (default 5 s, as Swarm).
    pub delay: Duration,
    /// At most this many restarts within `window` (`None`: unlimited).
    pub max_attempts: Option<u32>,
    /// The window `max_attempts` counts in (`None`: for ever).
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    Any,
    OnFailure,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "strategy")]
pub enum UpdateStrategy {
    Rolling(Rolling),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rolling {
    /// Replicas that may exist above `replicas` during an update (default 1).
    pub max_surge: u32,
    /// Replicas that may be missing below `replicas` during an update (default 0).
    pub max_unavailable: u32,
    pub order: UpdateOrder,
    /// A new replica that is not healthy within this time fails the update (default 60 s).
    pub progress_deadline: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StartFirst,
    StopFirst,
}
