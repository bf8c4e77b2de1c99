//! The progressive rollout of one service as a state machine: canary steps, the blue-green
//! switch and warm window, and the forced (emergency) switch. Pure: [`Progress::advance`]
//! takes what was observed (ready replicas, smoke-test results, the window's metrics, the
//! time) and returns what to do ([`Effect`]s); the controller carries the effects out. The
//! state serializes, so a restarted daemon resumes the rollout at its step.

use serde::{Deserialize, Serialize};
use zenith_spec::{BlueGreen, Canary, OnQuiet, Pause};

use crate::analysis::{Sample, Verdict, judge};

/// Checks kept for `zenith rollout status`.
const CHECKS_KEPT: usize = 30;

mod strategy;
pub use strategy::Strategy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// New replicas are starting; no traffic yet.
    Starting,
    /// Smoke tests run against the new replicas.
    Probing,
    /// Canary: traffic at a step's weight, checks running.
    Analysing,
    /// Blue-green without auto-promotion: ready, waiting for `zenith rollout promote`.
    AwaitingPromotion,
    /// Blue-green: all traffic switched; the old revision stays warm until `switch_until_ms`.
    Switched,
    /// Scaling the new revision to full size before it takes all traffic.
    Promoting,
    Done,
    Aborted,
}

/// One check as `rollout status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub at_ms: i64,
    pub step: usize,
    pub weight: u32,
    pub verdict: Verdict,
    pub sample: Sample,
    pub score: Option<f64>,
}

/// The state of one service's progressive rollout. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub strategy: String,
    pub stage: Stage,
    /// Canary step index.
    pub step: usize,
    /// Percent of traffic the router gives the new revision now.
    pub weight: u32,
    /// Percent the rollout heads for; the weight follows once enough new replicas are ready.
    pub target_weight: u32,
    /// When the current step (or stage) began.
    pub stage_since_ms: i64,
    /// Start of the current check's window.
    pub window_since_ms: i64,
    pub last_check_ms: i64,
    pub failures: u32,
    /// Consecutive passing checks in this step.
    pub successes: u32,
    /// Why the rollout waits for a person (manual pause step, `rollout pause`, no traffic).
    pub paused: Option<String>,
    pub checks: Vec<CheckRecord>,
    pub switch_until_ms: Option<i64>,
    /// Why the rollout was aborted.
    pub reason: Option<String>,
}

/// What the controller saw since the last call.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub now_ms: i64,
    /// Ready replicas of the new revision.
    pub new_ready: u32,
    /// The smoke tests' result, once they ran.
    pub probes: Option<Result<(), String>>,
    /// The new revision's metrics since `window_since_ms`.
    pub sample: Option<Sample>,
}

/// What the controller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Run the smoke tests against every ready new replica and report the result.
    RunProbes,
    /// Give the new revision this percent of traffic, the old one the rest.
    SetWeight(u32),
    /// Start a new metrics window now.
    ResetWindow,
    /// Traffic is back on the old revision: stop the new replicas and fail the revision.
    Abort(String),
    /// The new revision has all traffic and may replace the old one for good.
    Complete,
}

/// A person's decision through `zenith rollout promote|pause|resume|abort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Skip the current step's wait (`full`: go straight to 100 %).
    Promote {
        full: bool,
    },
    Pause,
    Resume,
    Abort,
}

/// New replicas a canary at `weight` percent needs: its share of the full count, at least one.
pub fn replicas_for(replicas: u32, weight: u32) -> u32 {
    if replicas == 0 {
        return 0;
    }
    (u64::from(replicas) * u64::from(weight))
        .div_ceil(100)
        .clamp(1, u64::from(replicas)) as u32
}

impl Progress {
    pub fn new(strategy: Strategy<'_>, now_ms: i64) -> Progress {
        let target_weight = match strategy {
            Strategy::Canary(c) => c.steps.first().map_or(100, |s| s.weight),
            _ => 100,
        };
        Progress {
            strategy: strategy.name().to_string(),
            stage: Stage::Starting,
            step: 0,
            weight: 0,
            target_weight,
            stage_since_ms: now_ms,
            window_since_ms: now_ms,
            last_check_ms: now_ms,
            failures: 0,
            successes: 0,
            paused: None,
            checks: Vec::new(),
            switch_until_ms: None,
            reason: None,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Done | Stage::Aborted)
    }

    /// Replicas of the new revision to run now (the old revision keeps all of its own until
    /// the rollout is done).
    pub fn wanted_new(&self, strategy: Strategy<'_>, replicas: u32) -> u32 {
        match (strategy, self.stage) {
            (_, Stage::Aborted) => 0,
            (Strategy::Canary(_), Stage::Starting | Stage::Probing | Stage::Analysing) => {
                replicas_for(replicas, self.target_weight)
            }
            _ => replicas,
        }
    }

    /// One pass of the machine.
    pub fn advance(&mut self, strategy: Strategy<'_>, replicas: u32, obs: &Observed) -> Vec<Effect> {
        let now = obs.now_ms;
        if self.paused.is_some() && self.stage != Stage::AwaitingPromotion {
            // A paused rollout changes nothing, in any stage, until a person decides.
            return Vec::new();
        }
        match self.stage {
            Stage::Done | Stage::Aborted | Stage::AwaitingPromotion => Vec::new(),
            Stage::Starting => {
                if obs.new_ready < self.wanted_new(strategy, replicas) {
                    return Vec::new();
                }
                if strategy.probes().is_empty() {
                    return self.enter_traffic(strategy, now);
                }
                self.stage = Stage::Probing;
                self.stage_since_ms = now;
                vec![Effect::RunProbes]
            }
            Stage::Probing => match &obs.probes {
                None => Vec::new(),
                Some(Ok(())) => self.enter_traffic(strategy, now),
                Some(Err(e)) => self.abort(format!("smoke test failed before any traffic: {e}")),
            },
            Stage::Promoting => {
                if obs.new_ready < replicas {
                    return Vec::new();
                }
                self.stage = Stage::Done;
                self.stage_since_ms = now;
                let mut effects = Vec::new();
                if self.weight != 100 {
                    (self.weight, self.target_weight) = (100, 100);
                    effects.push(Effect::SetWeight(100));
                }
                effects.push(Effect::Complete);
                effects
            }
            Stage::Analysing | Stage::Switched => self.analyse(strategy, replicas, obs),
        }
    }

    fn analyse(&mut self, strategy: Strategy<'_>, replicas: u32, obs: &Observed) -> Vec<Effect> {
        let now = obs.now_ms;
        if self.paused.is_some() {
            return Vec::new();
        }
        if self.weight != self.target_weight {
            // The next step's weight waits for the replicas that carry it.
            if obs.new_ready < replicas_for(replicas, self.target_weight) {
                return Vec::new();
            }
            self.weight = self.target_weight;
            self.begin_step(now);
            return vec![Effect::SetWeight(self.weight), Effect::ResetWindow];
        }
        let Some(analysis) = strategy.analysis() else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        if now - self.last_check_ms >= analysis.interval.as_millis() as i64 {
            self.last_check_ms = now;
            let sample = obs.sample.clone().unwrap_or_default();
            let (mut verdict, score) = judge(analysis, &sample);
            let quiet_for = now - self.window_since_ms;
            if matches!(verdict, Verdict::Wait { .. }) && quiet_for >= analysis.quiet_timeout.as_millis() as i64 {
                let why = format!(
                    "{} after {}s with fewer than {} requests",
                    verdict.reason(),
                    quiet_for / 1000,
                    analysis.min_requests
                );
                verdict = match analysis.on_quiet {
                    OnQuiet::Pass => Verdict::Pass,
                    OnQuiet::Fail => Verdict::Fail {
                        metric: "requests".into(),
                        value: sample.requests as f64,
                        threshold: analysis.min_requests as f64,
                        reason: format!("no verdict possible: {why}"),
                    },
                    OnQuiet::Pause => {
                        self.paused = Some(format!(
                            "paused: {why}; `zenith rollout resume` waits again, `promote` goes on"
                        ));
                        verdict
                    }
                };
            }
            self.record(now, verdict.clone(), sample, score);
            match verdict {
                Verdict::Wait { .. } => {}
                Verdict::Pass => {
                    self.successes += 1;
                    self.window_since_ms = now;
                    effects.push(Effect::ResetWindow);
                }
                Verdict::Fail { reason, .. } => {
                    self.failures += 1;
                    self.successes = 0;
                    self.window_since_ms = now;
                    effects.push(Effect::ResetWindow);
                    if self.failures >= analysis.failure_limit {
                        let why = format!(
                            "{reason} at {}% traffic (failed check {} of {} allowed)",
                            self.weight, self.failures, analysis.failure_limit
                        );
                        return self.abort(why);
                    }
                }
            }
        }
        if self.paused.is_some() {
            return effects;
        }
        match strategy {
            Strategy::Canary(canary) => {
                let step = &canary.steps[self.step];
                let held = now - self.stage_since_ms;
                let pause_over = match step.pause {
                    None => true,
                    Some(Pause::For(d)) => held >= d.as_millis() as i64,
                    Some(Pause::Manual) => false,
                };
                if pause_over && self.successes >= analysis.success_count {
                    effects.extend(self.next_step(canary, now));
                } else if step.pause == Some(Pause::Manual) && self.successes >= analysis.success_count {
                    self.paused = Some(format!(
                        "step {} of {} holds {}% until `zenith rollout promote`",
                        self.step + 1,
                        canary.steps.len(),
                        self.weight
                    ));
                }
            }
            Strategy::BlueGreen(_) => {
                if self.switch_until_ms.is_some_and(|t| now >= t) {
                    self.stage = Stage::Done;
                    effects.push(Effect::Complete);
                }
            }
            Strategy::Forced => {}
        }
        effects
    }

    fn next_step(&mut self, canary: &Canary, now: i64) -> Vec<Effect> {
        if self.step + 1 >= canary.steps.len() {
            self.stage = Stage::Promoting;
            self.target_weight = 100;
            self.stage_since_ms = now;
            return Vec::new();
        }
        self.step += 1;
        self.successes = 0;
        self.target_weight = canary.steps[self.step].weight;
        if self.target_weight == self.weight {
            // A step that only holds: its pause and a fresh window start now.
            self.begin_step(now);
            return vec![Effect::ResetWindow];
        }
        Vec::new()
    }

    fn begin_step(&mut self, now: i64) {
        self.stage_since_ms = now;
        self.window_since_ms = now;
        self.last_check_ms = now;
        self.successes = 0;
    }

    fn enter_traffic(&mut self, strategy: Strategy<'_>, now: i64) -> Vec<Effect> {
        match strategy {
            Strategy::Forced => {
                self.stage = Stage::Promoting;
                self.target_weight = 100;
                self.stage_since_ms = now;
                Vec::new()
            }
            Strategy::Canary(c) => {
                self.stage = Stage::Analysing;
                self.step = 0;
                self.target_weight = c.steps.first().map_or(100, |s| s.weight);
                self.weight = self.target_weight;
                self.begin_step(now);
                vec![Effect::SetWeight(self.weight), Effect::ResetWindow]
            }
            Strategy::BlueGreen(b) if !b.auto_promote => {
                self.stage = Stage::AwaitingPromotion;
                self.stage_since_ms = now;
                self.paused = Some("ready; the switch waits for `zenith rollout promote`".into());
                Vec::new()
            }
            Strategy::BlueGreen(b) => self.switch(b, now),
        }
    }

    fn switch(&mut self, b: &BlueGreen, now: i64) -> Vec<Effect> {
        self.stage = Stage::Switched;
        self.paused = None;
        (self.weight, self.target_weight) = (100, 100);
        self.begin_step(now);
        self.switch_until_ms = Some(now + b.scale_down_delay.as_millis() as i64);
        vec![Effect::SetWeight(100), Effect::ResetWindow]
    }

    fn abort(&mut self, reason: String) -> Vec<Effect> {
        self.stage = Stage::Aborted;
        self.reason = Some(reason.clone());
        self.paused = None;
        (self.weight, self.target_weight) = (0, 0);
        vec![Effect::SetWeight(0), Effect::Abort(reason)]
    }

    fn record(&mut self, now: i64, verdict: Verdict, sample: Sample, score: Option<f64>) {
        self.checks.push(CheckRecord {
            at_ms: now,
            step: self.step,
            weight: self.weight,
            verdict,
            sample,
            score,
        });
        if self.checks.len() > CHECKS_KEPT {
            self.checks.remove(0);
        }
    }
}

mod commands;

#[cfg(test)]
mod tests;
