//! **Coin Bank**, the demo game: a player links their Amazon account, collects coins and banks them (which
//! earns Moments rewards), and in the store claims Prime Gaming loot, buys with Instant Access and subscribes
//! to a season pass — all against the local Amazon sandbox and the studio backend, which start in-process.
//!
//! ```sh
//! cargo run --example demo                      # the game, in a window
//! cargo run --example demo -- --headless        # the whole story, scripted, no window; exits 0 when it all worked
//! cargo run --example demo -- --screenshots docs/screenshots   # the story in the window, saving each screen
//! cargo run --example demo -- --sandbox http://127.0.0.1:8787 --backend http://127.0.0.1:8788
//! ```
//!
//! `--data-dir DIR` (or `DEMO_DATA_DIR`) keeps the game's, sandbox's and backend's data somewhere other than
//! the OS data dir; `DEMO_SANDBOX_URL` / `DEMO_BACKEND_URL` work like the flags. `--second-pc` (with
//! `--sandbox` and `--backend`) runs the game as on another PC: its own game data under `second-pc/`, the same
//! account and inventory once linked (the title screen's "Continue on another PC" starts it).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy::window::WindowResolution;
use bevy_amazon_rewards::prelude::*;

#[path = "demo/panels.rs"]
mod panels;
#[path = "demo/script.rs"]
mod script;
#[path = "demo/services.rs"]
mod services;
#[path = "demo/shopper.rs"]
mod shopper;
#[path = "demo/story.rs"]
mod story;
#[path = "demo/ui.rs"]
mod ui;

struct Options {
    headless: bool,
    second_pc: bool,
    screenshots: Option<PathBuf>,
    external: Option<(String, String)>,
    data_dir: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut headless = false;
    let mut second_pc = false;
    let mut screenshots = None;
    let mut sandbox = std::env::var("DEMO_SANDBOX_URL").ok();
    let mut backend = std::env::var("DEMO_BACKEND_URL").ok();
    let mut data_dir = std::env::var("DEMO_DATA_DIR").ok().map(PathBuf::from);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--headless" => headless = true,
            "--second-pc" => second_pc = true,
            "--screenshots" => screenshots = Some(PathBuf::from(value()?)),
            "--sandbox" => sandbox = Some(value()?),
            "--backend" => backend = Some(value()?),
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other} (see the doc comment of examples/demo.rs)")),
        }
    }
    let external = match (sandbox, backend) {
        (Some(s), Some(b)) => Some((s, b)),
        (None, None) => None,
        _ => return Err("give both --sandbox and --backend, or neither".into()),
    };
    if second_pc && external.is_none() {
        return Err("--second-pc plays against the first PC's services: give --sandbox and --backend".into());
    }
    let data_dir = data_dir
        .or_else(|| directories::ProjectDirs::from("", "", "coin_bank_demo").map(|d| d.data_dir().to_owned()))
        .ok_or("no data directory: pass --data-dir")?;
    Ok(Options { headless, second_pc, screenshots, external, data_dir })
}

/// Why a window cannot open here, said in words instead of winit's panic. Only X11 and Wayland desktops name
/// their display in the environment; Windows and macOS always have one.
fn missing_display() -> Option<String> {
    let unix_desktop = cfg!(all(unix, not(target_os = "macos"), not(target_os = "ios"), not(target_os = "android")));
    let named = |var| std::env::var_os(var).is_some_and(|value| !value.is_empty());
    (unix_desktop && !named("DISPLAY") && !named("WAYLAND_DISPLAY")).then(|| {
        "No display: neither DISPLAY nor WAYLAND_DISPLAY is set, so the demo cannot open its window.\n\
         Run it on a desktop, or without a window: `cargo run --example demo -- --headless` plays the scripted \
         story, and `xvfb-run -a cargo run --example demo` gives it a virtual X display."
            .to_owned()
    })
}

fn main() -> AppExit {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            return AppExit::error();
        }
    };
    let windowed = !options.headless;
    if let Some(missing) = windowed.then(missing_display).flatten() {
        eprintln!("{missing}");
        return AppExit::error();
    }
    let scripted = options.headless || options.screenshots.is_some();
    // A few minutes to play; the scripted story's race is over in 20 s.
    let race_seconds = if scripted { 20 } else { 180 };
    let services = match services::start(options.external.clone(), &options.data_dir, race_seconds) {
        Ok(services) => services,
        Err(error) => {
            eprintln!("cannot start the demo's services: {error}");
            return AppExit::error();
        }
    };
    println!("Amazon sandbox:  {}", services.sandbox);
    println!("Studio backend:  {}", services.backend);
    println!("Sign in as {} / {}", services::EMAIL, services::PASSWORD);
    println!("Data:            {}", options.data_dir.display());

    let outcomes: shopper::SharedOutcomes = Arc::new(Mutex::new(shopper::Outcomes::default()));
    let mut rewards = AmazonRewardsPlugins::new()
        .with_amazon_at(&services.sandbox)
        .with_studio_backend(&services.backend)
        .with_client_id(services::CLIENT_ID)
        .with_data_dir(options.data_dir.join(if options.second_pc { "second-pc" } else { "game" }))
        .with_achievements("rewards.achievements.json")
        .with_competitions();
    rewards = rewards.with_subscription_pages(
        format!("{}/devpay/signup", services.sandbox),
        format!("{}/devpay/billing", services.sandbox),
    );
    if scripted {
        rewards = rewards.with_browser(shopper::scripted_browser(services.sandbox.clone(), outcomes.clone()));
    }

    let mut app = App::new();
    if options.headless {
        app.add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(5))),
            bevy::asset::AssetPlugin::default(),
            bevy::state::app::StatesPlugin,
            bevy::log::LogPlugin::default(),
        ));
    } else {
        app.add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: if options.second_pc {
                    "Coin Bank — second PC".into()
                } else {
                    "Coin Bank — Amazon rewards demo".into()
                },
                resolution: WindowResolution::new(1280, 720),
                ..default()
            }),
            ..default()
        }))
        .add_plugins(ui::DemoUiPlugin);
    }
    app.add_plugins((rewards, story::StoryPlugin)).insert_resource(story::Links {
        sandbox: services.sandbox.clone(),
        backend: services.backend.clone(),
        data_dir: options.data_dir.clone(),
        second_pc: options.second_pc,
        headless: scripted,
    });
    if scripted {
        let script = script::Script::new(outcomes, options.screenshots.clone(), options.second_pc);
        app.insert_resource(script).add_systems(Update, script::run_script.before(story::StoryPlugin::ACT));
    }
    let exit = app.run();
    drop(services);
    exit
}
