//! Runs a headless app for N frames on Bevy's single-threaded executor, for callgrind to count instructions
//! (`scripts/frame-cost.sh` runs it twice and takes the difference, so start-up cancels out). Nobody is
//! signed in: an idle game.
//!
//! `frame_cost <setup> <frames>`; setups: `prerequisites` (MinimalPlugins + AssetPlugin + StatesPlugin),
//! `one_state` (those plus one `States` type: Bevy's own cost of a state such as `LoginState`), `core`,
//! `login`, `entitlements`, `subscriptions`, `moments` (the core plugin plus that one), `all` (every plugin of
//! the group, achievements on) and `all_but_moments`; and, to price Bevy's parts, `one_asset` (one asset
//! type), `ten_messages` (ten message types) and `five_conditions` (five systems whose run condition is false).

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
enum SomeState {
    #[default]
    One,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let setup = args.next().unwrap_or_else(|| "all".into());
    let frames: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let data = tempfile::tempdir().expect("temp dir");
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets");
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::asset::AssetPlugin { file_path: assets.into(), ..default() },
        bevy::state::app::StatesPlugin,
    ));
    let mut config = RewardsConfig { data_dir: Some(data.path().to_owned()), ..Default::default() };
    config.login.restore_session = false;
    config.moments.achievements_path = Some("rewards.achievements.json".into());
    add_setup(&mut app, &setup, config);
    app.finish();
    app.cleanup();
    for (_, schedule) in app.world_mut().resource_mut::<Schedules>().iter_mut() {
        schedule.set_executor(bevy::ecs::schedule::SingleThreadedExecutor::default());
        schedule.set_apply_final_deferred(true);
    }
    for _ in 0..frames {
        app.update();
    }
}

/// Adds what `setup` names to the prerequisites in `app`.
fn add_setup(app: &mut App, setup: &str, config: RewardsConfig) {
    let core = RewardsCorePlugin { config: config.clone() };
    match setup {
        "prerequisites" => {}
        "one_state" => {
            app.init_state::<SomeState>();
        }
        "core" => {
            app.add_plugins(core);
        }
        "login" => {
            app.add_plugins((core, LoginPlugin { config: config.login.clone() }));
        }
        "entitlements" => {
            app.add_plugins((core, EntitlementsPlugin { config: config.entitlements.clone() }));
        }
        "subscriptions" => {
            app.add_plugins((core, SubscriptionsPlugin { config: config.subscriptions.clone() }));
        }
        "moments" => {
            app.add_plugins((core, MomentsPlugin { config: config.moments.clone() }));
        }
        "one_asset" => {
            use bevy::asset::AssetApp;
            app.init_asset::<ItemCatalog>();
        }
        "ten_messages" => {
            app.add_message::<PullEntitlements>()
                .add_message::<StoreVisited>()
                .add_message::<PullCompleted>()
                .add_message::<EntitlementGranted>()
                .add_message::<EntitlementFulfilled>()
                .add_message::<EntitlementRevoked>()
                .add_message::<RewardsError>()
                .add_message::<TokenRefused>()
                .add_message::<LoginRequest>()
                .add_message::<LoginEvent>();
        }
        "five_conditions" => {
            let never = || false;
            app.add_systems(PostUpdate, ((|| {}).run_if(never), (|| {}).run_if(never), (|| {}).run_if(never)))
                .add_systems(PostUpdate, ((|| {}).run_if(never), (|| {}).run_if(never)));
        }
        "all" => {
            app.add_plugins(AmazonRewardsPlugins { config });
        }
        "all_but_moments" => {
            app.add_plugins(AmazonRewardsPlugins { config }.build().disable::<MomentsPlugin>());
        }
        other => panic!("unknown setup {other}"),
    }
}
