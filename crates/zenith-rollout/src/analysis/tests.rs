//! The judge's rules, one table row per rule, and the score formula with the seed's numbers.

use std::time::Duration;

use zenith_spec::{Analysis, OnQuiet, Score};

use super::*;

pub(crate) fn analysis() -> Analysis {
    Analysis {
        interval: Duration::from_secs(10),
        min_requests: 50,
        max_error_rate: 5.0,
        max_p95: Some(Duration::from_millis(500)),
        max_p99: None,
        score: None,
        failure_limit: 1,
        success_count: 1,
        quiet_timeout: Duration::from_secs(60),
        on_quiet: OnQuiet::Pause,
    }
}

pub(crate) fn sample(requests: u64, errors: u64, p95_ms: f64) -> Sample {
    Sample {
        requests,
        errors,
        window_secs: 10.0,
        mean_ms: p95_ms / 2.0,
        p50_ms: p95_ms / 2.0,
        p95_ms,
        p99_ms: p95_ms * 1.5,
        cpu_percent: Some(20.0),
        replicas: 1,
    }
}

#[test]
fn healthy_traffic_passes() {
    assert_eq!(judge(&analysis(), &sample(100, 2, 80.0)).0, Verdict::Pass);
}

#[test]
fn too_few_requests_waits_instead_of_judging() {
    let (v, _) = judge(&analysis(), &sample(49, 49, 9000.0));
    assert!(
        matches!(v, Verdict::Wait { ref reason } if reason.contains("49 of 50")),
        "{v:?}"
    );
    // No traffic at all is the same case, not a pass and not a failure.
    assert!(matches!(judge(&analysis(), &sample(0, 0, 0.0)).0, Verdict::Wait { .. }));
}

#[test]
fn error_rate_over_the_threshold_fails_and_names_the_numbers() {
    let (v, _) = judge(&analysis(), &sample(200, 40, 80.0));
    match v {
        Verdict::Fail {
            metric,
            value,
            threshold,
            reason,
        } => {
            assert_eq!(metric, "error_rate");
            assert_eq!((value, threshold), (20.0, 5.0));
            assert_eq!(reason, "error rate 20.0% > max 5% (40 of 200 requests failed)");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_request_failing_fails() {
    let (v, _) = judge(&analysis(), &sample(60, 60, 1.0));
    assert!(matches!(v, Verdict::Fail { value, .. } if value == 100.0));
}

#[test]
fn the_error_rate_at_the_threshold_passes() {
    assert_eq!(judge(&analysis(), &sample(100, 5, 10.0)).0, Verdict::Pass);
}

#[test]
fn latency_thresholds_fail_with_every_broken_rule_listed() {
    let mut a = analysis();
    a.max_p99 = Some(Duration::from_millis(600));
    let (v, _) = judge(&a, &sample(100, 10, 700.0));
    let Verdict::Fail { metric, reason, .. } = v else {
        panic!("expected a failure")
    };
    assert_eq!(metric, "error_rate");
    assert_eq!(
        reason,
        "error rate 10.0% > max 5% (10 of 100 requests failed); p95 latency 700 ms > max 500 ms; \
         p99 latency 1050 ms > max 600 ms"
    );
}

const SEED: &str = "(100 - error_rate*5)*0.5 + (200 - response_time_ms)*0.3 + (100 - cpu_utilization)*0.2";

#[test]
fn the_seed_bio_energy_score_is_computed_and_held_to_its_minimum() {
    let mut a = analysis();
    a.max_p95 = None;
    a.score = Some(Score {
        formula: SEED.into(),
        min: 60.0,
    });
    // error rate 2 %, mean 40 ms, cpu 20 %: (100-10)*0.5 + (160)*0.3 + 80*0.2 = 45 + 48 + 16.
    let (v, score) = judge(&a, &sample(100, 2, 80.0));
    assert_eq!(v, Verdict::Pass);
    assert!((score.unwrap() - 109.0).abs() < 1e-9);
    a.score.as_mut().unwrap().min = 110.0;
    let (v, _) = judge(&a, &sample(100, 2, 80.0));
    assert!(
        matches!(v, Verdict::Fail { ref metric, .. } if metric == "score"),
        "{v:?}"
    );
}

#[test]
fn a_score_with_an_unmeasured_metric_waits() {
    let mut a = analysis();
    a.score = Some(Score {
        formula: SEED.into(),
        min: 0.0,
    });
    let mut s = sample(100, 0, 10.0);
    s.cpu_percent = None;
    let (v, _) = judge(&a, &s);
    assert!(
        matches!(v, Verdict::Wait { ref reason } if reason.contains("cpu_utilization")),
        "{v:?}"
    );
}

#[test]
fn a_score_that_is_not_a_number_fails_the_check() {
    let mut a = analysis();
    a.score = Some(Score {
        formula: "100 / (error_rate - error_rate)".into(),
        min: 0.0,
    });
    let (v, _) = judge(&a, &sample(100, 1, 10.0));
    assert!(
        matches!(v, Verdict::Fail { ref metric, ref reason, .. } if metric == "score" && reason.contains("cannot be computed")),
        "{v:?}"
    );
}

#[test]
fn variables_are_derived_from_the_window() {
    let s = sample(200, 10, 100.0);
    assert_eq!(s.variable("error_rate"), Some(5.0));
    assert_eq!(s.variable("success_rate"), Some(95.0));
    assert_eq!(s.variable("request_rate"), Some(20.0));
    assert_eq!(s.variable("replicas"), Some(1.0));
    assert_eq!(sample(0, 0, 0.0).variable("p95_ms"), None);
    for (name, _) in zenith_spec::SCORE_VARIABLES {
        assert!(s.variable(name).is_some(), "{name} is documented but not provided");
    }
}
