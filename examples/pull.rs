//! Headless tour of the pull → grant → fulfil loop.
//!
//! Starts the Amazon sandbox in-process on an ephemeral port, seeds a test customer who has claimed three
//! Prime Gaming offers, then runs a Bevy app with the plugin: it signs the player in with Login with Amazon
//! (a scripted "player" answers the sandbox's sign-in and consent pages over HTTP, where a real game opens
//! the system browser), pulls the entitlements, grants them into the player's inventory, reports them
//! fulfilled, prints the inventory and exits 0.
//!
//! ```sh
//! cargo run --example pull
//! ```

use std::time::Duration;

use std::sync::Arc;

use amazon_rewards_protocol::sandbox_admin::RegisterClient;
use amazon_rewards_sandbox::admin::{AdminError, BlockingClient};
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

fn main() -> AppExit {
    let sandbox = Sandbox::spawn(SandboxConfig::ephemeral().expect("temporary directory")).expect("sandbox starts");
    println!("Amazon sandbox listening on {}", sandbox.url());
    seed(sandbox.url()).expect("seeding the sandbox");
    let data_dir = std::env::temp_dir().join(format!("bevy_amazon_rewards-pull-example-{}", std::process::id()));

    let exit = App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            bevy::asset::AssetPlugin::default(),
            bevy::log::LogPlugin::default(),
            bevy::state::app::StatesPlugin,
            AmazonRewardsPlugins::new()
                .with_amazon_at(sandbox.url())
                .with_client_id(CLIENT_ID)
                .with_data_dir(&data_dir)
                .with_browser(scripted_player(sandbox.url().to_owned())),
        ))
        .add_systems(Startup, |mut commands: Commands, mut login: MessageWriter<LoginRequest>| {
            commands.spawn((Name::new("Player"), RewardsRecipient));
            login.write(LoginRequest::WithBrowser);
        })
        .add_systems(Update, (report_progress, exit_when_done))
        .run();
    let _ = std::fs::remove_dir_all(&data_dir);
    exit
}

const CLIENT_ID: &str = "amzn1.application-oa2-client.example";

/// Registers the game's Login with Amazon client, offers, and a customer who claimed them.
fn seed(url: &str) -> Result<(), AdminError> {
    let admin = BlockingClient::new(url);
    let offers = [
        ("prime-gold-pack", "500 gold coins"),
        ("prime-gem-pouch", "A pouch of 25 gems"),
        ("prime-explorer-bundle", "Explorer bundle"),
    ];
    for (sku, title) in offers {
        admin.create_offer(sku, title)?;
    }
    admin.register_client(&RegisterClient {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        redirect_uris: vec!["http://127.0.0.1/amazon-rewards/callback".into()],
        name: "Pull example".into(),
    })?;
    let customer = admin.create_customer("player@example.com", "Player One", "hunter2")?;
    for (sku, _) in offers {
        admin.grant(&customer.user_id, sku, 1)?;
    }
    Ok(())
}

/// Stands in for the system browser: a player who signs in on the sandbox's page, allows access, and is
/// redirected back to the game's loopback listener.
fn scripted_player(sandbox: String) -> bevy_amazon_rewards::auth::BrowserOpener {
    Arc::new(move |authorize_url: &str| {
        let (sandbox, authorize_url) = (sandbox.clone(), authorize_url.to_owned());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let signed_in = runtime.block_on(async {
                let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
                let query = authorize_url.split_once('?').map(|(_, q)| q).unwrap_or_default();
                let mut form: Vec<(String, String)> =
                    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                form.push(("email".into(), "player@example.com".into()));
                form.push(("password".into(), "hunter2".into()));
                let consent_page = http.post(format!("{sandbox}/ap/signin")).form(&form).send().await?.text().await?;
                let ticket = consent_page
                    .split(r#"name="ticket" value=""#)
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default()
                    .to_owned();
                form.retain(|(name, _)| name != "email" && name != "password");
                form.push(("ticket".into(), ticket));
                form.push(("decision".into(), "allow".into()));
                let consent = http.post(format!("{sandbox}/ap/consent")).form(&form).send().await?;
                let back_to_game = consent.headers()["location"].to_str().unwrap_or_default().to_owned();
                http.get(back_to_game).send().await?.error_for_status()
            });
            if let Err(error) = signed_in {
                eprintln!("the scripted player could not sign in: {error}");
            }
        });
        Ok(())
    })
}

fn report_progress(
    mut logins: MessageReader<LoginEvent>,
    mut pulls: MessageReader<PullCompleted>,
    mut grants: MessageReader<EntitlementGranted>,
    mut errors: MessageReader<RewardsError>,
) {
    for login in logins.read() {
        match login {
            LoginEvent::BrowserOpened { .. } => println!("sign-in page opened"),
            LoginEvent::SignedIn(account) => println!("signed in as {} ({})", account.name, account.user_id),
            LoginEvent::Failed(error) => eprintln!("sign-in failed: {error}"),
            _ => {}
        }
    }
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
