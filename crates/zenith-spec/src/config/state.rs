//! The state tables as written: a service's `[services.NAME.state]`, the app's
//! `[schedules.TYPE]`, `[drill]` and `[health]`.

use serde::{Deserialize, Serialize};

use super::HumanDuration;
use crate::model::RestoreOnStart;

/// `retention.toml`: the state tables of an app, kept beside its spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub schedules: std::collections::BTreeMap<String, ScheduleConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthThresholdsConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_before_deploy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_on_stop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_on_start: Option<RestoreOnStart>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub snapshot_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_stop_timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<KeepConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthThresholdsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_warning: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_critical: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_warning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_critical: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_max_age: Option<HumanDuration>,
}
