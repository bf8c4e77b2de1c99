//! The daemon's own resources: health, tokens, the audit log, replica logs and the
//! Prometheus metrics.

use std::convert::Infallible;
use std::fmt::Write as _;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Shared, authorize, record};
use crate::auth::{Action, Role, TokenInfo};
use crate::error::ApiError;
use crate::store::{AuditRecord, AuditResult};

pub async fn health(AxState(s): AxState<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "ok": true,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
    }))
}

pub async fn tokens(AxState(s): AxState<Shared>, headers: HeaderMap) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    authorize(&s, &headers, Action::ManageTokens, None)?;
    Ok(Json(s.store.list_tokens()?))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateToken {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: TokenInfo,
    /// Shown once; only its hash is kept.
    pub secret: String,
}

pub async fn create_token(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Json(req): Json<CreateToken>,
) -> Result<Json<CreatedToken>, ApiError> {
    let target = format!("token {}", req.name);
    let caller = authorize(
        &s,
        &headers,
        Action::ManageTokens,
        Some(("token.create", None, &target)),
    )?;
    let result = s.store.create_token(&req.name, req.role);
    let (res, detail) = match &result {
        Ok((t, _)) => (AuditResult::Ok, format!("role {}", t.role.as_str())),
        Err(e) => (AuditResult::Error, e.to_string()),
    };
    record(&s, Some(&caller.0), "token.create", None, &target, res, &detail);
    let (token, secret) = result?;
    Ok(Json(CreatedToken {
        token,
        secret: secret.expose().to_string(),
    }))
}

pub async fn revoke_token(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let target = format!("token {name}");
    let caller = authorize(
        &s,
        &headers,
        Action::ManageTokens,
        Some(("token.revoke", None, &target)),
    )?;
    let result = s.store.revoke_token(&name);
    let (res, detail) = match &result {
        Ok(true) => (AuditResult::Ok, String::new()),
        Ok(false) => (AuditResult::Error, "no such token".into()),
        Err(e) => (AuditResult::Error, e.to_string()),
    };
    record(&s, Some(&caller.0), "token.revoke", None, &target, res, &detail);
    if !result? {
        return Err(ApiError::NotFound(format!(
            "no token named {name:?} (`zenith token list` shows them)"
        )));
    }
    Ok(Json(serde_json::json!({ "revoked": name })))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub limit: Option<usize>,
    pub app: Option<String>,
}

pub async fn audit(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    Ok(Json(s.store.audit(q.limit.unwrap_or(100), q.app.as_deref())?))
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    pub lines: Option<usize>,
    #[serde(default)]
    pub follow: bool,
    pub service: Option<String>,
}

/// The output of an app's replicas, each line prefixed with the replica id: the last `lines`
/// of every replica log (current and recently ended ones), then, with `follow`, new lines as
/// they are written, until the client hangs up.
pub async fn logs(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    if !s.apps.lock().await.contains_key(&app) {
        return Err(super::apps::unknown_app(&app));
    }
    let prefix = match &q.service {
        Some(svc) => format!("{app}-{svc}-r"),
        None => format!("{app}-"),
    };
    let run_dir = s.env.run_dir.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let lines = q.lines.unwrap_or(100);
    let follow = q.follow;
    let mut stopping = s.stopping.subscribe();
    tokio::spawn(async move {
        let mut tailer = crate::logs::Tailer::new(run_dir, prefix);
        for chunk in tailer.initial(lines) {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            for chunk in tailer.poll() {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok((
        [("content-type", "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The router's metrics of each service of one app, per revision, as JSON.
pub async fn app_metrics(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<std::collections::BTreeMap<String, zenith_router::RouterMetrics>>, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    if !s.apps.lock().await.contains_key(&app) {
        return Err(super::apps::unknown_app(&app));
    }
    let routers = s.env.routers.lock().expect("routers map lock");
    Ok(Json(
        routers
            .iter()
            .filter(|((a, _), _)| *a == app)
            .map(|((_, svc), r)| (svc.clone(), r.metrics()))
            .collect(),
    ))
}

/// Router metrics per service and revision, and the apps' replica counts, in the Prometheus
/// text format.
pub async fn metrics(AxState(s): AxState<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, Action::Read, None)?;
    let routers: Vec<(String, zenith_router::RouterMetrics)> = s
        .env
        .routers
        .lock()
        .expect("routers map lock")
        .iter()
        .map(|((app, svc), r)| (format!("{app}/{svc}"), r.metrics()))
        .collect();
    let refs: Vec<(&str, &zenith_router::RouterMetrics)> = routers.iter().map(|(n, m)| (n.as_str(), m)).collect();
    let mut out = zenith_router::render_prometheus(&refs);
    let apps = s.apps.lock().await;
    out.push_str("# HELP zenith_app_replicas Replicas of a service by state.\n# TYPE zenith_app_replicas gauge\n");
    for h in apps.values() {
        let st = h.status.borrow().clone();
        for svc in &st.services {
            for state in ["starting", "ready", "unhealthy", "stopping"] {
                let n = svc.replicas.iter().filter(|r| r.state.to_string() == state).count();
                let _ = writeln!(
                    out,
                    "zenith_app_replicas{{app=\"{}\",service=\"{}\",state=\"{state}\"}} {n}",
                    st.app, svc.name
                );
            }
        }
    }
    out.push_str("# HELP zenith_app_active_revision The revision that last completed.\n# TYPE zenith_app_active_revision gauge\n");
    for h in apps.values() {
        let st = h.status.borrow().clone();
        if let Some(n) = st.active_revision {
            let _ = writeln!(out, "zenith_app_active_revision{{app=\"{}\"}} {n}", st.app);
        }
    }
    let statuses: Vec<zenith_rollout::AppStatus> = apps.values().map(|h| h.status.borrow().clone()).collect();
    render_rollouts(&mut out, &statuses);
    drop(apps);
    crate::state::render_metrics(&mut out, &s);
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}

/// A gauge's name, help text, and how to read it from a service's rollout.
type Gauge = (&'static str, &'static str, fn(&zenith_rollout::ServiceRollout) -> f64);

/// Gauges of each app's canary or blue-green rollout (the one in progress, or the last that
/// ended), so alert rules can fire on an aborted or stalled rollout.
fn render_rollouts(out: &mut String, apps: &[zenith_rollout::AppStatus]) {
    let series: Vec<(&str, &zenith_rollout::RolloutStatus, &zenith_rollout::ServiceRollout)> = apps
        .iter()
        .filter_map(|a| a.rollout.as_ref().map(|r| (a.app.as_str(), r)))
        .flat_map(|(app, r)| r.services.iter().map(move |s| (app, r, s)))
        .collect();
    let gauges: [Gauge; 4] = [
        (
            "zenith_rollout_weight",
            "Percent of the service's traffic the rollout's new revision gets now.",
            |s| f64::from(s.progress.weight),
        ),
        (
            "zenith_rollout_step",
            "The canary step the rollout is at, counted from 1.",
            |s| (s.progress.step + 1) as f64,
        ),
        (
            "zenith_rollout_failed_checks",
            "Checks of the rollout that failed so far.",
            |s| f64::from(s.progress.failures),
        ),
        (
            "zenith_rollout_aborted",
            "1 when the rollout was aborted (automatically or by a person), else 0.",
            |s| {
                f64::from(u8::from(
                    s.progress.stage == zenith_rollout::progressive::Stage::Aborted,
                ))
            },
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (app, r, s) in &series {
            let _ = writeln!(
                out,
                "{name}{{app=\"{app}\",service=\"{}\",revision=\"{}\",strategy=\"{}\"}} {}",
                s.service,
                r.revision,
                s.progress.strategy,
                value(s)
            );
        }
    }
}
