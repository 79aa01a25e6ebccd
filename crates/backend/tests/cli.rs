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
