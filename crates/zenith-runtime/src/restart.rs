//! The restart policy's arithmetic, with Docker Swarm's semantics: the condition decides
//! whether an exit calls for a restart at all, `max_attempts` caps the restarts counted in a
//! sliding `window` (for ever when there is none), and every restart waits `delay`. Pure: the
//! caller passes `now`, so the window is tested with a fake clock.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use zenith_spec::{RestartCondition, RestartPolicy};

use crate::ExitStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start the replica again once this delay has passed.
    RestartAfter(Duration),
    /// The policy wants a restart but its budget is spent; the reason names the counts.
    GiveUp { reason: String },
    /// The policy does not restart after this exit.
    Stay { reason: String },
}

/// The restart history of one replica slot (it survives the replicas it restarts).
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    restarts: VecDeque<Instant>,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            restarts: VecDeque::new(),
        }
    }

    /// Restarts counted against `max_attempts` at `now`.
    pub fn restarts_in_window(&self, now: Instant) -> usize {
        match self.policy.window {
            Some(window) => self
                .restarts
                .iter()
                .filter(|t| now.saturating_duration_since(**t) < window)
                .count(),
            None => self.restarts.len(),
        }
    }

    /// Decides what follows an exit at `now`. A `RestartAfter` is counted as a restart at `now`.
    pub fn on_exit(&mut self, status: ExitStatus, now: Instant) -> RestartDecision {
        match self.policy.condition {
            RestartCondition::None => {
                return RestartDecision::Stay {
                    reason: format!("exited with {status}; restart condition is none"),
                };
            }
            // An adopted replica's status is unknown: counted as a failure, to be safe.
            RestartCondition::OnFailure if status.success() => {
                return RestartDecision::Stay {
                    reason: format!("exited with {status}; restart condition is on-failure"),
                };
            }
            RestartCondition::OnFailure | RestartCondition::Any => {}
        }
        if let Some(window) = self.policy.window {
            while self
                .restarts
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                self.restarts.pop_front();
            }
        }
        if let Some(max) = self.policy.max_attempts {
            let count = self.restarts.len();
            if count >= max as usize {
                let within = match self.policy.window {
                    Some(window) => format!("within {}", go_duration(window)),
                    None => "in total".to_string(),
                };
                let plural = if count == 1 { "" } else { "s" };
                return RestartDecision::GiveUp {
                    reason: format!("{count} restart{plural} {within}; max_attempts = {max}"),
                };
            }
        }
        self.restarts.push_back(now);
        RestartDecision::RestartAfter(self.policy.delay)
    }
}

/// A duration as Go (and so Swarm) prints it: `2m0s`, `1h30m0s`, `45s`, `1.5s`, `300ms`.
pub(crate) fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    if d < Duration::from_secs(1) {
        let ms = d.as_millis();
        return if ms > 0 {
            format!("{ms}ms")
        } else {
            format!("{}µs", d.as_micros())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let millis = d.subsec_millis();
    if millis == 0 {
        let _ = write!(out, "{s}s");
    } else {
        let frac = format!("{millis:03}");
        let _ = write!(out, "{s}.{}s", frac.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(condition: RestartCondition, max: Option<u32>, window_s: Option<u64>) -> RestartPolicy {
        RestartPolicy {
            condition,
            delay: Duration::from_secs(5),
            max_attempts: max,
            window: window_s.map(Duration::from_secs),
        }
    }

    const RESTART: &str = "restart";

    fn short(d: &RestartDecision) -> String {
        match d {
            RestartDecision::RestartAfter(delay) => {
                assert_eq!(*delay, Duration::from_secs(5));
                RESTART.to_string()
            }
            RestartDecision::GiveUp { reason } => format!("give up: {reason}"),
            RestartDecision::Stay { reason } => format!("stay: {reason}"),
        }
    }

    #[test]
    fn swarm_semantics() {
        use ExitStatus::{Code, Signal, Unknown};
        use RestartCondition::{Any, None as Never, OnFailure};
        type Step = (u64, ExitStatus, &'static str);
        #[rustfmt::skip]
        let cases: &[(&str, RestartPolicy, &[Step])] = &[
            ("none never restarts", policy(Never, None, None), &[(0, Code(1), "stay: exited with exit code 1; restart condition is none")]),
            ("on-failure stays on success", policy(OnFailure, None, None), &[(0, Code(0), "stay: exited with exit code 0; restart condition is on-failure")]),
            ("on-failure restarts on code, signal, unknown", policy(OnFailure, None, None), &[(0, Code(2), RESTART), (1, Signal(9), RESTART), (2, Unknown, RESTART)]),
            ("any restarts on success", policy(Any, None, None), &[(0, Code(0), RESTART)]),
            ("max attempts for ever", policy(Any, Some(2), None), &[(0, Code(1), RESTART), (1000, Code(1), RESTART), (99999, Code(1), "give up: 2 restarts in total; max_attempts = 2")]),
            ("max attempts in a window", policy(OnFailure, Some(3), Some(120)), &[(0, Code(1), RESTART), (10, Code(1), RESTART), (20, Code(1), RESTART), (30, Code(1), "give up: 3 restarts within 2m0s; max_attempts = 3")]),
            ("the window slides", policy(OnFailure, Some(2), Some(60)), &[(0, Code(1), RESTART), (30, Code(1), RESTART), (59, Code(1), "give up: 2 restarts within 1m0s; max_attempts = 2"), (60, Code(1), RESTART), (89, Code(1), "give up: 2 restarts within 1m0s; max_attempts = 2"), (91, Code(1), RESTART)]),
            ("zero attempts never restart", policy(Any, Some(0), None), &[(0, Code(1), "give up: 0 restarts in total; max_attempts = 0")]),
            ("one attempt", policy(Any, Some(1), Some(10)), &[(0, Code(1), RESTART), (5, Code(1), "give up: 1 restart within 10s; max_attempts = 1")]),
        ];
        for (case, policy, steps) in cases {
            let t0 = Instant::now();
            let mut tracker = RestartTracker::new(policy.clone());
            for (i, (at, status, expected)) in steps.iter().enumerate() {
                let decision = tracker.on_exit(*status, t0 + Duration::from_secs(*at));
                assert_eq!(short(&decision), *expected, "{case}: step {i}");
            }
        }
    }

    #[test]
    fn counts_in_window() {
        let t0 = Instant::now();
        let mut tracker = RestartTracker::new(policy(RestartCondition::Any, None, Some(60)));
        tracker.on_exit(ExitStatus::Code(1), t0);
        tracker.on_exit(ExitStatus::Code(1), t0 + Duration::from_secs(30));
        assert_eq!(tracker.restarts_in_window(t0 + Duration::from_secs(45)), 2);
        assert_eq!(tracker.restarts_in_window(t0 + Duration::from_secs(75)), 1);
    }

    #[test]
    fn go_durations() {
        let cases = [
            (0, "0s"),
            (300, "300ms"),
            (1_500, "1.5s"),
            (45_000, "45s"),
            (120_000, "2m0s"),
            (5_400_000, "1h30m0s"),
            (3_600_000, "1h0m0s"),
        ];
        for (ms, expected) in cases {
            assert_eq!(go_duration(Duration::from_millis(ms)), expected);
        }
    }
}
