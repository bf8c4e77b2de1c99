//! The rolling-update arithmetic, as a pure function: given how many replicas of the old and
//! new revisions exist and how many of them are ready, how many new ones to start and how many
//! old ones to stop now. The executor calls it on every change; `--dry-run` calls it in a loop
//! where every replica becomes ready at once. Same rules as a Kubernetes Deployment: never more
//! than `replicas + max_surge` replicas, never fewer than `replicas - max_unavailable` ready.

use zenith_spec::{Rolling, UpdateOrder};

/// What exists right now for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Replicas of older revisions (all of them: ready, starting, unhealthy).
    pub old_total: u32,
    pub old_ready: u32,
    /// Replicas of the desired revision, pending restarts included.
    pub new_total: u32,
    pub new_ready: u32,
}

/// What to do now. `stop_old` counts old replicas to take away (not-ready ones first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    pub start_new: u32,
    pub stop_old: u32,
    /// Surplus replicas of the desired revision (scaling down).
    pub stop_new: u32,
}

impl Step {
    pub fn is_empty(&self) -> bool {
        *self == Step::default()
    }
}

/// One step of a rolling update towards `replicas` replicas of the new revision.
pub fn step(replicas: u32, rolling: &Rolling, now: Counts) -> Step {
    let max_total = replicas + rolling.max_surge;
    let min_ready = replicas.saturating_sub(rolling.max_unavailable);
    let total = now.old_total + now.new_total;
    let ready = now.old_ready + now.new_ready;

    // Scaling down within the new revision once no old replica is left.
    if now.old_total == 0 {
        return Step {
            start_new: replicas.saturating_sub(now.new_total),
            stop_new: now.new_total.saturating_sub(replicas),
            ..Step::default()
        };
    }

    // Old replicas that are not ready serve nobody: they can always go.
    let old_unready = now.old_total - now.old_ready;
    let mut stop_old = old_unready;
    // Ready old replicas can go while enough stay ready overall.
    stop_old += ready.saturating_sub(min_ready).min(now.old_ready);
    // Never stop an old replica before its replacement exists when no unavailability is
    // allowed: the `min_ready` bound above already ensures that.
    let want_new = replicas.saturating_sub(now.new_total);

    let start_room = max_total.saturating_sub(total);
    match rolling.order {
        UpdateOrder::StartFirst => {
            let start_new = want_new.min(start_room);
            Step {
                start_new,
                stop_old: stop_old.min(now.old_total),
                stop_new: 0,
            }
        }
        UpdateOrder::StopFirst => {
            let stop_old = stop_old.min(now.old_total);
            // Room freed by the stops counts at once: stop, then start in its place.
            let start_room = max_total.saturating_sub(total - stop_old);
            Step {
                start_new: want_new.min(start_room),
                stop_old,
                stop_new: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rolling(surge: u32, unavailable: u32, order: UpdateOrder) -> Rolling {
        Rolling {
            max_surge: surge,
            max_unavailable: unavailable,
            order,
            progress_deadline: Duration::from_secs(60),
        }
    }

    /// Runs a whole update where started replicas become ready one round later, checking the
    /// bounds after every step; returns the number of rounds.
    fn simulate(replicas: u32, old: u32, r: &Rolling) -> u32 {
        let mut c = Counts {
            old_total: old,
            old_ready: old,
            ..Counts::default()
        };
        let min_ready = replicas.saturating_sub(r.max_unavailable).min(old);
        for round in 1..100 {
            // Last round's starts became ready.
            c.new_ready = c.new_total;
            let s = step(replicas, r, c);
            if s.is_empty() {
                assert_eq!(c.old_total, 0, "stuck at {c:?}");
                assert_eq!(c.new_total, replicas);
                return round;
            }
            let stop_ready = s.stop_old.saturating_sub(c.old_total - c.old_ready);
            c.old_total -= s.stop_old;
            c.old_ready -= stop_ready;
            c.new_total = c.new_total + s.start_new - s.stop_new;
            c.new_ready = c.new_ready.min(c.new_total);
            assert!(
                c.old_total + c.new_total <= replicas.max(old) + r.max_surge,
                "too many replicas at {c:?} after {s:?}"
            );
            assert!(
                c.old_ready + c.new_ready >= min_ready,
                "too few ready at {c:?} after {s:?}"
            );
        }
        panic!("update did not finish");
    }

    #[test]
    fn start_first_with_one_surge_replaces_one_at_a_time() {
        let r = rolling(1, 0, UpdateOrder::StartFirst);
        let c = Counts {
            old_total: 3,
            old_ready: 3,
            ..Counts::default()
        };
        assert_eq!(
            step(3, &r, c),
            Step {
                start_new: 1,
                stop_old: 0,
                stop_new: 0
            }
        );
        // The new one is not ready yet: wait.
        let c = Counts { new_total: 1, ..c };
        assert_eq!(step(3, &r, c), Step::default());
        // Ready: one old may go, and there is no room for another start until it has.
        let c = Counts { new_ready: 1, ..c };
        assert_eq!(
            step(3, &r, c),
            Step {
                start_new: 0,
                stop_old: 1,
                stop_new: 0
            }
        );
        assert_eq!(simulate(3, 3, &r), 7);
    }

    #[test]
    fn stop_first_never_exceeds_the_replica_count() {
        let r = rolling(0, 1, UpdateOrder::StopFirst);
        let c = Counts {
            old_total: 3,
            old_ready: 3,
            ..Counts::default()
        };
        assert_eq!(
            step(3, &r, c),
            Step {
                start_new: 1,
                stop_old: 1,
                stop_new: 0
            }
        );
        simulate(3, 3, &r);
    }

    #[test]
    fn every_combination_converges_within_bounds() {
        for replicas in 0..6 {
            for old in 0..6 {
                for surge in 0..3 {
                    for unavailable in 0..3 {
                        if surge == 0 && unavailable == 0 {
                            continue; // rejected by validation: it could never progress
                        }
                        for order in [UpdateOrder::StartFirst, UpdateOrder::StopFirst] {
                            simulate(replicas, old, &rolling(surge, unavailable, order));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unready_old_replicas_go_first() {
        let r = rolling(1, 0, UpdateOrder::StartFirst);
        let c = Counts {
            old_total: 3,
            old_ready: 1,
            new_total: 1,
            new_ready: 0,
        };
        assert_eq!(step(3, &r, c).stop_old, 2);
    }

    #[test]
    fn scaling_within_a_revision() {
        let r = rolling(1, 0, UpdateOrder::StartFirst);
        let c = Counts {
            new_total: 5,
            new_ready: 5,
            ..Counts::default()
        };
        assert_eq!(step(2, &r, c).stop_new, 3);
        let c = Counts {
            new_total: 1,
            new_ready: 1,
            ..Counts::default()
        };
        assert_eq!(step(4, &r, c).start_new, 3);
    }
}
