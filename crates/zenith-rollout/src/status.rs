//! What an app looks like right now, as the controller publishes it after every change: the
//! API serves it, `zenith app status` prints it. Plain data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zenith_spec::Analysis;

use crate::analysis::Sample;
use crate::progressive::Progress;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A revision is being rolled out.
    Progressing,
    /// The desired revision runs at full strength.
    Complete,
    /// Some replicas are missing or unhealthy (crash loop, restart limit reached).
    Degraded,
    /// The last rollout failed; the previous revision keeps serving.
    Failed,
    /// Stopped by a daemon shutdown.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    pub app: String,
    pub desired_revision: Option<u64>,
    pub active_revision: Option<u64>,
    pub phase: Phase,
    /// Why the app is in this phase, in words (empty when complete).
    pub message: String,
    pub services: Vec<ServiceStatus>,
    /// The canary or blue-green rollout in progress, or else the last one that ended.
    #[serde(default)]
    pub rollout: Option<RolloutStatus>,
}

/// A progressive rollout as `zenith rollout status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub revision: u64,
    pub stable: u64,
    pub forced: bool,
    pub services: Vec<ServiceRollout>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRollout {
    pub service: String,
    pub progress: Progress,
    /// The canary's step weights (`[100]` for blue-green and forced rollouts).
    pub steps: Vec<u32>,
    /// The thresholds checks are held to (`None` for a forced rollout).
    pub analysis: Option<Analysis>,
    /// Metrics per revision over the current check's window, refreshed about once a second.
    pub live: BTreeMap<u64, Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// Public port of the router, when the service has one.
    pub port: Option<u16>,
    pub desired_replicas: u32,
    pub ready_replicas: u32,
    pub replicas: Vec<ReplicaStatus>,
    /// Restart-policy verdicts and update failures, newest last (bounded).
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub id: String,
    pub revision: u64,
    pub state: ReplicaState,
    pub port: u16,
    pub pid: Option<u32>,
    /// Restarts of this replica's slot so far.
    pub restarts: u32,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    /// The last health probe's outcome in words.
    pub last_probe: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaState {
    /// Started, not yet healthy: gets no traffic.
    Starting,
    /// Healthy and in the router.
    Ready,
    /// Failed its health check: out of the router, being replaced.
    Unhealthy,
    /// Leaving: out of the router, finishing in-flight requests, then stopped.
    Stopping,
}

impl std::fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplicaState::Starting => "starting",
            ReplicaState::Ready => "ready",
            ReplicaState::Unhealthy => "unhealthy",
            ReplicaState::Stopping => "stopping",
        })
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Progressing => "progressing",
            Phase::Complete => "complete",
            Phase::Degraded => "degraded",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
        })
    }
}
