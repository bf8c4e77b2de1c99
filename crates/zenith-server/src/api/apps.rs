//! Apps and their revisions: list, status, deploy (revision N+1 and its plan), rollback (a new
//! revision carrying an earlier one's spec) and history.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use zenith_rollout::{AppStatus, DeployPlan, Start};
use zenith_spec::{AppSpec, RuntimeKind};

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
}

pub async fn deploy(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Json(req): Json<DeployRequest>,
) -> Result<Json<DeployResponse>, ApiError> {
    let target = format!("app {app}");
    let caller = authorize(&s, &headers, Action::Deploy, Some(("deploy", Some(&app), &target)))?;
    let result = roll_out(&s, &app, req.spec, &req.source, req.dry_run, req.force).await;
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
        // A rollback goes back to a version that already served: it is health-checked, but
        // never judged again by canary analysis, and takes the traffic at once.
        roll_out(
            &s,
            &app,
            spec,
            &format!("rollback to r{}", to.number),
            req.dry_run,
            true,
        )
        .await
    }
    .await;
    if !req.dry_run {
        let (res, detail) = match &result {
            Ok(r) => (
                AuditResult::Ok,
                format!("r{} (code only; state data left as is)", r.revision),
            ),
            Err(e) => (AuditResult::Error, e.message().to_string()),
        };
        record(&s, Some(&caller.0), "rollback", Some(&app), &target, res, &detail);
    }
    result.map(Json)
}

/// Checks the spec against what runs, then creates revision N+1 and hands it to the app's
/// controller. Nothing is recorded or changed when a check fails.
async fn roll_out(
    s: &Shared,
    app: &str,
    spec: AppSpec,
    source: &str,
    dry_run: bool,
    forced: bool,
) -> Result<DeployResponse, ApiError> {
    if spec.name != app {
        return Err(ApiError::BadRequest(format!(
            "the spec is for app {:?}, not {app:?}",
            spec.name
        )));
    }
    if let Some(svc) = spec.services.iter().find(|s| s.runtime == RuntimeKind::Docker) {
        return Err(ApiError::BadRequest(format!(
            "service {}: the docker runtime is not available in this version of zenith; use runtime = \"process\"",
            svc.name
        )));
    }
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
        });
    }
    let plan = zenith_rollout::plan::plan_with(current_spec.as_ref().map(|(s, n)| (s, *n)), &spec, next, forced);
    if dry_run {
        return Ok(DeployResponse {
            revision: next,
            unchanged: false,
            dry_run,
            plan,
        });
    }
    let json = serde_json::to_string(&spec).expect("specs serialize");
    let n = s
        .store
        .create_revision(app, &json, &digest, source, spec.revision_history_limit as usize)?;
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
    })
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
