//! The rollout machine driven with a fake clock: steps, pauses, waiting for traffic, failure
//! counting, consecutive successes, blue-green's warm window, commands and restarts.

use std::time::Duration;

use zenith_spec::{BlueGreen, Canary, CanaryStep, OnQuiet, Pause, SmokeProbe};

use super::*;
use crate::analysis::tests::{analysis, sample};

fn canary(weights: &[u32]) -> Canary {
    Canary {
        steps: weights
            .iter()
            .map(|w| CanaryStep {
                weight: *w,
                pause: None,
            })
            .collect(),
        analysis: analysis(),
        probes: Vec::new(),
        progress_deadline: Duration::from_secs(60),
    }
}

/// Steps 10 and 100, with one smoke test on `/`.
fn smoke_tested_canary() -> Canary {
    let mut c = canary(&[10, 100]);
    c.probes.push(SmokeProbe {
        path: "/".into(),
        status: None,
        body_contains: None,
        timeout: Duration::from_secs(2),
    });
    c
}

fn blue_green() -> BlueGreen {
    BlueGreen {
        analysis: analysis(),
        probes: Vec::new(),
        scale_down_delay: Duration::from_secs(30),
        auto_promote: true,
        progress_deadline: Duration::from_secs(60),
    }
}

const SEC: i64 = 1000;

/// Drives `p` like the controller: every second, with `ready` new replicas and a window
/// sample built from `good` (healthy traffic) or bad (20 % errors).
struct Run<'a> {
    p: Progress,
    strategy: Strategy<'a>,
    now: i64,
    weights: Vec<u32>,
    window_from: i64,
}

impl<'a> Run<'a> {
    fn new(strategy: Strategy<'a>) -> Self {
        Run {
            p: Progress::new(strategy, 0),
            strategy,
            now: 0,
            weights: Vec::new(),
            window_from: 0,
        }
    }

    fn tick(&mut self, ready: u32, healthy: bool, rps: u64) -> Vec<Effect> {
        self.now += SEC;
        let secs = ((self.now - self.window_from) / SEC) as u64;
        let requests = rps * secs;
        let errors = if healthy { 0 } else { requests / 5 };
        let obs = Observed {
            now_ms: self.now,
            new_ready: ready,
            probes: None,
            sample: Some(sample(requests, errors, 50.0)),
        };
        let effects = self.p.advance(self.strategy, 4, &obs);
        for e in &effects {
            match e {
                Effect::SetWeight(w) => self.weights.push(*w),
                Effect::ResetWindow => self.window_from = self.now,
                _ => {}
            }
        }
        effects
    }
}

#[test]
fn replicas_follow_the_weight() {
    assert_eq!(replicas_for(4, 10), 1);
    assert_eq!(replicas_for(4, 25), 1);
    assert_eq!(replicas_for(4, 26), 2);
    assert_eq!(replicas_for(4, 100), 4);
    assert_eq!(replicas_for(4, 0), 1);
    assert_eq!(replicas_for(0, 50), 0);
}

#[test]
fn a_healthy_canary_walks_every_step_then_completes() {
    let c = canary(&[10, 25, 50, 75, 100]);
    let mut run = Run::new(Strategy::Canary(&c));
    assert_eq!(run.p.wanted_new(run.strategy, 4), 1);
    assert!(run.tick(0, true, 10).is_empty(), "no traffic before a replica is ready");
    let mut completed = false;
    for _ in 0..200 {
        let ready = run.p.wanted_new(run.strategy, 4);
        if run.tick(ready, true, 10).contains(&Effect::Complete) {
            completed = true;
            break;
        }
    }
    assert!(completed);
    assert_eq!(run.weights, vec![10, 25, 50, 75, 100]);
    assert_eq!(run.p.stage, Stage::Done);
    assert!(run.p.checks.iter().all(|c| c.verdict == Verdict::Pass));
    // Each step waited for one 10 s check.
    assert!(run.now >= 5 * 10 * SEC);
}

#[test]
fn a_step_waits_for_the_replicas_its_weight_needs() {
    let c = canary(&[25, 50]);
    let mut run = Run::new(Strategy::Canary(&c));
    for _ in 0..11 {
        run.tick(1, true, 10);
    }
    assert_eq!(run.weights, vec![25]);
    assert_eq!(run.p.target_weight, 50);
    assert_eq!(run.p.wanted_new(run.strategy, 4), 2);
    for _ in 0..5 {
        run.tick(1, true, 10);
    }
    assert_eq!(run.weights, vec![25], "50 % waits for a second replica");
    run.tick(2, true, 10);
    assert_eq!(run.weights, vec![25, 50]);
}

#[test]
fn an_error_burst_aborts_at_the_first_failed_check_and_puts_traffic_back() {
    let c = canary(&[10, 25, 50]);
    let mut run = Run::new(Strategy::Canary(&c));
    let mut aborted = None;
    for _ in 0..30 {
        for e in run.tick(1, false, 10) {
            if let Effect::Abort(reason) = e {
                aborted = Some((run.now, reason));
            }
        }
        if aborted.is_some() {
            break;
        }
    }
    let (at, reason) = aborted.expect("aborted");
    assert_eq!(run.weights, vec![10, 0]);
    assert_eq!(at, 11 * SEC, "the first check, one interval after traffic began");
    assert!(reason.starts_with("error rate 20.0% > max 5%"), "{reason}");
    assert!(reason.contains("at 10% traffic"), "{reason}");
    assert_eq!(run.p.stage, Stage::Aborted);
    assert_eq!(run.p.wanted_new(run.strategy, 4), 0);
}

#[test]
fn failures_are_counted_up_to_the_limit_and_successes_must_be_consecutive() {
    let mut c = canary(&[10, 100]);
    c.analysis.failure_limit = 3;
    c.analysis.success_count = 2;
    let mut run = Run::new(Strategy::Canary(&c));
    run.tick(1, true, 10); // traffic at 10 %
    let mut pattern = [false, true, false, true, true].into_iter();
    while run.p.step == 0 {
        let healthy = pattern.next().expect("advanced by the fifth check");
        for _ in 0..10 {
            run.tick(1, healthy, 10);
        }
    }
    assert_eq!(run.p.failures, 2);
    assert_eq!(run.p.stage, Stage::Analysing);
    let verdicts: Vec<bool> = run.p.checks.iter().map(|c| c.verdict == Verdict::Pass).collect();
    assert_eq!(verdicts, vec![false, true, false, true, true]);
    for _ in 0..11 {
        run.tick(4, false, 10);
    }
    assert_eq!(run.p.stage, Stage::Aborted, "the third failure reaches the limit");
}

#[test]
fn a_quiet_step_waits_then_does_what_the_spec_says() {
    for (on_quiet, expected) in [
        (OnQuiet::Pause, "paused"),
        (OnQuiet::Pass, "advanced"),
        (OnQuiet::Fail, "aborted"),
    ] {
        let mut c = canary(&[10, 50]);
        c.analysis.on_quiet = on_quiet;
        let mut run = Run::new(Strategy::Canary(&c));
        for _ in 0..59 {
            run.tick(1, true, 0);
        }
        assert_eq!((run.p.step, run.p.stage), (0, Stage::Analysing), "{on_quiet:?} waits");
        assert!(matches!(run.p.checks.last().unwrap().verdict, Verdict::Wait { .. }));
        for _ in 0..12 {
            run.tick(1, true, 0);
        }
        let outcome = match (run.p.stage, run.p.step, &run.p.paused) {
            (Stage::Aborted, _, _) => "aborted",
            (_, 1, _) => "advanced",
            (_, 0, Some(_)) => "paused",
            other => panic!("{other:?}"),
        };
        assert_eq!(outcome, expected, "{on_quiet:?}");
    }
}

#[test]
fn timed_and_manual_pauses_hold_the_step() {
    let mut c = canary(&[10, 20, 100]);
    c.steps[0].pause = Some(Pause::For(Duration::from_secs(60)));
    c.steps[1].pause = Some(Pause::Manual);
    let mut run = Run::new(Strategy::Canary(&c));
    for _ in 0..59 {
        run.tick(1, true, 10);
    }
    assert_eq!(run.weights, vec![10], "held for 60 s despite passing checks");
    for _ in 0..3 {
        run.tick(1, true, 10);
    }
    assert_eq!(run.weights, vec![10, 20]);
    for _ in 0..120 {
        run.tick(1, true, 10);
    }
    assert_eq!(run.weights, vec![10, 20], "a manual pause waits for a person");
    assert!(run.p.paused.as_deref().unwrap().contains("rollout promote"));
    let effects = run
        .p
        .command(run.strategy, &UserCommand::Promote { full: false }, run.now)
        .unwrap();
    assert!(effects.is_empty());
    run.tick(4, true, 10);
    assert_eq!(run.weights, vec![10, 20, 100]);
}

#[test]
fn pause_resume_abort_and_full_promotion() {
    let c = canary(&[10, 50, 100]);
    let mut run = Run::new(Strategy::Canary(&c));
    run.tick(1, true, 10);
    run.p.command(run.strategy, &UserCommand::Pause, run.now).unwrap();
    for _ in 0..30 {
        run.tick(1, false, 10);
    }
    assert_eq!(
        (run.p.stage, run.p.failures),
        (Stage::Analysing, 0),
        "no checks while paused"
    );
    run.p.command(run.strategy, &UserCommand::Resume, run.now).unwrap();
    run.p
        .command(run.strategy, &UserCommand::Promote { full: true }, run.now)
        .unwrap();
    assert_eq!(run.p.stage, Stage::Promoting);
    assert!(run.tick(3, true, 10).is_empty(), "full size first");
    assert_eq!(run.tick(4, true, 10), vec![Effect::SetWeight(100), Effect::Complete]);
    assert!(run.p.command(run.strategy, &UserCommand::Abort, run.now).is_err());

    let mut run = Run::new(Strategy::Canary(&c));
    run.tick(1, true, 10);
    let effects = run.p.command(run.strategy, &UserCommand::Abort, run.now).unwrap();
    assert_eq!(effects[0], Effect::SetWeight(0));
    assert!(matches!(&effects[1], Effect::Abort(r) if r.contains("aborted by a user")));
}

#[test]
fn smoke_tests_gate_the_first_traffic() {
    let c = smoke_tested_canary();
    let strategy = Strategy::Canary(&c);
    let mut p = Progress::new(strategy, 0);
    let obs = |probes| Observed {
        now_ms: 1000,
        new_ready: 1,
        probes,
        sample: None,
    };
    assert_eq!(p.advance(strategy, 4, &obs(None)), vec![Effect::RunProbes]);
    assert!(p.advance(strategy, 4, &obs(None)).is_empty());
    let mut failed = p.clone();
    assert_eq!(
        p.advance(strategy, 4, &obs(Some(Ok(())))),
        vec![Effect::SetWeight(10), Effect::ResetWindow]
    );
    let effects = failed.advance(strategy, 4, &obs(Some(Err("status 500".into()))));
    assert!(matches!(&effects[1], Effect::Abort(r) if r.contains("status 500")));
}

#[test]
fn blue_green_switches_at_once_keeps_the_old_warm_and_switches_back_on_failure() {
    let b = blue_green();
    let mut run = Run::new(Strategy::BlueGreen(&b));
    assert_eq!(run.p.wanted_new(run.strategy, 4), 4, "full size beside the old");
    assert!(run.tick(3, true, 10).is_empty());
    assert_eq!(run.tick(4, true, 10), vec![Effect::SetWeight(100), Effect::ResetWindow]);
    for _ in 0..29 {
        assert!(!run.tick(4, true, 10).contains(&Effect::Complete));
    }
    assert!(run.tick(4, true, 10).contains(&Effect::Complete));

    let mut run = Run::new(Strategy::BlueGreen(&b));
    run.tick(4, true, 10);
    let mut effects = Vec::new();
    for _ in 0..12 {
        effects.extend(run.tick(4, false, 10));
    }
    assert!(effects.contains(&Effect::SetWeight(0)), "{effects:?}");
    assert_eq!(run.p.stage, Stage::Aborted);
}

#[test]
fn blue_green_without_auto_promotion_waits_for_a_person() {
    let mut b = blue_green();
    b.auto_promote = false;
    let mut run = Run::new(Strategy::BlueGreen(&b));
    for _ in 0..100 {
        assert!(run.tick(4, true, 10).is_empty());
    }
    assert_eq!(run.p.stage, Stage::AwaitingPromotion);
    let effects = run
        .p
        .command(run.strategy, &UserCommand::Promote { full: false }, run.now)
        .unwrap();
    assert_eq!(effects, vec![Effect::SetWeight(100), Effect::ResetWindow]);
}

#[test]
fn forced_rollouts_skip_steps_and_analysis() {
    let mut run = Run::new(Strategy::Forced);
    assert_eq!(run.p.wanted_new(run.strategy, 4), 4);
    assert!(run.tick(3, false, 10).is_empty());
    run.tick(4, false, 10);
    assert_eq!(run.tick(4, false, 10), vec![Effect::SetWeight(100), Effect::Complete]);
}

#[test]
fn a_restarted_daemon_sets_the_weight_again_and_keeps_the_step() {
    let c = canary(&[10, 50, 100]);
    let mut run = Run::new(Strategy::Canary(&c));
    for _ in 0..12 {
        let ready = run.p.wanted_new(run.strategy, 4);
        run.tick(ready, true, 10);
    }
    let json = serde_json::to_string(&run.p).unwrap();
    let mut back: Progress = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run.p);
    let effects = back.resume_after_restart(run.now + 5 * SEC);
    assert_eq!(effects, vec![Effect::SetWeight(back.weight), Effect::ResetWindow]);
    assert_eq!(back.step, run.p.step);
}

#[test]
fn smoke_tests_cut_short_by_a_restart_run_again_once_replicas_are_back() {
    let c = smoke_tested_canary();
    let strategy = Strategy::Canary(&c);
    let mut p = Progress::new(strategy, 0);
    let ready = |now_ms| Observed {
        now_ms,
        new_ready: 1,
        probes: None,
        sample: None,
    };
    assert_eq!(p.advance(strategy, 4, &ready(1000)), vec![Effect::RunProbes]);
    // Restarted mid-probe: no traffic yet, and the probes wait for the adopted replicas.
    assert_eq!(
        p.resume_after_restart(2000),
        vec![Effect::SetWeight(0), Effect::ResetWindow]
    );
    assert_eq!(p.stage, Stage::Starting);
    assert_eq!(p.advance(strategy, 4, &ready(3000)), vec![Effect::RunProbes]);
}

#[test]
fn a_pause_holds_every_stage_and_a_hold_step_starts_a_fresh_window() {
    let b = blue_green();
    let mut run = Run::new(Strategy::BlueGreen(&b));
    run.p.command(run.strategy, &UserCommand::Pause, 0).unwrap();
    for _ in 0..5 {
        assert!(run.tick(4, true, 10).is_empty(), "paused before the switch: no traffic");
    }
    run.p.command(run.strategy, &UserCommand::Resume, run.now).unwrap();
    assert_eq!(run.tick(4, true, 10), vec![Effect::SetWeight(100), Effect::ResetWindow]);

    let mut c = canary(&[10, 10, 100]);
    c.steps[1].pause = Some(Pause::For(Duration::from_secs(30)));
    let mut run = Run::new(Strategy::Canary(&c));
    let mut effects = Vec::new();
    for _ in 0..12 {
        effects = run.tick(1, true, 10);
        if run.p.step == 1 {
            break;
        }
    }
    assert_eq!(run.p.step, 1);
    assert!(
        effects.contains(&Effect::ResetWindow) && !effects.iter().any(|e| matches!(e, Effect::SetWeight(_))),
        "the hold step keeps the weight and judges only its own requests: {effects:?}"
    );
    // Promoted past a hold step, the window starts over too.
    let mut run = Run::new(Strategy::Canary(&c));
    run.tick(1, true, 10);
    let effects = run
        .p
        .command(run.strategy, &UserCommand::Promote { full: false }, run.now)
        .unwrap();
    assert_eq!(effects, vec![Effect::ResetWindow]);
}
