//! The Amazon side of Instant Access: a "buy on Amazon.com" page where a customer links their game account
//! and buys the game's products, and an order page with customer-service actions (refund, payment problem,
//! end a subscription). Calls to the vendor are signed with DTA1-HMAC-SHA256; account linking happens while
//! the customer waits, and every other call is queued and delivered by a worker that retries with backoff,
//! its attempts shown on the order page.

use std::time::Duration;

use amazon_rewards_protocol::dta1::{AmzDate, Credential, sign};
use amazon_rewards_protocol::instant_access::{
    DeactivateReason, InstantAccessRequest, InstantAccessResponse, PurchaseReason, ResponseCode, RevokeReason,
    SubscriptionPeriod,
};
use amazon_rewards_protocol::prime_gaming::is_valid_sku;
use amazon_rewards_protocol::sandbox_admin::{InstantAccessProduct, InstantAccessVendor};
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use sqlx::SqlitePool;

use crate::AppState;
use crate::auth::random_token;
use crate::error::{SandboxError, SandboxResult};
use crate::lwa::check_password;
use crate::pages::{escape, page};

/// Most attempts to deliver one call before giving up.
const MAX_ATTEMPTS: i64 = 12;

/// Public pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/instant-access/store", get(store))
        .route("/instant-access/buy", post(buy))
        .route("/instant-access/orders/{key}", get(order_page).post(order_action))
}

/// Admin routes, nested under `/admin`.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/instant-access/vendor", post(set_vendor)).route("/instant-access/products", post(add_product))
}

async fn set_vendor(
    State(state): State<AppState>,
    body: Result<Json<InstantAccessVendor>, JsonRejection>,
) -> SandboxResult<StatusCode> {
    let Json(vendor) = body?;
    for url in [&vendor.linking_url, &vendor.fulfillment_url] {
        url::Url::parse(url).map_err(|_| SandboxError::BadRequest(format!("{url:?} is not a URL")))?;
    }
    sqlx::query(
        "INSERT INTO ia_vendor (id, linking_url, fulfillment_url, key_id, secret, new_account_url) VALUES (1, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET linking_url = excluded.linking_url, fulfillment_url = excluded.fulfillment_url,
             key_id = excluded.key_id, secret = excluded.secret, new_account_url = excluded.new_account_url",
    )
    .bind(&vendor.linking_url)
    .bind(&vendor.fulfillment_url)
    .bind(&vendor.key_id)
    .bind(&vendor.secret)
    .bind(&vendor.new_account_url)
    .execute(&state.pool)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_product(
    State(state): State<AppState>,
    body: Result<Json<InstantAccessProduct>, JsonRejection>,
) -> SandboxResult<StatusCode> {
    let Json(product) = body?;
    if !is_valid_sku(&product.product_id) || product.price_cents < 0 {
        return Err(SandboxError::BadRequest("a product needs a valid SKU and a price".into()));
    }
    sqlx::query(
        "INSERT INTO ia_products (product_id, title, price_cents, subscription) VALUES (?, ?, ?, ?)
         ON CONFLICT(product_id) DO UPDATE SET title = excluded.title, price_cents = excluded.price_cents,
             subscription = excluded.subscription",
    )
    .bind(&product.product_id)
    .bind(&product.title)
    .bind(product.price_cents)
    .bind(product.subscription)
    .execute(&state.pool)
    .await?;
    Ok(StatusCode::CREATED)
}

fn price(cents: i64, subscription: bool) -> String {
    format!("${}.{:02}{}", cents / 100, cents % 100, if subscription { " / month" } else { "" })
}

#[derive(Debug, Default, Deserialize)]
struct StoreQuery {
    /// Set when the vendor's new-account page sends the customer back.
    #[serde(default)]
    linked: Option<String>,
}

async fn store(State(state): State<AppState>, Query(query): Query<StoreQuery>) -> SandboxResult<Html<String>> {
    let products: Vec<(String, String, i64, bool)> =
        sqlx::query_as("SELECT product_id, title, price_cents, subscription FROM ia_products ORDER BY title")
            .fetch_all(&state.pool)
            .await?;
    let choices: String = products
        .iter()
        .enumerate()
        .map(|(i, (id, title, cents, subscription))| {
            format!(
                r#"<label style="font-weight:normal"><input type="radio" name="product_id" id="product-{id}" value="{id}"{checked}> {title} — <b>{price}</b></label>"#,
                id = escape(id),
                title = escape(title),
                price = price(*cents, *subscription),
                checked = if i == 0 { " checked" } else { "" },
            )
        })
        .collect();
    let linked = query.linked.unwrap_or_default();
    let welcome = if linked.is_empty() {
        String::new()
    } else {
        format!(r#"<p id="welcome">Your game account <b>{}</b> is ready. Finish your purchase.</p>"#, escape(&linked))
    };
    Ok(page(
        "Buy for your game",
        &format!(
            r#"{welcome}<form method="post" action="/instant-access/buy">{choices}
<label for="username">Your game account name</label><input id="username" name="username" type="text" value="{linked}" required>
<label for="email">Amazon email</label><input id="email" name="email" type="email" required>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button id="buy" type="submit">Buy now</button></form>
<p class="note">Sandbox: no money changes hands. The first purchase links your Amazon account to the game account.</p>"#,
            linked = escape(&linked),
        ),
    ))
}

#[derive(Debug, Deserialize)]
struct BuyForm {
    #[serde(default)]
    product_id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn problem(status: StatusCode, message: &str) -> Response {
    (
        status,
        page(
            "Purchase problem",
            &format!(
                r#"<p class="error">{}</p><p><a href="/instant-access/store">Back to the store</a></p>"#,
                escape(message)
            ),
        ),
    )
        .into_response()
}

async fn new_account_url(pool: &SqlitePool) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Option<String>>("SELECT new_account_url FROM ia_vendor WHERE id = 1")
        .fetch_optional(pool)
        .await?
        .flatten())
}

async fn vendor(pool: &SqlitePool) -> Result<Option<(String, String, Credential)>, sqlx::Error> {
    let row: Option<(String, String, String, String)> =
        sqlx::query_as("SELECT linking_url, fulfillment_url, key_id, secret FROM ia_vendor WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(linking, fulfillment, key_id, secret)| (linking, fulfillment, Credential::new(key_id, secret))))
}

/// Sends one signed call; `Err` when it should be retried (network failure or no 200 answer).
async fn send_signed(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    credential: &Credential,
) -> Result<InstantAccessResponse, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let signed = sign("POST", parsed.path(), "application/json", body.as_bytes(), credential, AmzDate::now());
    let response = http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-amz-date", signed.x_amz_date)
        .header(header::AUTHORIZATION, signed.authorization)
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| format!("not reached: {}", e.without_url()))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    response.json().await.map_err(|e| format!("unreadable answer: {e}"))
}

async fn buy(State(state): State<AppState>, form: Result<Form<BuyForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return problem(StatusCode::BAD_REQUEST, "The form was malformed.");
    };
    match place_order(&state, form).await {
        Ok(Ok(order_key)) => {
            (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/instant-access/orders/{order_key}"))]).into_response()
        }
        Ok(Err(response)) => response,
        Err(error) => {
            tracing::error!(%error, "database error");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed.")
        }
    }
}
/// The game account the customer is linked to, linking it first if need be: the customer waits while the
/// game answers `GetUserId` for the name they typed. `Err` is the page to show instead (no such account, with
/// the game's new-account link when it has one; or the game unreachable).
async fn linked_vendor_user(
    state: &AppState,
    customer: &str,
    username: &str,
    linking_url: &str,
    credential: &Credential,
) -> Result<Result<String, Response>, sqlx::Error> {
    let linked: Option<String> = sqlx::query_scalar("SELECT vendor_user_id FROM ia_links WHERE customer_id = ?")
        .bind(customer)
        .fetch_optional(&state.pool)
        .await?;
    if let Some(user) = linked {
        return Ok(Ok(user));
    }
    let request = InstantAccessRequest::GetUserId {
        info_field1: Some(username.trim().to_owned()),
        info_field2: None,
        info_field3: None,
    };
    match send_signed(&state.http, linking_url, &request.to_json().to_string(), credential).await {
        Ok(InstantAccessResponse { response: ResponseCode::Ok, user_id: Some(user), .. }) => {
            sqlx::query(
                "INSERT INTO ia_links (customer_id, vendor_user_id) VALUES (?, ?) ON CONFLICT(customer_id) DO NOTHING",
            )
            .bind(customer)
            .bind(&user)
            .execute(&state.pool)
            .await?;
            Ok(Ok(user))
        }
        Ok(answer) => {
            let message = format!("The game found no account named {username:?} ({}).", answer.response.as_str());
            Ok(Err(no_such_account(state, &message).await?))
        }
        Err(error) => Ok(Err(problem(
            StatusCode::BAD_GATEWAY,
            &format!("The game's servers could not be reached ({error}). Try again."),
        ))),
    }
}

/// The page for a name the game does not know: the game's new-account link, when it has one.
async fn no_such_account(state: &AppState, message: &str) -> Result<Response, sqlx::Error> {
    let Some(new_account) = new_account_url(&state.pool).await? else {
        return Ok(problem(StatusCode::BAD_REQUEST, message));
    };
    let mut link = url::Url::parse(&new_account).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    link.query_pairs_mut().append_pair("return_url", &format!("{}/instant-access/store", state.base_url));
    let body = format!(
        r#"<p class="error">{}</p><p><a id="create-account" href="{}">Create a game account</a> and come back.</p>"#,
        escape(message),
        escape(link.as_str())
    );
    Ok((StatusCode::BAD_REQUEST, page("Link your game account", &body)).into_response())
}

async fn place_order(state: &AppState, form: BuyForm) -> Result<Result<String, Response>, sqlx::Error> {
    let Some(customer) = check_password(&state.pool, &form.email, &form.password).await? else {
        return Ok(Err(problem(StatusCode::UNAUTHORIZED, "Your email or password is incorrect.")));
    };
    let product: Option<(bool,)> = sqlx::query_as("SELECT subscription FROM ia_products WHERE product_id = ?")
        .bind(&form.product_id)
        .fetch_optional(&state.pool)
        .await?;
    let Some((subscription,)) = product else {
        return Ok(Err(problem(StatusCode::BAD_REQUEST, "That product is not sold here.")));
    };
    let Some((linking_url, _, credential)) = vendor(&state.pool).await? else {
        return Ok(Err(problem(StatusCode::SERVICE_UNAVAILABLE, "The game has not set up Instant Access yet.")));
    };
    let vendor_user = match linked_vendor_user(state, &customer, &form.username, &linking_url, &credential).await? {
        Ok(user) => user,
        Err(page) => return Ok(Err(page)),
    };
    let order_key = random_token("", 16);
    let token = random_token("amzn1.ia.pt.", 12);
    sqlx::query(
        "INSERT INTO ia_orders (order_key, customer_id, vendor_user_id, product_id, subscription, purchase_token, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
    )
    .bind(&order_key)
    .bind(&customer)
    .bind(&vendor_user)
    .bind(&form.product_id)
    .bind(subscription)
    .bind(&token)
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await?;
    let request = if subscription {
        InstantAccessRequest::SubscriptionActivate {
            subscription_id: token,
            product_id: form.product_id,
            user_id: vendor_user,
            number_of_licenses: None,
        }
    } else {
        InstantAccessRequest::Purchase {
            reason: PurchaseReason::Fulfill,
            product_id: form.product_id,
            user_id: vendor_user,
            purchase_token: token,
        }
    };
    enqueue(&state.pool, &order_key, &request).await?;
    state.deliveries.notify_one();
    Ok(Ok(order_key))
}

fn operation_name(request: &InstantAccessRequest) -> &'static str {
    match request {
        InstantAccessRequest::GetUserId { .. } => "GetUserId",
        InstantAccessRequest::Purchase { .. } => "Purchase",
        InstantAccessRequest::Revoke { .. } => "Revoke",
        InstantAccessRequest::SubscriptionActivate { .. } => "SubscriptionActivate",
        InstantAccessRequest::SubscriptionDeactivate { .. } => "SubscriptionDeactivate",
        InstantAccessRequest::SubscriptionGet { .. } => "SubscriptionGet",
        InstantAccessRequest::SubscriptionUpdate { .. } => "SubscriptionUpdate",
    }
}

async fn enqueue(pool: &SqlitePool, order_key: &str, request: &InstantAccessRequest) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ia_deliveries (order_key, operation, body, state, next_attempt_ms) VALUES (?, ?, ?, 'pending', ?)",
    )
    .bind(order_key)
    .bind(operation_name(request))
    .bind(request.to_json().to_string())
    .bind(crate::now_millis())
    .execute(pool)
    .await?;
    Ok(())
}

/// Delivers due calls, forever: each answered call updates its order; failures retry with backoff.
pub(crate) async fn delivery_worker(state: AppState) {
    loop {
        if let Err(error) = deliver_due(&state).await {
            tracing::error!(%error, "delivery worker database error");
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), state.deliveries.notified()).await;
    }
}

async fn deliver_due(state: &AppState) -> Result<(), sqlx::Error> {
    let due: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
        "SELECT seq, order_key, operation, body, attempts FROM ia_deliveries
         WHERE state = 'pending' AND next_attempt_ms <= ? ORDER BY seq LIMIT 20",
    )
    .bind(crate::now_millis())
    .fetch_all(&state.pool)
    .await?;
    if due.is_empty() {
        return Ok(());
    }
    let Some((_, fulfillment_url, credential)) = vendor(&state.pool).await? else {
        return Ok(());
    };
    for (seq, order_key, operation, body, attempts) in due {
        let attempts = attempts + 1;
        match send_signed(&state.http, &fulfillment_url, &body, &credential).await {
            Ok(answer) => {
                let mut code = answer.response.as_str().to_owned();
                if let (Some(used), Some(unused)) = (answer.number_of_used_licenses, answer.number_of_unused_licenses) {
                    code.push_str(&format!(" ({used} licenses used, {unused} unused)"));
                }
                sqlx::query("UPDATE ia_deliveries SET state = 'answered', attempts = ?, last_result = ? WHERE seq = ?")
                    .bind(attempts)
                    .bind(&code)
                    .bind(seq)
                    .execute(&state.pool)
                    .await?;
                let status = match (operation.as_str(), answer.response) {
                    ("Purchase", ResponseCode::Ok) => "delivered".to_owned(),
                    ("SubscriptionActivate", ResponseCode::Ok) => "active".to_owned(),
                    ("Revoke", ResponseCode::Ok) => "revoked".to_owned(),
                    ("SubscriptionDeactivate", ResponseCode::Ok) => "ended".to_owned(),
                    // Asking about or changing licenses leaves the subscription running, whatever the answer.
                    ("SubscriptionGet" | "SubscriptionUpdate", _) => "active".to_owned(),
                    (_, other) => format!("refused by the game: {}", other.as_str()),
                };
                sqlx::query("UPDATE ia_orders SET status = ? WHERE order_key = ?")
                    .bind(status)
                    .bind(&order_key)
                    .execute(&state.pool)
                    .await?;
            }
            Err(error) => {
                let give_up = attempts >= MAX_ATTEMPTS;
                let backoff_ms = 500i64 * (1i64 << attempts.min(7));
                sqlx::query("UPDATE ia_deliveries SET state = ?, attempts = ?, last_result = ?, next_attempt_ms = ? WHERE seq = ?")
                    .bind(if give_up { "failed" } else { "pending" })
                    .bind(attempts)
                    .bind(&error)
                    .bind(crate::now_millis() + backoff_ms)
                    .bind(seq)
                    .execute(&state.pool)
                    .await?;
                tracing::warn!(operation, attempts, error, "Instant Access delivery failed; retrying later");
            }
        }
    }
    Ok(())
}

async fn order_page(State(state): State<AppState>, Path(key): Path<String>) -> SandboxResult<Response> {
    let order: Option<(String, String, bool, String)> =
        sqlx::query_as("SELECT o.product_id, p.title, o.subscription, o.status FROM ia_orders o JOIN ia_products p ON p.product_id = o.product_id WHERE o.order_key = ?")
            .bind(&key)
            .fetch_optional(&state.pool)
            .await?;
    let Some((_, title, subscription, status)) = order else {
        return Err(SandboxError::NotFound("order".into()));
    };
    let deliveries: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT operation, state, attempts, last_result FROM ia_deliveries WHERE order_key = ? ORDER BY seq",
    )
    .bind(&key)
    .fetch_all(&state.pool)
    .await?;
    let pending = deliveries.iter().any(|(_, s, _, _)| s == "pending");
    let rows: String = deliveries
        .iter()
        .map(|(operation, state, attempts, result)| {
            format!(
                "<li>{} — {} after {} attempt(s){}</li>",
                escape(operation),
                escape(state),
                attempts,
                result.as_deref().map(|r| format!(": {}", escape(r))).unwrap_or_default()
            )
        })
        .collect();
    let actions = match (subscription, status.as_str()) {
        (false, "delivered") => {
            r#"<button id="refund" name="action" value="refund" type="submit">Refund (customer service)</button>
<button id="payment-problem" class="secondary" name="action" value="payment_problem" type="submit">Report a payment problem</button>"#
        }
        (true, "active") => {
            r#"<button id="end" name="action" value="end" type="submit">End subscription</button>
<button id="reassign" class="secondary" name="action" value="reassign" type="submit">Move to another account</button>
<button id="check-licenses" class="secondary" name="action" value="licenses" type="submit">Check licenses</button>
<label>Licenses <input id="licenses" name="licenses" type="number" min="1" max="1000" value="1"></label>
<button id="set-licenses" class="secondary" name="action" value="set_licenses" type="submit">Change licenses</button>"#
        }
        _ => "",
    };
    let refresh = if pending { r#"<meta http-equiv="refresh" content="1">"# } else { "" };
    Ok(page(
        "Your order",
        &format!(
            r#"{refresh}<p><b>{title}</b></p><p>Status: <b id="status">{status}</b></p>
<p>Calls to the game:</p><ul>{rows}</ul>
<form method="post">{actions}</form><p><a href="/instant-access/store">Back to the store</a></p>"#,
            title = escape(&title),
            status = escape(&status),
        ),
    )
    .into_response())
}

#[derive(Debug, Deserialize)]
struct OrderAction {
    #[serde(default)]
    action: String,
    /// For `set_licenses`: the new count (1..=1000 on this page).
    #[serde(default)]
    licenses: Option<String>,
}

/// The call a click on an order page makes Amazon send: `None` when the action does not apply to the order's
/// status (e.g. a refund of a subscription).
fn order_request(
    form: &OrderAction,
    status: &str,
    user_id: String,
    product_id: String,
    token: String,
) -> SandboxResult<Option<InstantAccessRequest>> {
    Ok(match (form.action.as_str(), status) {
        ("refund", "delivered") => Some(InstantAccessRequest::Revoke {
            reason: RevokeReason::CustomerServiceRequest,
            product_id,
            user_id,
            purchase_token: token,
        }),
        ("payment_problem", "delivered") => Some(InstantAccessRequest::Revoke {
            reason: RevokeReason::PaymentProblem,
            product_id,
            user_id,
            purchase_token: token,
        }),
        ("end" | "reassign", "active") => Some(InstantAccessRequest::SubscriptionDeactivate {
            subscription_id: token,
            reason: if form.action == "end" { DeactivateReason::UserRequest } else { DeactivateReason::Reassign },
            period: SubscriptionPeriod::Regular,
        }),
        ("licenses", "active") => Some(InstantAccessRequest::SubscriptionGet {
            subscription_id: token,
            product_id: Some(product_id),
            user_id: Some(user_id),
        }),
        ("set_licenses", "active") => {
            let count =
                form.licenses.as_deref().and_then(|n| n.trim().parse::<u32>().ok()).filter(|n| (1..=1000).contains(n));
            let Some(count) = count else {
                return Err(SandboxError::BadRequest("licenses must be a number from 1 to 1000".into()));
            };
            Some(InstantAccessRequest::SubscriptionUpdate {
                subscription_id: token,
                product_id: Some(product_id),
                user_id: Some(user_id),
                number_of_licenses: Some(count),
                remove_all_unassigned_licenses: None,
            })
        }
        _ => None,
    })
}

async fn order_action(
    State(state): State<AppState>,
    Path(key): Path<String>,
    form: Result<Form<OrderAction>, FormRejection>,
) -> SandboxResult<Response> {
    let Ok(Form(form)) = form else {
        return Err(SandboxError::BadRequest("malformed form".into()));
    };
    let order: Option<(String, String, String, String)> =
        sqlx::query_as("SELECT vendor_user_id, product_id, purchase_token, status FROM ia_orders WHERE order_key = ?")
            .bind(&key)
            .fetch_optional(&state.pool)
            .await?;
    let Some((user_id, product_id, token, status)) = order else {
        return Err(SandboxError::NotFound("order".into()));
    };
    let request = order_request(&form, &status, user_id, product_id, token)?;
    if let Some(request) = request {
        sqlx::query("UPDATE ia_orders SET status = 'pending' WHERE order_key = ?")
            .bind(&key)
            .execute(&state.pool)
            .await?;
        enqueue(&state.pool, &key, &request).await?;
        state.deliveries.notify_one();
    }
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, format!("/instant-access/orders/{key}"))]).into_response())
}
