//! Validation of what canary and blue-green share: the analysis that judges the new revision
//! from the router's metrics (thresholds, the score formula, how long to wait for traffic) and
//! the smoke probes every new replica must pass before it gets any. The score formula is
//! parsed here, with the same parser the rollout engine evaluates it with, so a formula that
//! passes `zenith spec check` cannot fail to parse in the middle of a rollout.

use std::time::Duration;

use super::Validator;
use crate::config::{SmokeProbeConfig, UpdateConfig};
use crate::formula::Formula;
use crate::model::{Analysis, OnQuiet, Score, SmokeProbe};

impl Validator<'_> {
    pub(super) fn analysis(&mut self, service: &str, u: &UpdateConfig) -> Analysis {
        let at = |field: &'static str| ["services", service, "update", field];
        let max_error_rate = match u.max_error_rate {
            None => 5.0,
            Some(r) if (0.0..=100.0).contains(&r) => r,
            Some(r) => {
                self.error(
                    &at("max_error_rate"),
                    format!("must be a percentage between 0 and 100, found {r}"),
                );
                5.0
            }
        };
        let score = self.score(service, u);
        let min_requests = self.count(
            u.min_requests,
            50,
            1,
            &at("min_requests"),
            " (a check needs requests to judge)",
        );
        Analysis {
            interval: self.positive(u.interval, Duration::from_secs(10), &at("interval")),
            min_requests: u64::from(min_requests),
            max_error_rate,
            max_p95: u.max_p95.map(|d| self.positive(Some(d), d.0, &at("max_p95"))),
            max_p99: u.max_p99.map(|d| self.positive(Some(d), d.0, &at("max_p99"))),
            score,
            failure_limit: self.count(
                u.failure_limit,
                1,
                1,
                &at("failure_limit"),
                " (1 aborts on the first failed check)",
            ),
            success_count: self.count(u.success_count, 1, 1, &at("success_count"), ""),
            quiet_timeout: self.positive(u.quiet_timeout, Duration::from_secs(300), &at("quiet_timeout")),
            on_quiet: u.on_quiet.unwrap_or(OnQuiet::Pause),
        }
    }

    /// `score` and `min_score` go together: a score without a threshold judges nothing, and a
    /// threshold without a score would silently never apply.
    fn score(&mut self, service: &str, u: &UpdateConfig) -> Option<Score> {
        let at = |field: &'static str| ["services", service, "update", field];
        let Some(formula) = &u.score else {
            if u.min_score.is_some() {
                self.error(
                    &at("min_score"),
                    "has no effect without a score; add score = \"FORMULA\" or remove min_score",
                );
            }
            return None;
        };
        if let Err(e) = Formula::parse(formula) {
            self.error(&at("score"), e);
        }
        let min = match u.min_score {
            Some(m) if m.is_finite() => m,
            Some(m) => {
                self.error(&at("min_score"), format!("must be a finite number, found {m}"));
                0.0
            }
            None => {
                self.error(
                    &at("min_score"),
                    "missing: a score needs the value a check must reach; add min_score = 60 \
                     (a check whose score is below it fails)",
                );
                0.0
            }
        };
        Some(Score {
            formula: formula.clone(),
            min,
        })
    }

    pub(super) fn smoke_probes(&mut self, service: &str, probes: &[SmokeProbeConfig]) -> Vec<SmokeProbe> {
        let mut out = Vec::new();
        for (i, p) in probes.iter().enumerate() {
            let index = format!("[{i}]");
            let at = |field: &'static str| ["services", service, "update", "probes", index.as_str(), field];
            if !p.path.starts_with('/') {
                self.error(
                    &at("path"),
                    format!("\"{}\" is not a URL path; write it as \"/\" or \"/health\"", p.path),
                );
            }
            let status = p.status.and_then(|s| match u16::try_from(s) {
                Ok(s) if (100..=599).contains(&s) => Some(s),
                _ => {
                    self.error(
                        &at("status"),
                        format!(
                            "must be an HTTP status between 100 and 599, found {s}; leave it out to accept any 2xx"
                        ),
                    );
                    None
                }
            });
            if p.body_contains.as_deref() == Some("") {
                self.error(
                    &at("body_contains"),
                    "is empty, so every body would contain it; give the text to look for, or remove body_contains",
                );
            }
            out.push(SmokeProbe {
                path: p.path.clone(),
                status,
                body_contains: p.body_contains.clone(),
                timeout: self.positive(p.timeout, Duration::from_secs(2), &at("timeout")),
            });
        }
        out
    }
}
