//! The backend's one error type, [`BackendError`], and the one place it becomes an HTTP answer: a status and
//! an RFC 6749-style body, `{"error": code, "error_description": message}`, for every game-facing and
//! Amazon-facing route (the HTML pages render their own error page).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request carries no session token.
    #[error("missing access token")]
    MissingToken,
    /// The token is not a live studio session (unknown, expired, ended, or a Login with Amazon token). Amazon
    /// answers expired tokens with HTTP 400, and so does the backend, so a game's "retry, refresh, relink"
    /// works the same against both.
    #[error("access token refused")]
    InvalidToken,
    /// The session is live but Login with Amazon refused the backend's refresh token for the player's link:
    /// the player must link again (the game's refresh is refused with `invalid_grant`, `link_broken`).
    #[error("the Amazon link is broken; link again")]
    LinkBroken,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The Amazon identity has no game account here.
    #[error("no game account is linked to this Amazon account")]
    NoGameAccount,
    /// A signed Amazon call failed verification.
    #[error("{0}")]
    Forbidden(String),
    /// Refused with a named code (e.g. `InvalidActivationKey` from the license service, `UnknownProduct`).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The error code the game reads.
        code: String,
        /// What went wrong, in words.
        message: String,
    },
    /// Busy or limited for now; try again.
    #[error("try again")]
    Unavailable,
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl BackendError {
    /// A refusal with a named code.
    pub fn refused(status: StatusCode, code: &str, message: &str) -> Self {
        BackendError::Refused { status, code: code.to_owned(), message: message.to_owned() }
    }

    fn status_and_code(&self) -> (StatusCode, &str) {
        match self {
            BackendError::MissingToken => (StatusCode::UNAUTHORIZED, "invalid_request"),
            BackendError::InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token"),
            BackendError::LinkBroken => (StatusCode::UNAUTHORIZED, amazon_rewards_protocol::studio::LINK_BROKEN),
            BackendError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            BackendError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            BackendError::NoGameAccount => (StatusCode::FORBIDDEN, "no_game_account"),
            BackendError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            BackendError::Refused { status, code, .. } => (*status, code),
            BackendError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for BackendError {
    fn into_response(self) -> Response {
        if let BackendError::Database(error) = &self {
            tracing::error!(%error, "database error");
        }
        let (status, code) = self.status_and_code();
        let body = serde_json::json!({"error": code, "error_description": self.to_string()});
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_one_status_and_code() {
        let answer = |error: BackendError| {
            let (status, code) = error.status_and_code();
            (status.as_u16(), code.to_owned())
        };
        assert_eq!(answer(BackendError::InvalidToken), (400, "invalid_token".into()));
        assert_eq!(answer(BackendError::MissingToken), (401, "invalid_request".into()));
        assert_eq!(answer(BackendError::NoGameAccount), (403, "no_game_account".into()));
        let refused = BackendError::refused(StatusCode::BAD_REQUEST, "UnknownProduct", "not sold here");
        assert_eq!(answer(refused), (400, "UnknownProduct".into()));
        assert_eq!(answer(BackendError::Database(sqlx::Error::RowNotFound)), (500, "server_error".into()));
    }
}
