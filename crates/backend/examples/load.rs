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

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amazon_rewards_protocol::dta1::{AmzDate, Credential, sign};
use support::{env, measure, report, start_backend};

/// The game's client id in the load run.
const LOAD_CLIENT: &str = "amzn1.application-oa2-client.load";

/// `players` accounts with `per_player` purchases each, through the backend's own schema, and a studio
/// session for each: their access tokens.
async fn seed(pool: &sqlx::AnyPool, players: usize, per_player: usize) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    for p in 0..players {
        sqlx::query("INSERT INTO accounts (user_id, username, amazon_user_id, created_at) VALUES ($1, $2, $3, 0)")
            .bind(format!("player-{p}"))
            .bind(format!("user{p}"))
            .bind(format!("amzn1.account.LOAD{p}"))
            .execute(&mut *tx)
            .await?;
        for e in 0..per_player {
            sqlx::query(
                "INSERT INTO ia_purchases (purchase_token, user_id, product_id, created_at)
                 VALUES ($1, $2, 'ia-gem-crate', $3)",
            )
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
        let session = amazon_rewards_backend::link::session_without_link(pool, &account, LOAD_CLIENT).await?;
        tokens.push(session.tokens.access_token);
    }
    Ok(tokens)
}

/// One poll of the entitlements feed by the player holding `token`: whether it answered a full feed.
async fn poll(http: &reqwest::Client, url: &str, token: &str) -> bool {
    match http.get(format!("{url}/api/entitlements")).header("x-amz-access-token", token).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| b.len() > 100),
        _ => false,
    }
}

/// Each player's first poll, `concurrency` at a time.
async fn first_polls(http: &reqwest::Client, url: &str, tokens: &[String], concurrency: usize) {
    let pollers = (0..concurrency).map(|w| async move {
        for token in tokens.iter().skip(w).step_by(concurrency) {
            assert!(poll(http, url, token).await, "a first poll failed");
        }
    });
    futures::future::join_all(pollers).await;
}

/// A signed Instant Access `Purchase` for `player`, with a new purchase token.
async fn purchase(http: &reqwest::Client, url: &str, player: usize, purchase_token: String) -> bool {
    let credential = Credential::new("LOADKEY", "LOADSECRET");
    let body = serde_json::json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate",
        "userId": format!("player-{player}"), "purchaseToken": purchase_token})
    .to_string();
    let path = "/instant-access/fulfillment";
    let headers = sign("POST", path, "application/json", body.as_bytes(), &credential, AmzDate::now());
    http.post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .header("x-amz-date", headers.x_amz_date)
        .header("authorization", headers.authorization)
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (players, per_player) = (env("PLAYERS", 10_000), env("PER_PLAYER", 20));
    let (seconds, concurrency) = (env("SECONDS", 10) as u64, env("CONCURRENCY", 32));
    let dir = tempfile::tempdir()?;
    let database = format!("sqlite://{}", dir.path().join("load.db").display());
    let pool = amazon_rewards_backend::db::open(&database).await?;
    let seeding = Instant::now();
    let tokens = Arc::new(seed(&pool, players, per_player).await?);
    pool.close().await;
    println!("seeded {players} players × {per_player} purchases in {:.1?}", seeding.elapsed());

    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "LOADSECRET LOADKEY\n")?;
    let args: [&std::ffi::OsStr; 6] = [
        "--database".as_ref(),
        database.as_ref(),
        "--keys".as_ref(),
        keys.as_os_str(),
        "--game-client-id".as_ref(),
        LOAD_CLIENT.as_ref(),
    ];
    let (mut server, url) = start_backend(&args, "warn")?;
    let url = Arc::new(url);
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let warm = Instant::now();
    first_polls(&http, &url, &tokens, concurrency).await;
    println!("first poll of all {players} players in {:.1?}", warm.elapsed());

    let (h, u, t) = (http.clone(), url.clone(), tokens.clone());
    let feed = measure(concurrency, Duration::from_secs(seconds), move |w, i| {
        let (http, url, tokens) = (h.clone(), u.clone(), t.clone());
        async move { poll(&http, &url, &tokens[(w + i * concurrency) * 7919 % tokens.len()]).await }
    })
    .await;
    report("feed", concurrency, &feed);
    let (h, u) = (http.clone(), url.clone());
    let purchases = measure(concurrency, Duration::from_secs(seconds), move |w, i| {
        let (http, url) = (h.clone(), u.clone());
        async move { purchase(&http, &url, (w + i * concurrency) * 7919 % players, format!("load-{w}-{i}")).await }
    })
    .await;
    report("signed Purchase", concurrency, &purchases);
    server.kill()?;
    server.wait()?;
    Ok(())
}
