//! Canary and blue-green update tables: what a full table, the shorthands and the defaults
//! mean in the validated model, the seed's score formula inside a spec, and the command-line
//! overrides applied to a parsed spec.

use std::path::Path;
use std::time::Duration;

use zenith_spec::config::FileConfig;
use zenith_spec::formula::Formula;
use zenith_spec::overrides::override_rollout;
use zenith_spec::{
    Analysis, AppSpec, BlueGreen, Canary, CanaryStep, OnQuiet, Pause, Score, SmokeProbe, UpdateStrategy, parse,
};

/// A service with a port, then its update table's header: the keys follow from line 9.
const HEAD: &str =
    "[app]\nname = \"shop\"\n\n[services.web]\ncommand = \"./web\"\nport = 8080\n\n[services.web.update]\n";

const SEED_SCORE: &str = "(100 - error_rate*5)*0.5 + (200 - response_time_ms)*0.3 + (100 - cpu_utilization)*0.2";

fn spec(update: &str) -> AppSpec {
    let text = format!("{HEAD}{update}");
    parse(&text, Path::new("zenith.toml")).unwrap_or_else(|e| panic!("{e}\n--- in ---\n{text}"))
}

fn canary(update: &str) -> Canary {
    match spec(update).services.remove(0).update {
        UpdateStrategy::Canary(c) => c,
        other => panic!("not a canary: {other:?}"),
    }
}

fn step(weight: u32, pause: Option<Pause>) -> CanaryStep {
    CanaryStep { weight, pause }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_full_canary_table() {
    let got = canary(&format!(
        r#"strategy = "canary"
steps = [5, {{ weight = 25, pause = "2m" }}, {{ pause = "manual" }}, 50, 100]
interval = "15s"
min_requests = 20
max_error_rate = 2.5
max_p95 = "500ms"
max_p99 = "1s"
failure_limit = 3
success_count = 2
quiet_timeout = "10m"
on_quiet = "fail"
score = "{SEED_SCORE}"
min_score = 60
progress_deadline = "90s"

[[services.web.update.probes]]
path = "/"
status = 200
body_contains = "hello"
timeout = "3s"

[[services.web.update.probes]]
path = "/health"
"#
    ));
    let expected = Canary {
        steps: vec![
            step(5, None),
            step(25, Some(Pause::For(secs(120)))),
            step(25, Some(Pause::Manual)),
            step(50, None),
            step(100, None),
        ],
        analysis: Analysis {
            interval: secs(15),
            min_requests: 20,
            max_error_rate: 2.5,
            max_p95: Some(Duration::from_millis(500)),
            max_p99: Some(secs(1)),
            score: Some(Score {
                formula: SEED_SCORE.into(),
                min: 60.0,
            }),
            failure_limit: 3,
            success_count: 2,
            quiet_timeout: secs(600),
            on_quiet: OnQuiet::Fail,
        },
        probes: vec![
            SmokeProbe {
                path: "/".into(),
                status: Some(200),
                body_contains: Some("hello".into()),
                timeout: secs(3),
            },
            SmokeProbe {
                path: "/health".into(),
                status: None,
                body_contains: None,
                timeout: secs(2),
            },
        ],
        progress_deadline: secs(90),
    };
    assert_eq!(got, expected);
}

fn default_analysis() -> Analysis {
    Analysis {
        interval: secs(10),
        min_requests: 50,
        max_error_rate: 5.0,
        max_p95: None,
        max_p99: None,
        score: None,
        failure_limit: 1,
        success_count: 1,
        quiet_timeout: secs(300),
        on_quiet: OnQuiet::Pause,
    }
}

#[test]
fn canary_defaults() {
    let got = canary("strategy = \"canary\"\n");
    let steps = [10, 25, 50, 75, 100].map(|w| step(w, None)).to_vec();
    assert_eq!(
        got,
        Canary {
            steps,
            analysis: default_analysis(),
            probes: Vec::new(),
            progress_deadline: secs(60),
        }
    );
    // An integer error rate is a percentage like a float one.
    assert_eq!(
        canary("strategy = \"canary\"\nmax_error_rate = 1\n")
            .analysis
            .max_error_rate,
        1.0
    );
}

#[test]
fn blue_green_full_and_defaults() {
    let bg = |update: &str| match spec(update).services.remove(0).update {
        UpdateStrategy::BlueGreen(b) => b,
        other => panic!("not blue-green: {other:?}"),
    };
    assert_eq!(
        bg("strategy = \"blue-green\"\n"),
        BlueGreen {
            analysis: default_analysis(),
            probes: Vec::new(),
            scale_down_delay: secs(30),
            auto_promote: true,
            progress_deadline: secs(60),
        }
    );
    let got = bg(r#"strategy = "blue-green"
scale_down_delay = "5m"
auto_promote = false
progress_deadline = "2m"
max_error_rate = 1
on_quiet = "pass"

[[services.web.update.probes]]
path = "/ready"
"#);
    assert_eq!((got.scale_down_delay, got.auto_promote), (secs(300), false));
    assert_eq!(got.progress_deadline, secs(120));
    assert_eq!(
        (got.analysis.max_error_rate, got.analysis.on_quiet),
        (1.0, OnQuiet::Pass)
    );
    assert_eq!(got.probes[0].path, "/ready");
}

#[test]
fn the_seed_score_formula_in_a_spec() {
    let got = canary(&format!(
        "strategy = \"canary\"\nscore = \"{SEED_SCORE}\"\nmin_score = 60\n"
    ));
    let score = got.analysis.score.unwrap();
    let formula = Formula::parse(&score.formula).unwrap();
    let value = formula
        .eval(|name| match name {
            "error_rate" => Some(0.0),
            "response_time_ms" => Some(100.0),
            "cpu_utilization" => Some(50.0),
            _ => None,
        })
        .unwrap();
    // 100 * 0.5 + 100 * 0.3 + 50 * 0.2
    assert!((value - 90.0).abs() < 1e-9, "{value}");
    assert!(value >= score.min);
}

#[test]
fn the_documented_seed_canary_parses() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md")).unwrap();
    let example = doc
        .split("#### Example: the seed's canary")
        .nth(1)
        .expect("the section exists");
    let toml = example
        .split("```toml\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .unwrap();
    let update = toml.strip_prefix("[services.web.update]\n").expect("the update table");
    let got = canary(update);
    assert_eq!(got.steps[2], step(25, Some(Pause::Manual)));
    assert_eq!(got.analysis.score.unwrap().formula, SEED_SCORE);
}

#[test]
fn update_tables_round_trip_through_toml() {
    let text = format!(
        "{HEAD}strategy = \"canary\"\nsteps = [5, {{ weight = 25, pause = \"2m\" }}, {{ pause = \"manual\" }}, 100]\n\
         max_error_rate = 2.5\n\n[[services.web.update.probes]]\npath = \"/\"\nstatus = 204\n"
    );
    let config: FileConfig = toml::from_str(&text).unwrap();
    let written = toml::to_string(&config).unwrap();
    assert_eq!(toml::from_str::<FileConfig>(&written).unwrap(), config, "{written}");
    let origin = Path::new("zenith.toml");
    assert_eq!(parse(&written, origin).unwrap(), parse(&text, origin).unwrap());
}

#[test]
fn overrides_apply_to_a_parsed_spec() {
    let spec = spec("strategy = \"canary\"\n");
    let out = override_rollout(&spec, Some(30), Some(secs(2))).unwrap();
    let UpdateStrategy::Canary(c) = &out.services[0].update else {
        panic!("{out:?}")
    };
    let weights: Vec<u32> = c.steps.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [30, 50, 75, 100]);
    assert_eq!(c.analysis.interval, secs(2));
    assert_ne!(out.digest(), spec.digest(), "a changed rollout is a different spec");
}
