//! Per-revision request accounting, measured by the router itself so canary analysis needs no
//! external metrics system. Counters are cumulative and never reset; windows come from
//! subtracting two [`MetricsSnapshot`]s, which keep the full latency histograms so that
//! percentiles of a window are exact to the histogram's precision, not averages of averages.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Counter shards per revision. Two worker threads recording into one locked histogram
/// would contend on every request; a few shards picked per thread keep the lock uncontended.
const SHARDS: usize = 4;
/// Latencies above an hour are clamped; two significant digits (1 %) are plenty for
/// percentiles and keep each histogram at a few tens of KiB.
const MAX_LATENCY_US: u64 = 3_600_000_000;
const SIGFIG: u8 = 2;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG).expect("static histogram bounds")
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS);
        }
        s.get()
    })
}

/// Live counters of one revision, updated on the request path.
pub(crate) struct RevisionStats {
    shards: [Shard; SHARDS],
    proxy_errors: AtomicU64,
}

/// One thread's share of a revision's counters. Aligned so that two threads never write to
/// the same cache line: a counter shared by all connections would move between cores on
/// every request.
#[repr(align(128))]
struct Shard {
    counts: Mutex<Counts>,
    /// Entered minus left on this shard; a request may leave on another thread than it
    /// entered, so only the sum over shards means something.
    in_flight: AtomicI64,
}

struct Counts {
    requests: u64,
    classes: [u64; 5],
    latency_sum_us: u64,
    latency: Histogram<u64>,
}

impl RevisionStats {
    pub(crate) fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Shard {
                counts: Mutex::new(Counts {
                    requests: 0,
                    classes: [0; 5],
                    latency_sum_us: 0,
                    latency: new_histogram(),
                }),
                in_flight: AtomicI64::new(0),
            }),
            proxy_errors: AtomicU64::new(0),
        }
    }

    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// Counts one answered request by the status the client saw and how long it took.
    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
        // A poisoned shard only means a panic elsewhere mid-record; the counts are still fine.
        let mut counts = self.shard().counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.requests += 1;
        if let Some(class) = (status / 100).checked_sub(1).filter(|c| *c < 5) {
            counts.classes[usize::from(class)] += 1;
        }
        counts.latency_sum_us = counts.latency_sum_us.saturating_add(us);
        counts.latency.saturating_record(us.min(MAX_LATENCY_US));
    }

    pub(crate) fn proxy_error(&self) {
        self.proxy_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn enter(&self) {
        self.shard().in_flight.fetch_add(1, Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.shard().in_flight.fetch_sub(1, Relaxed);
    }

    fn snapshot(&self) -> RevisionSnapshot {
        let mut snapshot = RevisionSnapshot {
            requests: 0,
            classes: [0; 5],
            proxy_errors: self.proxy_errors.load(Relaxed),
            in_flight: 0,
            latency_sum_us: 0,
            latency: new_histogram(),
        };
        let mut in_flight = 0i64;
        for shard in &self.shards {
            in_flight += shard.in_flight.load(Relaxed);
            let counts = shard.counts.lock().unwrap_or_else(|e| e.into_inner());
            snapshot.requests += counts.requests;
            for (sum, n) in snapshot.classes.iter_mut().zip(counts.classes) {
                *sum += n;
            }
            snapshot.latency_sum_us = snapshot.latency_sum_us.saturating_add(counts.latency_sum_us);
            snapshot.latency.add(&counts.latency).expect("same bounds");
        }
        // Shards are read one after another, so a request counted leaving on one but not yet
        // entering on another can make the sum dip below zero for an instant.
        snapshot.in_flight = u64::try_from(in_flight).unwrap_or(0);
        snapshot
    }
}

/// All revisions' live counters plus the requests that found no backend at all.
#[derive(Default)]
pub(crate) struct Registry {
    revisions: Mutex<BTreeMap<u64, Arc<RevisionStats>>>,
    pub(crate) unrouted: Arc<RevisionStats>,
}

impl Default for RevisionStats {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub(crate) fn revision(&self, revision: u64) -> Arc<RevisionStats> {
        let mut map = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(revision).or_default())
    }

    pub(crate) fn forget(&self, revision: u64) {
        let mut map = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&revision);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let revisions: Vec<_> = {
            let map = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().map(|(r, s)| (*r, Arc::clone(s))).collect()
        };
        MetricsSnapshot {
            taken_at: Instant::now(),
            revisions: revisions.iter().map(|(r, s)| (*r, s.snapshot())).collect(),
            unrouted: self.unrouted.snapshot(),
        }
    }
}

#[derive(Clone)]
struct RevisionSnapshot {
    requests: u64,
    classes: [u64; 5],
    proxy_errors: u64,
    in_flight: u64,
    latency_sum_us: u64,
    latency: Histogram<u64>,
}

impl RevisionSnapshot {
    /// What happened between `earlier` and `self`; the in-flight gauge stays current.
    fn since(&self, earlier: &Self) -> Self {
        let mut latency = self.latency.clone();
        // Counts only grow, so this cannot underflow unless the revision was forgotten and
        // recreated in between; then the whole later snapshot is the window.
        if latency.subtract(&earlier.latency).is_err() {
            return self.clone();
        }
        Self {
            requests: self.requests.saturating_sub(earlier.requests),
            classes: std::array::from_fn(|i| self.classes[i].saturating_sub(earlier.classes[i])),
            proxy_errors: self.proxy_errors.saturating_sub(earlier.proxy_errors),
            in_flight: self.in_flight,
            latency_sum_us: self.latency_sum_us.saturating_sub(earlier.latency_sum_us),
            latency,
        }
    }

    fn metrics(&self) -> RevisionMetrics {
        let ms = |us: u64| us as f64 / 1000.0;
        let empty = self.latency.is_empty();
        let q = |q: f64| {
            if empty {
                0.0
            } else {
                ms(self.latency.value_at_quantile(q))
            }
        };
        RevisionMetrics {
            requests: self.requests,
            status_1xx: self.classes[0],
            status_2xx: self.classes[1],
            status_3xx: self.classes[2],
            status_4xx: self.classes[3],
            status_5xx: self.classes[4],
            proxy_errors: self.proxy_errors,
            in_flight: self.in_flight,
            latency_p50_ms: q(0.5),
            latency_p95_ms: q(0.95),
            latency_p99_ms: q(0.99),
            latency_max_ms: if empty { 0.0 } else { ms(self.latency.max()) },
            latency_sum_ms: ms(self.latency_sum_us),
        }
    }
}

/// Counters of one revision over the router's life or over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RevisionMetrics {
    /// Requests answered (any status, including the router's own 502/503).
    pub requests: u64,
    pub status_1xx: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Failed attempts to reach a backend of this revision (connect failure, reset before or
    /// during the response), counted even when a retry elsewhere then answered the client,
    /// plus requests that found no backend (in [`RouterMetrics::unrouted`]).
    pub proxy_errors: u64,
    /// Requests and upgraded connections open right now (a gauge, also in windows).
    pub in_flight: u64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Sum of all latencies, for a Prometheus summary's `_sum`.
    pub latency_sum_ms: f64,
}

impl RevisionMetrics {
    /// Share of answered requests that were 5xx (the router's own 502/503 included); 0 when
    /// there were none.
    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.status_5xx as f64 / self.requests as f64
    }
}

/// Every revision's metrics, as returned by [`Router::metrics`](crate::Router::metrics).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RouterMetrics {
    pub per_revision: BTreeMap<u64, RevisionMetrics>,
    /// Requests answered 503 because no backend was set.
    pub unrouted: RevisionMetrics,
}

/// Cumulative counters and histograms at one instant. Take one at the start of a window and
/// one at its end; [`MetricsSnapshot::since`] gives the window's metrics.
#[derive(Clone)]
pub struct MetricsSnapshot {
    taken_at: Instant,
    revisions: BTreeMap<u64, RevisionSnapshot>,
    unrouted: RevisionSnapshot,
}

impl MetricsSnapshot {
    /// When the snapshot was taken.
    pub fn taken_at(&self) -> Instant {
        self.taken_at
    }

    /// Cumulative metrics since the router started.
    pub fn metrics(&self) -> RouterMetrics {
        RouterMetrics {
            per_revision: self.revisions.iter().map(|(r, s)| (*r, s.metrics())).collect(),
            unrouted: self.unrouted.metrics(),
        }
    }

    /// Metrics of what happened after `earlier` was taken, up to `self`.
    pub fn since(&self, earlier: &MetricsSnapshot) -> RouterMetrics {
        let window = |now: &RevisionSnapshot, then: Option<&RevisionSnapshot>| match then {
            Some(then) => now.since(then).metrics(),
            None => now.metrics(),
        };
        RouterMetrics {
            per_revision: self
                .revisions
                .iter()
                .map(|(r, s)| (*r, window(s, earlier.revisions.get(r))))
                .collect(),
            unrouted: window(&self.unrouted, Some(&earlier.unrouted)),
        }
    }
}

impl std::fmt::Debug for MetricsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSnapshot")
            .field("taken_at", &self.taken_at)
            .field("revisions", &self.revisions.keys().collect::<Vec<_>>())
            .finish()
    }
}
