//! # amazon_rewards_sandbox
//!
//! A local emulator of the Amazon side of `bevy_amazon_rewards`, over real HTTP on loopback with a real
//! SQLite database, so the demo game, the tests and every user of the crate work without an Amazon account.
//!
//! Services emulated:
//! - **Prime Gaming pull integration**: `GET /api/entitlements`, `POST /api/fulfill`, for access tokens the
//!   sandbox issued (module [`prime_gaming`]).
//! - **Login with Amazon**: `/ap/oa` sign-in and consent pages, `/auth/o2/token` (authorization code with
//!   PKCE S256, refresh with rotation, device code), `/auth/o2/create/codepair` with its `/code` page, and
//!   `/user/profile` (module [`lwa`]).
//! - **Instant Access**: the store and order pages, and signed deliveries to the vendor's endpoints with
//!   retries (module [`instant_access`]).
//! - **DevPay**: sign-up pages with activation keys, the license service, a billing clock, the billing page
//!   (module [`devpay`]).
//! - **Moments**: campaigns with their lifecycle and console page, getRewardInfo / getReward behind
//!   `x-api-key` with a per-key rate limit, reward pages and redemption reports (module [`moments`]).
//! - **Admin API** under `/admin` to seed offers, customers and claims, mint tokens, and inject faults
//!   (module [`admin`]; shapes in `amazon_rewards_protocol::sandbox_admin`).
//!
//! Start it in-process (the way the demo and the tests do):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = amazon_rewards_sandbox::Sandbox::spawn(amazon_rewards_sandbox::SandboxConfig::ephemeral()?)?;
//! println!("sandbox at {}", sandbox.url());
//! sandbox.shutdown();
//! # Ok(()) }
//! ```
//!
//! or standalone: `cargo run -p amazon_rewards_sandbox -- --port 8787 --database sandbox.db`.
#![forbid(missing_docs)]

pub mod admin;
pub mod auth;
pub mod db;
pub mod devpay;
pub mod error;
pub mod faults;
pub mod guard;
pub mod instant_access;
pub mod lwa;
pub mod mailbox;
pub mod moments;
pub mod openapi;
pub mod pages;
pub mod prime_gaming;
mod trace;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use error::SandboxError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: SqlitePool,
    /// Faults queued through the admin API.
    pub faults: faults::Faults,
    /// Login with Amazon lifetimes and pacing.
    pub lwa: std::sync::Arc<lwa::LwaSettings>,
    /// The sandbox's own base URL (for links such as the device `verification_uri`).
    pub base_url: std::sync::Arc<str>,
    /// Client for calls to the game's backend (Instant Access).
    pub http: reqwest::Client,
    /// Wakes the Instant Access delivery worker.
    pub deliveries: std::sync::Arc<tokio::sync::Notify>,
    /// The Moments Rewards API's per-key call limit.
    pub moments_limiter: std::sync::Arc<moments::RateLimiter>,
    /// DevPay lifetimes.
    pub devpay: std::sync::Arc<devpay::DevPaySettings>,
}

/// Where the sandbox listens and keeps its data.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Port on 127.0.0.1; 0 picks a free one. The sandbox never binds beyond loopback.
    pub port: u16,
    /// SQLite database file (created if missing).
    pub database: PathBuf,
    /// Login with Amazon lifetimes and pacing.
    pub lwa: lwa::LwaSettings,
    /// DevPay lifetimes.
    pub devpay: devpay::DevPaySettings,
    /// Keeps a temporary directory alive for [`SandboxConfig::ephemeral`] configs.
    _temp_dir: Option<std::sync::Arc<TempDir>>,
}

impl SandboxConfig {
    /// A sandbox on `port` (0 = ephemeral) storing its data in `database`.
    pub fn new(port: u16, database: impl Into<PathBuf>) -> Self {
        Self {
            port,
            database: database.into(),
            lwa: lwa::LwaSettings::default(),
            devpay: devpay::DevPaySettings::default(),
            _temp_dir: None,
        }
    }

    /// An ephemeral port and a fresh database in a temporary directory removed when the sandbox stops.
    pub fn ephemeral() -> std::io::Result<Self> {
        let dir = TempDir::new()?;
        let database = dir.path.join("sandbox.db");
        Ok(Self {
            port: 0,
            database,
            lwa: lwa::LwaSettings::default(),
            devpay: devpay::DevPaySettings::default(),
            _temp_dir: Some(std::sync::Arc::new(dir)),
        })
    }
}

/// A directory removed on drop.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(auth::random_token("amazon-sandbox-", 8));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Errors starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the sandbox database: {0}")]
    Database(#[from] sqlx::Error),
    /// The port could not be bound, or the runtime could not start.
    #[error("cannot start the sandbox: {0}")]
    Io(#[from] std::io::Error),
}

/// The full router over a database: public APIs plus `/admin`.
pub fn router(state: AppState) -> Router {
    let (public, doc) = utoipa_axum::router::OpenApiRouter::new()
        .merge(prime_gaming::router())
        .merge(lwa::router())
        .merge(instant_access::router().into())
        .merge(devpay::router())
        .merge(moments::router())
        .merge(mailbox::router().into())
        .layer(axum::middleware::from_fn_with_state(state.faults.clone(), faults::apply_faults))
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .split_for_parts();
    let routes = Router::new()
        .merge(public)
        .merge(openapi::router(openapi::finish(doc)))
        .nest(
            amazon_rewards_protocol::sandbox_admin::ADMIN_PREFIX,
            admin::router()
                .merge(lwa::admin_router())
                .merge(instant_access::admin_router())
                .merge(devpay::admin_router())
                .merge(moments::admin_router())
                .merge(mailbox::admin_router()),
        )
        .layer(axum::middleware::from_fn(guard::same_origin_admin))
        .layer(axum::middleware::from_fn(guard::loopback_host))
        .layer(axum::middleware::map_response(mark_sandbox));
    trace::traced(routes.with_state(state))
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = r#"{"status": "up"}"#)))]
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "up"}))
}

/// `GET /readyz`: the database answers and every migration is applied (`503` otherwise).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(&state.pool).await;
    let expected = db::latest_version();
    let (database, applied) = match applied {
        Ok(version) => ("reachable", version.unwrap_or(0)),
        Err(_) => ("unreachable", 0),
    };
    let ready = database == "reachable" && applied >= expected;
    let body = serde_json::json!({"status": if ready { "ready" } else { "not_ready" }, "database": database,
        "migrations": {"applied": applied, "expected": expected}});
    let status = if ready { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// Every answer says it comes from a sandbox, so a game can show it (and never mistake it for Amazon).
async fn mark_sandbox(mut response: axum::response::Response) -> axum::response::Response {
    use amazon_rewards_protocol::http::{ENVIRONMENT_HEADER, SANDBOX_ENVIRONMENT};
    response.headers_mut().insert(ENVIRONMENT_HEADER, axum::http::HeaderValue::from_static(SANDBOX_ENVIRONMENT));
    response
}

/// A sandbox running on a Tokio runtime of the caller's (see [`serve`]).
pub struct RunningSandbox {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _config: SandboxConfig,
}

impl RunningSandbox {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Opens the database, binds 127.0.0.1:`config.port` and serves on the current Tokio runtime.
pub async fn serve(config: SandboxConfig) -> Result<RunningSandbox, StartError> {
    let pool = db::open(&config.database).await?;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port))).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let state = AppState {
        pool: pool.clone(),
        faults: faults::Faults::default(),
        lwa: std::sync::Arc::new(config.lwa.clone()),
        base_url: format!("http://{addr}").into(),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?,
        deliveries: std::sync::Arc::new(tokio::sync::Notify::new()),
        moments_limiter: Default::default(),
        devpay: std::sync::Arc::new(config.devpay.clone()),
    };
    let worker = tokio::spawn(instant_access::delivery_worker(state.clone()));
    let app = router(state);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "sandbox server stopped with an error");
        }
        worker.abort();
        pool.close().await;
    });
    tracing::info!(%addr, "amazon sandbox listening");
    Ok(RunningSandbox { addr, shutdown: Some(shutdown), task, _config: config })
}

/// A sandbox running on its own thread and Tokio runtime, for callers that are not async
/// (a Bevy app, a `#[test]`). Dropping it shuts it down.
pub struct Sandbox {
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox on a background thread and returns once it is listening.
    pub fn spawn(config: SandboxConfig) -> Result<Self, StartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("amazon-sandbox")
            .enable_all()
            .build()?;
        let running = runtime.block_on(serve(config))?;
        let url = running.url();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("amazon-sandbox".into()).spawn(move || {
            runtime.block_on(async move {
                let _ = stopped.await;
                running.shutdown().await;
            });
        })?;
        Ok(Self { url, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
