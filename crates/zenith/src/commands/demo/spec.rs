//! The demo's app spec: the bundled demo app behind a canary with the seed's thresholds and
//! score. It is written as a `zenith.toml` beside the daemon's data and loaded with
//! `zenith_spec::load`, so the demo goes through the same parser and validation as a user's
//! `zenith deploy -f` (and `--keep` leaves the files to read).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use zenith_spec::AppSpec;

/// The app and service the demo deploys.
pub const APP: &str = "demo";

/// One version of the demo app: its name and the environment that makes it good or bad.
pub struct Version<'a> {
    pub name: &'a str,
    pub env: &'a [(&'a str, &'a str)],
}

/// How v3 is bad, for `--bad`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Bad {
    /// 30 % of v3's answers are HTTP 500.
    Errors,
    /// Each of v3's answers takes 400 ms longer.
    Latency,
}

impl Bad {
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Bad::Errors => &[("DEMO_ERROR_RATE", "30")],
            Bad::Latency => &[("DEMO_LATENCY_MS", "400")],
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Bad::Errors => "30% of its answers are HTTP 500",
            Bad::Latency => "each answer takes 400 ms longer",
        }
    }
}

/// What the spec needs to know about this run.
pub struct Settings<'a> {
    /// The zenith binary, run as `zenith demo-app` by each replica.
    pub exe: &'a Path,
    pub port: u16,
    /// Time between canary checks.
    pub interval: Duration,
}

/// The spec text of `version`. Only the version's environment differs between deploys, so
/// each deploy is the same canary over a new revision.
pub fn text(settings: &Settings<'_>, version: &Version<'_>) -> String {
    let mut env = format!("DEMO_VERSION = {}", quote(version.name));
    for (k, v) in version.env {
        env.push_str(&format!(", {k} = {}", quote(v)));
    }
    format!(
        r#"# Written by `zenith demo`: the bundled demo app, {version}, rolled out as a canary.
[app]
name = "{APP}"

[services.web]
command = [{exe}, "demo-app"]
port = {port}
replicas = 2
env = {{ {env} }}
# Short, so that replacing and stopping replicas does not stretch the demo.
stop_grace = "3s"
drain_timeout = "3s"

[services.web.health]
http = "/health"
interval = "1s"

[services.web.update]
strategy = "canary"
steps = [10, 25, 50, 75, 100]
interval = "{interval}ms"
min_requests = 20
max_error_rate = 5
max_p95 = "250ms"
# The seed's bio energy score: errors weigh most, then latency, then CPU.
score = "(100 - error_rate*5)*0.5 + (200 - response_time_ms)*0.3 + (100 - cpu_utilization)*0.2"
min_score = 50
progress_deadline = "30s"

# Every new replica must answer this before it gets any traffic.
[[services.web.update.probes]]
path = "/"
body_contains = "hello"
"#,
        version = version.name,
        exe = quote(&settings.exe.display().to_string()),
        port = settings.port,
        interval = settings.interval.as_millis(),
    )
}

/// Writes the spec of `version` into `dir` and loads it back through the real parser.
pub fn write_and_load(
    dir: &Path,
    settings: &Settings<'_>,
    version: &Version<'_>,
) -> anyhow::Result<(PathBuf, AppSpec)> {
    let path = dir.join(format!("{}.toml", version.name));
    std::fs::write(&path, text(settings, version)).with_context(|| format!("cannot write {}", path.display()))?;
    let spec = zenith_spec::load(&path).map_err(|e| anyhow!("the demo's own spec is invalid (a bug): {e}"))?;
    Ok((path, spec))
}

/// A TOML basic string. JSON's string escapes are a subset of TOML's, so serde_json quotes a
/// path with backslashes or quotes correctly.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_parses_as_a_canary() {
        let dir = std::env::temp_dir();
        let settings = Settings {
            exe: Path::new("/opt/with \"quotes\"/zenith"),
            port: 18080,
            interval: Duration::from_secs(2),
        };
        for env in [&[][..], &[("DEMO_ERROR_RATE", "30")], &[("DEMO_LATENCY_MS", "400")]] {
            let version = Version { name: "v3", env };
            let text = text(&settings, &version);
            let spec = zenith_spec::parse(&text, &dir.join("v3.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let web = &spec.services[0];
            assert_eq!(web.command[0], "/opt/with \"quotes\"/zenith");
            assert_eq!(web.env.get("DEMO_VERSION").map(String::as_str), Some("v3"));
            for (k, v) in env {
                assert_eq!(web.env.get(*k).map(String::as_str), Some(*v));
            }
            assert!(matches!(web.update, zenith_spec::UpdateStrategy::Canary(_)));
        }
    }
}
