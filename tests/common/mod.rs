//! Shared test harness: a real sandbox on loopback seeded through its admin API, and a headless Bevy app
//! running the plugin against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amazon_rewards_protocol::sandbox_admin::{
    CreateCustomer, CreateOffer, Customer, EntitlementStatus, FaultKind, GrantEntitlement, GrantedEntitlements,
    InjectFault, MintToken, MintedToken,
};
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
        Self { sandbox, runtime, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        self.sandbox.url().to_owned()
    }

    fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(&self, path: &str, body: &B) -> R {
        let url = format!("{}/admin{path}", self.sandbox.url());
        self.runtime.block_on(async {
            let response = self.http.post(&url).json(body).send().await.expect("admin call");
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "POST {path}: {status} {text}");
            serde_json::from_str(if text.is_empty() { "null" } else { &text }).expect("admin JSON")
        })
    }

    pub fn offer(&self, sku: &str) {
        let _: serde_json::Value =
            self.post("/offers", &CreateOffer { sku: sku.into(), title: format!("Offer {sku}") });
    }

    /// Registers the shipped catalog's offers.
    pub fn catalog_offers(&self) {
        for sku in [GOLD, GEMS, BUNDLE] {
            self.offer(sku);
        }
    }

    pub fn customer(&self, email: &str) -> Customer {
        self.post(
            "/customers",
            &CreateCustomer { email: email.into(), name: "Test Player".into(), password: "pw".into() },
        )
    }

    pub fn grant(&self, user_id: &str, sku: &str, count: u32) -> Vec<String> {
        let granted: GrantedEntitlements =
            self.post(&format!("/customers/{user_id}/entitlements"), &GrantEntitlement { sku: sku.into(), count });
        granted.entitlement_ids
    }

    pub fn token(&self, user_id: &str, expires_in: i64) -> String {
        let minted: MintedToken = self.post(&format!("/customers/{user_id}/tokens"), &MintToken { expires_in });
        minted.access_token
    }

    pub fn fault(&self, path: &str, times: u32, fault: FaultKind) {
        let _: serde_json::Value = self.post("/faults", &InjectFault { path: path.into(), times, fault });
    }

    pub fn statuses(&self, user_id: &str) -> Vec<EntitlementStatus> {
        let url = format!("{}/admin/customers/{user_id}/entitlements", self.sandbox.url());
        self.runtime.block_on(async { self.http.get(&url).send().await.unwrap().json().await.unwrap() })
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
        pacing: fast_pacing(),
        request_timeout: Duration::from_secs(5),
        data_dir: Some(data_dir.to_owned()),
        ..Default::default()
    }
}

pub fn assets_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").to_string_lossy().into_owned()
}

/// A headless app with the plugin, reading the shipped assets.
pub fn headless_app(config: RewardsConfig) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::asset::AssetPlugin { file_path: assets_dir(), ..default() },
        bevy::state::app::StatesPlugin,
        AmazonRewardsPlugin::default().with_config(config),
    ));
    app.finish();
    app.cleanup();
    app
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

/// Updates the app until `done` holds, failing after `timeout`.
pub fn run_until(app: &mut App, timeout: Duration, what: &str, mut done: impl FnMut(&mut App) -> bool) {
    let start = Instant::now();
    loop {
        app.update();
        if done(app) {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Updates the app for `duration`.
pub fn run_for(app: &mut App, duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        app.update();
        std::thread::sleep(Duration::from_millis(2));
    }
}

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
