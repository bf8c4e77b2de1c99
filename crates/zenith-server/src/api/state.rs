//! The state endpoints: `POST /v1/apps/{app}/recover` (a recovery or, with `drill`, a restore
//! drill), `GET /v1/snapshots/health` and `GET /v1/schedules`.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::apps::{run_state_op, unknown_app};
use super::{Shared, authorize, record};
use crate::auth::Action;
use crate::error::ApiError;
use crate::state::drill::DrillReport;
use crate::state::health::HealthReport;
use crate::state::ops::{OpKind, RecoverMode, StateOp, find_set, plan_restores};
use crate::state::schedule::JobView;
use crate::store::AuditResult;

#[derive(Debug, Serialize, Deserialize)]
pub struct RecoverRequest {
    /// A snapshot set id, a snapshot id (its whole set), or `latest`.
    #[serde(default = "latest")]
    pub snapshot: String,
    #[serde(default = "full")]
    pub mode: RecoverMode,
    /// Re-read every restored file against the snapshot.
    #[serde(default)]
    pub validate: bool,
    /// Restore into a scratch directory and start the app there instead.
    #[serde(default)]
    pub drill: bool,
    #[serde(default)]
    pub dry_run: bool,
}

fn latest() -> String {
    "latest".into()
}

fn full() -> RecoverMode {
    RecoverMode::Full
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecoverResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<StateOp>,
    pub dry_run: bool,
}

pub async fn recover(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Json(req): Json<RecoverRequest>,
) -> Result<Json<RecoverResponse>, ApiError> {
    let target = format!("app {app}");
    let (action, what) = if req.drill {
        (Action::Deploy, "drill")
    } else {
        (Action::Rollback, "recover")
    };
    let caller = authorize(&s, &headers, action, Some((what, Some(&app), &target)))?;
    if s.store.app(&app)?.is_none() {
        return Err(unknown_app(&app));
    }
    if req.drill {
        let report = crate::state::drill::run(&s, &app, &req.snapshot).await;
        let res = if report.ok { AuditResult::Ok } else { AuditResult::Error };
        record(
            &s,
            Some(&caller.0),
            "drill",
            Some(&app),
            &target,
            res,
            &report.summary(),
        );
        return Ok(Json(RecoverResponse {
            drill: Some(report),
            recovery: None,
            dry_run: false,
        }));
    }
    let result = async {
        let spec = crate::state::schedule::desired_specs(&s)
            .into_iter()
            .find(|x| x.name == app)
            .ok_or_else(|| ApiError::Conflict(format!("{app} has no revision to recover")))?;
        let (sn, a, q) = (s.snapshots.clone(), app.clone(), req.snapshot.clone());
        let (set, snaps) = tokio::task::spawn_blocking(move || find_set(&sn, &a, &q))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::NotFound)?;
        let restores = plan_restores(&spec, &snaps).map_err(ApiError::Conflict)?;
        let services = match req.mode {
            RecoverMode::Full => Vec::new(),
            RecoverMode::StateOnly => {
                let v: std::collections::BTreeSet<String> = restores.iter().map(|r| r.service.clone()).collect();
                v.into_iter().collect()
            }
        };
        let op = StateOp::new(
            &app,
            OpKind::Recover { mode: req.mode },
            set,
            services,
            restores,
            req.validate,
        );
        run_state_op(&s, op, req.dry_run).await
    }
    .await;
    if !req.dry_run {
        let (res, detail) = match &result {
            Ok(r) => {
                let op = r.state_op.as_ref();
                let err = op.and_then(|o| o.error.clone());
                (
                    if err.is_none() {
                        AuditResult::Ok
                    } else {
                        AuditResult::Error
                    },
                    format!(
                        "restored set {} over pre-restore set {}{}",
                        op.map(|o| o.set.as_str()).unwrap_or("?"),
                        op.map(|o| o.id.as_str()).unwrap_or("?"),
                        err.map(|e| format!("; {e}")).unwrap_or_default()
                    ),
                )
            }
            Err(e) => (AuditResult::Error, e.message().to_string()),
        };
        record(&s, Some(&caller.0), "recover", Some(&app), &target, res, &detail);
    }
    let r = result?;
    Ok(Json(RecoverResponse {
        drill: None,
        recovery: r.state_op,
        dry_run: req.dry_run,
    }))
}

pub async fn health(AxState(s): AxState<Shared>, headers: HeaderMap) -> Result<Json<HealthReport>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    crate::state::refresh_health(&s)
        .await
        .map(Json)
        .map_err(ApiError::Internal)
}

pub async fn schedules(AxState(s): AxState<Shared>, headers: HeaderMap) -> Result<Json<Vec<JobView>>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || crate::state::schedule::list(&s2))
        .await
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}
