//! Operations that replace an app's live state: `zenith rollback APP --with-state` and
//! `zenith recover APP`. Each is a short list of phases — stop the writers, snapshot what is
//! there, restore, start, check health — journaled in the state store after every phase and
//! every directory, so a daemon killed at any instant finishes the operation when it comes
//! back. At every instant each state directory holds either its old contents or the restored
//! ones (a restore is built beside the directory and swapped in with one rename), and no
//! directory is touched before the pre-restore snapshots of all of them exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zenith_rollout::{AppHandle, Phase};
use zenith_spec::AppSpec;

use super::{PRE_RESTORE, Snapshots, Take, tag, tag_value};
use crate::api::Shared;

/// What the operation is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OpKind {
    /// Roll back to revision `to` and restore the state recorded on it.
    Rollback { to: u64 },
    /// Restore a snapshot set and start the app again.
    Recover { mode: RecoverMode },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoverMode {
    /// Stop the whole app, restore, start it again.
    Full,
    /// Stop only the services whose state is restored; the others keep serving.
    StateOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpPhase {
    Stopping,
    Backup,
    Restoring,
    Starting,
    Checking,
    Done,
}

/// One directory to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirRestore {
    pub service: String,
    pub dir: PathBuf,
    /// Full hex id of the snapshot to restore.
    pub snapshot: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub seconds: f64,
    pub detail: String,
}

/// The journaled operation, and in the end its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateOp {
    /// The set id of the pre-restore snapshots.
    pub id: String,
    pub app: String,
    #[serde(flatten)]
    pub kind: OpKind,
    /// The snapshot set restored.
    pub set: String,
    /// Services held stopped (empty: all of them).
    pub services: Vec<String>,
    pub restores: Vec<DirRestore>,
    /// Re-read every restored file against the snapshot.
    pub validate: bool,
    pub phase: OpPhase,
    /// (directory, pre-restore snapshot id).
    pub backups: Vec<(PathBuf, String)>,
    pub restored: Vec<PathBuf>,
    pub restored_bytes: u64,
    /// The revision started at the end (a rollback's new revision).
    pub revision: Option<u64>,
    pub steps: Vec<Step>,
    pub started_at: jiff::Timestamp,
    /// Set when the app did not come back healthy (the restored state stays in place).
    pub error: Option<String>,
}

impl StateOp {
    pub fn new(
        app: &str,
        kind: OpKind,
        set: String,
        services: Vec<String>,
        restores: Vec<DirRestore>,
        validate: bool,
    ) -> StateOp {
        StateOp {
            id: super::new_set_id(app, PRE_RESTORE),
            app: app.to_string(),
            kind,
            set,
            services,
            restores,
            validate,
            phase: OpPhase::Stopping,
            backups: Vec::new(),
            restored: Vec::new(),
            restored_bytes: 0,
            revision: None,
            steps: Vec::new(),
            started_at: jiff::Timestamp::now(),
            error: None,
        }
    }

    /// Services whose replicas are held stopped while the state is replaced.
    pub fn held(&self, spec: Option<&AppSpec>) -> Vec<String> {
        if self.services.is_empty() {
            spec.map(|s| s.services.iter().map(|s| s.name.clone()).collect())
                .unwrap_or_default()
        } else {
            self.services.clone()
        }
    }
}

/// The directories to restore from a set of snapshots, checked against the app's spec: each
/// snapshot must be of one directory that the spec declares as state of the same service, so a
/// recovery can never write anywhere the app does not keep state.
pub fn plan_restores(spec: &AppSpec, snaps: &[zenith_snapshot::Snapshot]) -> Result<Vec<DirRestore>, String> {
    let mut out = Vec::new();
    for snap in snaps {
        let service = tag_value(snap, "service").ok_or_else(|| {
            format!(
                "snapshot {} has no service= tag: it was not taken by the daemon for this app",
                snap.id.short()
            )
        })?;
        let [path] = snap.paths.as_slice() else {
            return Err(format!(
                "snapshot {} holds {} paths, not one state directory",
                snap.id.short(),
                snap.paths.len()
            ));
        };
        let dir = PathBuf::from(path);
        let svc = spec.service(service).ok_or_else(|| {
            format!(
                "snapshot {} is of service {service}, which revision's spec does not have",
                snap.id.short()
            )
        })?;
        if !svc.state_dirs.contains(&dir) {
            return Err(format!(
                "snapshot {} is of {}, which is not a state directory of {}/{service} (it has: {})",
                snap.id.short(),
                dir.display(),
                spec.name,
                svc.state_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push(DirRestore {
            service: service.to_string(),
            dir,
            snapshot: snap.id.to_hex(),
        });
    }
    if out.is_empty() {
        return Err("the snapshot set is empty".into());
    }
    Ok(out)
}

/// Drives `op` to its end from whatever phase it is in, saving it after every step.
pub async fn drive(s: Shared, mut op: StateOp, handle: AppHandle) -> StateOp {
    let snapshots = s.snapshots.clone();
    loop {
        let started = Instant::now();
        let result: Result<String, String> = match op.phase {
            OpPhase::Stopping => {
                let spec = current_spec(&s, &op.app);
                let held = op.held(spec.as_deref());
                handle
                    .suspend(op.services.clone())
                    .await
                    .map(|()| format!("stopped {}", held.join(", ")))
            }
            OpPhase::Backup => backup(&snapshots, &mut op).await,
            OpPhase::Restoring => restore_all(&s, &snapshots, &mut op).await,
            OpPhase::Starting => start(&s, &mut op, &handle).await,
            OpPhase::Checking => check(&s, &op, &handle).await,
            OpPhase::Done => break,
        };
        let name = match op.phase {
            OpPhase::Stopping => "stop writers",
            OpPhase::Backup => "pre-restore snapshot",
            OpPhase::Restoring => "restore",
            OpPhase::Starting => "start",
            OpPhase::Checking => "health check",
            OpPhase::Done => "done",
        };
        let (detail, next) = match result {
            Ok(d) => (d, next_phase(op.phase)),
            Err(e) if op.phase >= OpPhase::Starting => {
                // The state is restored; what failed is the app. Stop here and say so: the
                // pre-restore snapshot is there to go back with `zenith recover`.
                op.error = Some(e.clone());
                (e, OpPhase::Done)
            }
            Err(e) => {
                op.error = Some(e.clone());
                op.steps.push(step(name, started, &e));
                save(&s, &op);
                if op.phase < OpPhase::Restoring {
                    // The old state is untouched: let the app run again and give up.
                    let _ = handle.resume().await;
                    op.phase = OpPhase::Done;
                    break;
                }
                let failures = op.steps.iter().filter(|x| x.name == "restore").count();
                if failures < RESTORE_ATTEMPTS {
                    // A lock held by a prune, a full disk freed meanwhile: worth another try.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
                // The snapshot cannot be restored (damaged, say): put back what was there,
                // from the pre-restore snapshots, and let the app run on it.
                let t = Instant::now();
                let undo = put_back(&snapshots, &op).await;
                op.steps.push(step("put back the state from before", t, &undo));
                op.error = Some(format!("{e}; {undo}"));
                let _ = handle.resume().await;
                op.phase = OpPhase::Done;
                save(&s, &op);
                break;
            }
        };
        op.steps.push(step(name, started, &detail));
        op.phase = next;
        save(&s, &op);
    }
    if let Err(e) = s.store.save_state_op(&op.app, None) {
        tracing::error!(app = %op.app, error = %e, "could not end the state operation");
    }
    op
}

/// Restores that fail this often end the operation (see [`put_back`]).
const RESTORE_ATTEMPTS: usize = 3;

/// Restores the pre-restore snapshot of every directory of the operation: a restore that
/// found damaged files still swaps in what it could, so any directory may have changed.
async fn put_back(snapshots: &Arc<Snapshots>, op: &StateOp) -> String {
    let (sn, o) = (snapshots.clone(), op.clone());
    let result = tokio::task::spawn_blocking(move || {
        let repo = sn.repo()?;
        let mut n = 0;
        for dir in o.restores.iter().map(|r| &r.dir) {
            let Some((_, id)) = o.backups.iter().find(|(d, _)| d == dir) else {
                continue;
            };
            let id: zenith_snapshot::Id = id.parse().map_err(|e| format!("{e}"))?;
            let snap = repo.load_snapshot(&id).map_err(|e| e.to_string())?;
            sn.restore_dir(&o.app, &snap, dir, false, "put-back")?;
            n += 1;
        }
        Ok::<_, String>(n)
    })
    .await;
    match result {
        Ok(Ok(n)) => format!("the state from before is back in place ({n} directories put back)"),
        Ok(Err(e)) => format!(
            "putting the state from before back failed too: {e}; it is in pre-restore set {}",
            op.id
        ),
        Err(e) => format!(
            "putting the state from before back failed: {e}; it is in pre-restore set {}",
            op.id
        ),
    }
}

fn next_phase(p: OpPhase) -> OpPhase {
    match p {
        OpPhase::Stopping => OpPhase::Backup,
        OpPhase::Backup => OpPhase::Restoring,
        OpPhase::Restoring => OpPhase::Starting,
        OpPhase::Starting => OpPhase::Checking,
        OpPhase::Checking | OpPhase::Done => OpPhase::Done,
    }
}

fn step(name: &str, started: Instant, detail: &str) -> Step {
    Step {
        name: name.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        detail: detail.to_string(),
    }
}

pub fn save(s: &Shared, op: &StateOp) {
    let json = serde_json::to_string(op).expect("state operations serialize");
    if let Err(e) = s.store.save_state_op(&op.app, Some(&json)) {
        tracing::error!(app = %op.app, error = %e, "could not journal the state operation");
    }
}

fn current_spec(s: &Shared, app: &str) -> Option<Arc<AppSpec>> {
    let row = s.store.app(app).ok()??;
    let rev = s.store.revision(app, row.desired_revision?).ok()??;
    serde_json::from_str(&rev.spec_json).ok().map(Arc::new)
}

/// Snapshot every directory about to be replaced, as one set tagged `pre-restore`. Redone
/// from scratch after a crash: nothing was restored yet, so the directories are as they were.
async fn backup(snapshots: &Arc<Snapshots>, op: &mut StateOp) -> Result<String, String> {
    let (sn, o) = (snapshots.clone(), op.clone());
    let taken = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for r in &o.restores {
            out.extend(sn.take(&Take {
                app: &o.app,
                service: &r.service,
                dirs: std::slice::from_ref(&r.dir),
                kind: "state",
                reason: PRE_RESTORE,
                revision: None,
                set: &o.id,
            })?);
        }
        Ok::<_, String>(out)
    })
    .await
    .map_err(|e| format!("the pre-restore snapshot task failed: {e}"))??;
    op.backups = taken.iter().map(|t| (t.dir.clone(), t.snapshot.clone())).collect();
    let bytes: u64 = taken.iter().map(|t| t.bytes).sum();
    Ok(format!(
        "set {} ({} directories, {})",
        op.id,
        taken.len(),
        human_bytes(bytes)
    ))
}

async fn restore_all(s: &Shared, snapshots: &Arc<Snapshots>, op: &mut StateOp) -> Result<String, String> {
    let pending: Vec<DirRestore> = op
        .restores
        .iter()
        .filter(|r| !op.restored.contains(&r.dir))
        .cloned()
        .collect();
    for r in pending {
        let (sn, app, validate) = (snapshots.clone(), op.app.clone(), op.validate);
        let reason = match op.kind {
            OpKind::Rollback { .. } => "rollback",
            OpKind::Recover { .. } => "recover",
        };
        let r2 = r.clone();
        let report = tokio::task::spawn_blocking(move || {
            remove_stale_staging(&r2.dir);
            let repo = sn.repo()?;
            let id: zenith_snapshot::Id = r2
                .snapshot
                .parse()
                .map_err(|e| format!("snapshot id {}: {e}", r2.snapshot))?;
            let snap = repo
                .load_snapshot(&id)
                .map_err(|e| format!("snapshot {} to restore: {e}", &r2.snapshot[..8]))?;
            sn.restore_dir(&app, &snap, &r2.dir, validate, reason)
        })
        .await
        .map_err(|e| format!("the restore task failed: {e}"))??;
        op.restored.push(r.dir.clone());
        op.restored_bytes += report.bytes;
        save(s, op);
    }
    Ok(format!(
        "{} directories, {}{}",
        op.restored.len(),
        human_bytes(op.restored_bytes),
        if op.validate {
            ", every file re-read and checked"
        } else {
            ""
        }
    ))
}

/// Leftovers of a restore a crash interrupted: the half-built new directory, or the old one
/// after the swap. Either is safe to drop: the pre-restore snapshot holds the old contents.
fn remove_stale_staging(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let prefix = format!(".{}.zenith-restore-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::info!(path = %e.path().display(), "removing what an interrupted restore left");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

async fn start(s: &Shared, op: &mut StateOp, handle: &AppHandle) -> Result<String, String> {
    let mut what = String::new();
    if let OpKind::Rollback { to } = op.kind {
        let rev = s
            .store
            .revision(&op.app, to)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("revision {to} of {} is gone", op.app))?;
        let spec: AppSpec =
            serde_json::from_str(&rev.spec_json).map_err(|e| format!("revision {to} cannot be read: {e}"))?;
        let deployed = crate::api::apps::roll_out(
            s,
            &op.app,
            spec,
            &format!("rollback to r{to} with state"),
            false,
            true,
            Some(op.set.clone()),
        )
        .await
        .map_err(|e| e.message().to_string())?;
        op.revision = Some(deployed.revision);
        what = format!("r{} (the spec of r{to}); ", deployed.revision);
    }
    handle.resume().await?;
    Ok(format!("{what}writers started again"))
}

/// Waits until every service is back and healthy, or the update's deadline passes.
async fn check(s: &Shared, op: &StateOp, handle: &AppHandle) -> Result<String, String> {
    let spec = current_spec(s, &op.app);
    let deadline = spec
        .as_ref()
        .and_then(|sp| sp.services.iter().map(|x| x.update.progress_deadline()).max())
        .unwrap_or(Duration::from_secs(60))
        + Duration::from_secs(10);
    let mut status = handle.status.clone();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        {
            let st = status.borrow_and_update();
            let settled = op.revision.is_none_or(|r| st.active_revision == Some(r));
            if st.phase == Phase::Complete && settled {
                let ready: u32 = st.services.iter().map(|x| x.ready_replicas).sum();
                return Ok(format!("{} replicas ready", ready));
            }
            if st.phase == Phase::Failed && op.revision.is_some_and(|r| st.desired_revision != Some(r)) {
                return Err(format!("the app did not come back: {}", st.message));
            }
        }
        if tokio::time::timeout_at(until, status.changed()).await.is_err() {
            let st = status.borrow();
            return Err(format!(
                "the app is not healthy after {}s: {:?} {}",
                deadline.as_secs(),
                st.phase,
                st.message
            ));
        }
    }
}

/// Sizes as the CLI prints them (`1.0 GiB`).
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// The snapshots of `app` that make up set `query`: a set id, a snapshot id (its whole set), or
/// `latest` (the newest set that is not a pre-restore copy).
pub fn find_set(
    snapshots: &Snapshots,
    app: &str,
    query: &str,
) -> Result<(String, Vec<zenith_snapshot::Snapshot>), String> {
    let mine = tag("app", app);
    let all: Vec<_> = snapshots.all()?.into_iter().filter(|s| s.has_tag(&mine)).collect();
    if all.is_empty() {
        return Err(format!("the repository has no snapshots of {app}"));
    }
    let set = if query == "latest" {
        all.iter()
            .filter(|s| !s.has_tag(PRE_RESTORE))
            .max_by_key(|s| s.time)
            .and_then(|s| tag_value(s, "set"))
            .ok_or_else(|| format!("{app} has no snapshots other than pre-restore copies"))?
            .to_string()
    } else if all.iter().any(|s| tag_value(s, "set") == Some(query)) {
        query.to_string()
    } else {
        let s =
            zenith_snapshot::snapshot::find(&all, query).map_err(|e| format!("{e} (among the snapshots of {app})"))?;
        tag_value(s, "set")
            .ok_or_else(|| format!("snapshot {} has no set= tag", s.id.short()))?
            .to_string()
    };
    let want = tag("set", &set);
    let members = all.into_iter().filter(|s| s.has_tag(&want)).collect();
    Ok((set, members))
}
