//! Prime Gaming pull integration: the Entitlements and Fulfill APIs, for tokens this sandbox issued.
//!
//! Only unfulfilled entitlements are listed ("this ensures that we don't keep returning that entitlement"),
//! oldest first, in pages continued with the sandbox-defined `nextToken`. Fulfil reports are idempotent:
//! reporting an entitlement again answers `SUCCESS` and only bumps its report counter.
//!
//! The customer's side is a claim page per offer (`/prime-gaming/claim/{sku}`): sign in, claim once.

use amazon_rewards_protocol::prime_gaming::{
    ENTITLEMENTS_PATH, Entitlement, EntitlementsPage, FULFILL_PATH, FulfillRequest, FulfillResponse, FulfillResult,
    FulfillmentStatusUpdateResult, LastInstruction, NextInstruction,
};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::authenticated_customer;
use crate::error::{SandboxError, SandboxResult};

/// Page size when the client names none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page served.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Most updates accepted in one Fulfill call.
pub const MAX_UPDATES_PER_CALL: usize = 1000;

/// Routes of this service.
pub fn router() -> OpenApiRouter<AppState> {
    // The claim page is the customer's: served, not described.
    OpenApiRouter::new()
        .routes(routes!(list_entitlements))
        .routes(routes!(fulfill))
        .route("/prime-gaming/claim/{sku}", get(claim_page).post(claim))
}

async fn offer_title(state: &AppState, sku: &str) -> SandboxResult<String> {
    sqlx::query_scalar("SELECT title FROM offers WHERE sku = ?")
        .bind(sku)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| SandboxError::NotFound(format!("offer {sku}")))
}

fn claim_body(title: &str, sku: &str, error: Option<&str>) -> String {
    format!(
        r#"<p>Included with Prime: <b id="offer">{}</b>.</p>{}"#,
        crate::pages::escape(title),
        crate::devpay::sign_in_form(&format!("/prime-gaming/claim/{sku}"), error, &[])
    )
}

/// The offer and a sign-in form.
async fn claim_page(
    State(state): State<AppState>,
    axum::extract::Path(sku): axum::extract::Path<String>,
) -> SandboxResult<axum::response::Html<String>> {
    let title = offer_title(&state, &sku).await?;
    Ok(crate::pages::page("Claim with Prime Gaming", &claim_body(&title, &sku, None)))
}

#[derive(Debug, Deserialize)]
struct ClaimForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Signs the customer in and claims the offer for them, once per customer.
async fn claim(
    State(state): State<AppState>,
    axum::extract::Path(sku): axum::extract::Path<String>,
    form: Result<axum::Form<ClaimForm>, axum::extract::rejection::FormRejection>,
) -> SandboxResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let title = offer_title(&state, &sku).await?;
    let form = form.map(|axum::Form(f)| f).unwrap_or(ClaimForm { email: String::new(), password: String::new() });
    let Some(user_id) = crate::lwa::check_password(&state.pool, &form.email, &form.password).await? else {
        let body = claim_body(&title, &sku, Some("Your email or password is incorrect."));
        return Ok((axum::http::StatusCode::UNAUTHORIZED, crate::pages::page("Claim with Prime Gaming", &body))
            .into_response());
    };
    let claimed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM entitlements WHERE user_id = ? AND sku = ?")
        .bind(&user_id)
        .bind(&sku)
        .fetch_optional(&state.pool)
        .await?;
    let message = if claimed.is_some() {
        "You already claimed this offer."
    } else {
        sqlx::query("INSERT INTO entitlements (entitlement_id, user_id, sku, claimed_at) VALUES (?, ?, ?, ?)")
            .bind(crate::auth::random_token("amzn1.pg.item.", 16))
            .bind(&user_id)
            .bind(&sku)
            .bind(crate::now_secs())
            .execute(&state.pool)
            .await?;
        "Claimed! Go back to the game: it arrives there on its own."
    };
    let body = format!(r#"<p id="claimed"><b>{}</b></p><p>{}</p>"#, crate::pages::escape(&title), message);
    Ok(crate::pages::page("Claim with Prime Gaming", &body).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
    #[serde(rename = "pageSize")]
    page_size: Option<u32>,
}

fn parse_next_token(token: Option<&str>) -> SandboxResult<i64> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => token
            .strip_prefix("after-")
            .and_then(|seq| seq.parse::<i64>().ok())
            .filter(|seq| *seq >= 0)
            .ok_or_else(|| SandboxError::BadRequest("nextToken is not one this server issued".into())),
    }
}

/// The customer's unfulfilled entitlements, a page at a time.
#[utoipa::path(get, path = ENTITLEMENTS_PATH, tag = "prime_gaming", security(("amazon_access_token" = [])),
    params(ListQuery), responses((status = 200, body = EntitlementsPage)))]
async fn list_entitlements(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> SandboxResult<Json<EntitlementsPage>> {
    let user_id = authenticated_customer(&state.pool, &headers).await?;
    let Query(query) = query.map_err(|e| SandboxError::BadRequest(e.body_text()))?;
    let after = parse_next_token(query.next_token.as_deref())?;
    let page_size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, entitlement_id, sku FROM entitlements
         WHERE user_id = ? AND fulfilled_at IS NULL AND seq > ?
         ORDER BY seq LIMIT ?",
    )
    .bind(&user_id)
    .bind(after)
    .bind(i64::from(page_size) + 1)
    .fetch_all(&state.pool)
    .await?;
    let has_more = rows.len() > page_size as usize;
    let rows = &rows[..rows.len().min(page_size as usize)];
    let next_token = has_more.then(|| format!("after-{}", rows.last().map(|r| r.0).unwrap_or(after)));
    let entitlements = rows
        .iter()
        .map(|(_, entitlement_id, sku)| Entitlement {
            entitlement_id: entitlement_id.clone(),
            vendor_product_id: sku.clone(),
            next_instruction: NextInstruction::Fulfill,
            source: None,
            active_until: None,
        })
        .collect();
    Ok(Json(EntitlementsPage { entitlements, next_token }))
}

/// The game reports what it granted.
#[utoipa::path(post, path = FULFILL_PATH, tag = "prime_gaming", security(("amazon_access_token" = [])),
    request_body = FulfillRequest, responses((status = 200, body = FulfillResponse)))]
async fn fulfill(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<FulfillRequest>, JsonRejection>,
) -> SandboxResult<Json<FulfillResponse>> {
    let user_id = authenticated_customer(&state.pool, &headers).await?;
    let Json(request) = body?;
    if request.fulfillment_status_updates.len() > MAX_UPDATES_PER_CALL {
        return Err(SandboxError::BadRequest(format!("at most {MAX_UPDATES_PER_CALL} updates per call")));
    }
    let now = crate::now_secs();
    let mut tx = state.pool.begin().await?;
    let mut results = Vec::with_capacity(request.fulfillment_status_updates.len());
    for update in &request.fulfillment_status_updates {
        let error = |reason: &str| FulfillmentStatusUpdateResult {
            entitlement_id: update.entitlement_id.clone(),
            result: FulfillResult::Error,
            reason: Some(reason.to_owned()),
        };
        if update.last_instruction != LastInstruction::Fulfill {
            results.push(error("Prime Gaming entitlements can only be reported with LastInstruction FULFILL"));
            continue;
        }
        let updated = sqlx::query(
            "UPDATE entitlements SET report_count = report_count + 1, fulfilled_at = COALESCE(fulfilled_at, ?)
             WHERE entitlement_id = ? AND user_id = ?",
        )
        .bind(now)
        .bind(&update.entitlement_id)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 1 {
            results.push(FulfillmentStatusUpdateResult {
                entitlement_id: update.entitlement_id.clone(),
                result: FulfillResult::Success,
                reason: None,
            });
        } else {
            results.push(error("UNKNOWN_ENTITLEMENT"));
        }
    }
    tx.commit().await?;
    Ok(Json(FulfillResponse { fulfillment_status_updates: results }))
}
