//! Moments on the studio's side: the game reports a reached moment; the backend — which alone holds the
//! Moments API key — checks it (a moment it knows, one reward per player per moment, per-player and global
//! rate limits, the campaign's budget at its cost per moment), calls getRewardInfo and getReward, records the
//! reward and its redemption status, and answers the game with the reward URL to claim.
//!
//! Exactly once: a `pending` row keyed by (Amazon user, moment) is written before Amazon is called; a repeated
//! report, or a retry after a crash, finds the row and answers the same reward (getReward itself hands a
//! customer the same reward again, uncharged).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amazon_rewards_protocol::moments::{
    API_KEY_HEADER, CHALLENGES_PATH, Challenge, GET_REWARD_INFO_PATH, GET_REWARD_PATH, MOMENT_PATH, MomentAnswer,
    MomentRequest, REWARD_STATUS_PATH, Reward, RewardGrant, RewardInfo, RewardRequest, RewardStatus, error_code,
};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::{AnyPool, Row};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::devpay::refuse;
use crate::player::{AuthenticatedPlayer, PlayerAuth};

/// `GET` path of the player's rewards with their redemption status.
pub const REWARDS_PATH: &str = "/api/moments/rewards";

/// A moment the studio rewards, and the campaign behind it.
#[derive(Debug, Clone)]
pub struct MomentCampaign {
    /// The campaign at Amazon.
    pub campaign_id: String,
    /// What one reward costs, in cents (as agreed for the campaign).
    pub cost_per_moment_cents: i64,
    /// The studio's spend limit for it, in cents.
    pub budget_cents: i64,
}

/// The Rewards API and the moments the backend rewards.
#[derive(Clone)]
pub struct MomentsConfig {
    /// Base URL of the Rewards API (Amazon's, or the sandbox's).
    pub rewards_url: String,
    /// The Moments API key (secret; never shipped in a game).
    pub api_key: String,
    /// Campaigns by moment.
    pub moments: HashMap<String, MomentCampaign>,
    /// Moments one player may report per minute.
    pub per_player_per_minute: usize,
    /// Moments all players together may report per second.
    pub global_per_second: usize,
}

impl MomentsConfig {
    /// A configuration with the default rate limits (10 per player per minute, 50 per second overall).
    pub fn new(rewards_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            rewards_url: rewards_url.into(),
            api_key: api_key.into(),
            moments: HashMap::new(),
            per_player_per_minute: 10,
            global_per_second: 50,
        }
    }
}

impl std::fmt::Debug for MomentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentsConfig")
            .field("rewards_url", &self.rewards_url)
            .field("moments", &self.moments.keys().collect::<Vec<_>>())
            .field("per_player_per_minute", &self.per_player_per_minute)
            .field("global_per_second", &self.global_per_second)
            .finish_non_exhaustive()
    }
}

/// Sliding-window counters for the per-player and global limits, and the challenge cache.
#[derive(Default)]
pub struct MomentsRuntime {
    players: Mutex<HashMap<String, VecDeque<Instant>>>,
    global: Mutex<VecDeque<Instant>>,
    challenges: tokio::sync::Mutex<Option<(Instant, Vec<Challenge>)>>,
}

/// The Rewards API plus the limits, shared by the handlers.
pub struct Moments {
    config: MomentsConfig,
    runtime: MomentsRuntime,
}

impl Moments {
    /// Moments with `config`.
    pub fn new(config: MomentsConfig) -> Self {
        Self { config, runtime: MomentsRuntime::default() }
    }
}

/// Admits one call in a sliding `window` of at most `limit` calls; `Err(wait)` when full.
fn admit(calls: &mut VecDeque<Instant>, limit: usize, window: Duration, now: Instant) -> Result<(), Duration> {
    while calls.front().is_some_and(|t| now.duration_since(*t) >= window) {
        calls.pop_front();
    }
    if calls.len() >= limit {
        return Err(window.saturating_sub(now.duration_since(calls[0])));
    }
    calls.push_back(now);
    Ok(())
}

/// Routes for the game.
/// What the Moments routes work with; they exist only when Moments is configured.
#[derive(Clone)]
pub struct MomentsState {
    /// The Rewards API, its key, campaigns and rate limits.
    pub moments: SharedMoments,
    /// The database.
    pub pool: AnyPool,
    /// Calls to the Rewards API.
    pub oauth_http: reqwest::Client,
    /// Who is calling.
    pub auth: PlayerAuth,
}

impl axum::extract::FromRef<MomentsState> for PlayerAuth {
    fn from_ref(state: &MomentsState) -> Self {
        state.auth.clone()
    }
}

/// The game's Moments routes, with their state.
pub fn router(state: MomentsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(report_moment))
        .routes(routes!(challenges))
        .routes(routes!(rewards))
        .with_state(state)
}

/// One reward the player earned, and whether it was claimed on Amazon's page (`GET /api/moments/rewards`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct EarnedReward {
    reward: Reward,
    redeemed: bool,
    /// When (unix seconds).
    redeemed_at: Option<i64>,
}

fn retry_later(after: Duration, code: &str, message: &str) -> Response {
    let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, code, message);
    response.headers_mut().insert(header::RETRY_AFTER, after.as_secs().max(1).into());
    response
}

fn too_many(after: Duration, message: &str) -> Response {
    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, after.as_secs_f64().ceil().max(1.0).to_string().parse().unwrap());
    response
}

fn database(error: sqlx::Error) -> Response {
    tracing::error!(%error, "moments database error");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "database error")
}

/// What a Rewards API call came back with.
enum AmazonAnswer<T> {
    Ok(T),
    /// A definite "no" (`BudgetExhausted`, `OutOfRewards`, `CampaignNotActive`, …).
    Refused(String),
    /// Try again later (rate limit, outage); how long to wait if Amazon said.
    Later(Duration),
}

async fn call_amazon<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    config: &MomentsConfig,
    path: &str,
    request: &RewardRequest,
) -> AmazonAnswer<T> {
    let url = format!("{}{path}", config.rewards_url.trim_end_matches('/'));
    let response = match http.post(url).header(API_KEY_HEADER, &config.api_key).json(request).send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(error = %error.without_url(), "Moments Rewards API unreachable");
            return AmazonAnswer::Later(Duration::from_secs(5));
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    if status.is_success() {
        return match response.json::<T>().await {
            Ok(value) => AmazonAnswer::Ok(value),
            Err(error) => {
                tracing::warn!(%error, "Moments Rewards API answered unreadable JSON");
                AmazonAnswer::Later(Duration::from_secs(5))
            }
        };
    }
    let code = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    match status.as_u16() {
        429 => AmazonAnswer::Later(retry_after.unwrap_or(Duration::from_secs(1))),
        403 => {
            tracing::error!("the Moments API key was refused; check --moments-api-key");
            AmazonAnswer::Later(Duration::from_secs(60))
        }
        404 | 409 => AmazonAnswer::Refused(code),
        _ => AmazonAnswer::Later(retry_after.unwrap_or(Duration::from_secs(5))),
    }
}

/// Amazon's error code as the reason the game shows.
fn reason_of(code: &str) -> &'static str {
    match code {
        error_code::BUDGET_EXHAUSTED => "budget_exhausted",
        error_code::OUT_OF_REWARDS => "out_of_rewards",
        error_code::CAMPAIGN_NOT_FOUND => "unknown_campaign",
        _ => "campaign_not_active",
    }
}

type RewardRow = (String, String, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

/// The stored answer for (player, moment), if final.
async fn stored_answer(pool: &AnyPool, user: &str, moment: &str) -> Result<Option<MomentAnswer>, sqlx::Error> {
    let row: Option<RewardRow> = sqlx::query_as(
        "SELECT status, COALESCE(reason, ''), reward_id, reward_url, title, description, image_url
         FROM moment_rewards WHERE amazon_user_id = $1 AND moment = $2",
    )
    .bind(user)
    .bind(moment)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(status, reason, reward_id, reward_url, title, description, image_url)| match status.as_str() {
        "rewarded" => Some(MomentAnswer::Rewarded {
            reward: Reward {
                reward_id: reward_id.unwrap_or_default(),
                moment: moment.to_owned(),
                reward_url: reward_url.unwrap_or_default(),
                title: title.unwrap_or_default(),
                description: description.unwrap_or_default(),
                image_url: image_url.unwrap_or_default(),
            },
        }),
        "not_rewarded" => Some(MomentAnswer::NotRewarded { moment: moment.to_owned(), reason }),
        _ => None,
    }))
}

async fn decline(pool: &AnyPool, user: &str, moment: &str, reason: &str) -> Result<MomentAnswer, sqlx::Error> {
    sqlx::query(
        "UPDATE moment_rewards SET status = 'not_rewarded', reason = $1 WHERE amazon_user_id = $2 AND moment = $3 AND status = 'pending'",
    )
    .bind(reason)
    .bind(user)
    .bind(moment)
    .execute(pool)
    .await?;
    Ok(stored_answer(pool, user, moment)
        .await?
        .unwrap_or(MomentAnswer::NotRewarded { moment: moment.to_owned(), reason: reason.to_owned() }))
}

/// The game reached a moment: the reward it earns, or why none.
#[utoipa::path(post, path = MOMENT_PATH, tag = "moments", security(("session" = [])), request_body = MomentRequest,
    responses((status = 200, body = MomentAnswer),
        (status = 503, description = "Amazon asked to wait (Retry-After)", body = crate::openapi::ErrorBody)))]
async fn report_moment(
    State(state): State<MomentsState>,
    player: AuthenticatedPlayer,
    body: Result<Json<MomentRequest>, JsonRejection>,
) -> Response {
    let moments = state.moments.clone();
    let user = player.amazon_user_id;
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return refuse(rejection.status(), "invalid_request", &rejection.body_text()),
    };
    let Some(campaign) = moments.config.moments.get(&request.moment).cloned() else {
        return refuse(StatusCode::NOT_FOUND, "unknown_moment", "this moment earns no reward");
    };
    match stored_answer(&state.pool, &user, &request.moment).await {
        Ok(Some(answer)) => return Json(answer).into_response(),
        Ok(None) => {}
        Err(error) => return database(error),
    }
    let now = Instant::now();
    {
        let mut players = moments.runtime.players.lock().unwrap_or_else(|p| p.into_inner());
        let calls = players.entry(user.clone()).or_default();
        if let Err(wait) = admit(calls, moments.config.per_player_per_minute, Duration::from_secs(60), now) {
            return too_many(wait, "too many moments from this player; try again later");
        }
        if players.len() > 100_000 {
            players.retain(|_, calls| calls.back().is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60)));
        }
    }
    {
        let mut global = moments.runtime.global.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(wait) = admit(&mut global, moments.config.global_per_second, Duration::from_secs(1), now) {
            return too_many(wait, "the rewards service is busy; try again shortly");
        }
    }
    let inserted = sqlx::query(
        "INSERT INTO moment_rewards (amazon_user_id, moment, achievement, campaign_id, status, cost_cents, test, created_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, 0, $5) ON CONFLICT (amazon_user_id, moment) DO NOTHING",
    )
    .bind(&user)
    .bind(&request.moment)
    .bind(&request.achievement)
    .bind(&campaign.campaign_id)
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await;
    if let Err(error) = inserted {
        return database(error);
    }
    match hand_out(&state, &moments, &campaign, &user, &request.moment).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(wait)) => retry_later(wait, "temporarily_unavailable", "the rewards service is unavailable; try again"),
        Err(error) => database(error),
    }
}

/// What paying a prize came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrizeOutcome {
    /// Rewarded: the reward to claim.
    Rewarded(Reward),
    /// Not rewarded, for this reason (`budget_exhausted`, `campaign_not_active`, `unknown_moment`, …).
    NotRewarded(String),
    /// The Rewards API is unavailable: try again later (nothing is lost; the prize stays pending).
    Later,
}

/// Pays a prize through the same path as a reported moment (its campaign's budget, getRewardInfo, getReward, one
/// reward recorded): `moment` names the campaign, `key` the one reward (a competition's place), `user` the
/// Amazon customer. Repeating it answers the first outcome.
pub async fn pay_prize(state: &MomentsState, moment: &str, key: &str, user: &str) -> Result<PrizeOutcome, sqlx::Error> {
    let Some(campaign) = state.moments.config.moments.get(moment).cloned() else {
        return Ok(PrizeOutcome::NotRewarded("unknown_moment".into()));
    };
    sqlx::query(
        "INSERT INTO moment_rewards (amazon_user_id, moment, achievement, campaign_id, status, cost_cents, test, created_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, 0, $5) ON CONFLICT (amazon_user_id, moment) DO NOTHING",
    )
    .bind(user)
    .bind(key)
    .bind(moment)
    .bind(&campaign.campaign_id)
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await?;
    let answer = match stored_answer(&state.pool, user, key).await? {
        Some(answer) => answer,
        None => match hand_out(state, &state.moments, &campaign, user, key).await? {
            Ok(answer) => answer,
            Err(_) => return Ok(PrizeOutcome::Later),
        },
    };
    Ok(match answer {
        MomentAnswer::Rewarded { reward } => PrizeOutcome::Rewarded(reward),
        MomentAnswer::NotRewarded { reason, .. } => PrizeOutcome::NotRewarded(reason),
    })
}

/// Budget check, getRewardInfo, getReward, record. `Ok(Err(wait))`: Amazon is unavailable, the row stays
/// pending and the game's retry continues it.
async fn hand_out(
    state: &MomentsState,
    moments: &Moments,
    campaign: &MomentCampaign,
    user: &str,
    moment: &str,
) -> Result<Result<MomentAnswer, Duration>, sqlx::Error> {
    if !reserve(&state.pool, campaign, user, moment).await? {
        return Ok(Ok(decline(&state.pool, user, moment, "budget_exhausted").await?));
    }
    let answer = ask_amazon(state, moments, campaign, user, moment).await;
    if !matches!(answer, Ok(Ok(MomentAnswer::Rewarded { .. }))) {
        // Declined, unavailable or failed: what was set aside goes back to the budget.
        release(&state.pool, campaign, user, moment).await?;
    }
    answer
}

/// Sets the moment's cost aside from the campaign's budget before Amazon is asked, atomically: the budget row
/// is updated only while what is spent and set aside stays within the budget, so concurrent reports (on any
/// number of backend processes) cannot overspend it. A retry of a moment already holding its reservation
/// does not reserve twice. Returns whether the reservation holds.
async fn reserve(pool: &AnyPool, campaign: &MomentCampaign, user: &str, moment: &str) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO moment_budgets (campaign_id, reserved_cents)
         VALUES ($1, (SELECT COALESCE(SUM(cost_cents), 0) FROM moment_rewards WHERE campaign_id = $1 AND status = 'rewarded'))
         ON CONFLICT (campaign_id) DO NOTHING",
    )
    .bind(&campaign.campaign_id)
    .execute(pool)
    .await?;
    let mut tx = pool.begin().await?;
    let marked = sqlx::query(
        "UPDATE moment_rewards SET reserved_cents = $1
         WHERE amazon_user_id = $2 AND moment = $3 AND status = 'pending' AND reserved_cents = 0",
    )
    .bind(campaign.cost_per_moment_cents)
    .bind(user)
    .bind(moment)
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() == 0 {
        // Reserved by an earlier attempt that did not finish (or nothing to reserve).
        tx.commit().await?;
        return Ok(true);
    }
    let taken = sqlx::query(
        "UPDATE moment_budgets SET reserved_cents = reserved_cents + $1
         WHERE campaign_id = $2 AND reserved_cents + $1 <= $3",
    )
    .bind(campaign.cost_per_moment_cents)
    .bind(&campaign.campaign_id)
    .bind(campaign.budget_cents)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Gives a moment's reservation back to the budget (once, however often it is called).
async fn release(pool: &AnyPool, campaign: &MomentCampaign, user: &str, moment: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT reserved_cents FROM moment_rewards WHERE amazon_user_id = $1 AND moment = $2 AND reserved_cents > 0",
    )
    .bind(user)
    .bind(moment)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(held) = held {
        sqlx::query("UPDATE moment_rewards SET reserved_cents = 0 WHERE amazon_user_id = $1 AND moment = $2")
            .bind(user)
            .bind(moment)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE moment_budgets SET reserved_cents = reserved_cents - $1 WHERE campaign_id = $2")
            .bind(held)
            .bind(&campaign.campaign_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Records `grant` as the reward of `user`'s `moment` in one transaction: the budget's reservation becomes the
/// cost (a test reward costs nothing, so its reservation goes back).
async fn record_reward(
    pool: &AnyPool,
    campaign: &MomentCampaign,
    user: &str,
    moment: &str,
    grant: &RewardGrant,
) -> Result<(), sqlx::Error> {
    let cost = if grant.test { 0 } else { campaign.cost_per_moment_cents };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE moment_budgets SET reserved_cents = reserved_cents - (
             SELECT reserved_cents FROM moment_rewards WHERE amazon_user_id = $1 AND moment = $2) + $3
         WHERE campaign_id = $4",
    )
    .bind(user)
    .bind(moment)
    .bind(cost)
    .bind(&campaign.campaign_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE moment_rewards SET status = 'rewarded', reward_id = $1, reward_url = $2, title = $3, description = $4,
             image_url = $5, cost_cents = $6, test = $7, rewarded_at = $8, reserved_cents = 0
         WHERE amazon_user_id = $9 AND moment = $10 AND status = 'pending'",
    )
    .bind(&grant.reward_id)
    .bind(&grant.reward_url)
    .bind(&grant.notification.title)
    .bind(&grant.notification.description)
    .bind(&grant.notification.image_url)
    .bind(cost)
    .bind(i64::from(grant.test))
    .bind(crate::now_secs())
    .bind(user)
    .bind(moment)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// getRewardInfo, getReward, record; the reservation is held meanwhile.
async fn ask_amazon(
    state: &MomentsState,
    moments: &Moments,
    campaign: &MomentCampaign,
    user: &str,
    moment: &str,
) -> Result<Result<MomentAnswer, Duration>, sqlx::Error> {
    let request = RewardRequest { campaign_id: campaign.campaign_id.clone(), customer_id: user.to_owned() };
    match call_amazon::<RewardInfo>(&state.oauth_http, &moments.config, GET_REWARD_INFO_PATH, &request).await {
        AmazonAnswer::Ok(info) if info.available => {}
        AmazonAnswer::Ok(info) => {
            let reason = if info.state.hands_out_rewards() { "budget_exhausted" } else { "campaign_not_active" };
            return Ok(Ok(decline(&state.pool, user, moment, reason).await?));
        }
        AmazonAnswer::Refused(code) => return Ok(Ok(decline(&state.pool, user, moment, reason_of(&code)).await?)),
        AmazonAnswer::Later(wait) => return Ok(Err(wait)),
    }
    let grant = match call_amazon::<RewardGrant>(&state.oauth_http, &moments.config, GET_REWARD_PATH, &request).await {
        AmazonAnswer::Ok(grant) => grant,
        AmazonAnswer::Refused(code) => return Ok(Ok(decline(&state.pool, user, moment, reason_of(&code)).await?)),
        AmazonAnswer::Later(wait) => return Ok(Err(wait)),
    };
    record_reward(&state.pool, campaign, user, moment, &grant).await?;
    crate::telemetry::moments_spent(&campaign.campaign_id, if grant.test { 0 } else { campaign.cost_per_moment_cents });
    tracing::info!(moment, reward_id = %grant.reward_id, test = grant.test, "moment rewarded");
    Ok(Ok(stored_answer(&state.pool, user, moment).await?.unwrap_or(MomentAnswer::Rewarded {
        reward: Reward {
            reward_id: grant.reward_id,
            moment: moment.to_owned(),
            reward_url: grant.reward_url,
            title: grant.notification.title,
            description: grant.notification.description,
            image_url: grant.notification.image_url,
        },
    })))
}

/// Challenges worth announcing: every configured moment whose campaign hands out rewards now, with its
/// notification content, less the moments this player was already rewarded for. Campaign availability is cached
/// for a minute (it is the same for every player) so announcements stay far below the per-key rate limit.
/// The moments the game may announce, those the player was rewarded for left out.
#[utoipa::path(get, path = CHALLENGES_PATH, tag = "moments", security(("session" = [])),
    responses((status = 200, body = Vec<Challenge>)))]
async fn challenges(State(state): State<MomentsState>, player: AuthenticatedPlayer) -> Response {
    let moments = state.moments.clone();
    let user = player.amazon_user_id;
    let rewarded: Vec<String> =
        match sqlx::query_scalar("SELECT moment FROM moment_rewards WHERE amazon_user_id = $1 AND status = 'rewarded'")
            .bind(&user)
            .fetch_all(&state.pool)
            .await
        {
            Ok(rewarded) => rewarded,
            Err(_) => return retry_later(Duration::from_secs(1), "temporarily_unavailable", "try again"),
        };
    let for_this_player =
        |all: &[Challenge]| all.iter().filter(|c| !rewarded.contains(&c.moment)).cloned().collect::<Vec<_>>();
    let mut cache = moments.runtime.challenges.lock().await;
    if let Some((at, cached)) = cache.as_ref()
        && at.elapsed() < Duration::from_secs(60)
    {
        return Json(for_this_player(cached)).into_response();
    }
    let mut found = Vec::new();
    let mut names: Vec<&String> = moments.config.moments.keys().collect();
    names.sort();
    for moment in names {
        let campaign = &moments.config.moments[moment];
        let request = RewardRequest { campaign_id: campaign.campaign_id.clone(), customer_id: user.clone() };
        match call_amazon::<RewardInfo>(&state.oauth_http, &moments.config, GET_REWARD_INFO_PATH, &request).await {
            AmazonAnswer::Ok(info) if info.available => found.push(Challenge {
                moment: moment.clone(),
                title: info.notification.title,
                description: info.notification.description,
                image_url: info.notification.image_url,
            }),
            AmazonAnswer::Ok(_) | AmazonAnswer::Refused(_) => {}
            AmazonAnswer::Later(wait) => return retry_later(wait, "temporarily_unavailable", "try again later"),
        }
    }
    let answer = for_this_player(&found);
    *cache = Some((Instant::now(), found));
    Json(answer).into_response()
}

/// The player's rewards, with redemption status refreshed from Amazon for those not yet redeemed.
/// The rewards the player earned.
#[utoipa::path(get, path = REWARDS_PATH, tag = "moments", security(("session" = [])),
    responses((status = 200, body = Vec<EarnedReward>)))]
async fn rewards(State(state): State<MomentsState>, player: AuthenticatedPlayer) -> Response {
    let moments = state.moments.clone();
    let user = player.amazon_user_id;
    let rows = match sqlx::query(
        "SELECT moment, reward_id, reward_url, title, description, image_url, redeemed_at, test FROM moment_rewards
         WHERE amazon_user_id = $1 AND status = 'rewarded' ORDER BY rewarded_at, moment",
    )
    .bind(&user)
    .fetch_all(&state.pool)
    .await
    {
        Ok(rows) => rows,
        Err(error) => return database(error),
    };
    let mut out = Vec::new();
    for row in rows {
        let reward_id: String = row.get("reward_id");
        let mut redeemed_at: Option<i64> = row.get("redeemed_at");
        let test: i64 = row.get("test");
        if redeemed_at.is_none() && test == 0 {
            redeemed_at = redemption(&state, &moments, &user, &reward_id).await;
        }
        out.push(EarnedReward {
            reward: Reward {
                reward_id,
                moment: row.get("moment"),
                reward_url: row.get("reward_url"),
                title: row.get("title"),
                description: row.get("description"),
                image_url: row.get("image_url"),
            },
            redeemed: redeemed_at.is_some(),
            redeemed_at,
        });
    }
    Json(out).into_response()
}

/// Asks Amazon whether a reward was redeemed, and records it when it was.
async fn redemption(state: &MomentsState, moments: &Moments, user: &str, reward_id: &str) -> Option<i64> {
    let url = format!("{}{REWARD_STATUS_PATH}/{reward_id}", moments.config.rewards_url.trim_end_matches('/'));
    let response = state.oauth_http.get(url).header(API_KEY_HEADER, &moments.config.api_key).send().await.ok()?;
    let status: RewardStatus = response.error_for_status().ok()?.json().await.ok()?;
    let at = status.redeemed_at.filter(|_| status.redeemed)?;
    let recorded =
        sqlx::query("UPDATE moment_rewards SET redeemed_at = $1 WHERE amazon_user_id = $2 AND reward_id = $3")
            .bind(at)
            .bind(user)
            .bind(reward_id)
            .execute(&state.pool)
            .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "cannot record a redemption");
    }
    Some(at)
}

/// Shared handle in [`MomentsState`].
pub type SharedMoments = Arc<Moments>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_refuses_over_the_limit_and_says_how_long_to_wait() {
        let mut calls = VecDeque::new();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(admit(&mut calls, 3, Duration::from_secs(60), start).is_ok());
        }
        let wait = admit(&mut calls, 3, Duration::from_secs(60), start + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(admit(&mut calls, 3, Duration::from_secs(60), start + Duration::from_secs(60)).is_ok());
    }
}
