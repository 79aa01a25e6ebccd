//! The entitlements feed for the game: the same shape as Prime Gaming's (`GET /api/entitlements`,
//! `POST /api/fulfill`), authenticated by the player's Login with Amazon access token (an
//! [`AuthenticatedPlayer`]), serving what the player bought through Instant Access and their
//! subscriptions, each with its source. Revoked purchases and ended subscriptions come with
//! `NextInstruction: REVOKE` until the game reports the revocation done.
//!
//! With a Prime Gaming relay configured, the player's Prime Gaming entitlements are merged in (ids `pg:…`),
//! and their reports relayed (see [`crate::prime_relay`]).

use amazon_rewards_protocol::prime_gaming::{
    ENTITLEMENTS_PATH, Entitlement, EntitlementsPage, FULFILL_PATH, FulfillRequest, FulfillResponse, FulfillResult,
    FulfillmentStatusUpdateResult, LastInstruction, NextInstruction,
};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use sqlx::AnyPool;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::BackendError;
use crate::player::AuthenticatedPlayer;

/// Most updates accepted in one fulfil call.
const MAX_UPDATES: usize = 1000;

/// Source names in the feed.
pub const SOURCE_INSTANT_ACCESS: &str = "INSTANT_ACCESS";
/// Source of subscription entitlements.
pub const SOURCE_SUBSCRIPTION: &str = "SUBSCRIPTION";

/// Routes of the feed.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(entitlements)).routes(routes!(fulfill))
}

/// What the player's game should grant or take back now (Prime Gaming's shape).
#[utoipa::path(get, path = ENTITLEMENTS_PATH, tag = "feed", security(("session" = [])),
    responses((status = 200, body = EntitlementsPage)))]
async fn entitlements(
    State(state): State<AppState>,
    player: AuthenticatedPlayer,
) -> Result<Json<EntitlementsPage>, BackendError> {
    let Some(user_id) = player.account else {
        return Ok(Json(EntitlementsPage::default()));
    };
    let mut entitlements = feed(&state.pool, &user_id).await?;
    if let Some(devpay) = &state.devpay {
        entitlements.extend(crate::devpay::feed(&state.pool, devpay, &user_id).await?);
    }
    if let Some(prime) = &state.prime {
        match prime.entitlements(&state.pool, &user_id).await {
            Ok(relayed) => entitlements.extend(relayed),
            // The rest of the feed is still served; the game pulls again later.
            Err(error) => tracing::warn!(%error, "Prime Gaming relay unavailable"),
        }
    }
    Ok(Json(EntitlementsPage { entitlements, next_token: None }))
}

/// `ia_subscriptions` as the player sees it: id, product, active, deactivation reason and period.
pub(crate) type SubscriptionRow = (String, String, i64, Option<String>, Option<String>);

/// Key, product, revoked/active flag, fulfilled at, revocation reported at.
pub(crate) type FeedRow = (String, String, i64, Option<i64>, Option<i64>);

/// What the game should do now, for one player.
pub async fn feed(pool: &AnyPool, user_id: &str) -> Result<Vec<Entitlement>, sqlx::Error> {
    let mut entitlements = Vec::new();
    let purchases: Vec<FeedRow> = sqlx::query_as(
        "SELECT purchase_token, product_id, revoked, fulfilled_at, revoke_reported_at FROM ia_purchases
         WHERE user_id = $1 ORDER BY created_at, purchase_token",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (token, product, revoked, fulfilled_at, revoke_reported_at) in purchases {
        let instruction = match (revoked != 0, fulfilled_at, revoke_reported_at) {
            // Revoked: REVOKE until reported, even if the fulfilment report never arrived (the game may have
            // granted it all the same).
            (true, _, None) => NextInstruction::Revoke,
            (false, None, _) => NextInstruction::Fulfill,
            _ => continue,
        };
        entitlements.push(Entitlement {
            entitlement_id: format!("ia:{token}"),
            vendor_product_id: product,
            next_instruction: instruction,
            source: Some(SOURCE_INSTANT_ACCESS.into()),
            active_until: None,
        });
    }
    let subscriptions: Vec<FeedRow> = sqlx::query_as(
        "SELECT subscription_id, product_id, active, fulfilled_at, revoke_reported_at FROM ia_subscriptions
         WHERE user_id = $1 ORDER BY activated_at, subscription_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (id, product, active, fulfilled_at, revoke_reported_at) in subscriptions {
        let instruction = match (active != 0, fulfilled_at, revoke_reported_at) {
            (false, _, None) => NextInstruction::Revoke,
            (true, None, _) => NextInstruction::Fulfill,
            _ => continue,
        };
        entitlements.push(Entitlement {
            entitlement_id: format!("sub:{id}"),
            vendor_product_id: product,
            next_instruction: instruction,
            source: Some(SOURCE_SUBSCRIPTION.into()),
            active_until: None,
        });
    }
    Ok(entitlements)
}

/// The game reports what it granted or took back (Prime Gaming's shape).
#[utoipa::path(post, path = FULFILL_PATH, tag = "feed", security(("session" = [])),
    request_body = FulfillRequest, responses((status = 200, body = FulfillResponse)))]
async fn fulfill(
    State(state): State<AppState>,
    player: AuthenticatedPlayer,
    body: Result<Json<FulfillRequest>, JsonRejection>,
) -> Result<Json<FulfillResponse>, BackendError> {
    let user_id = player.account;
    let Json(request) = body.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    if request.fulfillment_status_updates.len() > MAX_UPDATES {
        return Err(BackendError::BadRequest(format!("at most {MAX_UPDATES} updates per call")));
    }
    let now = crate::now_secs();
    let (relayed, own): (Vec<_>, Vec<_>) = request
        .fulfillment_status_updates
        .into_iter()
        .partition(|u| u.entitlement_id.starts_with(crate::prime_relay::ID_PREFIX));
    let mut results = Vec::with_capacity(relayed.len() + own.len());
    if !relayed.is_empty() {
        // Relayed first: if Prime Gaming is down the whole call fails and the game retries (recording is idempotent).
        let (Some(prime), Some(user_id)) = (&state.prime, &user_id) else {
            return Err(BackendError::BadRequest("no Prime Gaming relay for this player".into()));
        };
        let request = FulfillRequest {
            fulfillment_status_updates: relayed
                .into_iter()
                .map(|mut u| {
                    u.entitlement_id = u.entitlement_id[crate::prime_relay::ID_PREFIX.len()..].to_owned();
                    u
                })
                .collect(),
        };
        let answer = prime.fulfill(&state.pool, user_id, &request).await.map_err(|error| {
            tracing::warn!(%error, "Prime Gaming relay could not report fulfilment");
            BackendError::Unavailable
        })?;
        results.extend(answer.fulfillment_status_updates.into_iter().map(|mut r| {
            r.entitlement_id = format!("{}{}", crate::prime_relay::ID_PREFIX, r.entitlement_id);
            r
        }));
    }
    for update in own {
        let recorded = match &user_id {
            Some(user_id) => record(&state.pool, user_id, &update.entitlement_id, update.last_instruction, now).await?,
            None => false,
        };
        results.push(FulfillmentStatusUpdateResult {
            entitlement_id: update.entitlement_id,
            result: if recorded { FulfillResult::Success } else { FulfillResult::Error },
            reason: (!recorded).then(|| "UNKNOWN_ENTITLEMENT".to_owned()),
        });
    }
    Ok(Json(FulfillResponse { fulfillment_status_updates: results }))
}

/// Records a report with the module owning the entitlement's table (by its id's prefix); reporting the same
/// thing again is a success that changes nothing.
async fn record(
    pool: &AnyPool,
    user_id: &str,
    entitlement_id: &str,
    status: LastInstruction,
    now: i64,
) -> Result<bool, sqlx::Error> {
    match entitlement_id.split_once(':') {
        Some(("ia", token)) => crate::instant_access::record_purchase_report(pool, user_id, token, status, now).await,
        Some(("sub", id)) => crate::instant_access::record_subscription_report(pool, user_id, id, status, now).await,
        Some(("devpay", pid)) => crate::devpay::record_report(pool, user_id, pid, status, now).await,
        _ => Ok(false),
    }
}
