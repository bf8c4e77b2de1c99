//! One replica as the controller tracks it, and the side tasks that act on it: starting it,
//! probing its health on its own timer, and draining then stopping it without holding up the
//! controller's loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;
use zenith_router::Router;
use zenith_runtime::{HealthTracker, ReplicaRecord, ReplicaSpec, Runtime};
use zenith_spec::{AppSpec, HealthCheck, Probe, ServiceSpec};

use super::{Controller, Event, ReplicaRow};
use crate::status::ReplicaState;

pub(super) struct Replica {
    pub id: String,
    pub service: String,
    pub revision: u64,
    pub port: u16,
    pub spec: ReplicaSpec,
    pub record: ReplicaRecord,
    pub state: ReplicaState,
    pub health: Option<HealthTracker>,
    pub started: Instant,
    pub started_at_ms: i64,
    pub last_probe: Option<String>,
    pub restarts: u32,
    pub probe_task: Option<AbortHandle>,
}

impl Replica {
    pub fn backend(&self) -> zenith_router::Backend {
        zenith_router::Backend {
            id: self.id.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            revision: self.revision,
        }
    }

    pub fn row(&self, app: &str) -> ReplicaRow {
        ReplicaRow {
            id: self.id.clone(),
            app: app.to_string(),
            service: self.service.clone(),
            revision: self.revision,
            port: self.port,
            record: self.record.clone(),
            ready: self.state == ReplicaState::Ready,
            restarts: self.restarts,
            started_at_ms: self.started_at_ms,
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(t) = self.probe_task.take() {
            t.abort();
        }
    }
}

/// Tells a replica where its state lives: `STATE_DIRECTORY` (the first of `dirs`, the seed's
/// variable) and `ZENITH_STATE_DIRS` (all of them, `:`-separated).
pub fn state_env(env: &mut BTreeMap<String, String>, dirs: &[std::path::PathBuf]) {
    if let Some(first) = dirs.first() {
        env.insert("STATE_DIRECTORY".into(), first.display().to_string());
        let all: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        env.insert("ZENITH_STATE_DIRS".into(), all.join(":"));
    }
}

/// A free port on loopback for a new replica. The kernel hands out ephemeral ports in turn,
/// so the port is not reused by the time the replica binds it in all but contrived cases.
pub(super) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn short_random() -> String {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The health check a replica is held to: the spec's, or for a service with a port and no
/// check, "its port accepts connections" (so it gets no traffic before it listens).
pub fn effective_check(svc: &ServiceSpec) -> Option<HealthCheck> {
    svc.health.clone().or_else(|| {
        svc.port.map(|_| HealthCheck {
            probe: Probe::Tcp,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            retries: 3,
            start_period: Duration::ZERO,
        })
    })
}

impl Controller {
    pub(super) fn replica_spec(
        &self,
        spec: &AppSpec,
        svc: &ServiceSpec,
        revision: u64,
        id: &str,
        port: u16,
    ) -> ReplicaSpec {
        let mut env: BTreeMap<String, String> = svc.env.clone();
        env.insert("PORT".into(), port.to_string());
        env.insert("ZENITH_APP".into(), spec.name.clone());
        env.insert("ZENITH_SERVICE".into(), svc.name.clone());
        env.insert("ZENITH_REVISION".into(), revision.to_string());
        env.insert("ZENITH_DAEMON_ID".into(), self.env.daemon_marker.clone());
        state_env(&mut env, &svc.state_dirs);
        ReplicaSpec {
            id: id.to_string(),
            command: svc.command.clone(),
            workdir: svc.workdir.clone(),
            env,
            secrets: svc.secrets.clone(),
            run_dir: self.env.run_dir.clone(),
            container: container_spec(&spec.name, svc, revision, port),
        }
    }

    /// Starts one replica of `service` at `revision`; failures become service events (the
    /// restart policy decides what happens next).
    pub(super) async fn start_replica(&mut self, service: &str, revision: u64, restarts: u32) {
        let Some(spec) = self.specs.get(&revision).cloned() else {
            return;
        };
        let Some(svc) = spec.service(service) else {
            return;
        };
        let port = match free_port() {
            Ok(p) => p,
            Err(e) => {
                self.event(service, format!("no free port for a new replica: {e}"));
                return;
            }
        };
        if svc.state.restore_on_start == zenith_spec::RestoreOnStart::Latest
            && let Some(hooks) = self.env.hooks.clone()
        {
            let (app, svc_spec) = (self.app.clone(), svc.clone());
            let done = tokio::task::spawn_blocking(move || hooks.restore_on_start(&app, &svc_spec)).await;
            match done {
                Ok(Ok(Some(what))) => self.event(service, format!("restored its empty state: {what}")),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    // Starting on empty state would look like data loss: do not start.
                    if let Some(h) = &self.env.hooks {
                        h.hook_failed(&self.app, service, "restore-on-start", &e);
                    }
                    self.event(service, format!("restore on start failed, replica not started: {e}"));
                    self.on_failure(service, revision, restarts, zenith_runtime::ExitStatus::Unknown);
                    return;
                }
                Err(e) => tracing::error!(app = %self.app, service, error = %e, "restore on start panicked"),
            }
        }
        let id = format!("{}-{}-r{revision}-{}", self.app, service, short_random());
        let rspec = self.replica_spec(&spec, svc, revision, &id, port);
        match self.env.runtime.start(&rspec, self.exits_tx.clone()).await {
            Ok(record) => {
                let now = Instant::now();
                let check = effective_check(svc);
                let mut r = Replica {
                    id: id.clone(),
                    service: service.to_string(),
                    revision,
                    port,
                    spec: rspec,
                    record,
                    state: ReplicaState::Starting,
                    health: check.as_ref().map(|c| HealthTracker::new(c, now.into_std())),
                    started: now,
                    started_at_ms: jiff::Timestamp::now().as_millisecond(),
                    last_probe: None,
                    restarts,
                    probe_task: None,
                };
                if let Some(check) = check {
                    r.probe_task = Some(self.spawn_prober(&r, check));
                } else {
                    r.state = ReplicaState::Ready;
                }
                tracing::info!(app = %self.app, replica = %id, port, "replica started");
                self.env.journal.replica_started(&r.row(&self.app));
                self.replicas.insert(id, r);
            }
            Err(e) => {
                tracing::warn!(app = %self.app, service, error = %e, "replica failed to start");
                self.event(service, format!("start failed: {e}"));
                self.on_failure(service, revision, restarts, zenith_runtime::ExitStatus::Unknown);
            }
        }
    }

    /// Probes a replica on its check's interval and reports each result to the loop.
    pub(super) fn spawn_prober(&self, r: &Replica, check: HealthCheck) -> AbortHandle {
        let runtime: Arc<dyn Runtime> = self.env.runtime.clone();
        let events = self.events_tx.clone();
        let spec = r.spec.clone();
        let port = r.port;
        let id = r.id.clone();
        let first = check.interval.min(Duration::from_millis(250));
        tokio::spawn(async move {
            tokio::time::sleep(first).await;
            loop {
                let res = zenith_runtime::probe(&check, port, runtime.as_ref(), &spec).await;
                let (ok, detail) = match res {
                    Ok(()) => (true, "ok".to_string()),
                    Err(e) => (false, e),
                };
                if events
                    .send(Event::Probe {
                        id: id.clone(),
                        ok,
                        detail,
                    })
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(check.interval).await;
            }
        })
        .abort_handle()
    }

    /// Takes a replica out of traffic and stops it on a side task. The loop learns of its
    /// end from the `Exit` (or the task's `Stopped`).
    pub(super) fn stop_replica(&mut self, id: &str) {
        if let Some(job) = self.stop_job(id) {
            let events = self.events_tx.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                job.await;
                let _ = events.send(Event::Stopped { id });
            });
        }
    }

    /// Marks a replica as leaving and returns the work of stopping it: drain, pre-stop hook,
    /// SIGTERM, SIGKILL after the grace period. `None` when it is already leaving.
    pub(super) fn stop_job(&mut self, id: &str) -> Option<impl Future<Output = ()> + Send + 'static> {
        self.stop_job_with(id, true)
    }

    /// [`Self::stop_job`], with or without the on-stop snapshot.
    pub(super) fn stop_job_with(&mut self, id: &str, hooks: bool) -> Option<impl Future<Output = ()> + Send + 'static> {
        let r = self.replicas.get_mut(id)?;
        if r.state == ReplicaState::Stopping {
            return None;
        }
        r.state = ReplicaState::Stopping;
        if let Some(t) = r.probe_task.take() {
            t.abort();
        }
        let svc = self.specs.get(&r.revision).and_then(|s| s.service(&r.service)).cloned();
        let router: Option<Router> = self.routers.get(&r.service).map(|(_, r)| r.clone());
        let runtime = self.env.runtime.clone();
        let spec = r.spec.clone();
        let id = id.to_string();
        let service = r.service.clone();
        let revision = r.revision;
        let on_stop = self.env.hooks.clone().filter(|_| hooks).zip(
            svc.clone()
                .filter(|s| s.state.snapshot_on_stop && !s.state_dirs.is_empty()),
        );
        let app = self.app.clone();
        self.sync_router(&service);
        Some(async move {
            let (drain, grace, pre_stop) = match &svc {
                Some(s) => (s.drain_timeout, s.stop_grace, s.pre_stop.clone()),
                None => (Duration::from_secs(30), Duration::from_secs(10), None),
            };
            if let Some(router) = router {
                let outcome = router.drain(&id, drain).await;
                if !outcome.drained {
                    tracing::warn!(replica = %id, cut = outcome.cut, "drain timed out");
                }
            }
            if let Some(cmd) = pre_stop {
                match runtime.exec(&spec, &cmd, grace).await {
                    Ok(out) if out.status.success() => {}
                    Ok(out) => {
                        tracing::warn!(replica = %id, status = ?out.status, output = %out.output, "pre-stop hook failed")
                    }
                    Err(e) => tracing::warn!(replica = %id, error = %e, "pre-stop hook failed"),
                }
            }
            if let Err(e) = runtime.stop(&id, grace).await {
                tracing::warn!(replica = %id, error = %e, "stop failed");
            }
            if let Some((hooks, svc)) = on_stop {
                snapshot_on_stop(hooks, app, revision, svc, id).await;
            }
        })
    }
}

/// The on-stop snapshot, once the replica has exited and its files are quiet. The stop does
/// not wait past `on_stop_timeout`: the snapshot then goes on in the background (a late
/// snapshot is still worth having) and the overrun is reported as a failure.
async fn snapshot_on_stop(hooks: Arc<dyn super::StateHooks>, app: String, revision: u64, svc: ServiceSpec, id: String) {
    let timeout = svc.state.on_stop_timeout;
    let name = svc.name.clone();
    let (h, a) = (hooks.clone(), app.clone());
    let task = tokio::task::spawn_blocking(move || h.snapshot_on_stop(&a, revision, &svc));
    let error = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(ids))) => {
            tracing::info!(app = %app, replica = %id, snapshots = %ids, "on-stop snapshot taken");
            return;
        }
        Ok(Ok(Err(e))) => e,
        Ok(Err(e)) => format!("the snapshot task failed: {e}"),
        Err(_) => format!(
            "not finished within on_stop_timeout ({}s); the stop went ahead without waiting for it",
            timeout.as_secs_f64()
        ),
    };
    tracing::warn!(app = %app, replica = %id, error = %error, "on-stop snapshot failed");
    hooks.hook_failed(&app, &name, "on-stop", &error);
}

/// The container part of a replica's spec, for a service of the Docker runtime.
pub fn container_spec(app: &str, svc: &ServiceSpec, revision: u64, port: u16) -> Option<zenith_runtime::ContainerSpec> {
    if svc.runtime != zenith_spec::model::RuntimeKind::Docker {
        return None;
    }
    let labels = [
        ("zenith.app", app.to_string()),
        ("zenith.service", svc.name.clone()),
        ("zenith.revision", revision.to_string()),
    ];
    Some(zenith_runtime::ContainerSpec {
        image: svc.image.clone().unwrap_or_default(),
        host_port: Some(port),
        settings: svc.container.clone(),
        labels: labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    })
}
