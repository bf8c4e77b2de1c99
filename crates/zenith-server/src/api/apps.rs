//! Apps and their revisions: list, status, deploy (revision N+1 and its plan), rollback (a new
//! revision carrying an earlier one's spec) and history.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use zenith_rollout::{AppStatus, DeployPlan, Start};
use zenith_spec::{AppSpec, RuntimeKind, ServiceSpec};

use super::{Shared, authorize, record};
use crate::auth::Action;
use crate::error::ApiError;
use crate::store::{AuditResult, RevisionRow, RevisionStatus};

#[derive(Debug, Serialize, Deserialize)]
pub struct AppSummary {
    pub status: AppStatus,
    pub revisions: Vec<RevisionSummary>,
}

/// A revision without its spec, for listings.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevisionSummary {
    pub number: u64,
    pub created_at: jiff::Timestamp,
    pub digest: String,
    pub source: String,
    pub status: RevisionStatus,
    pub message: String,
    /// The set of state snapshots taken before the revision rolled out (or, for a rollback
    /// with state, the set it restored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_set: Option<String>,
}

impl From<&RevisionRow> for RevisionSummary {
    fn from(r: &RevisionRow) -> Self {
        RevisionSummary {
            number: r.number,
            created_at: r.created_at,
            digest: r.digest.clone(),
            source: r.source.clone(),
            status: r.status,
            message: r.message.clone(),
            state_set: r.snapshot_id.clone(),
        }
    }
}

pub async fn list(AxState(s): AxState<Shared>, headers: HeaderMap) -> Result<Json<Vec<AppStatus>>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    let apps = s.apps.lock().await;
    Ok(Json(apps.values().map(|h| h.status.borrow().clone()).collect()))
}

pub async fn show(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<AppSummary>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    // Revisions first: the controller publishes its status before it records an outcome, so
    // a revision read as ended always comes with a status that shows how.
    let revisions = s.store.revisions(&app)?.iter().map(RevisionSummary::from).collect();
    let status = current_status(&s, &app).await?;
    Ok(Json(AppSummary { status, revisions }))
}

pub async fn revisions(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<Vec<RevisionSummary>>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    if s.store.app(&app)?.is_none() {
        return Err(unknown_app(&app));
    }
    Ok(Json(
        s.store.revisions(&app)?.iter().map(RevisionSummary::from).collect(),
    ))
}

async fn current_status(s: &Shared, app: &str) -> Result<AppStatus, ApiError> {
    let apps = s.apps.lock().await;
    apps.get(app)
        .map(|h| h.status.borrow().clone())
        .ok_or_else(|| unknown_app(app))
}

pub(super) fn unknown_app(app: &str) -> ApiError {
    ApiError::NotFound(format!("no app named {app:?} (`zenith apps` lists them)"))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeployRequest {
    pub spec: AppSpec,
    /// Where the spec came from, for the history (a file path, a commit).
    pub source: String,
    #[serde(default)]
    pub dry_run: bool,
    /// Emergency deploy: canary and blue-green services skip their steps and analysis (health
    /// checks still hold); recorded as forced in the audit log.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeployResponse {
    pub revision: u64,
    /// The spec equals the desired revision's: nothing was created or changed.
    pub unchanged: bool,
    pub dry_run: bool,
    pub plan: DeployPlan,
    /// The state snapshots taken before the new revision rolled out (`snapshot_before_deploy`),
    /// or the set a rollback with state restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_set: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<crate::state::Taken>,
    /// What a rollback with state did, step by step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_op: Option<crate::state::ops::StateOp>,
}

pub async fn deploy(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Json(req): Json<DeployRequest>,
) -> Result<Json<DeployResponse>, ApiError> {
    let target = format!("app {app}");
    let caller = authorize(&s, &headers, Action::Deploy, Some(("deploy", Some(&app), &target)))?;
    let result = roll_out(&s, &app, req.spec, &req.source, req.dry_run, req.force, None).await;
    if !req.dry_run {
        let forced = if req.force { "forced: " } else { "" };
        let (res, detail) = match &result {
            Ok(r) if r.unchanged => (AuditResult::Ok, format!("{forced}unchanged, r{} stays", r.revision)),
            Ok(r) => (
                AuditResult::Ok,
                format!("{forced}created r{} from {}", r.revision, req.source),
            ),
            Err(e) => (AuditResult::Error, e.message().to_string()),
        };
        record(&s, Some(&caller.0), "deploy", Some(&app), &target, res, &detail);
    }
    result.map(Json)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The revision to go back to; by default the newest earlier one that ran to completion.
    pub revision: Option<u64>,
    #[serde(default)]
    pub dry_run: bool,
    /// Also restore the state snapshots recorded on the target revision.
    #[serde(default)]
    pub with_state: bool,
}

pub async fn rollback(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Json(req): Json<RollbackRequest>,
) -> Result<Json<DeployResponse>, ApiError> {
    let target = format!("app {app}");
    let caller = authorize(&s, &headers, Action::Rollback, Some(("rollback", Some(&app), &target)))?;
    let result = async {
        let row = s.store.app(&app)?.ok_or_else(|| unknown_app(&app))?;
        let current = row.active_revision.or(row.desired_revision).unwrap_or(0);
        let history = s.store.revisions(&app)?;
        let to = match req.revision {
            Some(n) => history.iter().find(|r| r.number == n).ok_or_else(|| {
                let kept: Vec<String> = history.iter().map(|r| format!("r{}", r.number)).collect();
                ApiError::NotFound(format!(
                    "{app} has no revision {n} (kept: {}; older ones were pruned by revision_history_limit)",
                    kept.join(", ")
                ))
            })?,
            None => history
                .iter()
                .filter(|r| r.number < current)
                .find(|r| matches!(r.status, RevisionStatus::Complete | RevisionStatus::Superseded))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{app} has no earlier revision that ran to completion to roll back to \
                         (`zenith rollout history {app}` lists them)"
                    ))
                })?,
        };
        let spec: AppSpec = serde_json::from_str(&to.spec_json)
            .map_err(|e| ApiError::Internal(format!("revision {} of {app} cannot be read: {e}", to.number)))?;
        if req.with_state {
            return rollback_with_state(&s, &app, to, spec, req.dry_run).await;
        }
        // A rollback goes back to a version that already served: it is health-checked, but
        // never judged again by canary analysis, and takes the traffic at once.
        roll_out(
            &s,
            &app,
            spec,
            &format!("rollback to r{}", to.number),
            req.dry_run,
            true,
            None,
        )
        .await
    }
    .await;
    if !req.dry_run {
        let (res, detail) = match &result {
            Ok(r) => match &r.state_op {
                Some(op) => (
                    if op.error.is_none() {
                        AuditResult::Ok
                    } else {
                        AuditResult::Error
                    },
                    format!(
                        "r{} with state: restored set {} over pre-restore set {}{}",
                        r.revision,
                        op.set,
                        op.id,
                        op.error.as_ref().map(|e| format!("; {e}")).unwrap_or_default()
                    ),
                ),
                None => (
                    AuditResult::Ok,
                    format!("r{} (code only; state data left as is)", r.revision),
                ),
            },
            Err(e) => (AuditResult::Error, e.message().to_string()),
        };
        record(&s, Some(&caller.0), "rollback", Some(&app), &target, res, &detail);
    }
    result.map(Json)
}

/// `rollback --with-state`: the state recorded on `to` comes back with its code, through a
/// journaled [`crate::state::ops::StateOp`].
async fn rollback_with_state(
    s: &Shared,
    app: &str,
    to: &RevisionRow,
    spec: AppSpec,
    dry_run: bool,
) -> Result<DeployResponse, ApiError> {
    let set = to.snapshot_id.clone().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "r{} of {app} has no state snapshot recorded (snapshot_before_deploy was off when it was \
             deployed, or its state directories did not exist yet); roll back without --with-state, or restore a chosen snapshot with \
             `zenith recover {app} --snapshot ID`",
            to.number
        ))
    })?;
    let snaps = {
        let sn = s.snapshots.clone();
        let set = set.clone();
        tokio::task::spawn_blocking(move || sn.set(&set))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::Internal)?
    };
    if snaps.is_empty() {
        return Err(ApiError::Conflict(format!(
            "the state snapshots of r{} (set {set}) are no longer in the repository {}",
            to.number,
            s.snapshots.repo_path().display()
        )));
    }
    let restores = crate::state::ops::plan_restores(&spec, &snaps).map_err(ApiError::Conflict)?;
    let op = crate::state::ops::StateOp::new(
        app,
        crate::state::ops::OpKind::Rollback { to: to.number },
        set.clone(),
        Vec::new(),
        restores,
        false,
    );
    run_state_op(s, op, dry_run).await
}

/// Starts a state operation (or, for a dry run, returns its plan) and waits for its end. It
/// runs on its own task: a client that goes away does not stop it halfway.
pub(crate) async fn run_state_op(
    s: &Shared,
    op: crate::state::ops::StateOp,
    dry_run: bool,
) -> Result<DeployResponse, ApiError> {
    let app = op.app.clone();
    let plan_only = DeployResponse {
        revision: 0,
        unchanged: false,
        dry_run,
        plan: DeployPlan::default(),
        state_set: Some(op.set.clone()),
        snapshots: Vec::new(),
        state_op: Some(op.clone()),
    };
    if dry_run {
        return Ok(plan_only);
    }
    let handle = {
        let apps = s.apps.lock().await;
        if s.store.state_op(&app)?.is_some() {
            return Err(ApiError::Conflict(format!(
                "an operation on the state of {app} is already under way; wait for it to end"
            )));
        }
        let h = apps.get(&app).cloned().ok_or_else(|| unknown_app(&app))?;
        crate::state::ops::save(s, &op);
        h
    };
    let task = tokio::spawn(crate::state::ops::drive(s.clone(), op, handle));
    let op = task
        .await
        .map_err(|e| ApiError::Internal(format!("the state operation failed: {e}")))?;
    Ok(DeployResponse {
        revision: op.revision.unwrap_or(0),
        state_op: Some(op),
        ..plan_only
    })
}

/// Checks the spec against what runs, then creates revision N+1 and hands it to the app's
/// controller. Nothing is recorded or changed when a check fails. With `state_set`, the new
/// revision records that set (a rollback with state) instead of running before-deploy hooks.
pub(crate) async fn roll_out(
    s: &Shared,
    app: &str,
    spec: AppSpec,
    source: &str,
    dry_run: bool,
    forced: bool,
    state_set: Option<String>,
) -> Result<DeployResponse, ApiError> {
    if spec.name != app {
        return Err(ApiError::BadRequest(format!(
            "the spec is for app {:?}, not {app:?}",
            spec.name
        )));
    }
    let mut spec = spec;
    prepare_containers(&mut spec, dry_run).await?;
    let mut apps = s.apps.lock().await;
    check_ports(s, app, &spec).await?;
    let row = s.store.app(app)?;
    let current = match row.as_ref().and_then(|r| r.desired_revision) {
        Some(n) => s.store.revision(app, n)?,
        None => None,
    };
    let current_spec: Option<(AppSpec, u64)> = current
        .as_ref()
        .and_then(|r| serde_json::from_str(&r.spec_json).ok().map(|spec| (spec, r.number)));
    let next = row.as_ref().map(|r| r.last_revision).unwrap_or(0) + 1;
    let digest = spec.digest();
    if let Some(cur) = current.as_ref().filter(|c| c.digest == digest) {
        let plan =
            zenith_rollout::plan::plan_with(current_spec.as_ref().map(|(s, n)| (s, *n)), &spec, cur.number, forced);
        return Ok(DeployResponse {
            revision: cur.number,
            unchanged: true,
            dry_run,
            plan,
            state_set: None,
            snapshots: Vec::new(),
            state_op: None,
        });
    }
    let plan = zenith_rollout::plan::plan_with(current_spec.as_ref().map(|(s, n)| (s, *n)), &spec, next, forced);
    if dry_run {
        return Ok(DeployResponse {
            revision: next,
            unchanged: false,
            dry_run,
            plan,
            state_set: None,
            snapshots: Vec::new(),
            state_op: None,
        });
    }
    if state_set.is_none() && s.store.state_op(app)?.is_some() {
        return Err(ApiError::Conflict(format!(
            "an operation on the state of {app} is under way (a rollback with state or a recovery); \
             deploy once it has ended"
        )));
    }
    // The before-deploy snapshots come first: if one cannot be taken, nothing is deployed.
    let (state_set, snapshots) = match state_set {
        Some(set) => (Some(set), Vec::new()),
        None => {
            let (sn, sp) = (s.snapshots.clone(), spec.clone());
            match tokio::task::spawn_blocking(move || sn.before_deploy(&sp, next))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
            {
                Ok(Some((set, taken))) => (Some(set), taken),
                Ok(None) => (None, Vec::new()),
                Err(e) => {
                    return Err(ApiError::Conflict(format!(
                        "snapshot_before_deploy: {e}; nothing was deployed (fix the repository, or turn the hook off)"
                    )));
                }
            }
        }
    };
    let json = serde_json::to_string(&spec).expect("specs serialize");
    let n = s
        .store
        .create_revision(app, &json, &digest, source, spec.revision_history_limit as usize)?;
    if let Some(set) = &state_set {
        s.store.set_revision_snapshot(app, n, set)?;
    }
    let spec = Arc::new(spec);
    let handle = match apps.get(app) {
        Some(h) => h.clone(),
        None => {
            let start = Start {
                app: app.to_string(),
                desired: None,
                active: None,
                specs: Default::default(),
                replicas: Vec::new(),
                rollout: None,
                suspended: Default::default(),
            };
            let h = zenith_rollout::controller::spawn(s.env.clone(), start).await;
            apps.insert(app.to_string(), h.clone());
            h
        }
    };
    if let Err(e) = handle.deploy(n, spec, forced).await {
        s.store.set_revision_status(app, n, RevisionStatus::Failed, &e)?;
        if let Some(prev) = current.as_ref() {
            s.store.set_desired(app, prev.number)?;
        }
        return Err(ApiError::Conflict(e));
    }
    s.store.set_revision_status(app, n, RevisionStatus::Progressing, "")?;
    Ok(DeployResponse {
        revision: n,
        unchanged: false,
        dry_run,
        plan,
        state_set,
        snapshots,
        state_op: None,
    })
}

/// Gets the engine ready for the spec's containers before anything changes, over one
/// connection. Each state volume's directory on the host joins the service's state
/// directories, so that every hook, schedule, rollback and drill acts on it as on any other (a
/// revision stored earlier already carries them). Each image is made ready, so a missing one
/// fails the deploy here, with the engine's words, rather than as replicas that never start.
async fn prepare_containers(spec: &mut AppSpec, dry_run: bool) -> Result<(), ApiError> {
    use zenith_runtime::docker;
    let unresolved = |s: &ServiceSpec| {
        s.container
            .state_volumes
            .iter()
            .any(|v| !s.container.volume_dirs.contains_key(v))
    };
    // A dry run changes nothing on the engine; it only looks up state volumes.
    let needed = |s: &ServiceSpec| s.runtime == RuntimeKind::Docker && (!dry_run || unresolved(s));
    if !spec.services.iter().any(needed) {
        return Ok(());
    }
    let engine = docker::connect()
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    for svc in spec.services.iter_mut().filter(|s| s.runtime == RuntimeKind::Docker) {
        let refused = |e: String| ApiError::BadRequest(format!("service {}: {e}", svc.name));
        for name in svc.container.state_volumes.clone() {
            if svc.container.volume_dirs.contains_key(&name) {
                continue;
            }
            if let Some(dir) = docker::volume_dir(&engine, &name, !dry_run).await.map_err(refused)? {
                svc.state_dirs.push(dir.clone());
                svc.container.volume_dirs.insert(name, dir);
            }
        }
        if !dry_run {
            let image = svc.image.as_deref().unwrap_or_default();
            docker::prepare_image(&engine, image).await.map_err(refused)?;
        }
    }
    Ok(())
}

/// A public port is free for `app` when no other app's desired revision claims it and, if
/// this app does not listen on it already, the OS lets us bind it.
async fn check_ports(s: &Shared, app: &str, spec: &AppSpec) -> Result<(), ApiError> {
    for other in s.store.apps()? {
        if other.name == app {
            continue;
        }
        let Some(n) = other.desired_revision else { continue };
        let Some(rev) = s.store.revision(&other.name, n)? else {
            continue;
        };
        let Ok(other_spec) = serde_json::from_str::<AppSpec>(&rev.spec_json) else {
            continue;
        };
        for svc in &spec.services {
            if let Some(o) = other_spec
                .services
                .iter()
                .find(|o| o.port.is_some() && o.port == svc.port)
            {
                return Err(ApiError::Conflict(format!(
                    "service {}: port {} is already the public port of {}/{}",
                    svc.name,
                    svc.port.unwrap_or_default(),
                    other.name,
                    o.name
                )));
            }
        }
    }
    let ours: Vec<u16> = s
        .env
        .routers
        .lock()
        .expect("routers map lock")
        .iter()
        .filter(|((a, _), _)| a == app)
        .map(|(_, r)| r.local_addr().port())
        .collect();
    for svc in &spec.services {
        let Some(port) = svc.port.filter(|p| !ours.contains(p)) else {
            continue;
        };
        if let Err(e) = std::net::TcpListener::bind((s.env.router_host, port)) {
            return Err(ApiError::Conflict(format!(
                "service {}: public port {port} cannot be used: {e} (another program listens on it; \
                 stop it or choose another port)",
                svc.name
            )));
        }
    }
    Ok(())
}
