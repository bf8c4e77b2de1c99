//! The data plane: one HTTP listener per service that spreads requests over the backends the
//! daemon gives it, drains leaving backends, and measures every request per revision. It knows
//! nothing of what a canary or a rollout is; callers set backends and weights.
//!
//! Contract used by the daemon (kept stable; extend, do not change):
//! - `Router::bind(listen: SocketAddr, config: RouterConfig) -> io::Result<Router>` starts
//!   serving on a background task; `Router` is a cheap `Clone` handle.
//! - `router.local_addr() -> SocketAddr`.
//! - `router.set_backends(Vec<Backend>)` atomically replaces the set; a backend missing from
//!   the new set gets no new request.
//! - `router.set_weights(Option<BTreeMap<u64, u32>>)`: per-revision weights; `None` spreads by
//!   member count (what a rolling update wants).
//! - `router.drain(id, timeout).await -> DrainOutcome` waits until the (already removed)
//!   backend has no request in flight, or the timeout passes.
//! - `router.metrics() -> RouterMetrics` with per-revision counters and latency percentiles;
//!   `render_prometheus(&[(service_labels, RouterMetrics)]) -> String`.
//! - `router.shutdown().await` stops accepting, finishes in-flight requests.
//!
//! Extensions: `router.snapshot() -> MetricsSnapshot` and `MetricsSnapshot::since` give the
//! metrics of a window (what canary analysis reads); `router.forget_revision(rev)` frees the
//! counters of a revision that is gone for good.
//!
//! Rollouts: `router.set_pins(Option<Pins>)` names the stable and canary revisions of a
//! rollout in progress and turns sticky sessions on or off; `None` (the default) means no
//! rollout. With pins, a request whose `X-Zenith-Version` header says `canary`, `stable`,
//! `rN` or `N` goes to that revision whenever it has backends in the set, at any weight, and
//! gets no cookie; the header itself reaches the backend unchanged. With `sticky`, a client
//! whose cookie `zenith-<service>` (the label with every character other than `[A-Za-z0-9-]`
//! turned into `-`) says `rN`, for a revision in the weights map (at any weight, 0 included;
//! any revision when weights are `None`) with backends in the set, goes to that revision and
//! gets no cookie; any other client is drawn by weight and answered with `Set-Cookie:
//! zenith-<service>=rN; Path=/; HttpOnly; SameSite=Lax` for the revision that served it.
//! Other cookies pass through untouched, and a pinned request still fails over to other
//! backends when its revision cannot answer. Without pins neither header nor cookie is read.

mod balance;
mod body;
mod config;
mod control;
mod headers;
mod listener;
mod metrics;
mod pool;
mod prometheus;
mod proxy;
mod sticky;
mod workers;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::TokioTimer;
use tokio::sync::watch;

pub use config::{Backend, DrainOutcome, Pins, RouterConfig, RouterError};
pub use metrics::{MetricsSnapshot, RevisionMetrics, RouterMetrics};
pub use prometheus::render_prometheus;

/// Everything a request, a connection or a control call needs; one per router.
pub(crate) struct Shared {
    config: RouterConfig,
    local_addr: SocketAddr,
    plan: ArcSwap<balance::Plan>,
    /// Request sequence number: drives the weighted draw and the round-robin start.
    seq: AtomicU64,
    connector: pool::Connector,
    http: hyper::server::conn::http1::Builder,
    metrics: metrics::Registry,
    tracker: listener::Tracker,
    phase: watch::Sender<listener::Phase>,
    control: Mutex<control::Control>,
}

/// A running reverse proxy for one service; clones share the same router.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use zenith_router::{Backend, Router, RouterConfig};
/// let router = Router::bind("127.0.0.1:8080".parse().unwrap(), RouterConfig::default())?;
/// router.set_backends(vec![Backend {
///     id: "web-1".into(),
///     addr: "127.0.0.1:9001".parse().unwrap(),
///     revision: 1,
/// }]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

impl Router {
    /// Listens on `listen` and serves on a spawned task. Must be called inside a tokio
    /// runtime; a port already in use is an error here, not later.
    pub fn bind(listen: SocketAddr, config: RouterConfig) -> std::io::Result<Router> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RouterError::NoRuntime {
                service: config.service,
            }
            .into());
        }
        let listener = listener::bind(listen, &config.service)?;
        let local_addr = listener.local_addr()?;

        let connector = pool::Connector::new(config.connect_timeout);
        let mut http = hyper::server::conn::http1::Builder::new();
        // Proxied messages are small as a rule: one flattened buffer and one `write` beat
        // a vectored write of a head and a few body bytes.
        http.keep_alive(true)
            .writev(false)
            .header_read_timeout(config.header_read_timeout);
        if config.header_read_timeout.is_some() {
            http.timer(TokioTimer::new());
        }

        let control = Mutex::new(control::Control::new(&config.service));
        let shared = Arc::new(Shared {
            config,
            local_addr,
            plan: ArcSwap::default(),
            seq: AtomicU64::new(0),
            connector,
            http,
            metrics: metrics::Registry::default(),
            tracker: listener::Tracker::default(),
            phase: watch::Sender::new(listener::Phase::Serving),
            control,
        });
        tracing::info!(service = %shared.config.service, addr = %local_addr, "router listening");
        tokio::spawn(listener::accept_loop(Arc::clone(&shared), listener));
        let reap_every = (shared.config.pool_idle_timeout / 2).max(Duration::from_millis(100));
        tokio::spawn(control::reap_idle(Arc::downgrade(&shared), reap_every));
        Ok(Router { shared })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Atomically replaces the backend set. Backends left out get no new request; what is in
    /// flight to them continues (see [`Router::drain`]).
    pub fn set_backends(&self, backends: Vec<Backend>) {
        self.shared.set_backends(backends);
    }

    /// `None` spreads requests over all backends by in-flight load; `Some` draws a revision by
    /// weight first (revisions absent or at 0 get nothing), then a backend within it.
    pub fn set_weights(&self, weights: Option<BTreeMap<u64, u32>>) {
        self.shared.set_weights(weights);
    }

    /// Starts (`Some`) or ends (`None`) a rollout's routing: the `X-Zenith-Version` header and,
    /// with [`Pins::sticky`], the session cookie (see the crate documentation). Takes effect
    /// with the next request, like [`Router::set_weights`].
    ///
    /// ```no_run
    /// # fn demo(router: &zenith_router::Router) {
    /// use std::collections::BTreeMap;
    /// use zenith_router::Pins;
    /// router.set_weights(Some(BTreeMap::from([(6, 90), (7, 10)])));
    /// router.set_pins(Some(Pins { stable: Some(6), canary: Some(7), sticky: true }));
    /// # }
    /// ```
    pub fn set_pins(&self, pins: Option<Pins>) {
        self.shared.set_pins(pins);
    }

    /// Resolves when backend `id`, already removed with [`Router::set_backends`], has no
    /// request or upgraded connection in flight, or when `timeout` passes; then its upgraded
    /// connections are closed and counted in [`DrainOutcome::cut`]. An unknown id has nothing
    /// in flight and resolves at once; an id still in the set is refused (`drained: false`).
    pub fn drain(&self, id: &str, timeout: Duration) -> impl Future<Output = DrainOutcome> + Send + 'static {
        let target = self.shared.drain_target(id, timeout);
        let service = self.shared.config.service.clone();
        async move {
            match target {
                Ok(Some(state)) => control::drain(service, state, timeout).await,
                Ok(None) => DrainOutcome { drained: true, cut: 0 },
                Err(control::StillInSet) => DrainOutcome { drained: false, cut: 0 },
            }
        }
    }

    /// Cumulative metrics per revision since the router started.
    pub fn metrics(&self) -> RouterMetrics {
        self.shared.metrics.snapshot().metrics()
    }

    /// Counters and histograms now; subtract an earlier snapshot for a window:
    /// `router.snapshot().since(&at_step_start)`.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Drops the counters of `revision` (they restart from zero if it is used again).
    pub fn forget_revision(&self, revision: u64) {
        self.shared.metrics.forget(revision);
    }

    /// Stops accepting, lets open requests and connections finish, and closes whatever is
    /// still open after `timeout`; the outcome counts the connections closed.
    pub async fn shutdown(&self, timeout: Duration) -> DrainOutcome {
        control::shutdown(Arc::clone(&self.shared), timeout).await
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("service", &self.shared.config.service)
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}
