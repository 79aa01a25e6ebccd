//! The plugin group trimmed as the README shows: each combination works on its own, and a disabled plugin
//! leaves nothing of itself behind.

mod common;

use std::time::Duration;

use bevy::app::Plugins;
use bevy::ecs::message::Messages;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use bevy_amazon_rewards::testing;
use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn app_with<M>(plugins: impl Plugins<M>) -> App {
    let mut app = testing::headless_app(&assets_dir(), plugins);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    app
}

#[test]
fn without_moments_and_subscriptions_pulls_still_grant_and_nothing_of_them_is_registered() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("trimmed@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let data = tempfile::tempdir().unwrap();
    let group = AmazonRewardsPlugins { config: test_config(&fixture.url(), data.path()) }
        .build()
        .disable::<MomentsPlugin>()
        .disable::<SubscriptionsPlugin>();
    let mut app = app_with(group);
    login(&mut app, &player.user_id, &fixture.token(&player.user_id, 3600));
    run_until(&mut app, WAIT, "granted and fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("gold"), 500);
    let world = app.world();
    assert!(!world.contains_resource::<Messages<MomentEvent>>());
    assert!(!world.contains_resource::<Messages<ActivateSubscription>>());
    assert!(!world.contains_resource::<Subscriptions>() && !world.contains_resource::<MomentsStatus>());
}

/// A game with its own Amazon login: no `LoginPlugin`, a `PlayerSession` it inserts, and `TokenRefused` when a
/// service refuses its token, after which it inserts a fresh one and the pull goes through.
#[test]
fn a_game_with_its_own_login_inserts_the_session_and_renews_it_on_token_refused() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("ownlogin@example.com");
    fixture.grant(&player.user_id, GEMS, 1);
    let data = tempfile::tempdir().unwrap();
    let group =
        AmazonRewardsPlugins { config: test_config(&fixture.url(), data.path()) }.build().disable::<LoginPlugin>();
    let mut app = app_with(group);
    collect::<TokenRefused>(&mut app);
    assert!(!app.world().contains_resource::<Messages<LoginRequest>>());
    assert!(!app.world().contains_resource::<State<LoginState>>());
    // An expired token: the service refuses it, and the game is told.
    login(&mut app, &player.user_id, &fixture.token(&player.user_id, -60));
    run_until(&mut app, WAIT, "the refusal", |app| !collected::<TokenRefused>(app).is_empty());
    assert!(collected::<EntitlementFulfilled>(&app).is_empty());
    login(&mut app, &player.user_id, &fixture.token(&player.user_id, 3600));
    run_until(&mut app, WAIT, "granted with the new token", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("gem"), 25);
}

/// The core with one service: Moments alone loads its catalog, subscriptions alone answer a request.
#[test]
fn a_service_works_with_the_core_alone() {
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config("http://127.0.0.1:9", data.path());
    config.moments.achievements_path = Some("rewards.achievements.json".into());
    let core = RewardsCorePlugin { config: config.clone() };
    let mut moments = testing::headless_app(&assets_dir(), (core.clone(), MomentsPlugin { config: config.moments }));
    run_until(&mut moments, WAIT, "achievements loaded", |app| {
        app.world().resource::<Achievements>().iter().count() > 0
    });
    assert!(!moments.world().contains_resource::<RewardsStatus>(), "no entitlements plugin, no pull status");

    let mut subscriptions =
        testing::headless_app(&assets_dir(), (core, SubscriptionsPlugin { config: config.subscriptions }));
    collect::<SubscriptionEvent>(&mut subscriptions);
    subscriptions
        .world_mut()
        .write_message(ActivateSubscription { activation_key: "KEY".into(), product_code: "PASS".into() });
    run_until(&mut subscriptions, WAIT, "the answer", |app| !collected::<SubscriptionEvent>(app).is_empty());
    assert_eq!(
        collected::<SubscriptionEvent>(&subscriptions)[0],
        SubscriptionEvent::ActivationFailed { product_code: "PASS".into(), reason: "not signed in".into() }
    );
}

/// The achievement catalog is read through the asset source, once: a missing or invalid file is a typed
/// error, achievements stay empty, and the valid catalog becomes a resource.
#[test]
fn an_unreadable_achievement_catalog_is_an_error_not_a_panic() {
    let assets = tempfile::tempdir().unwrap();
    std::fs::write(assets.path().join("bad.achievements.json"), br#"{"achievements":[{"id":""}]}"#).unwrap();
    std::fs::copy(
        std::path::Path::new(&assets_dir()).join("rewards.achievements.json"),
        assets.path().join("good.achievements.json"),
    )
    .unwrap();
    for (file, readable) in
        [("missing.achievements.json", false), ("bad.achievements.json", false), ("good.achievements.json", true)]
    {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config("http://127.0.0.1:9", data.path());
        config.moments.achievements_path = Some(file.into());
        let core = RewardsCorePlugin { config: config.clone() };
        let mut app =
            testing::headless_app(assets.path().to_str().unwrap(), (core, MomentsPlugin { config: config.moments }));
        collect::<RewardsError>(&mut app);
        run_until(&mut app, WAIT, "the catalog read or refused", |app| {
            app.world().contains_resource::<AchievementCatalog>() || !collected::<RewardsError>(app).is_empty()
        });
        assert_eq!(app.world().contains_resource::<AchievementCatalog>(), readable, "{file}");
        if !readable {
            let errors = collected::<RewardsError>(&app);
            assert!(matches!(&errors[0], RewardsError::Achievement(why) if why.contains(file)), "{file}: {errors:?}");
            assert_eq!(app.world().resource::<Achievements>().iter().count(), 0);
        }
    }
}
