//! The Docker driver: replicas are containers of the local engine, reached through its API.
//!
//! Each container is named `zenith-<replica id>` and labelled `zenith.replica=<id>` (plus its
//! app, service, revision and daemon); the driver acts only on containers that carry its label,
//! so containers it does not own are never touched. A replica's host port is published on
//! 127.0.0.1 only, where the router reaches it. The engine's own restart policy is off: the
//! controller's restart policy decides, as for processes. Containers outlive the daemon; a new
//! daemon takes them back with `adopt`, checked by container id and label. A container that
//! has ended is removed once its exit is known, after its output has been copied to the
//! replica's log file.

mod client;
mod create;
mod watch;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, StopContainerOptions};
use tokio::sync::{OnceCell, mpsc};

pub use client::{DockerError, connect};
pub use watch::is_not_found;

use crate::process::{launch, procfs};
use crate::{BoxFuture, ExecOutput, Exit, ExitStatus, ReplicaRecord, ReplicaSpec, Runtime, RuntimeError};
use watch::Tracked;

/// Label naming the replica a container runs; only containers with it are zenith's.
pub const REPLICA_LABEL: &str = "zenith.replica";
/// Label with the marker of the daemon (data directory) that started the container.
pub const DAEMON_LABEL: &str = "zenith.daemon";

/// How long `stop` waits past the grace period for the engine to report the container gone.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// Runs replicas as containers. The engine is reached on first use, so a daemon whose specs
/// have no container needs no engine. Dropping it stops watching (no more `Exit`s) and leaves
/// the containers running, as a daemon crash would.
#[derive(Default)]
pub struct DockerRuntime {
    engine: OnceCell<Docker>,
    replicas: Mutex<HashMap<String, Tracked>>,
}

/// The container name of a replica.
pub fn container_name(replica_id: &str) -> String {
    format!("zenith-{replica_id}")
}

impl DockerRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    async fn engine(&self) -> Result<&Docker, DockerError> {
        self.engine.get_or_try_init(connect).await
    }

    fn replicas(&self) -> MutexGuard<'_, HashMap<String, Tracked>> {
        // Plain data; nothing panics while holding the lock.
        self.replicas.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this runtime watches the replica `id` (the dispatcher routes `stop` with it).
    pub fn owns(&self, id: &str) -> bool {
        self.replicas().contains_key(id)
    }

    /// The container of replica `id`: the watched one, or the one its name would give.
    fn container_of(&self, id: &str) -> String {
        self.replicas()
            .get(id)
            .map(|t| t.container.clone())
            .unwrap_or_else(|| container_name(id))
    }

    fn track(&self, id: &str, tracked: Tracked) {
        let mut replicas = self.replicas();
        replicas.retain(|_, t| !t.is_gone());
        if let Some(old) = replicas.insert(id.to_string(), tracked) {
            old.abort();
        }
    }

    async fn start_replica(
        &self,
        spec: &ReplicaSpec,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Result<ReplicaRecord, RuntimeError> {
        let other = |message: String| RuntimeError::Other {
            id: spec.id.clone(),
            message,
        };
        let Some(container) = &spec.container else {
            return Err(other("is not a container; the process runtime runs it".into()));
        };
        if self.replicas().get(&spec.id).is_some_and(|t| !t.is_gone()) {
            return Err(other("is already running; stop it before starting it again".into()));
        }
        let docker = self.engine().await.map_err(|e| other(e.to_string()))?;
        create::ensure_image(docker, &container.image).await.map_err(other)?;
        launch::install_secrets(spec)?;
        let log_path = launch::log_path(spec);
        let name = container_name(&spec.id);
        let body = create::body(spec, container, &launch::secrets_dir(spec));
        let id = create::create_and_start(docker, &name, body).await.map_err(other)?;
        // Unknown (0) when the engine is on another host: CPU time is then not measured.
        let (pid, start_time) = main_process(docker, &id).await.unwrap_or_default();
        let tracked = watch::watch(docker, &spec.id, &id, &log_path, None, exits);
        self.track(&spec.id, tracked);
        tracing::info!(replica = %spec.id, container = %&id[..12.min(id.len())], image = %container.image, "container started");
        Ok(ReplicaRecord {
            id: spec.id.clone(),
            pid,
            start_time,
            log_path,
            container: Some(id),
        })
    }

    async fn adopt_replica(
        &self,
        record: &ReplicaRecord,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Result<bool, RuntimeError> {
        let other = |message: String| RuntimeError::Other {
            id: record.id.clone(),
            message,
        };
        let Some(container) = &record.container else {
            return Ok(false);
        };
        if let Some(t) = self.replicas().get(&record.id)
            && !t.is_gone()
        {
            return Ok(&t.container == container);
        }
        let docker = self.engine().await.map_err(|e| other(e.to_string()))?;
        let info = match docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if watch::is_not_found(&e) => {
                tracing::info!(replica = %record.id, "container to adopt is gone");
                return Ok(false);
            }
            Err(e) => return Err(other(format!("cannot inspect container {container}: {e}"))),
        };
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        if labels.and_then(|l| l.get(REPLICA_LABEL)) != Some(&record.id) {
            // Same id, other owner: never ours to touch.
            return Ok(false);
        }
        let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        if !running {
            tracing::info!(replica = %record.id, "container to adopt has exited; removing it");
            watch::remove(docker, container).await;
            return Ok(false);
        }
        let since = jiff::Timestamp::now().as_second();
        let tracked = watch::watch(docker, &record.id, container, &record.log_path, Some(since), exits);
        self.track(&record.id, tracked);
        tracing::info!(replica = %record.id, container = %&container[..12.min(container.len())], "container adopted");
        Ok(true)
    }

    async fn stop_replica(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let Some((container, gone)) = self.replicas().get(id).map(|t| (t.container.clone(), t.gone.clone())) else {
            tracing::debug!(replica = id, "stop: not a container of this runtime; nothing to do");
            return Ok(());
        };
        let other = |message: String| RuntimeError::Other {
            id: id.to_string(),
            message,
        };
        if !watch::is_gone(&gone) {
            let docker = self.engine().await.map_err(|e| other(e.to_string()))?;
            let t = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
            tracing::info!(replica = id, ?grace, "stopping container");
            let options = StopContainerOptions {
                t: Some(t),
                signal: None,
            };
            match docker.stop_container(&container, Some(options)).await {
                Ok(()) => {}
                Err(e) if watch::is_not_found(&e) || watch::is_not_modified(&e) => {}
                Err(e) => return Err(other(format!("cannot stop container {container}: {e}"))),
            }
            if tokio::time::timeout(grace + STOP_SLACK, watch::wait_gone(gone))
                .await
                .is_err()
            {
                return Err(other(format!(
                    "container {container} is still there {STOP_SLACK:?} after its grace period"
                )));
            }
        }
        let mut replicas = self.replicas();
        if replicas.get(id).is_some_and(|t| t.container == container) {
            replicas.remove(id);
        }
        Ok(())
    }

    async fn exec_in(
        &self,
        spec: &ReplicaSpec,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let docker = self.engine().await.map_err(|e| RuntimeError::Other {
            id: spec.id.clone(),
            message: e.to_string(),
        })?;
        let container = self.container_of(&spec.id);
        watch::exec(docker, &spec.id, &container, command, timeout).await
    }

    /// The image HEALTHCHECK's verdict. While the engine still says `starting` there is no
    /// verdict yet, so this waits for one: the engine's own state machine (its interval,
    /// retries and start period) always ends `starting`, and counting it as a failure would
    /// condemn every container before its first check.
    async fn health_of(&self, spec: &ReplicaSpec) -> Result<(), String> {
        let docker = self.engine().await.map_err(|e| e.to_string())?;
        let container = self.container_of(&spec.id);
        loop {
            let info = docker
                .inspect_container(&container, None::<InspectContainerOptions>)
                .await
                .map_err(|e| format!("cannot inspect container {container}: {e}"))?;
            let Some(health) = info.state.and_then(|s| s.health) else {
                return Err("the image has no HEALTHCHECK; give the service an http, tcp or exec probe".into());
            };
            let status = health.status.map(|s| s.to_string()).unwrap_or_default();
            match status.as_str() {
                "healthy" => return Ok(()),
                "starting" => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                _ => {}
            }
            let last = health
                .log
                .unwrap_or_default()
                .into_iter()
                .last()
                .and_then(|l| l.output)
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty());
            return Err(match last {
                Some(output) => format!("image HEALTHCHECK is {status}: {output}"),
                None => format!("image HEALTHCHECK is {status}"),
            });
        }
    }

    /// Removes the containers of daemon `marker` that no record names (a daemon killed between
    /// starting a container and recording it leaves one).
    pub async fn sweep_orphans(&self, marker: &str, known: &[String]) -> Result<usize, String> {
        let docker = self.engine().await.map_err(|e| e.to_string())?;
        let filters = HashMap::from([("label".to_string(), vec![format!("{DAEMON_LABEL}={marker}")])]);
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| format!("cannot list containers: {}", watch::engine_message(&e)))?;
        let mut removed = 0;
        for c in list {
            let replica = c.labels.as_ref().and_then(|l| l.get(REPLICA_LABEL)).cloned();
            let (Some(replica), Some(id)) = (replica, c.id) else {
                continue;
            };
            if known.contains(&replica) {
                continue;
            }
            tracing::warn!(replica, "removing an orphaned container");
            watch::remove(docker, &id).await;
            removed += 1;
        }
        Ok(removed)
    }
}

/// Makes sure `image` is on the engine, pulling it when it is not.
pub async fn prepare_image(docker: &Docker, image: &str) -> Result<(), String> {
    create::ensure_image(docker, image).await
}

/// The directory on this host that holds named volume `name`, for state hooks to act on. The
/// volume is created when missing (as the engine would when a container first mounts it)
/// unless `create` is false, which gives `None` instead.
pub async fn volume_dir(docker: &Docker, name: &str, create: bool) -> Result<Option<std::path::PathBuf>, String> {
    let volume = match docker.inspect_volume(name).await {
        Ok(v) => v,
        Err(e) if watch::is_not_found(&e) && !create => return Ok(None),
        Err(e) if watch::is_not_found(&e) => {
            let options = bollard::models::VolumeCreateRequest {
                name: Some(name.to_string()),
                ..Default::default()
            };
            docker
                .create_volume(options)
                .await
                .map_err(|e| format!("cannot create volume {name}: {}", watch::engine_message(&e)))?
        }
        Err(e) => return Err(format!("cannot inspect volume {name}: {}", watch::engine_message(&e))),
    };
    if volume.driver != "local" || volume.options.contains_key("device") {
        return Err(format!(
            "volume {name} is not a plain local volume (driver {}); zenith keeps state only in local volumes or host directories",
            volume.driver
        ));
    }
    let dir = std::path::PathBuf::from(&volume.mountpoint);
    std::fs::metadata(&dir).map_err(|e| {
        format!(
            "volume {name} lives in {}, which this daemon cannot reach ({e}); run the daemon on the engine's host, as a user that can read it",
            dir.display()
        )
    })?;
    Ok(Some(dir))
}

/// The container's main process as seen from the host: pid and start time, for CPU time.
async fn main_process(docker: &Docker, id: &str) -> Option<(u32, u64)> {
    let info = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()?;
    let pid = u32::try_from(info.state?.pid?).ok().filter(|p| *p > 0)?;
    let stat = procfs::read_stat(pid).ok()??;
    Some((pid, stat.start_time))
}

impl Drop for DockerRuntime {
    fn drop(&mut self) {
        for tracked in self.replicas().values() {
            tracked.abort();
        }
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<ReplicaRecord, RuntimeError>> {
        Box::pin(self.start_replica(spec, exits))
    }

    fn adopt<'a>(
        &'a self,
        record: &'a ReplicaRecord,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(self.adopt_replica(record, exits))
    }

    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.stop_replica(id, grace))
    }

    fn exec<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>> {
        Box::pin(self.exec_in(spec, command, timeout))
    }

    fn cpu_time(&self, record: &ReplicaRecord) -> Option<Duration> {
        (record.pid > 0)
            .then(|| procfs::cpu_time(record.pid, record.start_time))
            .flatten()
    }

    fn reported_health<'a>(&'a self, spec: &'a ReplicaSpec) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.health_of(spec))
    }
}

/// Docker reports a container killed by signal N as exit code 128 + N.
fn exit_status(code: i64) -> ExitStatus {
    match code {
        129..=192 => ExitStatus::Signal((code - 128) as i32),
        _ => ExitStatus::Code(i32::try_from(code).unwrap_or(i32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_above_128_are_signals() {
        assert_eq!(exit_status(0), ExitStatus::Code(0));
        assert_eq!(exit_status(3), ExitStatus::Code(3));
        assert_eq!(exit_status(137), ExitStatus::Signal(9));
        assert_eq!(exit_status(143), ExitStatus::Signal(15));
        assert_eq!(exit_status(255), ExitStatus::Code(255));
    }

    #[test]
    fn names_are_prefixed() {
        assert_eq!(container_name("shop-web-r3-ab12"), "zenith-shop-web-r3-ab12");
    }
}
