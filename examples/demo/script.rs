//! The scripted story: drives the whole demo with scripted input (and the scripted player in place of the
//! browser) and exits 0 only when every step happened. `--headless` runs it without a window (the integration
//! test does); `--screenshots DIR` runs it in the real window and saves a PNG of each screen on the way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::window::WindowFocused;
use bevy_amazon_rewards::prelude::*;

use super::shopper::SharedOutcomes;
use super::story::{BANK, DemoAction, Field, GemShop, Screen, SecondPc};

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
    prize_claimed: bool,
    started_step: Option<usize>,
    /// This is the second PC: its own short script.
    second_pc: bool,
    /// What the second PC printed, read on a thread of its own.
    second_pc_output: Arc<Mutex<Option<String>>>,
}

impl Script {
    pub fn new(outcomes: SharedOutcomes, screenshots: Option<PathBuf>, second_pc: bool) -> Self {
        Self {
            step: 0,
            started: Instant::now(),
            last_focus: Instant::now(),
            shot: None,
            screenshots,
            outcomes,
            refund_asked: false,
            prize_claimed: false,
            started_step: None,
            second_pc,
            second_pc_output: Arc::default(),
        }
    }

    fn steps(&self) -> &'static [&'static str] {
        if self.second_pc { &SECOND_PC_STEPS } else { &STEPS }
    }
}

const STEPS: [&str; 17] = [
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
    "the player spends 10 gems on a coin shower, checked by the studio backend",
    "the season pass: the sign-up returns its key to the game, which activates it (badge, double coins)",
    "the billing page opens",
    "the coin race ends and its winner's prize arrives, claimable",
    "the history shows every grant, the refund and the spend",
    "a second PC shows the same inventory once linked",
    "the inventory holds everything",
];

/// The second PC's script.
const SECOND_PC_STEPS: [&str; 3] = [
    "the second PC links the same Amazon account",
    "the second PC shows the inventory from the backend",
    "the second PC's history shows where it came from",
];

/// Screens saved on the way (step index → file name).
const SHOTS: [(usize, &str); 6] = [
    (1, "title.png"),
    (4, "field.png"),
    (5, "reward.png"),
    (7, "store.png"),
    (12, "store-subscribed.png"),
    (14, "history.png"),
];

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
    let steps = script.steps();
    let done = if script.second_pc { second_pc_step(world, &mut script) } else { step(world, &mut script) };
    if done {
        let prefix = if script.second_pc { "second PC " } else { "" };
        println!("{prefix}step {}/{} done: {}", script.step + 1, steps.len(), steps[script.step]);
        let shots = if script.second_pc { &[][..] } else { &SHOTS[..] };
        if let (Some(dir), Some((_, name))) = (&script.screenshots, shots.iter().find(|(s, _)| *s == script.step)) {
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            world
                .spawn(bevy::render::view::screenshot::Screenshot::primary_window())
                .observe(bevy::render::view::screenshot::save_to_disk(path.clone()));
            script.shot = Some((path, 0));
        }
        script.step += 1;
        script.started = Instant::now();
        if script.step == steps.len() {
            println!("every {prefix}step happened: the demo works end to end");
            world.write_message(AppExit::Success);
        }
    } else if script.started.elapsed() > Duration::from_secs(90) {
        eprintln!("step {} did not happen within 90 s: {}", script.step + 1, steps[script.step]);
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
            if starting {
                act(world, DemoAction::Show(Screen::Store));
                act(world, DemoAction::BuyCoinShower);
            }
            world.resource::<GemShop>().bought >= 1 && count(world, "gem") == 15
        }
        11 => {
            // The sign-up sends the player back to the game with the key; nothing to type.
            if starting {
                act(world, DemoAction::SignUpSeasonPass);
            }
            count(world, "season_badge") >= 1 && count(world, "double_coins") >= 1
        }
        12 => {
            if starting {
                act(world, DemoAction::OpenBilling);
            }
            opened_done(&script.outcomes, "/devpay/billing")
        }
        13 => {
            if starting {
                act(world, DemoAction::Show(Screen::Field));
            }
            race_prize_claimed(world, script)
        }
        14 => {
            if starting {
                act(world, DemoAction::Show(Screen::History));
            }
            let history = world.resource::<InventoryHistory>();
            let kinds: Vec<ChangeKind> = history.changes.iter().map(|c| c.kind).collect();
            !history.loading
                && kinds.contains(&ChangeKind::Spend)
                && kinds.contains(&ChangeKind::Revoke)
                && kinds.iter().filter(|k| **k == ChangeKind::Grant).count() >= 4
        }
        15 => {
            if starting {
                act(world, DemoAction::ContinueOnAnotherPc);
            }
            second_pc_agrees(world, script)
        }
        _ => {
            let totals = totals(world);
            println!("inventory: {totals:?}");
            totals.iter().all(|(_, n)| *n > 0) && world.resource::<MomentsStatus>().pending == 0
        }
    }
}

/// Whether the coin race's prize arrived and its claim page opened (the story claims it once it is there).
fn race_prize_claimed(world: &mut World, script: &mut Script) -> bool {
    let prize = world
        .resource::<MomentsStatus>()
        .rewards
        .iter()
        .find(|r| r.reward.moment.starts_with("competition/coin-race"))
        .map(|r| (r.reward.reward_id.clone(), r.claim_opened));
    match prize {
        Some((reward_id, false)) => {
            if !script.prize_claimed {
                script.prize_claimed = true;
                act(world, DemoAction::ClaimReward(reward_id));
            }
            false
        }
        Some((_, true)) => {
            let race = world.resource::<CompetitionStandings>().competitions.iter().find(|c| !c.results.is_empty());
            if let Some(winner) = race.and_then(|r| r.results.first()) {
                println!("coin race won by {} with {} coins: {}", winner.player, winner.score, winner.status);
            }
            opened_done(&script.outcomes, "/moments/r/")
        }
        None => false,
    }
}

fn totals(world: &mut World) -> [(&'static str, u64); 4] {
    ["gold", "gem", "season_badge", "double_coins"].map(|item| (item, count(world, item)))
}

/// Whether the second PC finished its script and showed this PC's inventory.
fn second_pc_agrees(world: &mut World, script: &mut Script) -> bool {
    let Some(mut child) = world.resource_mut::<SecondPc>().0.take() else { return false };
    if let Some(stdout) = child.stdout.take() {
        let output = script.second_pc_output.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut { stdout }, &mut text);
            *output.lock().unwrap() = Some(text);
        });
    }
    let exited = child.try_wait();
    world.resource_mut::<SecondPc>().0 = Some(child);
    let Ok(Some(exit)) = exited else { return false };
    let Some(output) = script.second_pc_output.lock().unwrap().clone() else { return false };
    let expected = format!("second PC inventory: {:?}", totals(world));
    let agrees = exit.success() && output.contains(&expected);
    if !agrees {
        eprintln!("the second PC did not show {expected:?} ({exit}):\n{output}");
        world.write_message(AppExit::error());
    }
    for line in output.lines().filter(|line| line.starts_with("second PC ") || line.starts_with("every second PC")) {
        println!("  {line}");
    }
    agrees
}

/// Works on the second PC's current step; true when it is done.
fn second_pc_step(world: &mut World, script: &mut Script) -> bool {
    let starting = script.started_step != Some(script.step);
    script.started_step = Some(script.step);
    match script.step {
        0 => {
            if starting {
                act(world, DemoAction::LinkAmazon);
            }
            *world.resource::<State<LoginState>>().get() == LoginState::LoggedIn
        }
        1 => {
            let status = world.resource::<RewardsStatus>();
            let synced = status.last_pull.is_some() && !status.pulling;
            if synced && count(world, "gem") > 0 {
                println!("second PC inventory: {:?}", totals(world));
                return true;
            }
            false
        }
        _ => {
            if starting {
                act(world, DemoAction::Show(Screen::History));
            }
            let history = world.resource::<InventoryHistory>();
            let done = !history.loading && !history.changes.is_empty();
            if done {
                println!("second PC history: {} changes", history.changes.len());
            }
            done
        }
    }
}
