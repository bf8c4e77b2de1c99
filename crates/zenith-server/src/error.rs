//! The API's one error type and how it becomes a response: a status code and a JSON body
//! `{"error": "..."}` whose message says what happened and what to do. Internal failures are
//! logged in full and answered in general terms.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ApiError {
    /// No token, or one the daemon does not know.
    Unauthorized(String),
    /// The token's role does not allow the call.
    Forbidden(String),
    NotFound(String),
    /// The request is malformed or asks for something invalid.
    BadRequest(String),
    /// The request is valid but clashes with what exists (a port in use).
    Conflict(String),
    Internal(String),
}

impl ApiError {
    pub fn message(&self) -> &str {
        match self {
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::BadRequest(m)
            | ApiError::Conflict(m)
            | ApiError::Internal(m) => m,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match e {
            E::UnknownApp { .. } | E::UnknownRevision { .. } => ApiError::NotFound(e.to_string()),
            E::TokenExists { .. } | E::LastAdminToken { .. } => ApiError::Conflict(e.to_string()),
            E::InvalidTokenName { .. } => ApiError::BadRequest(e.to_string()),
            _ => {
                tracing::error!(error = %e, "state store failure");
                ApiError::Internal("the daemon's state store failed; see the daemon's log".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = Json(serde_json::json!({ "error": self.message() }));
        (status, body).into_response()
    }
}
