//! The demo game's headless run: the whole story (link Amazon, Prime Gaming loot, coin field and Moments
//! rewards, store pulls, a Prime Gaming claim, an Instant Access purchase and its refund, a spend of gems on the
//! backend, the season pass, the billing page, the history, a second PC showing the same inventory) driven by
//! scripted input against the in-process sandbox and backend. It exits 0 only when every step happened.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The demo binary. A plain `cargo test` (no target selection) builds every example as a program before it runs
/// any test, with the same features as the tests, so the demo is not built a second time. Only when this test
/// is run on its own (`cargo test --test demo`) is the program missing: then it is built here.
fn demo_binary() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile_dir = test.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        eprintln!(
            "{} is missing (run `cargo test --workspace` to build it with the tests); building it",
            binary.display()
        );
        let built = Command::new(env!("CARGO"))
            .args(["build", "--example", "demo", "--manifest-path", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")])
            .status()
            .unwrap();
        assert!(built.success(), "cargo build --example demo failed");
    }
    binary
}

#[test]
fn the_headless_story_runs_every_step() {
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(demo_binary())
        .args(["--headless", "--data-dir"])
        .arg(data.path())
        .env("BEVY_ASSET_ROOT", env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the demo failed after {:?}:\n{stdout}\n{stderr}", started.elapsed());
    assert!(stdout.contains("every step happened"), "{stdout}");
    for step in 1..=17 {
        assert!(stdout.contains(&format!("step {step}/17 done")), "step {step} missing:\n{stdout}");
    }
    let race =
        stdout.lines().find(|l| l.starts_with("coin race won by")).unwrap_or_else(|| panic!("no race:\n{stdout}"));
    assert!(race.ends_with(": rewarded"), "the race's winner was paid: {race}");
    assert!(stdout.contains("+ 100 x Gems from Instant Access purchase"), "{stdout}");
    assert!(stdout.contains("- 100 x Gems taken back"), "{stdout}");
    assert!(stdout.contains("- 10 gems: 10 coins rain on the field!"), "the spend answered:\n{stdout}");
    let everything = r#"[("gold", 500), ("gem", 15), ("season_badge", 1), ("double_coins", 1)]"#;
    assert!(stdout.contains(&format!("\ninventory: {everything}")), "{stdout}");
    // The second PC (its own process and data directory) linked the same account and showed the same items.
    assert!(stdout.contains(&format!("second PC inventory: {everything}")), "{stdout}");
    assert!(stdout.contains("every second PC step happened"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(600));

    // Everything lives under the data dir: the player's ledger and the demo's own services.
    for file in ["sandbox.db", "backend.db", "demo-seed.json", "game/achievements.json"] {
        assert!(data.path().join(file).exists(), "{file} missing");
    }
    for game in ["game", "second-pc"] {
        let players = std::fs::read_dir(data.path().join(game).join("players")).unwrap().count();
        assert_eq!(players, 1, "one player's files on each PC");
    }
}

#[test]
fn without_a_display_the_demo_says_so_and_exits_non_zero() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(demo_binary())
        .args(["--data-dir"])
        .arg(data.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("BEVY_ASSET_ROOT", env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("neither DISPLAY nor WAYLAND_DISPLAY is set"), "{stderr}");
    assert!(stderr.contains("--headless") && stderr.contains("xvfb-run"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
