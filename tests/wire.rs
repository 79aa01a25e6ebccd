//! What the plugin puts on the wire, byte for byte, checked against Amazon's public record (`shared/WIRE.md`)
//! rather than against our own types: a recording proxy sits between the plugin and the strict sandbox.
//! Code pairing, a pull, a grant and a per-item fulfilment report; a refused (expired) access token refreshed
//! once; a 400 that a refresh does not cure, which must not sign the player out; and a pull when the device
//! wakes from sleep.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use amazon_rewards_protocol::sandbox_admin::FaultKind;
use amazon_rewards_sandbox::SandboxConfig;
use amazon_rewards_sandbox::lwa::LwaSettings;
use bevy::prelude::*;
use bevy_amazon_rewards::entitlements::PullReason;
use bevy_amazon_rewards::prelude::*;
use common::recorder::{Exchange, Recorder};
use common::*;

const WAIT: Duration = Duration::from_secs(60);

fn app_with(config: RewardsConfig) -> App {
    let mut app = headless_app(config);
    collect::<LoginEvent>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    collect::<RewardsError>(&mut app);
    collect::<PullCompleted>(&mut app);
    spawn_recipient(&mut app);
    app.update();
    app
}

fn form(exchange: &Exchange) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&exchange.body).into_owned().collect()
}

fn fulfilled(app: &App) -> usize {
    collected::<EntitlementFulfilled>(app).len()
}

fn relogin_asked(app: &App) -> bool {
    collected::<LoginEvent>(app).iter().any(|e| matches!(e, LoginEvent::ReloginRequired(_)))
}

/// The fulfilment report of one item, exactly as the shipped client sends it.
fn shipped_report(entitlement_id: &str) -> String {
    format!(
        r#"{{"FulfillmentStatusUpdates":[{{"EntitlementId":"{entitlement_id}","LastInstruction":"FULFILL","FulfillmentAddress":"Player"}}]}}"#
    )
}

#[test]
fn code_pairing_then_pull_grant_and_one_report_per_item_in_the_shipped_shapes() {
    let mut sandbox = SandboxConfig::ephemeral().unwrap();
    sandbox.lwa = LwaSettings { device_poll_interval: 1, ..Default::default() };
    let fixture = Fixture::start_with(sandbox);
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("wire@example.com");
    let first = fixture.grant(&player.user_id, GOLD, 1);
    let recorder = Recorder::start(&fixture.url());
    let data = tempfile::tempdir().unwrap();
    let mut app = app_with(login_config(recorder.url(), data.path()));

    app.world_mut().write_message(LoginRequest::WithDeviceCode);
    let mut user_code = String::new();
    run_until(&mut app, WAIT, "a code to show", |app| {
        collected::<LoginEvent>(app).iter().any(|e| match e {
            LoginEvent::DeviceCodeReady { user_code: code, .. } => {
                user_code = code.clone();
                true
            }
            _ => false,
        })
    });
    run_for(&mut app, Duration::from_millis(1300)); // at least one authorization_pending poll
    fixture.enter_device_code(&user_code, "wire@example.com", "pw");
    run_until(&mut app, WAIT, "granted and reported", |app| fulfilled(app) == 1);
    let second = fixture.grant(&player.user_id, GEMS, 1);
    app.world_mut().write_message(PullEntitlements);
    run_until(&mut app, WAIT, "the second item reported", |app| fulfilled(app) == 2);
    assert!(all_fulfilled(&fixture, &player.user_id));

    // Code pairing: LWA for Devices' form, then polls with exactly grant_type=device_code, device_code and
    // user_code (no client id, not RFC 8628's URN).
    let codepair = recorder.calls("POST", "/auth/o2/create/codepair");
    assert_eq!(codepair.len(), 1);
    assert_eq!(codepair[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        codepair[0].body_text(),
        format!("response_type=device_code&client_id={}&scope=games%3A%3Aprime+profile", CLIENT_ID.replace(':', "%3A"))
    );
    let device_code = codepair[0].answer_json()["device_code"].as_str().unwrap().to_owned();
    let polls = recorder.calls("POST", "/auth/o2/token");
    assert!(polls.len() >= 2, "pending, then approved: {polls:?}");
    let expected_poll = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "device_code")
        .append_pair("device_code", &device_code)
        .append_pair("user_code", &user_code)
        .finish();
    for poll in &polls {
        assert_eq!(poll.body_text(), expected_poll);
        assert_eq!(poll.header("content-type"), Some("application/x-www-form-urlencoded"));
    }
    assert_eq!(polls[0].status, 400);
    assert_eq!(polls[0].answer_json()["error"], "authorization_pending");
    let tokens = polls.last().unwrap().answer_json();
    assert_eq!(polls.last().unwrap().status, 200);
    let access_token = tokens["access_token"].as_str().unwrap();

    // Profile with the bearer token; entitlements with x-amz-access-token and no body.
    let profile = recorder.calls("GET", "/user/profile");
    assert_eq!(profile.len(), 1);
    assert_eq!(profile[0].header("authorization"), Some(format!("Bearer {access_token}").as_str()));
    let pulls = recorder.calls("GET", "/api/entitlements");
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    for pull in &pulls {
        assert_eq!(pull.target, "/api/entitlements");
        assert_eq!(pull.header("x-amz-access-token"), Some(access_token));
        assert!(pull.body.is_empty());
    }

    // One report per item, each as soon as its grant was durable, in the shipped client's shape.
    let reports = recorder.calls("POST", "/api/fulfill");
    assert_eq!(reports.len(), 2, "{reports:?}");
    for (report, id) in reports.iter().zip([&first[0], &second[0]]) {
        assert_eq!(report.header("content-type"), Some("application/json"));
        assert_eq!(report.header("x-amz-access-token"), Some(access_token));
        assert_eq!(report.body_text(), shipped_report(id));
        assert_eq!(report.status, 200);
        assert_eq!(
            report.answer_json(),
            serde_json::json!({"FulfillmentStatusUpdates": [{"EntitlementId": id, "Result": "SUCCESS"}]})
        );
    }
    assert!(collected::<RewardsError>(&app).is_empty(), "{:?}", collected::<RewardsError>(&app));
}

#[test]
fn an_expired_access_token_is_refreshed_once_and_the_pull_succeeds() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("expired-wire@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let tokens = fixture.tokens_over_http("expired-wire@example.com", "pw");
    let refresh = tokens.refresh_token.unwrap();
    let data = tempfile::tempdir().unwrap();
    // Looks valid for an hour on this machine; Amazon answers HTTP 400 for it.
    save_session(data.path(), &player.user_id, "Test Player", "Atza|expired", 3600, &refresh);
    let recorder = Recorder::start(&fixture.url());
    let mut app = app_with(login_config(recorder.url(), data.path()));
    run_until(&mut app, WAIT, "pulled after the refresh", |app| fulfilled(app) == 1);

    let refreshes = recorder.calls("POST", "/auth/o2/token");
    assert_eq!(refreshes.len(), 1, "refreshed exactly once");
    let mut sent = form(&refreshes[0]);
    sent.sort();
    assert_eq!(
        sent,
        [
            ("client_id".to_owned(), CLIENT_ID.to_owned()),
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh.clone()),
        ]
    );
    let fresh = refreshes[0].answer_json()["access_token"].as_str().unwrap().to_owned();
    let pulls = recorder.calls("GET", "/api/entitlements");
    assert_eq!(pulls.len(), 2);
    assert_eq!((pulls[0].header("x-amz-access-token"), pulls[0].status), (Some("Atza|expired"), 400));
    assert_eq!((pulls[1].header("x-amz-access-token"), pulls[1].status), (Some(fresh.as_str()), 200));
    assert!(!relogin_asked(&app));
}

#[test]
fn a_400_that_a_refresh_does_not_cure_is_a_request_error_never_a_sign_out() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("malformed@example.com");
    let ids = fixture.grant(&player.user_id, GOLD, 1);
    let tokens = fixture.tokens_over_http("malformed@example.com", "pw");
    let data = tempfile::tempdir().unwrap();
    save_session(
        data.path(),
        &player.user_id,
        "Test Player",
        &tokens.access_token,
        3600,
        tokens.refresh_token.as_deref().unwrap(),
    );
    // The fulfil call is refused with 400 three times, whatever the token: a request problem, not the token.
    fixture.fault("/api/fulfill", 3, FaultKind::Status { status: 400, retry_after: None });
    let recorder = Recorder::start(&fixture.url());
    let mut app = app_with(login_config(recorder.url(), data.path()));
    run_until(&mut app, WAIT, "reported once the fault passed", |app| fulfilled(app) == 1);

    assert_eq!(recorder.calls("POST", "/auth/o2/token").len(), 1, "one refresh for the whole episode");
    let reports = recorder.calls("POST", "/api/fulfill");
    assert_eq!(reports.iter().map(|r| r.status).collect::<Vec<_>>(), [400, 400, 400, 200]);
    assert!(reports.iter().all(|r| r.body_text() == shipped_report(&ids[0])));
    assert!(!relogin_asked(&app), "{:?}", collected::<LoginEvent>(&app));
    app.update();
    assert_eq!(*app.world().resource::<State<LoginState>>().get(), LoginState::LoggedIn);
    let refused = collected::<RewardsError>(&app)
        .iter()
        .filter(|e| **e == RewardsError::Report(ApiError::Unauthorized { status: 400 }))
        .count();
    assert_eq!(refused, 3, "each refusal is a typed error: {:?}", collected::<RewardsError>(&app));
    assert!(all_fulfilled(&fixture, &player.user_id));
}

#[test]
fn a_token_refused_again_after_a_good_answer_is_refreshed_again() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("twice@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let tokens = fixture.tokens_over_http("twice@example.com", "pw");
    let data = tempfile::tempdir().unwrap();
    let refresh = tokens.refresh_token.as_deref().unwrap();
    save_session(data.path(), &player.user_id, "Test Player", &tokens.access_token, 3600, refresh);
    // The first pull is refused as an expired token is: one refresh, then the pull goes through.
    fixture.fault("/api/entitlements", 1, FaultKind::Status { status: 400, retry_after: None });
    let recorder = Recorder::start(&fixture.url());
    let mut app = app_with(login_config(recorder.url(), data.path()));
    run_until(&mut app, WAIT, "granted after one refresh", |app| fulfilled(app) == 1);
    assert_eq!(recorder.calls("POST", "/auth/o2/token").len(), 1);

    // Later the refreshed token is refused too (revoked, say): that is a new episode, refreshed again, not an
    // ordinary request error retried with the dead token.
    fixture.grant(&player.user_id, GEMS, 1);
    fixture.fault("/api/entitlements", 1, FaultKind::Status { status: 400, retry_after: None });
    app.world_mut().write_message(PullEntitlements);
    run_until(&mut app, WAIT, "the second grant", |app| fulfilled(app) == 2);
    assert_eq!(recorder.calls("POST", "/auth/o2/token").len(), 2, "a second refresh for the second refusal");
    assert!(!relogin_asked(&app), "{:?}", collected::<LoginEvent>(&app));
}

/// Seconds the test's wall clock is ahead of the real one.
static WALL_CLOCK_AHEAD: AtomicU64 = AtomicU64::new(0);

fn shifted_wall_clock() -> SystemTime {
    SystemTime::now() + Duration::from_secs(WALL_CLOCK_AHEAD.load(Ordering::Relaxed))
}

#[test]
fn waking_from_sleep_with_the_window_focused_pulls() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("sleepy@example.com");
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&fixture.url(), data.path());
    config.entitlements.wall_clock = shifted_wall_clock;
    let mut app = app_with(config);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "the first pull", |app| settled(app) && !collected::<PullCompleted>(app).is_empty());
    run_for(&mut app, Duration::from_millis(200));
    let before = collected::<PullCompleted>(&app).len();
    let ids = fixture.grant(&player.user_id, GEMS, 1);

    // The device slept for two hours: the monotonic clock stood still, the wall clock did not.
    WALL_CLOCK_AHEAD.store(2 * 3600, Ordering::Relaxed);
    run_until(&mut app, WAIT, "a pull on waking", |app| {
        collected::<PullCompleted>(app)[before..].iter().any(|p| p.reason == PullReason::WokeFromSleep)
    });
    run_until(&mut app, WAIT, "granted", |app| fulfilled(app) == 1);
    assert_eq!(collected::<EntitlementFulfilled>(&app)[0].entitlement_id, ids[0]);
    // One jump, one pull: the frames after it see no new jump.
    run_for(&mut app, Duration::from_millis(300));
    let woke = collected::<PullCompleted>(&app).iter().filter(|p| p.reason == PullReason::WokeFromSleep).count();
    assert_eq!(woke, 1);
}

/// Nothing public says LWA rotates refresh tokens: against a server that does not (the sandbox with
/// `rotate_refresh_tokens: false`), the plugin keeps its refresh token and refreshes with it again and again.
#[test]
fn refreshing_works_when_the_server_does_not_rotate_refresh_tokens() {
    let mut sandbox = SandboxConfig::ephemeral().unwrap();
    sandbox.lwa = LwaSettings { access_token_lifetime: 62, rotate_refresh_tokens: false, ..Default::default() };
    let fixture = Fixture::start_with(sandbox);
    fixture.catalog_offers();
    fixture.register_client();
    let player = fixture.customer("steady@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let tokens = fixture.tokens_over_http("steady@example.com", "pw");
    let refresh = tokens.refresh_token.unwrap();
    let data = tempfile::tempdir().unwrap();
    save_session(data.path(), &player.user_id, "Test Player", &tokens.access_token, 62, &refresh);
    let recorder = Recorder::start(&fixture.url());
    let mut config = login_config(recorder.url(), data.path());
    // Tokens live 62 s and are refreshed 60 s early: a refresh every two seconds or so.
    config.login.refresh_margin = Duration::from_secs(60);
    let mut app = app_with(config);
    run_until(&mut app, WAIT, "three refreshes", |_| recorder.calls("POST", "/auth/o2/token").len() >= 3);
    run_until(&mut app, WAIT, "granted", |app| fulfilled(app) == 1);
    for call in recorder.calls("POST", "/auth/o2/token") {
        assert_eq!(call.status, 200, "{:?}", call.answer_json());
        assert!(call.answer_json().get("refresh_token").is_none(), "the server did not rotate");
        assert!(
            form(&call).contains(&("refresh_token".to_owned(), refresh.clone())),
            "the same refresh token each time"
        );
    }
    assert!(!relogin_asked(&app));
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bevy_amazon_rewards::testing::files::tokens_path(data.path(), &player.user_id)).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["refresh_token"].as_str(), Some(refresh.as_str()), "kept, not lost");
}
