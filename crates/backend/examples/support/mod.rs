//! What the backend's load examples share: their settings from the environment, starting the release
//! `rewards-backend` binary next to them, and timing requests from many workers at once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The environment variable `name` as a number, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len().max(1) as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}

/// Starts `rewards-backend serve` on loopback with `args` after the listeners: the process and its URL.
pub fn start_backend(args: &[&std::ffi::OsStr], log: &str) -> Result<(Child, String), Box<dyn std::error::Error>> {
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("rewards-backend"))
        .ok_or("no binary dir")?;
    let mut child = Command::new(&binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--operator-listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (build it with --bin rewards-backend)", binary.display()))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let line = lines.next().ok_or("no address line")??;
    let url = line.trim().strip_prefix("rewards-backend listening on ").ok_or("no address line")?.to_owned();
    // The rest is drained, so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, url))
}

/// Runs `request(worker, i)` from `concurrency` workers for `seconds` (each must answer `true`): requests per
/// second and the sorted latencies.
pub async fn measure<F, Fut>(concurrency: usize, duration: Duration, request: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let request = Arc::new(request);
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (stop, request) = (stop.clone(), request.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    assert!(request(w, i).await, "a request failed");
                    latencies.push(started.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("a worker panicked"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

/// Several [`measure`]ments of one kind as one: every request's latency, and the rate over their whole time.
#[allow(dead_code, reason = "each example compiles this module; only inventory_load alternates slices")]
pub fn combine(slices: Vec<(f64, Vec<Duration>)>) -> (f64, Vec<Duration>) {
    let requests: usize = slices.iter().map(|(_, latencies)| latencies.len()).sum();
    let seconds: f64 =
        slices.iter().map(|(rate, latencies)| latencies.len() as f64 / rate.max(f64::MIN_POSITIVE)).sum();
    let mut latencies: Vec<Duration> = slices.into_iter().flat_map(|(_, latencies)| latencies).collect();
    latencies.sort();
    (requests as f64 / seconds.max(f64::MIN_POSITIVE), latencies)
}

/// Prints one [`measure`]ment.
pub fn report(name: &str, concurrency: usize, (rate, latencies): &(f64, Vec<Duration>)) {
    println!(
        "{name}: {rate:.0}/s with {concurrency} in flight; p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
}
