//! `rewards-backend`: the studio backend as a program, and a signing tool for Instant Access requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use amazon_rewards_backend::{BackendConfig, serve};
use amazon_rewards_protocol::dta1::{AmzDate, Credential, KeyStore, sign};
use clap::{Parser, Subcommand};

/// The studio backend of bevy_amazon_rewards.
#[derive(Debug, Parser)]
#[command(name = "rewards-backend", version)]
struct Cli {
    /// Log lines as JSON objects (one per line, with the request id of each request's lines), for a log
    /// collector; plain text otherwise.
    #[arg(long, global = true, env = "REWARDS_BACKEND_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Instant Access endpoints (POST /instant-access/linking and /instant-access/fulfillment).
    Serve(Box<ServeArgs>),
    /// Sign (and optionally send) an Instant Access request, to poke an endpoint by hand.
    #[command(name = "instant-access", subcommand)]
    InstantAccess(InstantAccessCommand),
    /// One real round with Amazon from this machine: code pairing with your security profile, one entitlements
    /// call and, if you name a test entitlement, its fulfilment; writes a redacted transcript and says in words
    /// where Amazon's answers differ from the shapes this code expects. Exit status 1 when any does.
    Probe(ProbeArgs),
}

/// The `probe` command's settings.
#[derive(Debug, clap::Args)]
struct ProbeArgs {
    /// The security profile's client id (LWA for Devices).
    #[arg(long, env = "REWARDS_PROBE_CLIENT_ID")]
    client_id: String,
    /// Base of LWA's code-pair, token and profile endpoints.
    #[arg(long, default_value = amazon_rewards_protocol::lwa::PRODUCTION_API_URL)]
    lwa_api_url: String,
    /// Base of Prime Gaming's API.
    #[arg(long, default_value = amazon_rewards_protocol::prime_gaming::PRODUCTION_BASE_URL)]
    prime_gaming_url: String,
    /// The id of a test entitlement you allow the probe to report fulfilled (it must be in the answer).
    /// Without it nothing is fulfilled.
    #[arg(long)]
    fulfil: Option<String>,
    /// Where the redacted transcript goes (owner-only).
    #[arg(long, default_value = "probe-transcript.json")]
    transcript: PathBuf,
    /// Longest wait for the code to be entered, in seconds.
    #[arg(long, default_value_t = 600)]
    code_wait_seconds: u64,
    /// Allow sandbox URLs (not https, or loopback), e.g. the local sandbox.
    #[arg(long)]
    sandbox: bool,
}

/// The `serve` command's settings.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Listen address; port 0 picks a free one (the address is printed on stdout).
    #[arg(long, env = "REWARDS_BACKEND_LISTEN", default_value = "127.0.0.1:8788")]
    listen: SocketAddr,
    /// `sqlite://backend.db` (default) or `postgres://user:password@host/database`.
    #[arg(long, env = "REWARDS_BACKEND_DATABASE", default_value = "sqlite://rewards-backend.db")]
    database: String,
    /// Instant Access key store: lines of `SECRETKEY PUBLICKEYID`.
    #[arg(long, env = "REWARDS_BACKEND_KEYS")]
    keys: PathBuf,
    /// The game's client id(s) at the backend: the `client_id` a game links with and refreshes its studio
    /// session with. Without one, no game can link a player.
    #[arg(long = "game-client-id", env = "REWARDS_BACKEND_GAME_CLIENT_IDS", value_delimiter = ',')]
    game_client_ids: Vec<String>,
    /// The backend's own LWA client id (with `--lwa-client-secret`: linking players and the new-account page).
    #[arg(long, env = "REWARDS_BACKEND_LWA_CLIENT_ID")]
    lwa_client_id: Option<String>,
    /// The backend's LWA client secret.
    #[arg(long, env = "REWARDS_BACKEND_LWA_CLIENT_SECRET", hide_env_values = true)]
    lwa_client_secret: Option<String>,
    /// LWA authorization page.
    #[arg(long, env = "REWARDS_BACKEND_LWA_AUTHORIZE_URL", default_value = "https://www.amazon.com/ap/oa")]
    lwa_authorize_url: String,
    /// Base of LWA's token and profile endpoints.
    #[arg(long, env = "REWARDS_BACKEND_LWA_API_URL", default_value = "https://api.amazon.com")]
    lwa_api_url: String,
    /// The backend's public base URL (default: the listen address).
    #[arg(long, env = "REWARDS_BACKEND_PUBLIC_URL")]
    public_url: Option<String>,
    /// Where the operator routes (`/admin/…`) are served, behind the operator token read from the
    /// environment variable REWARDS_BACKEND_OPERATOR_TOKEN (at least 24 characters; never on the command
    /// line). Keep it on loopback or a private network: the public listener serves no operator route.
    #[arg(long, env = "REWARDS_BACKEND_OPERATOR_LISTEN", default_value = "127.0.0.1:8789")]
    operator_listen: SocketAddr,
    /// Path prefix a proxy in front of the backend strips (e.g. `/rewards`): Amazon signs the public URL, so
    /// Instant Access signatures are verified over it.
    #[arg(long, env = "REWARDS_BACKEND_PUBLIC_PATH_PREFIX", default_value = "")]
    public_path_prefix: String,
    /// 64 hex digits: the key players' refresh tokens are sealed with in the database (keep it out of the
    /// database's backups; prefer the environment variable, a command line is visible to other users).
    /// Without it they are stored unsealed.
    #[arg(long, env = "REWARDS_BACKEND_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
    /// Prime Gaming API base URL: relay players' Prime Gaming entitlements (needs the LWA client).
    #[arg(long, env = "REWARDS_BACKEND_PRIME_GAMING_URL")]
    prime_gaming_url: Option<String>,
    /// DevPay license service base URL (enables DevPay with `--devpay-product`).
    #[arg(long, env = "REWARDS_BACKEND_DEVPAY_URL")]
    devpay_url: Option<String>,
    /// A DevPay product as `CODE:PRODUCT_TOKEN:SKU` (repeatable).
    #[arg(long = "devpay-product", env = "REWARDS_BACKEND_DEVPAY_PRODUCTS", value_delimiter = ',')]
    devpay_products: Vec<String>,
    /// Base of the DevPay sign-up pages (`{url}/{PRODUCT_CODE}`), for sign-up links that return to this
    /// backend; register `{public-url}/devpay/return` with the product.
    #[arg(long = "devpay-signup-url", env = "REWARDS_BACKEND_DEVPAY_SIGNUP_URL")]
    devpay_signup_url: Option<String>,
    /// Seconds between scheduled verifications of every DevPay subscription.
    #[arg(long, env = "REWARDS_BACKEND_DEVPAY_VERIFY_SECONDS", default_value_t = 300)]
    devpay_verify_seconds: u64,
    /// Moments Rewards API base URL (enables Moments with `--moments-api-key` and `--moment`).
    #[arg(long, env = "REWARDS_BACKEND_MOMENTS_URL")]
    moments_url: Option<String>,
    /// The Moments API key (keep it out of shell history: prefer the environment variable).
    #[arg(long, env = "REWARDS_BACKEND_MOMENTS_API_KEY", hide_env_values = true)]
    moments_api_key: Option<String>,
    /// A rewarded moment as `MOMENT:CAMPAIGN_ID:COST_CENTS:BUDGET_CENTS` (repeatable).
    #[arg(long = "moment", env = "REWARDS_BACKEND_MOMENTS", value_delimiter = ',')]
    moments: Vec<String>,
    /// Origins the new-account page may send customers back to (Amazon's).
    #[arg(
        long = "return-origin",
        env = "REWARDS_BACKEND_RETURN_ORIGINS",
        value_delimiter = ',',
        default_value = "https://www.amazon.com"
    )]
    return_origins: Vec<String>,
    /// The game's item catalog (`*.catalog.json`, the file the game ships): the backend then owns each
    /// player's inventory (`/api/inventory…`) instead of serving the entitlements feed. Validated at start.
    #[arg(long, env = "REWARDS_BACKEND_CATALOG")]
    catalog: Option<std::path::PathBuf>,
    /// Least seconds between two Prime Gaming pulls of one player (with `--catalog`).
    #[arg(long, env = "REWARDS_BACKEND_SYNC_SECONDS", default_value_t = 10)]
    sync_seconds: u64,
    /// Seconds a process may answer a player's unchanged sync from its memory under a read lease (PostgreSQL,
    /// with `--catalog`; at most 60). Every write revokes the player's leases before it commits; a process
    /// that cannot be told delays such a write by 3 s at most. 0: every sync reads the database.
    #[arg(long, env = "REWARDS_BACKEND_READ_LEASE_SECONDS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(0..=60))]
    read_lease_seconds: u64,
    /// Serve competitions (`/api/competitions…`; define them on the operator listener) and close them when
    /// they end, paying prizes through Moments.
    #[arg(long, env = "REWARDS_BACKEND_COMPETITIONS")]
    competitions: bool,
    /// Allow sandbox Amazon URLs (not https, or loopback), e.g. the local sandbox; every answer is then marked
    /// `x-amazon-rewards-environment: sandbox`. Without it such a URL refuses the start.
    #[arg(long, env = "REWARDS_BACKEND_SANDBOX")]
    sandbox: bool,
    /// The studio game server's credential for trusted competition scores (`/server/competitions/{id}/scores`).
    #[arg(long, env = "REWARDS_BACKEND_GAME_SERVER_TOKEN", hide_env_values = true)]
    game_server_token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum InstantAccessCommand {
    /// Print the headers that sign BODY for URL.
    Sign(SignArgs),
    /// Sign BODY and POST it to URL; print the status and answer.
    Send(SignArgs),
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    /// Full endpoint URL, e.g. http://127.0.0.1:8788/instant-access/fulfillment.
    url: String,
    /// JSON body, e.g. '{"operation":"Purchase",...}'; `-` reads stdin.
    body: String,
    /// Public key id.
    #[arg(long, env = "INSTANT_ACCESS_KEY_ID")]
    key_id: String,
    /// Secret key.
    #[arg(long, env = "INSTANT_ACCESS_SECRET")]
    secret: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    if cli.log_json {
        logs.json().flatten_event(true).with_current_span(true).init();
    } else {
        logs.init();
    }
    let done = match cli.command {
        Command::Serve(args) => serve_until_stopped(*args).await,
        Command::InstantAccess(command) => instant_access_call(command).await,
        Command::Probe(args) => probe(args).await,
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // In words, for the operator: not a debug dump.
            eprintln!("rewards-backend: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Builds the backend from the command line, serves until Ctrl-C or SIGTERM, and stops gracefully: no new
/// connection is taken, requests in flight finish.
async fn serve_until_stopped(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let backend = serve(backend_config(args)?).await?;
    println!("rewards-backend listening on {}", backend.url());
    if let Some(operator) = backend.operator_url() {
        println!("rewards-backend operator routes on {operator}");
    }
    stop_signal().await?;
    tracing::info!("stopping: finishing the requests in flight");
    backend.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a service manager or a container runtime sends).
#[cfg(unix)]
async fn stop_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = terminate.recv() => Ok(()),
    }
}

/// Ctrl-C, or the console closing (Windows has no SIGTERM; a service stop arrives as these). Not run in CI: no
/// Windows machine here. Keep it this small.
#[cfg(windows)]
async fn stop_signal() -> std::io::Result<()> {
    let mut closed = tokio::signal::windows::ctrl_close()?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = closed.recv() => Ok(()),
    }
}

/// The backend's configuration from the command line (and `REWARDS_BACKEND_OPERATOR_TOKEN`).
use amazon_rewards_backend::inventory::{InventoryConfig, catalog::ServerCatalog};

fn backend_config(args: ServeArgs) -> Result<BackendConfig, Box<dyn std::error::Error>> {
    let keys = KeyStore::parse(&std::fs::read_to_string(&args.keys)?)?;
    if keys.is_empty() {
        return Err("the key store holds no key".into());
    }
    if !args.public_path_prefix.is_empty() && !args.public_path_prefix.starts_with('/') {
        return Err(format!("--public-path-prefix {:?} must start with /", args.public_path_prefix).into());
    }
    let mut config = BackendConfig::new(args.listen, args.database, keys);
    config.public_path_prefix = args.public_path_prefix;
    config.operator = Some(operator_config(args.operator_listen)?);
    config.token_key = args.token_key.as_deref().map(amazon_rewards_backend::sealed::TokenKey::from_hex).transpose()?;
    config.game_client_ids = args.game_client_ids;
    config.sandbox = args.sandbox;
    config.prime_gaming_url = args.prime_gaming_url;
    if let Some(path) = &args.catalog {
        let mut inventory = InventoryConfig::new(ServerCatalog::load(path)?);
        inventory.sync_interval = std::time::Duration::from_secs(args.sync_seconds);
        inventory.read_lease = std::time::Duration::from_secs(args.read_lease_seconds);
        config.inventory = Some(inventory);
    }
    if args.competitions {
        let server_token = args.game_server_token.clone();
        if server_token.as_ref().is_some_and(|t| t.len() < 24) {
            return Err("--game-server-token must be at least 24 characters".into());
        }
        config.competitions =
            Some(amazon_rewards_backend::competitions::CompetitionsConfig { server_token, ..Default::default() });
    }
    if let Some(license_url) = args.devpay_url {
        config.devpay = Some(amazon_rewards_backend::devpay::DevPayConfig {
            license_url,
            products: devpay_products(&args.devpay_products)?,
            verify_every: std::time::Duration::from_secs(args.devpay_verify_seconds.max(1)),
            signup_url: args.devpay_signup_url,
            public_url: args.public_url.clone().unwrap_or_default(),
        });
    }
    if let Some(rewards_url) = args.moments_url {
        let api_key = args.moments_api_key.ok_or("--moments-url needs --moments-api-key")?;
        let mut moments = amazon_rewards_backend::moments::MomentsConfig::new(rewards_url, api_key);
        moments.moments = moment_campaigns(&args.moments)?;
        config.moments = Some(moments);
    }
    if let (Some(client_id), Some(client_secret)) = (args.lwa_client_id, args.lwa_client_secret) {
        config.lwa_client = Some(amazon_rewards_backend::signup::LwaClient {
            authorize_url: args.lwa_authorize_url,
            api_url: args.lwa_api_url,
            client_id,
            client_secret,
            public_url: args.public_url.unwrap_or_default(),
            return_origins: args.return_origins,
        });
    }
    Ok(config)
}

/// The operator listener, with `REWARDS_BACKEND_OPERATOR_TOKEN` (none: every operator call is refused).
fn operator_config(
    listen: std::net::SocketAddr,
) -> Result<amazon_rewards_backend::operator::OperatorConfig, Box<dyn std::error::Error>> {
    let token = std::env::var("REWARDS_BACKEND_OPERATOR_TOKEN").ok().filter(|t| !t.is_empty());
    if token.as_ref().is_some_and(|t| t.len() < amazon_rewards_backend::operator::MIN_TOKEN_LEN) {
        return Err("REWARDS_BACKEND_OPERATOR_TOKEN must be at least 24 characters".into());
    }
    if token.is_none() {
        eprintln!("no REWARDS_BACKEND_OPERATOR_TOKEN: the operator routes refuse every call");
    }
    Ok(amazon_rewards_backend::operator::OperatorConfig { listen, token })
}

/// `--devpay-product CODE:PRODUCT_TOKEN:SKU`, each.
fn devpay_products(
    products: &[String],
) -> Result<HashMap<String, amazon_rewards_backend::devpay::DevPayProductConfig>, String> {
    let mut parsed = HashMap::new();
    for product in products {
        let [code, token, sku] = product.splitn(3, ':').collect::<Vec<_>>()[..] else {
            return Err(format!("--devpay-product {product:?} is not CODE:PRODUCT_TOKEN:SKU"));
        };
        let config = amazon_rewards_backend::devpay::DevPayProductConfig {
            product_token: token.to_owned(),
            sku: sku.to_owned(),
        };
        parsed.insert(code.to_owned(), config);
    }
    Ok(parsed)
}

/// `--moment MOMENT:CAMPAIGN_ID:COST_CENTS:BUDGET_CENTS`, each.
fn moment_campaigns(
    moments: &[String],
) -> Result<HashMap<String, amazon_rewards_backend::moments::MomentCampaign>, String> {
    let mut parsed = HashMap::new();
    for moment in moments {
        let refused = || format!("--moment {moment:?} is not MOMENT:CAMPAIGN_ID:COST_CENTS:BUDGET_CENTS");
        let [name, campaign, cost, budget] = moment.split(':').collect::<Vec<_>>()[..] else {
            return Err(refused());
        };
        let (Ok(cost_per_moment_cents), Ok(budget_cents)) = (cost.parse(), budget.parse()) else {
            return Err(refused());
        };
        let campaign = amazon_rewards_backend::moments::MomentCampaign {
            campaign_id: campaign.to_owned(),
            cost_per_moment_cents,
            budget_cents,
        };
        parsed.insert(name.to_owned(), campaign);
    }
    Ok(parsed)
}

/// Runs the probe, prints the code to enter and then the report, and writes the transcript, also when the
/// probe stopped early.
async fn probe(args: ProbeArgs) -> Result<(), Box<dyn std::error::Error>> {
    use amazon_rewards_backend::probe::{ProbeSettings, run};
    use std::io::Write;
    let mut settings = ProbeSettings::production(&args.client_id);
    settings.lwa_api_url = args.lwa_api_url;
    settings.prime_gaming_url = args.prime_gaming_url;
    settings.fulfil = args.fulfil;
    settings.sandbox = args.sandbox;
    settings.code_wait = std::time::Duration::from_secs(args.code_wait_seconds);
    let outcome = run(&settings, |code| {
        println!("Sign in at {} and enter the code {}", code.verification_uri, code.user_code);
        let _ = std::io::stdout().flush();
    })
    .await;
    let (report, stopped) = match &outcome {
        Ok(report) => (Some(report), None),
        Err(error) => (error.report(), Some(error.to_string())),
    };
    if let Some(report) = report {
        print!("{}", report.in_words());
        report.write_transcript(&args.transcript)?;
        println!("transcript: {}", args.transcript.display());
    }
    if let Some(stopped) = stopped {
        return Err(stopped.into());
    }
    match report.is_some_and(|report| report.all_match()) {
        true => Ok(()),
        false => Err("Amazon's answers differ from the shapes this code expects".into()),
    }
}

/// Signs an Instant Access call as Amazon would, and prints the headers or sends it.
async fn instant_access_call(command: InstantAccessCommand) -> Result<(), Box<dyn std::error::Error>> {
    let (args, send) = match command {
        InstantAccessCommand::Sign(args) => (args, false),
        InstantAccessCommand::Send(args) => (args, true),
    };
    let body = if args.body == "-" { std::io::read_to_string(std::io::stdin())? } else { args.body };
    let url = reqwest::Url::parse(&args.url)?;
    let signed = sign(
        "POST",
        url.path(),
        "application/json",
        body.as_bytes(),
        &Credential::new(args.key_id, args.secret),
        AmzDate::now(),
    );
    if send {
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("x-amz-date", &signed.x_amz_date)
            .header("authorization", &signed.authorization)
            .body(body)
            .send()
            .await?;
        println!("HTTP {}", response.status().as_u16());
        println!("{}", response.text().await?);
    } else {
        println!("Content-Type: application/json");
        println!("x-amz-date: {}", signed.x_amz_date);
        println!("Authorization: {}", signed.authorization);
    }
    Ok(())
}
