//! Running the backend in production: `/healthz` and `/readyz` (database, migrations, each Amazon service checked
//! in the background: reachable or degraded), Prometheus metrics on the operator listener (scraped and parsed),
//! SIGTERM draining the requests in flight, JSON logs naming each request's id.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amazon_rewards_backend::{BackendConfig, serve};
use amazon_rewards_protocol::dta1::{AmzDate, Credential, KeyStore, sign};
use serde_json::{Value, json};

const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// A stand-in for an Amazon service on loopback: answers every path after `delay`.
async fn fake_amazon(delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        let notification = json!({"title": "t", "description": "d", "imageUrl": "https://example.com/i.png"});
        let info =
            json!({"campaignId": "campaign-1", "state": "Finished", "notification": notification, "available": false});
        (axum::http::StatusCode::OK, axum::Json(info))
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn config(database: String) -> BackendConfig {
    let mut config =
        BackendConfig::new("127.0.0.1:0".parse().unwrap(), database, KeyStore::parse("SECRET KEYID").unwrap());
    config.operator = Some(amazon_rewards_backend::operator::OperatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(OPERATOR_TOKEN.into()),
    });
    config.sandbox = true;
    config
}

async fn get(url: String, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn readiness_names_the_database_the_migrations_and_each_amazon_service() {
    let dir = tempfile::tempdir().unwrap();
    let live = fake_amazon(Duration::ZERO).await;
    let mut config = config(format!("sqlite://{}", dir.path().join("b.db").display()));
    config.prime_gaming_url = Some(live);
    config.moments = Some(amazon_rewards_backend::moments::MomentsConfig::new("http://127.0.0.1:1", "key"));
    let backend = serve(config).await.unwrap();
    let (status, body) = get(format!("{}/healthz", backend.url()), None).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"up"}"#));
    // The first check runs at start; the probe only reads its result.
    let started = Instant::now();
    let ready = loop {
        let (status, body) = get(format!("{}/readyz", backend.url()), None).await;
        let ready: Value = serde_json::from_str(&body).unwrap();
        if ready["services"]["moments"] != "unchecked" && ready["services"]["prime_gaming"] != "unchecked" {
            break (status, ready);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready.0, 200, "a degraded Amazon service does not make the backend unready");
    assert_eq!(ready.1["status"], "degraded");
    assert_eq!(ready.1["database"], "reachable");
    assert_eq!(ready.1["services"], json!({"prime_gaming": "reachable", "moments": "degraded"}));
    let migrations = &ready.1["migrations"];
    assert_eq!(migrations["applied"], migrations["expected"]);

    // A migration missing: not ready.
    sqlx::query("DELETE FROM schema_migrations WHERE version = $1")
        .bind(amazon_rewards_backend::db::latest_migration())
        .execute(&backend.pool)
        .await
        .unwrap();
    let (status, body) = get(format!("{}/readyz", backend.url()), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""status":"not_ready""#), "{body}");
}

/// One Prometheus sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// A Prometheus text exposition, parsed: (name, labels) → value, and the `# TYPE` of each family.
fn parse(text: &str) -> (Vec<Sample>, Vec<(String, String)>) {
    let mut samples = Vec::new();
    let mut types = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap();
                let pairs = labels
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').unwrap();
                        (key.to_owned(), value.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), pairs)
            }
            None => (series.to_owned(), Vec::new()),
        };
        samples.push((name, labels, value));
    }
    (samples, types)
}

#[tokio::test]
async fn metrics_on_the_operator_listener_count_requests_routes_and_instant_access_calls() {
    let dir = tempfile::tempdir().unwrap();
    let backend = serve(config(format!("sqlite://{}", dir.path().join("b.db").display()))).await.unwrap();
    let http = reqwest::Client::new();
    for _ in 0..3 {
        http.get(format!("{}/healthz", backend.url())).send().await.unwrap();
    }
    let body = json!({"operation": "GetUserId", "infoField1": "nobody"}).to_string();
    let path = amazon_rewards_protocol::instant_access::LINKING_PATH;
    let signed =
        sign("POST", path, "application/json", body.as_bytes(), &Credential::new("KEYID", "SECRET"), AmzDate::now());
    let answer = http
        .post(format!("{}{path}", backend.url()))
        .header("content-type", "application/json")
        .header("x-amz-date", signed.x_amz_date)
        .header("authorization", signed.authorization)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let operator = backend.operator_url().unwrap();
    assert_eq!(get(format!("{operator}/metrics"), None).await.0, 401, "behind the operator token");
    assert_eq!(get(format!("{}/metrics", backend.url()), None).await.0, 404, "never on the public listener");
    let (status, text) = get(format!("{operator}/metrics"), Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 200);
    let (samples, types) = parse(&text);
    let value = |name: &str, wanted: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name && wanted.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    assert!(value("rewards_http_requests_total", &[("route", "/healthz"), ("status", "200")]) >= 3.0, "{text}");
    assert!(value("rewards_http_request_duration_seconds_count", &[("route", "/healthz")]) >= 3.0, "{text}");
    let linking = [("operation", "GetUserId"), ("result", "FAIL_ACCOUNT_INVALID")];
    assert!(value("rewards_instant_access_calls_total", &linking) >= 1.0, "{text}");
    let kind = |name: &str| types.iter().find(|(n, _)| n == name).map(|(_, k)| k.as_str());
    assert_eq!(kind("rewards_http_requests_total"), Some("counter"));
    assert_eq!(kind("rewards_http_request_duration_seconds"), Some("histogram"));
}

/// `rewards-backend serve` as a process, logging JSON, its Moments API at `amazon`: the process, its URL, and
/// its log lines as they come.
fn spawn_cli(database: &str, amazon: &str) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    let keys = std::env::temp_dir().join(format!("operating-keys-{}", std::process::id()));
    std::fs::write(&keys, "SECRET KEYID\n").unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_rewards-backend"))
        .args(["--log-json", "serve", "--listen", "127.0.0.1:0", "--operator-listen", "127.0.0.1:0", "--sandbox"])
        .args(["--database", database, "--moments-url", amazon, "--moments-api-key", "key"])
        .args(["--moment", "race:campaign-1:100:1000"])
        .arg("--keys")
        .arg(&keys)
        .env("REWARDS_BACKEND_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().strip_prefix("rewards-backend listening on ").unwrap().to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    let (sender, logs) = std::sync::mpsc::channel();
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    (server, url, logs)
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_and_json_logs_name_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("b.db").display());
    // Amazon answers after two seconds: the moment's request is in flight when SIGTERM arrives.
    let amazon = fake_amazon(Duration::from_secs(2)).await;
    let (mut server, url, logs) = spawn_cli(&database, &amazon);
    let pool = amazon_rewards_backend::db::open(&database).await.unwrap();
    let session =
        amazon_rewards_backend::link::session_without_link(&pool, "amzn1.account.DRAIN", "game").await.unwrap();
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move {
            let answer = reqwest::Client::new()
                .post(format!("{url}/api/moments"))
                .bearer_auth(&session.tokens.access_token)
                .json(&json!({"moment": "race", "achievement": "won"}))
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sent = Instant::now();
    // What a service manager sends to stop it.
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the request in flight was answered: {body}");
    assert!(body.contains("campaign_not_active"), "with Amazon's answer: {body}");
    let exited = server.wait().unwrap();
    assert!(exited.success(), "a clean exit after draining: {exited}");
    assert!(sent.elapsed() >= Duration::from_millis(900), "it waited for the request");
    assert!(reqwest::Client::new().get(format!("{url}/healthz")).send().await.is_err(), "no longer listening");

    let lines: Vec<String> = logs.try_iter().collect();
    let json: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(json.len(), lines.len(), "every log line is JSON: {lines:?}");
    let of_request = json.iter().filter(|l| l["span"]["request_id"].as_str().is_some_and(|id| id.len() > 8));
    assert!(of_request.count() > 0, "lines of a request name its id: {lines:?}");
    assert!(json.iter().any(|l| l["message"] == "stopped"), "{lines:?}");
}
