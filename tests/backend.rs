//! The game through the studio backend: an Instant Access purchase signed as Amazon signs it reaches the
//! backend, the game pulls it from the backend's feed, grants and reports it; a revocation takes it back and
//! is reported once; the same for a subscription. The player's token is vouched for by the sandbox's LWA.

mod common;

use std::time::Duration;

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
use common::studio::*;
#[test]
fn purchases_and_subscriptions_from_the_backend_are_granted_then_revoked_once() {
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("buyer@example.com");
    let studio = Studio::start(&fixture.url());
    let player = studio.link_account("buyer", &customer.user_id);
    let token = studio.session(&fixture, "buyer@example.com");

    studio.amazon_calls(json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate", "userId": player, "purchaseToken": "pt-1"}));
    studio.amazon_calls(json!({"operation": "SubscriptionActivate", "subscriptionId": "sub-1", "productId": "season-pass", "userId": player}));

    let data = tempfile::tempdir().unwrap();
    // The game talks to the studio backend instead of Amazon: a configuration change only.
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    collect::<EntitlementRevoked>(&mut app);
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);

    run_until(&mut app, WAIT, "both fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 2);
    let inventory_now = inventory(&mut app);
    assert_eq!((inventory_now.count("gem"), inventory_now.count("season_badge")), (100, 1));
    let sources: Vec<_> = collected::<EntitlementGranted>(&app).iter().map(|g| g.source.clone().unwrap()).collect();
    assert_eq!(sources, ["INSTANT_ACCESS", "SUBSCRIPTION"]);
    assert!(studio.column("SELECT fulfilled_at FROM ia_purchases WHERE purchase_token = $1", "pt-1").is_some());

    // Customer service refunds the purchase; the subscription is not renewed.
    studio.amazon_calls(json!({"operation": "Revoke", "reason": "CUSTOMER_SERVICE_REQUEST", "productId": "ia-gem-crate", "userId": player, "purchaseToken": "pt-1"}));
    studio.amazon_calls(json!({"operation": "SubscriptionDeactivate", "subscriptionId": "sub-1", "reason": "NOT_RENEWED", "period": "REGULAR"}));
    run_for(&mut app, Duration::from_millis(60));
    app.world_mut().write_message(StoreVisited);
    run_until(&mut app, WAIT, "both revoked", |app| collected::<EntitlementRevoked>(app).len() == 2);
    let revoked = collected::<EntitlementRevoked>(&app);
    assert_eq!(revoked[0].taken, vec![ItemStack { item: "gem".into(), quantity: 100 }]);
    assert!(revoked.iter().all(|r| r.missing.is_empty()));
    let inventory_now = inventory(&mut app);
    assert_eq!((inventory_now.count("gem"), inventory_now.count("season_badge")), (0, 0));
    // The game can tell the player how the subscription ended (Amazon's deactivation reason and period).
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "the ended subscription listed", |app| {
        app.world().resource::<Subscriptions>().instant_access().first().is_some_and(|s| !s.active)
    });
    let ended = app.world().resource::<Subscriptions>().instant_access()[0].clone();
    assert_eq!((ended.subscription_id.as_str(), ended.product_id.as_str()), ("sub-1", "season-pass"));
    assert_eq!((ended.ended_reason.as_deref(), ended.ended_period.as_deref()), (Some("NOT_RENEWED"), Some("REGULAR")));
    assert_eq!(ended.describe(), "not renewed");
    run_until(&mut app, WAIT, "revocations reported", |_| {
        studio.column("SELECT revoke_reported_at FROM ia_purchases WHERE purchase_token = $1", "pt-1").is_some()
            && studio
                .column("SELECT revoke_reported_at FROM ia_subscriptions WHERE subscription_id = $1", "sub-1")
                .is_some()
    });

    // Nothing is taken twice, and nothing comes back after a restart.
    app.world_mut().write_message(PullEntitlements);
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(collected::<EntitlementRevoked>(&app).len(), 2);
    assert!(collected::<RewardsError>(&app).is_empty(), "{:?}", collected::<RewardsError>(&app));
    drop(app);
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<PullCompleted>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "a pull after restart", |app| !collected::<PullCompleted>(app).is_empty());
    assert_eq!(collected::<PullCompleted>(&app)[0].entitlements, 0, "the feed is empty once everything is reported");
    assert!(collected::<EntitlementGranted>(&app).is_empty());
    assert_eq!(inventory(&mut app).count("gem"), 0);
}

#[test]
fn the_feed_refuses_tokens_lwa_does_not_vouch_for() {
    let fixture = Fixture::start();
    fixture.register_client();
    let studio = Studio::start(&fixture.url());
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, "amzn1.account.FORGED", "Atza|forged");
    run_until(&mut app, WAIT, "refused", |app| !collected::<RewardsError>(app).is_empty());
    assert_eq!(collected::<RewardsError>(&app), &[RewardsError::Pull(ApiError::Unauthorized { status: 400 })]);
}

#[test]
fn buy_on_the_amazon_page_in_a_real_browser_then_refund() {
    assert!(
        webdriver::available(),
        "install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("shopper@example.com");
    let studio = Studio::start(&fixture.url());
    studio.link_account("shopper", &customer.user_id);
    let token = studio.session(&fixture, "shopper@example.com");
    studio.register_with(&fixture, &studio.backend.url());

    let browser = webdriver::Browser::launch();
    browser.goto(&format!("{}/instant-access/store", fixture.url()));
    browser.wait_for_text("Crate of 100 gems", Duration::from_secs(20));
    browser.click("#product-ia-gem-crate");
    browser.type_into("#username", "shopper");
    browser.type_into("#email", "shopper@example.com");
    browser.type_into("#password", "pw");
    browser.click("#buy");
    browser.wait_for_text("Your order", Duration::from_secs(20));
    let order_url = browser.current_url();
    browser.reload_until(&order_url, r#"<b id="status">delivered</b>"#, Duration::from_secs(20));

    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementFulfilled>(&mut app);
    collect::<EntitlementRevoked>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "the purchase arrives", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("gem"), 100);

    // Customer service refunds it on the order page.
    browser.goto(&order_url);
    browser.click("#refund");
    // The form's POST answers with the order page listing the queued Revoke; navigating before that would
    // cancel the submission.
    browser.wait_for_text("Revoke —", Duration::from_secs(20));
    browser.reload_until(&order_url, r#"<b id="status">revoked</b>"#, Duration::from_secs(20));
    run_for(&mut app, Duration::from_millis(60));
    app.world_mut().write_message(StoreVisited);
    run_until(&mut app, WAIT, "taken back", |app| collected::<EntitlementRevoked>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("gem"), 0);
}

#[test]
fn deliveries_retry_until_the_backend_answers() {
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("patient@example.com");
    let studio = Studio::start(&fixture.url());
    let player = studio.link_account("patient", &customer.user_id);
    // Amazon already linked this customer; the game's fulfilment endpoint is down at first.
    let down = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    studio.register_with(&fixture, &studio.backend.url());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let order_url = studio.runtime.block_on(async {
        let form = [
            ("product_id", "ia-gem-crate"),
            ("username", "patient"),
            ("email", "patient@example.com"),
            ("password", "pw"),
        ];
        // First purchase while everything is up, to link the account.
        let first = http.post(format!("{}/instant-access/buy", fixture.url())).form(&form).send().await.unwrap();
        assert_eq!(first.status().as_u16(), 303);
        let vendor = amazon_rewards_protocol::sandbox_admin::InstantAccessVendor {
            linking_url: format!("{down}/instant-access/linking"),
            fulfillment_url: format!("{down}/instant-access/fulfillment"),
            key_id: "AMAZONKEY".into(),
            secret: "AMAZONSECRET".into(),
            new_account_url: None,
        };
        http.post(format!("{}/admin/instant-access/vendor", fixture.url())).json(&vendor).send().await.unwrap();
        let second = http.post(format!("{}/instant-access/buy", fixture.url())).form(&form).send().await.unwrap();
        format!("{}{}", fixture.url(), second.headers()["location"].to_str().unwrap())
    });
    let page = |url: &str| studio.runtime.block_on(async { http.get(url).send().await.unwrap().text().await.unwrap() });
    let started = std::time::Instant::now();
    while !page(&order_url).contains("not reached") {
        assert!(started.elapsed() < WAIT, "the failed attempt is shown");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(page(&order_url).contains(r#"<b id="status">pending</b>"#));
    // The backend is reachable again: the next retry delivers.
    studio.register_with(&fixture, &studio.backend.url());
    while !page(&order_url).contains(r#"<b id="status">delivered</b>"#) {
        assert!(started.elapsed() < WAIT, "delivered after a retry: {}", page(&order_url));
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = page(&order_url);
    assert!(shown.contains("Purchase — answered after") && !shown.contains("after 1 attempt"), "{shown}");
    assert_eq!(
        studio.column("SELECT COUNT(*) FROM ia_purchases WHERE user_id = $1", &player),
        Some(2),
        "both purchases arrived, each once"
    );
}

#[test]
fn a_new_customer_creates_a_game_account_with_login_with_amazon_then_buys() {
    assert!(
        webdriver::available(),
        "install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let fixture = Fixture::start();
    fixture.register_client();
    register_backend_client(&fixture);
    let customer = fixture.customer("newcomer@example.com");
    let studio = Studio::start(&fixture.url());
    studio.register_with(&fixture, &studio.backend.url());

    let browser = webdriver::Browser::launch();
    browser.goto(&format!("{}/instant-access/store", fixture.url()));
    browser.wait_for_text("Crate of 100 gems", Duration::from_secs(20));
    browser.type_into("#username", "newcomer");
    browser.type_into("#email", "newcomer@example.com");
    browser.type_into("#password", "pw");
    browser.click("#buy");
    browser.wait_for_text("Create a game account", Duration::from_secs(20));
    browser.click("#create-account");
    browser.wait_for_text("Choose a player name", Duration::from_secs(20));
    browser.type_into("#username", "newcomer");
    browser.click("#create");
    // Login with Amazon, as the backend's confidential client.
    browser.wait_for_text("Sign in", Duration::from_secs(20));
    browser.type_into("#email", "newcomer@example.com");
    browser.type_into("#password", "pw");
    browser.click("#signInSubmit");
    browser.wait_for_text("Allow access", Duration::from_secs(20));
    browser.click("#allow");
    // Back on Amazon's store, with the new account filled in.
    browser.wait_for_text("is ready. Finish your purchase", Duration::from_secs(20));
    assert!(browser.current_url().starts_with(&format!("{}/instant-access/store?linked=newcomer", fixture.url())));
    browser.type_into("#email", "newcomer@example.com");
    browser.type_into("#password", "pw");
    browser.click("#buy");
    browser.wait_for_text("Your order", Duration::from_secs(20));
    let order_url = browser.current_url();
    browser.reload_until(&order_url, r#"<b id="status">delivered</b>"#, Duration::from_secs(20));

    // The account is tied to the customer's Amazon identity, and the backend holds their refresh token.
    let linked: Option<String> = studio.runtime.block_on(async {
        sqlx::query_scalar("SELECT amazon_user_id FROM accounts WHERE username = $1")
            .bind("newcomer")
            .fetch_one(&studio.backend.pool)
            .await
            .unwrap()
    });
    assert_eq!(linked.as_deref(), Some(customer.user_id.as_str()));
    let refresh_tokens: Vec<String> = studio.runtime.block_on(async {
        sqlx::query_scalar("SELECT refresh_token FROM lwa_tokens").fetch_all(&studio.backend.pool).await.unwrap()
    });
    assert_eq!(refresh_tokens.len(), 1);
    assert!(
        refresh_tokens[0].starts_with("sealed1:") && !refresh_tokens[0].contains("Atzr|"),
        "sealed at rest: {}",
        refresh_tokens[0]
    );

    // So the game, signed in with the same Amazon account, receives the purchase.
    let token = studio.session(&fixture, "newcomer@example.com");
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "the purchase arrives", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("gem"), 100);
}

#[test]
fn the_new_account_page_is_no_open_redirect_and_signups_are_single_use() {
    let fixture = Fixture::start();
    let studio = Studio::start(&fixture.url());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |url: String| studio.runtime.block_on(async { http.get(url).send().await.unwrap().status().as_u16() });
    let backend = studio.backend.url();
    assert_eq!(get(format!("{backend}/accounts/new?return_url=https://evil.example/steal")), 400);
    assert_eq!(get(format!("{backend}/accounts/new?return_url={}/instant-access/store", fixture.url())), 200);
    assert_eq!(get(format!("{backend}/accounts/callback?code=x&state=never-issued")), 400);
    let post = studio.runtime.block_on(async {
        http.post(format!("{backend}/accounts/new"))
            .form(&[("username", "bad name!"), ("return_url", &format!("{}/instant-access/store", fixture.url()))])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(post, 400, "names are validated");
}

/// Stores `refresh` for `player` as the new-account page did before sealing was on: unsealed, no access token
/// yet (replacing what linking stored).
fn store_unsealed(studio: &Studio, player: &str, refresh: &str) {
    studio.runtime.block_on(async {
        sqlx::query(
            "INSERT INTO lwa_tokens (user_id, refresh_token, updated_at) VALUES ($1, $2, 0) ON CONFLICT (user_id)
             DO UPDATE SET refresh_token = EXCLUDED.refresh_token, access_token = NULL, access_expires_at = NULL",
        )
        .bind(player)
        .bind(refresh)
        .execute(&studio.backend.pool)
        .await
        .unwrap();
    });
}

/// What the new-account page obtains: a refresh token of the backend's confidential client for `email`.
fn backend_refresh_token(fixture: &Fixture, email: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let verifier = "b".repeat(64);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/accounts/callback";
    let mut authorize = url::Url::parse(&format!("{}/ap/oa", fixture.url())).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", BACKEND_CLIENT)
        .append_pair("scope", "games::prime profile")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let location = url::Url::parse(&fixture.consent_over_http(authorize.as_str(), email, "pw")).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tokens: Value = runtime.block_on(async {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.as_str()),
            ("client_id", BACKEND_CLIENT),
            ("client_secret", BACKEND_SECRET),
        ];
        reqwest::Client::new()
            .post(format!("{}/auth/o2/token", fixture.url()))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    tokens["refresh_token"].as_str().expect("a refresh token").to_owned()
}

#[test]
fn prime_gaming_entitlements_are_relayed_through_the_backend() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    register_backend_client(&fixture);
    let customer = fixture.customer("relayed@example.com");
    fixture.grant(&customer.user_id, GOLD, 2);
    let studio = Studio::start(&fixture.url());
    let player = studio.link_account("relayed", &customer.user_id);
    let token = studio.session(&fixture, "relayed@example.com");
    let refresh = backend_refresh_token(&fixture, "relayed@example.com");
    store_unsealed(&studio, &player, &refresh);
    studio.amazon_calls(json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate", "userId": player, "purchaseToken": "mixed-1"}));

    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "all three fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 3);
    let mut sources: Vec<_> = collected::<EntitlementGranted>(&app).iter().map(|g| g.source.clone().unwrap()).collect();
    sources.sort();
    assert_eq!(sources, ["INSTANT_ACCESS", "PRIME_GAMING", "PRIME_GAMING"]);
    assert_eq!(inventory(&mut app).count("gold"), 1000);
    assert_eq!(inventory(&mut app).count("gem"), 100);
    // The backend reported them to Prime Gaming, once each, and rotated its refresh token on the way.
    let statuses = fixture.statuses(&customer.user_id);
    assert!(statuses.iter().all(|s| s.fulfilled && s.report_count == 1), "{statuses:?}");
    let stored: String = studio.runtime.block_on(async {
        sqlx::query_scalar("SELECT refresh_token FROM lwa_tokens WHERE user_id = $1")
            .bind(&player)
            .fetch_one(&studio.backend.pool)
            .await
            .unwrap()
    });
    assert_ne!(stored, refresh, "rotated");
    // Stored unsealed (as before a token key was set), then sealed when rotated.
    assert!(stored.starts_with("sealed1:") && !stored.contains("Atzr|"), "sealed at rest: {stored}");
}

#[test]
fn a_subscription_started_and_ended_on_the_amazon_pages_reaches_the_game() {
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("subscriber@example.com");
    let studio = Studio::start(&fixture.url());
    studio.link_account("subscriber", &customer.user_id);
    let token = studio.session(&fixture, "subscriber@example.com");
    studio.register_with(&fixture, &studio.backend.url());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let store_page = studio.runtime.block_on(async {
        http.get(format!("{}/instant-access/store", fixture.url())).send().await.unwrap().text().await.unwrap()
    });
    assert!(store_page.contains("Season pass") && store_page.contains("$9.99 / month"), "price shown per month");
    // Buys the season pass on the Amazon page; the order page's URL.
    let buy = || {
        studio.runtime.block_on(async {
            let form = [
                ("product_id", "season-pass"),
                ("username", "subscriber"),
                ("email", "subscriber@example.com"),
                ("password", "pw"),
            ];
            let bought = http.post(format!("{}/instant-access/buy", fixture.url())).form(&form).send().await.unwrap();
            format!("{}{}", fixture.url(), bought.headers()["location"].to_str().unwrap())
        })
    };
    let order_url = buy();
    let page = |url: &str| studio.runtime.block_on(async { http.get(url).send().await.unwrap().text().await.unwrap() });
    let started = std::time::Instant::now();
    // Waits until the order page at `url` shows `text`.
    let wait_for = |url: &str, text: &str| {
        while !page(url).contains(text) {
            assert!(started.elapsed() < WAIT, "{text}: {}", page(url));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&order_url, r#"<b id="status">active</b>"#);
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementRevoked>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "pass granted", |app| collected::<EntitlementGranted>(app).len() == 1);
    assert_eq!(collected::<EntitlementGranted>(&app)[0].source.as_deref(), Some("SUBSCRIPTION"));
    assert_eq!(inventory(&mut app).count("season_badge"), 1);

    // Amazon asks how the licenses are used and changes their number (SDK v3), from the order page.
    studio.runtime.block_on(http.post(&order_url).form(&[("action", "licenses")]).send()).unwrap();
    wait_for(&order_url, "SubscriptionGet — answered after 1 attempt(s): OK (1 licenses used, 0 unused)");
    studio
        .runtime
        .block_on(http.post(&order_url).form(&[("action", "set_licenses"), ("licenses", "3")]).send())
        .unwrap();
    wait_for(&order_url, "SubscriptionUpdate — answered after 1 attempt(s): OK (1 licenses used, 2 unused)");
    wait_for(&order_url, r#"<b id="status">active</b>"#);

    // The customer ends it on the order page.
    studio.runtime.block_on(async {
        let ended = http.post(&order_url).form(&[("action", "end")]).send().await.unwrap();
        assert_eq!(ended.status().as_u16(), 303);
    });
    wait_for(&order_url, r#"<b id="status">ended</b>"#);
    run_for(&mut app, Duration::from_millis(60));
    app.world_mut().write_message(StoreVisited);
    run_until(&mut app, WAIT, "pass taken back", |app| collected::<EntitlementRevoked>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("season_badge"), 0);

    // Bought again, then moved to another account (REASSIGN, SDK v3): it ends the same way.
    let second_order = buy();
    wait_for(&second_order, r#"<b id="status">active</b>"#);
    studio.runtime.block_on(http.post(&second_order).form(&[("action", "reassign")]).send()).unwrap();
    wait_for(&second_order, r#"<b id="status">ended</b>"#);
    let reassigned: i64 = studio.runtime.block_on(async {
        sqlx::query_scalar("SELECT COUNT(*) FROM ia_subscriptions WHERE deactivate_reason = 'REASSIGN'")
            .fetch_one(&studio.backend.pool)
            .await
            .unwrap()
    });
    assert_eq!(reassigned, 1);
}

/// The hardening review's finding 6: concurrent relayed syncs of one player each refreshed with the same
/// refresh token; LWA's rotation took the reuse for theft, revoked the family, and `invalid_grant` deleted the
/// row. Now one refresh serves every request, in this process and in a sibling on the same database.
#[test]
fn concurrent_relayed_syncs_of_one_player_refresh_once_across_processes() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    register_backend_client(&fixture);
    let customer = fixture.customer("burst@example.com");
    fixture.grant(&customer.user_id, GOLD, 1);
    let lwa = recorder::Recorder::start(&fixture.url());
    let lwa_url = lwa.url().to_owned();
    let studio = Studio::start_with(&fixture.url(), |config| config.lwa_client.as_mut().unwrap().api_url = lwa_url);
    let player = studio.link_account("burst", &customer.user_id);
    let token = studio.session(&fixture, "burst@example.com");
    let refresh = backend_refresh_token(&fixture, "burst@example.com");
    let sibling = studio.sibling();
    let urls = [studio.backend.url(), sibling.url()];
    store_unsealed(&studio, &player, &refresh);
    let answers: Vec<(u16, Value)> = studio.runtime.block_on(async {
        let http = reqwest::Client::new();
        let calls: Vec<_> = (0..16)
            .map(|i| {
                let request =
                    http.get(format!("{}/api/entitlements", urls[i % 2])).header("x-amz-access-token", &token);
                tokio::spawn(async move {
                    let response = request.send().await.unwrap();
                    (response.status().as_u16(), response.json::<Value>().await.unwrap_or_default())
                })
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        answers
    });
    for (status, page) in &answers {
        assert_eq!(*status, 200, "{page}");
        let ids: Vec<&str> =
            page["Entitlements"].as_array().unwrap().iter().filter_map(|e| e["EntitlementId"].as_str()).collect();
        assert!(ids.iter().any(|id| id.starts_with("pg:")), "relayed: {page}");
    }
    let refreshes = lwa.calls("POST", "/auth/o2/token");
    let refreshes: Vec<_> = refreshes
        .iter()
        .filter(|call| String::from_utf8_lossy(&call.body).contains("grant_type=refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 1, "one refresh for sixteen requests on two processes");
    let still_linked = studio.column("SELECT updated_at FROM lwa_tokens WHERE user_id = $1", &player);
    assert!(still_linked.is_some(), "the link survived");
    studio.runtime.block_on(sibling.shutdown());
}

/// The hardening review's low findings on the new-account page: the OAuth `state` was not bound to the browser
/// that started the sign-up (login CSRF: an attacker's half-finished sign-up could complete in the victim's
/// browser), and sign-up rows never expired.
#[test]
fn a_sign_up_finishes_only_in_the_browser_that_started_it_and_old_ones_are_purged() {
    let fixture = Fixture::start();
    register_backend_client(&fixture);
    let studio = Studio::start(&fixture.url());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let backend = studio.backend.url();
    studio.runtime.block_on(async {
        sqlx::query(
            "INSERT INTO account_signups (state, username, return_url, pkce_verifier, created_at) VALUES ('old', 'x', 'y', 'z', 0)",
        )
        .execute(&studio.backend.pool)
        .await
        .unwrap();
    });
    let form = [("username", "mallory"), ("return_url", &format!("{}/instant-access/store", fixture.url()))];
    let started = studio.runtime.block_on(http.post(format!("{backend}/accounts/new")).form(&form).send()).unwrap();
    assert_eq!(started.status().as_u16(), 302);
    let cookie = started.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("rewards_signup="), "{cookie}");
    let location = url::Url::parse(started.headers()["location"].to_str().unwrap()).unwrap();
    let state = location.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let pending = |state: &'static str| studio.column("SELECT COUNT(*) FROM account_signups WHERE state = $1", state);
    assert_eq!(pending("old"), Some(0), "expired sign-ups are purged");

    // A flood of sign-ups is refused (the rate limit counts rows, so it holds across backend processes).
    studio.runtime.block_on(async {
        for n in 0..600 {
            sqlx::query("INSERT INTO account_signups (state, username, return_url, pkce_verifier, created_at) VALUES ($1, 'f', 'r', 'v', $2)")
                .bind(format!("flood-{n}"))
                .bind(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64)
                .execute(&studio.backend.pool)
                .await
                .unwrap();
        }
    });
    let flooded = studio.runtime.block_on(http.post(format!("{backend}/accounts/new")).form(&form).send()).unwrap();
    assert_eq!(flooded.status().as_u16(), 503, "rate limited");

    let callback = format!("{backend}/accounts/callback?state={state}&code=attacker-code");
    let in_another_browser = studio.runtime.block_on(async {
        let response = http.get(&callback).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    assert_eq!(in_another_browser.0, 400);
    assert!(in_another_browser.1.contains("another browser"), "{}", in_another_browser.1);
    let still_there: Option<i64> = studio.runtime.block_on(async {
        sqlx::query_scalar("SELECT COUNT(*) FROM account_signups WHERE state = $1")
            .bind(&state)
            .fetch_one(&studio.backend.pool)
            .await
            .unwrap()
    });
    assert_eq!(still_there, Some(1), "a wrong browser does not even use it up");
    let in_the_same_browser = studio.runtime.block_on(async {
        let response = http.get(&callback).header("cookie", &cookie).send().await.unwrap();
        response.text().await.unwrap()
    });
    assert!(!in_the_same_browser.contains("another browser"), "{in_the_same_browser}");
}

/// The hardening review: a failed refresh-token insert at sign-up was ignored (`let _ =`), leaving an account
/// the Prime Gaming relay can never serve. Now the account and its token are stored together or not at all.
#[test]
fn a_sign_up_whose_refresh_token_cannot_be_stored_creates_no_account() {
    let fixture = Fixture::start();
    register_backend_client(&fixture);
    fixture.customer("atomic@example.com");
    let studio = Studio::start(&fixture.url());
    studio.runtime.block_on(async {
        let trigger =
            "CREATE TRIGGER no_tokens BEFORE INSERT ON lwa_tokens BEGIN SELECT RAISE(ABORT, 'disk full'); END";
        sqlx::raw_sql(trigger).execute(&studio.backend.pool).await.unwrap();
    });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let return_url = format!("{}/instant-access/store", fixture.url());
    let form = [("username", "atomic"), ("return_url", return_url.as_str())];
    let started = studio
        .runtime
        .block_on(http.post(format!("{}/accounts/new", studio.backend.url())).form(&form).send())
        .unwrap();
    let cookie = started.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let callback = fixture.consent_over_http(&authorize, "atomic@example.com", "pw");
    let (status, page) = studio.runtime.block_on(async {
        let response = http.get(&callback).header("cookie", &cookie).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    assert_eq!(status, 500, "{page}");
    assert!(page.contains("database failed"), "{page}");
    let accounts = studio.column("SELECT COUNT(*) FROM accounts WHERE username = $1", "atomic");
    assert_eq!(accounts, Some(0), "no account without its refresh token");
}
