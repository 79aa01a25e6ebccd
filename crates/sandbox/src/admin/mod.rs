//! The admin JSON API (sandbox-defined; see `amazon_rewards_protocol::sandbox_admin`): seed offers,
//! test customers and claimed entitlements, mint access tokens, inspect fulfilment, inject faults.
//!
//! It exists only in the sandbox, which binds to loopback; real Amazon has no such thing.

use amazon_rewards_protocol::prime_gaming::is_valid_sku;
use amazon_rewards_protocol::sandbox_admin::{
    CreateCustomer, CreateOffer, Customer, EntitlementStatus, GrantEntitlement, GrantedEntitlements, InjectFault,
    MintToken, MintedToken, Offer,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::AppState;
use crate::auth::{hash_secret, issue_access_token, random_token};
use crate::error::{SandboxError, SandboxResult};

mod client;
pub use client::{AdminError, BlockingClient, Client};

/// Most entitlements one grant call may create.
const MAX_GRANT_COUNT: u32 = 100_000;

/// Routes of the admin API, to be nested under `/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/offers", post(create_offer).get(list_offers))
        .route("/customers", post(create_customer).get(list_customers))
        .route("/customers/{user_id}/entitlements", post(grant_entitlements).get(entitlement_status))
        .route("/customers/{user_id}/tokens", post(mint_token))
        .route("/faults", post(inject_fault).delete(clear_faults))
}

async fn create_offer(
    State(state): State<AppState>,
    body: Result<Json<CreateOffer>, JsonRejection>,
) -> SandboxResult<(StatusCode, Json<Offer>)> {
    let Json(offer) = body?;
    if !is_valid_sku(&offer.sku) {
        return Err(SandboxError::BadRequest(format!(
            "SKU {:?} must be 1-128 characters of A-Z a-z 0-9 - _ : .",
            offer.sku
        )));
    }
    sqlx::query(
        "INSERT INTO offers (sku, title, created_at) VALUES (?, ?, ?)
         ON CONFLICT(sku) DO UPDATE SET title = excluded.title",
    )
    .bind(&offer.sku)
    .bind(&offer.title)
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(Offer { sku: offer.sku, title: offer.title })))
}

async fn list_offers(State(state): State<AppState>) -> SandboxResult<Json<Vec<Offer>>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT sku, title FROM offers ORDER BY sku").fetch_all(&state.pool).await?;
    Ok(Json(rows.into_iter().map(|(sku, title)| Offer { sku, title }).collect()))
}

async fn create_customer(
    State(state): State<AppState>,
    body: Result<Json<CreateCustomer>, JsonRejection>,
) -> SandboxResult<(StatusCode, Json<Customer>)> {
    let Json(customer) = body?;
    if !customer.email.contains('@') || customer.password.is_empty() {
        return Err(SandboxError::BadRequest("a customer needs an email and a password".into()));
    }
    let user_id = random_token("amzn1.account.", 13).to_uppercase().replace("AMZN1.ACCOUNT.", "amzn1.account.");
    let salt = random_token("", 8);
    let password_hash = format!("{salt}${}", hash_secret(&format!("{salt}{}", customer.password)));
    let inserted = sqlx::query(
        "INSERT INTO customers (user_id, email, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(email) DO NOTHING",
    )
    .bind(&user_id)
    .bind(&customer.email)
    .bind(&customer.name)
    .bind(password_hash)
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(SandboxError::Conflict(format!("a customer with email {} exists", customer.email)));
    }
    Ok((StatusCode::CREATED, Json(Customer { user_id, email: customer.email, name: customer.name })))
}

async fn list_customers(State(state): State<AppState>) -> SandboxResult<Json<Vec<Customer>>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT user_id, email, name FROM customers ORDER BY created_at, email")
            .fetch_all(&state.pool)
            .await?;
    Ok(Json(rows.into_iter().map(|(user_id, email, name)| Customer { user_id, email, name }).collect()))
}

async fn require_customer(state: &AppState, user_id: &str) -> SandboxResult<()> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM customers WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(&state.pool)
        .await?;
    exists.map(|_| ()).ok_or_else(|| SandboxError::NotFound(format!("customer {user_id}")))
}

async fn grant_entitlements(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: Result<Json<GrantEntitlement>, JsonRejection>,
) -> SandboxResult<(StatusCode, Json<GrantedEntitlements>)> {
    let Json(grant) = body?;
    if grant.count == 0 || grant.count > MAX_GRANT_COUNT {
        return Err(SandboxError::BadRequest(format!("count must be 1..={MAX_GRANT_COUNT}")));
    }
    require_customer(&state, &user_id).await?;
    let offer: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM offers WHERE sku = ?").bind(&grant.sku).fetch_optional(&state.pool).await?;
    if offer.is_none() {
        return Err(SandboxError::NotFound(format!("offer {}", grant.sku)));
    }
    let now = crate::now_secs();
    let mut tx = state.pool.begin().await?;
    let mut entitlement_ids = Vec::with_capacity(grant.count as usize);
    for _ in 0..grant.count {
        let entitlement_id = random_token("amzn1.pg.item.", 16);
        sqlx::query("INSERT INTO entitlements (entitlement_id, user_id, sku, claimed_at) VALUES (?, ?, ?, ?)")
            .bind(&entitlement_id)
            .bind(&user_id)
            .bind(&grant.sku)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        entitlement_ids.push(entitlement_id);
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(GrantedEntitlements { entitlement_ids })))
}

async fn entitlement_status(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> SandboxResult<Json<Vec<EntitlementStatus>>> {
    require_customer(&state, &user_id).await?;
    let rows: Vec<(String, String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT entitlement_id, sku, fulfilled_at, report_count FROM entitlements WHERE user_id = ? ORDER BY seq",
    )
    .bind(&user_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(entitlement_id, sku, fulfilled_at, report_count)| EntitlementStatus {
                entitlement_id,
                sku,
                fulfilled: fulfilled_at.is_some(),
                report_count: u32::try_from(report_count).unwrap_or(u32::MAX),
            })
            .collect(),
    ))
}

async fn mint_token(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: Result<Json<MintToken>, JsonRejection>,
) -> SandboxResult<(StatusCode, Json<MintedToken>)> {
    let Json(mint) = body?;
    require_customer(&state, &user_id).await?;
    let access_token = issue_access_token(&state.pool, &user_id, mint.expires_in).await?;
    Ok((
        StatusCode::CREATED,
        Json(MintedToken { access_token, token_type: "bearer".into(), expires_in: mint.expires_in }),
    ))
}

async fn inject_fault(
    State(state): State<AppState>,
    body: Result<Json<InjectFault>, JsonRejection>,
) -> SandboxResult<StatusCode> {
    let Json(fault) = body?;
    state.faults.inject(fault).map_err(SandboxError::BadRequest)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}
