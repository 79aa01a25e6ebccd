//! Login only: `RewardsCorePlugin` and `LoginPlugin`, code pairing against the sandbox.
//!
//! Starts the Amazon sandbox in-process, registers the game's Login with Amazon client and a test customer,
//! then asks for a code-pair sign-in. A scripted "player" enters the code on the sandbox's code page, as a
//! player would on their phone; the game prints the linked account and exits 0.
//!
//! ```sh
//! cargo run --example login
//! ```

use std::time::Duration;

use amazon_rewards_protocol::sandbox_admin::RegisterClient;
use amazon_rewards_sandbox::admin::BlockingClient;
use amazon_rewards_sandbox::{Sandbox, SandboxConfig};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

const CLIENT_ID: &str = "amzn1.application-oa2-client.login-example";

fn main() -> AppExit {
    let sandbox = Sandbox::spawn(SandboxConfig::ephemeral().expect("temporary directory")).expect("sandbox starts");
    let admin = BlockingClient::new(sandbox.url());
    admin
        .register_client(&RegisterClient {
            client_id: CLIENT_ID.into(),
            client_secret: None,
            redirect_uris: vec!["http://127.0.0.1/amazon-rewards/callback".into()],
            name: "Login example".into(),
        })
        .expect("client registered");
    admin.create_customer("player@example.com", "Player One", "hunter2").expect("customer created");
    let data_dir = tempfile_dir("login");

    let mut config = RewardsConfig { client_id: CLIENT_ID.into(), data_dir: Some(data_dir.clone()), ..default() };
    config.use_amazon_at(sandbox.url());
    config.login.restore_session = false;
    let exit = App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            RewardsCorePlugin { config: config.clone() },
            LoginPlugin { config: config.login },
        ))
        .insert_resource(SandboxUrl(sandbox.url().to_owned()))
        .add_systems(Startup, |mut login: MessageWriter<LoginRequest>| {
            login.write(LoginRequest::WithDeviceCode);
        })
        .add_systems(Update, follow_the_login)
        .run();
    let _ = std::fs::remove_dir_all(&data_dir);
    exit
}

#[derive(Resource)]
struct SandboxUrl(String);

fn follow_the_login(mut events: MessageReader<LoginEvent>, sandbox: Res<SandboxUrl>, mut exit: MessageWriter<AppExit>) {
    for event in events.read() {
        match event {
            LoginEvent::DeviceCodeReady { user_code, verification_uri, .. } => {
                println!("enter {user_code} at {verification_uri}");
                enter_code_as_the_player(sandbox.0.clone(), user_code.clone());
            }
            LoginEvent::SignedIn(account) => {
                println!("linked {} ({})", account.name, account.user_id);
                exit.write(AppExit::Success);
            }
            LoginEvent::Failed(error) => {
                eprintln!("sign-in failed: {error}");
                exit.write(AppExit::error());
            }
            _ => {}
        }
    }
}

/// The player's part, on "another device": the sandbox's code page, filled in over HTTP.
fn enter_code_as_the_player(sandbox: String, user_code: String) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let form = [("user_code", user_code.as_str()), ("email", "player@example.com"), ("password", "hunter2")];
        let entered = runtime.block_on(async {
            let form: Vec<_> = form.into_iter().chain([("decision", "allow")]).collect();
            reqwest::Client::new().post(format!("{sandbox}/code")).form(&form).send().await?.error_for_status()
        });
        if let Err(error) = entered {
            eprintln!("the player could not enter the code: {error}");
        }
    });
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bevy_amazon_rewards-{name}-example-{}", std::process::id()))
}
