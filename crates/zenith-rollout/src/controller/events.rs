//! What each message means for the replicas: a deploy (new routers bound first), adoption of
//! a previous daemon's replicas, an exit (asking the restart policy), a health verdict.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;
use zenith_router::{Router, RouterConfig};
use zenith_runtime::{Exit, ExitStatus, HealthState, HealthTracker, RestartDecision, RestartTracker};
use zenith_spec::AppSpec;

use super::replica::{Replica, effective_check};
use super::{Controller, Event, ReplicaRow};
use crate::status::{Phase, ReplicaState};

/// Service events kept for `app status`.
const EVENTS_KEPT: usize = 20;

impl Controller {
    pub(super) async fn deploy(&mut self, revision: u64, spec: Arc<AppSpec>, forced: bool) -> Result<(), String> {
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
        let superseded = self.rollout.take();
        let spec = self.specs[&revision].clone();
        self.begin_rollout(revision, &spec, forced);
        // A newer revision supersedes the rollout in progress. Its services that the new
        // rollout does not weight go back to plain spreading; the others were just given the
        // new rollout's weights in one change, with no moment of plain spreading between.
        for service in superseded.iter().flat_map(|r| r.services.keys()) {
            let weighted = self.rollout.as_ref().is_some_and(|r| r.services.contains_key(service));
            if let (false, Some((_, router))) = (weighted, self.routers.get(service)) {
                router.set_weights(None);
                router.set_pins(None);
            }
        }
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

    /// Binds the public ports of the desired revision, before any replica is adopted.
    pub(super) async fn bind_routers(&mut self) {
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
    }

    pub(super) async fn adopt(&mut self, rows: Vec<ReplicaRow>) {
        for row in rows {
            let svc = self
                .specs
                .get(&row.revision)
                .and_then(|s| s.service(&row.service))
                .cloned();
            let alive = self
                .env
                .runtime
                .adopt(&row.record, self.exits_tx.clone())
                .await
                .unwrap_or(false);
            if svc.is_none() && alive {
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
        if self.desired_revision() == Some(r.revision) {
            self.last_failure = Some(what.clone());
        }
        self.event(&r.service, what);
        self.on_failure(&r.service, r.revision, r.restarts, exit.status);
    }

    /// A replica of `service` ended against our will: ask its restart policy what to do.
    pub(super) fn on_failure(&mut self, service: &str, revision: u64, restarts: u32, status: ExitStatus) {
        if self.desired_revision() != Some(revision) {
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
            Event::Smoke {
                service,
                revision,
                result,
            } => {
                if self.rollout.as_ref().is_none_or(|r| r.revision != revision) {
                    return; // the smoke tests of a revision that is no longer rolling out
                }
                if let Err(e) = &result {
                    self.event(&service, format!("smoke test failed: {e}"));
                }
                self.windows.probes.insert(service, result);
            }
            Event::Probe { id, ok, detail } => {
                let desired = self.desired_revision();
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
                        if desired == Some(r.revision) {
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

    /// A replica is gone for good: drop its record and its copy of the secrets (its log stays
    /// for `zenith logs`; the daemon prunes old logs).
    pub(super) fn forget(&self, id: &str) {
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
}

fn describe(s: ExitStatus) -> String {
    match s {
        ExitStatus::Code(c) => format!("exit code {c}"),
        ExitStatus::Signal(n) => format!("killed by signal {n}"),
        ExitStatus::Unknown => "exit status unknown".into(),
    }
}
