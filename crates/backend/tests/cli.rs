//! The `rewards-backend` program: `serve` with flags, and `instant-access sign|send` against it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use amazon_rewards_protocol::dta1::{AmzDate, KeyStore, verify};

/// The operator token the test backends run with.
const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// `rewards-backend serve` on free ports: the process, its public URL and its operator URL.
fn spawn_backend(database: &str, keys: &std::path::Path) -> (std::process::Child, String, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
            "--database",
            database,
            "--keys",
        ])
        .arg(keys)
        .env("REWARDS_BACKEND_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut next = |prefix: &str| lines.next().unwrap().unwrap().strip_prefix(prefix).expect("address line").to_owned();
    let url = next("rewards-backend listening on ");
    let operator = next("rewards-backend operator routes on ");
    (server, url, operator)
}

/// The hardening review's finding 1, as measured: an anonymous `POST /admin/accounts` binding a victim's Amazon
/// id answered 201 on the listener Amazon calls. Now the public listener has no operator route, and the
/// operator's listener wants its token.
#[test]
fn operator_routes_are_only_on_the_operator_listener_behind_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "SECRET KEY\n").unwrap();
    let database = format!("sqlite://{}", dir.path().join("operator.db").display());
    let (mut server, url, operator) = spawn_backend(&database, &keys);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let attack = serde_json::json!({"username": "mallory", "amazon_user_id": "amzn1.account.VICTIM"});
    let status = |base: &str, token: Option<&str>| {
        let mut request = reqwest::Client::new().post(format!("{base}/admin/accounts")).json(&attack);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        runtime.block_on(async { request.send().await.unwrap().status().as_u16() })
    };
    assert_eq!(status(&url, None), 404, "the public listener serves no operator route");
    assert_eq!(status(&url, Some(OPERATOR_TOKEN)), 404, "not even with the token");
    assert_eq!(status(&operator, None), 401);
    assert_eq!(status(&operator, Some("test-operator-token-012345678X")), 401);
    assert_eq!(status(&operator, Some(OPERATOR_TOKEN)), 201);
    assert!(operator.starts_with("http://127.0.0.1:"), "loopback: {operator}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn serve_then_sign_and_send_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "# Instant Access keys\nCLISECRET CLIKEY\n").unwrap();
    let database = format!("sqlite://{}", dir.path().join("cli.db").display());
    let (mut server, url, operator) = spawn_backend(&database, &keys);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let account: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{operator}/admin/accounts"))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&serde_json::json!({"username": "cli-player"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let body = serde_json::json!({
        "operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate",
        "userId": account["user_id"], "purchaseToken": "cli-token"
    })
    .to_string();
    let endpoint = format!("{url}/instant-access/fulfillment");
    let cli = |verb: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
            .args(["instant-access", verb, &endpoint, &body, "--key-id", "CLIKEY", "--secret", "CLISECRET"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };

    let signed = cli("sign");
    let header = |name: &str| {
        signed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in {signed}"))
            .to_owned()
    };
    let (date, authorization) = (header("x-amz-date"), header("Authorization"));
    let headers = [
        ("content-type", "application/json"),
        ("x-amz-date", date.as_str()),
        ("authorization", authorization.as_str()),
    ];
    let keys = KeyStore::parse("CLISECRET CLIKEY").unwrap();
    assert_eq!(
        verify("POST", "/instant-access/fulfillment", &headers, body.as_bytes(), &keys, AmzDate::now()).unwrap(),
        "CLIKEY"
    );

    let sent = cli("send");
    assert!(sent.starts_with("HTTP 200"), "{sent}");
    assert!(sent.contains(r#""response":"OK""#), "{sent}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Three `rewards-backend` processes on one PostgreSQL database, 50 identical signed Purchase calls spread
/// over them at once: the purchase is recorded once, and every call answers OK.
#[test]
fn three_backend_processes_on_one_postgresql_fulfil_once() {
    let postgres = test_postgres::TestPostgres::start();
    let database = postgres.fresh_database();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "PROCSECRET PROCKEY\n").unwrap();
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    let mut operators = Vec::new();
    for _ in 0..3 {
        let (server, url, operator) = spawn_backend(&database, &keys);
        servers.push(server);
        urls.push(url);
        operators.push(operator);
    }
    let http = reqwest::Client::new();
    let (answers, rows) = runtime.block_on(async {
        let account: serde_json::Value = http
            .post(format!("{}/admin/accounts", operators[0]))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&serde_json::json!({"username": "many-processes"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let body = serde_json::json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate",
            "userId": account["user_id"], "purchaseToken": "one-token-many-processes"})
        .to_string();
        let calls = (0..50).map(|i| {
            let (http, url, body) = (http.clone(), urls[i % 3].clone(), body.clone());
            async move {
                let credential = amazon_rewards_protocol::dta1::Credential::new("PROCKEY", "PROCSECRET");
                let signed = amazon_rewards_protocol::dta1::sign(
                    "POST",
                    "/instant-access/fulfillment",
                    "application/json",
                    body.as_bytes(),
                    &credential,
                    AmzDate::now(),
                );
                let answer: serde_json::Value = http
                    .post(format!("{url}/instant-access/fulfillment"))
                    .header("content-type", "application/json")
                    .header("x-amz-date", signed.x_amz_date)
                    .header("authorization", signed.authorization)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["response"].as_str().unwrap_or_default().to_owned()
            }
        });
        let answers = futures::future::join_all(calls).await;
        let pool = sqlx::AnyPool::connect(&database).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ia_purchases").fetch_one(&pool).await.unwrap();
        pool.close().await;
        (answers, rows)
    });
    for mut server in servers {
        server.kill().unwrap();
        server.wait().unwrap();
    }
    assert!(answers.iter().all(|a| a == "OK"), "{answers:?}");
    assert_eq!(rows, 1, "fulfilled exactly once across three processes");
}

/// `--catalog` is validated at start: a catalog the game could not load either stops the backend with the
/// reason; the game's own catalog starts it owning the inventory (the feed then is not served).
#[test]
fn the_catalog_is_validated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "SECRET KEYID\n").unwrap();
    let bad = dir.path().join("bad.catalog.json");
    std::fs::write(&bad, br#"{"items":{},"offers":{"gold-pack":[{"item":"gold","quantity":5}]}}"#).unwrap();
    let database = format!("sqlite://{}", dir.path().join("b.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args(["serve", "--listen", "127.0.0.1:0", "--operator-listen", "127.0.0.1:0", "--database", &database])
        .arg("--keys")
        .arg(&keys)
        .arg("--catalog")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("unknown item") && said.contains("bad.catalog.json"), "{said}");

    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/rewards.catalog.json");
    let mut server = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args(["serve", "--listen", "127.0.0.1:0", "--operator-listen", "127.0.0.1:0", "--database", &database])
        .arg("--keys")
        .arg(&keys)
        .arg("--catalog")
        .arg(&good)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().strip_prefix("rewards-backend listening on ").unwrap().to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = |path: &str| {
        let url = format!("{url}{path}");
        runtime.block_on(async { reqwest::Client::new().get(url).send().await.unwrap().status().as_u16() })
    };
    assert_eq!(status("/api/inventory"), 401, "the inventory is served (a session is needed)");
    assert_eq!(status("/api/entitlements"), 404, "the feed is not");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A sandbox Amazon URL (not https, or loopback) stops the start unless `--sandbox` says it is meant; with it,
/// every answer carries the sandbox mark.
#[test]
fn sandbox_amazon_urls_need_the_sandbox_flag() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "SECRET KEYID\n").unwrap();
    let database = format!("sqlite://{}", dir.path().join("b.db").display());
    let serve = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rewards-backend"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--operator-listen", "127.0.0.1:0", "--database", &database])
            .arg("--keys")
            .arg(&keys)
            .args(["--moments-url", "http://127.0.0.1:8787", "--moments-api-key", "k"])
            .args(extra);
        command
    };
    let output = serve(&[]).output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--moments-url is http://127.0.0.1:8787") && said.contains("--sandbox"), "{said}");

    let mut server = serve(&["--sandbox"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().strip_prefix("rewards-backend listening on ").unwrap().to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mark = runtime.block_on(async {
        let answer = reqwest::Client::new().get(format!("{url}/nowhere")).send().await.unwrap();
        answer.headers().get("x-amazon-rewards-environment").map(|v| v.to_str().unwrap().to_owned())
    });
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(mark.as_deref(), Some("sandbox"));
}
