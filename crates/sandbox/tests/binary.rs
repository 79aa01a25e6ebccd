//! The standalone `amazon-sandbox` program: `--port 0` binds an ephemeral loopback port and prints it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_binary_prints_its_address_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("standalone.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_amazon-sandbox"))
        .args(["--port", "0", "--database"])
        .arg(&database)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("amazon-sandbox listening on ").expect("address line").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async { reqwest::get(format!("{url}/admin/offers")).await.unwrap().status() });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(database.exists(), "the database file was created");
}
