//! What zenith does with services' state: the hooks around deploys and stops, the snapshot
//! schedules with their retention, restore drills, and the thresholds of snapshot health.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The state hooks of one service; they act on its `state_dirs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHooks {
    /// Snapshot the state directories before a new revision's first replica starts; the
    /// snapshot ids are recorded on the new revision (for `rollback --with-state`).
    pub snapshot_before_deploy: bool,
    /// Snapshot after each replica of the service stops (scale-down, update, app stop, daemon
    /// shutdown), once it has exited and its files are quiet.
    pub snapshot_on_stop: bool,
    pub restore_on_start: RestoreOnStart,
    /// The snapshot type (label) of the hooks' snapshots (default `state`).
    pub snapshot_type: String,
    /// How long an on-stop snapshot may take; past it the stop completes without one and the
    /// failure is reported (default 60 s).
    pub on_stop_timeout: Duration,
}

impl Default for StateHooks {
    fn default() -> Self {
        StateHooks {
            snapshot_before_deploy: false,
            snapshot_on_stop: false,
            restore_on_start: RestoreOnStart::None,
            snapshot_type: DEFAULT_STATE_TYPE.to_string(),
            on_stop_timeout: Duration::from_secs(60),
        }
    }
}

/// The snapshot type of hook snapshots unless the spec names another.
pub const DEFAULT_STATE_TYPE: &str = "state";

/// What a replica starts from when its state directory is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreOnStart {
    /// An empty directory stays empty.
    #[default]
    None,
    /// An empty (or missing) state directory is first filled from the newest snapshot of it.
    Latest,
}

/// A snapshot schedule: `[schedules.TYPE]`. The key is the snapshot type the schedule's
/// snapshots carry, and retention applies to the snapshots of that type only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The snapshot type, e.g. `data`, `config`, `system`, `models`.
    pub snapshot_type: String,
    /// A 5-field cron expression or macro, checked by [`crate::cron::Cron::parse`].
    pub cron: String,
    /// An IANA zone name; `None` is the daemon's local zone.
    pub timezone: Option<String>,
    /// Services whose state directories are snapshotted (default: all that have some).
    pub services: Vec<String>,
    pub keep: Retention,
    /// A periodic `verify --read-data-subset` of this type's snapshots.
    pub verify: Option<VerifySchedule>,
}

/// Retention after each scheduled run, with the semantics of `zenith snapshot forget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    /// `1y2m3d4h` form, as `forget --keep-within`.
    pub within: Option<String>,
    /// Snapshots with any of these tags are kept.
    pub tags: Vec<String>,
}

impl Retention {
    /// Whether any rule is set (an empty policy keeps everything: it never deletes).
    pub fn is_set(&self) -> bool {
        *self != Retention::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySchedule {
    pub cron: String,
    /// `n/t` or `P%`, as `verify --read-data-subset` (default `5%`).
    pub subset: String,
}

/// `[drill]`: a scheduled `zenith recover APP --drill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillSchedule {
    pub cron: String,
    pub timezone: Option<String>,
}

/// `[health]`: when the snapshots of this app are a warning or critical. Defaults follow the
/// seed's snapshot_alerts.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthThresholds {
    pub age_warning: Duration,
    pub age_critical: Duration,
    pub size_warning: Option<u64>,
    pub size_critical: Option<u64>,
    /// A last successful integrity check older than this is a warning (only for types that
    /// have a verify schedule).
    pub verify_max_age: Duration,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            age_warning: Duration::from_secs(24 * 3600),
            age_critical: Duration::from_secs(48 * 3600),
            size_warning: None,
            size_critical: None,
            verify_max_age: Duration::from_secs(8 * 24 * 3600),
        }
    }
}
