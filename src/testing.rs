//! Test support for games and for this crate's own tests, in the spirit of replicon's `test_app`: a headless
//! app with the plugins (no window, no renderer), and helpers that update it until something holds.
//!
//! Point the plugins at the sandbox (`amazon_rewards_sandbox::Sandbox::spawn`, a dev-dependency) with
//! [`RewardsConfig::use_amazon_at`](crate::config::RewardsConfig::use_amazon_at), or at a studio backend:
//!
//! ```no_run
//! use std::time::Duration;
//! use bevy::prelude::*;
//! use bevy_amazon_rewards::prelude::*;
//! use bevy_amazon_rewards::testing::{headless_app, run_until};
//!
//! let mut config = RewardsConfig { data_dir: Some("target/test-data".into()), ..default() };
//! config.use_amazon_at("http://127.0.0.1:8787");
//! let mut app = headless_app("assets", AmazonRewardsPlugins { config });
//! app.world_mut().spawn(RewardsRecipient);
//! run_until(&mut app, Duration::from_secs(10), "the ledger", |app| {
//!     app.world().resource::<RewardsStatus>().ledger_ready
//! });
//! ```

use std::time::{Duration, Instant};

use bevy::app::Plugins;
use bevy::prelude::*;

/// A headless app: `MinimalPlugins`, `AssetPlugin` reading `assets_dir`, `StatesPlugin`, and `plugins`
/// (typically [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins), trimmed or not), finished and ready to
/// update.
pub fn headless_app<M>(assets_dir: &str, plugins: impl Plugins<M>) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::asset::AssetPlugin { file_path: assets_dir.to_owned(), ..default() },
        bevy::state::app::StatesPlugin,
    ))
    .add_plugins(plugins);
    app.finish();
    app.cleanup();
    app
}

/// Updates `app` until `done` holds. Panics after `timeout`, naming `what` was awaited.
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

/// Updates `app` for `duration`.
pub fn run_for(app: &mut App, duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        app.update();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The plugin's own files, for tests that check what reached the disk. Not part of the API: the formats may
/// change in any release.
#[doc(hidden)]
pub mod files {
    pub use crate::auth::tokens::tokens_path;
    pub use crate::entitlements::ledger::file::{
        EntryState, LEDGER_FILE, LedgerChange, LedgerEntry, LedgerFile, LedgerFileError, SETTLED_RETENTION, ledger_path,
    };
}
