//! The backend mode's login, over real HTTP: the studio backend links the player (in headless Chromium, and by
//! code pairing), the game holds only a studio session, sessions rotate and end, unlinking deletes what the
//! backend stored of the Amazon account, a broken link prompts relinking, a Login with Amazon token opens no
//! game-facing route, and two backend processes on one PostgreSQL link one player once.

mod common;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use amazon_rewards_protocol::sandbox_admin::FaultKind;
use amazon_rewards_sandbox::SandboxConfig;
use amazon_rewards_sandbox::lwa::LwaSettings;
use bevy::prelude::*;
use bevy_amazon_rewards::auth::BrowserOpener;
use bevy_amazon_rewards::prelude::*;
use bevy_amazon_rewards::testing::files::tokens_path;
use common::studio::*;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A game in backend mode: it links, pulls and reports through `backend` only.
fn backend_mode_game(backend: &str, data: &std::path::Path, open: BrowserOpener) -> App {
    let mut config = test_config(backend, data);
    config.client_id = CLIENT_ID.into();
    config.login.studio_backend = Some(backend.to_owned());
    config.login.open_browser = open;
    let mut app = headless_app(config);
    collect::<LoginEvent>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    app.update();
    app
}

fn signed_in(app: &App) -> Option<AmazonAccount> {
    collected::<LoginEvent>(app).iter().find_map(|e| match e {
        LoginEvent::SignedIn(account) => Some(account.clone()),
        _ => None,
    })
}

fn login_state(app: &App) -> LoginState {
    *app.world().resource::<State<LoginState>>().get()
}

/// Plays the system browser over plain HTTP: the backend's link page, LWA's sign-in and consent as `email`,
/// the backend's callback, the game's loopback listener.
fn http_browser(sandbox: String, email: &'static str) -> BrowserOpener {
    Arc::new(move |url: &str| {
        let (sandbox, url) = (sandbox.clone(), url.to_owned());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
                let location = |answer: reqwest::Response| answer.headers()["location"].to_str().unwrap().to_owned();
                let at_lwa = location(http.get(&url).send().await.unwrap());
                let query = url::Url::parse(&at_lwa).unwrap();
                let mut form: Vec<(String, String)> = query.query_pairs().into_owned().collect();
                form.extend([("email".into(), email.into()), ("password".into(), "pw".into())]);
                let page = http.post(format!("{sandbox}/ap/signin")).form(&form).send().await.unwrap();
                let page = page.text().await.unwrap();
                let ticket = page.split(r#"name="ticket" value=""#).nth(1).unwrap().split('"').next().unwrap();
                form.retain(|(k, _)| k != "email" && k != "password");
                form.extend([("ticket".into(), ticket.into()), ("decision".into(), "allow".into())]);
                let to_backend = location(http.post(format!("{sandbox}/ap/consent")).form(&form).send().await.unwrap());
                let to_game = location(http.get(to_backend).send().await.unwrap());
                http.get(to_game).send().await.unwrap();
            });
        });
        Ok(())
    })
}

#[test]
fn browser_linking_through_the_backend_in_headless_chromium_then_pull_sign_out() {
    assert!(webdriver::available(), "install Debian's chromium and chromium-driver (`bash scripts/test.sh` does)");
    let fixture = Fixture::start();
    register_backend_client(&fixture);
    let customer = fixture.customer("linked@example.com");
    let studio = Studio::start(&fixture.url());
    let data = tempfile::tempdir().unwrap();
    let (report, finished) = mpsc::channel::<(String, String)>();
    let report = Mutex::new(report);
    let open: BrowserOpener = Arc::new(move |url: &str| {
        let (url, report) = (url.to_owned(), report.lock().unwrap().clone());
        std::thread::spawn(move || {
            let browser = webdriver::Browser::launch();
            browser.goto(&url);
            browser.wait_for_text("Sign in", Duration::from_secs(20));
            browser.type_into("#email", "linked@example.com");
            browser.type_into("#password", "pw");
            browser.click("#signInSubmit");
            browser.wait_for_text("Allow access", Duration::from_secs(20));
            browser.click("#allow");
            let page = browser.wait_for_text("Return to the game", Duration::from_secs(20));
            let _ = report.send((browser.current_url(), page));
        });
        Ok(())
    });
    let mut app = backend_mode_game(&studio.backend.url(), data.path(), open);
    app.world_mut().write_message(LoginRequest::WithBrowser);
    run_until(&mut app, WAIT, "linked through the backend", |app| signed_in(app).is_some());
    let account = signed_in(&app).unwrap();
    assert_eq!((account.user_id.as_str(), account.name.as_str()), (customer.user_id.as_str(), "Test Player"));
    assert_eq!(account.email, None, "the backend keeps the e-mail to itself");
    let events = collected::<LoginEvent>(&app);
    assert!(
        matches!(&events[1], LoginEvent::BrowserOpened { url } if url.starts_with(&studio.backend.url()) && url.contains("/link/authorize")),
        "{events:?}"
    );
    let (final_url, page) = finished.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(final_url.starts_with("http://127.0.0.1:") && final_url.contains("code=rs_code."), "{final_url}");
    assert!(page.contains("You are signed in"));

    // The game holds a studio session only; the backend holds the Amazon tokens, sealed.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(tokens_path(data.path(), &customer.user_id)).unwrap()).unwrap();
    assert!(saved["access_token"].as_str().unwrap().starts_with("rs_at."), "{saved}");
    assert!(saved["refresh_token"].as_str().unwrap().starts_with("rs_rt."), "{saved}");
    assert!(!saved.to_string().contains("Atza|") && !saved.to_string().contains("Atzr|"));
    let game_account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id);
    assert_eq!(game_account.len(), 1);
    let stored = studio.texts("SELECT refresh_token FROM lwa_tokens WHERE user_id = $1", &game_account[0]);
    assert!(stored[0].starts_with("sealed1:"), "{stored:?}");

    // The session opens the backend's feed: a purchase arrives and is reported.
    studio.amazon_calls(json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate", "userId": game_account[0], "purchaseToken": "linked-1"}));
    app.world_mut().write_message(StoreVisited);
    run_until(&mut app, WAIT, "the purchase granted", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert_eq!(inventory(&mut app).count("gem"), 100);

    // Signing out ends the session at the backend too.
    let access = saved["access_token"].as_str().unwrap().to_owned();
    app.world_mut().write_message(LoginRequest::SignOut);
    run_until(&mut app, WAIT, "the session ended at the backend", |_| {
        studio.game_call("GET", "/api/entitlements", &access).0 == 400
    });
    assert_eq!(login_state(&app), LoginState::LoggedOut);
}

#[test]
fn code_pairing_through_the_backend_then_unlink_from_the_game() {
    let mut sandbox = SandboxConfig::ephemeral().unwrap();
    sandbox.lwa = LwaSettings { device_poll_interval: 1, ..Default::default() };
    let fixture = Fixture::start_with(sandbox);
    register_backend_client(&fixture);
    let customer = fixture.customer("paired@example.com");
    let studio = Studio::start(&fixture.url());
    let data = tempfile::tempdir().unwrap();
    let mut app = backend_mode_game(&studio.backend.url(), data.path(), Arc::new(|_: &str| Ok(())));
    app.world_mut().write_message(LoginRequest::WithDeviceCode);
    run_until(&mut app, WAIT, "a code to show", |app| {
        collected::<LoginEvent>(app).iter().any(|e| matches!(e, LoginEvent::DeviceCodeReady { .. }))
    });
    let (user_code, verification_uri) = collected::<LoginEvent>(&app)
        .iter()
        .find_map(|e| match e {
            LoginEvent::DeviceCodeReady { user_code, verification_uri, .. } => {
                Some((user_code.clone(), verification_uri.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert!(verification_uri.starts_with(&fixture.url()), "the player enters LWA's code on Amazon's page");
    // The game polls the backend for a while before the player enters the code; the backend asks LWA at
    // LWA's interval only.
    run_for(&mut app, Duration::from_millis(2500));
    fixture.enter_device_code(&user_code, "paired@example.com", "pw");
    run_until(&mut app, WAIT, "paired", |app| {
        signed_in(app).is_some() || collected::<LoginEvent>(app).iter().any(|e| matches!(e, LoginEvent::Failed(_)))
    });
    assert!(signed_in(&app).is_some(), "{:?}", collected::<LoginEvent>(&app));
    assert_eq!(signed_in(&app).unwrap().user_id, customer.user_id);
    let polls = fixture.admin_get(&format!("/device-codes/{user_code}"));
    assert!(polls["polls"].as_i64().unwrap() <= 5, "the backend polled LWA at its interval: {polls}");
    let saved = std::fs::read_to_string(tokens_path(data.path(), &customer.user_id)).unwrap();
    assert!(saved.contains("rs_at.") && !saved.contains("Atza|"), "{saved}");

    // Unlink from the game: the backend deletes the link's tokens and profile, keeps the account.
    let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).remove(0);
    studio.amazon_calls(json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate", "userId": account, "purchaseToken": "kept-1"}));
    app.world_mut().write_message(LoginRequest::Unlink);
    run_until(&mut app, WAIT, "unlinked at the backend", |_| {
        studio.texts("SELECT user_id FROM lwa_tokens WHERE user_id = $1", &account).is_empty()
    });
    assert!(studio.texts("SELECT name FROM amazon_profiles WHERE user_id = $1", &account).is_empty());
    assert!(studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).is_empty());
    assert_eq!(
        studio.texts("SELECT user_id FROM ia_purchases WHERE purchase_token = $1", "kept-1"),
        std::slice::from_ref(&account)
    );
    assert_eq!(login_state(&app), LoginState::LoggedOut);

    // Linking the same Amazon account again finds the same game account, purchases and all.
    let again = studio.link_in_browser(&fixture, "paired@example.com");
    let (status, feed) = studio.game_call("GET", "/api/entitlements", &again.access_token);
    assert_eq!(status, 200, "{feed}");
    assert_eq!(feed["Entitlements"][0]["EntitlementId"], "ia:kept-1");
    assert_eq!(studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id), [account]);
}

#[test]
fn sessions_rotate_a_reused_refresh_token_ends_the_family_and_sign_out_and_the_operator_end_sessions() {
    let fixture = Fixture::start();
    let customer = fixture.customer("rotating@example.com");
    let studio = Studio::start(&fixture.url());
    let first = studio.link_in_browser(&fixture, "rotating@example.com");
    assert_eq!(studio.game_call("GET", "/api/entitlements", &first.access_token).0, 200);

    let (status, second) = studio.refresh(&first.refresh_token);
    assert_eq!(status, 200, "{second}");
    let second =
        (second["access_token"].as_str().unwrap().to_owned(), second["refresh_token"].as_str().unwrap().to_owned());
    assert_ne!(second.1, first.refresh_token, "refresh rotates");
    assert_eq!(studio.game_call("GET", "/api/entitlements", &second.0).0, 200);
    // The first refresh token again: a replay. The whole family ends, the new tokens with it.
    let (status, refused) = studio.refresh(&first.refresh_token);
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")), "{refused}");
    assert_eq!(studio.refresh(&second.1).0, 400);
    assert_eq!(studio.game_call("GET", "/api/entitlements", &second.0).0, 400);
    assert_eq!(studio.game_call("GET", "/api/entitlements", &first.access_token).0, 400);
    let reasons =
        studio.texts("SELECT revoke_reason FROM studio_sessions WHERE revoke_reason IS NOT NULL OR family_id = $1", "");
    assert_eq!(reasons, ["refresh_token_reused"]);

    // Sign-out (RFC 7009) ends a session; an unknown token is no error.
    let third = studio.link_in_browser(&fixture, "rotating@example.com");
    let revoke = |token: &str| {
        let url = format!("{}/link/revoke", studio.backend.url());
        studio.runtime.block_on(async {
            reqwest::Client::new().post(url).form(&[("token", token)]).send().await.unwrap().status().as_u16()
        })
    };
    assert_eq!(revoke(&third.refresh_token), 200);
    assert_eq!(revoke("rs_rt.unknown"), 200);
    assert_eq!(studio.game_call("GET", "/api/entitlements", &third.access_token).0, 400);
    assert_eq!(studio.refresh(&third.refresh_token).0, 400);

    // The operator ends every session of an account.
    let fourth = studio.link_in_browser(&fixture, "rotating@example.com");
    let fifth = studio.link_in_browser(&fixture, "rotating@example.com");
    let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).remove(0);
    let url = format!("{}/admin/sessions/revoke", studio.backend.operator_url().unwrap());
    let ended: Value = studio.runtime.block_on(async {
        let request = reqwest::Client::new().post(&url).bearer_auth(OPERATOR_TOKEN).json(&json!({"user_id": account}));
        request.send().await.unwrap().json().await.unwrap()
    });
    assert_eq!(ended["ended"], 2, "{ended}");
    for session in [&fourth, &fifth] {
        assert_eq!(studio.game_call("GET", "/api/entitlements", &session.access_token).0, 400);
    }
    let unauthenticated: u16 = studio.runtime.block_on(async {
        reqwest::Client::new().post(&url).json(&json!({"user_id": "x"})).send().await.unwrap().status().as_u16()
    });
    assert_eq!(unauthenticated, 401, "operator routes need the operator token");
}

#[test]
fn a_broken_link_prompts_the_player_to_link_again() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    register_backend_client(&fixture);
    let customer = fixture.customer("broken@example.com");
    fixture.grant(&customer.user_id, GOLD, 1);
    let studio = Studio::start(&fixture.url());
    let data = tempfile::tempdir().unwrap();
    let mut app =
        backend_mode_game(&studio.backend.url(), data.path(), http_browser(fixture.url(), "broken@example.com"));
    app.world_mut().write_message(LoginRequest::WithBrowser);
    run_until(&mut app, WAIT, "linked, and the relayed pull granted", |app| {
        signed_in(app).is_some() && collected::<EntitlementFulfilled>(app).len() == 1
    });

    // The player revokes the backend's access on Amazon's side: Prime Gaming refuses the relay's access
    // token, and LWA refuses its refresh token ("Token invalid").
    fixture.fault("/api/entitlements", 1, FaultKind::Status { status: 401, retry_after: None });
    let token_invalid = json!({"error": "invalid_grant", "error_description": "Token invalid"});
    fixture.fault("/auth/o2/token", 1, FaultKind::Json { status: 400, body: token_invalid });
    app.world_mut().write_message(StoreVisited);
    let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).remove(0);
    run_until(&mut app, WAIT, "the link marked broken", |_| {
        studio.column("SELECT link_broken_at FROM accounts WHERE user_id = $1", &account).is_some()
    });
    run_for(&mut app, Duration::from_millis(1100));
    app.world_mut().write_message(StoreVisited);
    run_until(&mut app, WAIT, "the player asked to link again", |app| {
        collected::<LoginEvent>(app).iter().any(|e| matches!(e, LoginEvent::ReloginRequired(_)))
    });
    assert_eq!(login_state(&app), LoginState::LoggedOut);
    assert!(studio.texts("SELECT user_id FROM lwa_tokens WHERE user_id = $1", &account).is_empty());

    // Linking again mends it.
    app.world_mut().write_message(LoginRequest::WithBrowser);
    run_until(&mut app, WAIT, "linked again", |app| {
        collected::<LoginEvent>(app).iter().filter(|e| matches!(e, LoginEvent::SignedIn(_))).count() == 2
    });
    assert_eq!(studio.column("SELECT link_broken_at FROM accounts WHERE user_id = $1", &account), None);
}

#[test]
fn a_login_with_amazon_token_opens_no_game_facing_route() {
    let fixture = Fixture::start();
    fixture.register_client();
    fixture.customer("raw@example.com");
    let lwa_token = fixture.tokens_over_http("raw@example.com", "pw").access_token;
    assert!(lwa_token.starts_with("Atza|"));
    let api_key = fixture.admin.create_moments_api_key().unwrap().api_key;
    let sandbox = fixture.url();
    let studio = Studio::start_with(&sandbox, |config| {
        config.moments = Some(amazon_rewards_backend::moments::MomentsConfig::new(&sandbox, api_key));
        config.devpay = Some(sandbox_devpay(&sandbox));
    });
    let session = studio.session(&fixture, "raw@example.com");
    let routes = [
        ("GET", "/api/entitlements"),
        ("POST", "/api/fulfill"),
        ("POST", amazon_rewards_protocol::moments::MOMENT_PATH),
        ("GET", amazon_rewards_protocol::moments::CHALLENGES_PATH),
        ("GET", amazon_rewards_backend::moments::REWARDS_PATH),
        ("POST", amazon_rewards_protocol::devpay::ACTIVATE_PATH),
        ("GET", amazon_rewards_protocol::devpay::SUBSCRIPTIONS_PATH),
        ("POST", amazon_rewards_protocol::devpay::SIGNUP_PATH),
        ("GET", "/link/user/profile"),
        ("POST", "/link/unlink"),
    ];
    for (method, path) in routes {
        let (status, answer) = studio.game_call(method, path, &lwa_token);
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_token")), "{method} {path}: {answer}");
        let by_header: u16 = studio.runtime.block_on(async {
            let url = format!("{}{path}", studio.backend.url());
            let request = if method == "GET" {
                reqwest::Client::new().get(url)
            } else {
                reqwest::Client::new().post(url).json(&json!({}))
            };
            request.header("x-amz-access-token", &lwa_token).send().await.unwrap().status().as_u16()
        });
        assert_eq!(by_header, 400, "{method} {path} in x-amz-access-token");
        let (status, answer) = studio.game_call(method, path, &session);
        assert!(
            !matches!(status, 400 | 401) || answer["error"] != "invalid_token",
            "{method} {path} with a session: {status} {answer}"
        );
        assert!(status != 404, "{method} {path} exists");
    }
    // The unlink above, with the session, went through: the session ended with it.
    assert_eq!(studio.game_call("GET", "/api/entitlements", &session).0, 400);

    // A backend owning the inventory: its routes refuse the LWA token too.
    let catalog = std::path::Path::new(&assets_dir()).join("rewards.catalog.json");
    let owner = Studio::start_with(&sandbox, |config| {
        let catalog = amazon_rewards_backend::inventory::catalog::ServerCatalog::load(&catalog).unwrap();
        config.inventory = Some(amazon_rewards_backend::inventory::InventoryConfig::new(catalog));
    });
    let session = owner.session(&fixture, "raw@example.com");
    for (method, path) in [
        ("GET", "/api/inventory"),
        ("POST", "/api/inventory/spend"),
        ("POST", "/api/inventory/sync"),
        ("GET", "/api/inventory/history"),
    ] {
        let (status, answer) = owner.game_call(method, path, &lwa_token);
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_token")), "{method} {path}: {answer}");
        let (status, answer) = owner.game_call(method, path, &session);
        assert!(
            status != 404 && answer["error"] != "invalid_token",
            "{method} {path} with a session: {status} {answer}"
        );
    }
}

#[test]
fn two_backend_processes_on_postgresql_link_one_player_once() {
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    let database = server.fresh_database();
    let fixture = Fixture::start();
    let customer = fixture.customer("twice@example.com");
    let studio = Studio::start_with(&fixture.url(), |config| config.database_url = database.clone());
    let sibling = studio.sibling();
    let backends = [studio.backend.url(), sibling.url()];
    register_backend_client(&fixture);
    let sessions: Vec<StudioSession> = std::thread::scope(|scope| {
        let links: Vec<_> = (0..6)
            .map(|i| {
                let (studio, fixture, backend) = (&studio, &fixture, backends[i % 2].clone());
                scope.spawn(move || studio.link_in_browser_at(fixture, &backend, "twice@example.com"))
            })
            .collect();
        links.into_iter().map(|link| link.join().unwrap()).collect()
    });
    let accounts = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id);
    assert_eq!(accounts.len(), 1, "one game account per Amazon user id");
    let families = studio.texts("SELECT user_id FROM studio_sessions WHERE user_id = $1", &accounts[0]);
    assert_eq!(families.len(), 6, "six sessions, all of that account");
    assert_eq!(studio.texts("SELECT user_id FROM lwa_tokens WHERE user_id = $1", &accounts[0]).len(), 1);
    for (i, session) in sessions.iter().enumerate() {
        // Each session works on either process.
        let (status, answer) = studio.game_call("GET", "/link/user/profile", &session.access_token);
        assert_eq!((status, answer["user_id"].as_str()), (200, Some(customer.user_id.as_str())), "session {i}");
    }
    studio.runtime.block_on(sibling.shutdown());
}
