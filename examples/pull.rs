//! Pulls only: `RewardsCorePlugin` and `EntitlementsPlugin`, with a session the game brings itself.
//!
//! Starts the Amazon sandbox in-process, seeds a customer who claimed three Prime Gaming offers, and mints
//! them an access token, standing in for the game's own Amazon login. The game inserts a `PlayerSession`,
//! pulls, grants into the player's `Inventory`, reports each item fulfilled, prints the inventory and exits 0.
//!
//! ```sh
//! cargo run --example pull
//! ```

use std::time::Duration;

use amazon_rewards_sandbox::admin::{AdminError, BlockingClient};
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

const OFFERS: [(&str, &str); 3] = [
    ("prime-gold-pack", "500 gold coins"),
    ("prime-gem-pouch", "A pouch of 25 gems"),
    ("prime-explorer-bundle", "Explorer bundle"),
];

fn main() -> AppExit {
    let sandbox = Sandbox::spawn(SandboxConfig::ephemeral().expect("temporary directory")).expect("sandbox starts");
    let session = seed(sandbox.url()).expect("seeding the sandbox");
    let data_dir = std::env::temp_dir().join(format!("bevy_amazon_rewards-pull-example-{}", std::process::id()));
    let mut config = RewardsConfig { data_dir: Some(data_dir.clone()), ..default() };
    config.use_amazon_at(sandbox.url());
    let exit = App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            bevy::asset::AssetPlugin::default(),
            RewardsCorePlugin { config: config.clone() },
            EntitlementsPlugin { config: config.entitlements },
        ))
        .insert_resource(session)
        .add_systems(Startup, |mut commands: Commands| {
            commands.spawn((Name::new("Player"), RewardsRecipient));
        })
        .add_systems(Update, (report_grants, exit_when_done))
        .run();
    let _ = std::fs::remove_dir_all(&data_dir);
    exit
}

/// Offers, a customer who claimed them, and the customer's session (as the game's own login would make it).
fn seed(url: &str) -> Result<PlayerSession, AdminError> {
    let admin = BlockingClient::new(url);
    let customer = admin.create_customer("player@example.com", "Player One", "hunter2")?;
    for (sku, title) in OFFERS {
        admin.create_offer(sku, title)?;
        admin.grant(&customer.user_id, sku, 1)?;
    }
    let token = admin.mint_token(&customer.user_id, 3600)?;
    Ok(PlayerSession::new(customer.user_id, AccessToken::new(token)))
}

fn report_grants(mut grants: MessageReader<EntitlementGranted>, mut errors: MessageReader<RewardsError>) {
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
    if *done == OFFERS.len() {
        println!("all {} entitlements fulfilled; inventory:", OFFERS.len());
        for (item, count) in inventory.iter() {
            println!("  {item:<8} {count}");
        }
        exit.write(AppExit::Success);
    } else if time.elapsed() > Duration::from_secs(30) {
        eprintln!("gave up after 30 s with {} of {} fulfilled", *done, OFFERS.len());
        exit.write(AppExit::error());
    }
}
