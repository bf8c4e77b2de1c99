//! The reconcile pass that moves every service one rolling step towards the desired revision,
//! fails an update that makes no progress (falling back to the revision that was serving) and
//! declares it complete; and the graceful stop of everything.

use std::borrow::Cow;

use tokio::time::Instant;
use zenith_spec::{Rolling, UpdateOrder, UpdateStrategy};

use super::replica::Replica;
use super::{Controller, Outcome};
use crate::progressive::Stage;
use crate::rolling::{self, Counts};
use crate::status::{Phase, ReplicaState};

impl Controller {
    /// One pass towards the desired revision.
    pub(super) async fn reconcile(&mut self) {
        if self.shutting_down {
            return;
        }
        let Some((rev, spec)) = self.desired.clone() else {
            return;
        };
        let now = Instant::now();
        // Restarts whose delay is over.
        let due: Vec<_> = self
            .pending
            .iter()
            .filter(|p| p.2 <= now && !self.suspended.contains(&p.0))
            .cloned()
            .collect();
        self.pending.retain(|p| p.2 > now && !self.suspended.contains(&p.0));
        for (service, revision, _, restarts) in due {
            if revision == rev {
                self.start_replica(&service, revision, restarts).await;
            }
        }
        let mut all_done = true;
        if self.rollout.as_ref().is_some_and(|r| r.revision != rev) {
            self.rollout = None;
        }
        for svc in &spec.services {
            if self.suspended.contains(&svc.name) {
                all_done = false;
                continue;
            }
            let in_rollout = self
                .rollout
                .as_ref()
                .and_then(|r| r.services.get(&svc.name))
                .is_some_and(|p| p.stage != Stage::Done);
            if in_rollout {
                self.drive_rollout(&svc.name, &spec).await;
                if self.desired_revision() != Some(rev) {
                    return; // aborted: the stable revision is desired again
                }
                let done = self
                    .rollout
                    .as_ref()
                    .and_then(|r| r.services.get(&svc.name))
                    .is_some_and(|p| p.stage == Stage::Done);
                if !done {
                    all_done = false;
                    continue;
                }
            }
            let rolling = rolling_of(&svc.update, svc.replicas);
            let mut old: Vec<&Replica> = Vec::new();
            let mut new: Vec<&Replica> = Vec::new();
            for r in self.replicas.values() {
                if r.service != svc.name || r.state == ReplicaState::Stopping {
                    continue;
                }
                if r.revision == rev { new.push(r) } else { old.push(r) }
            }
            let held = self.pending.iter().filter(|p| p.0 == svc.name && p.1 == rev).count() as u32
                + self.given_up.get(&(svc.name.clone(), rev)).copied().unwrap_or(0);
            let counts = Counts {
                old_total: old.len() as u32,
                old_ready: old.iter().filter(|r| r.state == ReplicaState::Ready).count() as u32,
                new_total: new.len() as u32 + held,
                new_ready: new.iter().filter(|r| r.state == ReplicaState::Ready).count() as u32,
            };
            let step = rolling::step(svc.replicas, &rolling, counts);
            // Not-ready replicas go first, then the oldest revisions.
            old.sort_by_key(|r| (r.state == ReplicaState::Ready, r.revision, r.started));
            new.sort_by_key(|r| (r.state == ReplicaState::Ready, std::cmp::Reverse(r.started)));
            let stop: Vec<String> = old
                .iter()
                .take(step.stop_old as usize)
                .chain(new.iter().take(step.stop_new as usize))
                .map(|r| r.id.clone())
                .collect();
            let late = new
                .iter()
                .find(|r| r.state != ReplicaState::Ready)
                .map(|r| {
                    r.last_probe
                        .clone()
                        .map(|p| format!("replica {}: last probe {p}", r.id))
                })
                .unwrap_or_else(|| self.last_failure.clone())
                .filter(|_| now - self.progress_at > rolling.progress_deadline);
            if counts.old_total > 0 || counts.new_ready < svc.replicas {
                all_done = false;
            }
            for id in stop {
                self.stop_replica(&id);
            }
            for _ in 0..step.start_new {
                self.start_replica(&svc.name, rev, 0).await;
            }
            let updating = self.active_revision() != Some(rev);
            let stalled = now - self.progress_at > rolling.progress_deadline && counts.new_ready < svc.replicas;
            if updating && stalled {
                let why = format!(
                    "r{rev} failed: {} not healthy after {} without progress{}",
                    svc.name,
                    humanize(rolling.progress_deadline),
                    late.map(|l| format!(" ({l})")).unwrap_or_default()
                );
                self.fail_update(rev, why);
                return;
            }
        }
        // Services the desired revision no longer has go once the rest is in place.
        if all_done {
            let gone: Vec<String> = self
                .replicas
                .values()
                .filter(|r| spec.service(&r.service).is_none() && r.state != ReplicaState::Stopping)
                .map(|r| r.id.clone())
                .collect();
            for id in &gone {
                self.stop_replica(id);
            }
            let stale: Vec<String> = self
                .routers
                .keys()
                .filter(|s| spec.service(s).and_then(|s| s.port).is_none())
                .cloned()
                .collect();
            for s in stale {
                if let Some((_, router)) = self.routers.remove(&s) {
                    self.env
                        .routers
                        .lock()
                        .expect("routers map lock")
                        .remove(&(self.app.clone(), s));
                    tokio::spawn(async move { router.shutdown(std::time::Duration::from_secs(30)).await });
                }
            }
        }
        let degraded = self.given_up.values().any(|n| *n > 0);
        let completed = all_done && self.active_revision() != Some(rev);
        if completed {
            self.finish_rollout();
            self.active = Some((rev, spec.clone()));
            tracing::info!(app = %self.app, revision = rev, "rollout complete");
        }
        if self.active_revision() == Some(rev) && self.phase != Phase::Failed {
            (self.phase, self.message) = if degraded {
                (Phase::Degraded, "restart policy gave up on some replicas".to_string())
            } else if all_done {
                (Phase::Complete, String::new())
            } else {
                (
                    Phase::Degraded,
                    "replicas missing or not healthy; replacing them".to_string(),
                )
            };
        }
        if completed {
            // As for failures: the status says complete before the revision does.
            self.publish();
            self.env.journal.revision_outcome(&self.app, rev, Outcome::Complete, "");
        }
        let keep: std::collections::HashSet<u64> = self.replicas.values().map(|r| r.revision).chain([rev]).collect();
        self.specs.retain(|n, _| keep.contains(n));
    }

    /// The update to `rev` cannot finish: record why and fall back to the revision that was
    /// serving, whose replicas the rolling rules kept ready.
    pub(super) fn fail_update(&mut self, rev: u64, why: String) {
        if self.rollout.is_some() {
            // Traffic goes back to the stable revision first (this comes back here).
            return self.abort_rollout(rev, why);
        }
        tracing::warn!(app = %self.app, revision = rev, reason = %why, "rollout failed");
        self.phase = Phase::Failed;
        self.message = why.clone();
        let fallback = self.active.clone();
        if let Some((n, spec)) = fallback.clone() {
            self.message = format!("{why}; r{n} keeps serving");
            self.specs.insert(n, spec.clone());
            self.desired = Some((n, spec));
            self.given_up.clear();
            self.pending.clear();
        }
        let services: Vec<String> = self
            .desired
            .iter()
            .flat_map(|d| d.1.services.iter().map(|s| s.name.clone()))
            .collect();
        for s in services {
            self.event(&s, why.clone());
        }
        // Whoever reads the revision as failed must find the app's status saying why (and
        // the aborted rollout): publish first, then record.
        self.publish();
        self.env.journal.revision_outcome(&self.app, rev, Outcome::Failed, &why);
        if let Some((n, _)) = fallback {
            self.env.journal.desired_changed(&self.app, n);
        }
    }

    /// Gives the router of `service` the replicas that are ready now.
    pub(super) fn sync_router(&self, service: &str) {
        let Some((_, router)) = self.routers.get(service) else {
            return;
        };
        let backends = self
            .replicas
            .values()
            .filter(|r| r.service == service && r.state == ReplicaState::Ready)
            .map(Replica::backend)
            .collect();
        router.set_backends(backends);
    }

    /// Holds `services` (all of the app's when empty) stopped: see [`super::Command::Suspend`].
    pub(super) async fn suspend(&mut self, services: Vec<String>) {
        let all: Vec<String> = self
            .desired
            .iter()
            .flat_map(|d| d.1.services.iter().map(|s| s.name.clone()))
            .chain(self.replicas.values().map(|r| r.service.clone()))
            .collect();
        let chosen: Vec<String> = if services.is_empty() { all } else { services };
        self.suspended.extend(chosen.iter().cloned());
        self.message = format!("stopped for a state operation: {}", chosen.join(", "));
        let ids: Vec<String> = self
            .replicas
            .values()
            .filter(|r| chosen.contains(&r.service))
            .map(|r| r.id.clone())
            .collect();
        let mut jobs = tokio::task::JoinSet::new();
        for id in &ids {
            if let Some(job) = self.stop_job_with(id, false) {
                jobs.spawn(job);
            }
        }
        while jobs.join_next().await.is_some() {}
        for id in &ids {
            if let Some(r) = self.replicas.remove(id) {
                self.forget(&r.id);
                self.sync_router(&r.service);
            }
        }
    }

    /// Graceful stop of everything, services in reverse order of declaration.
    pub(super) async fn shutdown(&mut self) {
        self.shutting_down = true;
        let order: Vec<String> = self
            .desired
            .iter()
            .flat_map(|d| d.1.services.iter().rev().map(|s| s.name.clone()))
            .collect();
        let mut services: Vec<String> = order.clone();
        for r in self.replicas.values() {
            if !services.contains(&r.service) {
                services.insert(0, r.service.clone());
            }
        }
        for service in services {
            let ids: Vec<String> = self
                .replicas
                .values()
                .filter(|r| r.service == service)
                .map(|r| r.id.clone())
                .collect();
            let mut jobs = tokio::task::JoinSet::new();
            for id in &ids {
                if let Some(job) = self.stop_job(id) {
                    jobs.spawn(job);
                }
            }
            // This service's replicas are gone before the next service stops.
            while jobs.join_next().await.is_some() {}
            for id in &ids {
                if let Some(r) = self.replicas.remove(id) {
                    self.forget(&r.id);
                }
            }
        }
        for (_, (_, router)) in self.routers.drain() {
            router.shutdown(std::time::Duration::from_secs(5)).await;
        }
        self.phase = Phase::Stopped;
        self.message = "the daemon stopped".into();
        self.publish();
    }
}

/// The rolling rules a service is held to outside a progressive rollout (its first start,
/// replacing crashed replicas, falling back after an abort): a canary or blue-green service
/// starts all its replicas at once and keeps the old ones until they are ready.
fn rolling_of(update: &UpdateStrategy, replicas: u32) -> Cow<'_, Rolling> {
    match update {
        UpdateStrategy::Rolling(r) => Cow::Borrowed(r),
        other => Cow::Owned(Rolling {
            max_surge: replicas.max(1),
            max_unavailable: 0,
            order: UpdateOrder::StartFirst,
            progress_deadline: other.progress_deadline(),
        }),
    }
}

fn humanize(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64().round())
}
