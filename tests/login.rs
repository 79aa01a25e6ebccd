//! Login with Amazon from the game: a real headless Chromium through the sandbox's pages to the plugin's
//! loopback listener; forged redirects, timeouts, device codes, refresh, restore and sign-out.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use amazon_rewards_protocol::sandbox_admin::FaultKind;
use amazon_rewards_sandbox::SandboxConfig;
use amazon_rewards_sandbox::lwa::LwaSettings;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use bevy_amazon_rewards::testing::files::tokens_path;
use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// Everything logged by any test in this binary, at DEBUG and above.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn login_state(app: &App) -> LoginState {
    *app.world().resource::<State<LoginState>>().get()
}

fn signed_in(app: &App) -> Option<AmazonAccount> {
    collected::<LoginEvent>(app).iter().find_map(|e| match e {
        LoginEvent::SignedIn(account) | LoginEvent::Resumed(account) => Some(account.clone()),
        _ => None,
    })
}

fn failure(app: &App) -> Option<LoginError> {
    collected::<LoginEvent>(app).iter().find_map(|e| match e {
        LoginEvent::Failed(error) | LoginEvent::ReloginRequired(error) => Some(error.clone()),
        _ => None,
    })
}

fn app_with(config: RewardsConfig) -> App {
    let mut app = headless_app(config);
    collect::<LoginEvent>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    app.update();
    app
}

/// An opener that hands the authorization URL to the test instead of opening anything.
fn capture_url() -> (bevy_amazon_rewards::auth::BrowserOpener, mpsc::Receiver<String>) {
    let (sender, receiver) = mpsc::channel();
    let sender = Mutex::new(sender);
    (Arc::new(move |url: &str| sender.lock().unwrap().send(url.to_owned()).map_err(|e| e.to_string().into())), receiver)
}

fn redirect_uri_of(authorize_url: &str) -> String {
    url::Url::parse(authorize_url).unwrap().query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned()
}

#[test]
fn browser_login_in_headless_chromium_then_pull() {
    assert!(
        webdriver::available(),
        "this test drives a real browser: install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let logs = captured_logs();
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("browser@example.com");
    fixture.grant(&player.user_id, BUNDLE, 2);
    let data = tempfile::tempdir().unwrap();

    // The "system browser" is headless Chromium: it follows the authorization URL, signs in, allows access,
    // and is redirected to the plugin's loopback listener.
    let (report, browser_result) = mpsc::channel::<(String, String)>();
    let report = Mutex::new(report);
    let mut config = login_config(&fixture.url(), data.path());
    config.login.open_browser = Arc::new(move |url: &str| {
        let url = url.to_owned();
        let report = report.lock().unwrap().clone();
        std::thread::spawn(move || {
            let browser = webdriver::Browser::launch();
            browser.goto(&url);
            browser.wait_for_text("Sign in", Duration::from_secs(20));
            browser.type_into("#email", "browser@example.com");
            browser.type_into("#password", "pw");
            browser.click("#signInSubmit");
            browser.wait_for_text("Allow access", Duration::from_secs(20));
            browser.click("#allow");
            let page = browser.wait_for_text("Return to the game", Duration::from_secs(20));
            let _ = report.send((browser.current_url(), page));
        });
        Ok(())
    });
    let mut app = app_with(config);
    app.world_mut().write_message(LoginRequest::WithBrowser);
    run_until(&mut app, WAIT, "signed in through the browser", |app| {
        signed_in(app).is_some() || failure(app).is_some()
    });
    assert_eq!(failure(&app), None);
    let account = signed_in(&app).unwrap();
    assert_eq!(account.user_id, player.user_id);
    assert_eq!(account.name, "Test Player");
    app.update();
    assert_eq!(login_state(&app), LoginState::LoggedIn);
    let events = collected::<LoginEvent>(&app);
    assert_eq!(events[0], LoginEvent::Started(LoginMethod::Browser));
    assert!(matches!(&events[1], LoginEvent::BrowserOpened { url } if url.contains("code_challenge_method=S256")));
    assert_eq!(app.world().resource::<PlayerSession>().player_id(), player.user_id);

    // The login triggered a pull: the bundle arrives and is reported.
    run_until(&mut app, WAIT, "pulled after login", |app| collected::<EntitlementFulfilled>(app).len() == 2);
    assert_eq!(inventory(&mut app).count("sword"), 2);

    let (final_url, page) = browser_result.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(final_url.starts_with("http://127.0.0.1:") && final_url.contains("/amazon-rewards/callback?code="));
    assert!(page.contains("You are signed in"));
    let code = url::Url::parse(&final_url).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();

    // Tokens are saved owner-only, and neither they nor the code ever reach the log.
    let token_file = tokens_path(data.path(), &player.user_id);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(token_file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    }
    let access = saved["access_token"].as_str().unwrap();
    let refresh = saved["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("Atza|") && refresh.starts_with("Atzr|"));
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("linked Amazon account"), "the capture works");
    for secret in [access, refresh, code.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    assert!(!logs.contains("Atza|") && !logs.contains("Atzr|"));
}

#[test]
fn declining_in_the_browser_fails_cleanly() {
    assert!(
        webdriver::available(),
        "install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let fixture = Fixture::start();
    fixture.register_client();
    fixture.customer("decline@example.com");
    let data = tempfile::tempdir().unwrap();
    let mut config = login_config(&fixture.url(), data.path());
    config.login.open_browser = Arc::new(move |url: &str| {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let browser = webdriver::Browser::launch();
            browser.goto(&url);
            browser.wait_for_text("Sign in", Duration::from_secs(20));
            browser.type_into("#email", "decline@example.com");
            browser.type_into("#password", "pw");
            browser.click("#signInSubmit");
            browser.wait_for_text("Allow access", Duration::from_secs(20));
            browser.click("#deny");
            browser.wait_for_text("Sign-in did not complete", Duration::from_secs(20));
        });
        Ok(())
    });
    let mut app = app_with(config);
    app.world_mut().write_message(LoginRequest::WithBrowser);
    run_until(&mut app, WAIT, "declined", |app| failure(app).is_some());
    assert_eq!(failure(&app), Some(LoginError::Denied));
    app.update();
    assert_eq!(login_state(&app), LoginState::LoggedOut);
    assert!(app.world().get_resource::<PlayerSession>().is_none());
}

#[test]
fn forged_redirects_other_paths_and_idle_connections_do_not_end_or_delay_the_sign_in() {
    let fixture = Fixture::start();
    fixture.register_client();
    fixture.customer("patient@example.com");
    let data = tempfile::tempdir().unwrap();
    let mut config = login_config(&fixture.url(), data.path());
    let (opener, urls) = capture_url();
    config.login.open_browser = opener;
    let mut app = app_with(config);
    app.world_mut().write_message(LoginRequest::WithBrowser);
    let mut authorize_url = None;
    run_until(&mut app, WAIT, "authorization URL", |_| {
        authorize_url = urls.try_recv().ok();
        authorize_url.is_some()
    });
    let redirect = redirect_uri_of(authorize_url.as_deref().unwrap());
    let listener = url::Url::parse(&redirect).unwrap();
    assert_eq!(listener.host_str(), Some("127.0.0.1"), "bound to loopback only");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let get = |url: String| runtime.block_on(async { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    let origin = format!("http://127.0.0.1:{}", listener.port().unwrap());
    assert_eq!(get(format!("{origin}/favicon.ico")).unwrap(), 404);
    assert_eq!(get(format!("{origin}/other/callback?code=x&state=y")).unwrap(), 404);
    run_for(&mut app, Duration::from_millis(100));
    assert!(failure(&app).is_none(), "still waiting for the real redirect");

    // A forged redirect (the hardening review: it used to end the sign-in) is refused and the wait goes on.
    assert_eq!(get(format!("{redirect}?code=stolen&state=forged")).unwrap(), 400);
    run_for(&mut app, Duration::from_millis(100));
    assert!(failure(&app).is_none(), "a wrong state does not end the sign-in");
    // An idle connection (it used to hold the listener for its 10 s read timeout) delays nothing.
    let idle = std::net::TcpStream::connect(("127.0.0.1", listener.port().unwrap())).unwrap();
    let back = fixture.consent_over_http(authorize_url.as_deref().unwrap(), "patient@example.com", "pw");
    let started = Instant::now();
    assert_eq!(get(back).unwrap(), 200);
    assert!(started.elapsed() < Duration::from_secs(5), "answered while another connection idled");
    run_until(&mut app, WAIT, "signed in", |app| signed_in(app).is_some());
    assert!(get(format!("{redirect}?code=again&state=forged")).is_err(), "the listener closed after the redirect");
    drop(idle);
}

#[test]
fn the_listener_gives_up_when_the_player_walks_away_and_cancel_works() {
    let fixture = Fixture::start();
    fixture.register_client();
    let data = tempfile::tempdir().unwrap();
    let mut config = login_config(&fixture.url(), data.path());
    let (opener, urls) = capture_url();
    config.login.open_browser = opener;
    config.login.browser_timeout = Duration::from_millis(300);
    let mut app = app_with(config);
    app.world_mut().write_message(LoginRequest::WithBrowser);
    run_until(&mut app, WAIT, "timeout", |app| failure(app).is_some());
    assert_eq!(failure(&app), Some(LoginError::Timeout));
    let _ = urls.try_recv();

    app.world_mut().write_message(LoginRequest::WithBrowser);
    let mut redirect = None;
    run_until(&mut app, WAIT, "second URL", |_| {
        redirect = urls.try_recv().ok().map(|u| redirect_uri_of(&u));
        redirect.is_some()
    });
    app.world_mut().write_message(LoginRequest::Cancel);
    run_until(&mut app, WAIT, "cancelled", |app| collected::<LoginEvent>(app).contains(&LoginEvent::Cancelled));
    app.update();
    assert_eq!(login_state(&app), LoginState::LoggedOut);
    std::thread::sleep(Duration::from_millis(50));
    let refused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(redirect.unwrap()).await });
    assert!(refused.is_err(), "a cancelled sign-in closes its listener");
}

#[test]
fn device_code_pending_then_slow_down_then_approved() {
    let mut sandbox = SandboxConfig::ephemeral().unwrap();
    sandbox.lwa = LwaSettings { device_poll_interval: 1, ..Default::default() };
    let fixture = Fixture::start_with(sandbox);
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("couch@example.com");
    fixture.grant(&player.user_id, GEMS, 1);
    let data = tempfile::tempdir().unwrap();
    let mut app = app_with(login_config(&fixture.url(), data.path()));
    app.world_mut().write_message(LoginRequest::WithDeviceCode);
    let mut code = None;
    run_until(&mut app, WAIT, "device code", |app| {
        code = collected::<LoginEvent>(app).iter().find_map(|e| match e {
            LoginEvent::DeviceCodeReady { user_code, verification_uri, expires_in } => {
                Some((user_code.clone(), verification_uri.clone(), *expires_in))
            }
            _ => None,
        });
        code.is_some()
    });
    let (user_code, verification_uri, expires_in) = code.unwrap();
    let started = Instant::now();
    assert_eq!(verification_uri, format!("{}/code", fixture.url()));
    assert_eq!(expires_in, Duration::from_secs(600));
    app.update();
    assert_eq!(login_state(&app), LoginState::SigningIn);

    // First poll: the player has not entered the code yet.
    run_until(&mut app, WAIT, "a pending poll", |_| {
        fixture.admin_get(&format!("/device-codes/{user_code}"))["polls"] == 1
    });
    // Next poll: the server asks the game to slow down (RFC 8628: 5 s more between polls).
    fixture.fault(
        "/auth/o2/token",
        1,
        FaultKind::Json { status: 400, body: serde_json::json!({"error": "slow_down"}) },
    );
    run_for(&mut app, Duration::from_millis(1500));
    fixture.enter_device_code(&user_code.to_lowercase(), "couch@example.com", "pw");
    run_until(&mut app, WAIT, "signed in", |app| signed_in(app).is_some() || failure(app).is_some());
    assert_eq!(failure(&app), None);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(6), "the game slowed down after slow_down: {waited:?}");
    assert_eq!(fixture.admin_get(&format!("/device-codes/{user_code}"))["polls"], 2, "pending, (slow_down), approved");
    assert_eq!(signed_in(&app).unwrap().user_id, player.user_id);
    run_until(&mut app, WAIT, "pulled", |app| collected::<EntitlementFulfilled>(app).len() == 1);
}

#[test]
fn an_expired_device_code_fails_cleanly() {
    let mut sandbox = SandboxConfig::ephemeral().unwrap();
    sandbox.lwa = LwaSettings { device_poll_interval: 1, device_code_lifetime: 2, ..Default::default() };
    let fixture = Fixture::start_with(sandbox);
    fixture.register_client();
    let data = tempfile::tempdir().unwrap();
    let mut app = app_with(login_config(&fixture.url(), data.path()));
    app.world_mut().write_message(LoginRequest::WithDeviceCode);
    run_until(&mut app, WAIT, "expiry", |app| failure(app).is_some());
    assert_eq!(failure(&app), Some(LoginError::DeviceCodeExpired));
    app.update();
    assert_eq!(login_state(&app), LoginState::LoggedOut);
}

#[test]
fn a_saved_session_resumes_at_startup_and_sign_out_forgets_it() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("resume@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let tokens = fixture.tokens_over_http("resume@example.com", "pw");
    let data = tempfile::tempdir().unwrap();
    save_session(
        data.path(),
        &player.user_id,
        "Test Player",
        &tokens.access_token,
        3600,
        tokens.refresh_token.as_deref().unwrap(),
    );

    let mut app = app_with(login_config(&fixture.url(), data.path()));
    run_until(&mut app, WAIT, "resumed and pulled", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert!(matches!(&collected::<LoginEvent>(&app)[0], LoginEvent::Resumed(a) if a.user_id == player.user_id));
    assert_eq!(login_state(&app), LoginState::LoggedIn);

    app.world_mut().write_message(LoginRequest::SignOut);
    let token_file = tokens_path(data.path(), &player.user_id);
    run_until(&mut app, WAIT, "tokens deleted", |_| !token_file.exists());
    assert!(!data.path().join("current_player").exists());
    assert!(app.world().get_resource::<PlayerSession>().is_none());
    assert!(app.world().get_resource::<AmazonAccount>().is_none());
    assert_eq!(login_state(&app), LoginState::LoggedOut);
    assert!(collected::<LoginEvent>(&app).contains(&LoginEvent::SignedOut));
    // The inventory and its ledger stay.
    assert_eq!(inventory(&mut app).count("gold"), 500);
}

#[test]
fn a_refused_token_is_refreshed_and_the_pull_retried() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("refresh@example.com");
    fixture.grant(&player.user_id, GEMS, 2);
    let tokens = fixture.tokens_over_http("refresh@example.com", "pw");
    let refresh = tokens.refresh_token.unwrap();
    let data = tempfile::tempdir().unwrap();
    // The saved access token looks valid for an hour, but the service no longer accepts it.
    save_session(data.path(), &player.user_id, "Test Player", "Atza|revoked-or-expired", 3600, &refresh);

    let mut app = app_with(login_config(&fixture.url(), data.path()));
    run_until(&mut app, WAIT, "pulled after refresh", |app| collected::<EntitlementFulfilled>(app).len() == 2);
    assert_eq!(
        collected::<RewardsError>(&app),
        &[RewardsError::Pull(ApiError::Unauthorized { status: 400 })],
        "refused once, then refreshed and retried"
    );
    assert_eq!(login_state(&app), LoginState::LoggedIn);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tokens_path(data.path(), &player.user_id)).unwrap()).unwrap();
    assert_ne!(saved["refresh_token"].as_str(), Some(refresh.as_str()), "the rotated refresh token was saved");
    assert_ne!(saved["access_token"], "Atza|revoked-or-expired");
}

#[test]
fn an_expired_session_is_refreshed_at_startup() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("expired-start@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let tokens = fixture.tokens_over_http("expired-start@example.com", "pw");
    let data = tempfile::tempdir().unwrap();
    save_session(
        data.path(),
        &player.user_id,
        "Test Player",
        &tokens.access_token,
        -10,
        tokens.refresh_token.as_deref().unwrap(),
    );
    let mut app = app_with(login_config(&fixture.url(), data.path()));
    run_until(&mut app, WAIT, "pulled", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert!(matches!(&collected::<LoginEvent>(&app)[0], LoginEvent::Resumed(_)));
    assert!(
        collected::<RewardsError>(&app).is_empty(),
        "refreshed before any pull: {:?}",
        collected::<RewardsError>(&app)
    );
}

#[test]
fn a_refused_refresh_asks_the_player_to_sign_in_again_and_loses_nothing() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("relogin@example.com");
    let ids = fixture.grant(&player.user_id, GOLD, 1);
    let data = tempfile::tempdir().unwrap();
    save_session(data.path(), &player.user_id, "Test Player", "Atza|dead", 3600, "Atzr|dead");
    let mut app = app_with(login_config(&fixture.url(), data.path()));
    run_until(&mut app, WAIT, "relogin required", |app| {
        collected::<LoginEvent>(app).iter().any(|e| matches!(e, LoginEvent::ReloginRequired(_)))
    });
    app.update();
    assert_eq!(login_state(&app), LoginState::LoggedOut);
    assert!(app.world().get_resource::<PlayerSession>().is_none());
    let token_file = tokens_path(data.path(), &player.user_id);
    run_until(&mut app, WAIT, "dead tokens forgotten", |_| !token_file.exists());
    let statuses = fixture.statuses(&player.user_id);
    assert_eq!(statuses[0].entitlement_id, ids[0]);
    assert!(!statuses[0].fulfilled, "still waiting on the service for the next sign-in");
}

#[test]
fn the_access_token_is_refreshed_before_it_expires() {
    let fixture = Fixture::start();
    fixture.register_client();
    let player = fixture.customer("proactive@example.com");
    let tokens = fixture.tokens_over_http("proactive@example.com", "pw");
    let data = tempfile::tempdir().unwrap();
    let mut config = login_config(&fixture.url(), data.path());
    config.login.refresh_margin = Duration::from_secs(60);
    // Valid for 62 s: due for refresh 2 s from now, long before it would be refused.
    save_session(
        data.path(),
        &player.user_id,
        "Test Player",
        &tokens.access_token,
        62,
        tokens.refresh_token.as_deref().unwrap(),
    );
    let mut app = app_with(config);
    run_until(&mut app, WAIT, "resumed", |app| signed_in(app).is_some());
    let first = app.world().resource::<PlayerSession>().access_token().clone();
    let started = Instant::now();
    run_until(&mut app, WAIT, "refreshed", |app| app.world().resource::<PlayerSession>().access_token() != &first);
    assert!(started.elapsed() >= Duration::from_millis(500), "waited for the refresh margin");
    assert!(collected::<RewardsError>(&app).is_empty(), "never refused: {:?}", collected::<RewardsError>(&app));
    assert_eq!(login_state(&app), LoginState::LoggedIn);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tokens_path(data.path(), &player.user_id)).unwrap()).unwrap();
    assert_eq!(saved["access_token"].as_str(), Some(app.world().resource::<PlayerSession>().access_token().secret()));
}
