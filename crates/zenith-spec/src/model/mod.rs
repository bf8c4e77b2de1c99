//! The validated app model: what the daemon stores in a revision and what the runtime, router
//! and rollout crates consume. Every value here has passed validation; paths are absolute.
//! Parsing and validation live elsewhere; these types never see raw user input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod state;

pub use state::*;

/// One app: a named set of services deployed together as one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    /// How many revisions the daemon keeps for `rollout history` and `rollback` (default 10).
    pub revision_history_limit: u32,
    /// In the order the file declares them: started in this order, stopped in reverse.
    pub services: Vec<ServiceSpec>,
    /// `[schedules.TYPE]` tables, sorted by type.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub drill: Option<DrillSchedule>,
    #[serde(default)]
    pub health: HealthThresholds,
}

impl ServiceSpec {
    /// Whether the service declares state: directories, or (containers) state volumes.
    pub fn has_state(&self) -> bool {
        !self.state_dirs.is_empty() || !self.container.state_volumes.is_empty()
    }
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
    /// A container of the local Docker engine, from [`ServiceSpec::image`].
    Docker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Directories holding the service's state (snapshot hooks act on them). The first is
    /// the replica's `STATE_DIRECTORY`.
    pub state_dirs: Vec<PathBuf>,
    #[serde(default)]
    pub state: StateHooks,
    /// Public port of the daemon's router for this service; `None` for services that serve no
    /// HTTP (workers).
    pub port: Option<u16>,
    /// Docker only: what the container's files and limits are made of.
    #[serde(default, skip_serializing_if = "ContainerSettings::is_empty")]
    pub container: ContainerSettings,
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
    /// Docker only: the image's own HEALTHCHECK, as the engine reports it.
    Image,
}

/// The Docker-only settings of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// The port the program listens on inside the container; the replica's host port (on
    /// 127.0.0.1, where the router reaches it) is published to it. `None`: the same number as
    /// the host port, which the replica reads from `PORT`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    /// CPU limit in billionths of a CPU (`cpus = 1.5` is 1_500_000_000).
    #[serde(default)]
    pub nano_cpus: Option<u64>,
    /// Memory limit in bytes.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Named volumes (of `volumes`) that hold the service's state.
    #[serde(default)]
    pub state_volumes: Vec<String>,
    /// Where the daemon found each state volume on the host when it accepted the deploy; those
    /// directories are also in [`ServiceSpec::state_dirs`], after the declared ones.
    #[serde(default)]
    pub volume_dirs: BTreeMap<String, PathBuf>,
}

impl ContainerSettings {
    pub fn is_empty(&self) -> bool {
        *self == ContainerSettings::default()
    }
}

/// One mount of a container: a named volume (created by the engine when missing) or a host
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub source: VolumeSource,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum VolumeSource {
    Volume(String),
    Bind(PathBuf),
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "strategy")]
pub enum UpdateStrategy {
    Rolling(Rolling),
    /// Traffic moves to the new revision step by step, each step judged from the router's
    /// own metrics; see [`Canary`].
    Canary(Canary),
    /// The new revision starts at full size beside the old one and traffic switches at once;
    /// see [`BlueGreen`].
    BlueGreen(BlueGreen),
}

impl UpdateStrategy {
    /// The strategy's name as the spec file writes it.
    pub fn name(&self) -> &'static str {
        match self {
            UpdateStrategy::Rolling(_) => "rolling",
            UpdateStrategy::Canary(_) => "canary",
            UpdateStrategy::BlueGreen(_) => "blue-green",
        }
    }

    /// How long new replicas may take to become healthy before the update fails.
    pub fn progress_deadline(&self) -> Duration {
        match self {
            UpdateStrategy::Rolling(r) => r.progress_deadline,
            UpdateStrategy::Canary(c) => c.progress_deadline,
            UpdateStrategy::BlueGreen(b) => b.progress_deadline,
        }
    }
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

/// A canary: the new revision gets `steps[0].weight` percent of the traffic, then each
/// following step's, while the old revision keeps running at full size. Each step must pass
/// [`Analysis`] before the next; failing it aborts the rollout and sends all traffic back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// In order; weights never decrease. After the last step the new revision takes all
    /// traffic (the file's default ends at 100, which is judged like any other step).
    pub steps: Vec<CanaryStep>,
    pub analysis: Analysis,
    /// Smoke tests run against every new replica before it gets any traffic.
    pub probes: Vec<SmokeProbe>,
    /// New replicas that are not healthy within this time fail the rollout (default 60 s).
    pub progress_deadline: Duration,
}

/// One canary step: the weight to set, and how long to hold it at least.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStep {
    /// Percent of requests for the new revision, 0–100.
    pub weight: u32,
    /// Hold the step this long (analysis keeps running), or until `zenith rollout promote`.
    pub pause: Option<Pause>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pause {
    For(Duration),
    /// Until a person runs `zenith rollout promote`.
    Manual,
}

/// Blue-green: the new revision starts at full size beside the old one and gets no traffic
/// until it is healthy and its smoke tests pass; then all traffic switches at once. The old
/// revision stays running for `scale_down_delay`, during which `zenith rollout abort` (or a
/// failed [`Analysis`] check, when thresholds are set) switches back instantly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlueGreen {
    pub analysis: Analysis,
    pub probes: Vec<SmokeProbe>,
    /// How long the old revision stays warm after the switch (default 30 s).
    pub scale_down_delay: Duration,
    /// `false` waits for `zenith rollout promote` before switching (default `true`).
    pub auto_promote: bool,
    pub progress_deadline: Duration,
}

/// How a step is judged. Each check looks at the requests the router answered for the new
/// revision since the previous verdict; a check that has not seen `min_requests` yet waits
/// (up to `quiet_timeout`) instead of judging on too little data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Time between checks (default 10 s).
    pub interval: Duration,
    /// Requests a check needs before it gives a verdict (default 50).
    pub min_requests: u64,
    /// Percent of requests answered 5xx or not answered at all (default 5).
    pub max_error_rate: f64,
    pub max_p95: Option<Duration>,
    pub max_p99: Option<Duration>,
    pub score: Option<Score>,
    /// Failed checks that abort the rollout (default 1: the first failed check aborts).
    pub failure_limit: u32,
    /// Consecutive passing checks a step needs before the next one (default 1).
    pub success_count: u32,
    /// How long a check waits for `min_requests` before `on_quiet` decides (default 5 m).
    pub quiet_timeout: Duration,
    pub on_quiet: OnQuiet,
}

/// What a check that could not gather enough requests in `quiet_timeout` counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnQuiet {
    /// A passing check: no traffic, no evidence of harm.
    Pass,
    /// A failed check (what Flagger does with no data).
    Fail,
    /// The rollout pauses until `zenith rollout resume` or `promote`.
    Pause,
}

/// A health score over the measured metrics, e.g. the seed's bio energy score. The formula's
/// variables are listed in [`SCORE_VARIABLES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Checked by [`crate::formula::Formula::parse`] during validation; parse it once with the
    /// same to evaluate it.
    pub formula: String,
    /// A check fails when the score is below this.
    pub min: f64,
}

/// The variables a score formula may use, with their meaning.
pub const SCORE_VARIABLES: [(&str, &str); 10] = [
    ("error_rate", "percent of requests answered 5xx or not answered"),
    ("success_rate", "100 - error_rate"),
    ("request_rate", "requests per second"),
    ("requests", "requests in the check's window"),
    ("response_time_ms", "mean latency in milliseconds"),
    ("p50_ms", "median latency in milliseconds"),
    ("p95_ms", "95th percentile latency in milliseconds"),
    ("p99_ms", "99th percentile latency in milliseconds"),
    (
        "cpu_utilization",
        "CPU use of the revision's replicas, percent of one core each, averaged",
    ),
    ("replicas", "ready replicas of the revision"),
];

/// An HTTP request sent to each new replica before it gets traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeProbe {
    /// `GET http://127.0.0.1:$PORT{path}`.
    pub path: String,
    /// The status expected; `None` accepts any 2xx.
    pub status: Option<u16>,
    /// Text the response body must contain.
    pub body_contains: Option<String>,
    pub timeout: Duration,
}
