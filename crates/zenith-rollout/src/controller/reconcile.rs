//! The controller's decisions: what each message means for the replicas, and the reconcile
//! pass that moves every service one rolling step towards the desired revision, fails an
//! update that misses its deadline (falling back to the revision that was serving), and
//! declares it complete.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;
use zenith_router::{Router, RouterConfig};
use zenith_runtime::{Exit, ExitStatus, HealthState, HealthTracker, RestartDecision, RestartTracker};
use zenith_spec::{AppSpec, UpdateStrategy};

use super::replica::{Replica, effective_check};
use super::{Controller, Event, Outcome, ReplicaRow};
use crate::rolling::{self, Counts};
use crate::status::{AppStatus, Phase, ReplicaState, ReplicaStatus, ServiceStatus};

/// Service events kept for `app status`.
const EVENTS_KEPT: usize = 20;

impl Controller {
    pub(super) async fn deploy(&mut self, revision: u64, spec: Arc<AppSpec>) -> Result<(), String> {
        // Bind new public ports first: a port taken by another program fails the deploy
        // before anything is stopped.
        for svc in &spec.services {
            if let Some(port) = svc.port {
                self.ensure_router(&svc.name, port).await?;
            }
        }
        self.specs.insert(revision, spec.clone());
        self.desired = Some((revision, spec));
        self.given_up.clear();
        self.pending.clear();
        self.phase = Phase::Progressing;
        self.message = format!("rolling out r{revision}");
        self.progress_at = Instant::now();
        self.last_failure = None;
        Ok(())
    }

    async fn ensure_router(&mut self, service: &str, port: u16) -> Result<(), String> {
        if let Some((p, _)) = self.routers.get(service)
            && *p == port
        {
            return Ok(());
        }
        let addr = SocketAddr::new(self.env.router_host, port);
        let config = RouterConfig {
            service: format!("{}/{}", self.app, service),
            ..RouterConfig::default()
        };
        let router = Router::bind(addr, config).map_err(|e| {
            format!("service {service}: cannot listen on public port {addr}: {e} (is another program using it?)")
        })?;
        if let Some((_, old)) = self.routers.insert(service.to_string(), (port, router.clone())) {
            // The port changed: the old listener goes once this one is in place.
            tokio::spawn(async move { old.shutdown(std::time::Duration::from_secs(30)).await });
        }
        self.env
            .routers
            .lock()
            .expect("routers map lock")
            .insert((self.app.clone(), service.to_string()), router);
        self.sync_router(service);
        Ok(())
    }

    pub(super) async fn adopt(&mut self, rows: Vec<ReplicaRow>) {
        if let Some((_, spec)) = self.desired.clone() {
            for svc in &spec.services {
                if let Some(port) = svc.port
                    && let Err(e) = self.ensure_router(&svc.name, port).await
                {
                    self.phase = Phase::Failed;
                    self.message = e;
                }
            }
        }
        for row in rows {
            let svc = self
                .specs
                .get(&row.revision)
                .and_then(|s| s.service(&row.service))
                .cloned();
            let alive = match &svc {
                Some(_) => self
                    .env
                    .runtime
                    .adopt(&row.record, self.exits_tx.clone())
                    .await
                    .unwrap_or(false),
                None => false,
            };
            if svc.is_none()
                && self
                    .env
                    .runtime
                    .adopt(&row.record, self.exits_tx.clone())
                    .await
                    .unwrap_or(false)
            {
                // Alive, but of a revision this daemon no longer knows: it cannot be run on.
                let runtime = self.env.runtime.clone();
                let id = row.id.clone();
                tokio::spawn(async move { runtime.stop(&id, std::time::Duration::from_secs(10)).await });
            }
            let Some(svc) = svc.filter(|_| alive) else {
                tracing::info!(app = %self.app, replica = %row.id, "replica of the previous daemon is gone");
                self.forget(&row.id);
                continue;
            };
            let spec = self.specs[&row.revision].clone();
            let rspec = self.replica_spec(&spec, &svc, row.revision, &row.id, row.port);
            let check = effective_check(&svc);
            let now = Instant::now();
            let mut r = Replica {
                id: row.id.clone(),
                service: row.service.clone(),
                revision: row.revision,
                port: row.port,
                spec: rspec,
                record: row.record.clone(),
                // It was serving before the daemon went away: keep it serving; the prober
                // takes it out if it is not healthy.
                state: if row.ready {
                    ReplicaState::Ready
                } else {
                    ReplicaState::Starting
                },
                health: check.as_ref().map(|c| {
                    let mut t = HealthTracker::new(c, now.into_std());
                    if row.ready {
                        t.record(now.into_std(), Ok(()));
                    }
                    t
                }),
                started: now,
                started_at_ms: row.started_at_ms,
                last_probe: None,
                restarts: row.restarts,
                probe_task: None,
            };
            if let Some(check) = check {
                r.probe_task = Some(self.spawn_prober(&r, check));
            }
            tracing::info!(app = %self.app, replica = %row.id, "adopted replica");
            let service = r.service.clone();
            self.replicas.insert(row.id, r);
            self.sync_router(&service);
        }
    }

    pub(super) fn on_exit(&mut self, exit: Exit) {
        let Some(r) = self.replicas.remove(&exit.id) else {
            return;
        };
        self.forget(&r.id);
        self.sync_router(&r.service);
        if r.state == ReplicaState::Stopping || self.shutting_down {
            return;
        }
        tracing::warn!(app = %self.app, replica = %r.id, status = ?exit.status, "replica exited");
        let what = format!("replica {} exited ({})", r.id, describe(exit.status));
        if self.desired.as_ref().map(|d| d.0) == Some(r.revision) {
            self.last_failure = Some(what.clone());
        }
        self.event(&r.service, what);
        self.on_failure(&r.service, r.revision, r.restarts, exit.status);
    }

    /// A replica of `service` ended against our will: ask its restart policy what to do.
    pub(super) fn on_failure(&mut self, service: &str, revision: u64, restarts: u32, status: ExitStatus) {
        if self.desired.as_ref().map(|d| d.0) != Some(revision) {
            return; // an old revision's replica: the update is replacing it anyway
        }
        let Some(policy) = self
            .specs
            .get(&revision)
            .and_then(|s| s.service(service))
            .map(|s| s.restart.clone())
        else {
            return;
        };
        let tracker = self
            .restarts
            .entry((service.to_string(), revision))
            .or_insert_with(|| RestartTracker::new(policy));
        match tracker.on_exit(status, Instant::now().into_std()) {
            RestartDecision::RestartAfter(delay) => {
                self.pending
                    .push((service.to_string(), revision, Instant::now() + delay, restarts + 1));
            }
            RestartDecision::GiveUp { reason } | RestartDecision::Stay { reason } => {
                self.event(service, format!("not restarted: {reason}"));
                *self.given_up.entry((service.to_string(), revision)).or_default() += 1;
            }
        }
    }

    pub(super) fn on_event(&mut self, event: Event) {
        match event {
            Event::Stopped { id } => {
                // The runtime normally reports the exit first; this covers a replica whose
                // process could not be found any more.
                if self
                    .replicas
                    .get(&id)
                    .is_some_and(|r| r.state == ReplicaState::Stopping)
                {
                    let r = self.replicas.remove(&id).expect("checked above");
                    self.forget(&r.id);
                    self.sync_router(&r.service);
                }
            }
            Event::Probe { id, ok, detail } => {
                let Some(r) = self.replicas.get_mut(&id) else {
                    return;
                };
                if r.state == ReplicaState::Stopping {
                    return;
                }
                r.last_probe = Some(detail.clone());
                let Some(tracker) = r.health.as_mut() else {
                    return;
                };
                let outcome = if ok { Ok(()) } else { Err(detail) };
                match tracker.record(Instant::now().into_std(), outcome) {
                    Some(HealthState::Healthy) => {
                        r.state = ReplicaState::Ready;
                        if self.desired.as_ref().map(|d| d.0) == Some(r.revision) {
                            self.progress_at = Instant::now();
                        }
                        let (service, id) = (r.service.clone(), r.id.clone());
                        self.env.journal.replica_ready(&id);
                        self.sync_router(&service);
                    }
                    Some(HealthState::Unhealthy { reason }) => {
                        let (service, revision, restarts) = (r.service.clone(), r.revision, r.restarts);
                        r.state = ReplicaState::Unhealthy;
                        self.last_failure = Some(format!("replica {id} unhealthy: {reason}"));
                        self.event(&service, format!("replica {id} unhealthy: {reason}"));
                        self.stop_replica(&id);
                        self.on_failure(&service, revision, restarts, ExitStatus::Unknown);
                    }
                    _ => {}
                }
            }
        }
    }

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
        let due: Vec<_> = self.pending.iter().filter(|p| p.2 <= now).cloned().collect();
        self.pending.retain(|p| p.2 > now);
        for (service, revision, _, restarts) in due {
            if revision == rev {
                self.start_replica(&service, revision, restarts).await;
            }
        }
        let mut all_done = true;
        for svc in &spec.services {
            let UpdateStrategy::Rolling(rolling) = &svc.update;
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
            let step = rolling::step(svc.replicas, rolling, counts);
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
            let updating = self.active.as_ref().map(|a| a.0) != Some(rev);
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
        if all_done && self.active.as_ref().map(|a| a.0) != Some(rev) {
            self.active = Some((rev, spec.clone()));
            self.env.journal.revision_outcome(&self.app, rev, Outcome::Complete, "");
            tracing::info!(app = %self.app, revision = rev, "rollout complete");
        }
        if self.active.as_ref().map(|a| a.0) == Some(rev) && self.phase != Phase::Failed {
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
        let keep: std::collections::HashSet<u64> = self.replicas.values().map(|r| r.revision).chain([rev]).collect();
        self.specs.retain(|n, _| keep.contains(n));
    }

    /// The update to `rev` cannot finish: record why and fall back to the revision that was
    /// serving, whose replicas the rolling rules kept ready.
    fn fail_update(&mut self, rev: u64, why: String) {
        tracing::warn!(app = %self.app, revision = rev, reason = %why, "rollout failed");
        self.env.journal.revision_outcome(&self.app, rev, Outcome::Failed, &why);
        self.phase = Phase::Failed;
        self.message = why.clone();
        if let Some((n, spec)) = self.active.clone() {
            self.message = format!("{why}; r{n} keeps serving");
            self.specs.insert(n, spec.clone());
            self.desired = Some((n, spec));
            self.env.journal.desired_changed(&self.app, n);
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

    /// A replica is gone for good: drop its record and its copy of the secrets (its log stays
    /// for `zenith logs`; the daemon prunes old logs).
    fn forget(&self, id: &str) {
        self.env.journal.replica_removed(id);
        let secrets = self.env.run_dir.join(id).join("secrets");
        if let Err(e) = std::fs::remove_dir_all(&secrets)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(replica = id, error = %e, "could not remove the replica's secrets");
        }
    }

    pub(super) fn event(&mut self, service: &str, text: String) {
        let at = jiff::Timestamp::now().strftime("%H:%M:%S");
        let list = self.events.entry(service.to_string()).or_default();
        list.push(format!("{at} {text}"));
        if list.len() > EVENTS_KEPT {
            list.remove(0);
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

    pub(super) fn publish(&self) {
        let mut services = Vec::new();
        let names: Vec<String> = match &self.desired {
            Some((_, spec)) => spec.services.iter().map(|s| s.name.clone()).collect(),
            None => Vec::new(),
        };
        let mut all = names.clone();
        for r in self.replicas.values() {
            if !all.contains(&r.service) {
                all.push(r.service.clone());
            }
        }
        for name in all {
            let svc = self.desired.as_ref().and_then(|d| d.1.service(&name));
            let replicas: Vec<ReplicaStatus> = self
                .replicas
                .values()
                .filter(|r| r.service == name)
                .map(|r| ReplicaStatus {
                    id: r.id.clone(),
                    revision: r.revision,
                    state: r.state,
                    port: r.port,
                    pid: Some(r.record.pid),
                    restarts: r.restarts,
                    started_at_ms: r.started_at_ms,
                    last_probe: r.last_probe.clone(),
                })
                .collect();
            services.push(ServiceStatus {
                port: svc.and_then(|s| s.port),
                desired_replicas: svc.map(|s| s.replicas).unwrap_or(0),
                ready_replicas: replicas.iter().filter(|r| r.state == ReplicaState::Ready).count() as u32,
                replicas,
                events: self.events.get(&name).cloned().unwrap_or_default(),
                name,
            });
        }
        let status = AppStatus {
            app: self.app.clone(),
            desired_revision: self.desired.as_ref().map(|d| d.0),
            active_revision: self.active.as_ref().map(|a| a.0),
            phase: self.phase.clone(),
            message: self.message.clone(),
            services,
        };
        self.status_tx.send_if_modified(|s| {
            if *s == status {
                false
            } else {
                *s = status;
                true
            }
        });
    }
}

fn describe(s: ExitStatus) -> String {
    match s {
        ExitStatus::Code(c) => format!("exit code {c}"),
        ExitStatus::Signal(n) => format!("killed by signal {n}"),
        ExitStatus::Unknown => "exit status unknown".into(),
    }
}

fn humanize(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64().round())
}
