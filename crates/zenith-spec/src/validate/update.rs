//! Validation of a service's `update` table: which strategy, the keys that strategy takes, and
//! the canary's steps. The file keeps every strategy's keys in one flat table (as Flagger and
//! Argo Rollouts users expect to write them), so a key set under the wrong strategy is checked
//! here and the message names the strategy that would take it. The analysis keys and smoke
//! probes shared by canary and blue-green are in `validate/analysis.rs`.

use std::time::Duration;

use super::Validator;
use crate::config::{PauseConfig, StepConfig, UpdateConfig};
use crate::model::{BlueGreen, Canary, CanaryStep, Pause, Rolling, UpdateOrder, UpdateStrategy};

/// The canary steps when the file gives none: small first, judged at every step.
pub(crate) const DEFAULT_STEPS: [u32; 5] = [10, 25, 50, 75, 100];

const ROLLING: &[&str] = &["rolling"];
const CANARY: &[&str] = &["canary"];
const BLUE_GREEN: &[&str] = &["blue-green"];
const TRAFFIC: &[&str] = &["canary", "blue-green"];
const ALL: &[&str] = &["rolling", "canary", "blue-green"];

/// The keys of the table that are set, each with the strategies that take it.
fn keys_set(u: &UpdateConfig) -> Vec<(&'static str, &'static [&'static str])> {
    [
        ("max_surge", u.max_surge.is_some(), ROLLING),
        ("max_unavailable", u.max_unavailable.is_some(), ROLLING),
        ("order", u.order.is_some(), ROLLING),
        ("steps", u.steps.is_some(), CANARY),
        ("scale_down_delay", u.scale_down_delay.is_some(), BLUE_GREEN),
        ("auto_promote", u.auto_promote.is_some(), BLUE_GREEN),
        ("interval", u.interval.is_some(), TRAFFIC),
        ("min_requests", u.min_requests.is_some(), TRAFFIC),
        ("max_error_rate", u.max_error_rate.is_some(), TRAFFIC),
        ("max_p95", u.max_p95.is_some(), TRAFFIC),
        ("max_p99", u.max_p99.is_some(), TRAFFIC),
        ("failure_limit", u.failure_limit.is_some(), TRAFFIC),
        ("success_count", u.success_count.is_some(), TRAFFIC),
        ("quiet_timeout", u.quiet_timeout.is_some(), TRAFFIC),
        ("on_quiet", u.on_quiet.is_some(), TRAFFIC),
        ("score", u.score.is_some(), TRAFFIC),
        ("min_score", u.min_score.is_some(), TRAFFIC),
        ("probes", !u.probes.is_empty(), TRAFFIC),
    ]
    .into_iter()
    .filter(|(_, set, _)| *set)
    .map(|(key, _, takes)| (key, takes))
    .collect()
}

/// `"canary"` or `"canary" or "blue-green"`, for messages.
fn quoted(strategies: &[&str]) -> String {
    let quoted: Vec<String> = strategies.iter().map(|s| format!("\"{s}\"")).collect();
    quoted.join(" or ")
}

impl Validator<'_> {
    /// `has_port`: canary and blue-green shift the traffic of the service's router port, so
    /// they are refused for a service without one.
    pub(super) fn update(&mut self, service: &str, u: Option<&UpdateConfig>, has_port: bool) -> UpdateStrategy {
        let u = u.cloned().unwrap_or_default();
        let at = |field: &'static str| ["services", service, "update", field];
        let strategy = u.strategy.as_deref().unwrap_or("rolling");
        if !ALL.contains(&strategy) {
            self.error(
                &at("strategy"),
                format!(
                    "unknown strategy \"{strategy}\"; use \"rolling\" (replace replicas a few at a time), \
                     \"canary\" (move traffic step by step, judged by metrics) or \"blue-green\" \
                     (start a full new set, then switch all traffic at once)"
                ),
            );
            // The keys cannot be judged against a strategy that does not exist.
            return UpdateStrategy::Rolling(self.rolling(service, &UpdateConfig::default(), Duration::from_secs(60)));
        }
        for (key, takes) in keys_set(&u) {
            if !takes.contains(&strategy) {
                let only = if takes.len() == 1 { " only" } else { "" };
                self.error(
                    &at(key),
                    format!(
                        "{key} is a setting of strategy = {}{only}, not of \"{strategy}\"; remove it, \
                         or set strategy = {}",
                        quoted(takes),
                        quoted(takes)
                    ),
                );
            }
        }
        if strategy != "rolling" && !has_port {
            self.error(
                &["services", service, "port"],
                format!(
                    "missing: strategy = \"{strategy}\" moves the traffic of the service's port from the old \
                     revision to the new one, so the service needs a port; set port = 8080 (any free port), \
                     or use strategy = \"rolling\" for a service that serves no HTTP"
                ),
            );
        }
        let progress_deadline = self.positive(u.progress_deadline, Duration::from_secs(60), &at("progress_deadline"));
        match strategy {
            "canary" => UpdateStrategy::Canary(Canary {
                steps: self.steps(service, u.steps.as_deref()),
                analysis: self.analysis(service, &u),
                probes: self.smoke_probes(service, &u.probes),
                progress_deadline,
            }),
            "blue-green" => UpdateStrategy::BlueGreen(BlueGreen {
                analysis: self.analysis(service, &u),
                probes: self.smoke_probes(service, &u.probes),
                // Zero is allowed: it trades the instant switch back for freed resources.
                scale_down_delay: u.scale_down_delay.map_or(Duration::from_secs(30), |d| d.0),
                auto_promote: u.auto_promote.unwrap_or(true),
                progress_deadline,
            }),
            _ => UpdateStrategy::Rolling(self.rolling(service, &u, progress_deadline)),
        }
    }

    fn rolling(&mut self, service: &str, u: &UpdateConfig, progress_deadline: Duration) -> Rolling {
        let at = |field: &'static str| ["services", service, "update", field];
        let max_surge = self.count(u.max_surge, 1, 0, &at("max_surge"), "");
        let max_unavailable = self.count(u.max_unavailable, 0, 0, &at("max_unavailable"), "");
        if max_surge == 0 && max_unavailable == 0 {
            let field = if u.max_surge.is_some() {
                "max_surge"
            } else {
                "max_unavailable"
            };
            self.error(
                &at(field),
                "max_surge and max_unavailable are both 0, so an update could never replace a replica; \
                 set max_surge = 1 (start a new replica first) or max_unavailable = 1 (stop an old one first)",
            );
        }
        Rolling {
            max_surge,
            max_unavailable,
            order: u.order.unwrap_or(UpdateOrder::StartFirst),
            progress_deadline,
        }
    }

    fn steps(&mut self, service: &str, steps: Option<&[StepConfig]>) -> Vec<CanaryStep> {
        let Some(steps) = steps else {
            return DEFAULT_STEPS
                .iter()
                .map(|&weight| CanaryStep { weight, pause: None })
                .collect();
        };
        if steps.is_empty() {
            self.error(
                &["services", service, "update", "steps"],
                "is empty; give at least one step, e.g. steps = [10, 50, 100], or leave steps out for \
                 [10, 25, 50, 75, 100]",
            );
        }
        let mut out: Vec<CanaryStep> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let index = format!("[{i}]");
            let at = ["services", service, "update", "steps", index.as_str()];
            let previous = out.last().map(|s| s.weight);
            let (weight, weight_at, pause) = match step {
                StepConfig::Weight(w) => (Some(*w), at.to_vec(), None),
                StepConfig::Table { weight, pause } => {
                    if weight.is_none() && pause.is_none() {
                        self.error(
                            &at,
                            "is an empty step; give it weight = N, pause = \"2m\" (or \"manual\"), or both",
                        );
                    }
                    (*weight, [&at[..], &["weight"]].concat(), *pause)
                }
            };
            let weight = match (weight, previous) {
                (Some(w), _) if (0..=100).contains(&w) => w as u32,
                (Some(w), _) => {
                    self.error(
                        &weight_at,
                        format!(
                            "weight must be between 0 and 100 (percent of requests for the new revision), found {w}"
                        ),
                    );
                    // Clamped, so that the next step is not also reported as decreasing.
                    w.clamp(0, 100) as u32
                }
                (None, Some(p)) => p,
                (None, None) => {
                    self.error(
                        &at,
                        "the first step has no previous step to take its weight from; give it one, \
                         e.g. { weight = 10, pause = \"manual\" }",
                    );
                    0
                }
            };
            if let Some(p) = previous.filter(|p| weight < *p) {
                self.error(
                    &weight_at,
                    format!(
                        "weight {weight} is below the previous step's {p}; weights never decrease \
                         (traffic goes back to the old revision only when the rollout is aborted)"
                    ),
                );
            }
            let pause = pause.map(|p| match p {
                PauseConfig::Manual => Pause::Manual,
                PauseConfig::For(d) => {
                    if d.0.is_zero() {
                        self.error(
                            &[&at[..], &["pause"]].concat(),
                            "must be longer than 0s; leave pause out to move on as soon as the step's checks pass",
                        );
                    }
                    Pause::For(d.0)
                }
            });
            out.push(CanaryStep { weight, pause });
        }
        out
    }
}
