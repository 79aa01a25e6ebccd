//! `rewards-backend probe` against the sandbox, as a studio would run it against Amazon: the code shown is
//! entered at the sandbox's code page, the transcript is written and redacted, the shapes match; then a sandbox
//! fault that changes a field's shape is told in words and fails the probe.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use amazon_rewards_protocol::sandbox_admin::{FaultKind, InjectFault, RegisterClient};
use amazon_rewards_sandbox::admin::BlockingClient;
use amazon_rewards_sandbox::lwa::LwaSettings;
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};

const CLIENT_ID: &str = "amzn1.application-oa2-client.probe";

struct Amazon {
    sandbox: Sandbox,
    admin: BlockingClient,
    user_id: String,
    entitlement: String,
}

fn sandbox() -> Amazon {
    let mut config = SandboxConfig::ephemeral().unwrap();
    config.lwa = LwaSettings { device_poll_interval: 1, ..Default::default() };
    let sandbox = Sandbox::spawn(config).unwrap();
    let admin = BlockingClient::new(sandbox.url());
    let client = RegisterClient {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        redirect_uris: vec!["https://studio.example/callback".into()],
        name: "Probe".into(),
    };
    admin.register_client(&client).unwrap();
    admin.create_offer("gold_pack", "Gold").unwrap();
    let customer = admin.create_customer("probe@example.com", "Probe Player", "pw").unwrap();
    let entitlement = admin.grant(&customer.user_id, "gold_pack", 1).unwrap().remove(0);
    Amazon { sandbox, admin, user_id: customer.user_id, entitlement }
}

struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    transcript: String,
}

/// Runs the probe binary, entering the code it shows at the sandbox's code page as the operator would.
fn probe(amazon: &Amazon, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("transcript.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args(["probe", "--sandbox", "--client-id", CLIENT_ID, "--code-wait-seconds", "60"])
        .args(["--lwa-api-url", amazon.sandbox.url(), "--prime-gaming-url", amazon.sandbox.url()])
        .arg("--transcript")
        .arg(&transcript)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let code = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(first.starts_with("Sign in at ") && code.len() >= 6, "{first}");
    wait_for_a_poll(amazon, &code);
    enter_code(amazon.sandbox.url(), &code);
    let output = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&transcript).unwrap().permissions().mode() & 0o777, 0o600);
    }
    Run {
        status: output.status,
        stdout: first + &rest,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        transcript: std::fs::read_to_string(&transcript).unwrap(),
    }
}

/// The operator is slower than one poll: the probe must see `authorization_pending` at least once.
fn wait_for_a_poll(amazon: &Amazon, user_code: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status: serde_json::Value = amazon.admin.get(&format!("/device-codes/{user_code}")).unwrap();
        if status["polls"].as_i64().unwrap_or(0) >= 1 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the probe never polled");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn enter_code(sandbox_url: &str, user_code: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let form = [("user_code", user_code), ("email", "probe@example.com"), ("password", "pw"), ("decision", "allow")];
    let status = runtime.block_on(async {
        reqwest::Client::new().post(format!("{sandbox_url}/code")).form(&form).send().await.unwrap().status()
    });
    assert!(status.is_success(), "{status}");
}

/// What the transcript must never hold: the tokens and codes the sandbox handed out, the customer's name and
/// email.
fn assert_redacted(run: &Run) {
    let exchanges: Vec<serde_json::Value> = serde_json::from_str(&run.transcript).unwrap();
    let code_pair: serde_json::Value = serde_json::from_str(exchanges[0]["response_body"].as_str().unwrap()).unwrap();
    assert_eq!(code_pair["device_code"], "<redacted>");
    assert_eq!(code_pair["user_code"], "<redacted>");
    for forbidden in ["Atza|", "Atzr|", "probe@example.com", "Probe Player"] {
        assert!(!run.transcript.contains(forbidden), "{forbidden} in the transcript:\n{}", run.transcript);
    }
}

#[test]
fn a_probe_pairs_pulls_fulfils_and_writes_a_redacted_transcript_whose_shapes_match() {
    let amazon = sandbox();
    let run = probe(&amazon, &["--fulfil", &amazon.entitlement]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    for call in [
        "POST /auth/o2/create/codepair: 200 as expected; the shape matches",
        "POST /auth/o2/token (while waiting for the player): 400 as expected; the shape matches",
        "POST /auth/o2/token: 200 as expected; the shape matches",
        "GET /user/profile: 200 as expected; the shape matches",
        "GET /api/entitlements: 200 as expected; the shape matches",
        "POST /api/fulfill: 200 as expected; the shape matches",
        "every answer has the shape the code expects",
    ] {
        assert!(run.stdout.contains(call), "{call} not in:\n{}", run.stdout);
    }
    let exchanges: Vec<serde_json::Value> = serde_json::from_str(&run.transcript).unwrap();
    let urls: Vec<&str> = exchanges.iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert!(urls.first().unwrap().ends_with("/auth/o2/create/codepair"), "{urls:?}");
    assert!(urls.last().unwrap().ends_with("/api/fulfill"), "{urls:?}");
    let fulfil = exchanges.last().unwrap();
    assert!(fulfil["request_body"].as_str().unwrap().contains(&amazon.entitlement));
    assert_eq!(fulfil["status"], 200);
    assert_redacted(&run);
    let statuses = amazon.admin.entitlement_statuses(&amazon.user_id).unwrap();
    assert!(statuses.iter().all(|s| s.entitlement_id == amazon.entitlement && s.fulfilled && s.report_count == 1));
}

#[test]
fn a_field_whose_shape_changed_is_told_in_words_and_fails_the_probe() {
    let amazon = sandbox();
    let changed = serde_json::json!({"Entitlements": [
        {"EntitlementId": "e-1", "VendorProductId": 42, "NextInstruction": "FULFILL", "Quantity": 1}
    ]});
    let fault = InjectFault {
        path: amazon_rewards_protocol::prime_gaming::ENTITLEMENTS_PATH.into(),
        times: 1,
        fault: FaultKind::Json { status: 200, body: changed },
    };
    amazon.admin.inject_fault(&fault).unwrap();
    let run = probe(&amazon, &["--fulfil", &amazon.entitlement]);
    assert!(!run.status.success(), "{}", run.stdout);
    for words in [
        "GET /api/entitlements: 200 as expected\n",
        "  - Entitlements[0].VendorProductId: expected a string, found a number\n",
        "  - Entitlements[0].Quantity: new field (a number), not in the golden shape\n",
        "  the code cannot read it: a value of the wrong type at line 1, column",
        "note: entitlement ",
        "some answers differ from the shapes the code expects",
    ] {
        assert!(run.stdout.contains(words), "{words:?} not in:\n{}", run.stdout);
    }
    assert!(run.stderr.contains("differ from the shapes this code expects"), "{}", run.stderr);
    assert!(!run.stdout.contains("integer") && !run.stdout.contains("`42`"), "values are not quoted:\n{}", run.stdout);
    assert_redacted(&run);
    let statuses = amazon.admin.entitlement_statuses(&amazon.user_id).unwrap();
    assert!(statuses.iter().all(|s| !s.fulfilled && s.report_count == 0), "nothing fulfilled: {statuses:?}");
}

#[test]
fn a_probe_refuses_a_sandbox_url_without_the_flag_before_sending_anything() {
    let output = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args(["probe", "--client-id", CLIENT_ID, "--lwa-api-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pass --sandbox"), "{stderr}");
}
