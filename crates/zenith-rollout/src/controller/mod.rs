//! The executor: one task per app that owns the app's replicas and routers, and drives them
//! towards the desired revision. Everything that happens to the app (a deploy, a replica's
//! exit, a health probe's result, a timer) arrives as a message on one loop, so the state has
//! a single owner and needs no lock. What must survive a daemon crash is written through the
//! [`Journal`] the daemon provides.

mod events;
mod progress;
mod publish;
mod reconcile;
mod replica;
mod window;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use zenith_router::Router;
use zenith_runtime::{Exit, ReplicaRecord, RestartTracker, Runtime};
use zenith_spec::{AppSpec, ServiceSpec};

use crate::progressive::UserCommand;
use crate::status::{AppStatus, Phase, RolloutStatus};
pub use progress::RolloutRecord;
use replica::Replica;
pub use replica::{container_spec, effective_check, state_env};

/// Where the controller writes what must outlive the daemon. Implementations log their own
/// failures: the controller cannot do better than carry on.
pub trait Journal: Send + Sync + 'static {
    fn replica_started(&self, replica: &ReplicaRow);
    fn replica_ready(&self, id: &str);
    fn replica_removed(&self, id: &str);
    /// The revision's outcome: `complete` (and `active` moves to it) or `failed`.
    fn revision_outcome(&self, app: &str, revision: u64, outcome: Outcome, message: &str);
    /// The desired revision changed without a deploy: a failed update fell back.
    fn desired_changed(&self, app: &str, revision: u64);
    /// The app's progressive rollout (JSON of a [`RolloutRecord`]) changed; `None` once it
    /// has ended.
    fn rollout_saved(&self, app: &str, rollout: Option<&str>);
}

/// The state hooks, carried out by the daemon's snapshot repository. The methods block (they
/// read and write whole directories); the controller calls them on blocking threads.
pub trait StateHooks: Send + Sync + 'static {
    /// Snapshot `service`'s state directories after one of its replicas stopped; returns the
    /// snapshot ids, for the logs.
    fn snapshot_on_stop(&self, app: &str, revision: u64, service: &ServiceSpec) -> Result<String, String>;
    /// Fill those of `service`'s state directories that are empty or missing from their newest
    /// snapshots; `None` when there was nothing to restore.
    fn restore_on_start(&self, app: &str, service: &ServiceSpec) -> Result<Option<String>, String>;
    /// A hook failed or ran out of time: count it, and keep it where `zenith audit` finds it.
    fn hook_failed(&self, app: &str, service: &str, hook: &str, error: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Failed,
}

/// A replica as the daemon persists it, for re-adoption after a restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaRow {
    pub id: String,
    pub app: String,
    pub service: String,
    pub revision: u64,
    pub port: u16,
    pub record: ReplicaRecord,
    pub ready: bool,
    pub restarts: u32,
    pub started_at_ms: i64,
}

/// Settings shared by every app of one daemon.
#[derive(Clone)]
pub struct Env {
    pub runtime: Arc<dyn Runtime>,
    pub journal: Arc<dyn Journal>,
    /// Replicas' own files: `<run_dir>/<replica id>/`.
    pub run_dir: PathBuf,
    /// Address the public routers bind (their ports come from the spec).
    pub router_host: IpAddr,
    /// Marks this daemon's replicas (`ZENITH_DAEMON_ID` in their environment) so a restarted
    /// daemon can find orphans.
    pub daemon_marker: String,
    /// Called with every router the controller creates, so the daemon can export metrics.
    pub routers: Arc<std::sync::Mutex<BTreeMap<(String, String), Router>>>,
    /// `None` runs no state hooks (a daemon without a snapshot repository).
    pub hooks: Option<Arc<dyn StateHooks>>,
}

/// The state to start from: what the store says should run, and what ran.
pub struct Start {
    pub app: String,
    pub desired: Option<(u64, Arc<AppSpec>)>,
    pub active: Option<(u64, Arc<AppSpec>)>,
    /// Specs of revisions that replicas still run.
    pub specs: HashMap<u64, Arc<AppSpec>>,
    /// Replicas of the previous daemon, to adopt.
    pub replicas: Vec<ReplicaRow>,
    /// The progressive rollout the previous daemon was running, to resume.
    pub rollout: Option<RolloutRecord>,
    /// Services held stopped by an operation on their state that was under way.
    pub suspended: BTreeSet<String>,
}

pub enum Command {
    /// Roll out `revision`; replies once the update has begun (or could not).
    Deploy {
        revision: u64,
        spec: Arc<AppSpec>,
        /// Skip canary steps and blue-green waits: health checks only, then all traffic.
        forced: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// `zenith rollout promote|pause|resume|abort`; replies with what was done.
    Rollout {
        command: UserCommand,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Drain and stop every replica (pre-stop hooks run); replies when all are gone.
    Shutdown { reply: oneshot::Sender<()> },
    /// Stop the replicas of `services` (all when empty) and start none until [`Command::Resume`]:
    /// their state is about to be replaced. On-stop snapshots do not run. Replies when they
    /// are gone.
    Suspend {
        services: Vec<String>,
        reply: oneshot::Sender<()>,
    },
    /// Let suspended services run again.
    Resume { reply: oneshot::Sender<()> },
}

/// The daemon's handle on one app's controller.
#[derive(Clone)]
pub struct AppHandle {
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<AppStatus>,
}

impl AppHandle {
    pub async fn deploy(&self, revision: u64, spec: Arc<AppSpec>, forced: bool) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Deploy {
                revision,
                spec,
                forced,
                reply,
            })
            .await
            .map_err(|_| "the app's controller has stopped".to_string())?;
        rx.await.map_err(|_| "the app's controller has stopped".to_string())?
    }

    pub async fn rollout(&self, command: UserCommand) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Rollout { command, reply })
            .await
            .map_err(|_| "the app's controller has stopped".to_string())?;
        rx.await.map_err(|_| "the app's controller has stopped".to_string())?
    }

    /// See [`Command::Suspend`].
    pub async fn suspend(&self, services: Vec<String>) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Suspend { services, reply })
            .await
            .map_err(|_| "the app's controller has stopped".to_string())?;
        rx.await.map_err(|_| "the app's controller has stopped".to_string())
    }

    pub async fn resume(&self) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Resume { reply })
            .await
            .map_err(|_| "the app's controller has stopped".to_string())?;
        rx.await.map_err(|_| "the app's controller has stopped".to_string())
    }

    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Messages from the controller's own helper tasks.
enum Event {
    Probe {
        id: String,
        ok: bool,
        detail: String,
    },
    /// A stop task finished (the `Exit` may have come before or comes after).
    Stopped {
        id: String,
    },
    /// The smoke tests of a service's new replicas ran.
    Smoke {
        service: String,
        revision: u64,
        result: Result<(), String>,
    },
}

struct Controller {
    env: Env,
    app: String,
    desired: Option<(u64, Arc<AppSpec>)>,
    active: Option<(u64, Arc<AppSpec>)>,
    specs: HashMap<u64, Arc<AppSpec>>,
    replicas: BTreeMap<String, Replica>,
    routers: HashMap<String, (u16, Router)>,
    restarts: HashMap<(String, u64), RestartTracker>,
    /// Restarts waiting for their delay: (service, revision, due, restarts so far).
    pending: Vec<(String, u64, Instant, u32)>,
    /// Slots the restart policy gave up on, per (service, revision): not refilled.
    given_up: HashMap<(String, u64), u32>,
    events: HashMap<String, Vec<String>>,
    phase: Phase,
    message: String,
    exits_tx: mpsc::UnboundedSender<Exit>,
    events_tx: mpsc::UnboundedSender<Event>,
    status_tx: watch::Sender<AppStatus>,
    shutting_down: bool,
    /// When the rollout last made progress (began, or a new replica became ready): an update
    /// that makes none for `progress_deadline` fails, however often its replicas restart.
    progress_at: Instant,
    /// The latest reason a replica of the desired revision failed, for the failure message.
    last_failure: Option<String>,
    /// The canary or blue-green rollout in progress.
    rollout: Option<RolloutRecord>,
    windows: window::Windows,
    /// The last rollout that ended, for `rollout status`.
    finished_rollout: Option<RolloutStatus>,
    /// Services held stopped while their state is replaced.
    suspended: BTreeSet<String>,
}

impl Controller {
    fn desired_revision(&self) -> Option<u64> {
        self.desired.as_ref().map(|d| d.0)
    }

    fn active_revision(&self) -> Option<u64> {
        self.active.as_ref().map(|a| a.0)
    }
}

/// How often timers (restart delays, progress deadlines) are looked at.
const TICK: Duration = Duration::from_millis(200);

/// Starts the controller of one app, adopting the replicas the previous daemon left running.
pub async fn spawn(env: Env, start: Start) -> AppHandle {
    let (commands, mut commands_rx) = mpsc::channel(16);
    let (exits_tx, mut exits_rx) = mpsc::unbounded_channel();
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let initial = AppStatus {
        app: start.app.clone(),
        desired_revision: start.desired.as_ref().map(|d| d.0),
        active_revision: start.active.as_ref().map(|a| a.0),
        phase: Phase::Progressing,
        message: String::new(),
        services: Vec::new(),
        rollout: None,
    };
    let (status_tx, status) = watch::channel(initial);
    let mut c = Controller {
        env,
        app: start.app,
        desired: start.desired,
        active: start.active,
        specs: start.specs,
        replicas: BTreeMap::new(),
        routers: HashMap::new(),
        restarts: HashMap::new(),
        pending: Vec::new(),
        given_up: HashMap::new(),
        events: HashMap::new(),
        phase: Phase::Progressing,
        message: String::new(),
        exits_tx,
        events_tx,
        status_tx,
        shutting_down: false,
        progress_at: Instant::now(),
        last_failure: None,
        rollout: None,
        windows: Default::default(),
        finished_rollout: None,
        suspended: start.suspended,
    };
    c.bind_routers().await;
    // The saved weights go on the routers before the replicas of both revisions join them, so
    // not one request is spread by replica count instead of by the rollout's weight.
    if let Some(record) = start.rollout {
        c.resume_rollout(record);
    }
    c.adopt(start.replicas).await;
    c.reconcile().await;
    c.publish();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = commands_rx.recv() => match cmd {
                    Some(Command::Deploy { revision, spec, forced, reply }) => {
                        let r = c.deploy(revision, spec, forced).await;
                        let _ = reply.send(r);
                    }
                    Some(Command::Rollout { command, reply }) => {
                        let _ = reply.send(c.rollout_command(command));
                    }
                    Some(Command::Suspend { services, reply }) => {
                        c.suspend(services).await;
                        let _ = reply.send(());
                    }
                    Some(Command::Resume { reply }) => {
                        c.suspended.clear();
                        c.progress_at = Instant::now();
                        let _ = reply.send(());
                    }
                    Some(Command::Shutdown { reply }) => {
                        c.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                },
                Some(exit) = exits_rx.recv() => c.on_exit(exit),
                Some(event) = events_rx.recv() => c.on_event(event),
                _ = tick.tick() => {}
            }
            c.reconcile().await;
            c.refresh_live();
            c.save_rollout();
            c.publish();
        }
    });
    AppHandle { commands, status }
}
