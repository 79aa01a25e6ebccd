//! Load test of the backend-owned inventory, from a second process on loopback: three `rewards-backend`
//! processes on one PostgreSQL server (started here, `test_postgres`), players holding studio sessions and
//! gems (10,000 by default). Measures (1) spends per second and their latency, each a new idempotency key; (2) the unchanged sync
//! (`GET /api/inventory` with `If-None-Match`, answered `304` from the stored version) against the same
//! servers' bare 404 route, side by side in alternating slices (`ROUNDS` of them, 5 by default), after
//! `WARMUP` seconds of unmeasured syncs (0 by default: the processes' memories start empty, as after a
//! deploy); (3) spends again, now that every process holds read leases on the players (each spend revokes
//! them first).
//!
//! ```sh
//! cargo build --release -p amazon_rewards_backend --bin rewards-backend --example inventory_load
//! target/release/examples/inventory_load     # PLAYERS, SECONDS, CONCURRENCY, PROCESSES, ROUNDS, WARMUP,
//!                                            # BACKEND_LOG adjust it
//! ```

mod support;

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amazon_rewards_backend::inventory::ledger::{self, Change, ChangeKind};
use amazon_rewards_protocol::catalog::ItemStack;
use futures::StreamExt;
use support::{env, measure, report};

const LOAD_CLIENT: &str = "inventory-load";

fn start_backend(
    database: &str,
    keys: &std::path::Path,
    catalog: &std::path::Path,
) -> Result<(Child, String), Box<dyn std::error::Error>> {
    let args: [&std::ffi::OsStr; 8] = [
        "--database".as_ref(),
        database.as_ref(),
        "--keys".as_ref(),
        keys.as_os_str(),
        "--catalog".as_ref(),
        catalog.as_os_str(),
        "--game-client-id".as_ref(),
        LOAD_CLIENT.as_ref(),
    ];
    // BACKEND_LOG=warn shows what the backends warn of (a failing lease, say); quiet by default.
    support::start_backend(&args, &std::env::var("BACKEND_LOG").unwrap_or_else(|_| "error".into()))
}

/// A player holding a studio session and a million gems; their access token.
async fn seed_player(pool: &sqlx::AnyPool, p: usize) -> Result<String, sqlx::Error> {
    let amazon_user_id = format!("amzn1.account.INV{p}");
    let session = amazon_rewards_backend::link::session_without_link(pool, &amazon_user_id, LOAD_CLIENT).await?;
    let gems = [ItemStack { item: "gem".into(), quantity: 1_000_000 }];
    let change =
        Change { kind: ChangeKind::Grant, source: "LOAD", key: "seed", sku: None, items: &gems, active_until: None };
    ledger::apply(pool, &session.user_id, change).await?;
    Ok(session.tokens.access_token)
}

/// The `ETag` of the player's current inventory.
async fn current_tag(http: &reqwest::Client, url: &str, token: &str) -> Result<String, Box<dyn std::error::Error>> {
    let answer = http.get(format!("{url}/api/inventory")).bearer_auth(token).send().await?;
    Ok(answer.headers().get("etag").ok_or("no etag")?.to_str()?.to_owned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (players, seconds, concurrency, processes) =
        (env("PLAYERS", 10_000), env("SECONDS", 10) as u64, env("CONCURRENCY", 32), env("PROCESSES", 3));
    let rounds = env("ROUNDS", 5).max(1);
    sqlx::any::install_default_drivers();
    let postgres = test_postgres::TestPostgres::start();
    let database = postgres.fresh_database();
    let pool = amazon_rewards_backend::db::open(&database).await?;
    let seeded = Instant::now();
    let tokens: Vec<String> = futures::stream::iter(0..players)
        .map(|p| seed_player(&pool, p))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // Statistics, as a running database has them (autovacuum would gather them within minutes): the planner
    // then looks sessions up by index, as it does on any table past a few thousand rows.
    sqlx::query("ANALYZE").execute(&pool).await?;
    println!("{players} players seeded in {:.1?}", seeded.elapsed());
    pool.close().await;
    let tokens = Arc::new(tokens);

    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "LOADSECRET LOADKEY\n")?;
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/rewards.catalog.json");
    let mut servers = Vec::new();
    for _ in 0..processes {
        servers.push(start_backend(&database, &keys, &catalog)?);
    }
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|(_, url)| url.clone()).collect());
    println!("{players} players, {processes} backend processes on one PostgreSQL, {concurrency} requests in flight");
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;

    let spends = measure_spends(&http, &urls, &tokens, concurrency, seconds, "first").await;
    report("spend", concurrency, &spends);

    // Every player's current tag, then the unchanged sync and the bare route in alternating slices: both
    // meet the same machine (whose speed drifts over seconds), and the ratio compares like with like.
    let tags = current_tags(&http, &urls, &tokens).await?;
    let warmup = env("WARMUP", 0) as u64;
    if warmup > 0 {
        let warm = measure_unchanged(&http, &urls, &tokens, &tags, concurrency, Duration::from_secs(warmup)).await;
        report(&format!("warm-up, {warmup} s of unchanged syncs"), concurrency, &warm);
    }
    let slice = Duration::from_secs(seconds) / rounds as u32;
    let (mut unchanged, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        unchanged.push(measure_unchanged(&http, &urls, &tokens, &tags, concurrency, slice).await);
        bare.push(measure_bare(&http, &urls, concurrency, slice).await);
    }
    let (unchanged, bare) = (support::combine(unchanged), support::combine(bare));
    report("unchanged sync (304)", concurrency, &unchanged);
    report("bare 404 route", concurrency, &bare);
    println!(
        "unchanged sync / bare route: {:.2}x ({rounds} alternating slices of {slice:.1?} each)",
        unchanged.0 / bare.0
    );
    let leased = measure_spends(&http, &urls, &tokens, concurrency, seconds, "leased").await;
    report("spend, players leased", concurrency, &leased);
    for (mut server, _) in servers {
        server.kill()?;
        server.wait()?;
    }
    Ok(())
}

type Urls = Arc<Vec<String>>;
type Tokens = Arc<Vec<String>>;
type Tags = Arc<Vec<String>>;

/// Spends of one gem each, a new idempotency key per request, round-robin over the processes.
async fn measure_spends(
    http: &reqwest::Client,
    urls: &Urls,
    tokens: &Tokens,
    concurrency: usize,
    seconds: u64,
    phase: &'static str,
) -> (f64, Vec<Duration>) {
    let (h, u, t) = (http.clone(), urls.clone(), tokens.clone());
    measure(concurrency, Duration::from_secs(seconds), move |w, i| {
        let (http, urls, tokens) = (h.clone(), u.clone(), t.clone());
        async move {
            let player = (w * 7919 + i * 104_729) % tokens.len();
            let body =
                serde_json::json!({"key": format!("{phase}-{w}-{i}"), "items": [{"item": "gem", "quantity": 1}]});
            let url = format!("{}/api/inventory/spend", urls[(w + i) % urls.len()]);
            match http.post(url).bearer_auth(&tokens[player]).json(&body).send().await {
                Ok(answer) if answer.status().is_success() => true,
                Ok(answer) => {
                    eprintln!("spend answered {}: {}", answer.status(), answer.text().await.unwrap_or_default());
                    false
                }
                Err(error) => {
                    eprintln!("spend failed: {error}");
                    false
                }
            }
        }
    })
    .await
}

/// Every player's current `ETag`.
async fn current_tags(
    http: &reqwest::Client,
    urls: &Urls,
    tokens: &Tokens,
) -> Result<Tags, Box<dyn std::error::Error>> {
    let tags: Vec<String> = futures::stream::iter(tokens.iter())
        .map(|token| current_tag(http, &urls[0], token))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(tags))
}

/// Syncs naming each player's current `ETag`, every one answered `304`.
async fn measure_unchanged(
    http: &reqwest::Client,
    urls: &Urls,
    tokens: &Tokens,
    tags: &Tags,
    concurrency: usize,
    duration: Duration,
) -> (f64, Vec<Duration>) {
    let (h, u, t, g) = (http.clone(), urls.clone(), tokens.clone(), tags.clone());
    measure(concurrency, duration, move |w, i| {
        let (http, urls, tokens, tags) = (h.clone(), u.clone(), t.clone(), g.clone());
        async move {
            let player = (w * 7919 + i * 104_729) % tokens.len();
            let url = format!("{}/api/inventory", urls[(w + i) % urls.len()]);
            let answer = http.get(url).bearer_auth(&tokens[player]).header("if-none-match", &tags[player]).send().await;
            match answer {
                Ok(answer) if answer.status().as_u16() == 304 => true,
                Ok(answer) => {
                    eprintln!("sync answered {}", answer.status());
                    false
                }
                Err(error) => {
                    eprintln!("sync failed: {error}");
                    false
                }
            }
        }
    })
    .await
}

/// The same servers' 404 route: the HTTP work alone.
async fn measure_bare(
    http: &reqwest::Client,
    urls: &Urls,
    concurrency: usize,
    duration: Duration,
) -> (f64, Vec<Duration>) {
    let (h, u) = (http.clone(), urls.clone());
    measure(concurrency, duration, move |w, i| {
        let (http, urls) = (h.clone(), u.clone());
        async move {
            let url = format!("{}/no-such-route", urls[(w + i) % urls.len()]);
            http.get(url).send().await.is_ok_and(|r| r.status().as_u16() == 404)
        }
    })
    .await
}
