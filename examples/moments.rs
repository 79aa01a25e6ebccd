//! Moments only: `RewardsCorePlugin` and `MomentsPlugin`, against the studio backend.
//!
//! Starts the Amazon sandbox (with a live Moments campaign) and the studio backend in-process. The game, with
//! the shipped achievement catalog, counts five deposits; the fifth unlocks "Make 5 deposits", whose moment goes
//! through the durable outbox to the backend, which asks the Rewards API for a reward. The game prints the
//! reward and its claim URL and exits 0.
//!
//! ```sh
//! cargo run --example moments
//! ```

use std::time::Duration;

use amazon_rewards_backend::moments::{MomentCampaign, MomentsConfig};
use amazon_rewards_backend::{BackendConfig, RunningBackend};
use amazon_rewards_protocol::dta1::KeyStore;
use amazon_rewards_protocol::moments::admin::NewCampaign;
use amazon_rewards_protocol::moments::{CampaignState, RewardKind};
use amazon_rewards_sandbox::admin::BlockingClient;
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

fn main() -> Result<AppExit, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::spawn(SandboxConfig::ephemeral()?)?;
    let admin = BlockingClient::new(sandbox.url());
    let api_key = admin.create_moments_api_key()?.api_key;
    let campaign = admin.create_campaign(&NewCampaign {
        api_key: api_key.clone(),
        name: "Five deposits".into(),
        kind: RewardKind::Digital,
        title: "500 bonus gems".into(),
        description: "For making 5 deposits at the bank.".into(),
        image_url: "https://example.com/gems.png".into(),
        cost_per_moment_cents: 250,
        budget_cents: 10_000,
        inventory: 100,
    })?;
    for state in [CampaignState::PendingApproval, CampaignState::ApprovedTest, CampaignState::Live] {
        admin.set_campaign_state(&campaign.campaign_id, state)?;
    }
    let customer = admin.create_customer("player@example.com", "Player One", "hunter2")?;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let data = std::env::temp_dir().join(format!("bevy_amazon_rewards-moments-example-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let backend = runtime.block_on(studio_backend(sandbox.url(), &data, &api_key, &campaign.campaign_id))?;
    // What linking through the backend gives the game: a studio session (here started directly, no link flow).
    let link = amazon_rewards_backend::link::session_without_link(
        &backend.pool,
        &customer.user_id,
        amazon_rewards_sandbox::lwa::MINTED_TOKEN_CLIENT,
    );
    let session = PlayerSession::new(&customer.user_id, AccessToken::new(runtime.block_on(link)?.tokens.access_token));

    let mut config = RewardsConfig { entitlements_url: backend.url(), data_dir: Some(data.clone()), ..default() };
    config.moments.achievements_path = Some("rewards.achievements.json".into());
    let exit = App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            bevy::asset::AssetPlugin::default(),
            RewardsCorePlugin { config: config.clone() },
            MomentsPlugin { config: config.moments },
        ))
        .insert_resource(session)
        .add_systems(Startup, |mut progress: MessageWriter<AchievementProgress>| {
            for _ in 0..5 {
                progress.write(AchievementProgress::add("five_deposits", 1));
            }
        })
        .add_systems(Update, show_moments)
        .run();
    runtime.block_on(backend.shutdown());
    let _ = std::fs::remove_dir_all(&data);
    Ok(exit)
}

fn show_moments(
    mut unlocked: MessageReader<AchievementUnlocked>,
    mut moments: MessageReader<MomentEvent>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
) {
    for achievement in unlocked.read() {
        println!("unlocked \"{}\"; its moment is on its way", achievement.title);
    }
    for event in moments.read() {
        match event {
            MomentEvent::Rewarded(reward) => {
                println!("rewarded: {} — claim it at {}", reward.title, reward.reward_url);
                exit.write(AppExit::Success);
            }
            MomentEvent::NotRewarded { moment, reason } => println!("{moment}: no reward ({reason})"),
            MomentEvent::Delayed { moment, error, .. } => println!("{moment}: delayed ({error})"),
            MomentEvent::Challenges(_) => {}
        }
    }
    if time.elapsed() > Duration::from_secs(30) {
        eprintln!("no reward after 30 s");
        exit.write(AppExit::error());
    }
}

/// The studio backend, holding the Moments API key and the campaign behind the `five-deposits` moment.
async fn studio_backend(
    sandbox: &str,
    data: &std::path::Path,
    api_key: &str,
    campaign_id: &str,
) -> Result<RunningBackend, Box<dyn std::error::Error>> {
    let database = format!("sqlite://{}", data.join("backend.db").display());
    let mut config = BackendConfig::new("127.0.0.1:0".parse()?, database, KeyStore::parse("SECRET KEYID")?);
    config.sandbox = true;
    config.game_client_ids = vec![amazon_rewards_sandbox::lwa::MINTED_TOKEN_CLIENT.into()];
    let mut moments = MomentsConfig::new(sandbox, api_key);
    let campaign = MomentCampaign { campaign_id: campaign_id.into(), cost_per_moment_cents: 250, budget_cents: 10_000 };
    moments.moments.insert("five-deposits".into(), campaign);
    config.moments = Some(moments);
    Ok(amazon_rewards_backend::serve(config).await?)
}
