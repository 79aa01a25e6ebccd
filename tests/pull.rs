//! The pull → grant → fulfil loop against the real sandbox over HTTP, with a real ledger file.

mod common;

use std::time::Duration;

use bevy::prelude::*;
use bevy::window::WindowFocused;
use bevy_amazon_rewards::prelude::*;
use bevy_amazon_rewards::testing::files::{EntryState, LedgerFile, ledger_path};
use common::*;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn entitlements_are_pulled_granted_and_reported_exactly_once_across_pages() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("pages@example.com");
    // 250 entitlements: three pages of the sandbox's default 100.
    fixture.grant(&player.user_id, GOLD, 200);
    fixture.grant(&player.user_id, GEMS, 48);
    fixture.grant(&player.user_id, BUNDLE, 2);
    let token = fixture.token(&player.user_id, 3600);

    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);

    run_until(&mut app, WAIT, "all 250 fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 250);
    let inventory = inventory(&mut app);
    assert_eq!(inventory.count("gold"), 200 * 500 + 2 * 100);
    assert_eq!(inventory.count("gem"), 48 * 25);
    assert_eq!(inventory.count("sword"), 2);
    assert_eq!(inventory.count("outfit"), 2);
    assert_eq!(collected::<EntitlementGranted>(&app).len(), 250);
    assert!(collected::<RewardsError>(&app).is_empty(), "{:?}", collected::<RewardsError>(&app));

    let statuses = fixture.statuses(&player.user_id);
    assert_eq!(statuses.len(), 250);
    assert!(statuses.iter().all(|s| s.fulfilled && s.report_count == 1), "each reported exactly once");

    // More pulls find nothing new and grant nothing twice.
    app.world_mut().write_message(PullEntitlements);
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(collected::<EntitlementGranted>(&app).len(), 250);

    // The ledger on disk agrees with the inventory.
    let ledger = LedgerFile::load(&ledger_path(data.path(), &player.user_id), &player.user_id).unwrap();
    assert_eq!(ledger.entitlements.len(), 250);
    assert!(ledger.entitlements.values().all(|e| e.state == EntryState::Reported));
    assert_eq!(ledger.inventory.get("gold").copied(), Some(inventory.count("gold")));
}

#[test]
fn the_inventory_survives_a_restart_without_granting_again() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("restart@example.com");
    fixture.grant(&player.user_id, BUNDLE, 3);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();

    {
        let mut app = headless_app(test_config(&fixture.url(), data.path()));
        collect::<EntitlementFulfilled>(&mut app);
        spawn_recipient(&mut app);
        login(&mut app, &player.user_id, &token);
        run_until(&mut app, WAIT, "3 fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 3);
    }

    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<PullCompleted>(&mut app);
    login(&mut app, &player.user_id, &token);
    // The recipient appears late, after the ledger is loaded: it still gets the restored inventory.
    run_until(&mut app, WAIT, "first pull", |app| !collected::<PullCompleted>(app).is_empty());
    spawn_recipient(&mut app);
    app.update();
    let inventory = inventory(&mut app);
    assert_eq!(inventory.count("sword"), 3);
    assert_eq!(inventory.count("gold"), 300);
    assert!(collected::<EntitlementGranted>(&app).is_empty(), "nothing granted twice");
}

#[test]
fn an_unknown_sku_is_reported_as_an_error_and_left_unfulfilled() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.offer("mystery-box");
    let player = fixture.customer("unknown@example.com");
    let mystery = fixture.grant(&player.user_id, "mystery-box", 1).remove(0);
    fixture.grant(&player.user_id, GOLD, 1);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<RewardsError>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);

    run_until(&mut app, WAIT, "gold fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    // Pull a few more times: the unknown SKU is complained about once, never granted, never reported.
    for _ in 0..3 {
        app.world_mut().write_message(PullEntitlements);
        run_for(&mut app, Duration::from_millis(120));
    }
    let errors = collected::<RewardsError>(&app);
    assert_eq!(errors, &[RewardsError::UnknownSku { entitlement_id: mystery.clone(), sku: "mystery-box".into() }]);
    assert_eq!(inventory(&mut app).count("gold"), 500);
    let statuses = fixture.statuses(&player.user_id);
    let mystery_status = statuses.iter().find(|s| s.entitlement_id == mystery).unwrap();
    assert!(!mystery_status.fulfilled && mystery_status.report_count == 0, "not lost, not reported");
}

#[test]
fn without_a_recipient_nothing_is_granted_until_one_appears() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("norecipient@example.com");
    let ids = fixture.grant(&player.user_id, GEMS, 2);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<RewardsError>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    login(&mut app, &player.user_id, &token);

    run_until(&mut app, WAIT, "no-recipient errors", |app| collected::<RewardsError>(app).len() == 2);
    for (error, id) in collected::<RewardsError>(&app).iter().zip(&ids) {
        assert_eq!(error, &RewardsError::NoRecipient { entitlement_id: id.clone() });
    }
    assert!(fixture.statuses(&player.user_id).iter().all(|s| !s.fulfilled && s.report_count == 0));

    spawn_recipient(&mut app);
    run_until(&mut app, WAIT, "granted once a recipient exists", |app| {
        collected::<EntitlementFulfilled>(app).len() == 2
    });
    assert_eq!(inventory(&mut app).count("gem"), 50);
}

#[test]
fn triggers_pull_on_focus_store_visit_state_entry_and_request() {
    #[derive(States, Debug, Clone, PartialEq, Eq, Hash, Default)]
    enum Screen {
        #[default]
        Title,
        Store,
    }

    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("triggers@example.com");
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    app.init_state::<Screen>().pull_entitlements_on_enter(Screen::Store);
    collect::<PullCompleted>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "startup pull", |app| !collected::<PullCompleted>(app).is_empty());
    let first = collected::<PullCompleted>(&app)[0].reason;
    assert!(matches!(first, PullReason::LoggedIn | PullReason::Startup), "{first:?}");

    let expect_pull = |app: &mut App, trigger: &dyn Fn(&mut App), reason: PullReason| {
        // The previous claim is reported first, so each pull sees exactly the new claim.
        run_until(app, WAIT, "previous claims reported", |_| all_fulfilled(&fixture, &player.user_id));
        fixture.grant(&player.user_id, GOLD, 1);
        let before = collected::<PullCompleted>(app).len();
        run_for(app, Duration::from_millis(60)); // past the minimum interval
        trigger(app);
        run_until(app, WAIT, "a triggered pull", |app| collected::<PullCompleted>(app).len() > before);
        let pull = collected::<PullCompleted>(app)[before].clone();
        assert_eq!(pull.reason, reason);
        assert_eq!(pull.entitlements, 1);
    };
    let window = app.world_mut().spawn_empty().id();
    expect_pull(
        &mut app,
        &|app| {
            app.world_mut().write_message(WindowFocused { window, focused: false });
            app.world_mut().write_message(WindowFocused { window, focused: true });
        },
        PullReason::FocusRegained,
    );
    expect_pull(
        &mut app,
        &|app| {
            app.world_mut().write_message(StoreVisited);
        },
        PullReason::StoreVisited,
    );
    expect_pull(
        &mut app,
        &|app| {
            app.world_mut().resource_mut::<NextState<Screen>>().set(Screen::Store);
        },
        PullReason::StoreVisited,
    );
    expect_pull(
        &mut app,
        &|app| {
            app.world_mut().write_message(PullEntitlements);
        },
        PullReason::Requested,
    );
    run_until(&mut app, WAIT, "all fulfilled", |_| all_fulfilled(&fixture, &player.user_id));
    assert_eq!(inventory(&mut app).count("gold"), 4 * 500);
}

#[test]
fn a_burst_of_triggers_is_coalesced() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("burst@example.com");
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&fixture.url(), data.path());
    config.entitlements.pacing.min_interval = Duration::from_millis(500);
    let mut app = headless_app(config);
    collect::<PullCompleted>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    // 100 triggers over ~0.8 s of frames (longer on a loaded machine: the bound below follows the clock).
    let started = std::time::Instant::now();
    for frame in 0..400 {
        if frame % 4 == 0 {
            app.world_mut().write_message(StoreVisited);
        }
        app.update();
        std::thread::sleep(Duration::from_millis(2));
    }
    let pulls = collected::<PullCompleted>(&app).len();
    // At most one pull per 500 ms minimum interval, plus the first one.
    let allowed = 1 + (started.elapsed().as_millis() / 500) as usize;
    assert!((1..=allowed.max(2)).contains(&pulls), "100 triggers in {:?} made {pulls} pulls", started.elapsed());
}

#[test]
fn a_refused_token_stops_pulling_until_a_new_session_arrives() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("expired@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let expired = fixture.token(&player.user_id, -1);
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<RewardsError>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &expired);
    run_until(&mut app, WAIT, "token refused", |app| !collected::<RewardsError>(app).is_empty());
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(
        collected::<RewardsError>(&app),
        &[RewardsError::Pull(ApiError::Unauthorized { status: 400 })],
        "refused once, no retry loop with a dead token"
    );
    let fresh = fixture.token(&player.user_id, 3600);
    login(&mut app, &player.user_id, &fresh);
    run_until(&mut app, WAIT, "fulfilled with the new token", |app| collected::<EntitlementFulfilled>(app).len() == 1);
}

/// The hardening review's finding 5: two instances for one player each kept a copy of the ledger and
/// overwrote the whole file; an entitlement granted and reported by one vanished when the other saved. Now the
/// first instance holds the data directory and the second changes nothing there.
#[test]
fn a_second_instance_on_the_same_data_directory_changes_nothing() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("twins@example.com");
    fixture.grant(&player.user_id, GOLD, 2);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let game = |token: &str| {
        let mut app = headless_app(test_config(&fixture.url(), data.path()));
        collect::<EntitlementGranted>(&mut app);
        collect::<EntitlementFulfilled>(&mut app);
        collect::<RewardsError>(&mut app);
        spawn_recipient(&mut app);
        login(&mut app, &player.user_id, token);
        app
    };
    let mut first = game(&token);
    let mut second = game(&token);
    run_until(&mut first, WAIT, "the first instance granted both", |app| {
        collected::<EntitlementFulfilled>(app).len() == 2
    });
    run_for(&mut second, Duration::from_millis(200));
    let told =
        collected::<RewardsError>(&second).iter().any(|e| matches!(e, RewardsError::AnotherInstanceRunning { .. }));
    assert!(told, "{:?}", collected::<RewardsError>(&second));
    assert!(collected::<EntitlementGranted>(&second).is_empty(), "the second instance granted nothing");
    assert!(!second.world().resource::<RewardsStatus>().ledger_ready);

    // Entitlements keep arriving; only the first instance takes them.
    fixture.grant(&player.user_id, GEMS, 1);
    first.world_mut().write_message(PullEntitlements);
    second.world_mut().write_message(PullEntitlements);
    run_until(&mut first, WAIT, "the gems", |app| collected::<EntitlementFulfilled>(app).len() == 3);
    run_for(&mut second, Duration::from_millis(200));
    assert!(collected::<EntitlementGranted>(&second).is_empty());
    drop(second);
    drop(first);

    // A fresh start reads everything the first instance granted.
    let mut again = game(&token);
    run_until(&mut again, WAIT, "the ledger", |app| settled(app));
    let inventory = inventory(&mut again);
    assert_eq!((inventory.count("gold"), inventory.count("gem")), (1000, 25), "{inventory:?}");
    assert!(collected::<EntitlementGranted>(&again).is_empty(), "nothing granted twice");
}
