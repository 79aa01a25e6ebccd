//! The demo game's headless run: the whole story (link Amazon, Prime Gaming loot, coin field and Moments
//! rewards, store pulls, a Prime Gaming claim, an Instant Access purchase and its refund, the season pass, the
//! billing page) driven by scripted input against the in-process sandbox and backend. It exits 0 only when
//! every step happened.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The demo binary `cargo test --all-targets` built next to the test binaries: `examples/demo` when cargo
/// copied it there, else the newest `examples/demo-<hash>` (test runs leave examples under their hashed names).
fn demo_binary() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let examples = test.parent().and_then(|deps| deps.parent()).unwrap().join("examples");
    let plain = examples.join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    let hashed = std::fs::read_dir(&examples)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("demo-") && path.extension().is_none_or(|e| e == std::env::consts::EXE_EXTENSION)
        })
        .max_by_key(|path| path.metadata().and_then(|m| m.modified()).ok());
    match hashed
        .into_iter()
        .chain(plain.exists().then_some(plain))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    {
        Some(binary) => binary,
        None => panic!("no demo binary under {}: run the tests with --all-targets", examples.display()),
    }
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
    for step in 1..=13 {
        assert!(stdout.contains(&format!("step {step}/13 done")), "step {step} missing:\n{stdout}");
    }
    assert!(stdout.contains("+ 100 x Gems from Instant Access purchase"), "{stdout}");
    assert!(stdout.contains("- 100 x Gems taken back"), "{stdout}");
    assert!(stdout.contains(r#"inventory: [("gold", 500), ("gem", 25), ("season_badge", 1)]"#), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(600));

    // Everything lives under the data dir: the player's ledger and the demo's own services.
    for file in ["sandbox.db", "backend.db", "demo-seed.json", "game/achievements.json"] {
        assert!(data.path().join(file).exists(), "{file} missing");
    }
    let players = std::fs::read_dir(data.path().join("game/players")).unwrap().count();
    assert_eq!(players, 1, "one player ledger");
}
