//! Moments, emulated: campaigns with their lifecycle (admin API and an HTML console), the Rewards API
//! (getRewardInfo, getReward) behind `x-api-key` with the 5 calls/s per-key limit, test-mode (one shared
//! URL, nothing charged) and live-mode rewards (one per customer, charged against the budget and the
//! inventory), the reward page where the customer claims it (a code for a digital item, a shipping form
//! for a physical one), and a redemption report per campaign. Paths and fields are sandbox-defined; see
//! `amazon_rewards_protocol::moments`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amazon_rewards_protocol::moments::admin::{
    ApiKey, Campaign, NewCampaign, RedemptionReport, ReportedReward, Transition,
};
use amazon_rewards_protocol::moments::{
    API_KEY_HEADER, CALLS_PER_SECOND, CampaignState, GET_REWARD_INFO_PATH, GET_REWARD_PATH, Notification, RewardGrant,
    RewardInfo, RewardKind, RewardRequest, RewardStatus, error_code,
};
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::{Row, SqlitePool};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{hash_secret, random_token};
use crate::error::{SandboxError, SandboxResult};
use crate::pages::{escape, page};

/// Public routes: the Rewards API, reward pages and the campaign console.
pub fn router() -> OpenApiRouter<AppState> {
    // The reward pages and the campaign console are people's: served, not described.
    OpenApiRouter::new()
        .routes(routes!(get_reward_info))
        .routes(routes!(get_reward))
        .routes(routes!(reward_status))
        .route("/moments/r/{token}", get(reward_page).post(claim_reward))
        .route("/moments/console", get(console))
        .route("/moments/console/{id}/state", post(console_transition))
        .route("/moments/console/{id}/report", get(console_report))
}

/// Admin routes, nested under `/admin`.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/moments/api-keys", post(new_api_key))
        .route("/moments/campaigns", post(new_campaign))
        .route("/moments/campaigns/{id}", get(admin_campaign))
        .route("/moments/campaigns/{id}/state", post(admin_transition))
        .route("/moments/campaigns/{id}/report", get(admin_report))
}

/// Sliding one-second window of calls per API key.
#[derive(Debug, Default)]
pub struct RateLimiter {
    calls: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Records a call for `key`; `Err(wait)` when it is over the limit (the call is not counted).
    fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut calls = self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = calls.entry(key.to_owned()).or_default();
        while window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            window.pop_front();
        }
        if window.len() >= CALLS_PER_SECOND as usize {
            let oldest = *window.front().expect("window is full");
            return Err(Duration::from_secs(1).saturating_sub(now.duration_since(oldest)));
        }
        window.push_back(now);
        Ok(())
    }
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// A campaign row.
struct CampaignRow {
    id: String,
    key_hash: String,
    name: String,
    state: CampaignState,
    kind: RewardKind,
    notification: Notification,
    cost_cents: i64,
    budget_cents: i64,
    spent_cents: i64,
    inventory: i64,
    test_token: String,
}

impl CampaignRow {
    fn available(&self) -> bool {
        match self.state {
            CampaignState::ApprovedTest => true,
            CampaignState::Live => self.inventory > 0 && self.spent_cents + self.cost_cents <= self.budget_cents,
            _ => false,
        }
    }

    fn summary(&self) -> Campaign {
        Campaign {
            campaign_id: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            cost_per_moment_cents: self.cost_cents,
            budget_cents: self.budget_cents,
            spent_cents: self.spent_cents,
            inventory_remaining: self.inventory,
        }
    }
}

fn campaign_from_row(row: &sqlx::sqlite::SqliteRow) -> CampaignRow {
    let state: String = row.get("state");
    let kind: String = row.get("kind");
    CampaignRow {
        id: row.get("campaign_id"),
        key_hash: row.get("key_hash"),
        name: row.get("name"),
        state: CampaignState::parse(&state).unwrap_or(CampaignState::Suspended),
        kind: if kind == "physical" { RewardKind::Physical } else { RewardKind::Digital },
        notification: Notification {
            title: row.get("title"),
            description: row.get("description"),
            image_url: row.get("image_url"),
        },
        cost_cents: row.get("cost_cents"),
        budget_cents: row.get("budget_cents"),
        spent_cents: row.get("spent_cents"),
        inventory: row.get("inventory"),
        test_token: row.get("test_token"),
    }
}

async fn campaign(pool: &SqlitePool, id: &str) -> Result<Option<CampaignRow>, sqlx::Error> {
    let row =
        sqlx::query("SELECT * FROM moments_campaigns WHERE campaign_id = ?").bind(id).fetch_optional(pool).await?;
    Ok(row.as_ref().map(campaign_from_row))
}

async fn all_campaigns(pool: &SqlitePool) -> Result<Vec<CampaignRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM moments_campaigns ORDER BY created_at, campaign_id").fetch_all(pool).await?;
    Ok(rows.iter().map(campaign_from_row).collect())
}

async fn new_api_key(State(state): State<AppState>) -> SandboxResult<(StatusCode, Json<ApiKey>)> {
    let api_key = random_token("amzn-moments-", 24);
    sqlx::query("INSERT INTO moments_api_keys (key_hash, created_at) VALUES (?, ?)")
        .bind(hash_secret(&api_key))
        .bind(crate::now_secs())
        .execute(&state.pool)
        .await?;
    Ok((StatusCode::CREATED, Json(ApiKey { api_key })))
}

async fn new_campaign(
    State(state): State<AppState>,
    body: Result<Json<NewCampaign>, JsonRejection>,
) -> SandboxResult<(StatusCode, Json<Campaign>)> {
    let Json(new) = body?;
    if new.name.trim().is_empty() || new.title.trim().is_empty() {
        return Err(SandboxError::BadRequest("a campaign needs a name and a notification title".into()));
    }
    if new.cost_per_moment_cents < 0 || new.budget_cents < 0 || new.inventory < 0 {
        return Err(SandboxError::BadRequest("cost, budget and inventory are ≥ 0".into()));
    }
    let key_hash = hash_secret(&new.api_key);
    let known: Option<String> = sqlx::query_scalar("SELECT key_hash FROM moments_api_keys WHERE key_hash = ?")
        .bind(&key_hash)
        .fetch_optional(&state.pool)
        .await?;
    if known.is_none() {
        return Err(SandboxError::BadRequest("unknown api_key".into()));
    }
    let id = random_token("cmp-", 8);
    sqlx::query(
        "INSERT INTO moments_campaigns (campaign_id, key_hash, name, state, kind, title, description, image_url,
             cost_cents, budget_cents, spent_cents, inventory, test_token, created_at)
         VALUES (?, ?, ?, 'Draft', ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&key_hash)
    .bind(&new.name)
    .bind(match new.kind {
        RewardKind::Digital => "digital",
        RewardKind::Physical => "physical",
    })
    .bind(&new.title)
    .bind(&new.description)
    .bind(&new.image_url)
    .bind(new.cost_per_moment_cents)
    .bind(new.budget_cents)
    .bind(new.inventory)
    .bind(random_token("test-", 12))
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await?;
    let created = campaign(&state.pool, &id).await?.ok_or_else(|| SandboxError::NotFound(id.clone()))?;
    Ok((StatusCode::CREATED, Json(created.summary())))
}

async fn admin_campaign(State(state): State<AppState>, Path(id): Path<String>) -> SandboxResult<Json<Campaign>> {
    let found = campaign(&state.pool, &id).await?.ok_or_else(|| SandboxError::NotFound(format!("campaign {id}")))?;
    Ok(Json(found.summary()))
}

/// Moves a campaign along its lifecycle; refuses moves the lifecycle does not allow.
async fn transition(pool: &SqlitePool, id: &str, next: CampaignState) -> SandboxResult<Campaign> {
    let found = campaign(pool, id).await?.ok_or_else(|| SandboxError::NotFound(format!("campaign {id}")))?;
    if !found.state.can_become(next) {
        return Err(SandboxError::Conflict(format!(
            "a {} campaign cannot become {}",
            found.state.as_str(),
            next.as_str()
        )));
    }
    let moved = sqlx::query("UPDATE moments_campaigns SET state = ? WHERE campaign_id = ? AND state = ?")
        .bind(next.as_str())
        .bind(id)
        .bind(found.state.as_str())
        .execute(pool)
        .await?;
    if moved.rows_affected() == 0 {
        return Err(SandboxError::Conflict("the campaign changed meanwhile; try again".into()));
    }
    Ok(Campaign { state: next, ..found.summary() })
}

async fn admin_transition(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<Transition>, JsonRejection>,
) -> SandboxResult<Json<Campaign>> {
    let Json(Transition { state: next }) = body?;
    Ok(Json(transition(&state.pool, &id, next).await?))
}

async fn report(pool: &SqlitePool, id: &str) -> SandboxResult<RedemptionReport> {
    let found = campaign(pool, id).await?.ok_or_else(|| SandboxError::NotFound(format!("campaign {id}")))?;
    let rows = sqlx::query(
        "SELECT reward_id, customer_id, issued_at, redeemed_at FROM moments_rewards WHERE campaign_id = ? ORDER BY issued_at, reward_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let rewards: Vec<ReportedReward> = rows
        .iter()
        .map(|row| ReportedReward {
            reward_id: row.get("reward_id"),
            customer_id: row.get("customer_id"),
            issued_at: row.get("issued_at"),
            redeemed_at: row.get("redeemed_at"),
        })
        .collect();
    Ok(RedemptionReport {
        campaign: found.summary(),
        issued: rewards.len() as i64,
        redeemed: rewards.iter().filter(|r| r.redeemed_at.is_some()).count() as i64,
        rewards,
    })
}

async fn admin_report(State(state): State<AppState>, Path(id): Path<String>) -> SandboxResult<Json<RedemptionReport>> {
    Ok(Json(report(&state.pool, &id).await?))
}

/// The key's campaign, or the Rewards API error to answer. Counts the call against the key's rate limit.
async fn authorize(state: &AppState, headers: &HeaderMap, campaign_id: &str) -> Result<CampaignRow, Response> {
    let Some(key) = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).filter(|k| !k.is_empty()) else {
        return Err(api_error(StatusCode::FORBIDDEN, error_code::INVALID_API_KEY, "x-api-key is missing"));
    };
    let key_hash = hash_secret(key);
    let known: Option<String> = sqlx::query_scalar("SELECT key_hash FROM moments_api_keys WHERE key_hash = ?")
        .bind(&key_hash)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| SandboxError::Database(e).into_response())?;
    if known.is_none() {
        return Err(api_error(StatusCode::FORBIDDEN, error_code::INVALID_API_KEY, "the API key is not valid"));
    }
    if let Err(wait) = state.moments_limiter.admit(&key_hash, Instant::now()) {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response =
            api_error(StatusCode::TOO_MANY_REQUESTS, error_code::RATE_LIMITED, "more than 5 calls per second");
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        return Err(response);
    }
    match campaign(&state.pool, campaign_id).await {
        Ok(Some(found)) if found.key_hash == key_hash => Ok(found),
        Ok(_) => Err(api_error(StatusCode::NOT_FOUND, error_code::CAMPAIGN_NOT_FOUND, "no such campaign for this key")),
        Err(error) => Err(SandboxError::Database(error).into_response()),
    }
}

#[allow(clippy::result_large_err, reason = "the error is the answer itself, made once per refused request")]
fn read_request(body: Result<Json<RewardRequest>, JsonRejection>) -> Result<RewardRequest, Response> {
    match body {
        Ok(Json(request)) if !request.customer_id.is_empty() && request.customer_id.len() <= 256 => Ok(request),
        Ok(_) => Err(api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "customerId must be 1–256 characters")),
        Err(rejection) => Err(api_error(rejection.status(), "InvalidRequest", &rejection.body_text())),
    }
}

/// What a moment would reward (no reward is handed out).
#[utoipa::path(post, path = GET_REWARD_INFO_PATH, tag = "moments", security(("moments_api_key" = [])),
    request_body = RewardRequest, responses((status = 200, body = amazon_rewards_protocol::moments::RewardInfo),
        (status = "4XX", body = crate::openapi::MomentsError)))]
async fn get_reward_info(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RewardRequest>, JsonRejection>,
) -> Response {
    let request = match read_request(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    match authorize(&state, &headers, &request.campaign_id).await {
        Ok(found) => Json(RewardInfo {
            campaign_id: found.id.clone(),
            state: found.state,
            available: found.available(),
            notification: found.notification,
        })
        .into_response(),
        Err(response) => response,
    }
}

/// Hands out a reward for a moment.
#[utoipa::path(post, path = GET_REWARD_PATH, tag = "moments", security(("moments_api_key" = [])),
    request_body = RewardRequest, responses((status = 200, body = amazon_rewards_protocol::moments::RewardGrant),
        (status = "4XX", body = crate::openapi::MomentsError)))]
async fn get_reward(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RewardRequest>, JsonRejection>,
) -> Response {
    let request = match read_request(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let found = match authorize(&state, &headers, &request.campaign_id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match hand_out(&state, &found, &request.customer_id).await {
        Ok(Ok(grant)) => Json(grant).into_response(),
        Ok(Err(code)) => api_error(
            StatusCode::CONFLICT,
            code,
            &format!("no reward: campaign {} ({})", found.id, found.state.as_str()),
        ),
        Err(error) => SandboxError::Database(error).into_response(),
    }
}

/// Hands `customer_id` the campaign's reward: in test mode the shared test reward, charging nothing; live,
/// the customer's one reward (the same again on a repeated call), charged once against budget and inventory.
async fn hand_out(
    state: &AppState,
    found: &CampaignRow,
    customer_id: &str,
) -> Result<Result<RewardGrant, &'static str>, sqlx::Error> {
    let url = |token: &str| format!("{}/moments/r/{token}", state.base_url);
    match found.state {
        CampaignState::ApprovedTest => {
            return Ok(Ok(RewardGrant {
                reward_id: format!("test-{}", found.id),
                reward_url: url(&found.test_token),
                test: true,
                notification: found.notification.clone(),
            }));
        }
        CampaignState::Live => {}
        _ => return Ok(Err(error_code::CAMPAIGN_NOT_ACTIVE)),
    }
    let existing = |pool: SqlitePool| async move {
        sqlx::query_as::<_, (String, String)>(
            "SELECT reward_id, url_token FROM moments_rewards WHERE campaign_id = ? AND customer_id = ?",
        )
        .bind(&found.id)
        .bind(customer_id)
        .fetch_optional(&pool)
        .await
    };
    let grant = |(reward_id, token): (String, String)| RewardGrant {
        reward_id,
        reward_url: url(&token),
        test: false,
        notification: found.notification.clone(),
    };
    if let Some(row) = existing(state.pool.clone()).await? {
        return Ok(Ok(grant(row)));
    }
    match charge_and_issue(state, found, customer_id).await? {
        Issued::New(row) => Ok(Ok(grant(row))),
        // A concurrent call for the same customer won: no second charge, the same reward.
        Issued::Raced => Ok(existing(state.pool.clone()).await?.map(grant).ok_or(error_code::CAMPAIGN_NOT_ACTIVE)),
        Issued::Refused(code) => Ok(Err(code)),
    }
}

/// What charging the campaign for one reward came to.
enum Issued {
    /// The reward's id and URL token.
    New((String, String)),
    /// Another call issued this customer's reward meanwhile.
    Raced,
    /// Nothing issued: why.
    Refused(&'static str),
}

/// Charges the campaign's budget and inventory for one reward and records it, in one transaction.
async fn charge_and_issue(state: &AppState, found: &CampaignRow, customer_id: &str) -> Result<Issued, sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    // The conditional update takes the write lock first, so two customers cannot both take the last reward.
    let charged = sqlx::query(
        "UPDATE moments_campaigns SET spent_cents = spent_cents + cost_cents, inventory = inventory - 1
         WHERE campaign_id = ? AND state = 'Live' AND inventory > 0 AND spent_cents + cost_cents <= budget_cents",
    )
    .bind(&found.id)
    .execute(&mut *tx)
    .await?;
    if charged.rows_affected() == 0 {
        drop(tx);
        return Ok(Issued::Refused(match campaign(&state.pool, &found.id).await? {
            Some(c) if c.state != CampaignState::Live => error_code::CAMPAIGN_NOT_ACTIVE,
            Some(c) if c.inventory <= 0 => error_code::OUT_OF_REWARDS,
            _ => error_code::BUDGET_EXHAUSTED,
        }));
    }
    let reward_id = random_token("rwd-", 10);
    let token = random_token("", 18);
    let inserted = sqlx::query(
        "INSERT INTO moments_rewards (reward_id, campaign_id, customer_id, url_token, issued_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(campaign_id, customer_id) DO NOTHING",
    )
    .bind(&reward_id)
    .bind(&found.id)
    .bind(customer_id)
    .bind(&token)
    .bind(crate::now_secs())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Issued::Raced);
    }
    tx.commit().await?;
    Ok(Issued::New((reward_id, token)))
}

/// Whether a reward was redeemed.
#[utoipa::path(get, path = "/moments/v1/rewards/{reward_id}", tag = "moments", security(("moments_api_key" = [])),
    params(("reward_id" = String, Path)), responses((status = 200, body = amazon_rewards_protocol::moments::RewardStatus),
        (status = "4XX", body = crate::openapi::MomentsError)))]
async fn reward_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    reward_id: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(reward_id)) = reward_id else {
        return api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "unreadable reward id");
    };
    let campaign_id: Option<String> =
        match sqlx::query_scalar("SELECT campaign_id FROM moments_rewards WHERE reward_id = ?")
            .bind(&reward_id)
            .fetch_optional(&state.pool)
            .await
        {
            Ok(found) => found,
            Err(error) => return SandboxError::Database(error).into_response(),
        };
    let Some(campaign_id) = campaign_id else {
        return api_error(StatusCode::NOT_FOUND, "RewardNotFound", "no such reward");
    };
    if let Err(response) = authorize(&state, &headers, &campaign_id).await {
        return response;
    }
    match sqlx::query_scalar::<_, Option<i64>>("SELECT redeemed_at FROM moments_rewards WHERE reward_id = ?")
        .bind(&reward_id)
        .fetch_one(&state.pool)
        .await
    {
        Ok(redeemed_at) => {
            Json(RewardStatus { reward_id, redeemed: redeemed_at.is_some(), redeemed_at }).into_response()
        }
        Err(error) => SandboxError::Database(error).into_response(),
    }
}

/// What a reward URL points at.
struct RewardPage {
    campaign: CampaignRow,
    /// `None` for the shared test reward.
    reward_id: Option<String>,
    redemption: Option<serde_json::Value>,
}

async fn reward_for_token(pool: &SqlitePool, token: &str) -> SandboxResult<RewardPage> {
    let row = sqlx::query("SELECT reward_id, campaign_id, redemption FROM moments_rewards WHERE url_token = ?")
        .bind(token)
        .fetch_optional(pool)
        .await?;
    if let Some(row) = row {
        let campaign_id: String = row.get("campaign_id");
        let redemption: Option<String> = row.get("redemption");
        let campaign = campaign(pool, &campaign_id).await?.ok_or_else(|| SandboxError::NotFound("reward".into()))?;
        return Ok(RewardPage {
            campaign,
            reward_id: Some(row.get("reward_id")),
            redemption: redemption.and_then(|r| serde_json::from_str(&r).ok()),
        });
    }
    let campaign_id: Option<String> =
        sqlx::query_scalar("SELECT campaign_id FROM moments_campaigns WHERE test_token = ?")
            .bind(token)
            .fetch_optional(pool)
            .await?;
    let campaign_id = campaign_id.ok_or_else(|| SandboxError::NotFound("reward".into()))?;
    let campaign = campaign(pool, &campaign_id).await?.ok_or_else(|| SandboxError::NotFound("reward".into()))?;
    Ok(RewardPage { campaign, reward_id: None, redemption: None })
}

fn reward_header(found: &RewardPage) -> String {
    let n = &found.campaign.notification;
    let test = if found.reward_id.is_none() {
        r#"<p class="note" id="test-mode">Test reward: the campaign is in test mode, nothing is shipped or charged.</p>"#
    } else {
        ""
    };
    format!(
        r#"<img src="{}" alt="" style="max-width:100%;max-height:160px"><h2 id="reward-title">{}</h2><p>{}</p>{test}"#,
        escape(&n.image_url),
        escape(&n.title),
        escape(&n.description)
    )
}

fn redeemed_body(found: &RewardPage, redemption: &serde_json::Value) -> String {
    let what = match redemption.get("code").and_then(|c| c.as_str()) {
        Some(code) => {
            format!(r#"<p>Your code:</p><p><code id="reward-code" style="font-size:1.4em">{}</code></p>"#, escape(code))
        }
        None => format!(
            r#"<p id="shipping">It ships to {}, {}, {} {}, {}.</p>"#,
            escape(redemption["name"].as_str().unwrap_or_default()),
            escape(redemption["address"].as_str().unwrap_or_default()),
            escape(redemption["postalCode"].as_str().unwrap_or_default()),
            escape(redemption["city"].as_str().unwrap_or_default()),
            escape(redemption["country"].as_str().unwrap_or_default()),
        ),
    };
    format!(r#"{}<p id="redeemed"><strong>Claimed.</strong></p>{what}"#, reward_header(found))
}

fn claim_form(found: &RewardPage, error: Option<&str>) -> String {
    let error = error.map(|e| format!(r#"<p class="error" id="error">{}</p>"#, escape(e))).unwrap_or_default();
    let fields = match found.campaign.kind {
        RewardKind::Digital => String::new(),
        RewardKind::Physical => [
            ("name", "Full name"),
            ("address", "Address"),
            ("city", "City"),
            ("postal_code", "Postal code"),
            ("country", "Country"),
        ]
        .iter()
        .map(|(name, label)| {
            format!(r#"<label for="{name}">{label}</label><input type="text" id="{name}" name="{name}" required>"#)
        })
        .collect(),
    };
    format!(
        r#"{}{error}<form method="post">{fields}<button type="submit" id="claim">Claim reward</button></form>"#,
        reward_header(found)
    )
}

async fn reward_page(State(state): State<AppState>, Path(token): Path<String>) -> SandboxResult<Html<String>> {
    let found = reward_for_token(&state.pool, &token).await?;
    let body = match &found.redemption {
        Some(redemption) => redeemed_body(&found, redemption),
        None => claim_form(&found, None),
    };
    Ok(page("Your reward", &body))
}

#[derive(Debug, Deserialize, Default)]
struct ShippingForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
}

async fn claim_reward(
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Result<Form<ShippingForm>, FormRejection>,
) -> SandboxResult<Response> {
    let found = reward_for_token(&state.pool, &token).await?;
    if let Some(redemption) = &found.redemption {
        // Claimed before (a reload or a second click): show it again, record nothing new.
        return Ok(page("Your reward", &redeemed_body(&found, redemption)).into_response());
    }
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let redemption = match found.campaign.kind {
        RewardKind::Digital => json!({"code": random_token("", 6).to_uppercase()}),
        RewardKind::Physical => {
            let fields = [&form.name, &form.address, &form.city, &form.postal_code, &form.country];
            if fields.iter().any(|f| f.trim().is_empty() || f.len() > 200) {
                let body = claim_form(&found, Some("Every shipping field is needed (up to 200 characters)."));
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page("Your reward", &body)).into_response());
            }
            json!({"name": form.name.trim(), "address": form.address.trim(), "city": form.city.trim(),
                   "postalCode": form.postal_code.trim(), "country": form.country.trim()})
        }
    };
    let Some(reward_id) = &found.reward_id else {
        let shown = RewardPage { redemption: Some(redemption.clone()), ..found };
        return Ok(page("Your reward", &redeemed_body(&shown, &redemption)).into_response());
    };
    sqlx::query(
        "UPDATE moments_rewards SET redeemed_at = ?, redemption = ? WHERE reward_id = ? AND redeemed_at IS NULL",
    )
    .bind(crate::now_secs())
    .bind(redemption.to_string())
    .bind(reward_id)
    .execute(&state.pool)
    .await?;
    // Whatever landed first is what the customer sees (two tabs claiming at once get the same answer).
    let found = reward_for_token(&state.pool, &token).await?;
    let redemption = found.redemption.clone().unwrap_or(redemption);
    Ok(page("Your reward", &redeemed_body(&found, &redemption)).into_response())
}

async fn console(State(state): State<AppState>) -> SandboxResult<Html<String>> {
    let campaigns = all_campaigns(&state.pool).await?;
    let mut rows = String::new();
    for c in &campaigns {
        let buttons: String = CampaignState::ALL
            .iter()
            .filter(|next| c.state.can_become(**next))
            .map(|next| {
                format!(
                    r#"<form method="post" action="/moments/console/{id}/state" style="display:inline"><input type="hidden" name="state" value="{s}"><button class="secondary" data-state="{s}">{s}</button></form> "#,
                    id = escape(&c.id),
                    s = next.as_str()
                )
            })
            .collect();
        rows.push_str(&format!(
            r#"<tr id="{id}"><td>{name}</td><td class="state">{state}</td><td>{spent} / {budget}</td><td>{inv}</td><td>{buttons}<a href="/moments/console/{id}/report">report</a></td></tr>"#,
            id = escape(&c.id),
            name = escape(&c.name),
            state = c.state.as_str(),
            spent = money(c.spent_cents),
            budget = money(c.budget_cents),
            inv = c.inventory,
        ));
    }
    Ok(page(
        "Moments campaigns",
        &format!(
            r#"<table><tr><th>Campaign</th><th>State</th><th>Spent / budget</th><th>Rewards left</th><th>Move to</th></tr>{rows}</table>"#
        ),
    ))
}

#[derive(Debug, Deserialize)]
struct StateForm {
    state: String,
}

async fn console_transition(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: Result<Form<StateForm>, FormRejection>,
) -> SandboxResult<Redirect> {
    let Form(form) = form.map_err(|e| SandboxError::BadRequest(e.body_text()))?;
    let next = CampaignState::parse(&form.state)
        .ok_or_else(|| SandboxError::BadRequest(format!("unknown state {}", form.state)))?;
    transition(&state.pool, &id, next).await?;
    Ok(Redirect::to("/moments/console"))
}

async fn console_report(State(state): State<AppState>, Path(id): Path<String>) -> SandboxResult<Html<String>> {
    let report = report(&state.pool, &id).await?;
    let rows: String = report
        .rewards
        .iter()
        .map(|r| {
            format!(
                r#"<tr><td>{}</td><td>{}</td><td class="status">{}</td></tr>"#,
                escape(&r.reward_id),
                escape(&r.customer_id),
                if r.redeemed_at.is_some() { "redeemed" } else { "not yet" }
            )
        })
        .collect();
    Ok(page(
        &format!("Redemption report: {}", report.campaign.name),
        &format!(
            r#"<p>State: {}. Issued <span id="issued">{}</span>, redeemed <span id="redeemed">{}</span>, spent {} of {}.</p><table><tr><th>Reward</th><th>Customer</th><th>Status</th></tr>{rows}</table>"#,
            report.campaign.state.as_str(),
            report.issued,
            report.redeemed,
            money(report.campaign.spent_cents),
            money(report.campaign.budget_cents)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_five_per_second_per_key() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        for _ in 0..5 {
            assert!(limiter.admit("a", start).is_ok());
        }
        let wait = limiter.admit("a", start + Duration::from_millis(300)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(700));
        assert!(limiter.admit("b", start).is_ok(), "keys are limited separately");
        assert!(limiter.admit("a", start + Duration::from_secs(1)).is_ok(), "the window slides");
    }
}
