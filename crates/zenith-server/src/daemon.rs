//! `zenith serve`: opens the data directory (one daemon per directory), the state store and
//! the admin token, sweeps up replicas a crashed daemon lost track of, brings every app back
//! under a controller (adopting the replicas still running), serves the API, and on SIGTERM
//! or SIGINT stops the apps gracefully.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zenith_rollout::{Env, Start};
use zenith_runtime::{Runtime, Runtimes};
use zenith_spec::AppSpec;

use crate::api::{self, State};
use crate::journal::{StoreJournal, to_rollout_row};
use crate::store::Store;

pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// The API's address (loopback by default: the API is for this host's CLI).
    pub listen: SocketAddr,
    /// Where the apps' public routers listen.
    pub router_host: IpAddr,
    /// The snapshot repository of the state hooks, schedules and recoveries.
    pub snapshots: crate::state::SnapshotConfig,
    /// When the repository-wide prune runs (cron, daemon's local time).
    pub prune_cron: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot use the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another zenith daemon already uses the data directory {} (its lock file is held); stop it first or pass another --data-dir",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Bootstrap(#[from] crate::auth::BootstrapError),
    #[error("cannot listen on {addr} for the API: {source} (is another daemon running? pass --listen)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Written beside the state so the CLI on this host finds the daemon by itself.
pub const DISCOVERY_FILE: &str = "daemon.json";

pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let dir = &config.data_dir;
    let io = |source| ServeError::DataDir {
        path: dir.clone(),
        source,
    };
    create_private_dir(dir).map_err(io)?;
    let lock = std::fs::File::create(dir.join("daemon.lock")).map_err(io)?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(ServeError::Locked { path: dir.clone() });
    }
    let store = Store::open(&dir.join("state.db"))?;
    let token_file = crate::auth::ensure_admin_token(&store, dir)?;
    let run_dir = dir.join("run");
    create_private_dir(&run_dir).map_err(io)?;
    let canonical = std::fs::canonicalize(dir).map_err(io)?;
    let marker = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex()[..12].to_string();

    let known: Vec<String> = store.replicas()?.into_iter().map(|r| r.id).collect();
    crate::orphans::sweep(&marker, &known);
    let runtimes = Runtimes::new();
    // Only containers labelled with this daemon's marker are looked at.
    if std::env::var_os("DOCKER_HOST").is_some() || std::path::Path::new("/var/run/docker.sock").exists() {
        match runtimes.docker.sweep_orphans(&marker, &known).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(removed = n, "removed containers that no replica record names"),
            Err(e) => tracing::warn!(error = %e, "cannot look for orphaned containers"),
        }
    }
    let runtime: Arc<dyn Runtime> = Arc::new(runtimes);
    let snapshots = Arc::new(crate::state::Snapshots::new(config.snapshots.clone(), store.clone()));
    // Operations on state that a killed daemon left unfinished: their services stay stopped
    // until the operation has been carried to its end.
    let mut pending_ops = Vec::new();
    for (app, json) in store.state_ops()? {
        match serde_json::from_str::<crate::state::ops::StateOp>(&json) {
            Ok(op) => pending_ops.push(op),
            Err(e) => {
                tracing::error!(%app, error = %e, "an unfinished state operation cannot be read; resolve it by hand")
            }
        }
    }
    let env = Env {
        runtime,
        journal: Arc::new(StoreJournal { store: store.clone() }),
        run_dir: run_dir.clone(),
        router_host: config.router_host,
        daemon_marker: marker,
        routers: Arc::new(std::sync::Mutex::new(BTreeMap::new())),
        hooks: Some(snapshots.clone()),
    };
    let mut apps = BTreeMap::new();
    for row in store.apps()? {
        let load = |n: Option<u64>| -> Option<(u64, Arc<AppSpec>)> {
            let rev = store.revision(&row.name, n?).ok()??;
            let spec = serde_json::from_str(&rev.spec_json).ok()?;
            Some((rev.number, Arc::new(spec)))
        };
        let desired = load(row.desired_revision);
        let active = load(row.active_revision);
        let replicas: Vec<_> = store
            .replicas_of(&row.name)?
            .iter()
            .filter_map(to_rollout_row)
            .collect();
        let mut specs = HashMap::new();
        for n in replicas.iter().map(|r| r.revision) {
            if let Some((n, s)) = load(Some(n)) {
                specs.insert(n, s);
            }
        }
        for (n, s) in desired.iter().chain(active.iter()) {
            specs.insert(*n, s.clone());
        }
        tracing::info!(app = %row.name, desired = ?row.desired_revision, replicas = replicas.len(), "resuming app");
        let rollout = row.rollout_json.as_deref().and_then(|j| match serde_json::from_str(j) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(app = %row.name, error = %e, "the saved rollout cannot be read; it will not resume");
                None
            }
        });
        let suspended = pending_ops
            .iter()
            .find(|op| op.app == row.name && op.phase < crate::state::ops::OpPhase::Starting)
            .map(|op| op.held(desired.as_ref().map(|d| d.1.as_ref())).into_iter().collect())
            .unwrap_or_default();
        let start = Start {
            app: row.name.clone(),
            desired,
            active,
            specs,
            replicas,
            rollout,
            suspended,
        };
        apps.insert(
            row.name.clone(),
            zenith_rollout::controller::spawn(env.clone(), start).await,
        );
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(io)?;
    let state = Arc::new(State {
        store,
        env: env.clone(),
        apps: tokio::sync::Mutex::new(apps),
        data_dir: dir.clone(),
        started: std::time::Instant::now(),
        stopping: tokio::sync::watch::channel(false).0,
        snapshots,
        health: Default::default(),
        schedules: Default::default(),
        prune_cron: config.prune_cron.clone(),
    });
    for op in pending_ops {
        let handle = state.apps.lock().await.get(&op.app).cloned();
        match handle {
            Some(h) => {
                tracing::info!(app = %op.app, phase = ?op.phase, "finishing the state operation a stopped daemon left");
                tokio::spawn(crate::state::ops::drive(state.clone(), op, h));
            }
            None => {
                tracing::error!(app = %op.app, "an unfinished state operation names an app the daemon does not know")
            }
        }
    }
    let scheduler = tokio::spawn(crate::state::schedule::run(state.clone()));
    let discovery = serde_json::json!({
        "address": format!("http://{addr}"),
        "pid": std::process::id(),
        "token_file": token_file,
    });
    write_atomic(&dir.join(DISCOVERY_FILE), discovery.to_string().as_bytes()).map_err(io)?;
    tracing::info!(%addr, data_dir = %dir.display(), "zenith daemon listening");

    let rotation = tokio::spawn(tend_logs(run_dir, state.store.clone()));
    let shutdown_state = state.clone();
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(async move {
        axum::serve(listener, api::app(state))
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });
    tokio::select! {
        _ = wait_for_signal() => {}
        ended = &mut server => {
            tracing::error!(result = ?ended, "the API server stopped by itself; stopping the apps");
        }
    }
    tracing::info!("stopping: the API first, then the apps in order");
    // Streams that never end on their own (`logs --follow`) must not hold the shutdown up.
    shutdown_state.stopping.send_replace(true);
    let _ = stop_api.send(());
    if tokio::time::timeout(Duration::from_secs(5), &mut server).await.is_err() {
        tracing::warn!("API connections still open after 5 s; closing them");
        server.abort();
    }
    rotation.abort();
    scheduler.abort();
    let apps = shutdown_state.apps.lock().await;
    let _ = tokio::time::timeout(Duration::from_secs(300), async {
        for (name, handle) in apps.iter().rev() {
            tracing::info!(app = %name, "stopping app");
            handle.shutdown().await;
        }
    })
    .await;
    let _ = std::fs::remove_file(dir.join(DISCOVERY_FILE));
    drop(lock);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Logs of replicas gone this long are deleted.
const KEEP_LOGS_OF_GONE_REPLICAS: Duration = Duration::from_secs(24 * 3600);

/// Copy-truncate rotation of replica logs past 10 MiB (three old files kept each), and removal
/// of the directories of replicas that ended more than a day ago.
async fn tend_logs(run_dir: PathBuf, store: Store) {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let run_dir = run_dir.clone();
        let store = store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let live: std::collections::HashSet<String> = match store.replicas() {
                Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
                Err(_) => return,
            };
            let Ok(entries) = std::fs::read_dir(&run_dir) else {
                return;
            };
            for e in entries.flatten() {
                let log = e.path().join("output.log");
                let id = e.file_name().to_string_lossy().into_owned();
                if live.contains(&id) {
                    if let Err(err) = zenith_runtime::rotate_log(&log, 10 << 20, 3) {
                        tracing::debug!(path = %log.display(), error = %err, "log rotation skipped");
                    }
                    continue;
                }
                let age = std::fs::metadata(&log)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if age.is_some_and(|a| a > KEEP_LOGS_OF_GONE_REPLICAS) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        })
        .await;
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
