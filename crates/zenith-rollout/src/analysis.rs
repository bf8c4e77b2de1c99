//! Judging one check of a progressive rollout: what the router measured for the new revision
//! over the check's window, held against the spec's thresholds. Pure: the same sample and
//! thresholds always give the same verdict, so every rule is tested without a clock or a
//! socket.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zenith_router::RevisionMetrics;
use zenith_spec::Analysis;
use zenith_spec::formula::Formula;

/// What one revision did over one window, in the units the thresholds and the score formula
/// use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub requests: u64,
    /// Requests answered 5xx, including the router's own 502s when no replica answered.
    pub errors: u64,
    pub window_secs: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Average CPU use of the revision's replicas over the window, percent of one core each;
    /// `None` when the runtime could not measure it.
    pub cpu_percent: Option<f64>,
    /// Ready replicas of the revision when the sample was taken.
    pub replicas: u32,
}

impl Sample {
    /// A window of router metrics (`router.snapshot().since(&base)`) for one revision.
    pub fn from_metrics(m: &RevisionMetrics, window: Duration, cpu_percent: Option<f64>, replicas: u32) -> Sample {
        Sample {
            requests: m.requests,
            errors: m.status_5xx,
            window_secs: window.as_secs_f64(),
            mean_ms: if m.requests == 0 {
                0.0
            } else {
                m.latency_sum_ms / m.requests as f64
            },
            p50_ms: m.latency_p50_ms,
            p95_ms: m.latency_p95_ms,
            p99_ms: m.latency_p99_ms,
            cpu_percent,
            replicas,
        }
    }

    /// Percent of requests that failed; `None` before the first request.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 * 100.0 / self.requests as f64)
    }

    pub fn request_rate(&self) -> f64 {
        if self.window_secs > 0.0 {
            self.requests as f64 / self.window_secs
        } else {
            0.0
        }
    }

    /// The value of a score-formula variable (see `zenith_spec::SCORE_VARIABLES`); `None` when
    /// it was not measured (no request yet, no CPU figure).
    pub fn variable(&self, name: &str) -> Option<f64> {
        let served = self.requests > 0;
        match name {
            "error_rate" => self.error_rate(),
            "success_rate" => self.error_rate().map(|e| 100.0 - e),
            "request_rate" => Some(self.request_rate()),
            "requests" => Some(self.requests as f64),
            "response_time_ms" => served.then_some(self.mean_ms),
            "p50_ms" => served.then_some(self.p50_ms),
            "p95_ms" => served.then_some(self.p95_ms),
            "p99_ms" => served.then_some(self.p99_ms),
            "cpu_utilization" => self.cpu_percent,
            "replicas" => Some(f64::from(self.replicas)),
            _ => None,
        }
    }

    /// The health score, when the spec has a formula; `Err` when a variable it uses was not
    /// measured or the value is not a finite number.
    pub fn score(&self, analysis: &Analysis) -> Option<Result<f64, String>> {
        let score = analysis.score.as_ref()?;
        Some(Formula::parse(&score.formula).and_then(|f| f.eval(|name| self.variable(name))))
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Verdict {
    Pass,
    /// A threshold did not hold: `metric` measured `value` against `threshold`.
    Fail {
        metric: String,
        value: f64,
        threshold: f64,
        reason: String,
    },
    /// Not enough data for a verdict yet (too few requests, a metric not measured).
    Wait {
        reason: String,
    },
}

impl Verdict {
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Pass => "passed",
            Verdict::Fail { reason, .. } | Verdict::Wait { reason } => reason,
        }
    }
}

/// Holds `sample` against the thresholds. All failing thresholds are named in the reason;
/// the first one (error rate, then p95, p99, score) is the verdict's metric.
pub fn judge(analysis: &Analysis, sample: &Sample) -> (Verdict, Option<f64>) {
    if sample.requests < analysis.min_requests {
        let reason = format!(
            "waiting for traffic: {} of {} requests needed for a verdict",
            sample.requests, analysis.min_requests
        );
        return (Verdict::Wait { reason }, None);
    }
    let mut failed: Vec<(String, f64, f64, String)> = Vec::new();
    let error_rate = sample.error_rate().unwrap_or(0.0);
    if error_rate > analysis.max_error_rate {
        failed.push((
            "error_rate".into(),
            error_rate,
            analysis.max_error_rate,
            format!(
                "error rate {:.1}% > max {}% ({} of {} requests failed)",
                error_rate, analysis.max_error_rate, sample.errors, sample.requests
            ),
        ));
    }
    for (metric, value, max) in [
        ("p95_ms", sample.p95_ms, analysis.max_p95),
        ("p99_ms", sample.p99_ms, analysis.max_p99),
    ] {
        if let Some(max) = max {
            let max_ms = max.as_secs_f64() * 1000.0;
            if value > max_ms {
                let name = &metric[..3];
                failed.push((
                    metric.into(),
                    value,
                    max_ms,
                    format!("{name} latency {value:.0} ms > max {max_ms:.0} ms"),
                ));
            }
        }
    }
    let mut score = None;
    if let Some(spec) = &analysis.score {
        let formula = match Formula::parse(&spec.formula) {
            Ok(f) => f,
            Err(why) => {
                return (
                    Verdict::Wait {
                        reason: format!("the score formula is invalid: {why}"),
                    },
                    None,
                );
            }
        };
        let missing: Vec<String> = formula
            .variables()
            .into_iter()
            .filter(|v| sample.variable(v).is_none())
            .collect();
        if !missing.is_empty() {
            // Not measured yet is no evidence either way; other thresholds still count.
            if failed.is_empty() {
                let reason = format!("the score needs {}, not measured yet", missing.join(", "));
                return (Verdict::Wait { reason }, None);
            }
        } else {
            match formula.eval(|name| sample.variable(name)) {
                Ok(value) => {
                    score = Some(value);
                    if value < spec.min {
                        failed.push((
                            "score".into(),
                            value,
                            spec.min,
                            format!("score {value:.1} < min {}", spec.min),
                        ));
                    }
                }
                Err(why) => failed.push((
                    "score".into(),
                    f64::NAN,
                    spec.min,
                    format!("the score cannot be computed: {why}"),
                )),
            }
        }
    }
    let Some((metric, value, threshold, _)) = failed.first().cloned() else {
        return (Verdict::Pass, score);
    };
    let reason = failed.iter().map(|f| f.3.as_str()).collect::<Vec<_>>().join("; ");
    let verdict = Verdict::Fail {
        metric,
        value,
        threshold,
        reason,
    };
    (verdict, score)
}

#[cfg(test)]
pub(crate) mod tests;
