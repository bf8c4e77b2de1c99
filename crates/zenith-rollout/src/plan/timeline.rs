//! The timeline of a canary, blue-green or forced update, as `zenith deploy --dry-run` prints
//! it: each step with its weight, the checks that judge it and what ends it. It describes
//! what the [`crate::progressive`] machine will do; the two are kept in step by tests.

use zenith_spec::{Analysis, OnQuiet, Pause, ServiceSpec, SmokeProbe, UpdateStrategy};

use crate::progressive::replicas_for;

/// The lines of the timeline; `None` for a rolling update.
pub(super) fn steps(
    before: &ServiceSpec,
    svc: &ServiceSpec,
    from: Option<u64>,
    to: u64,
    forced: bool,
) -> Option<Vec<String>> {
    let old = match from {
        Some(n) => format!("r{n}"),
        None => "the old revision".to_string(),
    };
    let n = svc.replicas;
    let mut out = Vec::new();
    match &svc.update {
        UpdateStrategy::Rolling(_) => return None,
        _ if forced => {
            out.push(format!(
                "forced: start {n} replica(s) of r{to} beside {old}'s {} and wait until healthy (no steps, no analysis)",
                before.replicas
            ));
            out.push(format!("all traffic to r{to} at once; drain and stop {old}"));
        }
        UpdateStrategy::Canary(c) => {
            let first = c.steps.first().map_or(100, |s| s.weight);
            out.push(format!(
                "start {} replica(s) of r{to} beside {old}'s {} (no traffic yet) and wait until healthy (deadline {})",
                replicas_for(n, first),
                before.replicas,
                secs(c.progress_deadline)
            ));
            out.extend(smoke(&c.probes));
            let mut replicas = replicas_for(n, first);
            for (i, step) in c.steps.iter().enumerate() {
                let need = replicas_for(n, step.weight);
                let scale = if need > replicas {
                    format!(" (after scaling r{to} to {need} replica(s))")
                } else {
                    String::new()
                };
                replicas = replicas.max(need);
                let hold = match step.pause {
                    None => String::new(),
                    Some(Pause::For(d)) => format!("; hold at least {}", secs(d)),
                    Some(Pause::Manual) => "; then hold until `zenith rollout promote`".to_string(),
                };
                out.push(format!(
                    "step {}/{}: {}% of traffic to r{to}{scale}; {} passing check(s) to go on{hold}",
                    i + 1,
                    c.steps.len(),
                    step.weight,
                    c.analysis.success_count
                ));
            }
            if c.steps.last().is_none_or(|s| s.weight < 100) {
                out.push(format!("scale r{to} to {n} replica(s), then 100% of traffic to it"));
            }
            out.push(format!("drain and stop {old}'s {} replica(s)", before.replicas));
            out.push(format!("checks: {}", checks(&c.analysis)));
            out.push(format!(
                "abort on failed check {}: traffic back to {old} at once, r{to} stopped",
                c.analysis.failure_limit
            ));
            out.push(format!(
                "clients keep the revision they first got (cookie) until the rollout ends; \
                 `X-Zenith-Version: canary` reaches r{to} at any step"
            ));
        }
        UpdateStrategy::BlueGreen(b) => {
            out.push(format!(
                "start {n} replica(s) of r{to} beside {old}'s {} (no traffic; `X-Zenith-Version: canary` reaches them) \
                 and wait until healthy (deadline {})",
                before.replicas,
                secs(b.progress_deadline)
            ));
            out.extend(smoke(&b.probes));
            if !b.auto_promote {
                out.push("wait for `zenith rollout promote`".to_string());
            }
            out.push(format!("switch all traffic to r{to} at once"));
            out.push(format!(
                "keep {old} warm for {}: checks {}; failed check {} (or `zenith rollout abort`) switches back at once",
                secs(b.scale_down_delay),
                checks(&b.analysis),
                b.analysis.failure_limit
            ));
            out.push(format!("drain and stop {old}'s {} replica(s)", before.replicas));
        }
    }
    Some(out)
}

fn smoke(probes: &[SmokeProbe]) -> Option<String> {
    if probes.is_empty() {
        return None;
    }
    let tests: Vec<String> = probes
        .iter()
        .map(|p| {
            let status = p.status.map_or("2xx".to_string(), |s| s.to_string());
            let body = p
                .body_contains
                .as_ref()
                .map(|b| format!(" containing {b:?}"))
                .unwrap_or_default();
            format!("GET {} → {status}{body}", p.path)
        })
        .collect();
    Some(format!("smoke tests on every new replica: {}", tests.join(", ")))
}

fn checks(a: &Analysis) -> String {
    let mut rules = vec![format!("error rate ≤ {}%", a.max_error_rate)];
    if let Some(d) = a.max_p95 {
        rules.push(format!("p95 ≤ {} ms", d.as_millis()));
    }
    if let Some(d) = a.max_p99 {
        rules.push(format!("p99 ≤ {} ms", d.as_millis()));
    }
    if let Some(s) = &a.score {
        rules.push(format!("score ≥ {} ({})", s.min, s.formula));
    }
    let quiet = match a.on_quiet {
        OnQuiet::Pass => "passes",
        OnQuiet::Fail => "fails",
        OnQuiet::Pause => "pauses the rollout",
    };
    format!(
        "every {}: {}; a verdict needs {} requests (a check without them for {} {quiet})",
        secs(a.interval),
        rules.join(", "),
        a.min_requests,
        secs(a.quiet_timeout)
    )
}

fn secs(d: std::time::Duration) -> String {
    humantime_like(d)
}

/// `90s` → `1m 30s`; whole seconds are all a timeline needs.
fn humantime_like(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, _) if d.subsec_millis() > 0 => format!("{}ms", d.as_millis()),
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}
