//! The backend's numbers, in Prometheus' format through the `metrics` facade and its Prometheus exporter
//! (served at `GET /metrics` on the operator listener, never on the public one): requests and their latency per
//! route, inventory changes by kind and source, Instant Access calls by operation and result, Moments budget
//! spent per campaign, the LWA access-token cache of the Prime Gaming relay, and relay errors.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Every metric the backend exports, for the README and tests.
pub const METRICS: [&str; 10] = [
    "rewards_http_requests_total",
    "rewards_http_request_duration_seconds",
    "rewards_inventory_changes_total",
    "rewards_instant_access_calls_total",
    "rewards_moments_spent_cents_total",
    "rewards_lwa_access_tokens_total",
    "rewards_relay_errors_total",
    "rewards_inventory_sync_read_batch_size",
    "rewards_inventory_sync_lease_answers_total",
    "rewards_inventory_read_lease_revoke_seconds",
];

/// The process's recorder, installed on first use (one per process, shared by every backend in it).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let batches = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
            let builder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()?
                .set_buckets_for_metric(Matcher::Full("rewards_inventory_sync_read_batch_size".into()), &batches)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "another metrics recorder is installed: /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Middleware: counts each request and times it, labelled by its route (the matched pattern, never the path
/// with its ids), method and status.
pub async fn track_requests(request: Request, next: Next) -> Response {
    if handle().is_none() {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    {
        let labels = [("route", route), ("method", method)];
        metrics::histogram!("rewards_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
        let [route, method] = labels;
        metrics::counter!("rewards_http_requests_total", &[route, method, ("status", status)]).increment(1);
    }
    response
}

/// `GET /metrics` (operator listener).
pub async fn metrics_route() -> Response {
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// An inventory change applied (`grant`, `revoke`, `spend`) from `source`.
pub fn inventory_change(kind: &'static str, source: &str) {
    if handle().is_some() {
        metrics::counter!("rewards_inventory_changes_total", "kind" => kind, "source" => source.to_owned())
            .increment(1);
    }
}

/// A batch of unchanged-sync reads sent as one query, of `size` requests.
pub fn unchanged_read_batch(size: usize) {
    if handle().is_some() {
        metrics::histogram!("rewards_inventory_sync_read_batch_size").record(size as f64);
    }
}

/// An unchanged sync answered from a read lease's memory, without the database.
pub fn unchanged_read_from_lease() {
    if handle().is_some() {
        metrics::counter!("rewards_inventory_sync_lease_answers_total").increment(1);
    }
}

/// A writer revoked other processes' read leases on a player, waiting `waited` for them.
pub fn read_leases_revoked(waited: std::time::Duration) {
    if handle().is_some() {
        metrics::histogram!("rewards_inventory_read_lease_revoke_seconds").record(waited.as_secs_f64());
    }
}

/// An Instant Access call Amazon made, and what it was answered.
pub fn instant_access_call(operation: &str, result: &str) {
    if handle().is_some() {
        let (operation, result) = (operation.to_owned(), result.to_owned());
        metrics::counter!("rewards_instant_access_calls_total", "operation" => operation, "result" => result)
            .increment(1);
    }
}

/// A Moments reward charged to `campaign`.
pub fn moments_spent(campaign: &str, cents: i64) {
    if handle().is_some() && cents > 0 {
        metrics::counter!("rewards_moments_spent_cents_total", "campaign" => campaign.to_owned())
            .increment(cents as u64);
    }
}

/// The relay used an LWA access token: from its cache (`cached`), another process's (`shared`), or a refresh.
pub fn lwa_access_token(outcome: &'static str) {
    if handle().is_some() {
        metrics::counter!("rewards_lwa_access_tokens_total", "outcome" => outcome).increment(1);
    }
}

/// A relayed call to Amazon failed.
pub fn relay_error(service: &'static str) {
    if handle().is_some() {
        metrics::counter!("rewards_relay_errors_total", "service" => service).increment(1);
    }
}
