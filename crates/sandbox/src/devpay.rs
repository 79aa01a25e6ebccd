//! DevPay, emulated (the service is retired; this follows its model, paths and shapes sandbox-defined):
//! a paid product's sign-up pages (product information and pricing, confirmation with an activation key, a
//! redirect to the vendor with `?ActivationKey=…&ProductCode=…`), the license service the vendor calls
//! (activate a key for a hosted or desktop product, verify a subscription by persistent id or tokens, both
//! naming the customer the subscription belongs to), a
//! billing clock that bills every active subscription at the price in force for each month, price changes
//! that apply from the next month, cancellation at period end, payment problems that suspend, and the
//! customer's "Application Billing" page.

use amazon_rewards_protocol::devpay::license;
use amazon_rewards_protocol::sandbox_admin::{DevPayBill, DevPayClock, DevPayPriceChange, DevPayProduct};
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::SqlitePool;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::random_token;
use crate::error::{SandboxError, SandboxResult};
use crate::lwa::check_password;
use crate::pages::{escape, hidden_fields, page};

/// Lifetimes of the emulated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPaySettings {
    /// Seconds an activation key may wait to be activated. Default one day.
    pub activation_key_lifetime: i64,
}

impl Default for DevPaySettings {
    fn default() -> Self {
        Self { activation_key_lifetime: 24 * 3600 }
    }
}

/// Public routes: sign-up and billing pages (served, not described), license service.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/devpay/signup/{code}", get(signup_page).post(signup_review))
        .route("/devpay/signup/{code}/confirm", post(signup_confirm))
        .route("/devpay/billing", get(billing_sign_in).post(billing))
        .routes(routes!(activate_hosted))
        .routes(routes!(activate_desktop))
        .routes(routes!(verify_by_pid))
        .routes(routes!(verify_by_tokens))
        .routes(routes!(active_subscriptions_by_pid))
        .routes(routes!(refresh_user_token))
}

/// Admin routes, nested under `/admin`.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/devpay/products", post(add_product))
        .route("/devpay/products/{code}/price", post(change_price))
        .route("/devpay/clock/advance", post(advance_clock))
        .route("/devpay/customers/{user_id}/payment-problem", post(payment_problem).delete(payment_fixed))
        .route("/devpay/customers/{user_id}/bills", get(customer_bills))
}

fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

async fn current_period<'e>(executor: impl sqlx::SqliteExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT period FROM devpay_clock WHERE id = 1").fetch_one(executor).await
}

/// The first day of billing month `period` as an ISO 8601 date: month 0 is the calendar month the billing
/// clock started in.
async fn first_day_of<'e>(executor: impl sqlx::SqliteExecutor<'e>, period: i64) -> Result<String, sqlx::Error> {
    let epoch: i64 =
        sqlx::query_scalar("SELECT epoch_month FROM devpay_clock WHERE id = 1").fetch_one(executor).await?;
    let month = epoch + period;
    Ok(format!("{:04}-{:02}-01", month.div_euclid(12), month.rem_euclid(12) + 1))
}

/// The monthly fee in force for `period`: the latest price change from then or before, else the registered fee.
/// One query, so that the billing clock can ask inside its transaction.
async fn price_for<'e>(executor: impl sqlx::SqliteExecutor<'e>, code: &str, period: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(
             (SELECT monthly_fee_cents FROM devpay_prices WHERE product_code = ?1 AND from_period <= ?2
              ORDER BY from_period DESC LIMIT 1),
             (SELECT monthly_fee_cents FROM devpay_products WHERE product_code = ?1))",
    )
    .bind(code)
    .bind(period)
    .fetch_one(executor)
    .await
}

async fn add_product(
    State(state): State<AppState>,
    body: Result<Json<DevPayProduct>, JsonRejection>,
) -> SandboxResult<StatusCode> {
    let Json(product) = body?;
    if product.product_code.is_empty()
        || product.product_token.len() < 8
        || product.signup_fee_cents < 0
        || product.monthly_fee_cents < 0
    {
        return Err(SandboxError::BadRequest("a product needs a code, a token of 8+ characters and fees ≥ 0".into()));
    }
    for address in std::iter::once(&product.redirect_url).chain(&product.other_redirect_urls) {
        url::Url::parse(address).map_err(|_| SandboxError::BadRequest(format!("{address:?} is not a URL")))?;
    }
    let others = serde_json::to_string(&product.other_redirect_urls).unwrap_or_else(|_| "[]".into());
    // Registering again updates what the sign-up pages show and where they return to; the monthly fee
    // changes only through a price change, which customers see a month ahead.
    let updated = sqlx::query(
        "UPDATE devpay_products SET title = ?, description = ?, signup_fee_cents = ?, redirect_url = ?,
             other_redirect_urls = ?
         WHERE product_code = ? AND product_token = ?",
    )
    .bind(&product.title)
    .bind(&product.description)
    .bind(product.signup_fee_cents)
    .bind(&product.redirect_url)
    .bind(&others)
    .bind(&product.product_code)
    .bind(&product.product_token)
    .execute(&state.pool)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(StatusCode::OK);
    }
    sqlx::query(
        "INSERT INTO devpay_products (product_code, product_token, title, description, signup_fee_cents, monthly_fee_cents,
             redirect_url, other_redirect_urls)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&product.product_code)
    .bind(&product.product_token)
    .bind(&product.title)
    .bind(&product.description)
    .bind(product.signup_fee_cents)
    .bind(product.monthly_fee_cents)
    .bind(&product.redirect_url)
    .bind(&others)
    .execute(&state.pool)
    .await
    .map_err(|_| SandboxError::Conflict(format!("product {} exists with another token", product.product_code)))?;
    Ok(StatusCode::CREATED)
}

async fn change_price(
    State(state): State<AppState>,
    Path(code): Path<String>,
    body: Result<Json<DevPayPriceChange>, JsonRejection>,
) -> SandboxResult<StatusCode> {
    let Json(change) = body?;
    if change.monthly_fee_cents < 0 {
        return Err(SandboxError::BadRequest("a fee is ≥ 0".into()));
    }
    let next = current_period(&state.pool).await? + 1;
    let old = price_for(&state.pool, &code, next).await?;
    sqlx::query(
        "INSERT INTO devpay_prices (product_code, from_period, monthly_fee_cents) VALUES (?, ?, ?)
         ON CONFLICT(product_code, from_period) DO UPDATE SET monthly_fee_cents = excluded.monthly_fee_cents",
    )
    .bind(&code)
    .bind(next)
    .bind(change.monthly_fee_cents)
    .execute(&state.pool)
    .await
    .map_err(|_| SandboxError::NotFound(format!("product {code}")))?;
    if old != change.monthly_fee_cents {
        notify_price_change(&state.pool, &code, old, change.monthly_fee_cents, next).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Confirms a cancellation: the subscription runs to the end of the paid month.
async fn confirm_cancellation(pool: &SqlitePool, key: &str, customer: &str) -> Result<(), sqlx::Error> {
    let (title, paid_through): (String, i64) = sqlx::query_as(
        "SELECT p.title, s.paid_through_period FROM devpay_subscriptions s
         JOIN devpay_products p ON p.product_code = s.product_code WHERE s.activation_key = ?",
    )
    .bind(key)
    .fetch_one(pool)
    .await?;
    let last_month = crate::mailbox::month_name(&first_day_of(pool, paid_through).await?);
    let ends_on = first_day_of(pool, paid_through + 1).await?;
    let letter = crate::mailbox::Letter::cancellation(&title, &last_month, &ends_on);
    crate::mailbox::send(pool, customer, &format!("cancel:{key}"), letter).await
}

/// Tells every running subscriber of `code`, before it applies, that the price changes from month `from`.
async fn notify_price_change(pool: &SqlitePool, code: &str, old: i64, new: i64, from: i64) -> Result<(), sqlx::Error> {
    let subscribers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.activation_key, s.customer_id, p.title FROM devpay_subscriptions s
         JOIN devpay_products p ON p.product_code = s.product_code
         WHERE s.product_code = ? AND s.status = 'active' AND s.cancel_at_period_end = 0",
    )
    .bind(code)
    .fetch_all(pool)
    .await?;
    let month = crate::mailbox::month_name(&first_day_of(pool, from).await?);
    for (key, customer, title) in subscribers {
        let letter = crate::mailbox::Letter::price_change(&title, old, new, &month);
        crate::mailbox::send(pool, &customer, &format!("price:{key}:{from}:{new}"), letter).await?;
    }
    Ok(())
}

async fn payment_problem(State(state): State<AppState>, Path(user_id): Path<String>) -> SandboxResult<StatusCode> {
    sqlx::query("INSERT INTO devpay_payment_problems (customer_id) VALUES (?) ON CONFLICT DO NOTHING")
        .bind(&user_id)
        .execute(&state.pool)
        .await
        .map_err(|_| SandboxError::NotFound(format!("customer {user_id}")))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn payment_fixed(State(state): State<AppState>, Path(user_id): Path<String>) -> SandboxResult<StatusCode> {
    sqlx::query("DELETE FROM devpay_payment_problems WHERE customer_id = ?")
        .bind(&user_id)
        .execute(&state.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every bill of a customer, oldest first (for tests and the studio's reconciliation).
async fn customer_bills(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> SandboxResult<Json<Vec<DevPayBill>>> {
    let rows: Vec<(String, i64, String, i64, bool)> = sqlx::query_as(
        "SELECT s.product_code, b.period, b.kind, b.amount_cents, b.paid
         FROM devpay_bills b JOIN devpay_subscriptions s ON s.activation_key = b.activation_key
         WHERE s.customer_id = ? ORDER BY b.seq",
    )
    .bind(&user_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(product_code, period, kind, amount_cents, paid)| DevPayBill {
                product_code,
                period,
                kind,
                amount_cents,
                paid,
            })
            .collect(),
    ))
}

/// Moves the billing clock one month on: cancellations take effect, every other active subscription is billed
/// at the price in force for the new month (a payment problem suspends it instead).
async fn advance_clock(State(state): State<AppState>) -> SandboxResult<Json<DevPayClock>> {
    let mut tx = state.pool.begin().await?;
    let period: i64 = sqlx::query_scalar("UPDATE devpay_clock SET period = period + 1 WHERE id = 1 RETURNING period")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE devpay_subscriptions SET status = 'cancelled' WHERE status = 'active' AND cancel_at_period_end = 1",
    )
    .execute(&mut *tx)
    .await?;
    let active: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT s.activation_key, s.customer_id, s.product_code, p.title
         FROM devpay_subscriptions s JOIN devpay_products p ON p.product_code = s.product_code WHERE s.status = 'active'",
    )
    .fetch_all(&mut *tx)
    .await?;
    let month = crate::mailbox::month_name(&first_day_of(&mut *tx, period).await?);
    for (key, customer, code, title) in active {
        let price = price_for(&mut *tx, &code, period).await?;
        let problem: Option<String> =
            sqlx::query_scalar("SELECT customer_id FROM devpay_payment_problems WHERE customer_id = ?")
                .bind(&customer)
                .fetch_optional(&mut *tx)
                .await?;
        let paid = problem.is_none();
        sqlx::query("INSERT INTO devpay_bills (activation_key, period, kind, amount_cents, paid) VALUES (?, ?, 'monthly', ?, ?)")
            .bind(&key)
            .bind(period)
            .bind(price)
            .bind(paid)
            .execute(&mut *tx)
            .await?;
        if paid {
            sqlx::query("UPDATE devpay_subscriptions SET paid_through_period = ? WHERE activation_key = ?")
                .bind(period)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            let letter = crate::mailbox::Letter::bill(&title, price, &month);
            crate::mailbox::send(&mut *tx, &customer, &format!("bill:{key}:{period}"), letter).await?;
        } else {
            sqlx::query("UPDATE devpay_subscriptions SET status = 'suspended' WHERE activation_key = ?")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            let letter = crate::mailbox::Letter::payment_problem(&title, price, &month);
            crate::mailbox::send(&mut *tx, &customer, &format!("payment:{key}:{period}"), letter).await?;
        }
    }
    recover_suspended(&mut tx, period, &month).await?;
    tx.commit().await?;
    Ok(Json(DevPayClock { period }))
}

/// A suspended subscription whose customer's payment works again is charged for the new month and active again
/// (sandbox-defined: the retired service's retry schedule is not public; "charged at the next bill" is the
/// simplest that lets the game see a payment problem fixed).
async fn recover_suspended(tx: &mut sqlx::SqliteConnection, period: i64, month: &str) -> Result<(), sqlx::Error> {
    let suspended: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT s.activation_key, s.customer_id, s.product_code, p.title
         FROM devpay_subscriptions s JOIN devpay_products p ON p.product_code = s.product_code
         WHERE s.status = 'suspended' AND s.customer_id NOT IN (SELECT customer_id FROM devpay_payment_problems)",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (key, customer, code, title) in suspended {
        let price = price_for(&mut *tx, &code, period).await?;
        sqlx::query("INSERT INTO devpay_bills (activation_key, period, kind, amount_cents, paid) VALUES (?, ?, 'monthly', ?, 1)")
            .bind(&key)
            .bind(period)
            .bind(price)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE devpay_subscriptions SET status = 'active', paid_through_period = ? WHERE activation_key = ?",
        )
        .bind(period)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        let letter = crate::mailbox::Letter::bill(&title, price, month);
        crate::mailbox::send(&mut *tx, &customer, &format!("bill:{key}:{period}"), letter).await?;
    }
    Ok(())
}

/// A product as its sign-up pages need it: title, description, sign-up fee, monthly fee, and the return
/// addresses registered for it (a sign-up link without `redirect_uri` returns to the first). Not found: 404.
async fn product(pool: &SqlitePool, code: &str) -> SandboxResult<(String, String, i64, i64, Vec<String>)> {
    let row: Option<(String, String, i64, i64, String, String)> = sqlx::query_as(
        "SELECT title, description, signup_fee_cents, monthly_fee_cents, redirect_url, other_redirect_urls
         FROM devpay_products WHERE product_code = ?",
    )
    .bind(code)
    .fetch_optional(pool)
    .await?;
    let (title, description, signup, monthly, first, others) =
        row.ok_or_else(|| SandboxError::NotFound(format!("product {code}")))?;
    let mut addresses = vec![first];
    addresses.extend(serde_json::from_str::<Vec<String>>(&others).unwrap_or_default());
    Ok((title, description, signup, monthly, addresses))
}

pub(crate) fn sign_in_form(action: &str, error: Option<&str>, fields: &[(&str, &str)]) -> String {
    let error = error.map(|e| format!(r#"<p class="error">{}</p>"#, escape(e))).unwrap_or_default();
    format!(
        r#"{error}<form method="post" action="{action}">{hidden}
<label for="email">Email</label><input id="email" name="email" type="email" required>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button id="continue" type="submit">Continue</button></form>"#,
        action = escape(action),
        hidden = hidden_fields(fields),
    )
}

/// Where the customer goes back to after signing up, as the sign-up link asked (sandbox-defined extension:
/// `redirect_uri` and `state` on the sign-up link, like an OAuth authorization request).
#[derive(Debug, Clone, Default, Deserialize)]
struct ReturnTo {
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
}

impl ReturnTo {
    /// The vendor address: the product's first registered return address, or the `redirect_uri` asked for
    /// when it matches one of them — exactly, or on another port for a loopback `http` address (a desktop
    /// game's one-shot listener, RFC 8252 §7.3, as Login with Amazon allows).
    fn vendor_url(&self, registered: &[String]) -> SandboxResult<url::Url> {
        let chosen = if self.redirect_uri.is_empty() { &registered[0] } else { &self.redirect_uri };
        if !crate::lwa::redirect_uri_allowed(registered, chosen) {
            return Err(SandboxError::BadRequest("this return address is not registered for the product".into()));
        }
        url::Url::parse(chosen).map_err(|_| SandboxError::BadRequest("bad vendor URL".into()))
    }

    fn fields(&self) -> [(&'static str, &str); 2] {
        [("redirect_uri", &self.redirect_uri), ("state", &self.state)]
    }
}

async fn signup_page(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(return_to): Query<ReturnTo>,
) -> SandboxResult<Html<String>> {
    let (title, description, signup, _, registered) = product(&state.pool, &code).await?;
    return_to.vendor_url(&registered)?;
    let monthly = price_for(&state.pool, &code, current_period(&state.pool).await?).await?;
    Ok(page(
        &format!("Sign up: {title}"),
        &format!(
            r#"<p>{}</p><p id="pricing">Sign-up fee <b>{}</b>, then <b>{}</b> per month. Cancel any time.</p>{}"#,
            escape(&description),
            money(signup),
            money(monthly),
            sign_in_form(&format!("/devpay/signup/{code}"), None, &return_to.fields())
        ),
    ))
}

#[derive(Debug, Deserialize)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(flatten)]
    return_to: ReturnTo,
}

/// The activation key of the customer's subscription to `code` that is still running, if any.
async fn running_subscription(pool: &SqlitePool, customer: &str, code: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT activation_key FROM devpay_subscriptions
         WHERE customer_id = ? AND product_code = ? AND status = 'active' AND cancel_at_period_end = 0",
    )
    .bind(customer)
    .bind(code)
    .fetch_optional(pool)
    .await
}

fn already_subscribed(title: &str) -> Response {
    (
        StatusCode::CONFLICT,
        page(
            "Already subscribed",
            &format!(
                r#"<p id="already-subscribed">You already subscribe to <b>{}</b>; nothing was charged. Your
activation key is on your <a href="/devpay/billing">Application Billing</a> page until you activate it.</p>"#,
                escape(title)
            ),
        ),
    )
        .into_response()
}

async fn signup_review(
    State(state): State<AppState>,
    Path(code): Path<String>,
    form: Result<Form<Credentials>, FormRejection>,
) -> SandboxResult<Response> {
    let Ok(Form(credentials)) = form else {
        return Err(SandboxError::BadRequest("malformed form".into()));
    };
    let (title, _, signup, _, registered) = product(&state.pool, &code).await?;
    credentials.return_to.vendor_url(&registered)?;
    let Some(customer) = check_password(&state.pool, &credentials.email, &credentials.password).await? else {
        let body = sign_in_form(
            &format!("/devpay/signup/{code}"),
            Some("Your email or password is incorrect."),
            &credentials.return_to.fields(),
        );
        return Ok((StatusCode::UNAUTHORIZED, page(&format!("Sign up: {title}"), &body)).into_response());
    };
    if running_subscription(&state.pool, &customer, &code).await?.is_some() {
        return Ok(already_subscribed(&title));
    }
    let monthly = price_for(&state.pool, &code, current_period(&state.pool).await?).await?;
    Ok(page(
        "Confirm your subscription",
        &format!(
            r#"<p><b>{}</b></p><p>You pay {} now (sign-up fee {} and the first month {}), then {} per month.</p>
<form method="post" action="/devpay/signup/{code}/confirm">{}
<button id="confirm" type="submit">Confirm and subscribe</button></form>"#,
            escape(&title),
            money(signup + monthly),
            money(signup),
            money(monthly),
            money(monthly),
            hidden_fields(&[
                ("email", &credentials.email),
                ("password", &credentials.password),
                ("redirect_uri", &credentials.return_to.redirect_uri),
                ("state", &credentials.return_to.state),
            ]),
            code = escape(&code),
        ),
    )
    .into_response())
}

async fn signup_confirm(
    State(state): State<AppState>,
    Path(code): Path<String>,
    form: Result<Form<Credentials>, FormRejection>,
) -> SandboxResult<Response> {
    let Ok(Form(credentials)) = form else {
        return Err(SandboxError::BadRequest("malformed form".into()));
    };
    let (title, _, signup, _, registered) = product(&state.pool, &code).await?;
    let mut vendor = credentials.return_to.vendor_url(&registered)?;
    let Some(customer) = check_password(&state.pool, &credentials.email, &credentials.password).await? else {
        return Err(SandboxError::BadRequest("sign in again".into()));
    };
    let period = current_period(&state.pool).await?;
    let monthly = price_for(&state.pool, &code, period).await?;
    let key = random_token("", 10).to_uppercase();
    let month = crate::mailbox::month_name(&first_day_of(&state.pool, period).await?);
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO devpay_subscriptions (activation_key, customer_id, product_code, status, started_period, paid_through_period, key_expires_at)
         VALUES (?, ?, ?, 'active', ?, ?, ?)",
    )
    .bind(&key)
    .bind(&customer)
    .bind(&code)
    .bind(period)
    .bind(period)
    .bind(crate::now_secs() + state.devpay.activation_key_lifetime)
    .execute(&mut *tx)
    .await;
    // A unique index allows one running subscription per customer and product, so a form submitted twice (or
    // from two tabs) cannot charge twice.
    if let Err(sqlx::Error::Database(error)) = &inserted
        && error.is_unique_violation()
    {
        return Ok(already_subscribed(&title));
    }
    inserted?;
    bill_signup(&mut tx, &key, period, signup, monthly).await?;
    let letter = crate::mailbox::Letter::signup(&title, signup, monthly, &month, &key);
    crate::mailbox::send(&mut *tx, &customer, &format!("signup:{key}"), letter).await?;
    tx.commit().await?;
    vendor.query_pairs_mut().append_pair("ActivationKey", &key).append_pair("ProductCode", &code);
    if !credentials.return_to.state.is_empty() {
        vendor.query_pairs_mut().append_pair("state", &credentials.return_to.state);
    }
    Ok(subscribed_page(&title, &key, &vendor))
}

/// The sign-up's first bills, paid: the sign-up fee (when there is one) and the first month.
async fn bill_signup(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &str,
    period: i64,
    signup: i64,
    monthly: i64,
) -> Result<(), sqlx::Error> {
    for (kind, amount) in [("signup", signup), ("monthly", monthly)] {
        if amount > 0 || kind == "monthly" {
            sqlx::query(
                "INSERT INTO devpay_bills (activation_key, period, kind, amount_cents, paid) VALUES (?, ?, ?, ?, 1)",
            )
            .bind(key)
            .bind(period)
            .bind(kind)
            .bind(amount)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// "You are subscribed": the activation key, and the way back to the game's return address.
fn subscribed_page(title: &str, key: &str, vendor: &url::Url) -> Response {
    page(
        "You are subscribed",
        &format!(
            r#"<meta http-equiv="refresh" content="2;url={url}"><p>{}</p><p>Your activation key: <b id="activation-key">{key}</b></p>
<p>Returning you to the game… <a id="continue-to-vendor" href="{url}">continue</a></p>"#,
            escape(title),
            url = escape(vendor.as_str()),
        ),
    )
    .into_response()
}

/// A subscription on the billing page: key, product code, title, status, paid through, cancelling, activated,
/// started.
type BillingRow = (String, String, String, String, i64, bool, bool, i64);

async fn billing_sign_in() -> Html<String> {
    page("Application Billing", &sign_in_form("/devpay/billing", None, &[]))
}

#[derive(Debug, Deserialize)]
struct BillingForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    cancel: Option<String>,
}

async fn billing(
    State(state): State<AppState>,
    form: Result<Form<BillingForm>, FormRejection>,
) -> SandboxResult<Response> {
    let Ok(Form(form)) = form else {
        return Err(SandboxError::BadRequest("malformed form".into()));
    };
    let Some(customer) = check_password(&state.pool, &form.email, &form.password).await? else {
        let body = sign_in_form("/devpay/billing", Some("Your email or password is incorrect."), &[]);
        return Ok((StatusCode::UNAUTHORIZED, page("Application Billing", &body)).into_response());
    };
    if let Some(key) = &form.cancel {
        let cancelled = sqlx::query("UPDATE devpay_subscriptions SET cancel_at_period_end = 1 WHERE activation_key = ? AND customer_id = ? AND status = 'active'")
            .bind(key)
            .bind(&customer)
            .execute(&state.pool)
            .await?;
        if cancelled.rows_affected() == 1 {
            confirm_cancellation(&state.pool, key, &customer).await?;
        }
    }
    let period = current_period(&state.pool).await?;
    let subscriptions: Vec<BillingRow> = sqlx::query_as(
        "SELECT s.activation_key, s.product_code, p.title, s.status, s.paid_through_period, s.cancel_at_period_end,
                s.activated_at IS NOT NULL, s.started_period
         FROM devpay_subscriptions s JOIN devpay_products p ON p.product_code = s.product_code
         WHERE s.customer_id = ? ORDER BY s.started_period, s.rowid",
    )
    .bind(&customer)
    .fetch_all(&state.pool)
    .await?;
    let mut body = format!(
        r#"<p>Billing month: <b id="period">{period}</b> (from {})</p>"#,
        first_day_of(&state.pool, period).await?
    );
    for row in subscriptions {
        body.push_str(&subscription_card(&state.pool, row, period, &form).await?);
    }
    Ok(page("Application Billing", &body).into_response())
}

/// One subscription on the billing page: its standing, its bills, the price change to come, its unused key,
/// The note announcing next month's price, when it differs from this month's `now`.
async fn price_change_note(pool: &SqlitePool, code: &str, period: i64, now: i64) -> SandboxResult<String> {
    let next = price_for(pool, code, period + 1).await?;
    if next == now {
        return Ok(String::new());
    }
    Ok(format!(
        r#"<p class="note" id="price-change-{code}">From month {}: {} per month.</p>"#,
        period + 1,
        money(next),
        code = escape(code)
    ))
}

/// One list item per bill: month, kind, amount, paid or failed.
fn bill_list(bills: &[(i64, String, i64, bool)]) -> String {
    bills
        .iter()
        .map(|(p, kind, amount, paid)| {
            let outcome = if *paid { "paid" } else { "<b>payment failed</b>" };
            format!("<li>Month {p}: {kind} {} {outcome}</li>", money(*amount))
        })
        .collect()
}

/// and the cancel button.
async fn subscription_card(
    pool: &SqlitePool,
    row: BillingRow,
    period: i64,
    form: &BillingForm,
) -> SandboxResult<String> {
    let (key, code, title, status, paid_through, cancelling, activated, started) = row;
    let now = price_for(pool, &code, period).await?;
    let change = price_change_note(pool, &code, period, now).await?;
    let bills: Vec<(i64, String, i64, bool)> = sqlx::query_as(
        "SELECT period, kind, amount_cents, paid FROM devpay_bills WHERE activation_key = ? ORDER BY seq",
    )
    .bind(&key)
    .fetch_all(pool)
    .await?;
    let rows = bill_list(&bills);
    let until = first_day_of(pool, paid_through + 1).await?;
    let state_text = match (status.as_str(), cancelling) {
        ("active", true) => format!("active until the end of month {paid_through}, then cancelled (ends {until})"),
        ("active", false) => format!("active, {} per month, next bill {until}", money(now)),
        (other, _) => other.to_owned(),
    };
    let cancel = if status == "active" && !cancelling {
        format!(
            r#"<form method="post" action="/devpay/billing">{}<button id="cancel-{code}" name="cancel" value="{key}" type="submit">Cancel subscription</button></form>"#,
            hidden_fields(&[("email", &form.email), ("password", &form.password)]),
            code = escape(&code),
            key = escape(&key),
        )
    } else {
        String::new()
    };
    // Until it is activated, the key stays here, so a player whose game missed the redirect loses nothing.
    let unused_key = if activated || status != "active" {
        String::new()
    } else {
        format!(r#"<p>Activation key (not activated yet): <b class="activation-key">{}</b></p>"#, escape(&key))
    };
    let paid: i64 = bills.iter().filter(|(_, _, _, paid)| *paid).map(|(_, _, amount, _)| amount).sum();
    let months = (paid_through.min(period) - started + 1).max(0);
    let usage = format!(
        r#"<p class="note" id="usage-{code}">Usage: since {}, {months} month{} of service, {} paid in all.</p>"#,
        first_day_of(pool, started).await?,
        if months == 1 { "" } else { "s" },
        money(paid),
        code = escape(&code),
    );
    Ok(format!(
        r#"<h2>{}</h2><p id="status-{code}">{}</p>{usage}{unused_key}{change}<ul>{rows}</ul>{cancel}"#,
        escape(&title),
        escape(&state_text),
        code = escape(&code),
    ))
}

/// A license-service error (sandbox-defined shape, after AWS's `{"Error":{"Code","Message"}}`).
fn license_error(code: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"Error": {"Code": code, "Message": message}}))).into_response()
}

/// A body the license service cannot read, refused in its own error shape.
fn unreadable(rejection: JsonRejection) -> Response {
    let body = json!({"Error": {"Code": "InvalidRequest", "Message": rejection.body_text()}});
    (rejection.status(), Json(body)).into_response()
}

/// An activated key: the persistent identifier, the user token, and whose subscription it is.
struct Activation {
    persistent_id: String,
    user_token: String,
    customer_id: String,
}

/// Activation of a key: checks it exists, is for this product (and customer, when named), is unused and
/// unexpired; marks it used.
async fn activate(
    pool: &SqlitePool,
    request: &license::ActivateProduct,
) -> Result<Result<Activation, Response>, sqlx::Error> {
    let row: Option<(String, String, Option<i64>, i64, String)> = sqlx::query_as(
        "SELECT s.activation_key, s.customer_id, s.activated_at, s.key_expires_at, p.product_token
         FROM devpay_subscriptions s JOIN devpay_products p ON p.product_code = s.product_code WHERE s.activation_key = ?",
    )
    .bind(request.activation_key.trim().to_uppercase())
    .fetch_optional(pool)
    .await?;
    let Some((key, customer_id, activated_at, expires_at, product_token)) = row else {
        return Ok(Err(license_error("InvalidActivationKey", "no such activation key")));
    };
    if product_token != request.product_token {
        return Ok(Err(license_error("InvalidProductToken", "the key is not for this product")));
    }
    if request.customer_id.as_ref().is_some_and(|expected| *expected != customer_id) {
        return Ok(Err(license_error("ActivationKeyNotForCustomer", "the key belongs to another customer")));
    }
    if activated_at.is_some() {
        return Ok(Err(license_error("ActivationKeyAlreadyUsed", "the key was already activated")));
    }
    if expires_at <= crate::now_secs() {
        return Ok(Err(license_error("ExpiredActivationKey", "the key expired before it was activated")));
    }
    let pid = random_token("PID-", 12);
    let user_token = random_token("{UserToken}", 24);
    let claimed = sqlx::query(
        "UPDATE devpay_subscriptions SET activated_at = ?, persistent_id = ?, user_token = ? WHERE activation_key = ? AND activated_at IS NULL",
    )
    .bind(crate::now_secs())
    .bind(&pid)
    .bind(&user_token)
    .bind(&key)
    .execute(pool)
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(Err(license_error("ActivationKeyAlreadyUsed", "the key was already activated")));
    }
    Ok(Ok(Activation { persistent_id: pid, user_token, customer_id }))
}

/// Activates a key for a hosted product (the paths are `license::path(action)`, checked by a test).
#[utoipa::path(post, path = "/devpay/license/ActivateHostedProduct", tag = "devpay_license",
    request_body = license::ActivateProduct, responses((status = 200, body = license::HostedActivation),
        (status = "4XX", body = license::LicenseError)))]
async fn activate_hosted(
    State(state): State<AppState>,
    body: Result<Json<license::ActivateProduct>, JsonRejection>,
) -> SandboxResult<Response> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return Ok(unreadable(rejection)),
    };
    Ok(match activate(&state.pool, &request).await? {
        Ok(activation) => Json(license::HostedActivation {
            persistent_identifier: activation.persistent_id,
            user_token: activation.user_token,
            customer_id: activation.customer_id,
        })
        .into_response(),
        Err(error) => error,
    })
}

#[utoipa::path(post, path = "/devpay/license/ActivateDesktopProduct", tag = "devpay_license",
    request_body = license::ActivateProduct, responses((status = 200, body = license::DesktopActivation),
        (status = "4XX", body = license::LicenseError)))]
async fn activate_desktop(
    State(state): State<AppState>,
    body: Result<Json<license::ActivateProduct>, JsonRejection>,
) -> SandboxResult<Response> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return Ok(unreadable(rejection)),
    };
    Ok(match activate(&state.pool, &request).await? {
        Ok(activation) => Json(license::DesktopActivation {
            user_token: activation.user_token,
            customer_id: activation.customer_id,
            aws_access_key_id: random_token("AKID", 8).to_uppercase(),
            secret_access_key: random_token("", 20),
        })
        .into_response(),
        Err(error) => error,
    })
}

/// A subscription's standing, as the license service reports it.
pub use license::SubscriptionStanding;

/// How a verify action names the subscription, and what else it must match.
enum Named<'a> {
    /// `VerifyProductSubscriptionByPid`: the persistent identifier, of this product code.
    Pid { pid: &'a str, product_code: &'a str },
    /// `VerifyProductSubscriptionByTokens`: the user token, of the product with this token.
    Tokens { user_token: &'a str, product_token: &'a str },
}

async fn standing(pool: &SqlitePool, named: Named<'_>) -> Result<Result<SubscriptionStanding, Response>, sqlx::Error> {
    let (sql, value) = match named {
        Named::Pid { pid, .. } => ("SELECT s.customer_id, s.product_code, s.status, s.paid_through_period, s.cancel_at_period_end, p.product_token
             FROM devpay_subscriptions s JOIN devpay_products p ON p.product_code = s.product_code WHERE s.persistent_id = ?", pid),
        Named::Tokens { user_token, .. } => ("SELECT s.customer_id, s.product_code, s.status, s.paid_through_period, s.cancel_at_period_end, p.product_token
             FROM devpay_subscriptions s JOIN devpay_products p ON p.product_code = s.product_code WHERE s.user_token = ?", user_token),
    };
    // One read transaction: the row, the clock and the prices from one snapshot, so a month advancing between
    // two reads cannot pair the new month with the old paid-through period.
    let mut tx = pool.begin().await?;
    let row: Option<(String, String, String, i64, bool, String)> =
        sqlx::query_as(sql).bind(value).fetch_optional(&mut *tx).await?;
    let Some((customer_id, code, status, paid_through, cancelling, token)) = row else {
        return Ok(Err(license_error("InvalidIdentifier", "no subscription with this identifier")));
    };
    match named {
        Named::Pid { product_code, .. } if product_code != code => {
            return Ok(Err(license_error("InvalidProductCode", "the identifier is not for this product")));
        }
        Named::Tokens { product_token, .. } if product_token != token => {
            return Ok(Err(license_error("InvalidProductToken", "the identifier is not for this product")));
        }
        _ => {}
    }
    let period = current_period(&mut *tx).await?;
    Ok(Ok(SubscriptionStanding {
        customer_id,
        subscribed: status == "active" && paid_through >= period,
        status,
        paid_through_period: paid_through,
        current_period: period,
        monthly_fee_cents: price_for(&mut *tx, &code, period).await?,
        next_monthly_fee_cents: price_for(&mut *tx, &code, period + 1).await?,
        cancel_at_period_end: cancelling,
        paid_until: first_day_of(&mut *tx, paid_through + 1).await?,
    }))
}

#[utoipa::path(post, path = "/devpay/license/VerifyProductSubscriptionByPid", tag = "devpay_license",
    request_body = license::VerifyByPid, responses((status = 200, body = license::SubscriptionStanding),
        (status = "4XX", body = license::LicenseError)))]
async fn verify_by_pid(
    State(state): State<AppState>,
    body: Result<Json<license::VerifyByPid>, JsonRejection>,
) -> SandboxResult<Response> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return Ok(unreadable(rejection)),
    };
    let named = Named::Pid { pid: &request.persistent_identifier, product_code: &request.product_code };
    answer(&state.pool, named).await
}

#[utoipa::path(post, path = "/devpay/license/VerifyProductSubscriptionByTokens", tag = "devpay_license",
    request_body = license::VerifyByTokens, responses((status = 200, body = license::SubscriptionStanding),
        (status = "4XX", body = license::LicenseError)))]
async fn verify_by_tokens(
    State(state): State<AppState>,
    body: Result<Json<license::VerifyByTokens>, JsonRejection>,
) -> SandboxResult<Response> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return Ok(unreadable(rejection)),
    };
    answer(&state.pool, Named::Tokens { user_token: &request.user_token, product_token: &request.product_token }).await
}

/// The standing as a response: the JSON body, or the license error.
async fn answer(pool: &SqlitePool, named: Named<'_>) -> SandboxResult<Response> {
    Ok(match standing(pool, named).await? {
        Ok(standing) => Json(standing).into_response(),
        Err(error) => error,
    })
}

/// `GetActiveSubscriptionsByPid`: the product codes the customer behind a persistent identifier may use now.
#[utoipa::path(post, path = "/devpay/license/GetActiveSubscriptionsByPid", tag = "devpay_license",
    request_body = license::ActiveSubscriptionsQuery, responses((status = 200, body = license::ActiveSubscriptions),
        (status = "4XX", body = license::LicenseError)))]
async fn active_subscriptions_by_pid(
    State(state): State<AppState>,
    body: Result<Json<license::ActiveSubscriptionsQuery>, JsonRejection>,
) -> SandboxResult<Response> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return Ok(unreadable(rejection)),
    };
    let customer: Option<String> =
        sqlx::query_scalar("SELECT customer_id FROM devpay_subscriptions WHERE persistent_id = ?")
            .bind(&request.persistent_identifier)
            .fetch_optional(&state.pool)
            .await?;
    let Some(customer) = customer else {
        return Ok(license_error("InvalidIdentifier", "no subscription with this identifier"));
    };
    let period = current_period(&state.pool).await?;
    let product_codes: Vec<String> = sqlx::query_scalar(
        "SELECT product_code FROM devpay_subscriptions
         WHERE customer_id = ? AND status = 'active' AND paid_through_period >= ? ORDER BY product_code",
    )
    .bind(customer)
    .bind(period)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(license::ActiveSubscriptions { product_codes }).into_response())
}

/// `RefreshUserToken`: a new user token replaces the old one, which stops working.
#[utoipa::path(post, path = "/devpay/license/RefreshUserToken", tag = "devpay_license",
    request_body = license::UserToken, responses((status = 200, body = license::UserToken),
        (status = "4XX", body = license::LicenseError)))]
async fn refresh_user_token(
    State(state): State<AppState>,
    body: Result<Json<license::UserToken>, JsonRejection>,
) -> SandboxResult<Response> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return Ok(unreadable(rejection)),
    };
    let fresh = random_token("{UserToken}", 24);
    let updated = sqlx::query("UPDATE devpay_subscriptions SET user_token = ? WHERE user_token = ?")
        .bind(&fresh)
        .bind(&request.user_token)
        .execute(&state.pool)
        .await?;
    if updated.rows_affected() == 0 {
        return Ok(license_error("InvalidUserToken", "no subscription with this user token"));
    }
    Ok(Json(license::UserToken { user_token: fresh }).into_response())
}
