//! The scheduled DevPay verification against a license service that fails for one subscription: the sweep
//! goes on (the hardening review's finding 8: it stopped at the first error, so every later subscription,
//! cancelled ones included, was never revoked), and subscriptions it can no longer verify for good end.

use std::collections::HashMap;
use std::time::Duration;

use amazon_rewards_backend::devpay::{DevPayConfig, DevPayProductConfig, SweepReport, sweep};
use amazon_rewards_protocol::devpay::license;
use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;

/// A license service: a `…-BROKEN` subscription fails with HTTP 500, a `…-GONE` one is unknown to it, every
/// other one is cancelled.
async fn license_service() -> String {
    let verify = |Json(call): Json<license::VerifyByPid>| async move {
        let pid = call.persistent_identifier;
        if pid.ends_with("BROKEN") {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else if pid.ends_with("GONE") {
            (
                StatusCode::BAD_REQUEST,
                Json(license::LicenseError {
                    error: license::LicenseErrorDetail { code: "InvalidIdentifier".into(), message: "no".into() },
                }),
            )
                .into_response()
        } else {
            Json(license::SubscriptionStanding {
                customer_id: "amzn1.account.X".into(),
                subscribed: false,
                status: "cancelled".into(),
                paid_through_period: 1,
                current_period: 2,
                monthly_fee_cents: 999,
                next_monthly_fee_cents: 999,
                cancel_at_period_end: false,
                paid_until: "2026-12-01".into(),
            })
            .into_response()
        }
    };
    let routes = axum::Router::new().route(&license::path(license::VERIFY_BY_PID), post(verify));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    url
}

#[tokio::test]
async fn one_failure_does_not_stop_the_sweep_and_unverifiable_subscriptions_end() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sweep.db").display());
    let pool = amazon_rewards_backend::db::open(&url).await.unwrap();
    sqlx::query("INSERT INTO accounts (user_id, username, created_at) VALUES ('player-1', 'p1', 0)")
        .execute(&pool)
        .await
        .unwrap();
    // Sorted by persistent id, the failing one comes first.
    let rows = [
        ("PID-1-BROKEN", "SEASONPASS"),
        ("PID-2-CANCELLED", "SEASONPASS"),
        ("PID-3-GONE", "SEASONPASS"),
        ("PID-4-OLD", "RETIRED"),
    ];
    for (pid, product) in rows {
        sqlx::query(
            "INSERT INTO devpay_subscriptions (persistent_id, user_id, product_code, subscribed, status, paid_through_period,
                 current_period, monthly_fee_cents, next_monthly_fee_cents, cancel_at_period_end, verified_at)
             VALUES ($1, 'player-1', $2, 1, 'active', 5, 1, 999, 999, 0, 0)",
        )
        .bind(pid)
        .bind(product)
        .execute(&pool)
        .await
        .unwrap();
    }
    let devpay = DevPayConfig {
        license_url: license_service().await,
        products: HashMap::from([(
            "SEASONPASS".to_owned(),
            DevPayProductConfig { product_token: "token".into(), sku: "season-pass".into() },
        )]),
        verify_every: Duration::from_secs(3600),
        signup_url: None,
        public_url: String::new(),
    };
    let report = sweep(&pool, &reqwest::Client::new(), &devpay, None).await;
    assert_eq!(report, SweepReport { verified: 1, ended: 2, failed: 1 });
    let standing: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT persistent_id, subscribed, status FROM devpay_subscriptions ORDER BY persistent_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        standing,
        [
            ("PID-1-BROKEN".to_owned(), 1, "active".to_owned()),
            ("PID-2-CANCELLED".to_owned(), 0, "cancelled".to_owned()),
            ("PID-3-GONE".to_owned(), 0, "unknown_to_license_service".to_owned()),
            ("PID-4-OLD".to_owned(), 0, "product_removed".to_owned()),
        ],
        "the broken one is left for the next sweep; the others are settled"
    );
}
