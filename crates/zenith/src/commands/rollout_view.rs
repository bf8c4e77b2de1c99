//! How a progressive rollout reads in a terminal: per service the stage, step, weight and time
//! in the step; per version the live request rate, error rate, latency percentiles and score
//! next to the thresholds; then the verdict history. Also the line-by-line form that `deploy`
//! and `demo` print while they follow a rollout. Shared, and pure.

use std::fmt::Write;

use zenith_rollout::analysis::{Sample, Verdict};
use zenith_rollout::progressive::Stage;
use zenith_rollout::{RolloutStatus, ServiceRollout};

/// Verdicts shown per service (the newest).
const CHECKS_SHOWN: usize = 8;

pub fn render(r: &RolloutStatus, now_ms: i64) -> String {
    let mut out = String::new();
    for svc in &r.services {
        service(&mut out, r, svc, now_ms);
    }
    out
}

fn service(out: &mut String, r: &RolloutStatus, s: &ServiceRollout, now_ms: i64) {
    let p = &s.progress;
    let held = ((now_ms - p.stage_since_ms).max(0) / 1000) as u64;
    let stage = match p.stage {
        Stage::Starting => "starting new replicas".to_string(),
        Stage::Probing => "smoke-testing new replicas".to_string(),
        Stage::Analysing => format!("step {}/{}", p.step + 1, s.steps.len()),
        Stage::AwaitingPromotion => "waiting for `zenith rollout promote`".to_string(),
        Stage::Switched => match p.switch_until_ms {
            Some(t) => format!(
                "switched; r{} kept warm for {}s more",
                r.stable,
                ((t - now_ms).max(0) + 999) / 1000
            ),
            None => "switched".to_string(),
        },
        Stage::Promoting => "promoting to full size".to_string(),
        Stage::Done => "complete".to_string(),
        Stage::Aborted => "aborted".to_string(),
    };
    let _ = writeln!(
        out,
        "{} ({}): {stage}, r{} at {}% of traffic, {held}s in this stage",
        s.service, p.strategy, r.revision, p.weight
    );
    if let Some(why) = &p.reason {
        let _ = writeln!(out, "  aborted: {why}");
    }
    if let Some(why) = &p.paused {
        let _ = writeln!(out, "  {why}");
    }
    if let Some(a) = &s.analysis {
        let _ = writeln!(
            out,
            "  failed checks {}/{} allowed, passing checks {}/{} needed",
            p.failures, a.failure_limit, p.successes, a.success_count
        );
    }
    let _ = writeln!(
        out,
        "  {:<14} {:>8} {:>7} {:>8} {:>8} {:>8} {:>7}",
        "VERSION", "REQ/S", "ERRORS", "P50", "P95", "P99", "SCORE"
    );
    for (rev, sample) in &s.live {
        let role = if *rev == r.revision { "new" } else { "stable" };
        let score = s
            .analysis
            .as_ref()
            .and_then(|a| sample.score(a))
            .and_then(Result::ok)
            .map_or("-".to_string(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "  {:<14} {:>8.1} {:>7} {:>8} {:>8} {:>8} {:>7}",
            format!("r{rev} ({role})"),
            sample.request_rate(),
            sample.error_rate().map_or("-".to_string(), |e| format!("{e:.1}%")),
            ms(sample, sample.p50_ms),
            ms(sample, sample.p95_ms),
            ms(sample, sample.p99_ms),
            score
        );
    }
    if let Some(a) = &s.analysis {
        let limit = |d: Option<std::time::Duration>| d.map_or("-".to_string(), |d| format!("≤{}ms", d.as_millis()));
        let _ = writeln!(
            out,
            "  {:<14} {:>8} {:>7} {:>8} {:>8} {:>8} {:>7}   (≥{} requests per verdict, every {}s)",
            "thresholds",
            "",
            format!("≤{}%", a.max_error_rate),
            "",
            limit(a.max_p95),
            limit(a.max_p99),
            a.score.as_ref().map_or("-".to_string(), |s| format!("≥{}", s.min)),
            a.min_requests,
            a.interval.as_secs_f64()
        );
    }
    let shown = p.checks.len().saturating_sub(CHECKS_SHOWN);
    if !p.checks.is_empty() {
        let _ = writeln!(out, "  checks:");
    }
    for c in &p.checks[shown..] {
        let at = jiff::Timestamp::from_millisecond(c.at_ms)
            .map(|t| t.strftime("%H:%M:%S").to_string())
            .unwrap_or_default();
        let (word, detail) = match &c.verdict {
            Verdict::Pass => (
                "pass",
                format!(
                    "{} requests, {:.1}% errors, p95 {:.0} ms",
                    c.sample.requests,
                    c.sample.error_rate().unwrap_or(0.0),
                    c.sample.p95_ms
                ),
            ),
            Verdict::Fail { reason, .. } => ("FAIL", reason.clone()),
            Verdict::Wait { reason } => ("wait", reason.clone()),
        };
        let score = match (&c.verdict, c.score) {
            (Verdict::Pass, Some(s)) => format!(", score {s:.1}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "    {at} step {} at {:>3}%  {word}  {detail}{score}",
            c.step + 1,
            c.weight
        );
    }
}

fn ms(s: &Sample, v: f64) -> String {
    if s.requests == 0 {
        "-".to_string()
    } else if v < 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.0}ms")
    }
}

/// What of a rollout was printed already, so each change is printed once.
#[derive(Default)]
pub struct RolloutSeen {
    stages: std::collections::HashMap<String, String>,
    checks: std::collections::HashMap<String, i64>,
}

/// New lines about a progressive rollout, for commands that follow one: each new verdict, then
/// the stage or weight change it caused.
pub fn rollout_lines(r: &zenith_rollout::RolloutStatus, seen: &mut RolloutSeen) -> Vec<String> {
    use zenith_rollout::analysis::Verdict;
    let mut lines = Vec::new();
    for s in &r.services {
        let p = &s.progress;
        let last = seen.checks.get(&s.service).copied().unwrap_or(i64::MIN);
        for c in p.checks.iter().filter(|c| c.at_ms > last) {
            let verdict = match &c.verdict {
                Verdict::Pass => format!(
                    "pass ({} requests, {:.1}% errors, p95 {:.1} ms{})",
                    c.sample.requests,
                    c.sample.error_rate().unwrap_or(0.0),
                    c.sample.p95_ms,
                    c.score.map(|s| format!(", score {s:.1}")).unwrap_or_default()
                ),
                Verdict::Fail { reason, .. } => format!("FAIL: {reason}"),
                Verdict::Wait { reason } => format!("wait: {reason}"),
            };
            lines.push(format!("{}: check at {}%: {verdict}", s.service, c.weight));
            seen.checks.insert(s.service.clone(), c.at_ms);
        }
        let stage = format!(
            "{:?} step {} weight {} target {}",
            p.stage, p.step, p.weight, p.target_weight
        );
        if seen.stages.get(&s.service) != Some(&stage) {
            let what = match p.stage {
                zenith_rollout::progressive::Stage::Analysing if p.weight != p.target_weight => format!(
                    "step {}/{}: starting r{} replicas to carry {}% (r{} keeps {}% until they are ready)",
                    p.step + 1,
                    s.steps.len(),
                    r.revision,
                    p.target_weight,
                    r.revision,
                    p.weight
                ),
                zenith_rollout::progressive::Stage::Analysing => {
                    format!(
                        "step {}/{}: r{} gets {}% of the traffic",
                        p.step + 1,
                        s.steps.len(),
                        r.revision,
                        p.weight
                    )
                }
                zenith_rollout::progressive::Stage::Aborted => format!(
                    "aborted: {}; all traffic is back on r{}",
                    p.reason.clone().unwrap_or_default(),
                    r.stable
                ),
                other => format!(
                    "{} ({}% of the traffic on r{})",
                    stage_words(other),
                    p.weight,
                    r.revision
                ),
            };
            lines.push(format!("{}: {what}", s.service));
            seen.stages.insert(s.service.clone(), stage);
        }
    }
    lines
}

fn stage_words(stage: zenith_rollout::progressive::Stage) -> &'static str {
    use zenith_rollout::progressive::Stage;
    match stage {
        Stage::Starting => "starting the new replicas",
        Stage::Probing => "smoke-testing the new replicas",
        Stage::Analysing => "analysing",
        Stage::AwaitingPromotion => "ready; waiting for `zenith rollout promote`",
        Stage::Switched => "switched, the old version kept warm",
        Stage::Promoting => "promoting to full size",
        Stage::Done => "complete",
        Stage::Aborted => "aborted",
    }
}
