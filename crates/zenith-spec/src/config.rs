//! The `zenith.toml` file as written: serde types that mirror the file one to one, with every
//! field optional where the file may leave it out. They are separate from [`crate::model`] so
//! the file format can keep defaults, shorthands and spelling of its own while the model stays
//! the plain, validated data the daemon runs. Numbers are read as `i64` and checked by the
//! validator, which can then report every out-of-range value instead of stopping at the first.
//! The compose importer builds these same types and serializes them, so its output has exactly
//! the shape that [`crate::parse`] reads.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::model::{RestartCondition, RuntimeKind};

mod state;
mod update;

pub use state::{
    DrillConfig, HealthThresholdsConfig, KeepConfig, RetentionConfig, ScheduleConfig, StateConfig, VerifyConfig,
};
pub use update::{PauseConfig, SmokeProbeConfig, StepConfig, UpdateConfig};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub app: AppConfig,
    #[serde(default)]
    pub services: Services,
    /// `[schedules.TYPE]`: snapshot schedules keyed by snapshot type.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub schedules: BTreeMap<String, ScheduleConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthThresholdsConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
}

/// `[services.NAME]` tables in the order the file declares them (that order is the start
/// order, so a map that sorts would change behaviour).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Services(pub Vec<(String, ServiceConfig)>);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state_dirs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state_volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<CommandLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateConfig>,
}

/// `[services.NAME.resources]` (Docker only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// A size: "512MiB", "1GB" or a number of bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<CommandLine>,
    /// Docker only: trust the image's HEALTHCHECK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<RestartCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
}

/// `command = "…"` (run by `/bin/sh -c`) or `command = ["argv0", …]` (run as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Shell(String),
    Argv(Vec<String>),
}

impl CommandLine {
    /// The argv the runtime executes.
    pub fn to_argv(&self) -> Vec<String> {
        match self {
            CommandLine::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            CommandLine::Argv(v) => v.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            CommandLine::Shell(s) => s.trim().is_empty(),
            CommandLine::Argv(v) => v.is_empty() || v[0].is_empty(),
        }
    }
}

impl Serialize for CommandLine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CommandLine::Shell(v) => s.serialize_str(v),
            CommandLine::Argv(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A hand-written visitor rather than `#[serde(untagged)]`: untagged enums fail with
        // "data did not match any variant", which tells the user nothing.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandLine, E> {
                Ok(CommandLine::Shell(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandLine, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(CommandLine::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration written the humantime way: `"10s"`, `"2m"`, `"1h 30m"`, `"500ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"10s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v, "").map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// humantime's parse with a message that says how to write a duration; `or` adds the other
/// values a field accepts (`, or "manual"`).
pub(crate) fn parse_duration(v: &str, or: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| {
        // humantime appends its whole unit table; the example below says more.
        let e = e.to_string();
        let why = e.split(", supported units").next().unwrap_or(&e);
        format!("invalid duration \"{v}\" ({why}); write durations like \"10s\", \"2m\" or \"1h 30m\"{or}")
    })
}

impl Serialize for Services {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, service) in &self.0 {
            map.serialize_entry(name, service)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Services {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Services;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of services")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Services, A::Error> {
                let mut out = Vec::new();
                while let Some((name, service)) = map.next_entry::<String, ServiceConfig>()? {
                    out.push((name, service));
                }
                Ok(Services(out))
            }
        }
        d.deserialize_map(V)
    }
}
