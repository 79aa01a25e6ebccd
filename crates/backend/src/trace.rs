//! Request tracing for every route: each request gets an `x-request-id` (kept when the caller sent one,
//! echoed in the answer) and a span carrying it with the method and the path — never the query string, which
//! may carry codes or tokens — so every log line of a request names it.

use axum::Router;
use axum::extract::Request;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// `router` with request ids and a tracing span per request.
pub(crate) fn traced(router: Router) -> Router {
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok());
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = id.unwrap_or("-"),
            )
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
