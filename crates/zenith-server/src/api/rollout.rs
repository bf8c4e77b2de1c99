//! `POST /v1/apps/{app}/rollout/{action}`: a person's decision on the canary or blue-green
//! rollout in progress (promote, pause, resume, abort), or `retry` of the last failed
//! revision. Each call is audited with its outcome.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use zenith_rollout::UserCommand;
use zenith_spec::AppSpec;

use super::apps::unknown_app;
use super::{Shared, authorize, record};
use crate::auth::Action;
use crate::error::ApiError;
use crate::store::{AuditResult, RevisionStatus};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// `promote` only: go straight to 100 % instead of the next step.
    #[serde(default)]
    pub full: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RolloutResponse {
    pub message: String,
}

pub async fn command(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path((app, action)): Path<(String, String)>,
    body: Option<Json<RolloutRequest>>,
) -> Result<Json<RolloutResponse>, ApiError> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let (needs, command) = match action.as_str() {
        "promote" => (Action::Promote, Some(UserCommand::Promote { full: req.full })),
        "pause" => (Action::Pause, Some(UserCommand::Pause)),
        "resume" => (Action::Resume, Some(UserCommand::Resume)),
        "abort" => (Action::Abort, Some(UserCommand::Abort)),
        "retry" => (Action::Retry, None),
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown rollout action {other:?}; use promote, pause, resume, abort or retry"
            )));
        }
    };
    let target = format!("app {app}");
    let what = format!("rollout {action}");
    let caller = authorize(&s, &headers, needs, Some((&what, Some(&app), &target)))?;
    let result = match command {
        Some(cmd) => {
            let handle = s
                .apps
                .lock()
                .await
                .get(&app)
                .cloned()
                .ok_or_else(|| unknown_app(&app))?;
            handle.rollout(cmd).await.map_err(ApiError::Conflict)
        }
        None => retry(&s, &app).await,
    };
    let (res, detail) = match &result {
        Ok(m) => (AuditResult::Ok, m.clone()),
        Err(e) => (AuditResult::Error, e.message().to_string()),
    };
    record(&s, Some(&caller.0), &what, Some(&app), &target, res, &detail);
    result.map(|message| Json(RolloutResponse { message }))
}

/// Rolls the newest failed revision out again, when it is newer than the one serving.
async fn retry(s: &Shared, app: &str) -> Result<String, ApiError> {
    let apps = s.apps.lock().await;
    let handle = apps.get(app).cloned().ok_or_else(|| unknown_app(app))?;
    let row = s.store.app(app)?.ok_or_else(|| unknown_app(app))?;
    let active = row.active_revision.unwrap_or(0);
    if row.desired_revision.is_some_and(|d| d != active) {
        return Err(ApiError::Conflict(format!(
            "{app} is rolling out r{} now; retry applies to a rollout that failed",
            row.desired_revision.unwrap_or_default()
        )));
    }
    let history = s.store.revisions(app)?;
    let failed = history
        .iter()
        .find(|r| r.number > active && r.status == RevisionStatus::Failed)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{app} has no failed revision newer than r{active} to retry (`zenith rollout history {app}`)"
            ))
        })?;
    let spec: AppSpec = serde_json::from_str(&failed.spec_json)
        .map_err(|e| ApiError::Internal(format!("revision {} of {app} cannot be read: {e}", failed.number)))?;
    let n = failed.number;
    s.store.set_desired(app, n)?;
    if let Err(e) = handle.deploy(n, Arc::new(spec), false).await {
        s.store.set_revision_status(app, n, RevisionStatus::Failed, &e)?;
        s.store.set_desired(app, active)?;
        return Err(ApiError::Conflict(e));
    }
    s.store.set_revision_status(app, n, RevisionStatus::Progressing, "")?;
    Ok(format!("r{n} is rolling out again"))
}
