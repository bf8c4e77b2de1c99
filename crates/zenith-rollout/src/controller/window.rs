//! The metrics window each check of a rollout judges: a snapshot of the router's counters and of
//! the new replicas' CPU time when the window began, subtracted from the current ones. Also the
//! live per-revision figures `rollout status` shows. Kept in the controller, never journaled: a
//! restarted daemon has a new router and starts a fresh window.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;
use zenith_router::MetricsSnapshot;

use super::Controller;
use crate::analysis::Sample;
use crate::status::ReplicaState;

/// What the controller keeps beside the record and never journals: the base of each
/// service's metrics window and the smoke tests' results.
#[derive(Default)]
pub(super) struct Windows {
    bases: HashMap<String, Window>,
    pub probes: HashMap<String, Result<(), String>>,
    /// Live metrics for `rollout status`, refreshed about once a second.
    pub live: HashMap<String, BTreeMap<u64, Sample>>,
    pub live_at: Option<Instant>,
    /// The journaled form last written, so unchanged state is not written again.
    pub saved: Option<String>,
}

struct Window {
    metrics: MetricsSnapshot,
    at: Instant,
    /// Each replica's CPU time when it joined the window, and when that was: a replica adopted
    /// or started after the window began is measured from the moment it was first seen.
    cpu: HashMap<String, (Duration, Instant)>,
}

impl Controller {
    pub(super) fn reset_window(&mut self, service: &str) {
        let Some((_, router)) = self.routers.get(service) else {
            return;
        };
        let cpu = self
            .replicas
            .values()
            .filter(|r| r.service == service)
            .filter_map(|r| Some((r.id.clone(), (self.env.runtime.cpu_time(&r.record)?, Instant::now()))))
            .collect();
        self.windows.bases.insert(
            service.to_string(),
            Window {
                metrics: router.snapshot(),
                at: Instant::now(),
                cpu,
            },
        );
    }

    /// The metrics of revision `rev` of `service` since the window began.
    pub(super) fn window_sample(&mut self, service: &str, rev: u64) -> Option<Sample> {
        let router = self.routers.get(service)?.1.clone();
        if !self.windows.bases.contains_key(service) {
            self.reset_window(service);
        }
        let runtime = self.env.runtime.clone();
        let ready: Vec<(String, zenith_runtime::ReplicaRecord)> = self
            .replicas
            .values()
            .filter(|r| r.service == service && r.revision == rev && r.state == ReplicaState::Ready)
            .map(|r| (r.id.clone(), r.record.clone()))
            .collect();
        let base = self.windows.bases.get_mut(service)?;
        let metrics = router.snapshot().since(&base.metrics);
        let window = base.at.elapsed();
        let m = metrics.per_revision.get(&rev).cloned().unwrap_or_default();
        let mut cpu = Vec::new();
        for (id, record) in &ready {
            let Some(now) = runtime.cpu_time(record) else { continue };
            match base.cpu.get(id) {
                Some((before, since)) if since.elapsed() >= Duration::from_millis(500) => {
                    cpu.push(now.saturating_sub(*before).as_secs_f64() * 100.0 / since.elapsed().as_secs_f64());
                }
                Some(_) => {}
                None => {
                    base.cpu.insert(id.clone(), (now, Instant::now()));
                }
            }
        }
        let cpu_percent = (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64);
        Some(Sample::from_metrics(&m, window, cpu_percent, ready.len() as u32))
    }

    /// Refreshes the per-revision metrics `rollout status` shows, about once a second.
    pub(super) fn refresh_live(&mut self) {
        let Some(record) = self.rollout.clone() else {
            return;
        };
        if self
            .windows
            .live_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.windows.live_at = Some(Instant::now());
        for service in record.services.keys() {
            let mut live = BTreeMap::new();
            for rev in [record.stable, record.revision] {
                if let Some(sample) = self.window_sample(service, rev) {
                    live.insert(rev, sample);
                }
            }
            self.windows.live.insert(service.clone(), live);
        }
    }
}
