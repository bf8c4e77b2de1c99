//! A compose service's `deploy:` (replicas, restart_policy, update_config) and `healthcheck:`.
//! Where compose and zenith differ in defaults, the converted spec spells compose's out (a
//! healthcheck's 30 s interval, update_config's stop-first order), so the app behaves as it did.

use serde_norway::Value;

use super::Ctx;
use super::service::{command, duration_nonzero};
use super::values::scalar;
use crate::config::{CommandLine, HealthConfig, HumanDuration, RestartConfig, ServiceConfig, UpdateConfig};
use crate::model::{RestartCondition, UpdateOrder};

/// Converts `deploy:` into `cfg`; returns `update_config`, which needs the final replica count
/// and is converted last.
pub(super) fn deploy<'v>(
    cx: &mut Ctx<'_>,
    at: &[&str],
    value: &'v Value,
    cfg: &mut ServiceConfig,
) -> Option<&'v Value> {
    let mut update = None;
    for (key, value) in value.as_mapping().into_iter().flatten() {
        let key = scalar(key).unwrap_or_default();
        let at = [at, &[key.as_str()]].concat();
        match key.as_str() {
            "replicas" => match value.as_i64().filter(|n| *n >= 0) {
                Some(n) => cfg.replicas = Some(n),
                None => cx.warn(&at, "not converted: expected a number of replicas"),
            },
            "mode" if scalar(value).as_deref() == Some("replicated") => {}
            "mode" => cx.warn(
                &at,
                "not converted: zenith runs replicas on one host; set replicas instead",
            ),
            "restart_policy" => cfg.restart = Some(restart_policy(cx, &at, value)),
            "update_config" => update = Some(value),
            "placement" => cx.warn(
                &at,
                "not converted: zenith runs on one host, so there is nothing to place",
            ),
            "resources" => cx.warn(&at, "not converted: zenith sets no resource limits yet"),
            _ => cx.warn(&at, "not converted: zenith has no equivalent yet"),
        }
    }
    update
}

fn restart_policy(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> RestartConfig {
    let mut r = RestartConfig::default();
    for (key, value) in value.as_mapping().into_iter().flatten() {
        let key = scalar(key).unwrap_or_default();
        let at = [at, &[key.as_str()]].concat();
        match key.as_str() {
            "condition" => match scalar(value).as_deref() {
                Some("any") => r.condition = Some(RestartCondition::Any),
                Some("on-failure") => r.condition = Some(RestartCondition::OnFailure),
                Some("none") => r.condition = Some(RestartCondition::None),
                _ => cx.warn(&at, "not converted: expected none, on-failure or any"),
            },
            "delay" => r.delay = duration_nonzero(cx, &at, value),
            // 0 means unlimited in compose, which is zenith's default.
            "max_attempts" => r.max_attempts = value.as_i64().filter(|n| *n > 0),
            // 0 means "decide at once" in Swarm; zenith counts for ever without a window.
            "window" => r.window = duration_nonzero(cx, &at, value),
            _ => cx.warn(&at, "not converted: zenith has no equivalent yet"),
        }
    }
    r
}

/// `parallelism` is how many replicas change at once: with start-first that many extra
/// replicas start (max_surge), with stop-first that many stop first (max_unavailable).
pub(super) fn update_config(cx: &mut Ctx<'_>, at: &[&str], value: &Value, replicas: Option<i64>) -> UpdateConfig {
    let mut parallelism = 1;
    // Compose's default order; zenith's own default is start-first.
    let mut order = UpdateOrder::StopFirst;
    for (key, value) in value.as_mapping().into_iter().flatten() {
        let key = scalar(key).unwrap_or_default();
        let at = [at, &[key.as_str()]].concat();
        match key.as_str() {
            "parallelism" => match value.as_i64().filter(|n| *n >= 0) {
                Some(0) => {
                    parallelism = replicas.unwrap_or(1).max(1);
                    cx.warn(&at, format!("0 (all at once) became {parallelism}, the replica count"));
                }
                Some(n) => parallelism = n,
                None => cx.warn(&at, "not converted: expected a number"),
            },
            "order" => match scalar(value).as_deref() {
                Some("start-first") => order = UpdateOrder::StartFirst,
                Some("stop-first") => order = UpdateOrder::StopFirst,
                _ => cx.warn(&at, "not converted: expected start-first or stop-first"),
            },
            "delay" => cx.warn(
                &at,
                "not converted: zenith moves to the next replica as soon as the new one is healthy, with no pause",
            ),
            "failure_action" if scalar(value).as_deref() == Some("rollback") => {}
            "failure_action" => cx.warn(&at, "not converted: zenith always rolls back an update that fails"),
            "monitor" => cx.warn(
                &at,
                "not converted: zenith judges each new replica by its health check within update.progress_deadline",
            ),
            _ => cx.warn(&at, "not converted: zenith has no equivalent yet"),
        }
    }
    let (max_surge, max_unavailable) = match order {
        UpdateOrder::StartFirst => (parallelism, 0),
        UpdateOrder::StopFirst => (0, parallelism),
    };
    UpdateConfig {
        strategy: None,
        max_surge: Some(max_surge),
        max_unavailable: Some(max_unavailable),
        order: Some(order),
        ..Default::default()
    }
}

/// `test:` as `["CMD", …]`, `["CMD-SHELL", "…"]`, `["NONE"]` or a string (a shell command).
pub(super) fn healthcheck(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> Option<HealthConfig> {
    let map = value.as_mapping()?;
    if map.get("disable").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let test_at = [at, &["test"]].concat();
    let exec = match map.get("test") {
        None => {
            cx.warn(
                at,
                "no test: the image's own HEALTHCHECK is not visible to zenith; add a test",
            );
            return None;
        }
        Some(Value::String(s)) => Some(CommandLine::Shell(s.clone())),
        Some(Value::Sequence(seq)) => {
            let words: Vec<String> = seq.iter().filter_map(scalar).collect();
            match words.split_first() {
                Some((first, rest)) if first == "CMD" => command(cx, &test_at, &Value::from(rest.to_vec())),
                Some((first, rest)) if first == "CMD-SHELL" => Some(CommandLine::Shell(rest.join(" "))),
                Some((first, _)) if first == "NONE" => return None,
                _ => {
                    cx.warn(&test_at, "not converted: expected CMD, CMD-SHELL or NONE first");
                    return None;
                }
            }
        }
        Some(_) => None,
    };
    let Some(exec) = exec.filter(|c| !c.is_empty()) else {
        cx.warn(&test_at, "not converted: the test has no command");
        return None;
    };
    let compose_default = Some(HumanDuration(std::time::Duration::from_secs(30)));
    let mut h = HealthConfig {
        exec: Some(exec),
        interval: compose_default,
        timeout: compose_default,
        ..Default::default()
    };
    for (key, value) in map {
        let key = scalar(key).unwrap_or_default();
        let at = [at, &[key.as_str()]].concat();
        match key.as_str() {
            "test" | "disable" => {}
            "interval" => h.interval = duration_nonzero(cx, &at, value).or(h.interval),
            "timeout" => h.timeout = duration_nonzero(cx, &at, value).or(h.timeout),
            "start_period" => h.start_period = duration_nonzero(cx, &at, value),
            "retries" => h.retries = value.as_i64().filter(|n| *n > 0),
            _ => cx.warn(&at, "not converted: zenith has no equivalent yet"),
        }
    }
    Some(h)
}
