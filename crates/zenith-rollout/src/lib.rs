//! Revisions and how they reach the replicas: the rolling-update arithmetic and the deploy
//! plan (pure, unit-tested), and the per-app controller that carries a plan out through the
//! runtime and the router, supervises replicas with their health checks and restart policy,
//! and falls back when an update fails. It knows nothing of the HTTP API or the database; what
//! must outlive the daemon goes through the [`controller::Journal`] trait.

pub mod analysis;
pub mod controller;
pub mod plan;
pub mod progressive;
pub mod rolling;
pub mod smoke;
pub mod status;

pub use controller::{AppHandle, Env, Journal, Outcome, ReplicaRow, RolloutRecord, Start, StateHooks};
pub use plan::{DeployPlan, plan};
pub use progressive::UserCommand;
pub use status::{AppStatus, Phase, ReplicaState, ReplicaStatus, RolloutStatus, ServiceRollout, ServiceStatus};
