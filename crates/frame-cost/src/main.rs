//! Runs a headless app for N frames on Bevy's single-threaded executor, for callgrind to count instructions
//! (`scripts/frame-cost.sh` runs it twice and takes the difference, so start-up cancels out).
//!
//! `frame_cost <setup> <frames>`; setups: `prerequisites` (MinimalPlugins + AssetPlugin + StatesPlugin),
//! `all` (those plus the whole plugin, nobody signed in).

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

fn prerequisites() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, bevy::asset::AssetPlugin::default(), bevy::state::app::StatesPlugin));
    app
}

fn main() {
    let mut args = std::env::args().skip(1);
    let setup = args.next().unwrap_or_else(|| "all".into());
    let frames: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let data = tempfile::tempdir().expect("temp dir");
    let mut app = prerequisites();
    let mut config = RewardsConfig { data_dir: Some(data.path().to_owned()), ..Default::default() };
    config.login.restore_session = false;
    match setup.as_str() {
        "prerequisites" => {}
        "all" => {
            app.add_plugins(AmazonRewardsPlugins { config });
        }
        other => panic!("unknown setup {other}"),
    }
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
