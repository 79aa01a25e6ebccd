//! Headless tour of the pull → grant → fulfil loop.
//!
//! Starts the Amazon sandbox in-process on an ephemeral port, seeds a test customer who has claimed three
//! Prime Gaming offers, then runs a Bevy app with the plugin: it pulls the entitlements, grants them into the
//! player's inventory, reports them fulfilled, prints the inventory and exits 0.
//!
//! ```sh
//! cargo run --example pull
//! ```

use std::time::Duration;

use amazon_rewards_protocol::sandbox_admin::{
    CreateCustomer, CreateOffer, Customer, GrantEntitlement, MintToken, MintedToken,
};
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

fn main() -> AppExit {
    let sandbox = Sandbox::spawn(SandboxConfig::ephemeral().expect("temporary directory")).expect("sandbox starts");
    println!("Amazon sandbox listening on {}", sandbox.url());
    let (player, token) = seed(sandbox.url()).expect("seeding the sandbox");
    let data_dir = std::env::temp_dir().join(format!("bevy_amazon_rewards-pull-example-{}", std::process::id()));

    let exit = App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            bevy::asset::AssetPlugin::default(),
            bevy::log::LogPlugin::default(),
            AmazonRewardsPlugin::new()
                .with_entitlements_url(sandbox.url())
                .with_client_id("amzn1.application-oa2-client.example")
                .with_data_dir(&data_dir),
        ))
        .insert_resource(PlayerSession::new(player.user_id.clone(), AccessToken::new(token)))
        .add_systems(Startup, |mut commands: Commands| {
            commands.spawn((Name::new("Player"), RewardsRecipient));
        })
        .add_systems(Update, (report_progress, exit_when_done))
        .run();
    let _ = std::fs::remove_dir_all(&data_dir);
    exit
}

/// Registers offers, a customer who claimed them, and an access token (the browser login's stand-in).
fn seed(url: &str) -> Result<(Customer, String), reqwest::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let admin = |path: &str| format!("{url}/admin{path}");
        for (sku, title) in [
            ("prime-gold-pack", "500 gold coins"),
            ("prime-gem-pouch", "A pouch of 25 gems"),
            ("prime-explorer-bundle", "Explorer bundle"),
        ] {
            http.post(admin("/offers"))
                .json(&CreateOffer { sku: sku.into(), title: title.into() })
                .send()
                .await?
                .error_for_status()?;
        }
        let customer: Customer = http
            .post(admin("/customers"))
            .json(&CreateCustomer {
                email: "player@example.com".into(),
                name: "Player One".into(),
                password: "hunter2".into(),
            })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for sku in ["prime-gold-pack", "prime-gem-pouch", "prime-explorer-bundle"] {
            http.post(admin(&format!("/customers/{}/entitlements", customer.user_id)))
                .json(&GrantEntitlement { sku: sku.into(), count: 1 })
                .send()
                .await?
                .error_for_status()?;
        }
        let token: MintedToken = http
            .post(admin(&format!("/customers/{}/tokens", customer.user_id)))
            .json(&MintToken { expires_in: 3600 })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok((customer, token.access_token))
    })
}

fn report_progress(
    mut pulls: MessageReader<PullCompleted>,
    mut grants: MessageReader<EntitlementGranted>,
    mut errors: MessageReader<RewardsError>,
) {
    for pull in pulls.read() {
        println!("pulled {} entitlement(s) ({:?})", pull.entitlements, pull.reason);
    }
    for grant in grants.read() {
        let items: Vec<String> = grant.items.iter().map(|s| format!("{} x{}", s.item, s.quantity)).collect();
        println!("granted {} -> {}", grant.sku, items.join(", "));
    }
    for error in errors.read() {
        eprintln!("error: {error}");
    }
}

fn exit_when_done(
    mut fulfilled: MessageReader<EntitlementFulfilled>,
    mut done: Local<usize>,
    inventory: Single<&Inventory, With<RewardsRecipient>>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
) {
    *done += fulfilled.read().count();
    if *done == 3 {
        println!("all 3 entitlements fulfilled; inventory:");
        for (item, count) in inventory.iter() {
            println!("  {item:<8} {count}");
        }
        exit.write(AppExit::Success);
    } else if time.elapsed() > Duration::from_secs(30) {
        eprintln!("gave up after 30 s with {} of 3 fulfilled", *done);
        exit.write(AppExit::error());
    }
}
