//! The inventory the studio backend owns, over real HTTP on SQLite and PostgreSQL: Instant Access grants and
//! revokes on the server (a revocation after a spend records the debt), spends are checked and idempotent, the
//! sync answers `304` from the stored version, the history pages; Prime Gaming syncs grant once and report once
//! even when the backend process is SIGKILLed at each boundary; 50 concurrent spends of a last item across three
//! processes on one PostgreSQL succeed once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use amazon_rewards_backend::inventory::catalog::ServerCatalog;
use amazon_rewards_backend::inventory::{InventoryConfig, SyncStep};
use amazon_rewards_backend::sealed::TokenKey;
use common::studio::*;
use common::*;
use serde_json::{Value, json};

fn catalog() -> ServerCatalog {
    ServerCatalog::load(&std::path::Path::new(&assets_dir()).join("rewards.catalog.json")).unwrap()
}

fn with_inventory(config: &mut amazon_rewards_backend::BackendConfig) {
    let mut inventory = InventoryConfig::new(catalog());
    inventory.sync_interval = Duration::ZERO;
    config.inventory = Some(inventory);
}

/// A game-facing request with a session: status, JSON answer, `ETag`.
fn call(
    studio: &Studio,
    url: &str,
    token: &str,
    body: Option<Value>,
    if_none_match: Option<&str>,
) -> (u16, Value, String) {
    studio.runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut request = match body {
            Some(body) => http.post(url).json(&body),
            None => http.get(url),
        };
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        let answer = request.bearer_auth(token).send().await.unwrap();
        let status = answer.status().as_u16();
        let tag = answer.headers().get("etag").map(|t| t.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, answer.json().await.unwrap_or_default(), tag)
    })
}

fn count(snapshot: &Value, item: &str) -> u64 {
    snapshot["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == item)
        .map_or(0, |i| i["quantity"].as_u64().unwrap())
}

fn spend(studio: &Studio, base: &str, token: &str, key: &str, gems: u64) -> (u16, Value) {
    let body = json!({"key": key, "items": [{"item": "gem", "quantity": gems}]});
    let (status, answer, _) = call(studio, &format!("{base}/api/inventory/spend"), token, Some(body), None);
    (status, answer)
}

fn purchase(studio: &Studio, operation: &str, account: &str, token: &str) {
    studio.amazon_calls(json!({"operation": operation, "reason": if operation == "Purchase" { "FULFILL" } else { "CUSTOMER_SERVICE_REQUEST" }, "productId": "ia-gem-crate", "userId": account, "purchaseToken": token}));
}

fn grants_spends_revokes_and_syncs(database: Option<String>) {
    let fixture = Fixture::start();
    let customer = fixture.customer("owner@example.com");
    let studio = Studio::start_with(&fixture.url(), |config| {
        with_inventory(config);
        if let Some(database) = database {
            config.database_url = database;
        }
    });
    let session = studio.session(&fixture, "owner@example.com");
    let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).remove(0);
    let base = studio.backend.url();
    let inventory = format!("{base}/api/inventory");

    let (status, empty, tag) = call(&studio, &inventory, &session, None, None);
    assert_eq!((status, empty["version"].as_i64(), tag.as_str()), (200, Some(0), "\"v0\""));
    // Amazon's Purchase grants at once, once per purchase token however often Amazon retries it.
    purchase(&studio, "Purchase", &account, "pt-1");
    purchase(&studio, "Purchase", &account, "pt-1");
    let (_, granted, tag) = call(&studio, &format!("{inventory}?since=0"), &session, None, Some("\"v0\""));
    assert_eq!((count(&granted, "gem"), granted["version"].as_i64()), (100, Some(1)), "{granted}");
    assert_eq!(granted["changes"][0]["source"], "INSTANT_ACCESS");
    assert_eq!(granted["changes"][0]["key"], "ia:pt-1");
    assert_eq!(granted["changes"][0]["sku"], "ia-gem-crate", "the history names the offer");
    // Unchanged: 304 from the stored version.
    let (status, _, same) = call(&studio, &inventory, &session, None, Some(&tag));
    assert_eq!((status, same), (304, tag.clone()));

    // Spending is checked on the server, and a repeated key answers the first answer.
    let (status, spent) = spend(&studio, &base, &session, "spend-1", 60);
    assert_eq!((status, count(&spent, "gem")), (200, 40), "{spent}");
    assert_eq!(spend(&studio, &base, &session, "spend-1", 60), (200, spent.clone()));
    let (status, short) = spend(&studio, &base, &session, "spend-2", 50);
    assert_eq!((status, short["error"].as_str(), short["have"].as_i64()), (409, Some("insufficient"), Some(40)));
    assert_eq!(spend(&studio, &base, &session, "spend-2", 50).0, 409, "the first answer again");
    assert_eq!(spend(&studio, &base, &session, "spend-3", 0).0, 400);
    let unknown = json!({"key": "spend-4", "items": [{"item": "diamond", "quantity": 1}]});
    assert_eq!(call(&studio, &format!("{base}/api/inventory/spend"), &session, Some(unknown), None).0, 400);

    // Customer service refunds the purchase: what is left goes, what was spent is a debt.
    purchase(&studio, "Revoke", &account, "pt-1");
    purchase(&studio, "Revoke", &account, "pt-1");
    let (_, revoked, _) = call(&studio, &inventory, &session, None, None);
    assert_eq!((count(&revoked, "gem"), revoked["version"].as_i64()), (0, Some(3)), "{revoked}");
    let (_, history, _) = call(&studio, &format!("{base}/api/inventory/history?limit=2"), &session, None, None);
    let kinds: Vec<_> = history["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["revoke", "spend"]);
    assert_eq!(history["changes"][0]["debt"], json!([{"item": "gem", "quantity": 60}]));
    let next = history["next_before"].as_i64().unwrap();
    let (_, older, _) =
        call(&studio, &format!("{base}/api/inventory/history?limit=2&before={next}"), &session, None, None);
    assert_eq!(older["changes"].as_array().unwrap().len(), 1);
    assert_eq!((older["changes"][0]["kind"].as_str(), older["next_before"].as_i64()), (Some("grant"), None));
    let debts = operator_get(&studio, "/admin/inventory/debts");
    assert_eq!(debts["debts"][0]["user_id"], account.as_str(), "the operator sees the debt: {debts}");
}

fn operator_get(studio: &Studio, path: &str) -> Value {
    let url = format!("{}{path}", studio.backend.operator_url().unwrap());
    studio.runtime.block_on(async {
        let answer = reqwest::Client::new().get(url).bearer_auth(OPERATOR_TOKEN).send().await.unwrap();
        answer.json().await.unwrap()
    })
}

#[test]
fn grants_spends_revokes_and_syncs_on_sqlite() {
    grants_spends_revokes_and_syncs(None);
}

#[test]
fn grants_spends_revokes_and_syncs_on_postgresql() {
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    grants_spends_revokes_and_syncs(Some(server.fresh_database()));
}

#[test]
fn fifty_concurrent_spends_of_the_last_gem_across_three_processes_on_postgresql_succeed_once() {
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    let database = server.fresh_database();
    let fixture = Fixture::start();
    let customer = fixture.customer("last@example.com");
    let studio = Studio::start_with(&fixture.url(), |config| {
        with_inventory(config);
        config.database_url = database.clone();
    });
    let (second, third) = (studio.sibling(), studio.sibling());
    let session = studio.session(&fixture, "last@example.com");
    let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).remove(0);
    purchase(&studio, "Purchase", &account, "pt-last");
    assert_eq!(spend(&studio, &studio.backend.url(), &session, "all-but-one", 99).0, 200);
    let bases = [studio.backend.url(), second.url(), third.url()];
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let spends: Vec<_> = (0..50)
            .map(|i| {
                let (studio, session, base) = (&studio, &session, bases[i % 3].clone());
                scope.spawn(move || spend(studio, &base, session, &format!("last-{i}"), 1))
            })
            .collect();
        spends.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..50).filter(|i| answers[*i].0 == 200).collect();
    assert_eq!(won.len(), 1, "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    assert!(answers.iter().all(|(status, _)| matches!(status, 200 | 409)));
    let winner = won[0];
    assert_eq!(count(&answers[winner].1, "gem"), 0);
    // The same key again, on another process: the first answer, nothing spent.
    assert_eq!(spend(&studio, &bases[(winner + 1) % 3], &session, &format!("last-{winner}"), 1), answers[winner]);
    let loser = (winner + 1) % 50;
    assert_eq!(spend(&studio, &bases[0], &session, &format!("last-{loser}"), 1), answers[loser]);
    let spends =
        studio.texts("SELECT change_key FROM inventory_changes WHERE kind = 'spend' AND user_id = $1", &account);
    assert_eq!(spends.len(), 2, "{spends:?}");
    studio.runtime.block_on(async {
        second.shutdown().await;
        third.shutdown().await;
    });
}

/// Player `p` with a session: `p % 3 + 1` grants of 20 gems (so that many versions). Their access token.
fn seeded_player(studio: &Studio, p: usize) -> String {
    use amazon_rewards_backend::inventory::ledger::{self, Change, ChangeKind};
    let pool = &studio.backend.pool;
    let amazon_user_id = format!("amzn1.account.SYNC{p}");
    studio.runtime.block_on(async {
        let session =
            amazon_rewards_backend::link::session_without_link(pool, &amazon_user_id, CLIENT_ID).await.unwrap();
        let account = session.user_id.clone();
        let gems = [amazon_rewards_protocol::catalog::ItemStack { item: "gem".into(), quantity: 20 }];
        for grant in 0..=p % 3 {
            let key = format!("seed-{grant}");
            let change = Change {
                kind: ChangeKind::Grant,
                source: "TEST",
                key: &key,
                sku: None,
                items: &gems,
                active_until: None,
            };
            ledger::apply(pool, &account, change).await.unwrap();
        }
        session.tokens.access_token
    })
}

#[test]
fn concurrent_unchanged_syncs_across_three_processes_on_postgresql_answer_each_player_and_see_every_write() {
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    let database = server.fresh_database();
    let fixture = Fixture::start();
    let studio = Studio::start_with(&fixture.url(), |config| {
        with_inventory(config);
        config.database_url = database.clone();
    });
    let (second, third) = (studio.sibling(), studio.sibling());
    let bases = [studio.backend.url(), second.url(), third.url()];
    let tokens: Vec<String> = (0..30).map(|p| seeded_player(&studio, p)).collect();
    // Coalesced reads mix players in one query: each answer must be its own player's.
    std::thread::scope(|scope| {
        for (p, token) in tokens.iter().enumerate() {
            let (studio, bases) = (&studio, &bases);
            scope.spawn(move || {
                let versions = p % 3 + 1;
                let own = format!("\"v{versions}\"");
                for round in 0..12 {
                    let url = format!("{}/api/inventory", bases[(p + round) % 3]);
                    let (status, answer, tag) = call(studio, &url, token, None, Some(&own));
                    assert_eq!((status, tag.as_str()), (304, own.as_str()), "player {p}, round {round}");
                    let (status, answer_then, _) = call(studio, &url, token, None, Some("\"v0\""));
                    assert_eq!(status, 200, "player {p}: {answer}");
                    let held = (count(&answer_then, "gem"), answer_then["version"].as_i64());
                    assert_eq!(held, (20 * versions as u64, Some(versions as i64)), "player {p}");
                }
            });
        }
    });
    // A spend on one process is seen by the very next sync on another: nothing answers from a stale memory.
    let (mut tag, mut gems) = ("\"v1\"".to_owned(), 20);
    for round in 0..10 {
        let (status, spent) = spend(&studio, &bases[round % 3], &tokens[0], &format!("fresh-{round}"), 1);
        assert_eq!(status, 200, "{spent}");
        gems -= 1;
        let url = format!("{}/api/inventory", bases[(round + 1) % 3]);
        let (status, answer, new_tag) = call(&studio, &url, &tokens[0], None, Some(&tag));
        assert_eq!((status, count(&answer, "gem")), (200, gems), "round {round}: {answer}");
        assert_eq!(new_tag, format!("\"v{}\"", round + 2));
        tag = new_tag;
    }
    studio.runtime.block_on(async {
        second.shutdown().await;
        third.shutdown().await;
    });
}

/// How many unchanged syncs the backends of this test process answered from a read lease's memory.
fn lease_answers() -> u64 {
    let handle = amazon_rewards_backend::telemetry::handle().expect("the recorder");
    let rendered = handle.render();
    let line = rendered.lines().find(|line| line.starts_with("rewards_inventory_sync_lease_answers_total"));
    line.and_then(|line| line.split_whitespace().last()?.parse().ok()).unwrap_or(0)
}

#[test]
fn syncs_answered_from_read_leases_across_three_processes_never_miss_a_committed_spend() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    let database = server.fresh_database();
    let fixture = Fixture::start();
    let studio = Studio::start_with(&fixture.url(), |config| {
        with_inventory(config);
        config.database_url = database.clone();
    });
    let (second, third) = (studio.sibling(), studio.sibling());
    let bases = [studio.backend.url(), second.url(), third.url()];
    let token = seeded_player(&studio, 0);
    let account =
        studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", "amzn1.account.SYNC0").remove(0);
    // Each process reads the player until it holds a lease (the second read within a lease asks for one).
    for _ in 0..500 {
        for base in &bases {
            call(&studio, &format!("{base}/api/inventory"), &token, None, Some("\"v1\""));
        }
        let holders = studio.texts("SELECT CAST(count(*) AS TEXT) FROM inventory_leases WHERE user_id = $1", &account);
        if holders[0] == "3" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before = lease_answers();
    // One writer spends on each process in turn; readers on every process check that no answer is older than
    // the last spend committed before they asked.
    let committed = AtomicI64::new(1);
    let done = AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let readers: Vec<_> = bases
            .iter()
            .map(|base| {
                let (studio, token, committed, done) = (&studio, &token, &committed, &done);
                scope.spawn(move || {
                    let (mut tag, mut reads) = ("\"v1\"".to_owned(), 0);
                    while !done.load(Ordering::SeqCst) {
                        let floor = committed.load(Ordering::SeqCst);
                        let (status, _, new_tag) =
                            call(studio, &format!("{base}/api/inventory"), token, None, Some(&tag));
                        assert!(matches!(status, 200 | 304), "{status}");
                        let version: i64 = new_tag.trim_matches(|c| c == '"' || c == 'v').parse().unwrap();
                        assert!(version >= floor, "{base} answered v{version} after v{floor} was committed");
                        (tag, reads) = (new_tag, reads + 1);
                    }
                    reads
                })
            })
            .collect();
        /// Stops the readers however the writer ends (a failed assertion too).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop = Stop(&done);
        for round in 0..15 {
            let (status, spent) = spend(&studio, &bases[round % 3], &token, &format!("leased-{round}"), 1);
            assert_eq!(status, 200, "{spent}");
            committed.store(spent["version"].as_i64().unwrap(), Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(stop);
        readers.into_iter().map(|reader| reader.join().unwrap()).sum::<u64>()
    });
    assert_eq!(committed.load(Ordering::SeqCst), 16);
    assert!(lease_answers() > before, "some of the {reads} syncs were answered from a lease");
    studio.runtime.block_on(async {
        second.shutdown().await;
        third.shutdown().await;
    });
}

#[test]
fn a_prime_gaming_sync_grants_on_the_server_reports_once_and_holds_an_unknown_sku() {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    fixture.offer("prime-mystery-box");
    let customer = fixture.customer("prime@example.com");
    let gold = fixture.grant(&customer.user_id, GOLD, 1);
    let mystery = fixture.grant(&customer.user_id, "prime-mystery-box", 1);
    let studio = Studio::start_with(&fixture.url(), |config| {
        with_inventory(config);
        config.inventory.as_mut().unwrap().sync_interval = Duration::from_secs(60);
    });
    let session = studio.session(&fixture, "prime@example.com");
    let sync = format!("{}/api/inventory/sync", studio.backend.url());
    let (status, synced, _) = call(&studio, &sync, &session, Some(json!({})), None);
    assert_eq!((status, synced["pulled"].as_bool(), count(&synced, "gold")), (200, Some(true), 500), "{synced}");
    let statuses = fixture.statuses(&customer.user_id);
    let fulfilled: Vec<_> = statuses.iter().filter(|s| s.fulfilled).map(|s| s.entitlement_id.clone()).collect();
    assert_eq!(fulfilled, gold, "reported once it was granted; the unknown SKU is not reported");
    let held = operator_get(&studio, "/admin/inventory/held");
    assert_eq!(held["held"][0]["entitlement_id"], format!("pg:{}", mystery[0]), "{held}");
    assert_eq!(held["held"][0]["sku"], "prime-mystery-box");
    // Paced per player: an immediate second sync does not pull.
    let (_, again, _) = call(&studio, &sync, &session, Some(json!({})), None);
    assert_eq!((again["pulled"].as_bool(), count(&again, "gold")), (Some(false), 500));
}

/// The crash child: a backend process on the parent's database, pausing (to be SIGKILLed) at `PAUSE_AT`.
#[test]
#[ignore = "child process of the backend crash tests"]
fn backend_crash_child() {
    let sandbox = std::env::var("SANDBOX_URL").unwrap();
    let mut config = backend_config(&sandbox, &std::env::var("DATABASE_URL").unwrap());
    config.token_key = Some(TokenKey::from_hex(&std::env::var("TOKEN_KEY").unwrap()).unwrap());
    config.operator = None;
    with_inventory(&mut config);
    let pause_at = std::env::var("PAUSE_AT").ok();
    config.inventory.as_mut().unwrap().observer = Some(std::sync::Arc::new(move |step: SyncStep| {
        if pause_at.as_deref() == Some(format!("{step:?}").as_str()) {
            println!("paused at {step:?}");
            std::thread::sleep(Duration::from_secs(600));
        }
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let backend = runtime.block_on(amazon_rewards_backend::serve(config)).unwrap();
    println!("listening {}", backend.url());
    std::thread::sleep(Duration::from_secs(600));
}

fn spawn_backend(sandbox: &str, database: &str, key: &str, pause_at: Option<SyncStep>) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "backend_crash_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("SANDBOX_URL", sandbox)
        .env("DATABASE_URL", database)
        .env("TOKEN_KEY", key)
        .env("PAUSE_AT", pause_at.map(|s| format!("{s:?}")).unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.by_ref().map(Result::unwrap).find_map(|l| l.split("listening ").nth(1).map(str::to_owned)).unwrap();
    // The rest of the child's output is read on a thread, so it never blocks on a full pipe.
    let (seen, paused) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = seen.send(line);
        }
    });
    PAUSED.with(|p| *p.borrow_mut() = Some(paused));
    (child, url)
}

thread_local! {
    static PAUSED: std::cell::RefCell<Option<std::sync::mpsc::Receiver<String>>> = const { std::cell::RefCell::new(None) };
}

fn sigkill_at(step: SyncStep) {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let customer = fixture.customer(&format!("crash-{step:?}@example.com").to_lowercase());
    let granted = fixture.grant(&customer.user_id, GOLD, 1);
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("backend.db").display());
    let key = TokenKey::generate().to_hex();
    // Link once, with an in-process backend on the database the children share.
    let studio = Studio::start_with(&fixture.url(), |config| {
        config.database_url = database.clone();
        config.token_key = Some(TokenKey::from_hex(&key).unwrap());
    });
    let session = studio.session(&fixture, &customer.email);
    let sync = |base: &str| {
        let url = format!("{base}/api/inventory/sync");
        let token = session.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                reqwest::Client::new().post(url).bearer_auth(token).send().await.ok()?.json::<Value>().await.ok()
            })
        })
    };

    let (mut doomed, url) = spawn_backend(&fixture.url(), &database, &key, Some(step));
    let _hanging = sync(&url);
    let paused = PAUSED.with(|p| p.borrow_mut().take().unwrap());
    let line = paused.recv_timeout(Duration::from_secs(30)).expect("the child reached the step");
    assert!(line.ends_with(&format!("paused at {step:?}")), "{line}");
    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();

    let (mut survivor, url) = spawn_backend(&fixture.url(), &database, &key, None);
    let answer = sync(&url).join().unwrap().expect("the restarted backend answers");
    assert_eq!(count(&answer, "gold"), 500, "granted exactly once after a crash at {step:?}: {answer}");
    let reported = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        fixture.statuses(&customer.user_id).iter().all(|s| s.fulfilled)
    });
    assert!(reported, "reported after a crash at {step:?}");
    let grants = studio.texts(
        "SELECT change_key FROM inventory_changes WHERE kind = 'grant' AND change_key = $1",
        &format!("pg:{}", granted[0]),
    );
    assert_eq!(grants.len(), 1);
    let confirmed =
        studio.column("SELECT reported_at FROM prime_grants WHERE entitlement_id = $1", &format!("pg:{}", granted[0]));
    assert!(confirmed.is_some(), "the confirmation recorded after a crash at {step:?}");
    survivor.kill().unwrap();
    survivor.wait().unwrap();
}

#[test]
fn a_backend_sigkilled_after_the_pull_grants_and_reports_once() {
    sigkill_at(SyncStep::Pulled);
}

#[test]
fn a_backend_sigkilled_after_the_grant_commits_grants_and_reports_once() {
    sigkill_at(SyncStep::GrantCommitted);
}

#[test]
fn a_backend_sigkilled_after_the_report_is_sent_grants_and_reports_once() {
    sigkill_at(SyncStep::ReportSent);
}

#[test]
fn a_backend_sigkilled_before_the_confirmation_is_recorded_grants_and_reports_once() {
    sigkill_at(SyncStep::ReportConfirming);
}

/// The operator's page in headless Chromium: signing in with the token, searching a player by Amazon user id,
/// and reading why a reward is gone (granted, spent, revoked with a debt), the budgets, the held entitlements and
/// the chart. `OPERATOR_SCREENSHOTS=dir` saves the screens (how `docs/screenshots/operator*.png` were made).
#[test]
fn the_operator_page_answers_where_a_reward_went_in_chromium() {
    let fixture = Fixture::start();
    let customer = fixture.customer("support@example.com");
    let studio = Studio::start_with(&fixture.url(), with_inventory);
    let session = studio.session(&fixture, "support@example.com");
    let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id).remove(0);
    purchase(&studio, "Purchase", &account, "pt-support");
    let base = studio.backend.url();
    assert_eq!(spend(&studio, &base, &session, "sword", 60).0, 200);
    purchase(&studio, "Revoke", &account, "pt-support");
    let operator = studio.backend.operator_url().unwrap();

    let browser = common::webdriver::Browser::launch();
    browser.set_window_size(1280, 1100);
    browser.goto(&format!("{operator}/page"));
    assert!(browser.page_source().contains("operator token missing or wrong"), "no page without signing in");
    browser.goto(&format!("{operator}/login"));
    browser.type_into("#token", OPERATOR_TOKEN);
    browser.click("#sign-in");
    browser.wait_for_text("Where is my reward?", Duration::from_secs(10));
    browser.type_into("#q", &customer.user_id);
    browser.click("#search");
    let page = browser.wait_for_text("Timeline of", Duration::from_secs(10));
    for expected in [
        "Purchase ia-gem-crate (pt-support) answered OK",
        "spend",
        "could not take back (spent)",
        "Revoke ia-gem-crate",
    ] {
        assert!(page.contains(expected), "{expected:?} missing:\n{page}");
    }
    assert!(page.contains("id=\"chart\"") && page.contains("class=\"revocations\""), "the chart");
    assert!(page.contains("id=\"budgets\"") && page.contains("id=\"held\""));
    // The purchase token finds the same player.
    browser.goto(&format!("{operator}/page?q=pt-support"));
    assert!(browser.page_source().contains(&format!("Timeline of {account}")));
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a real screenshot");
    if let Ok(dir) = std::env::var("OPERATOR_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join("operator.png"), png).unwrap();
    }
}
