//! The demo's Amazon side (the sandbox) and studio backend: started in-process on ephemeral ports with their
//! databases under the demo's data dir (so a restart keeps accounts, purchases and the inventory), and seeded
//! once with a test customer, offers, products, the season pass and Moments campaigns. Or, with
//! `--sandbox URL --backend URL`, standalone servers the developer runs and seeds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use amazon_rewards_backend::competitions::CompetitionsConfig;
use amazon_rewards_backend::devpay::{DevPayConfig, DevPayProductConfig};
use amazon_rewards_backend::inventory::InventoryConfig;
use amazon_rewards_backend::inventory::catalog::ServerCatalog;
use amazon_rewards_backend::moments::{MomentCampaign, MomentsConfig};
use amazon_rewards_backend::sealed::TokenKey;
use amazon_rewards_backend::{BackendConfig, RunningBackend};
use amazon_rewards_protocol::competitions::{ClientScores, CompetitionDefinition, Prize, Scoring};
use amazon_rewards_protocol::dta1::KeyStore;
use amazon_rewards_protocol::moments::admin::NewCampaign;
use amazon_rewards_protocol::moments::{CampaignState, RewardKind};
use amazon_rewards_protocol::sandbox_admin::{
    DevPayProduct, InstantAccessProduct, InstantAccessVendor, RegisterClient,
};
use amazon_rewards_sandbox::admin::{AdminError, Client};
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy_amazon_rewards::subscriptions::SIGNUP_RETURN_PATH;
use serde::{Deserialize, Serialize};

use super::shopper;

/// The game's Login with Amazon client (a public client: PKCE, loopback redirect).
pub const CLIENT_ID: &str = "amzn1.application-oa2-client.coin-bank-demo";
/// The studio backend's own client (confidential), for its new-account page and the Prime Gaming relay.
const BACKEND_CLIENT: &str = "amzn1.application-oa2-client.coin-bank-studio";
const BACKEND_SECRET: &str = "coin-bank-studio-secret";
const INSTANT_ACCESS_KEYS: &str = "AMAZONSECRET AMAZONKEY";
const SEASON_PASS_TOKEN: &str = "coin-bank-season-pass-token";
/// The test customer.
pub const EMAIL: &str = "player@example.com";
/// Their password.
pub const PASSWORD: &str = "hunter2";
/// Their game account at the studio.
pub const GAME_ACCOUNT: &str = "PlayerOne";
/// The DevPay product code of the season pass.
pub const SEASON_PASS: &str = "SEASONPASS";

/// Prime Gaming offers: SKU and title.
pub const PRIME_OFFERS: [(&str, &str); 3] = [
    ("prime-gold-pack", "500 gold coins"),
    ("prime-gem-pouch", "A pouch of 25 gems"),
    ("prime-explorer-bundle", "Explorer bundle: Prime Sword + outfit"),
];
/// What the gem shop sells: a shower of coins on the field, for gems (spent on the backend).
pub const COIN_SHOWER: (&str, u64, u32) = ("A shower of 10 coins on the field", 10, 10);
/// Instant Access products: id, title, price in cents.
pub const INSTANT_ACCESS_PRODUCTS: [(&str, &str, i64); 1] = [("ia-gem-crate", "Crate of 100 gems", 499)];

/// What the seeding left behind, kept in the data dir so later runs find it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seed {
    moments_api_key: String,
    campaigns: HashMap<String, String>,
}

/// Where the services are; keeps the in-process ones running.
pub struct Services {
    /// The sandbox's base URL.
    pub sandbox: String,
    /// The studio backend's base URL.
    pub backend: String,
    _sandbox: Option<Sandbox>,
    _backend: Option<(tokio::runtime::Runtime, RunningBackend)>,
}

/// The moment that pays the coin race's winner.
const RACE_PRIZE: &str = "coin-race-winner";

/// A coin race starting now and lasting `seconds`: most coins banked wins. The demo has no game server, so its
/// race takes the game client's scores: untrusted, and the standings say so.
fn coin_race(seconds: i64) -> CompetitionDefinition {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    CompetitionDefinition {
        id: format!("coin-race-{now}"),
        title: "Coin race".into(),
        starts_at: now,
        ends_at: now + seconds,
        scoring: Scoring::Highest,
        winners: 3,
        prizes: vec![Prize { place: 1, moment: RACE_PRIZE.into() }],
        client_scores: Some(ClientScores { max_score: 100_000, min_interval_secs: 0 }),
    }
}

/// Starts (or finds) the services; a coin race of `race_seconds` starts with them.
pub fn start(
    external: Option<(String, String)>,
    data_dir: &Path,
    race_seconds: i64,
) -> Result<Services, Box<dyn std::error::Error>> {
    if let Some((sandbox, backend)) = external {
        return Ok(Services { sandbox, backend, _sandbox: None, _backend: None });
    }
    std::fs::create_dir_all(data_dir)?;
    let sandbox = Sandbox::spawn(SandboxConfig::new(0, data_dir.join("sandbox.db")))?;
    let sandbox_url = sandbox.url().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let seed_path = data_dir.join("demo-seed.json");
    let seed = match std::fs::read(&seed_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(_) => {
            let seed = runtime.block_on(seed_sandbox(&sandbox_url))?;
            std::fs::write(&seed_path, serde_json::to_vec_pretty(&seed)?)?;
            seed
        }
    };
    let backend = runtime.block_on(amazon_rewards_backend::serve(backend_config(&sandbox_url, data_dir, &seed)?))?;
    let backend_url = backend.url();
    runtime.block_on(connect(&sandbox_url, &backend_url))?;
    runtime.block_on(amazon_rewards_backend::competitions::table::define(&backend.pool, &coin_race(race_seconds)))?;
    if !data_dir.join("demo-account").exists() {
        runtime
            .block_on(shopper::create_studio_account(&sandbox_url, &backend_url, GAME_ACCOUNT))
            .map_err(|e| e.to_string())?;
        std::fs::write(data_dir.join("demo-account"), GAME_ACCOUNT)?;
    }
    Ok(Services {
        sandbox: sandbox_url,
        backend: backend_url,
        _sandbox: Some(sandbox),
        _backend: Some((runtime, backend)),
    })
}

/// The key the demo's backend seals refresh tokens with: made on the first run, kept owner-only next to (not in)
/// the database.
fn token_key(path: &Path) -> Result<TokenKey, Box<dyn std::error::Error>> {
    if let Ok(saved) = std::fs::read_to_string(path) {
        return Ok(TokenKey::from_hex(&saved)?);
    }
    let key = TokenKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, key.to_hex().as_bytes())?;
    Ok(key)
}

fn backend_config(sandbox: &str, data_dir: &Path, seed: &Seed) -> Result<BackendConfig, Box<dyn std::error::Error>> {
    let database: PathBuf = data_dir.join("backend.db");
    let mut config = BackendConfig::new(
        "127.0.0.1:0".parse()?,
        format!("sqlite://{}", database.display()),
        KeyStore::parse(INSTANT_ACCESS_KEYS)?,
    );
    config.token_key = Some(token_key(&data_dir.join("backend.key"))?);
    config.sandbox = true;
    config.game_client_ids = vec![CLIENT_ID.to_owned()];
    config.prime_gaming_url = Some(sandbox.to_owned());
    config.lwa_client = Some(amazon_rewards_backend::signup::LwaClient {
        authorize_url: format!("{sandbox}/ap/oa"),
        api_url: sandbox.to_owned(),
        client_id: BACKEND_CLIENT.into(),
        client_secret: BACKEND_SECRET.into(),
        public_url: String::new(),
        return_origins: vec![sandbox.to_owned()],
    });
    config.devpay = Some(DevPayConfig {
        license_url: sandbox.to_owned(),
        products: HashMap::from([(
            SEASON_PASS.to_owned(),
            DevPayProductConfig { product_token: SEASON_PASS_TOKEN.into(), sku: "season-pass".into() },
        )]),
        verify_every: Duration::from_secs(10),
        signup_url: Some(format!("{sandbox}/devpay/signup")),
        public_url: String::new(),
    });
    let mut moments = MomentsConfig::new(sandbox, seed.moments_api_key.clone());
    for (moment, campaign_id) in &seed.campaigns {
        let campaign =
            MomentCampaign { campaign_id: campaign_id.clone(), cost_per_moment_cents: 500, budget_cents: 50_000 };
        moments.moments.insert(moment.clone(), campaign);
    }
    config.moments = Some(moments);
    // The backend owns the inventory, granting by the catalog the game ships; Prime Gaming is pulled for a
    // player at most every 2 s (a store visit or the window's focus asks), so claims show quickly in the demo.
    let catalog = ServerCatalog::parse(include_bytes!("../../assets/rewards.catalog.json"))?;
    let mut inventory = InventoryConfig::new(catalog);
    inventory.sync_interval = Duration::from_secs(2);
    config.inventory = Some(inventory);
    config.competitions = Some(CompetitionsConfig { server_token: None, close_every: Duration::from_secs(1) });
    Ok(config)
}

/// First run only: clients, the customer, offers (one already claimed), products, the season pass, Moments.
async fn seed_sandbox(sandbox: &str) -> Result<Seed, AdminError> {
    let admin = Client::new(sandbox);
    // The game links through the backend: the backend's is the one security profile Login with Amazon knows.
    for (client_id, secret, redirects, name) in [(
        BACKEND_CLIENT,
        Some(BACKEND_SECRET.to_owned()),
        &["http://127.0.0.1/accounts/callback", "http://127.0.0.1/link/callback"][..],
        "Coin Bank accounts",
    )] {
        let client = RegisterClient {
            client_id: client_id.into(),
            client_secret: secret,
            redirect_uris: redirects.iter().map(|r| (*r).into()).collect(),
            name: name.into(),
        };
        admin.register_client(&client).await?;
    }
    for (sku, title) in PRIME_OFFERS {
        admin.create_offer(sku, title).await?;
    }
    let customer = admin.create_customer(EMAIL, "Player One", PASSWORD).await?;
    // Claimed on Amazon before the player ever opened the game: it arrives at the first sign-in.
    admin.grant(&customer.user_id, "prime-gold-pack", 1).await?;
    for (product_id, title, price_cents) in INSTANT_ACCESS_PRODUCTS {
        let product = InstantAccessProduct {
            product_id: product_id.into(),
            title: title.into(),
            price_cents,
            subscription: false,
        };
        admin.add_instant_access_product(&product).await?;
    }
    let key = admin.create_moments_api_key().await?;
    let mut campaigns = HashMap::new();
    for (moment, title, description) in [
        ("five-deposits", "500 bonus gems", "Make 5 deposits at the bank and Amazon sends you 500 bonus gems."),
        ("level-3", "A Coin Bank sticker pack", "Reach level 3 and claim a real sticker pack, shipped to you."),
        (RACE_PRIZE, "Coin race champion: 1,000 gems", "Bank the most coins in a coin race and win 1,000 gems."),
    ] {
        let new = NewCampaign {
            api_key: key.api_key.clone(),
            name: title.into(),
            kind: if moment == "level-3" { RewardKind::Physical } else { RewardKind::Digital },
            title: title.into(),
            description: description.into(),
            image_url: format!("{sandbox}/moments/console"),
            cost_per_moment_cents: 500,
            budget_cents: 50_000,
            inventory: 100,
        };
        let campaign = admin.create_campaign(&new).await?;
        for state in [CampaignState::PendingApproval, CampaignState::ApprovedTest, CampaignState::Live] {
            admin.set_campaign_state(&campaign.campaign_id, state).await?;
        }
        campaigns.insert(moment.to_owned(), campaign.campaign_id);
    }
    Ok(Seed { moments_api_key: key.api_key, campaigns })
}

/// Every run: tells the sandbox where this run's backend listens (Instant Access calls, new-account page).
async fn connect(sandbox: &str, backend: &str) -> Result<(), AdminError> {
    let vendor = InstantAccessVendor {
        linking_url: format!("{backend}/instant-access/linking"),
        fulfillment_url: format!("{backend}/instant-access/fulfillment"),
        key_id: "AMAZONKEY".into(),
        secret: "AMAZONSECRET".into(),
        new_account_url: Some(format!("{backend}/accounts/new")),
    };
    let admin = Client::new(sandbox);
    admin.set_instant_access_vendor(&vendor).await?;
    // Registered (or brought up to date) every run: the sign-up sends the player back to the game's loopback
    // listener, on whatever port it has this time.
    let pass = DevPayProduct {
        product_code: SEASON_PASS.into(),
        product_token: SEASON_PASS_TOKEN.into(),
        title: "Coin Bank season pass".into(),
        description: "A season badge, and every coin counts twice while it lasts.".into(),
        signup_fee_cents: 0,
        monthly_fee_cents: 499,
        redirect_url: format!("http://127.0.0.1{SIGNUP_RETURN_PATH}"),
        // Sign-ups on another device return to this run's backend.
        other_redirect_urls: vec![format!("{backend}/devpay/return")],
    };
    admin.add_devpay_product(&pass).await?;
    Ok(())
}
