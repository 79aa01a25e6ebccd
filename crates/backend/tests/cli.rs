//! The `rewards-backend` program: `serve` with flags, and `instant-access sign|send` against it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use amazon_rewards_protocol::dta1::{AmzDate, KeyStore, verify};

#[test]
fn serve_then_sign_and_send_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "# Instant Access keys\nCLISECRET CLIKEY\n").unwrap();
    let database = format!("sqlite://{}", dir.path().join("cli.db").display());
    let mut server = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database, "--keys"])
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("rewards-backend listening on ").expect("address line").to_owned();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let account: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/admin/accounts"))
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
    for _ in 0..3 {
        let mut server = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &database, "--keys"])
            .arg(&keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        urls.push(line.trim().strip_prefix("rewards-backend listening on ").expect("address line").to_owned());
        servers.push(server);
    }
    let http = reqwest::Client::new();
    let (answers, rows) = runtime.block_on(async {
        let account: serde_json::Value = http
            .post(format!("{}/admin/accounts", urls[0]))
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
