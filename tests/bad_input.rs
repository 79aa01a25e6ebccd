//! A misbehaving service: each fault gives a typed error and backoff; nothing panics, nothing is lost,
//! nothing is granted twice. Faults are injected into the real sandbox over its admin API.

mod common;

use std::time::{Duration, Instant};

use amazon_rewards_protocol::prime_gaming::{ENTITLEMENTS_PATH, FULFILL_PATH};
use amazon_rewards_protocol::sandbox_admin::FaultKind;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// Runs a player with 3 gold packs against a sandbox whose `path` first answers with `fault`; returns the
/// errors seen. Asserts that everything ends granted once and fulfilled.
fn survive(path: &str, fault: FaultKind, tweak: impl FnOnce(&mut RewardsConfig)) -> (Vec<RewardsError>, App) {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("faults@example.com");
    fixture.grant(&player.user_id, GOLD, 3);
    let token = fixture.token(&player.user_id, 3600);
    fixture.fault(path, 1, fault);
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&fixture.url(), data.path());
    tweak(&mut config);
    let mut app = headless_app(config);
    collect::<RewardsError>(&mut app);
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "recovered and fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 3);
    assert_eq!(collected::<EntitlementGranted>(&app).len(), 3, "granted once each");
    assert_eq!(inventory(&mut app).count("gold"), 1500);
    let statuses = fixture.statuses(&player.user_id);
    assert!(statuses.iter().all(|s| s.fulfilled), "{statuses:?}");
    (collected::<RewardsError>(&app).to_vec(), app)
}

fn expect_single_pull_error(errors: &[RewardsError], expected: impl Fn(&ApiError) -> bool) {
    assert_eq!(errors.len(), 1, "{errors:?}");
    match &errors[0] {
        RewardsError::Pull(error) => assert!(expected(error), "unexpected {error:?}"),
        other => panic!("expected a pull error, got {other:?}"),
    }
}

#[test]
fn malformed_json_is_a_typed_error_then_retried() {
    let (errors, _) = survive(ENTITLEMENTS_PATH, FaultKind::MalformedJson, |_| {});
    expect_single_pull_error(&errors, |e| matches!(e, ApiError::Malformed(_)));
}

#[test]
fn truncated_json_is_a_typed_error_then_retried() {
    let (errors, _) = survive(ENTITLEMENTS_PATH, FaultKind::TruncatedJson, |_| {});
    expect_single_pull_error(&errors, |e| matches!(e, ApiError::Malformed(_)));
}

#[test]
fn a_wrong_content_type_is_refused_then_retried() {
    let (errors, _) = survive(ENTITLEMENTS_PATH, FaultKind::WrongContentType, |_| {});
    expect_single_pull_error(&errors, |e| matches!(e, ApiError::UnexpectedContentType(t) if t == "text/html"));
}

#[test]
fn server_errors_back_off_then_retry() {
    let (errors, _) = survive(ENTITLEMENTS_PATH, FaultKind::Status { status: 500, retry_after: None }, |_| {});
    expect_single_pull_error(&errors, |e| matches!(e, ApiError::Status { status: 500, .. }));
}

#[test]
fn too_many_requests_honours_retry_after() {
    let started = Instant::now();
    let (errors, app) = survive(ENTITLEMENTS_PATH, FaultKind::Status { status: 429, retry_after: Some(1) }, |_| {});
    expect_single_pull_error(
        &errors,
        |e| matches!(e, ApiError::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(1)),
    );
    // The backoff alone would retry within 400 ms; the server asked for a full second.
    let last_pull = app.world().resource::<RewardsStatus>().last_pull.unwrap();
    assert!(last_pull.duration_since(started) >= Duration::from_secs(1));
}

#[test]
fn an_oversized_body_is_refused_without_buffering_it() {
    let (errors, _) = survive(ENTITLEMENTS_PATH, FaultKind::Oversized { bytes: 3 * 1024 * 1024 }, |config| {
        config.max_response_bytes = 64 * 1024;
    });
    expect_single_pull_error(&errors, |e| matches!(e, ApiError::TooLarge { limit: 65536 }));
}

#[test]
fn a_hung_server_times_out_then_retries() {
    let (errors, _) = survive(ENTITLEMENTS_PATH, FaultKind::Delay { millis: 3_000 }, |config| {
        config.request_timeout = Duration::from_millis(300);
    });
    expect_single_pull_error(&errors, |e| matches!(e, ApiError::Timeout));
}

#[test]
fn a_failed_fulfilment_report_is_retried_and_nothing_is_granted_twice() {
    let (errors, _) = survive(FULFILL_PATH, FaultKind::Status { status: 503, retry_after: None }, |_| {});
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(matches!(&errors[0], RewardsError::Report(ApiError::RateLimited { .. })), "{errors:?}");
}

#[test]
fn a_malformed_fulfilment_answer_is_retried() {
    let (errors, _) = survive(FULFILL_PATH, FaultKind::TruncatedJson, |_| {});
    assert!(matches!(errors.as_slice(), [RewardsError::Report(ApiError::Malformed(_))]), "{errors:?}");
}

#[test]
fn an_unreachable_service_is_a_network_error_with_backoff() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&format!("http://127.0.0.1:{port}"), data.path()));
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, "amzn1.account.OFFLINE", "Atza|offline");
    run_until(&mut app, WAIT, "three failed attempts", |app| collected::<RewardsError>(app).len() >= 3);
    assert!(collected::<RewardsError>(&app).iter().all(|e| matches!(e, RewardsError::Pull(ApiError::Network(_)))));
    let status = app.world().resource::<RewardsStatus>();
    assert!(matches!(status.last_error, Some(RewardsError::Pull(ApiError::Network(_)))));
    // No token or secret leaks into error text.
    assert!(collected::<RewardsError>(&app).iter().all(|e| !e.to_string().contains("Atza|")));
}

#[test]
fn a_damaged_ledger_is_left_untouched_and_reported() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("damaged@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let path = bevy_amazon_rewards::testing::files::ledger_path(data.path(), &player.user_id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{\"format\":1,\"entitlements\":{\"e").unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "storage error", |app| !collected::<RewardsError>(app).is_empty());
    run_for(&mut app, Duration::from_millis(200));
    assert!(matches!(collected::<RewardsError>(&app), [RewardsError::Storage(msg)] if msg.contains("damaged")));
    assert!(inventory(&mut app).is_empty(), "nothing granted without a ledger");
    assert!(fixture.statuses(&player.user_id).iter().all(|s| !s.fulfilled), "nothing reported");
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"format\":1,\"entitlements\":{\"e");
}

#[test]
fn a_ledger_write_failure_holds_reports_back_until_it_can_be_saved() {
    // Every write fails, as on a full disk: the writer's temporary file path is taken by a directory.
    // (Permissions cannot simulate this when tests run as root.)
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("fulldisk@example.com");
    fixture.grant(&player.user_id, GEMS, 2);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let path = bevy_amazon_rewards::testing::files::ledger_path(data.path(), &player.user_id);
    let blocker = path.with_extension(format!("json.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&blocker).unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<RewardsError>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "storage errors", |app| {
        collected::<RewardsError>(app).iter().any(|e| matches!(e, RewardsError::Storage(_)))
    });
    run_for(&mut app, Duration::from_millis(300));
    assert!(
        fixture.statuses(&player.user_id).iter().all(|s| !s.fulfilled && s.report_count == 0),
        "not reported while the grant is not durable"
    );
    assert!(!path.exists());
    // The disk recovers: the writer's retry saves the grants, then they are reported.
    std::fs::remove_dir(&blocker).unwrap();
    run_until(&mut app, WAIT, "fulfilled after recovery", |app| collected::<EntitlementFulfilled>(app).len() == 2);
    assert_eq!(inventory(&mut app).count("gem"), 50);
    assert!(collected::<RewardsError>(&app).iter().all(|e| matches!(e, RewardsError::Storage(_))));
}

/// The hardening review's finding 3: `Retry-After: 9999999999999999999` was parsed unbounded and added to
/// `Instant::now()`, which panics on the main thread. Now every server-supplied delay is cut to an hour.
#[test]
fn a_huge_retry_after_is_bounded_and_panics_nothing() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("patience@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let token = fixture.token(&player.user_id, 3600);
    for path in [ENTITLEMENTS_PATH, FULFILL_PATH] {
        fixture.fault(path, 1, FaultKind::Status { status: 429, retry_after: Some(9_999_999_999_999_999_999) });
    }
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&fixture.url(), data.path()));
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "the refusal", |app| !collected::<RewardsError>(app).is_empty());
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(
        collected::<RewardsError>(&app),
        &[RewardsError::Pull(ApiError::RateLimited { retry_after: Some(Duration::from_secs(3600)) })],
        "one typed error, and the next pull waits (at most) an hour"
    );
}

/// The hardening review's finding 9: a 200 fulfil answer that left an id out put it back in the queue with no
/// backoff, about a request per frame. Missing ids now back off like errors.
#[test]
fn a_fulfil_answer_that_leaves_an_id_out_backs_off() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("partial@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let token = fixture.token(&player.user_id, 3600);
    let empty = FaultKind::Json { status: 200, body: serde_json::json!({"FulfillmentStatusUpdates": []}) };
    fixture.fault(FULFILL_PATH, 1000, empty);
    let proxy = recorder::Recorder::start(&fixture.url());
    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(proxy.url(), data.path()));
    collect::<RewardsError>(&mut app);
    collect::<EntitlementFulfilled>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &player.user_id, &token);
    run_until(&mut app, WAIT, "the first report", |_| !proxy.calls("POST", FULFILL_PATH).is_empty());
    run_for(&mut app, Duration::from_secs(1));
    // Backoff from 50 ms doubling to 400 ms: a handful of reports in a second, not hundreds.
    let reports = proxy.calls("POST", FULFILL_PATH).len();
    assert!((2..=10).contains(&reports), "{reports} reports in a second");
    let rejected =
        collected::<RewardsError>(&app).iter().filter(|e| matches!(e, RewardsError::ReportRejected { .. })).count();
    assert_eq!(rejected, 1, "told once, not once per retry");
    // The answer comes back whole: the report goes through.
    fixture.clear_faults();
    run_until(&mut app, WAIT, "fulfilled", |app| collected::<EntitlementFulfilled>(app).len() == 1);
    assert!(all_fulfilled(&fixture, &player.user_id));
}

fn pulling_from(url: &str, tweak: impl FnOnce(&mut RewardsConfig)) -> App {
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(url, data.path());
    tweak(&mut config);
    let mut app = headless_app(config);
    collect::<RewardsError>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, "amzn1.account.PAGER", "Atza|pager");
    // The data directory must outlive the app.
    std::mem::forget(data);
    app
}

fn first_pull_error(app: &mut App) -> ApiError {
    run_until(app, WAIT, "a pull error", |app| !collected::<RewardsError>(app).is_empty());
    match &collected::<RewardsError>(app)[0] {
        RewardsError::Pull(error) => error.clone(),
        other => panic!("{other:?}"),
    }
}

/// The hardening review: an `A, B, A, B` paging loop was not noticed (only a token repeated at once was), so a
/// pull walked 1000 pages.
#[test]
fn a_paging_loop_is_refused_at_the_first_repeat() {
    let server = recorder::Scripted::start(|target| {
        let next = match target.split("nextToken=").nth(1) {
            None => "A",
            Some("A") => "B",
            Some(_) => "A",
        };
        recorder::json_answer(200, &serde_json::json!({"Entitlements": [], "NextToken": next}))
    });
    let mut app = pulling_from(server.url(), |_| {});
    assert!(matches!(first_pull_error(&mut app), ApiError::Pagination(_)));
    assert_eq!(server.exchanges().len(), 3, "A, B, then A again: refused");
}

/// The hardening review: a pull could hold 1000 pages × 8 MiB. Now the whole pull is held to
/// `max_response_bytes`.
#[test]
fn a_pull_is_bounded_in_total_not_only_per_page() {
    let padding = "x".repeat(60_000);
    let server = recorder::Scripted::start(move |target| {
        let page = target.split("nextToken=").nth(1).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
        let body = serde_json::json!({"Entitlements": [], "NextToken": (page + 1).to_string(), "Padding": padding});
        recorder::json_answer(200, &body)
    });
    let mut app = pulling_from(server.url(), |config| config.max_response_bytes = 100_000);
    assert!(matches!(first_pull_error(&mut app), ApiError::TooLarge { .. }));
    assert_eq!(server.exchanges().len(), 2, "the second page passed the pull's budget");
}

/// The hardening review: the entitlements client followed redirects while carrying `x-amz-access-token`,
/// which reqwest does not strip. A redirect to another origin is not followed.
#[test]
fn the_access_token_never_follows_a_redirect_to_another_origin() {
    let elsewhere = recorder::Scripted::start(|_| recorder::json_answer(200, &serde_json::json!({"Entitlements": []})));
    let location = format!("{}/api/entitlements", elsewhere.url());
    let server = recorder::Scripted::start(move |_| (302, vec![("location".into(), location.clone())], Vec::new()));
    let mut app = pulling_from(server.url(), |_| {});
    assert_eq!(first_pull_error(&mut app), ApiError::Status { status: 302, retry_after: None });
    assert!(elsewhere.exchanges().is_empty(), "the other origin never saw the token");
}
