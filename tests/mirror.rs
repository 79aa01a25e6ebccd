//! The game mirrors the inventory the studio backend owns (`InventorySource::StudioBackend`), over real HTTP
//! against a real backend and the sandbox: grants arrive as messages and in the `Inventory`, spends are checked
//! on the backend and answered once, the history pages; a wiped data directory shows the same inventory after
//! linking again; two devices and a second instance at once lose nothing and grant nothing twice; a spend
//! interrupted by killing the game process is applied once; offline, perks last the grace and then go off.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use amazon_rewards_backend::inventory::InventoryConfig;
use amazon_rewards_backend::inventory::catalog::ServerCatalog;
use bevy::prelude::*;
use bevy_amazon_rewards::config::LedgerStep;
use bevy_amazon_rewards::prelude::*;
use common::studio::*;
use common::*;
use serde_json::json;

fn with_inventory(config: &mut amazon_rewards_backend::BackendConfig) {
    let path = Path::new(&assets_dir()).join("rewards.catalog.json");
    let mut inventory = InventoryConfig::new(ServerCatalog::load(&path).unwrap());
    inventory.sync_interval = Duration::ZERO;
    config.inventory = Some(inventory);
}

/// The spend answers an app received, by key.
#[derive(Resource, Default)]
struct SpendAnswers(Vec<SpendResult>);

/// A game in backend mode on `data_dir`, signed in with `token` as `player`.
fn game(backend_url: &str, data_dir: &Path, player: &str, token: &str, tweak: impl FnOnce(&mut RewardsConfig)) -> App {
    let mut config = test_config(backend_url, data_dir);
    config.login.studio_backend = Some(backend_url.to_owned());
    config.entitlements.source = InventorySource::StudioBackend;
    tweak(&mut config);
    let mut app = headless_app(config);
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementRevoked>(&mut app);
    collect::<InventoryChanged>(&mut app);
    collect::<RewardsError>(&mut app);
    app.init_resource::<SpendAnswers>();
    app.add_observer(|answer: On<SpendResult>, mut answers: ResMut<SpendAnswers>| answers.0.push((*answer).clone()));
    spawn_recipient(&mut app);
    login(&mut app, player, token);
    app
}

fn spend(app: &mut App, key: &str, gems: u64) {
    let items = vec![ItemStack { item: "gem".into(), quantity: gems }];
    app.world_mut().write_message(SpendItems { key: key.into(), items });
}

fn answer(app: &mut App, key: &str) -> SpendOutcome {
    let what = format!("the answer to spend {key}");
    run_until(app, Duration::from_secs(20), &what, |app: &mut App| {
        app.world().resource::<SpendAnswers>().0.iter().any(|a| a.key == key)
    });
    let answers = &app.world().resource::<SpendAnswers>().0;
    answers.iter().find(|a| a.key == key).unwrap().outcome.clone()
}

fn gems_become(app: &mut App, gems: u64) {
    let what = format!("{gems} gems");
    run_until(app, Duration::from_secs(20), &what, |app: &mut App| inventory(app).count("gem") == gems);
}

fn ask_sync(app: &mut App) {
    app.world_mut().write_message(PullEntitlements);
}

fn purchase(studio: &Studio, account: &str, token: &str) {
    studio.amazon_calls(json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate", "userId": account, "purchaseToken": token}));
}

fn grants_made(studio: &Studio, account: &str) -> usize {
    studio.texts("SELECT change_key FROM inventory_changes WHERE user_id = $1 AND kind = 'grant'", account).len()
}

fn account_of(studio: &Studio, amazon_user_id: &str) -> String {
    studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", amazon_user_id).remove(0)
}

#[test]
fn the_game_mirrors_grants_spends_and_history_and_a_wiped_data_dir_shows_the_same_inventory() {
    let fixture = Fixture::start();
    let customer = fixture.customer("mirror@example.com");
    let studio = Studio::start_with(&fixture.url(), with_inventory);
    let session = studio.session(&fixture, "mirror@example.com");
    let account = account_of(&studio, &customer.user_id);
    purchase(&studio, &account, "pt-1");
    let data_dir = tempfile::tempdir().unwrap();
    let mut app = game(&studio.backend.url(), data_dir.path(), &customer.user_id, &session, |_| {});
    gems_become(&mut app, 100);
    let granted = collected::<EntitlementGranted>(&app).to_vec();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!((granted[0].sku.as_str(), granted[0].source.as_deref()), ("ia-gem-crate", Some("INSTANT_ACCESS")));

    // Spent on the backend: the answer, the new count; a spend the player cannot afford spends nothing.
    spend(&mut app, "sword-1", 30);
    assert_eq!(answer(&mut app, "sword-1"), SpendOutcome::Spent { version: 2 });
    assert_eq!(inventory(&mut app).count("gem"), 70);
    spend(&mut app, "castle-1", 500);
    assert_eq!(answer(&mut app, "castle-1"), SpendOutcome::Insufficient { item: "gem".into(), have: 70, want: 500 });
    assert_eq!(inventory(&mut app).count("gem"), 70);
    assert_eq!(app.world().resource::<RewardsStatus>().pending_spends, 0);
    assert!(app.world().resource::<RewardsStatus>().inventory_age().is_some());
    assert_eq!(app.world().resource::<RewardsStatus>().environment, Environment::Sandbox, "a sandbox says so");

    // A purchase made meanwhile arrives at the next sync, with its toast; the spend shows as a change too.
    purchase(&studio, &account, "pt-2");
    ask_sync(&mut app);
    gems_become(&mut app, 170);
    let changes: Vec<_> = collected::<InventoryChanged>(&app).iter().flat_map(|c| c.changes.clone()).collect();
    let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.key.as_str())).collect();
    assert_eq!(kinds, [(ChangeKind::Grant, "ia:pt-1"), (ChangeKind::Spend, "sword-1"), (ChangeKind::Grant, "ia:pt-2")]);
    assert_eq!(collected::<EntitlementGranted>(&app).len(), 2);

    // The history, paged by the backend, newest first.
    app.world_mut().write_message(LoadHistory::Newest);
    run_until(&mut app, Duration::from_secs(10), "three history lines", |app: &mut App| {
        app.world().resource::<InventoryHistory>().changes.len() == 3
    });
    let history = app.world().resource::<InventoryHistory>();
    assert_eq!(history.changes[0].key, "ia:pt-2");
    assert!(!history.more && !history.loading);
    assert!(collected::<RewardsError>(&app).is_empty(), "{:?}", collected::<RewardsError>(&app));
    drop(app);

    // Wiped: a new install, linked again, shows the same inventory (nothing granted again).
    drop(data_dir);
    let fresh_dir = tempfile::tempdir().unwrap();
    let relinked = studio.session(&fixture, "mirror@example.com");
    let mut app = game(&studio.backend.url(), fresh_dir.path(), &customer.user_id, &relinked, |_| {});
    gems_become(&mut app, 170);
    assert_eq!(grants_made(&studio, &account), 2, "nothing granted again");
    let cache = fresh_dir.path().join("players");
    assert!(std::fs::read_dir(&cache).unwrap().next().is_some(), "the snapshot is cached");
}

#[test]
fn two_devices_and_a_second_instance_at_once_lose_nothing_and_grant_nothing_twice() {
    let fixture = Fixture::start();
    let customer = fixture.customer("devices@example.com");
    let studio = Studio::start_with(&fixture.url(), with_inventory);
    let (first, second) =
        (studio.session(&fixture, "devices@example.com"), studio.session(&fixture, "devices@example.com"));
    let account = account_of(&studio, &customer.user_id);
    purchase(&studio, &account, "pt-1");
    let other_process = studio.sibling();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut pc_a = game(&studio.backend.url(), dir_a.path(), &customer.user_id, &first, |_| {});
    let mut pc_b = game(&other_process.url(), dir_b.path(), &customer.user_id, &second, |_| {});
    // A second instance on the first PC's data directory: it shows the inventory, it spends nothing.
    let mut instance_two = game(&studio.backend.url(), dir_a.path(), &customer.user_id, &first, |_| {});
    for app in [&mut pc_a, &mut pc_b, &mut instance_two] {
        gems_become(app, 100);
    }
    spend(&mut instance_two, "second-instance", 1);
    assert!(matches!(
        answer(&mut instance_two, "second-instance"),
        SpendOutcome::Refused(RewardsError::AnotherInstanceRunning { .. })
    ));

    // Both PCs spend at once while two more purchases arrive.
    for round in 0..10 {
        spend(&mut pc_a, &format!("a-{round}"), 1);
        spend(&mut pc_b, &format!("b-{round}"), 2);
    }
    let answered = |app: &App| app.world().resource::<SpendAnswers>().0.len();
    let started = std::time::Instant::now();
    while answered(&pc_a) < 10 || answered(&pc_b) < 10 {
        pc_a.update();
        pc_b.update();
        match answered(&pc_a) {
            3 if grants_made(&studio, &account) == 1 => purchase(&studio, &account, "pt-2"),
            6 if grants_made(&studio, &account) == 2 => purchase(&studio, &account, "pt-3"),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(30), "spends unanswered");
        std::thread::sleep(Duration::from_millis(1));
    }
    for app in [&pc_a, &pc_b] {
        let answers = &app.world().resource::<SpendAnswers>().0;
        assert!(answers.iter().all(|a| matches!(a.outcome, SpendOutcome::Spent { .. })), "{:?}", answers);
    }
    let expected = 300 - 10 - 20;
    for app in [&mut pc_a, &mut pc_b, &mut instance_two] {
        ask_sync(app);
        gems_become(app, expected);
    }
    assert_eq!(grants_made(&studio, &account), 3);
    let spends =
        studio.texts("SELECT change_key FROM inventory_changes WHERE user_id = $1 AND kind = 'spend'", &account);
    assert_eq!(spends.len(), 20, "{spends:?}");
    // Each PC announced each grant once (the spends' answers showed the count before the sync told why).
    for app in [&mut pc_a, &mut pc_b] {
        run_until(app, Duration::from_secs(10), "three grants announced", |app: &mut App| {
            collected::<EntitlementGranted>(app).len() >= 3
        });
        run_for(app, Duration::from_millis(200));
        let mut seen: HashMap<String, usize> = HashMap::new();
        for grant in collected::<EntitlementGranted>(app) {
            *seen.entry(grant.entitlement_id.clone()).or_default() += 1;
        }
        assert_eq!((seen.len(), seen.values().all(|n| *n == 1)), (3, true), "{seen:?}");
    }
}

const CHILD_TEST: &str = "spend_crash_child";
const MARKER: &str = "CHILD-REACHED";

/// The child: a game that spends 30 gems and parks at the step `SPEND_AT` names, waiting to be killed.
#[test]
#[ignore = "child process of the spend crash tests"]
fn spend_crash_child() {
    let Ok(backend) = std::env::var("SPEND_BACKEND") else { return };
    let (player, token) = (std::env::var("SPEND_PLAYER").unwrap(), std::env::var("SPEND_TOKEN").unwrap());
    let data_dir = std::env::var("SPEND_DATA_DIR").unwrap();
    let target = std::env::var("SPEND_AT").unwrap();
    let mut app = game(&backend, Path::new(&data_dir), &player, &token, |config| {
        config.entitlements.step_observer = Some(Arc::new(move |step| {
            if format!("{step:?}") == target {
                println!("{MARKER}");
                use std::io::Write;
                let _ = std::io::stdout().flush();
                loop {
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
        }));
    });
    gems_become(&mut app, 100);
    spend(&mut app, "interrupted", 30);
    run_for(&mut app, Duration::from_secs(30));
    panic!("the child never reached {}", std::env::var("SPEND_AT").unwrap());
}

fn spend_killed_at(step: LedgerStep) {
    let fixture = Fixture::start();
    let customer = fixture.customer("crash@example.com");
    let studio = Studio::start_with(&fixture.url(), with_inventory);
    let session = studio.session(&fixture, "crash@example.com");
    let account = account_of(&studio, &customer.user_id);
    purchase(&studio, &account, "pt-1");
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("SPEND_BACKEND", studio.backend.url())
        .env("SPEND_PLAYER", &customer.user_id)
        .env("SPEND_TOKEN", &session)
        .env("SPEND_DATA_DIR", data_dir.path())
        .env("SPEND_AT", format!("{step:?}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let reached = lines.by_ref().map_while(Result::ok).any(|line| line.contains(MARKER));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reached, "the child did not reach {step:?}");

    // The game starts again on the same data directory: the saved spend is sent again, applied once.
    let mut app = game(&studio.backend.url(), data_dir.path(), &customer.user_id, &session, |_| {});
    assert!(matches!(answer(&mut app, "interrupted"), SpendOutcome::Spent { .. }));
    gems_become(&mut app, 70);
    ask_sync(&mut app);
    run_for(&mut app, Duration::from_millis(500));
    assert_eq!(inventory(&mut app).count("gem"), 70);
    let spends =
        studio.texts("SELECT change_key FROM inventory_changes WHERE user_id = $1 AND kind = 'spend'", &account);
    assert_eq!(spends, ["interrupted"]);
    assert_eq!(app.world().resource::<RewardsStatus>().pending_spends, 0);
}

#[test]
fn a_game_killed_after_saving_a_spend_sends_it_once_on_restart() {
    spend_killed_at(LedgerStep::SpendSaved);
}

#[test]
fn a_game_killed_after_the_backend_answered_a_spend_applies_it_once() {
    spend_killed_at(LedgerStep::SpendAnswered);
}

/// Seconds added to the wall clock of the grace test's games.
static CLOCK_AHEAD: AtomicU64 = AtomicU64::new(0);

fn ahead_clock() -> SystemTime {
    SystemTime::now() + Duration::from_secs(CLOCK_AHEAD.load(Ordering::SeqCst))
}

#[test]
fn offline_the_last_snapshot_shows_and_perks_last_the_grace_then_go_off() {
    let fixture = Fixture::start();
    let customer = fixture.customer("offline@example.com");
    let studio = Studio::start_with(&fixture.url(), with_inventory);
    let session = studio.session(&fixture, "offline@example.com");
    let account = account_of(&studio, &customer.user_id);
    purchase(&studio, &account, "pt-1");
    studio.amazon_calls(json!({"operation": "SubscriptionActivate", "subscriptionId": "sub-1", "productId": "season-pass", "userId": account}));
    let data_dir = tempfile::tempdir().unwrap();
    let backend_url = studio.backend.url();
    let day = 86_400;
    let grace = |config: &mut RewardsConfig| {
        config.entitlements.offline_grace = Duration::from_secs(3 * day);
        config.entitlements.wall_clock = ahead_clock;
    };
    let mut app = game(&backend_url, data_dir.path(), &customer.user_id, &session, grace);
    gems_become(&mut app, 100);
    assert!(inventory(&mut app).has("season_badge"));
    drop(app);
    drop(studio);

    // The backend is gone. Two days on, the game starts from its cache: everything shows, perks included.
    CLOCK_AHEAD.store(2 * day, Ordering::SeqCst);
    let mut app = game(&backend_url, data_dir.path(), &customer.user_id, &session, grace);
    gems_become(&mut app, 100);
    run_for(&mut app, Duration::from_millis(300));
    assert!(inventory(&mut app).has("season_badge") && inventory(&mut app).has("double_coins"));
    let status = app.world().resource::<RewardsStatus>();
    assert!(status.inventory_synced_at.is_some() && status.last_error.is_some(), "offline: {status:?}");
    spend(&mut app, "offline-spend", 10);
    assert!(matches!(answer(&mut app, "offline-spend"), SpendOutcome::Offline(_)), "nothing is spent offline");
    assert_eq!(inventory(&mut app).count("gem"), 100);
    assert_eq!(app.world().resource::<RewardsStatus>().pending_spends, 1, "saved, sent once the backend is back");

    // Past the grace, while running: the perks go off; counts stay.
    CLOCK_AHEAD.store(3 * day + 1, Ordering::SeqCst);
    run_until(&mut app, Duration::from_secs(5), "the perks off", |app: &mut App| !inventory(app).has("season_badge"));
    assert!(!inventory(&mut app).has("double_coins"));
    assert_eq!(inventory(&mut app).count("gem"), 100);
}
