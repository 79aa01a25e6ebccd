//! Amazon Instant Access on the studio's side: the account-linking and fulfilment endpoints Amazon calls.
//!
//! Every request is verified with DTA1-HMAC-SHA256 against the key store (403 when the signature, its date or
//! its key is wrong), read leniently (400 only for unreadable JSON), and answered HTTP 200 with a `response`
//! code. `purchaseToken` and `subscriptionId` make every call idempotent, also under concurrent identical calls
//! from several backend processes: the database's unique keys decide, not a read-then-write.

use amazon_rewards_protocol::dta1::{AmzDate, KeyStore, verify};
use amazon_rewards_protocol::instant_access::{
    FULFILLMENT_PATH, InstantAccessRequest, InstantAccessResponse, LINKING_PATH, ResponseCode,
};
use amazon_rewards_protocol::prime_gaming::is_valid_sku;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::AnyPool;
use utoipa_axum::{router::OpenApiRouter, routes};

use amazon_rewards_protocol::prime_gaming::LastInstruction;

use crate::AppState;
use crate::error::BackendError;

/// Routes of the two Instant Access endpoints, and the player's view of their subscriptions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(linking)).routes(routes!(fulfillment)).routes(routes!(player_route))
}

/// `GET /api/instant-access/subscriptions`: the player's subscriptions, and how each that ended did.
#[utoipa::path(get, path = amazon_rewards_protocol::instant_access::PLAYER_SUBSCRIPTIONS_PATH, tag = "instant_access",
    security(("session" = [])),
    responses((status = 200, body = Vec<amazon_rewards_protocol::instant_access::PlayerSubscription>)))]
async fn player_route(
    State(state): State<AppState>,
    player: crate::player::AuthenticatedPlayer,
) -> Result<axum::Json<Vec<amazon_rewards_protocol::instant_access::PlayerSubscription>>, crate::error::BackendError> {
    Ok(axum::Json(player_subscriptions(&state.pool, player.account()?).await?))
}

/// `user_id`'s subscriptions, newest first.
pub async fn player_subscriptions(
    pool: &AnyPool,
    user_id: &str,
) -> Result<Vec<amazon_rewards_protocol::instant_access::PlayerSubscription>, sqlx::Error> {
    let rows: Vec<crate::feed::SubscriptionRow> = sqlx::query_as(
        "SELECT subscription_id, product_id, active, deactivate_reason, period FROM ia_subscriptions
         WHERE user_id = $1 ORDER BY activated_at DESC LIMIT 100",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(subscription_id, product_id, active, reason, period)| {
            let ended = active == 0;
            amazon_rewards_protocol::instant_access::PlayerSubscription {
                subscription_id,
                product_id,
                active: !ended,
                ended_reason: reason.filter(|_| ended),
                ended_period: period.filter(|_| ended),
            }
        })
        .collect())
}

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// Verifies the signature and reads the request.
fn authenticate(
    keys: &KeyStore,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<InstantAccessRequest, BackendError> {
    if body.len() > MAX_BODY {
        return Err(BackendError::BadRequest("body too large".into()));
    }
    let pairs: Vec<(&str, &str)> =
        headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
    verify(method.as_str(), path, &pairs, body, keys, AmzDate::now()).map_err(|e| {
        tracing::warn!(path, reason = %e, "refused an Instant Access call");
        BackendError::Forbidden(e.to_string())
    })?;
    InstantAccessRequest::from_json(body).map_err(|e| BackendError::BadRequest(e.to_string()))
}

/// Amazon's account-linking call (`GetUserId`).
#[utoipa::path(post, path = LINKING_PATH, tag = "instant_access", security(("dta1" = [])),
    request_body = InstantAccessRequest,
    responses((status = 200, description = "Every outcome, FAIL_* included", body = InstantAccessResponse)))]
async fn linking(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("{}{LINKING_PATH}", state.public_path_prefix);
    let request = match authenticate(&state.keys, &method, &path, &headers, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    answer(&state, request, true).await
}

/// Amazon's fulfilment calls (`Purchase`, `Revoke`, `Subscription*`).
#[utoipa::path(post, path = FULFILLMENT_PATH, tag = "instant_access", security(("dta1" = [])),
    request_body = InstantAccessRequest,
    responses((status = 200, description = "Every outcome, FAIL_* included", body = InstantAccessResponse)))]
async fn fulfillment(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("{}{FULFILLMENT_PATH}", state.public_path_prefix);
    let request = match authenticate(&state.keys, &method, &path, &headers, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    answer(&state, request, false).await
}

async fn answer(state: &AppState, request: InstantAccessRequest, linking_endpoint: bool) -> Response {
    let is_linking = matches!(request, InstantAccessRequest::GetUserId { .. });
    let result = if is_linking != linking_endpoint {
        Ok(InstantAccessResponse::code(ResponseCode::FailOther))
    } else {
        handled(state, request).await
    };
    match result {
        Ok(response) => (StatusCode::OK, Json(response)).into_response(),
        Err(error) => {
            tracing::error!(%error, "Instant Access call failed on the database");
            // Amazon retries on errors; FAIL_OTHER would be final, so a transient failure is a 500.
            (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "database error"}))).into_response()
        }
    }
}

/// Handles one verified request, and (with a server-owned inventory) applies it to the player's inventory
/// before answering: an `OK` is only sent once the items are granted, so Amazon's retry covers a crash between.
async fn handled(state: &AppState, request: InstantAccessRequest) -> Result<InstantAccessResponse, sqlx::Error> {
    let response = handle(&state.pool, request.clone()).await?;
    if let Some(inventory) = &state.inventory {
        crate::inventory::after_instant_access(&state.pool, inventory, &request, &response).await?;
    }
    // The variant's name only (`Purchase`, `Revoke`, …): never a field.
    let operation = format!("{request:?}");
    let operation = operation.split([' ', '{', '(']).next().unwrap_or("Unknown");
    crate::telemetry::instant_access_call(operation, response.response.as_str());
    Ok(response)
}

/// The player and product of a subscription.
pub(crate) async fn subscription_owner(
    pool: &AnyPool,
    subscription_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, product_id FROM ia_subscriptions WHERE subscription_id = $1")
        .bind(subscription_id)
        .fetch_optional(pool)
        .await
}

/// Handles one verified request.
pub async fn handle(pool: &AnyPool, request: InstantAccessRequest) -> Result<InstantAccessResponse, sqlx::Error> {
    use InstantAccessRequest::*;
    Ok(match request {
        GetUserId { info_field1, .. } => get_user_id(pool, info_field1.as_deref().unwrap_or_default()).await?,
        Purchase { product_id, user_id, purchase_token, .. } => {
            InstantAccessResponse::code(purchase(pool, &user_id, &product_id, &purchase_token).await?)
        }
        Revoke { reason, user_id, purchase_token, .. } => {
            InstantAccessResponse::code(revoke(pool, &user_id, &purchase_token, reason.as_str()).await?)
        }
        SubscriptionActivate { subscription_id, product_id, user_id, number_of_licenses } => {
            let code = activate(pool, &subscription_id, &product_id, &user_id).await?;
            if code == ResponseCode::Ok
                && let Some(count) = number_of_licenses
            {
                set_licenses_once(pool, &subscription_id, count).await?;
            }
            InstantAccessResponse::code(code)
        }
        SubscriptionGet { subscription_id, .. } => licenses(pool, &subscription_id).await?,
        SubscriptionUpdate { subscription_id, number_of_licenses, remove_all_unassigned_licenses, .. } => {
            update_licenses(pool, &subscription_id, number_of_licenses, remove_all_unassigned_licenses == Some(true))
                .await?
        }
        SubscriptionDeactivate { subscription_id, reason, period } => {
            InstantAccessResponse::code(deactivate(pool, &subscription_id, reason.as_str(), period.as_str()).await?)
        }
    })
}

async fn get_user_id(pool: &AnyPool, username: &str) -> Result<InstantAccessResponse, sqlx::Error> {
    let user = crate::accounts::by_username(pool, username.trim()).await?;
    Ok(match user {
        Some(user_id) => {
            InstantAccessResponse { user_id: Some(user_id), ..InstantAccessResponse::code(ResponseCode::Ok) }
        }
        None => InstantAccessResponse::code(ResponseCode::FailAccountInvalid),
    })
}

/// Records a purchase once per token. A repeat with the same token, user and product is `OK` again.
pub async fn purchase(
    pool: &AnyPool,
    user_id: &str,
    product_id: &str,
    token: &str,
) -> Result<ResponseCode, sqlx::Error> {
    record_once(pool, OneTime::Purchase, token, user_id, product_id).await
}

/// The two things Instant Access grants once per key.
#[derive(Clone, Copy)]
enum OneTime {
    Purchase,
    Subscription,
}

/// Inserts the row for `key` unless it exists, then answers `OK` if the row (new or old) is this user's and
/// product's. The unique key decides between concurrent identical calls, in any number of processes.
async fn record_once(
    pool: &AnyPool,
    kind: OneTime,
    key: &str,
    user_id: &str,
    product_id: &str,
) -> Result<ResponseCode, sqlx::Error> {
    if key.is_empty() || !is_valid_sku(product_id) {
        return Ok(ResponseCode::FailOther);
    }
    if !crate::accounts::exists(pool, user_id).await? {
        return Ok(ResponseCode::FailUserInvalid);
    }
    let (insert, select) = match kind {
        OneTime::Purchase => (
            "INSERT INTO ia_purchases (purchase_token, user_id, product_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (purchase_token) DO NOTHING",
            "SELECT user_id, product_id FROM ia_purchases WHERE purchase_token = $1",
        ),
        OneTime::Subscription => (
            "INSERT INTO ia_subscriptions (subscription_id, user_id, product_id, active, activated_at)
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (subscription_id) DO NOTHING",
            "SELECT user_id, product_id FROM ia_subscriptions WHERE subscription_id = $1",
        ),
    };
    sqlx::query(insert).bind(key).bind(user_id).bind(product_id).bind(crate::now_secs()).execute(pool).await?;
    let (owner, product): (String, String) = sqlx::query_as(select).bind(key).fetch_one(pool).await?;
    Ok(if owner == user_id && product == product_id { ResponseCode::Ok } else { ResponseCode::FailOther })
}

/// Revokes a purchase once. Revoking again is `OK`; an unknown token is `FAIL_INVALID_PURCHASE_TOKEN`.
pub async fn revoke(pool: &AnyPool, user_id: &str, token: &str, reason: &str) -> Result<ResponseCode, sqlx::Error> {
    let owner: Option<String> = sqlx::query_scalar("SELECT user_id FROM ia_purchases WHERE purchase_token = $1")
        .bind(token)
        .fetch_optional(pool)
        .await?;
    match owner {
        None => Ok(ResponseCode::FailInvalidPurchaseToken),
        Some(owner) if owner != user_id => Ok(ResponseCode::FailUserInvalid),
        Some(_) => {
            sqlx::query(
                "UPDATE ia_purchases SET revoked = 1, revoke_reason = $1, revoked_at = $2
                 WHERE purchase_token = $3 AND revoked = 0",
            )
            .bind(reason)
            .bind(crate::now_secs())
            .bind(token)
            .execute(pool)
            .await?;
            Ok(ResponseCode::Ok)
        }
    }
}

async fn activate(
    pool: &AnyPool,
    subscription_id: &str,
    product_id: &str,
    user_id: &str,
) -> Result<ResponseCode, sqlx::Error> {
    record_once(pool, OneTime::Subscription, subscription_id, user_id, product_id).await
}

async fn deactivate(
    pool: &AnyPool,
    subscription_id: &str,
    reason: &str,
    period: &str,
) -> Result<ResponseCode, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT subscription_id FROM ia_subscriptions WHERE subscription_id = $1")
            .bind(subscription_id)
            .fetch_optional(pool)
            .await?;
    if found.is_none() {
        return Ok(ResponseCode::FailInvalidSubscription);
    }
    sqlx::query(
        "UPDATE ia_subscriptions SET active = 0, deactivate_reason = $1, period = $2, deactivated_at = $3
         WHERE subscription_id = $4 AND active = 1",
    )
    .bind(reason)
    .bind(period)
    .bind(crate::now_secs())
    .bind(subscription_id)
    .execute(pool)
    .await?;
    Ok(ResponseCode::Ok)
}

/// A subscription's licenses (SDK v3). A game account plays on one seat: an active subscription uses one of
/// its licenses (a subscription without a count has exactly one), an ended one none.
async fn licenses(pool: &AnyPool, subscription_id: &str) -> Result<InstantAccessResponse, sqlx::Error> {
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT active, licenses FROM ia_subscriptions WHERE subscription_id = $1")
            .bind(subscription_id)
            .fetch_optional(pool)
            .await?;
    let Some((active, licenses)) = row else {
        return Ok(InstantAccessResponse::code(ResponseCode::FailInvalidSubscription));
    };
    let total = u32::try_from(licenses.unwrap_or(1)).unwrap_or(0);
    let used = if active == 1 { total.min(1) } else { 0 };
    Ok(InstantAccessResponse {
        number_of_used_licenses: Some(used),
        number_of_unused_licenses: Some(total - used),
        ..InstantAccessResponse::code(ResponseCode::Ok)
    })
}

/// Records the license count an activation names; a repeated activation changes nothing.
async fn set_licenses_once(pool: &AnyPool, subscription_id: &str, count: u32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ia_subscriptions SET licenses = $1 WHERE subscription_id = $2 AND licenses IS NULL")
        .bind(i64::from(count))
        .bind(subscription_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Applies a license change (SDK v3): a new count, or dropping the unassigned ones. A count below the
/// licenses in use is refused (`FAIL_OTHER`): the vendor cannot take a seat from a playing customer.
async fn update_licenses(
    pool: &AnyPool,
    subscription_id: &str,
    count: Option<u32>,
    remove_unassigned: bool,
) -> Result<InstantAccessResponse, sqlx::Error> {
    let current = licenses(pool, subscription_id).await?;
    let (Some(used), ResponseCode::Ok) = (current.number_of_used_licenses, current.response) else {
        return Ok(current);
    };
    let target = if remove_unassigned { Some(used) } else { count };
    let Some(target) = target else {
        return Ok(current);
    };
    if target < used {
        return Ok(InstantAccessResponse::code(ResponseCode::FailOther));
    }
    sqlx::query("UPDATE ia_subscriptions SET licenses = $1 WHERE subscription_id = $2")
        .bind(i64::from(target))
        .bind(subscription_id)
        .execute(pool)
        .await?;
    licenses(pool, subscription_id).await
}

/// Records the game's report on a purchase (idempotent); `false` when there is nothing to record.
pub(crate) async fn record_purchase_report(
    pool: &AnyPool,
    user_id: &str,
    token: &str,
    status: LastInstruction,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = match status {
        LastInstruction::Fulfill => {
            "UPDATE ia_purchases SET fulfilled_at = COALESCE(fulfilled_at, $1) WHERE purchase_token = $2 AND user_id = $3"
        }
        LastInstruction::Revoke => {
            "UPDATE ia_purchases SET revoke_reported_at = COALESCE(revoke_reported_at, $1)
             WHERE purchase_token = $2 AND user_id = $3 AND revoked = 1"
        }
    };
    let updated = sqlx::query(sql).bind(now).bind(token).bind(user_id).execute(pool).await?;
    Ok(updated.rows_affected() == 1)
}

/// Records the game's report on a subscription (idempotent); `false` when there is nothing to record.
pub(crate) async fn record_subscription_report(
    pool: &AnyPool,
    user_id: &str,
    id: &str,
    status: LastInstruction,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = match status {
        LastInstruction::Fulfill => {
            "UPDATE ia_subscriptions SET fulfilled_at = COALESCE(fulfilled_at, $1) WHERE subscription_id = $2 AND user_id = $3"
        }
        LastInstruction::Revoke => {
            "UPDATE ia_subscriptions SET revoke_reported_at = COALESCE(revoke_reported_at, $1)
             WHERE subscription_id = $2 AND user_id = $3 AND active = 0"
        }
    };
    let updated = sqlx::query(sql).bind(now).bind(id).bind(user_id).execute(pool).await?;
    Ok(updated.rows_affected() == 1)
}
