//! The sandbox's one error type and its mapping to HTTP status codes and RFC 6749 §5.2-style JSON bodies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a sandbox request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No access token was presented.
    #[error("missing access token")]
    MissingToken,
    /// The access token is unknown, expired or revoked. Amazon answers these with HTTP 400.
    #[error("access token is invalid or expired")]
    InvalidToken,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thing already exists.
    #[error("{0}")]
    Conflict(String),
    /// The body could not be read as the expected JSON (wrong content type, malformed, wrong shape).
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl SandboxError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            SandboxError::MissingToken => (StatusCode::UNAUTHORIZED, "invalid_request"),
            SandboxError::InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token"),
            SandboxError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            SandboxError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            SandboxError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            SandboxError::Rejected(status, _) => (*status, "invalid_request"),
            SandboxError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let SandboxError::Database(error) = &self {
            tracing::error!(%error, "database error");
        }
        (status, Json(json!({"error": code, "error_description": self.to_string()}))).into_response()
    }
}

/// Result alias for handlers.
pub type SandboxResult<T> = Result<T, SandboxError>;

impl From<axum::extract::rejection::JsonRejection> for SandboxError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        SandboxError::Rejected(rejection.status(), rejection.body_text())
    }
}
