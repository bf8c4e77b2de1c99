//! Judging a replica's health from its probe results, as Docker does: failures during the
//! start period do not count while the replica has never been healthy, a success makes it
//! healthy at once, and `retries` consecutive failures make it unhealthy. Pure: the caller
//! passes the time of each probe, so the rules are tested without a clock.

use std::time::{Duration, Instant};

use zenith_spec::HealthCheck;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    /// Not yet healthy and not yet past its allowance of failures.
    Starting,
    Healthy,
    Unhealthy {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct HealthTracker {
    started_at: Instant,
    interval: Duration,
    start_period: Duration,
    retries: u32,
    state: HealthState,
    failing_streak: u32,
    last_probe: Option<Instant>,
}

impl HealthTracker {
    /// A tracker for a replica that started at `started_at`.
    pub fn new(check: &HealthCheck, started_at: Instant) -> Self {
        Self {
            started_at,
            interval: check.interval,
            start_period: check.start_period,
            // Zero retries would make a replica unhealthy without any failure; Docker's
            // validation forbids it, ours should too, and here it means one.
            retries: check.retries.max(1),
            state: HealthState::Starting,
            failing_streak: 0,
            last_probe: None,
        }
    }

    pub fn state(&self) -> &HealthState {
        &self.state
    }

    /// Consecutive failures counted so far (those in the start period excluded).
    pub fn failing_streak(&self) -> u32 {
        self.failing_streak
    }

    /// When the next probe is due: one interval after the last probe (or after the start).
    pub fn next_probe_at(&self) -> Instant {
        self.last_probe.unwrap_or(self.started_at) + self.interval
    }

    /// Records the result of a probe that ran at `now`. Returns the new state when it changed.
    pub fn record(&mut self, now: Instant, outcome: Result<(), String>) -> Option<HealthState> {
        self.last_probe = Some(now);
        let next = match outcome {
            Ok(()) => {
                self.failing_streak = 0;
                HealthState::Healthy
            }
            Err(reason) => {
                let in_start_period = self.state == HealthState::Starting
                    && now.saturating_duration_since(self.started_at) < self.start_period;
                if in_start_period {
                    return None;
                }
                self.failing_streak = self.failing_streak.saturating_add(1);
                if self.failing_streak < self.retries {
                    return None;
                }
                if matches!(self.state, HealthState::Unhealthy { .. }) {
                    // Still unhealthy: keep the reason that made it so, no new transition.
                    return None;
                }
                HealthState::Unhealthy {
                    reason: format!("{} consecutive failed probes; last: {reason}", self.failing_streak),
                }
            }
        };
        if next == self.state {
            return None;
        }
        self.state = next.clone();
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use zenith_spec::Probe;

    use super::*;

    fn check(retries: u32, start_period_s: u64) -> HealthCheck {
        HealthCheck {
            probe: Probe::Tcp,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            retries,
            start_period: Duration::from_secs(start_period_s),
        }
    }

    /// Short forms for the table: (seconds since start, probe ok) → expected transition.
    const H: Option<&str> = Some("healthy");
    const U: Option<&str> = Some("unhealthy");

    fn name(state: &HealthState) -> &'static str {
        match state {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy { .. } => "unhealthy",
        }
    }

    #[test]
    fn docker_semantics() {
        type Step = (u64, bool, Option<&'static str>);
        #[rustfmt::skip]
        let cases: &[(&str, u32, u64, &[Step])] = &[
            ("failures in the start period do not count", 3, 30, &[(10, false, None), (20, false, None), (29, false, None), (40, false, None), (50, false, None), (60, false, U)]),
            ("a success in the start period is healthy at once", 3, 30, &[(5, true, H)]),
            ("retries consecutive failures after start", 2, 0, &[(10, false, None), (20, false, U)]),
            ("one success resets the streak", 2, 0, &[(10, false, None), (20, true, H), (30, false, None), (40, true, None), (50, false, None), (60, false, U)]),
            ("recovery after unhealthy", 1, 0, &[(10, false, U), (20, false, None), (30, true, H)]),
            ("start period ends with the first success", 2, 100, &[(10, true, H), (20, false, None), (30, false, U)]),
            ("zero retries mean one", 0, 0, &[(10, false, U)]),
        ];
        for (case, retries, start_period, steps) in cases {
            let t0 = Instant::now();
            let mut tracker = HealthTracker::new(&check(*retries, *start_period), t0);
            for (i, (at, ok, expected)) in steps.iter().enumerate() {
                let now = t0 + Duration::from_secs(*at);
                let outcome = if *ok {
                    Ok(())
                } else {
                    Err("GET /health → 500".to_string())
                };
                let got = tracker.record(now, outcome);
                assert_eq!(got.as_ref().map(name), *expected, "{case}: step {i}");
            }
        }
    }

    #[test]
    fn unhealthy_reason_names_the_last_failure() {
        let t0 = Instant::now();
        let mut tracker = HealthTracker::new(&check(2, 0), t0);
        tracker.record(t0, Err("connection refused".into()));
        let state = tracker.record(t0 + Duration::from_secs(10), Err("GET /health → 503".into()));
        assert_eq!(
            state,
            Some(HealthState::Unhealthy {
                reason: "2 consecutive failed probes; last: GET /health → 503".into()
            })
        );
    }

    #[test]
    fn next_probe_follows_the_last_one() {
        let t0 = Instant::now();
        let mut tracker = HealthTracker::new(&check(3, 0), t0);
        assert_eq!(tracker.next_probe_at(), t0 + Duration::from_secs(10));
        tracker.record(t0 + Duration::from_secs(12), Ok(()));
        assert_eq!(tracker.next_probe_at(), t0 + Duration::from_secs(22));
    }
}
