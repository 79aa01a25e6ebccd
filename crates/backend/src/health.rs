//! Health probes on the public listener: `GET /healthz` says the process is up; `GET /readyz` says whether it can
//! serve — the database answers, every migration is applied (`503` otherwise) — and how each configured Amazon
//! service looked when last checked: `reachable`, `degraded` (no answer) or `unchecked`. Amazon is checked in
//! the background every [`CHECK_EVERY`] and the result cached, so a probe never calls Amazon.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::AnyPool;
use utoipa_axum::{router::OpenApiRouter, routes};

/// How often the Amazon services are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// What the probes know.
#[derive(Clone)]
pub struct Readiness {
    pool: AnyPool,
    /// Service name → `reachable` / `degraded` / `unchecked`.
    services: Arc<RwLock<BTreeMap<&'static str, &'static str>>>,
}

impl Readiness {
    /// Probes over `pool`, with `services` (name, URL) not checked yet.
    pub fn new(pool: AnyPool, services: &[(&'static str, String)]) -> Self {
        let services = services.iter().map(|(name, _)| (*name, "unchecked")).collect();
        Self { pool, services: Arc::new(RwLock::new(services)) }
    }

    fn set(&self, name: &'static str, state: &'static str) {
        self.services.write().unwrap_or_else(|p| p.into_inner()).insert(name, state);
    }
}

/// The probe routes.
pub fn router(readiness: Readiness) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).with_state(readiness)
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = r#"{"status": "up"}"#)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "up"}))
}

/// Whether the backend can serve, and how each Amazon service looked when last checked.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready (or degraded)"), (status = 503, description = "Not ready")))]
async fn readyz(State(readiness): State<Readiness>) -> Response {
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(&readiness.pool).await;
    let expected = crate::db::latest_migration();
    let (database, migrations) = match applied {
        Ok(version) => ("reachable", version.unwrap_or(0)),
        Err(_) => ("unreachable", 0),
    };
    let services = readiness.services.read().unwrap_or_else(|p| p.into_inner()).clone();
    let ready = database == "reachable" && migrations >= expected;
    let degraded = services.values().any(|state| *state == "degraded");
    let status = match (ready, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let body = json!({"status": status, "database": database, "migrations": {"applied": migrations, "expected": expected},
        "services": services});
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// Checks each service every [`CHECK_EVERY`] (any HTTP answer within 5 s is `reachable`).
pub async fn checker(readiness: Readiness, services: Vec<(&'static str, String)>, http: reqwest::Client) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    loop {
        ticks.tick().await;
        for (name, url) in &services {
            let answered = http.get(url).timeout(Duration::from_secs(5)).send().await.is_ok();
            readiness.set(name, if answered { "reachable" } else { "degraded" });
        }
    }
}
