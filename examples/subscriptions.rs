//! Subscriptions only: `RewardsCorePlugin` and `SubscriptionsPlugin`, against the studio backend.
//!
//! Starts the Amazon sandbox (with a DevPay product) and the studio backend in-process, links a game account
//! to a test customer, signs the customer up on the sandbox's sign-up pages (over HTTP, as a player would in
//! the browser) and hands the activation key to the game, which activates it through the backend and prints
//! the answer it observes. Exits 0 once the subscription is active.
//!
//! ```sh
//! cargo run --example subscriptions
//! ```

use std::collections::HashMap;
use std::time::Duration;

use amazon_rewards_backend::devpay::{DevPayConfig, DevPayProductConfig};
use amazon_rewards_backend::{BackendConfig, RunningBackend};
use amazon_rewards_protocol::dta1::KeyStore;
use amazon_rewards_protocol::sandbox_admin::DevPayProduct;
use amazon_rewards_sandbox::admin::BlockingClient;
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

const PRODUCT: &str = "SEASONPASS";
/// The client the sandbox's admin-minted tokens are issued to.
const MINTED_TOKEN_CLIENT: &str = amazon_rewards_sandbox::lwa::MINTED_TOKEN_CLIENT;

fn main() -> Result<AppExit, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::spawn(SandboxConfig::ephemeral()?)?;
    let admin = BlockingClient::new(sandbox.url());
    admin.add_devpay_product(&DevPayProduct {
        product_code: PRODUCT.into(),
        product_token: "{ProductToken}SEASONPASS".into(),
        title: "Season pass".into(),
        description: "Double coins while it lasts.".into(),
        signup_fee_cents: 0,
        monthly_fee_cents: 499,
        redirect_url: "http://127.0.0.1/amazon-rewards/subscribed".into(),
        other_redirect_urls: Vec::new(),
    })?;
    let customer = admin.create_customer("player@example.com", "Player One", "hunter2")?;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let data = std::env::temp_dir().join(format!("bevy_amazon_rewards-subscriptions-example-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let backend = runtime.block_on(studio_backend(sandbox.url(), &data))?;
    runtime.block_on(amazon_rewards_backend::accounts::create(&backend.pool, "player-one", Some(&customer.user_id)))?;
    // What linking through the backend gives the game: a studio session (here started directly, no link flow).
    let link =
        amazon_rewards_backend::link::session_without_link(&backend.pool, &customer.user_id, MINTED_TOKEN_CLIENT);
    let session = PlayerSession::new(&customer.user_id, AccessToken::new(runtime.block_on(link)?.tokens.access_token));
    let activation_key = runtime.block_on(sign_up(sandbox.url()))?;
    println!("signed up on the sandbox's pages; activation key {activation_key}");

    let config = RewardsConfig { entitlements_url: backend.url(), data_dir: Some(data.clone()), ..default() };
    let exit = App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            RewardsCorePlugin { config: config.clone() },
            SubscriptionsPlugin { config: config.subscriptions },
        ))
        .insert_resource(session)
        .add_systems(Startup, move |mut activate: MessageWriter<ActivateSubscription>| {
            activate
                .write(ActivateSubscription { activation_key: activation_key.clone(), product_code: PRODUCT.into() });
        })
        .add_observer(|answer: On<ActivationAnswered>, mut exit: MessageWriter<AppExit>| match &answer.outcome {
            Ok(status) => {
                println!(
                    "{} active, paid until {:?}, ${:.2} a month",
                    status.product_code,
                    status.paid_until,
                    status.monthly_fee_cents as f64 / 100.0
                );
                exit.write(AppExit::Success);
            }
            Err(reason) => {
                eprintln!("{} not activated: {reason}", answer.product_code);
                exit.write(AppExit::error());
            }
        })
        .run();
    runtime.block_on(backend.shutdown());
    let _ = std::fs::remove_dir_all(&data);
    Ok(exit)
}

/// The studio backend, verifying players with the sandbox's tokeninfo and activating keys with its license
/// service.
async fn studio_backend(sandbox: &str, data: &std::path::Path) -> Result<RunningBackend, Box<dyn std::error::Error>> {
    let database = format!("sqlite://{}", data.join("backend.db").display());
    let mut config = BackendConfig::new("127.0.0.1:0".parse()?, database, KeyStore::parse("SECRET KEYID")?);
    config.sandbox = true;
    config.game_client_ids = vec![MINTED_TOKEN_CLIENT.into()];
    config.devpay = Some(DevPayConfig {
        license_url: sandbox.to_owned(),
        products: HashMap::from([(
            PRODUCT.to_owned(),
            DevPayProductConfig { product_token: "{ProductToken}SEASONPASS".into(), sku: "season-pass".into() },
        )]),
        verify_every: Duration::from_secs(3600),
        signup_url: None,
        public_url: String::new(),
    });
    Ok(amazon_rewards_backend::serve(config).await?)
}

/// The player's part on the sign-up pages: sign in and confirm; the confirmation shows the activation key.
async fn sign_up(sandbox: &str) -> Result<String, Box<dyn std::error::Error>> {
    let credentials = [("email", "player@example.com"), ("password", "hunter2")];
    let url = format!("{sandbox}/devpay/signup/{PRODUCT}/confirm");
    let page = reqwest::Client::new().post(url).form(&credentials).send().await?.error_for_status()?.text().await?;
    let key = page.split(r#"<b id="activation-key">"#).nth(1).and_then(|rest| rest.split('<').next());
    Ok(key.ok_or("the confirmation page shows no activation key")?.to_owned())
}
