//! Load test of the studio backend, from a second process on loopback.
//!
//! Seeds a SQLite database with 10,000 players × 20 Instant Access purchases, starts the `rewards-backend`
//! binary on it, then measures (1) entitlements-feed requests per second and latency percentiles with many
//! players polling at once, and (2) signed `Purchase` calls per second. Each player holds a studio session,
//! started through the backend's own library (as linking would) before the server starts.
//!
//! ```sh
//! cargo build --release -p amazon_rewards_backend --bin rewards-backend --example load
//! target/release/examples/load            # PLAYERS, PER_PLAYER, SECONDS, CONCURRENCY env vars adjust it
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amazon_rewards_protocol::dta1::{AmzDate, Credential, sign};

/// The game's client id in the load run.
const LOAD_CLIENT: &str = "amzn1.application-oa2-client.load";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let players = env("PLAYERS", 10_000);
    let per_player = env("PER_PLAYER", 20);
    let seconds = env("SECONDS", 10) as u64;
    let concurrency = env("CONCURRENCY", 32);
    let dir = tempfile::tempdir()?;
    let database = format!("sqlite://{}", dir.path().join("load.db").display());

    // Seed through the backend's own schema.
    let pool = amazon_rewards_backend::db::open(&database).await?;
    let seeding = Instant::now();
    let mut tx = pool.begin().await?;
    for p in 0..players {
        sqlx::query("INSERT INTO accounts (user_id, username, amazon_user_id, created_at) VALUES ($1, $2, $3, 0)")
            .bind(format!("player-{p}"))
            .bind(format!("user{p}"))
            .bind(format!("amzn1.account.LOAD{p}"))
            .execute(&mut *tx)
            .await?;
        for e in 0..per_player {
            sqlx::query("INSERT INTO ia_purchases (purchase_token, user_id, product_id, created_at) VALUES ($1, $2, 'ia-gem-crate', $3)")
                .bind(format!("seed-{p}-{e}"))
                .bind(format!("player-{p}"))
                .bind(e as i64)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    let mut tokens = Vec::with_capacity(players);
    for p in 0..players {
        let account = format!("amzn1.account.LOAD{p}");
        let session = amazon_rewards_backend::link::session_without_link(&pool, &account, LOAD_CLIENT).await?;
        tokens.push(session.tokens.access_token);
    }
    let tokens = Arc::new(tokens);
    pool.close().await;
    println!("seeded {players} players × {per_player} purchases in {:.1?}", seeding.elapsed());

    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "LOADSECRET LOADKEY\n")?;
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("rewards-backend"))
        .ok_or("no binary dir")?;
    let mut server = Command::new(&binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
            "--database",
            &database,
            "--keys",
        ])
        .arg(&keys)
        .args(["--game-client-id", LOAD_CLIENT])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (build it with --bin rewards-backend)", binary.display()))?;
    let mut lines = BufReader::new(server.stdout.take().ok_or("no stdout")?).lines();
    let line = lines.next().ok_or("no address line")??;
    let url = line.trim().strip_prefix("rewards-backend listening on ").ok_or("no address line")?.to_owned();
    // The rest is drained, so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    // Each player's first poll.
    let warm = Instant::now();
    let warmers = (0..concurrency).map(|w| {
        let (http, url, tokens) = (http.clone(), url.clone(), tokens.clone());
        async move {
            let mut p = w;
            while p < players {
                let response =
                    http.get(format!("{url}/api/entitlements")).header("x-amz-access-token", &tokens[p]).send().await;
                assert!(response.is_ok_and(|r| r.status().is_success()));
                p += concurrency;
            }
        }
    });
    futures::future::join_all(warmers).await;
    println!("first poll of all {players} players in {:.1?}", warm.elapsed());

    for (name, signed) in [("feed", false), ("signed Purchase", true)] {
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (http, url, stop, counter) = (http.clone(), url.clone(), stop.clone(), counter.clone());
                let tokens = tokens.clone();
                tokio::spawn(async move {
                    let credential = Credential::new("LOADKEY", "LOADSECRET");
                    let mut latencies = Vec::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        let player = (i * 7919) % players;
                        let started = Instant::now();
                        let ok = if signed {
                            let body = serde_json::json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate",
                                "userId": format!("player-{player}"), "purchaseToken": format!("load-{w}-{i}")}).to_string();
                            let headers = sign("POST", "/instant-access/fulfillment", "application/json", body.as_bytes(), &credential, AmzDate::now());
                            http.post(format!("{url}/instant-access/fulfillment"))
                                .header("content-type", "application/json")
                                .header("x-amz-date", headers.x_amz_date)
                                .header("authorization", headers.authorization)
                                .body(body)
                                .send()
                                .await
                                .is_ok_and(|r| r.status().is_success())
                        } else {
                            match http.get(format!("{url}/api/entitlements")).header("x-amz-access-token", &tokens[player]).send().await {
                                Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| b.len() > 100),
                                _ => false,
                            }
                        };
                        assert!(ok, "a request failed");
                        latencies.push(started.elapsed());
                        counter.fetch_add(1, Ordering::Relaxed);
                        i += concurrency;
                    }
                    latencies
                })
            })
            .collect();
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for worker in workers {
            latencies.extend(worker.await?);
        }
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "{name}: {} requests in {:.1?} = {:.0}/s with {concurrency} in flight; p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            latencies.len(),
            elapsed,
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
        );
    }
    server.kill()?;
    server.wait()?;
    Ok(())
}
