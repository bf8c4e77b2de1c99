//! Choosing a backend for each request. The daemon's view (backends and weights) is compiled
//! into an immutable [`Plan`] that the request path reads through `arc-swap` without a lock.
//!
//! Revision first, then replica: with weights, a revision is drawn by weight using a Weyl
//! sequence (deterministic and evenly spread, so a 10 % canary gets 10 % of any stretch of
//! requests, not 10 % on average); without weights all replicas form one group. Within a
//! group the replica with the fewest requests in flight wins, scanning from a rotating start
//! so ties (the idle case) become round robin. Least-in-flight over round robin because a
//! replica that stalls (a slow request, a GC pause, a cold start) piles up in-flight requests
//! and stops receiving new ones, while round robin keeps feeding it; the scan costs a few
//! atomic loads for the handful of replicas one host runs.
//! During a rollout the plan also carries the compiled pins (`sticky`): a request pinned to a
//! revision by header or cookie skips the draw and goes to that revision's replicas.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::time::Duration;

use http::HeaderValue;
use tokio::sync::{Notify, watch};

use crate::config::{Backend, Pins};
use crate::metrics::RevisionStats;
use crate::pool::Pool;
use crate::sticky::{Picked, Route, Table};
use crate::workers::{self, Workers};

/// Runtime state of one backend, shared by the plan, in-flight guards and drains.
pub(crate) struct BackendState {
    pub(crate) backend: Backend,
    /// The `Host` header for a client request that came without one.
    pub(crate) host: HeaderValue,
    pub(crate) stats: Arc<RevisionStats>,
    /// Idle keep-alive connections to this backend, one pool per connection worker.
    pools: Box<[Pool]>,
    in_flight: AtomicU64,
    /// Set once the backend left the set; requests that raced the swap back off on seeing it.
    leaving: AtomicBool,
    /// Woken when a leaving backend's last request finishes.
    pub(crate) idle: Notify,
    /// Flipped to true when a drain times out: upgraded connections close.
    pub(crate) cut: watch::Sender<bool>,
}

impl BackendState {
    pub(crate) fn new(backend: Backend, stats: Arc<RevisionStats>, pool_idle_timeout: Duration) -> Self {
        let host = HeaderValue::try_from(backend.addr.to_string()).expect("a socket address is a header value");
        Self {
            backend,
            host,
            stats,
            pools: (0..Workers::get().map_or(1, Workers::len))
                .map(|_| Pool::new(pool_idle_timeout))
                .collect(),
            in_flight: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
            idle: Notify::new(),
            cut: watch::Sender::new(false),
        }
    }

    /// The idle connections of the worker running this thread.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pools[workers::current() % self.pools.len()]
    }

    /// Closes the idle connections of every worker's pool that timed out.
    pub(crate) fn evict_idle(&self) {
        self.pools.iter().for_each(Pool::evict_expired);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::SeqCst)
    }

    pub(crate) fn set_leaving(&self, leaving: bool) {
        self.leaving.store(leaving, Ordering::SeqCst);
        if leaving {
            // No new request comes; requests in flight close their connection at the end.
            self.pools.iter().for_each(Pool::clear);
        } else {
            self.cut.send_replace(false);
        }
    }

    /// Counts a request in flight, unless the backend has just left the set. The SeqCst
    /// increment-then-check pairs with the swap-then-flag in `set_backends`: either the drain
    /// sees this request, or this request sees the flag and goes elsewhere.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.stats.enter();
        let guard = InFlight(Arc::clone(self));
        (!self.is_leaving()).then_some(guard)
    }
}

/// One request or upgraded connection in flight to a backend; released on drop.
pub(crate) struct InFlight(Arc<BackendState>);

impl InFlight {
    pub(crate) fn backend(&self) -> &Arc<BackendState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.stats.leave();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.is_leaving() {
            self.0.idle.notify_waiters();
        }
    }
}

struct Group {
    /// Exclusive upper bound of this group's slice of `0..total`.
    upper: u64,
    members: Vec<Arc<BackendState>>,
}

/// An immutable routing table: rebuilt on every change, read on every request.
#[derive(Default)]
pub(crate) struct Plan {
    groups: Vec<Group>,
    total: u64,
    all: Vec<Arc<BackendState>>,
    /// `None` outside a rollout, which keeps the request path free of header parsing.
    pins: Option<Table>,
}

impl Plan {
    /// Groups by revision when weights are given. Revisions without a weight get no traffic
    /// (a canary at 0 %); if no weighted revision has a replica the plan falls back to all
    /// replicas, because pointing traffic at nothing is never what the caller wants.
    pub(crate) fn build(backends: &[Arc<BackendState>], weights: Option<&BTreeMap<u64, u32>>) -> Self {
        let all = backends.to_vec();
        let mut groups = Vec::new();
        let mut total = 0;
        for (revision, weight) in weights.into_iter().flatten() {
            let members: Vec<_> = all
                .iter()
                .filter(|b| b.backend.revision == *revision)
                .cloned()
                .collect();
            if *weight > 0 && !members.is_empty() {
                total += u64::from(*weight);
                groups.push(Group { upper: total, members });
            }
        }
        if groups.is_empty() && !all.is_empty() {
            total = 1;
            groups.push(Group {
                upper: 1,
                members: all.clone(),
            });
        }
        Self {
            groups,
            total,
            all,
            pins: None,
        }
    }

    /// Adds the pins of a rollout, compiled against the same backends and weights.
    pub(crate) fn with_pins(mut self, pins: Option<&Pins>, cookie: &str, weights: Option<&BTreeMap<u64, u32>>) -> Self {
        self.pins = pins.map(|p| Table::build(p, cookie, &self.all, weights));
        self
    }

    /// How a request with these headers is routed; one branch when there are no pins.
    pub(crate) fn route(&self, headers: &http::HeaderMap) -> Route {
        self.pins.as_ref().map_or(Route::Draw, |pins| pins.route(headers))
    }

    /// [`Plan::pick`] along `route`, with the `Set-Cookie` the answer needs. The cookie names
    /// the revision that serves, not the one drawn, should a failed attempt have moved the
    /// request: the client's next request then sees the version it just saw. A pinned
    /// revision whose replicas are all excluded falls back like a drawn one.
    pub(crate) fn pick_routed(&self, route: Route, seq: u64, exclude: &[Arc<BackendState>]) -> Option<Picked<'_>> {
        match (route, &self.pins) {
            (Route::To(revision), Some(pins)) => least_in_flight(pins.members(revision), seq, exclude)
                .or_else(|| least_in_flight(&self.all, seq, exclude))
                .map(|b| (b, None)),
            (Route::DrawAndStick, Some(pins)) => {
                let backend = self.pick(seq, exclude)?;
                Some((backend, pins.set_cookie(backend.backend.revision)))
            }
            _ => self.pick(seq, exclude).map(|b| (b, None)),
        }
    }

    /// Picks a backend for the `seq`-th request, skipping `exclude` (backends that already
    /// failed this request). Falls back to any replica of the set when the drawn revision has
    /// none left, since a retry must not fail just because the canary's only replica died.
    pub(crate) fn pick(&self, seq: u64, exclude: &[Arc<BackendState>]) -> Option<&Arc<BackendState>> {
        let group = match self.groups.as_slice() {
            [] => return None,
            [only] => only,
            groups => {
                // Weyl sequence: the fractional parts of seq·φ spread evenly over [0, 1).
                let x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let slot = ((u128::from(x) * u128::from(self.total)) >> 64) as u64;
                groups.iter().find(|g| slot < g.upper).unwrap_or(&groups[0])
            }
        };
        least_in_flight(&group.members, seq, exclude).or_else(|| least_in_flight(&self.all, seq, exclude))
    }
}

fn least_in_flight<'a>(
    members: &'a [Arc<BackendState>],
    seq: u64,
    exclude: &[Arc<BackendState>],
) -> Option<&'a Arc<BackendState>> {
    let n = members.len();
    if n == 0 {
        return None;
    }
    let start = (seq % n as u64) as usize;
    let mut best: Option<(&Arc<BackendState>, u64)> = None;
    for i in 0..n {
        let candidate = &members[(start + i) % n];
        if exclude.iter().any(|e| Arc::ptr_eq(e, candidate)) {
            continue;
        }
        let load = candidate.in_flight.load(Ordering::Relaxed);
        if best.is_none_or(|(_, b)| load < b) {
            best = Some((candidate, load));
            if load == 0 {
                break;
            }
        }
    }
    best.map(|(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str, port: u16, revision: u64) -> Arc<BackendState> {
        let backend = Backend {
            id: id.into(),
            addr: ([127, 0, 0, 1], port).into(),
            revision,
        };
        Arc::new(BackendState::new(backend, Arc::default(), Duration::from_secs(60)))
    }

    #[test]
    fn weights_split_evenly_over_any_stretch() {
        let set = [state("a", 1, 1), state("b", 2, 2)];
        let plan = Plan::build(&set, Some(&BTreeMap::from([(1, 90), (2, 10)])));
        let canary = |range: std::ops::Range<u64>| {
            range
                .filter(|s| plan.pick(*s, &[]).unwrap().backend.revision == 2)
                .count()
        };
        assert_eq!(canary(0..1000), 100);
        assert!((8..=12).contains(&canary(5000..5100)));
    }

    #[test]
    fn unweighted_revision_gets_nothing_and_empty_weights_fall_back() {
        let set = [state("a", 1, 1), state("b", 2, 2)];
        let plan = Plan::build(&set, Some(&BTreeMap::from([(1, 1), (2, 0)])));
        assert!((0..100).all(|s| plan.pick(s, &[]).unwrap().backend.revision == 1));
        let plan = Plan::build(&set, Some(&BTreeMap::from([(3, 1)])));
        assert_eq!(
            (0..100)
                .filter(|s| plan.pick(*s, &[]).unwrap().backend.id == "b")
                .count(),
            50
        );
    }

    #[test]
    fn exclusion_falls_back_to_other_revisions() {
        let set = [state("a", 1, 1), state("b", 2, 2)];
        let plan = Plan::build(&set, Some(&BTreeMap::from([(2, 1)])));
        let retry = plan.pick(0, &[Arc::clone(&set[1])]).unwrap();
        assert_eq!(retry.backend.id, "a");
        assert!(plan.pick(0, &set).is_none());
    }

    #[test]
    fn least_in_flight_avoids_a_busy_replica() {
        let set = [state("a", 1, 1), state("b", 2, 1)];
        let plan = Plan::build(&set, None);
        let _busy = set[0].try_acquire().unwrap();
        assert!((0..10).all(|s| plan.pick(s, &[]).unwrap().backend.id == "b"));
    }
}
