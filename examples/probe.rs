//! The probe for a game in client-only mode: the same round as `rewards-backend probe` (code pairing, one
//! entitlements call, an optional fulfilment of a test entitlement, a redacted transcript and the shapes
//! compared with the golden ones), against the endpoints the plugin's `RewardsConfig` talks to.
//!
//! Against Amazon, with your security profile (enter the printed code at Amazon yourself):
//!
//! ```sh
//! PROBE_CLIENT_ID=amzn1.application-oa2-client.… cargo run --example probe
//! PROBE_CLIENT_ID=… PROBE_FULFIL=<test entitlement id> cargo run --example probe
//! ```
//!
//! Without `PROBE_CLIENT_ID` it probes an in-process sandbox instead, entering the code as a scripted player,
//! so the example runs to the end anywhere.

use std::time::Duration;

use amazon_rewards_backend::probe::{ProbeSettings, run};
use amazon_rewards_protocol::sandbox_admin::RegisterClient;
use amazon_rewards_sandbox::admin::BlockingClient;
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy_amazon_rewards::prelude::*;

const SANDBOX_CLIENT_ID: &str = "amzn1.application-oa2-client.probe-example";

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let mut config = RewardsConfig::default();
    let sandbox = match std::env::var("PROBE_CLIENT_ID") {
        Ok(client_id) => {
            config.client_id = client_id;
            None
        }
        Err(_) => Some(sandbox_with_a_player(&mut config)),
    };
    let mut settings = ProbeSettings::production(&config.client_id);
    settings.lwa_api_url = config.login.api_url.clone();
    settings.prime_gaming_url = config.entitlements_url.clone();
    settings.fulfil = std::env::var("PROBE_FULFIL").ok();
    settings.sandbox = sandbox.is_some();
    let sandbox_url = sandbox.as_ref().map(|sandbox| sandbox.url().to_owned());
    let outcome = runtime.block_on(run(&settings, |code| {
        println!("Sign in at {} and enter the code {}", code.verification_uri, code.user_code);
        if let Some(url) = sandbox_url.clone() {
            let code = code.user_code.clone();
            std::thread::spawn(move || scripted_player_enters(&url, &code));
        }
    }));
    let report = match &outcome {
        Ok(report) => report,
        Err(error) => {
            eprintln!("probe: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    print!("{}", report.in_words());
    let path = std::env::temp_dir().join("probe-transcript.json");
    if let Err(error) = report.write_transcript(&path) {
        eprintln!("probe: cannot write {}: {error}", path.display());
    }
    println!("transcript: {}", path.display());
    if report.all_match() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}

/// A sandbox with the example's client, a player and one entitlement; points `config` at it.
fn sandbox_with_a_player(config: &mut RewardsConfig) -> Sandbox {
    let mut sandbox_config = SandboxConfig::ephemeral().expect("temporary directory");
    sandbox_config.lwa.device_poll_interval = 1;
    let sandbox = Sandbox::spawn(sandbox_config).expect("sandbox starts");
    let admin = BlockingClient::new(sandbox.url());
    let client = RegisterClient {
        client_id: SANDBOX_CLIENT_ID.into(),
        client_secret: None,
        redirect_uris: vec!["http://127.0.0.1/amazon-rewards/callback".into()],
        name: "Probe example".into(),
    };
    admin.register_client(&client).expect("client registered");
    admin.create_offer("gold_pack", "Gold").expect("offer created");
    let player = admin.create_customer("player@example.com", "Player One", "hunter2").expect("customer created");
    admin.grant(&player.user_id, "gold_pack", 1).expect("granted");
    config.client_id = SANDBOX_CLIENT_ID.into();
    config.use_amazon_at(sandbox.url());
    sandbox
}

/// The player, a little slower than one poll, enters the code on the sandbox's code page.
fn scripted_player_enters(sandbox_url: &str, user_code: &str) {
    std::thread::sleep(Duration::from_millis(1500));
    let form =
        [("user_code", user_code), ("email", "player@example.com"), ("password", "hunter2"), ("decision", "allow")];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let sent = runtime.block_on(reqwest::Client::new().post(format!("{sandbox_url}/code")).form(&form).send());
    if let Err(error) = sent {
        eprintln!("the scripted player could not enter the code: {error}");
    }
}
