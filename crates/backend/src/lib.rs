//! # amazon_rewards_backend
//!
//! The studio backend of `bevy_amazon_rewards`: it holds what must never ship inside a game client, on a real
//! database (a SQLite file by default, PostgreSQL by URL for studios running several backend processes):
//! - Amazon Instant Access: the account-linking and fulfilment endpoints Amazon calls, each request verified
//!   with DTA1-HMAC-SHA256, every purchase, revocation and subscription change idempotent ([`instant_access`]);
//! - the entitlements feed the game pulls, merging Instant Access, subscriptions and relayed Prime Gaming
//!   entitlements ([`feed`], [`prime_relay`]), and the new-account page ([`signup`]);
//! - DevPay-style subscriptions: activation keys, scheduled verification ([`devpay`]);
//! - Moments: the Rewards API key, eligibility, budgets and rate limits ([`moments`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use amazon_rewards_backend::{BackendConfig, serve};
//! use amazon_rewards_protocol::dta1::KeyStore;
//! let keys = KeyStore::parse("SECRETKEY PUBLICKEYID\n")?;
//! let backend = serve(BackendConfig::new("127.0.0.1:0".parse()?, "sqlite://backend.db", keys)).await?;
//! println!("Instant Access endpoints under {}", backend.url());
//! # Ok(()) }
//! ```
#![forbid(missing_docs)]

pub mod accounts;
pub mod competitions;
pub mod db;
pub mod devpay;
pub mod error;
pub mod feed;
pub mod health;
pub mod instant_access;
pub mod inventory;
pub mod link;
pub mod moments;
pub mod openapi;
pub mod operator;
pub mod operator_page;
pub mod player;
pub mod prime_relay;
pub mod probe;
pub mod sealed;
pub mod signup;
pub mod telemetry;
mod trace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use amazon_rewards_protocol::dta1::KeyStore;
use axum::Router;
use axum::extract::FromRef;
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use utoipa_axum::router::OpenApiRouter;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: AnyPool,
    /// Instant Access signing keys.
    pub keys: Arc<KeyStore>,
    /// The game's client ids at the backend (who may link, see [`link`]).
    pub game_client_ids: Arc<[String]>,
    /// The backend's own Login with Amazon client, for the new-account page.
    pub lwa: Option<Arc<signup::LwaClient>>,
    /// HTTP client for OAuth calls (follows no redirects).
    pub oauth_http: reqwest::Client,
    /// Prime Gaming relay, when configured.
    pub prime: Option<Arc<prime_relay::PrimeRelay>>,
    /// DevPay license service and products, when configured.
    pub devpay: Option<Arc<devpay::DevPayConfig>>,
    /// Moments (Rewards API key and campaigns), when configured.
    pub moments: Option<moments::SharedMoments>,
    /// Seals players' refresh tokens at rest, when configured.
    pub token_key: Option<Arc<sealed::TokenKey>>,
    /// The path prefix a proxy in front of the backend strips (see [`BackendConfig::public_path_prefix`]).
    pub public_path_prefix: Arc<str>,
    /// The server-owned inventory, when a catalog is configured.
    pub inventory: Option<inventory::InventoryConfig>,
    /// Competitions, when configured.
    pub competitions: Option<competitions::CompetitionsConfig>,
    /// Started with `--sandbox`: answers carry the sandbox mark.
    pub sandbox: bool,
    /// What the health probes know.
    pub readiness: health::Readiness,
}

/// How the backend runs.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Listen address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// `sqlite://path.db` or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// Instant Access key store.
    pub keys: KeyStore,
    /// The game's client ids at the backend: the `client_id` a game links with (browser or code pairing) and
    /// refreshes its session with. Without one, no game can link.
    pub game_client_ids: Vec<String>,
    /// The backend's Login with Amazon client, for linking players (`/link/…`) and the new-account page;
    /// without it neither is served and no player can get a session.
    pub lwa_client: Option<signup::LwaClient>,
    /// Prime Gaming API base URL to relay players' entitlements from (needs `lwa_client`).
    pub prime_gaming_url: Option<String>,
    /// DevPay license service and the products sold through it.
    pub devpay: Option<devpay::DevPayConfig>,
    /// Moments: the Rewards API, its key, and the campaign behind each moment.
    pub moments: Option<moments::MomentsConfig>,
    /// The key players' refresh tokens are sealed with in the database; without one they are stored as they
    /// are (and a warning says so).
    pub token_key: Option<sealed::TokenKey>,
    /// The operator's listener and token; `None` serves no operator routes at all.
    pub operator: Option<operator::OperatorConfig>,
    /// The server-owned inventory (`--catalog`): every source grants into the database, the game spends and
    /// mirrors through `/api/inventory…`. `None`: the entitlements feed for games keeping their own ledger.
    pub inventory: Option<inventory::InventoryConfig>,
    /// The path prefix under which Amazon reaches the backend when a proxy in front of it strips one (e.g.
    /// `/rewards` for `https://studio.example/rewards/instant-access/fulfillment`). Amazon signs the URL it
    /// calls, so Instant Access signatures are verified over this prefix plus the backend's own path. Empty
    /// (the default) when nothing rewrites paths.
    pub public_path_prefix: String,
    /// Competitions (`--competitions`): scores, standings, closing and prizes. Default off.
    pub competitions: Option<competitions::CompetitionsConfig>,
    /// Allow sandbox Amazon URLs (`--sandbox`: non-`https` or loopback); every answer then carries the sandbox
    /// mark (`x-amazon-rewards-environment: sandbox`). Default `false`: such a URL refuses the start.
    pub sandbox: bool,
}

impl BackendConfig {
    /// A backend listening on `listen`, storing in `database_url`, verifying with `keys`.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>, keys: KeyStore) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            keys,
            game_client_ids: Vec::new(),
            lwa_client: None,
            prime_gaming_url: None,
            devpay: None,
            moments: None,
            token_key: None,
            public_path_prefix: String::new(),
            operator: None,
            inventory: None,
            competitions: None,
            sandbox: false,
        }
    }
}

/// Errors starting the backend.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the backend database: {0}")]
    Database(#[from] sqlx::Error),
    /// The address could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// A sandbox Amazon URL without `--sandbox`.
    #[error("{setting} is {url}, a sandbox (not https, or loopback): start with --sandbox to use it")]
    Sandbox {
        /// Which setting.
        setting: &'static str,
        /// Its URL.
        url: String,
    },
}

/// The full router: each service's routes, those of an optional service only when it is configured.
pub fn router(state: AppState) -> Router {
    let auth = player::PlayerAuth::from_ref(&state);
    let mut routes = OpenApiRouter::new().merge(instant_access::router());
    // The backend owns the inventory, or serves the feed a game's own ledger pulls: never both, which would
    // grant a purchase twice.
    if state.inventory.is_none() {
        routes = routes.merge(feed::router());
    }
    let mut routes = routes.with_state(state.clone());
    if let Some(config) = state.inventory.clone() {
        let prime =
            state.prime.clone().map(|relay| inventory::prime::PrimeSync::new(state.pool.clone(), relay, &config));
        let reads = inventory::unchanged::UnchangedReads::new(state.pool.clone(), config.read_lease);
        let inventory = inventory::InventoryState { pool: state.pool.clone(), config, prime, reads };
        routes = routes.merge(inventory::router(inventory));
    }
    if let Some(lwa) = state.lwa.clone() {
        let (pool, oauth_http, token_key) = (state.pool.clone(), state.oauth_http.clone(), state.token_key.clone());
        let game_client_ids = state.game_client_ids.clone();
        let linking = link::LinkState {
            pool: pool.clone(),
            lwa: lwa.clone(),
            oauth_http: oauth_http.clone(),
            token_key: token_key.clone(),
            game_client_ids,
        };
        routes = routes.merge(link::router(linking));
        routes = routes.merge(signup::router(signup::SignupState { lwa, pool, oauth_http, token_key }));
    }
    if let Some(devpay) = state.devpay.clone() {
        let pool = state.pool.clone();
        let oauth_http = state.oauth_http.clone();
        routes = routes.merge(devpay::router(devpay::DevPayState {
            devpay,
            pool,
            oauth_http,
            auth: auth.clone(),
            perks: state.inventory.as_ref().map(|inventory| inventory.catalog.clone()),
        }));
    }
    if let Some(config) = &state.competitions {
        routes = routes.merge(competitions::router(competitions::CompetitionsState::new(state.pool.clone(), config)));
    }
    if let Some(moments) = state.moments.clone() {
        let (pool, oauth_http) = (state.pool.clone(), state.oauth_http.clone());
        routes = routes.merge(moments::router(moments::MomentsState { moments, pool, oauth_http, auth }));
    }
    let (routes, doc) = routes.merge(health::router(state.readiness.clone())).split_for_parts();
    let mut routes = routes
        .merge(openapi::router(openapi::finish(doc, &state.public_path_prefix)))
        .layer(axum::middleware::from_fn(telemetry::track_requests));
    if state.sandbox {
        routes = routes.layer(axum::middleware::map_response(mark_sandbox));
    }
    trace::traced(routes)
}

/// A backend on sandbox URLs says so in every answer.
async fn mark_sandbox(mut response: axum::response::Response) -> axum::response::Response {
    use amazon_rewards_protocol::http::{ENVIRONMENT_HEADER, SANDBOX_ENVIRONMENT};
    response.headers_mut().insert(ENVIRONMENT_HEADER, axum::http::HeaderValue::from_static(SANDBOX_ENVIRONMENT));
    response
}

/// A running backend.
pub struct RunningBackend {
    addr: SocketAddr,
    operator_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// The database, for inspection by tests and tools.
    pub pool: AnyPool,
}

impl RunningBackend {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of the operator's listener, when there is one.
    pub fn operator_url(&self) -> Option<String> {
        self.operator_addr.map(|addr| format!("http://{addr}"))
    }

    /// Stops accepting connections, finishes in-flight requests, and waits.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// The Amazon services `config` calls: (service, the setting naming it, URL).
pub fn amazon_urls(config: &BackendConfig) -> Vec<(&'static str, &'static str, String)> {
    let mut urls = Vec::new();
    if let Some(url) = &config.prime_gaming_url {
        urls.push(("prime_gaming", "--prime-gaming-url", url.clone()));
    }
    if let Some(lwa) = &config.lwa_client {
        urls.push(("lwa_authorize", "--lwa-authorize-url", lwa.authorize_url.clone()));
        urls.push(("lwa_api", "--lwa-api-url", lwa.api_url.clone()));
    }
    if let Some(devpay) = &config.devpay {
        urls.push(("devpay", "--devpay-url", devpay.license_url.clone()));
    }
    if let Some(moments) = &config.moments {
        urls.push(("moments", "--moments-url", moments.rewards_url.clone()));
    }
    urls
}

/// Refuses sandbox Amazon URLs unless `config.sandbox`.
fn check_sandbox(config: &BackendConfig) -> Result<(), StartError> {
    if config.sandbox {
        return Ok(());
    }
    match amazon_urls(config).into_iter().find(|(_, _, url)| amazon_rewards_protocol::http::is_sandbox_url(url)) {
        Some((_, setting, url)) => Err(StartError::Sandbox { setting, url }),
        None => Ok(()),
    }
}

/// Opens the database, binds, and serves on the current Tokio runtime.
pub async fn serve(config: BackendConfig) -> Result<RunningBackend, StartError> {
    check_sandbox(&config)?;
    let pool = db::open(&config.database_url).await?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let operator = config.operator.clone();
    let (state, workers) = app_state(config, addr, pool.clone())?;
    let (operator, operator_addr) = match operator {
        Some(operator) => {
            let listener = TcpListener::bind(operator.listen).await?;
            let addr = listener.local_addr()?;
            (Some((listener, operator::router(state.clone(), operator.token))), Some(addr))
        }
        None => (None, None),
    };
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_servers(listener, router(state), operator, stopped, workers));
    tracing::info!(%addr, "rewards backend listening");
    Ok(RunningBackend { addr, operator_addr, shutdown: Some(shutdown), task, pool })
}

/// Every handler's state from the configuration, and the background workers' tasks (the DevPay verifier, the
/// Prime Gaming re-reporter) of the services configured.
fn app_state(
    config: BackendConfig,
    addr: SocketAddr,
    pool: AnyPool,
) -> Result<(AppState, Vec<tokio::task::JoinHandle<()>>), StartError> {
    if config.game_client_ids.is_empty() {
        tracing::warn!("no game client id (--game-client-id): no game can link a player");
    }
    let services: Vec<(&'static str, String)> =
        amazon_urls(&config).into_iter().map(|(service, _, url)| (service, url)).collect();
    let readiness = health::Readiness::new(pool.clone(), &services);

    let oauth_http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(std::io::Error::other)?;
    let own_url = || format!("http://{addr}");
    let token_key = config.token_key.map(Arc::new);
    let (lwa, prime) =
        lwa_and_relay(config.lwa_client, config.prime_gaming_url.as_deref(), &oauth_http, &token_key, &own_url());
    let devpay = config.devpay.map(|mut devpay| {
        if devpay.public_url.is_empty() {
            devpay.public_url = own_url();
        }
        Arc::new(devpay)
    });
    let moments = config.moments.map(|config| Arc::new(moments::Moments::new(config)));
    let mut workers = background_workers(&pool, &oauth_http, devpay.clone(), config.inventory.as_ref(), prime.as_ref());
    workers.push(tokio::spawn(health::checker(readiness.clone(), services, oauth_http.clone())));
    if let Some(competitions) = &config.competitions {
        workers.push(competition_closer(&pool, &oauth_http, moments.clone(), competitions));
    }
    let state = AppState {
        pool,
        keys: Arc::new(config.keys),
        game_client_ids: config.game_client_ids.into(),
        lwa,
        oauth_http,
        prime,
        devpay,
        moments,
        competitions: config.competitions,
        sandbox: config.sandbox,
        readiness,
        token_key,
        public_path_prefix: config.public_path_prefix.trim_end_matches('/').into(),
        inventory: config.inventory,
    };
    Ok((state, workers))
}

/// The backend's LWA client (its public URL defaulting to `own_url`) and, with a Prime Gaming URL, the relay
/// that uses it.
fn lwa_and_relay(
    lwa_client: Option<signup::LwaClient>,
    prime_gaming_url: Option<&str>,
    http: &reqwest::Client,
    token_key: &Option<Arc<sealed::TokenKey>>,
    own_url: &str,
) -> (Option<Arc<signup::LwaClient>>, Option<Arc<prime_relay::PrimeRelay>>) {
    let lwa = lwa_client.map(|mut client| {
        if client.public_url.is_empty() {
            client.public_url = own_url.to_owned();
        }
        Arc::new(client)
    });
    if token_key.is_none() && lwa.is_some() {
        tracing::warn!("no token key: players' refresh tokens are stored unsealed (set --token-key)");
    }
    let prime = match (prime_gaming_url, &lwa) {
        (Some(url), Some(lwa)) => {
            Some(Arc::new(prime_relay::PrimeRelay::new(url.to_owned(), lwa.clone(), http.clone(), token_key.clone())))
        }
        _ => None,
    };
    (lwa, prime)
}

/// The background workers of the services configured: the DevPay verifier, the Prime Gaming re-reporter.
/// The worker closing ended competitions and paying their prizes through Moments (when configured).
fn competition_closer(
    pool: &AnyPool,
    http: &reqwest::Client,
    moments: Option<moments::SharedMoments>,
    config: &competitions::CompetitionsConfig,
) -> tokio::task::JoinHandle<()> {
    let moments = moments.map(|moments| moments::MomentsState {
        moments,
        pool: pool.clone(),
        oauth_http: http.clone(),
        auth: player::PlayerAuth { pool: pool.clone() },
    });
    tokio::spawn(competitions::closing::worker(pool.clone(), moments, config.close_every))
}

fn background_workers(
    pool: &AnyPool,
    http: &reqwest::Client,
    devpay: Option<Arc<devpay::DevPayConfig>>,
    inventory: Option<&inventory::InventoryConfig>,
    prime: Option<&Arc<prime_relay::PrimeRelay>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut workers = Vec::new();
    if let Some(devpay) = devpay {
        let perks = inventory.map(|inventory| inventory.catalog.clone());
        workers.push(tokio::spawn(devpay::verifier(pool.clone(), http.clone(), devpay, perks)));
    }
    if let (Some(inventory), Some(relay)) = (inventory, prime) {
        let sync = inventory::prime::PrimeSync::new(pool.clone(), relay.clone(), inventory);
        workers.push(tokio::spawn(inventory::prime::re_report(sync, inventory.re_report_every)));
    }
    workers
}

/// Serves the public listener (and the operator's, when there is one) until `stopped`, draining in-flight
/// requests; then stops the operator listener and the background workers.
async fn run_servers(
    listener: TcpListener,
    app: Router,
    operator: Option<(TcpListener, Router)>,
    stopped: oneshot::Receiver<()>,
    workers: Vec<tokio::task::JoinHandle<()>>,
) {
    let (stop_operator, operator_stopped) = oneshot::channel::<()>();
    let operator_task = operator.map(|(listener, routes)| {
        tokio::spawn(async move {
            let served = axum::serve(listener, routes)
                .with_graceful_shutdown(async move {
                    let _ = operator_stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "operator listener stopped with an error");
            }
        })
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await;
    let _ = stop_operator.send(());
    if let Some(operator_task) = operator_task {
        let _ = operator_task.await;
    }
    if let Err(error) = served {
        tracing::error!(%error, "backend stopped with an error");
    }
    for worker in workers {
        worker.abort();
    }
}

/// An answer's whole body, read chunk by chunk and refused (`Err`, in words) as soon as it passes `cap` bytes:
/// never buffered past it. Every call the backend makes to Amazon reads its answer through this.
pub(crate) async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > cap {
            return Err(format!("answer larger than {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `bytes` random bytes, hex-encoded.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}
