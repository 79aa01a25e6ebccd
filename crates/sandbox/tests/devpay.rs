//! DevPay on the sandbox, over real HTTP: sign-up pages with pricing and an activation key, the license
//! service with its errors, monthly billing at the price in force, price changes, cancellation, payment problems.

use amazon_rewards_protocol::sandbox_admin::Mail;
use amazon_rewards_protocol::sandbox_admin::{DevPayBill, DevPayPriceChange, DevPayProduct};
use amazon_rewards_sandbox::admin::Client;
use amazon_rewards_sandbox::devpay::DevPaySettings;
use amazon_rewards_sandbox::{RunningSandbox, SandboxConfig, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "season-pass-product-token";
const CODE: &str = "SEASONPASS";

struct DevPay {
    sandbox: RunningSandbox,
    http: reqwest::Client,
    admin: Client,
    _dir: tempfile::TempDir,
}

impl DevPay {
    async fn start() -> Self {
        Self::start_with(DevPaySettings::default()).await
    }

    async fn start_with(settings: DevPaySettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SandboxConfig::new(0, dir.path().join("devpay.db"));
        config.devpay = settings;
        let sandbox = serve(config).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let admin = Client::new(&sandbox.url());
        let devpay = Self { sandbox, http, admin, _dir: dir };
        let product = DevPayProduct {
            product_code: "SEASONPASS".into(),
            product_token: TOKEN.into(),
            title: "Season pass".into(),
            description: "Monthly perks.".into(),
            signup_fee_cents: 500,
            monthly_fee_cents: 999,
            redirect_url: "http://127.0.0.1:9/devpay/return".into(),
            other_redirect_urls: Vec::new(),
        };
        devpay.admin.add_devpay_product(&product).await.unwrap();
        devpay
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    async fn customer(&self, email: &str) -> String {
        self.admin.create_customer(email, "Sub", "pw").await.unwrap().user_id
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
        self.admin.advance_devpay_clock().await.unwrap().period
    }

    /// The customer's e-mails from Amazon Payments, oldest first.
    async fn mails(&self, user: &str) -> Vec<Mail> {
        let mut mails: Vec<Mail> = self.admin.mailbox_of(user).await.unwrap();
        mails.reverse();
        mails
    }

    async fn billing_page(&self, email: &str, cancel: Option<&str>) -> String {
        let mut form = vec![("email", email.to_owned()), ("password", "pw".to_owned())];
        if let Some(key) = cancel {
            form.push(("cancel", key.to_owned()));
        }
        self.http.post(self.url("/devpay/billing")).form(&form).send().await.unwrap().text().await.unwrap()
    }
}

/// A date `YYYY-MM-DD` as a month count (year * 12 + month - 1); it must be the first of the month.
fn month_of(date: &Value) -> i64 {
    let date = date.as_str().expect("a date");
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().expect("digits")).collect();
    assert_eq!((parts.len(), parts[2]), (3, 1), "{date}");
    parts[0] * 12 + parts[1] - 1
}

/// The calendar month now, counted like [`month_of`] (from the Unix clock; civil-from-days, H. Hinnant).
fn time_now_month() -> i64 {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 / 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + month - 1
}

fn error_code(body: &Value) -> &str {
    body["Error"]["Code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn sign_up_activate_bill_change_price_and_cancel() {
    let devpay = DevPay::start().await;
    let user = devpay.customer("sub@example.com").await;
    let (key, redirect) = devpay.sign_up("sub@example.com").await;
    assert_eq!(redirect, format!("http://127.0.0.1:9/devpay/return?ActivationKey={key}&ProductCode=SEASONPASS"));

    // License service: the key's errors, then activation, exactly once.
    let (status, body) =
        devpay.license("ActivateHostedProduct", json!({"ActivationKey": key, "ProductToken": "wrong-token-123"})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "InvalidProductToken"));
    for unknown in ["NOPE", "!!!", ""] {
        let (_, body) =
            devpay.license("ActivateHostedProduct", json!({"ActivationKey": unknown, "ProductToken": TOKEN})).await;
        assert_eq!(error_code(&body), "InvalidActivationKey", "{unknown:?}");
    }
    let (status, body) = devpay
        .license("ActivateHostedProduct", json!({"ActivationKey": key.to_lowercase(), "ProductToken": TOKEN}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pid = body["PersistentIdentifier"].as_str().unwrap().to_owned();
    assert!(body["UserToken"].as_str().is_some());
    let (_, body) = devpay.license("ActivateHostedProduct", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    assert_eq!(error_code(&body), "ActivationKeyAlreadyUsed");
    let (_, body) =
        devpay.license("ActivateDesktopProduct", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    assert_eq!(error_code(&body), "ActivationKeyAlreadyUsed");

    let verify = |pid: String| {
        let devpay = &devpay;
        async move {
            devpay
                .license("VerifyProductSubscriptionByPid", json!({"PersistentIdentifier": pid, "ProductCode": CODE}))
                .await
                .1
        }
    };
    let standing = verify(pid.clone()).await;
    assert_eq!(standing["Subscribed"], true);
    assert_eq!((standing["MonthlyFeeCents"].as_i64(), standing["PaidThroughPeriod"].as_i64()), (Some(999), Some(0)));
    // Paid until the first day of next calendar month (month 0 is this month).
    let today = time_now_month();
    assert_eq!(month_of(&standing["PaidUntil"]), today + 1, "{standing}");

    // Amazon Payments confirms the sign-up: the sign-up charge and the monthly price, in the product's name.
    let mails = devpay.mails(&user).await;
    assert_eq!(mails.len(), 1);
    assert_eq!((mails[0].kind.as_str(), mails[0].subject.as_str()), ("signup", "Your subscription to Season pass"));
    assert_eq!(mails[0].recipient, "sub@example.com");
    for text in ["one-time sign-up charge of $5.00", "costs $9.99 per month", key.as_str(), "Amazon Payments"] {
        assert!(mails[0].text_body.contains(text), "{text} in {}", mails[0].text_body);
    }

    // Month 1 at $9.99; then a price change, visible before it applies; month 2 at $12.99.
    assert_eq!(devpay.advance().await, 1);
    assert_eq!(month_of(&verify(pid.clone()).await["PaidUntil"]), today + 2, "renewed one month");
    let change = DevPayPriceChange { monthly_fee_cents: 1299 };
    devpay.admin.change_devpay_price("SEASONPASS", &change).await.unwrap();
    let standing = verify(pid.clone()).await;
    assert_eq!(
        (standing["MonthlyFeeCents"].as_i64(), standing["NextMonthlyFeeCents"].as_i64()),
        (Some(999), Some(1299))
    );
    let page = devpay.billing_page("sub@example.com", None).await;
    assert!(page.contains("From month 2: $12.99 per month."), "{page}");
    // The same change posted again tells nobody twice.
    devpay.admin.change_devpay_price("SEASONPASS", &change).await.unwrap();
    let notice = devpay.mails(&user).await.pop().unwrap();
    assert_eq!(notice.kind, "price_change", "the notice comes before the new price applies");
    assert!(notice.text_body.contains("from $9.99 to $12.99"), "{}", notice.text_body);
    assert_eq!(devpay.advance().await, 2);
    let page = devpay.billing_page("sub@example.com", None).await;
    assert!(page.contains("3 months of service, $37.97 paid in all."), "usage: {page}");
    for bill in [
        "Month 0: signup $5.00 paid",
        "Month 0: monthly $9.99 paid",
        "Month 1: monthly $9.99 paid",
        "Month 2: monthly $12.99 paid",
    ] {
        assert!(page.contains(bill), "{bill} in {page}");
    }

    // Cancel (the form submitted twice): still active to the end of the paid month, then over.
    devpay.billing_page("sub@example.com", Some(&key)).await;
    let page = devpay.billing_page("sub@example.com", Some(&key)).await;
    assert!(page.contains("active until the end of month 2, then cancelled"), "{page}");
    let standing = verify(pid.clone()).await;
    assert_eq!((standing["Subscribed"].as_bool(), standing["CancelAtPeriodEnd"].as_bool()), (Some(true), Some(true)));
    assert_eq!(devpay.advance().await, 3);
    let standing = verify(pid.clone()).await;
    assert_eq!((standing["Subscribed"].as_bool(), standing["Status"].as_str()), (Some(false), Some("cancelled")));
    assert!(!devpay.billing_page("sub@example.com", None).await.contains("Month 3"), "no bill after cancellation");

    // One e-mail per event, with the exact amounts, and never the name of the service behind it.
    let mails = devpay.mails(&user).await;
    let kinds: Vec<&str> = mails.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["signup", "bill", "price_change", "bill", "cancellation"]);
    assert!(mails[1].text_body.contains("We charged $9.99"), "{}", mails[1].text_body);
    assert!(mails[3].text_body.contains("We charged $12.99"), "{}", mails[3].text_body);
    assert!(mails[4].text_body.contains("you will not be charged again"), "{}", mails[4].text_body);
    assert!(mails.iter().all(|m| !m.text_body.contains("DevPay") && !m.html_body.contains("DevPay")));
    assert!(mails.iter().all(|m| m.html_body.starts_with("<p>") && !m.html_body.contains("<script")));

    let (_, body) = devpay
        .license("VerifyProductSubscriptionByPid", json!({"PersistentIdentifier": "PID-unknown", "ProductCode": CODE}))
        .await;
    assert_eq!(error_code(&body), "InvalidIdentifier");
    // The action takes the product code (DevPay's parameter), not the secret product token.
    let (_, body) = devpay
        .license("VerifyProductSubscriptionByPid", json!({"PersistentIdentifier": pid, "ProductCode": "OTHER"}))
        .await;
    assert_eq!(error_code(&body), "InvalidProductCode");
    let (status, _) = devpay
        .license("VerifyProductSubscriptionByPid", json!({"PersistentIdentifier": pid, "ProductToken": TOKEN}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "ProductCode is required");
    let (_, active) = devpay.license("GetActiveSubscriptionsByPid", json!({"PersistentIdentifier": pid})).await;
    assert_eq!(active, json!({"ProductCodes": []}), "cancelled and ended");
}

#[tokio::test]
async fn active_subscriptions_by_pid_and_refreshing_a_user_token() {
    let devpay = DevPay::start().await;
    devpay.customer("refresh@example.com").await;
    let (key, _) = devpay.sign_up("refresh@example.com").await;
    let (_, body) = devpay.license("ActivateHostedProduct", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    let pid = body["PersistentIdentifier"].as_str().unwrap().to_owned();
    let old = body["UserToken"].as_str().unwrap().to_owned();
    let (_, active) = devpay.license("GetActiveSubscriptionsByPid", json!({"PersistentIdentifier": pid})).await;
    assert_eq!(active, json!({"ProductCodes": [CODE]}));
    let (status, fresh) = devpay.license("RefreshUserToken", json!({"UserToken": old})).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let fresh = fresh["UserToken"].as_str().unwrap().to_owned();
    assert_ne!(fresh, old);
    let verify = |token: String| {
        devpay.license("VerifyProductSubscriptionByTokens", json!({"UserToken": token, "ProductToken": TOKEN}))
    };
    assert_eq!(verify(fresh).await.1["Subscribed"], true);
    assert_eq!(error_code(&verify(old.clone()).await.1), "InvalidIdentifier", "the old token stopped working");
    assert_eq!(error_code(&devpay.license("RefreshUserToken", json!({"UserToken": old})).await.1), "InvalidUserToken");
}

#[tokio::test]
async fn a_payment_problem_suspends_the_subscription() {
    let devpay = DevPay::start().await;
    let user = devpay.customer("late@example.com").await;
    let (key, _) = devpay.sign_up("late@example.com").await;
    let (_, body) =
        devpay.license("ActivateDesktopProduct", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    let user_token = body["UserToken"].as_str().unwrap().to_owned();
    assert!(body["SecretAccessKey"].as_str().is_some(), "a per-customer key pair");
    devpay.admin.set_payment_problem(&user, true).await.unwrap();
    devpay.advance().await;
    let problem = devpay.mails(&user).await.pop().unwrap();
    assert_eq!(problem.kind, "payment_problem");
    assert!(problem.text_body.contains("We could not charge $9.99"), "{}", problem.text_body);
    let (_, standing) = devpay
        .license("VerifyProductSubscriptionByTokens", json!({"UserToken": user_token, "ProductToken": TOKEN}))
        .await;
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

/// Follows the sign-up pages with a return address and state, as a desktop game's loopback listener asks.
async fn sign_up_returning_to(devpay: &DevPay, email: &str, redirect_uri: &str, state: &str) -> reqwest::Response {
    let query = [("redirect_uri", redirect_uri), ("state", state)];
    let page = devpay.http.get(devpay.url("/devpay/signup/SEASONPASS")).query(&query).send().await.unwrap();
    if page.status() != StatusCode::OK {
        return page;
    }
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"name="redirect_uri""#) && html.contains(r#"name="state""#), "carried: {html}");
    let form = [("email", email), ("password", "pw"), ("redirect_uri", redirect_uri), ("state", state)];
    let review = devpay.http.post(devpay.url("/devpay/signup/SEASONPASS")).form(&form).send().await.unwrap();
    if review.status() != StatusCode::OK {
        return review;
    }
    let html = review.text().await.unwrap();
    assert!(html.contains(&format!(r#"value="{state}""#)), "state carried to the confirmation: {html}");
    devpay.http.post(devpay.url("/devpay/signup/SEASONPASS/confirm")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn sign_up_returns_to_a_loopback_listener_on_any_port_with_its_state() {
    let devpay = DevPay::start().await;
    let user = devpay.customer("desk@example.com").await;
    let confirmed =
        sign_up_returning_to(&devpay, "desk@example.com", "http://127.0.0.1:54321/devpay/return", "st-1").await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let html = confirmed.text().await.unwrap();
    let key = html.split(r#"<b id="activation-key">"#).nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(
        html.contains(&format!(
            "http://127.0.0.1:54321/devpay/return?ActivationKey={key}&amp;ProductCode=SEASONPASS&amp;state=st-1"
        )),
        "{html}"
    );

    // Other addresses are not registered for the product: refused before anything is charged.
    for foreign in
        ["http://evil.example/devpay/return", "http://127.0.0.1:54321/other", "https://127.0.0.1/devpay/return"]
    {
        let refused = sign_up_returning_to(&devpay, "desk@example.com", foreign, "s").await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{foreign}");
    }

    // One running subscription per customer and product: a second sign-up charges nothing.
    let again = sign_up_returning_to(&devpay, "desk@example.com", "http://127.0.0.1:1234/devpay/return", "st-2").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("nothing was charged"));
    let form = [("email", "desk@example.com"), ("password", "pw")];
    let replayed = devpay.http.post(devpay.url("/devpay/signup/SEASONPASS/confirm")).form(&form).send().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::CONFLICT, "a replayed confirmation charges nothing either");
    let bills: Vec<DevPayBill> = devpay.admin.devpay_bills(&user).await.unwrap();
    let charged: Vec<(i64, &str, i64)> = bills.iter().map(|b| (b.period, b.kind.as_str(), b.amount_cents)).collect();
    assert_eq!(charged, [(0, "signup", 500), (0, "monthly", 999)]);

    // Until activated, the key waits on the billing page (a game that missed the redirect loses nothing).
    assert!(devpay.billing_page("desk@example.com", None).await.contains(&key));
}

#[tokio::test]
async fn keys_of_other_customers_and_expired_keys_are_refused_and_stay_unused() {
    let devpay = DevPay::start().await;
    let owner = devpay.customer("owner@example.com").await;
    let other = devpay.customer("other@example.com").await;
    let (key, _) = devpay.sign_up("owner@example.com").await;

    let activation = |customer: &str| json!({"ActivationKey": key, "ProductToken": TOKEN, "CustomerId": customer});
    let (status, body) = devpay.license("ActivateHostedProduct", activation(&other)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "ActivationKeyNotForCustomer"));
    let (_, body) = devpay.license("ActivateDesktopProduct", activation(&other)).await;
    assert_eq!(error_code(&body), "ActivationKeyNotForCustomer");
    // The owner still can: the refused attempts consumed nothing.
    let (status, body) = devpay.license("ActivateHostedProduct", activation(&owner)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["CustomerId"], owner.as_str());
    let standing = devpay
        .license(
            "VerifyProductSubscriptionByPid",
            json!({"PersistentIdentifier": body["PersistentIdentifier"], "ProductCode": CODE}),
        )
        .await
        .1;
    assert_eq!(standing["CustomerId"], owner.as_str());

    let expiring = DevPay::start_with(DevPaySettings { activation_key_lifetime: 0 }).await;
    expiring.customer("late@example.com").await;
    let (key, _) = expiring.sign_up("late@example.com").await;
    let (status, body) =
        expiring.license("ActivateHostedProduct", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "ExpiredActivationKey"));
}

#[tokio::test]
async fn registering_again_updates_the_pages_but_not_the_monthly_fee_or_the_token() {
    let devpay = DevPay::start().await;
    let again = DevPayProduct {
        product_code: "SEASONPASS".into(),
        product_token: TOKEN.into(),
        title: "Season pass II".into(),
        description: "Monthly perks.".into(),
        signup_fee_cents: 0,
        monthly_fee_cents: 1,
        redirect_url: "http://127.0.0.1/new/return".into(),
        other_redirect_urls: Vec::new(),
    };
    let register =
        |product: &DevPayProduct| devpay.http.post(devpay.url("/admin/devpay/products")).json(product).send();
    assert_eq!(register(&again).await.unwrap().status(), StatusCode::OK);
    let page = devpay.http.get(devpay.url("/devpay/signup/SEASONPASS")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Season pass II") && page.contains("then <b>$9.99</b> per month"), "{page}");
    let returning = devpay
        .http
        .get(devpay.url("/devpay/signup/SEASONPASS"))
        .query(&[("redirect_uri", "http://127.0.0.1:4242/new/return")])
        .send()
        .await
        .unwrap();
    assert_eq!(returning.status(), StatusCode::OK, "the new return address is in force");
    let hijack = DevPayProduct { product_token: "someone-elses-token".into(), ..again };
    assert_eq!(register(&hijack).await.unwrap().status(), StatusCode::CONFLICT);
}

/// Seen in a full test run: a verification that read the subscription before a month was billed and the clock
/// after it answered "month 2, paid through month 1". Each verification now reads one snapshot, so whatever
/// it races with, a paying subscriber is paid through the month it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_racing_the_billing_clock_sees_one_consistent_month() {
    let devpay = DevPay::start().await;
    devpay.customer("racer@example.com").await;
    let (key, _) = devpay.sign_up("racer@example.com").await;
    let (_, body) = devpay.license("ActivateHostedProduct", json!({"ActivationKey": key, "ProductToken": TOKEN})).await;
    let pid = body["PersistentIdentifier"].as_str().unwrap().to_owned();
    let verify = json!({"PersistentIdentifier": pid, "ProductCode": CODE});
    for _ in 0..15 {
        let checks = twenty_verifications(&devpay, &verify);
        let (advanced, standings) = tokio::join!(devpay.advance(), checks);
        assert!(advanced > 0);
        for standing in standings {
            assert_eq!(standing["PaidThroughPeriod"], standing["CurrentPeriod"], "one snapshot: {standing}");
        }
    }
}

/// Twenty verifications, one after another (while the caller advances the clock beside them).
async fn twenty_verifications(devpay: &DevPay, verify: &Value) -> Vec<Value> {
    let calls = (0..20).map(|_| async { devpay.license("VerifyProductSubscriptionByPid", verify.clone()).await.1 });
    let mut standings = Vec::new();
    for handle in calls.map(Box::pin).collect::<Vec<_>>() {
        standings.push(handle.await);
    }
    standings
}
