//! Validation of a service's `health` and `restart` tables, with their defaults. The defaults
//! follow Docker Swarm where Swarm has one (restart delay 5 s) so that imported compose files
//! behave as they did. The `update` table has its own module, `validate/update.rs`.

use std::time::Duration;

use super::Validator;
use crate::config::{HealthConfig, RestartConfig};
use crate::model::{HealthCheck, Probe, RestartCondition, RestartPolicy};

impl Validator<'_> {
    pub(super) fn health(&mut self, service: &str, h: &HealthConfig) -> HealthCheck {
        let at = |field: &'static str| ["services", service, "health", field];
        let mut probes = Vec::new();
        if let Some(path) = &h.http {
            if !path.starts_with('/') {
                self.error(
                    &at("http"),
                    format!("\"{path}\" is not a URL path; write it as \"/health\""),
                );
            }
            probes.push(("http", Probe::Http { path: path.clone() }));
        }
        if h.tcp == Some(true) {
            probes.push(("tcp", Probe::Tcp));
        }
        if let Some(cmd) = &h.exec {
            let command = self.command(cmd, &at("exec"));
            probes.push(("exec", Probe::Exec { command }));
        }
        if h.image == Some(true) {
            probes.push(("image", Probe::Image));
        }
        let probe = match probes.len() {
            1 => probes.remove(0).1,
            0 => {
                self.error(
                    &["services", service, "health"],
                    "no probe: set exactly one of http = \"/path\", tcp = true, exec = \"command\" or (containers) image = true",
                );
                Probe::Tcp
            }
            _ => {
                let kinds: Vec<&str> = probes.iter().map(|p| p.0).collect();
                self.error(
                    &at(kinds[1]),
                    format!("more than one probe ({}); keep exactly one of them", kinds.join(", ")),
                );
                probes.remove(0).1
            }
        };
        HealthCheck {
            probe,
            interval: self.positive(h.interval, Duration::from_secs(5), &at("interval")),
            timeout: self.positive(h.timeout, Duration::from_secs(2), &at("timeout")),
            retries: self.count(h.retries, 3, 1, &at("retries"), ""),
            start_period: h.start_period.map_or(Duration::ZERO, |d| d.0),
        }
    }

    pub(super) fn restart(&mut self, service: &str, r: Option<&RestartConfig>) -> RestartPolicy {
        let r = r.cloned().unwrap_or_default();
        let at = |field: &'static str| ["services", service, "restart", field];
        let max_attempts = r.max_attempts.map(|n| {
            self.count(
                Some(n),
                1,
                1,
                &at("max_attempts"),
                " (to never restart, set condition = \"none\")",
            )
        });
        RestartPolicy {
            condition: r.condition.unwrap_or(RestartCondition::Any),
            delay: r.delay.map_or(Duration::from_secs(5), |d| d.0),
            max_attempts,
            window: r.window.map(|w| self.positive(Some(w), w.0, &at("window"))),
        }
    }
}
