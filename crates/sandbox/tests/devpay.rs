//! DevPay on the sandbox, over real HTTP: sign-up pages with pricing and an activation key, the license
//! service with its errors, monthly billing at the price in force, price changes, cancellation, payment problems.

use amazon_rewards_protocol::sandbox_admin::{CreateCustomer, DevPayClock, DevPayPriceChange, DevPayProduct};
use amazon_rewards_sandbox::{RunningSandbox, SandboxConfig, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "season-pass-product-token";

struct DevPay {
    sandbox: RunningSandbox,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl DevPay {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = serve(SandboxConfig::new(0, dir.path().join("devpay.db"))).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let devpay = Self { sandbox, http, _dir: dir };
        let product = DevPayProduct {
            product_code: "SEASONPASS".into(),
            product_token: TOKEN.into(),
            title: "Season pass".into(),
            description: "Monthly perks.".into(),
            signup_fee_cents: 500,
            monthly_fee_cents: 999,
            redirect_url: "http://127.0.0.1:9/devpay/return".into(),
        };
        assert_eq!(
            devpay.http.post(devpay.url("/admin/devpay/products")).json(&product).send().await.unwrap().status(),
            StatusCode::CREATED
        );
        devpay
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    async fn customer(&self, email: &str) -> String {
        let body = CreateCustomer { email: email.into(), name: "Sub".into(), password: "pw".into() };
        let customer: Value =
            self.http.post(self.url("/admin/customers")).json(&body).send().await.unwrap().json().await.unwrap();
        customer["user_id"].as_str().unwrap().to_owned()
    }

    /// Walks the sign-up pages; returns the activation key and the vendor redirect.
    async fn sign_up(&self, email: &str) -> (String, String) {
        let page = self.http.get(self.url("/devpay/signup/SEASONPASS")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Sign-up fee <b>$5.00</b>, then <b>$9.99</b> per month"), "{page}");
        let review = self
            .http
            .post(self.url("/devpay/signup/SEASONPASS"))
            .form(&[("email", email), ("password", "pw")])
            .send()
            .await
            .unwrap();
        assert_eq!(review.status(), StatusCode::OK);
        assert!(review.text().await.unwrap().contains("You pay $14.99 now"));
        let confirmed = self
            .http
            .post(self.url("/devpay/signup/SEASONPASS/confirm"))
            .form(&[("email", email), ("password", "pw")])
            .send()
            .await
            .unwrap();
        let html = confirmed.text().await.unwrap();
        let key = html.split(r#"<b id="activation-key">"#).nth(1).unwrap().split('<').next().unwrap().to_owned();
        let redirect = html
            .split(r#"id="continue-to-vendor" href=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        (key, redirect)
    }

    async fn license(&self, call: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(&format!("/devpay/license/{call}"))).json(&body).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn advance(&self) -> i64 {
        let clock: DevPayClock =
            self.http.post(self.url("/admin/devpay/clock/advance")).send().await.unwrap().json().await.unwrap();
        clock.period
    }

    async fn billing_page(&self, email: &str, cancel: Option<&str>) -> String {
        let mut form = vec![("email", email.to_owned()), ("password", "pw".to_owned())];
        if let Some(key) = cancel {
            form.push(("cancel", key.to_owned()));
        }
        self.http.post(self.url("/devpay/billing")).form(&form).send().await.unwrap().text().await.unwrap()
    }
}

fn error_code(body: &Value) -> &str {
    body["Error"]["Code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn sign_up_activate_bill_change_price_and_cancel() {
    let devpay = DevPay::start().await;
    devpay.customer("sub@example.com").await;
    let (key, redirect) = devpay.sign_up("sub@example.com").await;
    assert_eq!(redirect, format!("http://127.0.0.1:9/devpay/return?ActivationKey={key}&ProductCode=SEASONPASS"));

    // License service: the key's errors, then activation, exactly once.
    let (status, body) =
        devpay.license("activate-hosted", json!({"ActivationKey": key, "ProductToken": "wrong-token-123"})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "InvalidProductToken"));
    for unknown in ["NOPE", "!!!", ""] {
        let (_, body) =
            devpay.license("activate-hosted", json!({"ActivationKey": unknown, "ProductToken": TOKEN})).await;
        assert_eq!(error_code(&body), "InvalidActivationKey", "{unknown:?}");
    }
    let (status, body) =
        devpay.license("activate-hosted", json!({"ActivationKey": key.to_lowercase(), "ProductToken": TOKEN})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pid = body["PersistentIdentifier"].as_str().unwrap().to_owned();
    assert!(body["UserToken"].as_str().is_some());
    let (_, body) = devpay.license("activate-hosted", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    assert_eq!(error_code(&body), "ActivationKeyAlreadyUsed");
    let (_, body) = devpay.license("activate-desktop", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    assert_eq!(error_code(&body), "ActivationKeyAlreadyUsed");

    let verify = |pid: String| {
        let devpay = &devpay;
        async move { devpay.license("verify-by-pid", json!({"PersistentIdentifier": pid, "ProductToken": TOKEN})).await.1 }
    };
    let standing = verify(pid.clone()).await;
    assert_eq!(standing["Subscribed"], true);
    assert_eq!((standing["MonthlyFeeCents"].as_i64(), standing["PaidThroughPeriod"].as_i64()), (Some(999), Some(0)));

    // Month 1 at $9.99; then a price change, visible before it applies; month 2 at $12.99.
    assert_eq!(devpay.advance().await, 1);
    let change = DevPayPriceChange { monthly_fee_cents: 1299 };
    devpay.http.post(devpay.url("/admin/devpay/products/SEASONPASS/price")).json(&change).send().await.unwrap();
    let standing = verify(pid.clone()).await;
    assert_eq!(
        (standing["MonthlyFeeCents"].as_i64(), standing["NextMonthlyFeeCents"].as_i64()),
        (Some(999), Some(1299))
    );
    let page = devpay.billing_page("sub@example.com", None).await;
    assert!(page.contains("From month 2: $12.99 per month."), "{page}");
    assert_eq!(devpay.advance().await, 2);
    let page = devpay.billing_page("sub@example.com", None).await;
    for bill in [
        "Month 0: signup $5.00 paid",
        "Month 0: monthly $9.99 paid",
        "Month 1: monthly $9.99 paid",
        "Month 2: monthly $12.99 paid",
    ] {
        assert!(page.contains(bill), "{bill} in {page}");
    }

    // Cancel: still active to the end of the paid month, then over.
    let page = devpay.billing_page("sub@example.com", Some(&key)).await;
    assert!(page.contains("active until the end of month 2, then cancelled"), "{page}");
    let standing = verify(pid.clone()).await;
    assert_eq!((standing["Subscribed"].as_bool(), standing["CancelAtPeriodEnd"].as_bool()), (Some(true), Some(true)));
    assert_eq!(devpay.advance().await, 3);
    let standing = verify(pid.clone()).await;
    assert_eq!((standing["Subscribed"].as_bool(), standing["Status"].as_str()), (Some(false), Some("cancelled")));
    assert!(!devpay.billing_page("sub@example.com", None).await.contains("Month 3"), "no bill after cancellation");

    let (_, body) =
        devpay.license("verify-by-pid", json!({"PersistentIdentifier": "PID-unknown", "ProductToken": TOKEN})).await;
    assert_eq!(error_code(&body), "InvalidIdentifier");
}

#[tokio::test]
async fn a_payment_problem_suspends_and_keys_belong_to_their_customer_only_by_use() {
    let devpay = DevPay::start().await;
    let user = devpay.customer("late@example.com").await;
    let (key, _) = devpay.sign_up("late@example.com").await;
    let (_, body) = devpay.license("activate-desktop", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    let user_token = body["UserToken"].as_str().unwrap().to_owned();
    assert!(body["SecretAccessKey"].as_str().is_some(), "a per-customer key pair");
    devpay.http.post(devpay.url(&format!("/admin/devpay/customers/{user}/payment-problem"))).send().await.unwrap();
    devpay.advance().await;
    let (_, standing) =
        devpay.license("verify-by-tokens", json!({"UserToken": user_token, "ProductToken": TOKEN})).await;
    assert_eq!((standing["Subscribed"].as_bool(), standing["Status"].as_str()), (Some(false), Some("suspended")));
    assert!(
        devpay.billing_page("late@example.com", None).await.contains("Month 1: monthly $9.99 <b>payment failed</b>")
    );
    // Wrong password: no billing page.
    let denied = devpay
        .http
        .post(devpay.url("/devpay/billing"))
        .form(&[("email", "late@example.com"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
}
