//! The daemon's side of the router: replacing the backend set, changing weights and pins,
//! draining a backend that left, and shutting down. These run rarely and may lock; the request path only
//! ever reads the compiled plan.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::Shared;
use crate::balance::{BackendState, Plan};
use crate::config::{Backend, DrainOutcome, Pins};
use crate::listener::Phase;

/// A drain was asked for a backend that is still in the set.
pub(crate) struct StillInSet;

/// What the plan is compiled from, plus the backends that left and may still be busy.
pub(crate) struct Control {
    current: Vec<Arc<BackendState>>,
    leaving: HashMap<String, Arc<BackendState>>,
    weights: Option<BTreeMap<u64, u32>>,
    pins: Option<Pins>,
    /// The sticky cookie's name, fixed by the service label.
    cookie: String,
}

impl Control {
    pub(crate) fn new(service: &str) -> Self {
        Self {
            current: Vec::new(),
            leaving: HashMap::new(),
            weights: None,
            pins: None,
            cookie: crate::sticky::cookie_name(service),
        }
    }

    /// Every change recompiles the whole plan, pins included, so no request can see the
    /// pins of one view with the weights of another.
    fn plan(&self, backends: &[Arc<BackendState>]) -> Arc<Plan> {
        let weights = self.weights.as_ref();
        let plan = Plan::build(backends, weights).with_pins(self.pins.as_ref(), &self.cookie, weights);
        Arc::new(plan)
    }
}

impl Shared {
    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_backends(&self, backends: Vec<Backend>) {
        let mut control = self.control();
        let mut old: HashMap<String, Arc<BackendState>> =
            control.current.drain(..).map(|s| (s.backend.id.clone(), s)).collect();
        let mut next = Vec::with_capacity(backends.len());
        // Same id, new address or revision: the old state still counts its in-flight
        // requests, so it leaves like a removed backend (but cannot be drained by id, which
        // now names the new one).
        let mut replaced = Vec::new();
        for backend in backends {
            // Keep the state (and its in-flight count) of a backend that stays or comes back.
            let prior = old.remove(&backend.id).or_else(|| control.leaving.remove(&backend.id));
            let state = match prior {
                Some(state) if state.backend == backend => state,
                prior => {
                    replaced.extend(prior);
                    let stats = self.metrics.revision(backend.revision);
                    Arc::new(BackendState::new(backend, stats, self.config.pool_idle_timeout))
                }
            };
            state.set_leaving(false);
            next.push(state);
        }
        // Swap first, flag second: see `BackendState::try_acquire`.
        self.plan.store(control.plan(&next));
        for (id, state) in old {
            state.set_leaving(true);
            if state.in_flight() == 0 {
                state.idle.notify_waiters();
            }
            control.leaving.insert(id, state);
        }
        for state in replaced {
            state.set_leaving(true);
        }
        // A leaving backend with nothing in flight will never get anything again.
        control.leaving.retain(|_, s| s.in_flight() > 0);
        tracing::info!(
            service = %self.config.service,
            backends = next.len(),
            leaving = control.leaving.len(),
            "backend set replaced"
        );
        control.current = next;
    }

    pub(crate) fn set_weights(&self, weights: Option<BTreeMap<u64, u32>>) {
        let mut control = self.control();
        tracing::info!(service = %self.config.service, ?weights, "weights set");
        control.weights = weights;
        self.plan.store(control.plan(&control.current));
    }

    pub(crate) fn set_pins(&self, pins: Option<Pins>) {
        let mut control = self.control();
        tracing::info!(service = %self.config.service, ?pins, "pins set");
        control.pins = pins;
        self.plan.store(control.plan(&control.current));
    }

    /// Looks the backend up now, so the returned future owns all it needs. `Err` when the
    /// backend is still in the set: draining it would cut a live replica's connections.
    pub(crate) fn drain_target(&self, id: &str, timeout: Duration) -> Result<Option<Arc<BackendState>>, StillInSet> {
        let control = self.control();
        if control.current.iter().any(|s| s.backend.id == id) {
            tracing::warn!(
                service = %self.config.service,
                backend = id,
                "drain asked for a backend still in the set; remove it first"
            );
            return Err(StillInSet);
        }
        let state = control.leaving.get(id).cloned();
        tracing::debug!(service = %self.config.service, backend = id, ?timeout, "draining");
        Ok(state)
    }
}

/// Closes pooled backend connections that sat idle longer than the configured timeout, also
/// when no request comes by to notice them; ends once the router is gone.
pub(crate) async fn reap_idle(shared: Weak<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let backends: Vec<_> = {
            let control = shared.control();
            control
                .current
                .iter()
                .chain(control.leaving.values())
                .cloned()
                .collect()
        };
        backends.iter().for_each(|b| b.evict_idle());
    }
}

/// Waits until `state` has nothing in flight or `timeout` passes; then cuts its tunnels.
pub(crate) async fn drain(service: String, state: Arc<BackendState>, timeout: Duration) -> DrainOutcome {
    let deadline = Instant::now() + timeout;
    loop {
        let idle = state.idle.notified();
        tokio::pin!(idle);
        // Register before checking, so a release between check and wait is not missed.
        idle.as_mut().enable();
        if state.in_flight() == 0 {
            tracing::info!(%service, backend = %state.backend.id, "backend drained");
            return DrainOutcome { drained: true, cut: 0 };
        }
        if tokio::time::timeout_at(deadline, idle).await.is_err() {
            break;
        }
    }
    let cut = state.in_flight();
    state.cut.send_replace(true);
    tracing::warn!(%service, backend = %state.backend.id, cut, "drain timed out");
    DrainOutcome { drained: cut == 0, cut }
}

/// Stops accepting, waits for open connections and tunnels, and closes what is left at the
/// deadline.
pub(crate) async fn shutdown(shared: Arc<Shared>, timeout: Duration) -> DrainOutcome {
    let deadline = Instant::now() + timeout;
    shared.phase.send_if_modified(|p| {
        let changed = *p == Phase::Serving;
        if changed {
            *p = Phase::Draining;
        }
        changed
    });
    loop {
        let idle = shared.tracker.idle().notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        if shared.tracker.open() == 0 {
            return DrainOutcome { drained: true, cut: 0 };
        }
        if tokio::time::timeout_at(deadline, idle).await.is_err() {
            break;
        }
    }
    let cut = shared.tracker.open() as u64;
    shared.phase.send_replace(Phase::Closed);
    tracing::warn!(service = %shared.config.service, cut, "shutdown deadline passed, closing connections");
    DrainOutcome { drained: cut == 0, cut }
}
