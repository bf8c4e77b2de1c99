//! The `[services.NAME.update]` table as written. One flat table serves the three strategies,
//! as in the file: which keys belong to which strategy is the validator's business, so that a
//! key under the wrong strategy gets a message naming the strategy that takes it rather than
//! serde's "unknown field". Canary steps and pauses have shorthands (`25`, `"manual"`), read
//! here by hand-written visitors because `#[serde(untagged)]` fails with a message that names
//! neither form.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::{HumanDuration, parse_duration};
use crate::model::{OnQuiet, UpdateOrder};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// A string rather than an enum so that an unknown strategy gets a message listing the
    /// strategies and what each is for, instead of serde's generic "unknown variant".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    // rolling
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<UpdateOrder>,
    // canary
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepConfig>>,
    // blue-green
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promote: Option<bool>,
    // analysis (canary and blue-green)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<i64>,
    /// Percent; serde reads an integer here too (`max_error_rate = 5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p95: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_quiet: Option<OnQuiet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    // every strategy
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<HumanDuration>,
    /// Last: `[[…probes]]` tables must follow the table's plain keys when written back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<SmokeProbeConfig>,
}

/// One element of `steps`: `25`, or `{ weight = 25, pause = "2m" }` with either key left out
/// (a step without `weight` keeps the previous step's).
#[derive(Debug, Clone, PartialEq)]
pub enum StepConfig {
    Weight(i64),
    Table {
        weight: Option<i64>,
        pause: Option<PauseConfig>,
    },
}

/// A step's `pause`: a duration, or `"manual"` for `zenith rollout promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseConfig {
    For(HumanDuration),
    Manual,
}

/// `[[services.NAME.update.probes]]`: a smoke test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeProbeConfig {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// The table form of a step, as serde sees it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pause: Option<PauseConfig>,
}

impl Serialize for StepConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StepConfig::Weight(w) => s.serialize_i64(*w),
            StepConfig::Table { weight, pause } => StepTable {
                weight: *weight,
                pause: *pause,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StepConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StepConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a weight such as 25 or a table such as { weight = 25, pause = \"2m\" }")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StepConfig, E> {
                Ok(StepConfig::Weight(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StepConfig, E> {
                // Out of range either way; the validator reports it with the bounds.
                Ok(StepConfig::Weight(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StepConfig, A::Error> {
                let t = StepTable::deserialize(MapAccessDeserializer::new(map))?;
                Ok(StepConfig::Table {
                    weight: t.weight,
                    pause: t.pause,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for PauseConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PauseConfig::For(d) => d.serialize(s),
            PauseConfig::Manual => s.serialize_str("manual"),
        }
    }
}

impl<'de> Deserialize<'de> for PauseConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PauseConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"2m\", or \"manual\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PauseConfig, E> {
                if v == "manual" {
                    return Ok(PauseConfig::Manual);
                }
                let or = ", or \"manual\" to hold the step until `zenith rollout promote`";
                parse_duration(v, or)
                    .map(|d| PauseConfig::For(HumanDuration(d)))
                    .map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}
