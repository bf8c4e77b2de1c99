//! The HTTP+JSON API (documented in `docs/api.md`). `app(state)` builds the whole router so
//! tests can drive it without a socket. Every call but `/v1/health` needs a bearer token; every
//! call that changes something is written to the audit log, allowed or not.

pub mod admin;
pub mod apps;
pub mod rollout;
pub mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use tokio::sync::Mutex;
use zenith_rollout::AppHandle;

use crate::auth::{Action, TokenInfo};
use crate::error::ApiError;
use crate::store::{AuditEntry, AuditResult, Store};

/// What every handler shares.
pub struct State {
    pub store: Store,
    pub env: zenith_rollout::Env,
    /// The controllers of the apps, by name. A tokio lock: deploys await under it so two
    /// deploys of one daemon never interleave their revision numbers and controller calls.
    pub apps: Mutex<BTreeMap<String, AppHandle>>,
    pub data_dir: PathBuf,
    pub started: std::time::Instant,
    /// Turns true when the daemon begins to stop; endless streams end on it.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The daemon's snapshot repository and the state hooks.
    pub snapshots: Arc<crate::state::Snapshots>,
    /// The snapshot health last computed (the scheduler refreshes it), for `/metrics`.
    pub health: std::sync::RwLock<Option<crate::state::health::HealthReport>>,
    /// The scheduled jobs as last listed, for `/metrics`.
    pub schedules: std::sync::RwLock<Vec<crate::state::schedule::JobView>>,
    /// When the repository-wide prune runs (cron).
    pub prune_cron: String,
}

pub type Shared = Arc<State>;

pub fn app(state: Shared) -> Router {
    Router::new()
        .route("/v1/health", get(admin::health))
        .route("/v1/apps", get(apps::list))
        .route("/v1/apps/{app}", get(apps::show))
        .route("/v1/apps/{app}/deploy", post(apps::deploy))
        .route("/v1/apps/{app}/rollback", post(apps::rollback))
        .route("/v1/apps/{app}/revisions", get(apps::revisions))
        .route("/v1/apps/{app}/rollout/{action}", post(rollout::command))
        .route("/v1/apps/{app}/recover", post(state::recover))
        .route("/v1/snapshots/health", get(state::health))
        .route("/v1/schedules", get(state::schedules))
        .route("/v1/apps/{app}/logs", get(admin::logs))
        .route("/v1/apps/{app}/metrics", get(admin::app_metrics))
        .route("/v1/tokens", get(admin::tokens).post(admin::create_token))
        .route("/v1/tokens/{name}", delete(admin::revoke_token))
        .route("/v1/audit", get(admin::audit))
        .route("/metrics", get(admin::metrics))
        .with_state(state)
}

/// Who is calling, established from the `Authorization: Bearer` header.
pub struct Caller(pub TokenInfo);

/// Checks the caller's token and role for `action`. Denials of mutating actions are audited
/// here, so a caller probing for rights leaves a trace.
pub fn authorize(
    state: &State,
    headers: &HeaderMap,
    action: Action,
    audit: Option<(&str, Option<&str>, &str)>,
) -> Result<Caller, ApiError> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = match presented {
        Some(p) => state.store.authenticate(p)?,
        None => None,
    };
    let Some(token) = token else {
        let why = if presented.is_some() {
            "the token is not valid (revoked, or from another daemon)"
        } else {
            "no token given: pass `Authorization: Bearer <token>`"
        };
        if let Some((what, app, target)) = audit {
            record(state, None, what, app, target, AuditResult::Denied, why);
        }
        return Err(ApiError::Unauthorized(why.into()));
    };
    if !token.role.allows(action) {
        let why = format!(
            "token {} has role {}, which may not {}",
            token.name,
            token.role.as_str(),
            action_words(action)
        );
        if let Some((what, app, target)) = audit {
            record(state, Some(&token), what, app, target, AuditResult::Denied, &why);
        }
        return Err(ApiError::Forbidden(why));
    }
    Ok(Caller(token))
}

fn action_words(a: Action) -> &'static str {
    match a {
        Action::Read => "read",
        Action::Deploy => "deploy",
        Action::Rollback => "roll back",
        Action::Promote => "promote",
        Action::Abort => "abort",
        Action::Pause => "pause",
        Action::Resume => "resume",
        Action::Retry => "retry",
        Action::ManageTokens => "manage tokens",
        Action::Shutdown => "shut the daemon down",
    }
}

/// Appends to the audit log; a failure to do so is logged loudly but does not undo the call.
pub fn record(
    state: &State,
    who: Option<&TokenInfo>,
    action: &str,
    app: Option<&str>,
    target: &str,
    result: AuditResult,
    detail: &str,
) {
    let entry = AuditEntry {
        time: jiff::Timestamp::now(),
        actor: who.map(|t| t.name.clone()),
        role: who.map(|t| t.role),
        action: action.into(),
        app: app.map(Into::into),
        target: target.into(),
        result,
        detail: detail.into(),
    };
    if let Err(e) = state.store.append_audit(&entry) {
        tracing::error!(error = %e, action, target, "could not write the audit log");
    }
}
