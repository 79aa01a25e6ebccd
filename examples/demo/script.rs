//! The scripted story: drives the whole demo with scripted input (and the scripted player in place of the
//! browser) and exits 0 only when every step happened. `--headless` runs it without a window (the integration
//! test does); `--screenshots DIR` runs it in the real window and saves a PNG of each screen on the way.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::window::WindowFocused;
use bevy_amazon_rewards::prelude::*;

use super::shopper::SharedOutcomes;
use super::story::{BANK, DemoAction, Field, Screen};

/// Where the script is.
#[derive(Resource)]
pub struct Script {
    step: usize,
    started: Instant,
    last_focus: Instant,
    /// Set while waiting for a screenshot to land on disk.
    shot: Option<(PathBuf, u32)>,
    screenshots: Option<PathBuf>,
    outcomes: SharedOutcomes,
    refund_asked: bool,
    started_step: Option<usize>,
}

impl Script {
    pub fn new(outcomes: SharedOutcomes, screenshots: Option<PathBuf>) -> Self {
        Self {
            step: 0,
            started: Instant::now(),
            last_focus: Instant::now(),
            shot: None,
            screenshots,
            outcomes,
            refund_asked: false,
            started_step: None,
        }
    }
}

const STEPS: [&str; 13] = [
    "the catalog and achievements load",
    "the player links their Amazon account in the browser",
    "the Prime Gaming gold claimed earlier arrives",
    "five deposits on the coin field reach level 3",
    "both Moments rewards arrive",
    "the player claims a reward on its page",
    "the store opens and pulls",
    "a Prime Gaming offer claimed in the browser arrives on focus",
    "an Instant Access purchase arrives",
    "a refund takes the purchase back",
    "the season pass: the sign-up returns its key to the game, which activates it (badge, double coins)",
    "the billing page opens",
    "the inventory holds everything",
];

/// Screens saved on the way (step index → file name).
const SHOTS: [(usize, &str); 5] =
    [(1, "title.png"), (4, "field.png"), (5, "reward.png"), (7, "store.png"), (11, "store-subscribed.png")];

fn count(world: &mut World, item: &str) -> u64 {
    let mut query = world.query_filtered::<&Inventory, With<RewardsRecipient>>();
    query.iter(world).next().map(|i| i.count(item)).unwrap_or(0)
}

fn act(world: &mut World, action: DemoAction) {
    world.write_message(action);
}

fn focus_regained(world: &mut World, script_last_focus: &mut Instant) {
    if script_last_focus.elapsed() > Duration::from_millis(1500) {
        *script_last_focus = Instant::now();
        world.write_message(WindowFocused { window: Entity::PLACEHOLDER, focused: true });
    }
}

fn opened_done(outcomes: &SharedOutcomes, fragment: &str) -> bool {
    outcomes.lock().unwrap().done.iter().any(|url| url.contains(fragment))
}

/// One frame of the script (an exclusive system).
pub fn run_script(world: &mut World) {
    let mut script = world.remove_resource::<Script>().expect("script");
    if let Some((path, frames)) = script.shot.take() {
        // Wait for the screenshot to be written before the screen changes.
        if !path.exists() && frames < 600 {
            script.shot = Some((path, frames + 1));
            world.insert_resource(script);
            return;
        }
    }
    let done = step(world, &mut script);
    if done {
        println!("step {}/{} done: {}", script.step + 1, STEPS.len(), STEPS[script.step]);
        if let (Some(dir), Some((_, name))) = (&script.screenshots, SHOTS.iter().find(|(s, _)| *s == script.step)) {
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            world
                .spawn(bevy::render::view::screenshot::Screenshot::primary_window())
                .observe(bevy::render::view::screenshot::save_to_disk(path.clone()));
            script.shot = Some((path, 0));
        }
        script.step += 1;
        script.started = Instant::now();
        if script.step == STEPS.len() {
            println!("every step happened: the demo works end to end");
            world.write_message(AppExit::Success);
        }
    } else if script.started.elapsed() > Duration::from_secs(90) {
        eprintln!("step {} did not happen within 90 s: {}", script.step + 1, STEPS[script.step]);
        for error in &script.outcomes.lock().unwrap().errors {
            eprintln!("  scripted player: {error}");
        }
        if let Some(error) = &world.resource::<RewardsStatus>().last_error {
            eprintln!("  plugin: {error}");
        }
        world.write_message(AppExit::error());
    }
    world.insert_resource(script);
}

/// Works on the current step; true when it is done.
fn step(world: &mut World, script: &mut Script) -> bool {
    let starting = script.started_step != Some(script.step);
    script.started_step = Some(script.step);
    match script.step {
        0 => world.resource::<Achievements>().iter().count() == 3 && world.resource::<Assets<ItemCatalog>>().len() == 1,
        1 => {
            if starting {
                act(world, DemoAction::LinkAmazon);
            }
            world.contains_resource::<AmazonAccount>()
                && *world.resource::<State<LoginState>>().get() == LoginState::LoggedIn
        }
        2 => count(world, "gold") >= 500,
        3 => {
            if starting {
                act(world, DemoAction::Show(Screen::Field));
            }
            let field = world.resource::<Field>().clone();
            if field.deposits >= 5 && field.level() >= 3 {
                return true;
            }
            let target = if field.carried >= 4 {
                BANK
            } else {
                field
                    .coins
                    .iter()
                    .copied()
                    .min_by(|a, b| a.distance(field.player).total_cmp(&b.distance(field.player)))
                    .unwrap_or(BANK)
            };
            act(world, DemoAction::WalkTowards(target));
            false
        }
        4 => world.resource::<MomentsStatus>().rewards.len() >= 2,
        5 => {
            if starting {
                let reward = world.resource::<MomentsStatus>().rewards[0].reward.reward_id.clone();
                act(world, DemoAction::ClaimReward(reward));
            }
            opened_done(&script.outcomes, "/moments/r/")
        }
        6 => {
            if starting {
                act(world, DemoAction::Show(Screen::Store));
            }
            let status = world.resource::<RewardsStatus>();
            !status.pulling && status.last_pull.is_some_and(|t| t.elapsed() < script.started.elapsed())
        }
        7 => {
            if starting {
                act(world, DemoAction::ClaimPrimeOffer("prime-gem-pouch"));
            }
            if opened_done(&script.outcomes, "/prime-gaming/claim/") {
                focus_regained(world, &mut script.last_focus);
            }
            count(world, "gem") >= 25
        }
        8 => {
            if starting {
                act(world, DemoAction::BuyInstantAccess);
            }
            if opened_done(&script.outcomes, "/instant-access/store") {
                focus_regained(world, &mut script.last_focus);
            }
            count(world, "gem") >= 125
        }
        9 => {
            let order = script.outcomes.lock().unwrap().order_page.clone();
            if !script.refund_asked
                && let Some(order) = order
            {
                script.refund_asked = true;
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    if let Err(error) = runtime.block_on(super::shopper::refund(&order)) {
                        eprintln!("refund failed: {error}");
                    }
                });
            }
            focus_regained(world, &mut script.last_focus);
            count(world, "gem") == 25
        }
        10 => {
            // The sign-up sends the player back to the game with the key; nothing to type.
            if starting {
                act(world, DemoAction::SignUpSeasonPass);
            }
            count(world, "season_badge") >= 1 && count(world, "double_coins") >= 1
        }
        11 => {
            if starting {
                act(world, DemoAction::OpenBilling);
            }
            opened_done(&script.outcomes, "/devpay/billing")
        }
        _ => {
            let totals = [
                ("gold", count(world, "gold")),
                ("gem", count(world, "gem")),
                ("season_badge", count(world, "season_badge")),
                ("double_coins", count(world, "double_coins")),
            ];
            println!("inventory: {totals:?}");
            totals.iter().all(|(_, n)| *n > 0) && world.resource::<MomentsStatus>().pending == 0
        }
    }
}
