//! The small per-service examples run to the end: each starts what it needs on loopback, does its one thing
//! and exits 0 (a plain `cargo test` builds them as programs next to the test binaries).

use std::path::PathBuf;
use std::process::Command;

fn run_example(name: &str) -> String {
    let test = std::env::current_exe().unwrap();
    let profile_dir = test.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} is missing: run a plain `cargo test` so the examples are built", binary.display());
    let output = Command::new(&binary)
        .env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"))
        .env("BEVY_ASSET_ROOT", PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed ({}):\n{stdout}\n{stderr}", output.status);
    stdout
}

#[test]
fn the_login_example_links_an_account_by_code_pairing() {
    assert!(run_example("login").contains("linked Player One"));
}

#[test]
fn the_pull_example_grants_and_fulfils_every_entitlement() {
    let out = run_example("pull");
    assert!(out.contains("all 3 entitlements fulfilled") && out.contains("gold     600"), "{out}");
}

#[test]
fn the_subscriptions_example_activates_a_key_through_the_backend() {
    assert!(run_example("subscriptions").contains("SEASONPASS active"));
}

#[test]
fn the_moments_example_earns_a_reward() {
    assert!(run_example("moments").contains("rewarded: 500 bonus gems"));
}

#[test]
fn the_probe_example_compares_every_answer_with_its_golden_shape() {
    let out = run_example("probe");
    assert!(out.contains("GET /api/entitlements: 200 as expected; the shape matches"), "{out}");
    assert!(out.contains("every answer has the shape the code expects"), "{out}");
}
