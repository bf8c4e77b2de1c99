//! The errors of canary and blue-green update tables: each asserts the line, the field path
//! and the gist of the message, as `errors.rs` does for the rest of the file.

use crate::errors::{errors, one};

/// A service with a port and `strategy = "canary"` on line 9: the keys follow from line 10.
const CANARY: &str = "[app]\nname = \"shop\"\n\n[services.web]\ncommand = \"./web\"\nport = 8080\n\n[services.web.update]\nstrategy = \"canary\"\n";

fn canary(keys: &str) -> String {
    format!("{CANARY}{keys}")
}

fn strategy(name: &str, keys: &str) -> String {
    canary(keys).replace("strategy = \"canary\"", &format!("strategy = \"{name}\""))
}

#[test]
fn step_weights_stay_within_0_to_100() {
    let e = one(
        &canary("steps = [10, 150]\n"),
        10,
        "services.web.update.steps[1]",
        "between 0 and 100",
    );
    assert_eq!(e.column, 14);
    assert!(e.message.contains("found 150"), "{e}");
    one(
        &canary("steps = [{ weight = -1, pause = \"1m\" }]\n"),
        10,
        "services.web.update.steps[0].weight",
        "between 0 and 100",
    );
}

#[test]
fn step_weights_never_decrease() {
    let e = one(
        &canary("steps = [10, 50, 20, 30]\n"),
        10,
        "services.web.update.steps[2]",
        "weight 20 is below the previous step's 50",
    );
    assert_eq!(e.column, 18);
    // Out of range and clamped to 100: the 100 after it is not reported as well.
    one(
        &canary("steps = [150, 100]\n"),
        10,
        "services.web.update.steps[0]",
        "found 150",
    );
}

#[test]
fn steps_need_one_step_and_a_weight_to_start_from() {
    one(
        &canary("steps = []\n"),
        10,
        "services.web.update.steps",
        "at least one step",
    );
    one(
        &canary("steps = [{ pause = \"manual\" }, 50]\n"),
        10,
        "services.web.update.steps[0]",
        "the first step has no previous step",
    );
    one(
        &canary("steps = [10, {}]\n"),
        10,
        "services.web.update.steps[1]",
        "empty step",
    );
}

#[test]
fn pauses_are_durations_above_zero_or_manual() {
    one(
        &canary("steps = [10, { weight = 20, pause = \"0s\" }]\n"),
        10,
        "services.web.update.steps[1].pause",
        "longer than 0s",
    );
    let e = one(
        &canary("steps = [10, { weight = 20, pause = \"forever\" }]\n"),
        10,
        "services.web.update.steps[1].pause",
        "invalid duration \"forever\"",
    );
    assert!(e.message.contains("or \"manual\""), "{e}");
}

#[test]
fn step_tables_and_forms_are_checked_by_the_parser() {
    let e = one(
        &canary("steps = [10, { weight = 20, hold = \"1m\" }]\n"),
        10,
        "services.web.update.steps[1].hold",
        "unknown field `hold`",
    );
    assert!(e.message.contains("weight, pause"), "{e}");
    one(
        &canary("steps = [10, \"25\"]\n"),
        10,
        "services.web.update.steps[1]",
        "a weight such as 25 or a table",
    );
}

#[test]
fn rolling_keys_under_canary_or_blue_green_name_rolling() {
    let e = one(&canary("max_surge = 2\n"), 10, "services.web.update.max_surge", "");
    assert_eq!(
        e.message,
        "max_surge is a setting of strategy = \"rolling\" only, not of \"canary\"; remove it, or set strategy = \"rolling\""
    );
    one(
        &strategy("blue-green", "order = \"stop-first\"\n"),
        10,
        "services.web.update.order",
        "strategy = \"rolling\" only, not of \"blue-green\"",
    );
}

#[test]
fn canary_and_blue_green_keys_elsewhere_name_their_strategy() {
    one(
        &strategy("rolling", "steps = [10, 100]\n"),
        10,
        "services.web.update.steps",
        "strategy = \"canary\" only, not of \"rolling\"",
    );
    one(
        &strategy("blue-green", "steps = [10, 100]\n"),
        10,
        "services.web.update.steps",
        "strategy = \"canary\" only, not of \"blue-green\"",
    );
    one(
        &canary("auto_promote = false\n"),
        10,
        "services.web.update.auto_promote",
        "strategy = \"blue-green\" only, not of \"canary\"",
    );
    // The default strategy is rolling: analysis keys there name both strategies that take them.
    let text = "[app]\nname = \"a\"\n[services.w]\ncommand = \"x\"\n[services.w.update]\ninterval = \"5s\"\n\
                [[services.w.update.probes]]\npath = \"/\"\n";
    let e = errors(text);
    let got: Vec<_> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [(6, "services.w.update.interval"), (7, "services.w.update.probes")]
    );
    assert!(
        e[0].message
            .contains("strategy = \"canary\" or \"blue-green\", not of \"rolling\""),
        "{}",
        e[0]
    );
}

#[test]
fn canary_and_blue_green_need_a_port() {
    for s in ["canary", "blue-green"] {
        let text =
            format!("[app]\nname = \"a\"\n\n[services.w]\ncommand = \"x\"\n[services.w.update]\nstrategy = \"{s}\"\n");
        let e = one(&text, 4, "services.w.port", "needs a port");
        assert!(
            e.message.contains(&format!("strategy = \"{s}\" moves the traffic")),
            "{e}"
        );
    }
}

#[test]
fn analysis_bounds() {
    let at = |key: &str| format!("services.web.update.{key}");
    for (line, key, says) in [
        ("max_error_rate = 150", "max_error_rate", "between 0 and 100, found 150"),
        ("max_error_rate = -0.5", "max_error_rate", "between 0 and 100"),
        ("min_requests = 0", "min_requests", "between 1"),
        (
            "failure_limit = 0",
            "failure_limit",
            "1 aborts on the first failed check",
        ),
        ("success_count = 0", "success_count", "between 1"),
        ("quiet_timeout = \"0s\"", "quiet_timeout", "longer than 0s"),
        ("interval = \"0s\"", "interval", "longer than 0s"),
        ("max_p95 = \"0s\"", "max_p95", "longer than 0s"),
        ("on_quiet = \"skip\"", "on_quiet", "expected one of: pass, fail, pause"),
    ] {
        one(&canary(&format!("{line}\n")), 10, &at(key), says);
    }
}

#[test]
fn score_errors_are_reported_at_the_score() {
    let e = one(
        &canary("score = \"100 - latency_ms\"\nmin_score = 50\n"),
        10,
        "services.web.update.score",
        "unknown variable `latency_ms`",
    );
    assert!(e.message.contains("error_rate, success_rate"), "{e}");
    assert_eq!(e.column, 9);
    one(
        &canary("score = \"(100 - error_rate\"\nmin_score = 50\n"),
        10,
        "services.web.update.score",
        "cannot parse the formula",
    );
    one(
        &canary("score = \"100 - error_rate\"\n"),
        8,
        "services.web.update.min_score",
        "missing: a score needs",
    );
    one(
        &canary("min_score = 50\n"),
        10,
        "services.web.update.min_score",
        "has no effect without a score",
    );
}

#[test]
fn smoke_probe_errors_name_the_probe() {
    let text = canary(
        "\n[[services.web.update.probes]]\npath = \"health\"\n\n[[services.web.update.probes]]\npath = \"/\"\nstatus = 700\n\
         body_contains = \"\"\ntimeout = \"0s\"\n",
    );
    let e = errors(&text);
    let got: Vec<_> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (12, "services.web.update.probes[0].path"),
            (16, "services.web.update.probes[1].status"),
            (17, "services.web.update.probes[1].body_contains"),
            (18, "services.web.update.probes[1].timeout"),
        ]
    );
    assert!(e[0].message.contains("write it as \"/\""), "{}", e[0]);
    assert!(e[1].message.contains("between 100 and 599, found 700"), "{}", e[1]);
    one(
        &canary("\n[[services.web.update.probes]]\nstatus = 200\n"),
        11,
        "services.web.update.probes[0].path",
        "missing required field `path`",
    );
}

#[test]
fn every_rollout_error_is_collected_in_file_order() {
    let text = canary("steps = [50, 20]\nmax_surge = 1\nmax_error_rate = 101\nscore = \"x\"\nmin_score = 1\n");
    let e = errors(&text);
    let got: Vec<_> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (10, "services.web.update.steps[1]"),
            (11, "services.web.update.max_surge"),
            (12, "services.web.update.max_error_rate"),
            (13, "services.web.update.score"),
        ]
    );
}
