//! The operator's listener: routes for the studio's staff and tools (today `POST /admin/accounts`), served
//! on their own address (loopback by default) and only to requests carrying the operator token
//! (`Authorization: Bearer …`, compared in constant time). The public listener, which Amazon and players
//! reach, serves none of them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::BackendError;

/// Where operator routes are served, and the token they require.
#[derive(Clone)]
pub struct OperatorConfig {
    /// Listen address; keep it on loopback or a private network (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The operator token. `None` refuses every operator call (and says why).
    pub token: Option<String>,
}

impl std::fmt::Debug for OperatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The shortest operator token accepted: a guessable one would make the listener's protection moot.
pub const MIN_TOKEN_LEN: usize = 24;

/// The operator router: the admin routes behind the token check.
pub fn router(state: AppState, token: Option<String>) -> Router {
    let cookie = token.as_deref().map(crate::operator_page::cookie_value);
    let expected: Arc<Option<[u8; 32]>> = Arc::new(token.map(|t| Sha256::digest(t.as_bytes()).into()));
    let guard = Arc::new(Guard { digest: *expected, cookie });
    // The sign-in form is the one operator route without the token: it is how a browser presents it.
    let sign_in = Router::new()
        .route("/login", axum::routing::get(crate::operator_page::login_form).post(crate::operator_page::login))
        .with_state(expected.clone());
    let routes = Router::new()
        .route("/page", axum::routing::get(crate::operator_page::operator_page))
        .nest(
            "/admin",
            crate::accounts::admin_router()
                .merge(crate::link::admin_router())
                .merge(crate::inventory::admin_router())
                .merge(crate::competitions::admin_router()),
        )
        .route("/metrics", axum::routing::get(crate::telemetry::metrics_route))
        .with_state(state)
        .layer(middleware::from_fn_with_state(guard, require_token))
        .merge(sign_in);
    crate::trace::traced(routes)
}

/// What the operator routes accept: the token (as a bearer), or, for a `GET` from a signed-in browser, the page
/// cookie derived from it.
struct Guard {
    digest: Option<[u8; 32]>,
    cookie: Option<String>,
}

/// Whether `request` carries the page cookie `expected` (compared by digest, in constant time).
fn has_cookie(request: &Request, expected: &str) -> bool {
    let cookies = request.headers().get_all(header::COOKIE);
    let wanted: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    cookies.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).any(|pair| {
        pair.trim()
            .strip_prefix(crate::operator_page::COOKIE)
            .and_then(|rest| rest.strip_prefix('='))
            .is_some_and(|value| same_digest(&wanted, value))
    })
}

async fn require_token(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::GET
        && let Some(cookie) = &guard.cookie
        && has_cookie(&request, cookie)
    {
        return next.run(request).await;
    }
    let Some(expected) = guard.digest.as_ref() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no operator token is configured (REWARDS_BACKEND_OPERATOR_TOKEN)",
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_digest(expected, presented) {
        return refuse(StatusCode::UNAUTHORIZED, "operator token missing or wrong");
    }
    next.run(request).await
}

/// Whether `presented` is the token whose SHA-256 is `expected`. Comparing fixed-length digests with no early
/// exit leaks neither the token's length nor how much of a guess was right.
pub(crate) fn same_digest(expected: &[u8; 32], presented: &str) -> bool {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    expected.iter().zip(digest.iter()).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

fn refuse(status: StatusCode, message: &str) -> Response {
    BackendError::refused(status, "operator_token", message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_digest() {
        let expected: [u8; 32] = Sha256::digest(b"operator-token-0123456789").into();
        assert!(same_digest(&expected, "operator-token-0123456789"));
        assert!(!same_digest(&expected, "operator-token-012345678"));
        assert!(!same_digest(&expected, ""));
    }
}
