//! Paid subscriptions the DevPay way, on the studio's side: the game (or the sign-up redirect) hands the
//! backend an activation key; the backend activates it with the license service using the product token
//! (which never ships in the game), keeps the persistent identifier per player, verifies the subscription on
//! a schedule and on demand, and feeds the game a `SUBSCRIPTION` entitlement while it is active (`REVOKE` once
//! it is cancelled or unpaid).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::inventory::catalog::ServerCatalog;

use amazon_rewards_protocol::devpay::{RETURN_PATH, SignUpLink, SignUpRequest, license};
use amazon_rewards_protocol::prime_gaming::{Entitlement, NextInstruction};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::AnyPool;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::BackendError;
use crate::player::{AuthenticatedPlayer, PlayerAuth};

/// One DevPay product the backend sells: its code, secret product token, and the SKU the game's catalog knows.
#[derive(Clone)]
pub struct DevPayProductConfig {
    /// The product token (secret).
    pub product_token: String,
    /// The SKU served in the feed.
    pub sku: String,
}

/// Where the license service is and which products the backend knows.
#[derive(Clone)]
pub struct DevPayConfig {
    /// Base URL of the license service (`{url}/devpay/license/…`).
    pub license_url: String,
    /// Products by product code.
    pub products: HashMap<String, DevPayProductConfig>,
    /// How often every subscription is verified again.
    pub verify_every: Duration,
    /// Base of the sign-up pages (`{signup_url}/{product_code}`), for sign-up links that return to this
    /// backend ([`SIGNUP_PATH`](amazon_rewards_protocol::devpay::SIGNUP_PATH)); `None` turns them off.
    pub signup_url: Option<String>,
    /// This backend's public base URL (empty: the listen address): `{public_url}/devpay/return` must be
    /// registered as one of the product's return addresses.
    pub public_url: String,
}

impl std::fmt::Debug for DevPayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPayConfig")
            .field("license_url", &self.license_url)
            .field("products", &self.products.keys().collect::<Vec<_>>())
            .finish()
    }
}

pub use amazon_rewards_protocol::devpay::SubscriptionStatus;

/// What the DevPay routes work with; they exist only when DevPay is configured.
#[derive(Clone)]
pub struct DevPayState {
    /// The license service and the products.
    pub devpay: Arc<DevPayConfig>,
    /// The database.
    pub pool: AnyPool,
    /// Calls to the license service.
    pub oauth_http: reqwest::Client,
    /// Who is calling.
    pub auth: PlayerAuth,
    /// With a server-owned inventory: the catalog the subscriptions' perks are granted by.
    pub perks: Option<Arc<ServerCatalog>>,
}

impl axum::extract::FromRef<DevPayState> for PlayerAuth {
    fn from_ref(state: &DevPayState) -> Self {
        state.auth.clone()
    }
}

/// Routes for the game, with their state.
pub fn router(state: DevPayState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(activate))
        .routes(routes!(subscriptions))
        .routes(routes!(signup_link))
        .routes(routes!(signup_return))
        .with_state(state)
}

/// A refusal with a named code, answered as every [`BackendError`] is.
pub(crate) fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    BackendError::refused(status, code, message).into_response()
}

/// Activates the player's subscription with the key from Amazon's sign-up confirmation.
#[utoipa::path(post, path = amazon_rewards_protocol::devpay::ACTIVATE_PATH, tag = "devpay", security(("session" = [])),
    request_body = amazon_rewards_protocol::devpay::ActivateRequest,
    responses((status = 200, body = SubscriptionStatus),
        (status = 502, description = "The license service did not answer", body = crate::openapi::ErrorBody)))]
async fn activate(
    State(state): State<DevPayState>,
    player: AuthenticatedPlayer,
    body: Result<Json<amazon_rewards_protocol::devpay::ActivateRequest>, JsonRejection>,
) -> Response {
    let devpay = &*state.devpay;
    let Ok(user_id) = player.account() else {
        return BackendError::NoGameAccount.into_response();
    };
    let (amazon_user, user_id) = (player.amazon_user_id.clone(), user_id.to_owned());
    let Ok(Json(body)) = body else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "expected {\"ActivationKey\", \"ProductCode\"}");
    };
    match activate_for(&state, devpay, &amazon_user, &user_id, &body.activation_key, &body.product_code).await {
        Ok(status) => (StatusCode::OK, Json(status)).into_response(),
        Err(refusal) => refuse(refusal.status, &refusal.code, &refusal.message),
    }
}

/// Why a key was not activated.
struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self { status, code: code.to_owned(), message: message.to_owned() }
    }
}

/// Activates `key` with the license service for this player and stores the subscription.
async fn activate_for(
    state: &DevPayState,
    devpay: &DevPayConfig,
    amazon_user: &str,
    user_id: &str,
    key: &str,
    product_code: &str,
) -> Result<SubscriptionStatus, Refusal> {
    let Some(product) = devpay.products.get(product_code) else {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "UnknownProduct", "this game does not sell that product"));
    };
    let unavailable = |message: &str| Refusal::new(StatusCode::BAD_GATEWAY, "license_unavailable", message);
    // Naming the player's Amazon identity makes the license service refuse (and leave unused) a key that
    // another customer paid for.
    let call = license::ActivateProduct {
        activation_key: key.to_owned(),
        product_token: product.product_token.clone(),
        customer_id: Some(amazon_user.to_owned()),
    };
    let activation: license::HostedActivation =
        match license_call(&state.oauth_http, devpay, license::ACTIVATE_HOSTED_PRODUCT, &call).await {
            Ok(Ok(activation)) => activation,
            Ok(Err(refused)) => {
                return Err(Refusal::new(StatusCode::BAD_REQUEST, &refused.error.code, &refused.error.message));
            }
            Err(error) => return Err(unavailable(&error)),
        };
    if activation.customer_id != amazon_user {
        tracing::warn!("the license service activated a key for another customer; not storing it");
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "ActivationKeyNotForCustomer",
            "the key belongs to another customer",
        ));
    }
    let pid = activation.persistent_identifier.as_str();
    verify_and_store(&state.pool, &state.oauth_http, devpay, state.perks.as_deref(), pid, user_id, product_code)
        .await
        .map_err(|error| unavailable(&error))
}

/// How long a sign-up link made for another device stays good (seconds).
const SIGNUP_LINK_LIFETIME: i64 = 3600;
/// Most unused sign-up links one player may hold at once.
const MAX_OPEN_SIGNUP_LINKS: i64 = 20;
/// Expired links go; a player holding many unused links already waits.
async fn admit_signup_link(pool: &AnyPool, user_id: &str) -> Result<(), BackendError> {
    let purged = sqlx::query("DELETE FROM devpay_signups WHERE created_at < $1")
        .bind(crate::now_secs() - SIGNUP_LINK_LIFETIME)
        .execute(pool)
        .await;
    let open: Result<i64, _> =
        sqlx::query_scalar("SELECT COUNT(*) FROM devpay_signups WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(pool)
            .await;
    match (purged, open) {
        (Ok(_), Ok(open)) if open < MAX_OPEN_SIGNUP_LINKS => Ok(()),
        (Ok(_), Ok(_)) => Err(BackendError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_links",
            "finish or let expire the sign-up links already made",
        )),
        _ => Err(BackendError::Unavailable),
    }
}

/// A sign-up link whose return lands on this backend, bound to the player who asked: for a game whose
/// player signs up on another device (no loopback listener reachable there).
#[utoipa::path(post, path = amazon_rewards_protocol::devpay::SIGNUP_PATH, tag = "devpay", security(("session" = [])),
    request_body = SignUpRequest, responses((status = 200, body = amazon_rewards_protocol::devpay::SignUpLink)))]
async fn signup_link(
    State(state): State<DevPayState>,
    player: AuthenticatedPlayer,
    body: Result<Json<SignUpRequest>, JsonRejection>,
) -> Response {
    let devpay = &*state.devpay;
    let Some(signup_url) = devpay.signup_url.as_deref() else {
        return refuse(StatusCode::NOT_FOUND, "not_configured", "no sign-up pages are configured");
    };
    let Ok(user_id) = player.account() else {
        return BackendError::NoGameAccount.into_response();
    };
    let (amazon_user, user_id) = (player.amazon_user_id.clone(), user_id.to_owned());
    let Ok(Json(body)) = body else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "expected {\"ProductCode\"}");
    };
    if !devpay.products.contains_key(&body.product_code) {
        return refuse(StatusCode::BAD_REQUEST, "UnknownProduct", "this game does not sell that product");
    }
    if let Err(refused) = admit_signup_link(&state.pool, &user_id).await {
        return refused.into_response();
    }
    let link_state = crate::random_hex(24);
    let stored = sqlx::query(
        "INSERT INTO devpay_signups (state, user_id, amazon_user_id, product_code, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&link_state)
    .bind(&user_id)
    .bind(&amazon_user)
    .bind(&body.product_code)
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await;
    if stored.is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again");
    }
    let Ok(mut url) = url::Url::parse(&format!("{}/{}", signup_url.trim_end_matches('/'), body.product_code)) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "not_configured", "the sign-up URL is not a URL");
    };
    url.query_pairs_mut()
        .append_pair("redirect_uri", &format!("{}{RETURN_PATH}", devpay.public_url.trim_end_matches('/')))
        .append_pair("state", &link_state);
    Json(SignUpLink { sign_up_url: url.into(), expires_in: SIGNUP_LINK_LIFETIME as u64 }).into_response()
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReturnQuery {
    #[serde(default, rename = "ActivationKey")]
    activation_key: String,
    #[serde(default, rename = "ProductCode")]
    product_code: String,
    #[serde(default)]
    state: String,
}

/// Where a sign-up made from a backend link returns: the link's player gets the subscription, once.
/// Where Amazon's sign-up pages send the player's browser back with the activation key.
#[utoipa::path(get, path = RETURN_PATH, tag = "devpay_pages", params(ReturnQuery),
    responses((status = 200, description = "Subscribed (or why not)", body = String, content_type = "text/html"),
        (status = "4XX", description = "A page saying what is wrong", body = String, content_type = "text/html")))]
async fn signup_return(
    State(state): State<DevPayState>,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Response {
    let answer = |status: StatusCode, title: &str, message: &str| {
        (status, crate::signup::page(title, &format!("<p>{}</p>", crate::signup::escape(message)))).into_response()
    };
    let devpay = &*state.devpay;
    let Ok(Query(query)) = query else {
        return answer(StatusCode::BAD_REQUEST, "Sign-up did not complete", "This was not a sign-up return.");
    };
    // Single use: the link's state is claimed before anything else happens.
    let claimed: Result<Option<(String, String, String)>, sqlx::Error> = sqlx::query_as(
        "UPDATE devpay_signups SET used_at = $1 WHERE state = $2 AND used_at IS NULL AND created_at > $3
         RETURNING user_id, amazon_user_id, product_code",
    )
    .bind(crate::now_secs())
    .bind(&query.state)
    .bind(crate::now_secs() - SIGNUP_LINK_LIFETIME)
    .fetch_optional(&state.pool)
    .await;
    let (user_id, amazon_user, product_code) = match claimed {
        Ok(Some(claimed)) => claimed,
        Ok(None) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "Sign-up did not complete",
                "This sign-up link is unknown, used or expired. Start again from the game, or type the activation key shown on the confirmation page into the game.",
            );
        }
        Err(_) => return answer(StatusCode::SERVICE_UNAVAILABLE, "Try again", "The server is busy; reload this page."),
    };
    if query.product_code != product_code {
        return answer(StatusCode::BAD_REQUEST, "Sign-up did not complete", "The sign-up was for another product.");
    }
    match activate_for(&state, devpay, &amazon_user, &user_id, &query.activation_key, &product_code).await {
        Ok(_) => answer(StatusCode::OK, "Subscribed", "Your subscription is active. Return to the game."),
        Err(refusal) => answer(
            refusal.status,
            "Activation refused",
            &format!("{}: {}. Type the activation key into the game to try again.", refusal.code, refusal.message),
        ),
    }
}

/// Largest license-service answer read.
const MAX_LICENSE_ANSWER: usize = 64 * 1024;

/// Calls a license-service action: its answer, the service's refusal, or why there is neither.
async fn license_call<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    devpay: &DevPayConfig,
    action: &str,
    body: &impl serde::Serialize,
) -> Result<Result<T, license::LicenseError>, String> {
    let url = format!("{}{}", devpay.license_url.trim_end_matches('/'), license::path(action));
    let response = http.post(url).json(body).send().await.map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    let bytes = crate::read_capped(response, MAX_LICENSE_ANSWER).await.map_err(|e| format!("{action}: {e}"))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map(Ok).map_err(|e| format!("{action}: unreadable answer: {e}"));
    }
    match serde_json::from_slice::<license::LicenseError>(&bytes) {
        Ok(refused) => Ok(Err(refused)),
        Err(_) => Err(format!("{action}: HTTP {}", status.as_u16())),
    }
}

/// Asks the license service how the subscription stands and stores it.
async fn verify_and_store(
    pool: &AnyPool,
    http: &reqwest::Client,
    devpay: &DevPayConfig,
    perks: Option<&ServerCatalog>,
    pid: &str,
    user_id: &str,
    product_code: &str,
) -> Result<SubscriptionStatus, String> {
    let product = devpay.products.get(product_code).ok_or("unknown product")?;
    let call = license::VerifyByPid { persistent_identifier: pid.to_owned(), product_code: product_code.to_owned() };
    let standing: license::SubscriptionStanding =
        license_call(http, devpay, license::VERIFY_BY_PID, &call).await?.map_err(|refused| refused.error.code)?;
    let status = SubscriptionStatus {
        product_code: product_code.to_owned(),
        active: standing.subscribed,
        status: standing.status,
        paid_through_period: standing.paid_through_period,
        current_period: standing.current_period,
        monthly_fee_cents: standing.monthly_fee_cents,
        next_monthly_fee_cents: standing.next_monthly_fee_cents,
        cancel_at_period_end: standing.cancel_at_period_end,
        paid_until: Some(standing.paid_until),
    };
    sqlx::query(
        "INSERT INTO devpay_subscriptions (persistent_id, user_id, product_code, subscribed, status, paid_through_period,
             current_period, monthly_fee_cents, next_monthly_fee_cents, cancel_at_period_end, verified_at, paid_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (persistent_id) DO UPDATE SET subscribed = EXCLUDED.subscribed, status = EXCLUDED.status,
             paid_through_period = EXCLUDED.paid_through_period, current_period = EXCLUDED.current_period,
             monthly_fee_cents = EXCLUDED.monthly_fee_cents, next_monthly_fee_cents = EXCLUDED.next_monthly_fee_cents,
             cancel_at_period_end = EXCLUDED.cancel_at_period_end, verified_at = EXCLUDED.verified_at,
             paid_until = EXCLUDED.paid_until",
    )
    .bind(pid)
    .bind(user_id)
    .bind(product_code)
    .bind(i64::from(status.active))
    .bind(&status.status)
    .bind(status.paid_through_period)
    .bind(status.current_period)
    .bind(status.monthly_fee_cents)
    .bind(status.next_monthly_fee_cents)
    .bind(i64::from(status.cancel_at_period_end))
    .bind(crate::now_secs())
    .bind(status.paid_until.as_deref())
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    if let Some(catalog) = perks {
        let paid_until = status.paid_until.as_deref();
        crate::inventory::devpay_perks(pool, catalog, user_id, pid, &product.sku, status.active, paid_until)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(status)
}

/// Verifies every subscription of `user_id` (or everyone's) again.
async fn verify_all(
    pool: &AnyPool,
    http: &reqwest::Client,
    devpay: &DevPayConfig,
    perks: Option<&ServerCatalog>,
    user_id: Option<&str>,
) -> Result<Vec<SubscriptionStatus>, String> {
    let rows: Vec<(String, String, String)> = match user_id {
        Some(user) => sqlx::query_as("SELECT persistent_id, user_id, product_code FROM devpay_subscriptions WHERE user_id = $1 ORDER BY persistent_id")
            .bind(user)
            .fetch_all(pool)
            .await,
        None => sqlx::query_as("SELECT persistent_id, user_id, product_code FROM devpay_subscriptions ORDER BY persistent_id").fetch_all(pool).await,
    }
    .map_err(|e| e.to_string())?;
    let mut statuses = Vec::with_capacity(rows.len());
    let mut first_error = None;
    for (pid, user, code) in rows {
        // Every subscription is verified even when an earlier one fails.
        match verify_and_store(pool, http, devpay, perks, &pid, &user, &code).await {
            Ok(status) => statuses.push(status),
            Err(error) => first_error = first_error.or(Some(error)),
        }
    }
    match first_error {
        Some(error) if statuses.is_empty() => Err(error),
        _ => Ok(statuses),
    }
}

/// On demand: the player's subscriptions, verified now.
/// How each of the player's subscriptions stands (checked with the license service).
#[utoipa::path(get, path = amazon_rewards_protocol::devpay::SUBSCRIPTIONS_PATH, tag = "devpay",
    security(("session" = [])), responses((status = 200, body = Vec<SubscriptionStatus>),
        (status = 502, description = "The license service did not answer", body = crate::openapi::ErrorBody)))]
async fn subscriptions(State(state): State<DevPayState>, player: AuthenticatedPlayer) -> Response {
    let devpay = &*state.devpay;
    let Some(user_id) = player.account else {
        return Json(Vec::<SubscriptionStatus>::new()).into_response();
    };
    match verify_all(&state.pool, &state.oauth_http, devpay, state.perks.as_deref(), Some(&user_id)).await {
        Ok(statuses) => Json(statuses).into_response(),
        Err(error) => refuse(StatusCode::BAD_GATEWAY, "license_unavailable", &error),
    }
}

/// On a schedule: verifies everyone's subscriptions every `verify_every`.
pub(crate) async fn verifier(
    pool: AnyPool,
    http: reqwest::Client,
    devpay: Arc<DevPayConfig>,
    perks: Option<Arc<ServerCatalog>>,
) {
    loop {
        tokio::time::sleep(devpay.verify_every).await;
        let report = sweep(&pool, &http, &devpay, perks.as_deref()).await;
        if report.failed > 0 || report.ended > 0 {
            tracing::warn!(?report, "scheduled DevPay verification: some subscriptions failed or ended");
        }
    }
}

/// What one verification sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Verified with the license service and stored.
    pub verified: usize,
    /// Ended here because the license service no longer knows them, or their product is no longer sold.
    pub ended: usize,
    /// Not verified this time (the license service could not be asked); tried again next sweep.
    pub failed: usize,
}

/// Verifies every stored subscription once. One failure never stops the sweep: each subscription is verified
/// on its own. A subscription the license service does not know any more (`InvalidIdentifier`), or whose
/// product the backend no longer sells, is ended (`subscribed = 0`), so the feed takes its perks back.
pub async fn sweep(
    pool: &AnyPool,
    http: &reqwest::Client,
    devpay: &DevPayConfig,
    perks: Option<&ServerCatalog>,
) -> SweepReport {
    let rows: Vec<(String, String, String)> = match sqlx::query_as(
        "SELECT persistent_id, user_id, product_code FROM devpay_subscriptions ORDER BY persistent_id",
    )
    .fetch_all(pool)
    .await
    {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "DevPay sweep cannot read the subscriptions");
            return SweepReport { failed: 1, ..SweepReport::default() };
        }
    };
    let mut report = SweepReport::default();
    for (pid, user, code) in rows {
        let ended = match verify_and_store(pool, http, devpay, perks, &pid, &user, &code).await {
            Ok(_) => {
                report.verified += 1;
                continue;
            }
            Err(error) if error == "unknown product" => "product_removed",
            Err(error) if error == "InvalidIdentifier" => "unknown_to_license_service",
            Err(error) => {
                tracing::warn!(persistent_id = %pid, %error, "DevPay verification failed; next sweep tries again");
                report.failed += 1;
                continue;
            }
        };
        match end_subscription(pool, &pid, ended).await {
            Ok(()) => report.ended += 1,
            Err(error) => {
                tracing::warn!(persistent_id = %pid, %error, "cannot end a DevPay subscription");
                report.failed += 1;
            }
        }
    }
    report
}

/// Ends a subscription the backend can no longer verify for good, with the reason as its status.
async fn end_subscription(pool: &AnyPool, pid: &str, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE devpay_subscriptions SET subscribed = 0, status = $1, verified_at = $2 WHERE persistent_id = $3",
    )
    .bind(status)
    .bind(crate::now_secs())
    .bind(pid)
    .execute(pool)
    .await?;
    Ok(())
}

/// The player's DevPay subscriptions as feed entries: `FULFILL` while active (until reported), `REVOKE` once
/// ended (until reported).
pub async fn feed(pool: &AnyPool, devpay: &DevPayConfig, user_id: &str) -> Result<Vec<Entitlement>, sqlx::Error> {
    type Row = (String, String, i64, Option<i64>, Option<i64>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT persistent_id, product_code, subscribed, fulfilled_at, revoke_reported_at, paid_until
         FROM devpay_subscriptions WHERE user_id = $1 ORDER BY persistent_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(pid, code, subscribed, fulfilled_at, revoke_reported_at, paid_until)| {
            let instruction = match (subscribed != 0, fulfilled_at, revoke_reported_at) {
                (true, None, _) => NextInstruction::Fulfill,
                (false, _, None) => NextInstruction::Revoke,
                _ => return None,
            };
            Some(Entitlement {
                entitlement_id: format!("devpay:{pid}"),
                vendor_product_id: devpay.products.get(&code)?.sku.clone(),
                next_instruction: instruction,
                source: Some(crate::feed::SOURCE_SUBSCRIPTION.into()),
                active_until: paid_until,
            })
        })
        .collect())
}

/// Records the game's report on a subscription's perks (idempotent); `false` when there is nothing to record.
pub(crate) async fn record_report(
    pool: &AnyPool,
    user_id: &str,
    pid: &str,
    status: amazon_rewards_protocol::prime_gaming::LastInstruction,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = match status {
        amazon_rewards_protocol::prime_gaming::LastInstruction::Fulfill => {
            "UPDATE devpay_subscriptions SET fulfilled_at = COALESCE(fulfilled_at, $1) WHERE persistent_id = $2 AND user_id = $3"
        }
        amazon_rewards_protocol::prime_gaming::LastInstruction::Revoke => {
            "UPDATE devpay_subscriptions SET revoke_reported_at = COALESCE(revoke_reported_at, $1)
             WHERE persistent_id = $2 AND user_id = $3 AND subscribed = 0"
        }
    };
    let updated = sqlx::query(sql).bind(now).bind(pid).bind(user_id).execute(pool).await?;
    Ok(updated.rows_affected() == 1)
}
