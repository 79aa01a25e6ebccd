//! Shared test harness: a real sandbox on loopback seeded through its admin API, and a headless Bevy app
//! running the plugin against it.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use amazon_rewards_protocol::sandbox_admin::{Customer, EntitlementStatus, FaultKind, InjectFault};
use amazon_rewards_sandbox::admin::BlockingClient;
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

/// SKUs the shipped catalog (`assets/rewards.catalog.json`) knows.
pub const GOLD: &str = "prime-gold-pack";
pub const GEMS: &str = "prime-gem-pouch";
pub const BUNDLE: &str = "prime-explorer-bundle";

/// A running sandbox plus a client for its admin API.
pub struct Fixture {
    pub sandbox: Sandbox,
    /// The sandbox's admin API.
    pub admin: BlockingClient,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Fixture {
    pub fn start() -> Self {
        Self::start_with(SandboxConfig::ephemeral().expect("temp dir"))
    }

    pub fn start_with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::spawn(config).expect("sandbox starts");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let admin = BlockingClient::new(sandbox.url());
        Self { sandbox, admin, runtime, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        self.sandbox.url().to_owned()
    }

    pub fn offer(&self, sku: &str) {
        self.admin.create_offer(sku, &format!("Offer {sku}")).unwrap();
    }

    /// Registers the shipped catalog's offers.
    pub fn catalog_offers(&self) {
        for sku in [GOLD, GEMS, BUNDLE] {
            self.offer(sku);
        }
    }

    pub fn customer(&self, email: &str) -> Customer {
        self.admin.create_customer(email, "Test Player", "pw").unwrap()
    }

    pub fn grant(&self, user_id: &str, sku: &str, count: u32) -> Vec<String> {
        self.admin.grant(user_id, sku, count).unwrap()
    }

    pub fn token(&self, user_id: &str, expires_in: i64) -> String {
        self.admin.mint_token(user_id, expires_in).unwrap()
    }

    pub fn fault(&self, path: &str, times: u32, fault: FaultKind) {
        self.admin.inject_fault(&InjectFault { path: path.into(), times, fault }).unwrap();
    }

    pub fn clear_faults(&self) {
        self.admin.clear_faults().unwrap();
    }

    pub fn statuses(&self, user_id: &str) -> Vec<EntitlementStatus> {
        self.admin.entitlement_statuses(user_id).unwrap()
    }
}

/// Test pacing: fast, but still paced.
pub fn fast_pacing() -> PullPacing {
    PullPacing {
        min_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    }
}

pub fn test_config(sandbox_url: &str, data_dir: &Path) -> RewardsConfig {
    RewardsConfig {
        entitlements_url: sandbox_url.to_owned(),
        client_id: "amzn1.application-oa2-client.test".into(),
        entitlements: EntitlementsConfig { pacing: fast_pacing(), ..Default::default() },
        request_timeout: Duration::from_secs(5),
        data_dir: Some(data_dir.to_owned()),
        ..Default::default()
    }
}

pub fn assets_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").to_string_lossy().into_owned()
}

/// A headless app with every plugin, reading the shipped assets.
pub fn headless_app(config: RewardsConfig) -> App {
    bevy_amazon_rewards::testing::headless_app(&assets_dir(), AmazonRewardsPlugins { config })
}

/// Collects every message of type `M` the app writes, for assertions.
#[derive(Resource)]
pub struct Collected<M: Message + Clone>(pub Vec<M>);

pub fn collect<M: Message + Clone>(app: &mut App) {
    app.insert_resource(Collected::<M>(Vec::new()));
    app.add_systems(Last, |mut reader: MessageReader<M>, mut collected: ResMut<Collected<M>>| {
        collected.0.extend(reader.read().cloned());
    });
}

pub fn collected<M: Message + Clone>(app: &App) -> &[M] {
    &app.world().resource::<Collected<M>>().0
}

pub use bevy_amazon_rewards::testing::{run_for, run_until};

pub fn spawn_recipient(app: &mut App) -> Entity {
    app.world_mut().spawn(RewardsRecipient).id()
}

pub fn inventory(app: &mut App) -> Inventory {
    let mut query = app.world_mut().query_filtered::<&Inventory, With<RewardsRecipient>>();
    query.single(app.world()).expect("one recipient").clone()
}

pub fn login(app: &mut App, user_id: &str, token: &str) {
    app.insert_resource(PlayerSession::new(user_id, AccessToken::new(token)));
}

/// Whether every entitlement the sandbox holds for `user_id` is fulfilled.
pub fn all_fulfilled(fixture: &Fixture, user_id: &str) -> bool {
    fixture.statuses(user_id).iter().all(|s| s.fulfilled)
}

/// Whether the app has nothing left to grant or report.
pub fn settled(app: &App) -> bool {
    let status = app.world().resource::<RewardsStatus>();
    status.ledger_ready && !status.pulling && status.pending_grants == 0 && status.pending_reports == 0
}

pub mod recorder;
pub mod rewards;
pub mod studio;
pub mod webdriver;

/// The client id the login tests register, and the redirect URI of its security profile.
pub const CLIENT_ID: &str = "amzn1.application-oa2-client.test";
pub const REGISTERED_REDIRECT: &str = "http://127.0.0.1/amazon-rewards/callback";

impl Fixture {
    /// Registers the game's LWA client with the loopback redirect URI.
    pub fn register_client(&self) {
        self.register_client_as(CLIENT_ID);
    }

    /// Registers a public LWA client with this id and the loopback redirect URI.
    pub fn register_client_as(&self, client_id: &str) {
        let client = amazon_rewards_protocol::sandbox_admin::RegisterClient {
            client_id: client_id.into(),
            client_secret: None,
            redirect_uris: vec![REGISTERED_REDIRECT.into()],
            name: "Rewards Test Game".into(),
        };
        self.admin.register_client(&client).unwrap();
    }

    /// Plays the browser's part over plain HTTP: signs in on the authorize page and allows access.
    /// Returns the redirect URL (to the game's loopback listener) carrying the code.
    pub fn consent_over_http(&self, authorize_url: &str, email: &str, password: &str) -> String {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        self.runtime.block_on(async {
            let authorize = url::Url::parse(authorize_url).unwrap();
            let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
            form.push(("email".into(), email.into()));
            form.push(("password".into(), password.into()));
            let consent = http.post(format!("{}/ap/signin", self.sandbox.url())).form(&form).send().await.unwrap();
            assert!(consent.status().is_success(), "sign-in: {}", consent.status());
            let html = consent.text().await.unwrap();
            let ticket = html.split(r#"name="ticket" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
            form.retain(|(k, _)| k != "email" && k != "password");
            form.push(("ticket".into(), ticket));
            form.push(("decision".into(), "allow".into()));
            let answer = http.post(format!("{}/ap/consent", self.sandbox.url())).form(&form).send().await.unwrap();
            answer.headers()["location"].to_str().unwrap().to_owned()
        })
    }

    /// A full sign-in over HTTP (authorization code + PKCE), as a game would do it: returns the tokens.
    pub fn tokens_over_http(&self, email: &str, password: &str) -> amazon_rewards_protocol::lwa::TokenResponse {
        self.tokens_over_http_as(CLIENT_ID, email, password)
    }

    /// The same sign-in, by the client `client_id`.
    pub fn tokens_over_http_as(
        &self,
        client_id: &str,
        email: &str,
        password: &str,
    ) -> amazon_rewards_protocol::lwa::TokenResponse {
        use base64::Engine;
        use sha2::Digest;
        let verifier = "k".repeat(64);
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:1/amazon-rewards/callback";
        let mut authorize = url::Url::parse(&format!("{}/ap/oa", self.sandbox.url())).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("scope", "games::prime profile")
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "s")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let location = url::Url::parse(&self.consent_over_http(authorize.as_str(), email, password)).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let url = format!("{}/auth/o2/token", self.sandbox.url());
        self.runtime.block_on(async {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
                ("code_verifier", verifier.as_str()),
                ("client_id", client_id),
            ];
            self.http.post(&url).form(&form).send().await.unwrap().json().await.unwrap()
        })
    }

    /// Runs a GET on the sandbox admin API.
    pub fn admin_get(&self, path: &str) -> serde_json::Value {
        self.admin.get(path).unwrap()
    }

    /// Submits the device-code page as the player would.
    pub fn enter_device_code(&self, user_code: &str, email: &str, password: &str) {
        let url = format!("{}/code", self.sandbox.url());
        let status = self.runtime.block_on(async {
            let form = [("user_code", user_code), ("email", email), ("password", password), ("decision", "allow")];
            self.http.post(&url).form(&form).send().await.unwrap().status()
        });
        assert!(status.is_success(), "{status}");
    }
}

/// A config pointing every endpoint at the sandbox, with the test client id.
pub fn login_config(sandbox_url: &str, data_dir: &Path) -> RewardsConfig {
    let mut config = test_config(sandbox_url, data_dir);
    config.use_amazon_at(sandbox_url);
    config.client_id = CLIENT_ID.into();
    config
}

/// Writes a saved session as the plugin does, so a test can start "already signed in".
pub fn save_session(
    data_dir: &Path,
    user_id: &str,
    name: &str,
    access_token: &str,
    expires_in: i64,
    refresh_token: &str,
) {
    let expires_at = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
        + expires_in)
        .max(0);
    let tokens = serde_json::json!({
        "user_id": user_id, "name": name, "email": null,
        "access_token": access_token, "expires_at": expires_at, "refresh_token": refresh_token,
    });
    let path = bevy_amazon_rewards::testing::files::tokens_path(data_dir, user_id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec(&tokens).unwrap()).unwrap();
    std::fs::write(data_dir.join("current_player"), user_id).unwrap();
}
