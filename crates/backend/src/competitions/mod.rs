//! Competitions and tournaments, the Moments seed's third scenario ("award competitions and tournaments: give
//! your users physical or digital items as prizes for winning in-app competitions"), decided on the backend as
//! the seed's table of roles asks (tracking behaviour and evaluating eligibility are the app's job). The studio
//! defines a competition (operator route); scores come from the studio's game server with its credential
//! (trusted) or, only where a competition opts in, from the game client (untrusted: bounded, paced, marked so
//! in the standings and on the operator route, refusals counted); players read the standings with their own
//! place; when it ends one process closes it and pays each prized place through Moments.
//!
//! Files: `table.rs` (definitions), `scores.rs` (submissions), `standings.rs` (ranking, results), `closing.rs`
//! (close once, pay prizes).

pub mod closing;
pub mod scores;
pub mod standings;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use amazon_rewards_protocol::competitions::{
    COMPETITIONS_PATH, ClientScore, CompetitionDefinition, CompetitionList, ServerScore, refusal,
};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::scores::Submitter;
use crate::error::BackendError;
use crate::player::{AuthenticatedPlayer, PlayerAuth};

/// The competitions' settings.
#[derive(Clone)]
pub struct CompetitionsConfig {
    /// The studio game server's credential for trusted scores (`Authorization: Bearer …`). `None`: no server
    /// route (only client scores, where a competition allows them).
    pub server_token: Option<String>,
    /// How often ended competitions are closed and prizes paid. Default 5 s.
    pub close_every: Duration,
}

impl Default for CompetitionsConfig {
    fn default() -> Self {
        Self { server_token: None, close_every: Duration::from_secs(5) }
    }
}

impl std::fmt::Debug for CompetitionsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompetitionsConfig")
            .field("server_token", &self.server_token.as_ref().map(|_| "…"))
            .field("close_every", &self.close_every)
            .finish()
    }
}

/// What the competition routes work with.
#[derive(Clone)]
pub struct CompetitionsState {
    /// The database.
    pub pool: AnyPool,
    /// SHA-256 of the server credential, when there is one.
    pub server_token: Option<Arc<[u8; 32]>>,
}

impl CompetitionsState {
    /// The routes' state over `pool` with `config`'s server credential.
    pub fn new(pool: AnyPool, config: &CompetitionsConfig) -> Self {
        let server_token =
            config.server_token.as_ref().map(|t| Arc::new(<[u8; 32]>::from(Sha256::digest(t.as_bytes()))));
        Self { pool, server_token }
    }
}

impl FromRef<CompetitionsState> for PlayerAuth {
    fn from_ref(state: &CompetitionsState) -> Self {
        PlayerAuth { pool: state.pool.clone() }
    }
}

/// The game's and the game server's competition routes.
pub fn router(state: CompetitionsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_route))
        .routes(routes!(standings_route))
        .routes(routes!(client_score_route))
        .routes(routes!(server_score_route))
        .with_state(state)
}

/// The `{id}` of a competition route, or the typed refusal of an unreadable one.
fn competition_id(path: Result<Path<String>, PathRejection>) -> Result<String, BackendError> {
    path.map(|Path(id)| id).map_err(|e| BackendError::BadRequest(e.body_text()))
}

/// Every running (or just closed) competition, with the player's place.
#[utoipa::path(get, path = COMPETITIONS_PATH, tag = "competitions", security(("session" = [])),
    responses((status = 200, body = CompetitionList)))]
async fn list_route(
    State(state): State<CompetitionsState>,
    player: AuthenticatedPlayer,
) -> Result<Json<CompetitionList>, BackendError> {
    let (user_id, now) = (player.account()?, crate::now_secs());
    let mut competitions = Vec::new();
    for competition in table::visible(&state.pool, now - 86_400).await? {
        competitions.push(standings::standings_for(&state.pool, &competition, user_id, now).await?);
    }
    Ok(Json(CompetitionList { competitions }))
}

/// One competition's standings, with the player's place.
#[utoipa::path(get, path = "/api/competitions/{id}", tag = "competitions", security(("session" = [])),
    params(("id" = String, Path, description = "The competition")),
    responses((status = 200, body = amazon_rewards_protocol::competitions::Standings)))]
async fn standings_route(
    State(state): State<CompetitionsState>,
    player: AuthenticatedPlayer,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, BackendError> {
    let id = competition_id(id)?;
    let competition = known(&state.pool, &id).await?;
    let standings = standings::standings_for(&state.pool, &competition, player.account()?, crate::now_secs()).await?;
    Ok(Json(standings).into_response())
}

async fn known(pool: &AnyPool, id: &str) -> Result<table::StoredCompetition, BackendError> {
    table::get(pool, id)
        .await?
        .ok_or_else(|| BackendError::refused(StatusCode::NOT_FOUND, refusal::UNKNOWN, "no such competition"))
}

/// Checks, records and answers one submission; refusals are counted.
async fn submit(
    pool: &AnyPool,
    id: &str,
    user_id: &str,
    submitter: Submitter,
    key: &str,
    score: i64,
) -> Result<Response, BackendError> {
    let competition = known(pool, id).await?;
    if let Err(reason) = scores::check(&competition, submitter, key, score, crate::now_secs()) {
        scores::count_refusal(pool, id, reason).await?;
        return Err(refused(reason));
    }
    match scores::submit(pool, &competition, user_id, submitter, key, score).await? {
        Ok(accepted) => Ok(Json(accepted).into_response()),
        Err(reason) => Err(refused(&reason)),
    }
}

fn refused(reason: &str) -> BackendError {
    let status = match reason {
        refusal::CLIENT_SCORES_NOT_ALLOWED => StatusCode::FORBIDDEN,
        // Not 429: that is the rate limit of the whole service; this is the competition's own rule.
        refusal::TOO_SOON | refusal::NOT_STARTED | refusal::ENDED => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    BackendError::refused(status, reason, "score refused")
}

/// `POST /api/competitions/{id}/scores`: the game client's score (untrusted).
#[utoipa::path(post, path = "/api/competitions/{id}/scores", tag = "competitions", security(("session" = [])),
    params(("id" = String, Path, description = "The competition")), request_body = ClientScore,
    responses((status = 200, body = amazon_rewards_protocol::competitions::ScoreAccepted)))]
async fn client_score_route(
    State(state): State<CompetitionsState>,
    player: AuthenticatedPlayer,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ClientScore>, JsonRejection>,
) -> Result<Response, BackendError> {
    let id = competition_id(id)?;
    let Json(score) = body.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    submit(&state.pool, &id, player.account()?, Submitter::Client, &score.key, score.score).await
}

/// `POST /server/competitions/{id}/scores`: the studio's game server's score (trusted), with its credential.
#[utoipa::path(post, path = "/server/competitions/{id}/scores", tag = "competitions",
    security(("game_server" = [])), params(("id" = String, Path, description = "The competition")),
    request_body = ServerScore,
    responses((status = 200, body = amazon_rewards_protocol::competitions::ScoreAccepted)))]
async fn server_score_route(
    State(state): State<CompetitionsState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<ServerScore>, JsonRejection>,
) -> Result<Response, BackendError> {
    let presented =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match (&state.server_token, presented) {
        (Some(expected), Some(presented)) => crate::operator::same_digest(expected, presented),
        _ => false,
    };
    if !allowed {
        return Err(BackendError::refused(
            StatusCode::UNAUTHORIZED,
            "invalid_server_token",
            "server credential missing or wrong",
        ));
    }
    let id = competition_id(id)?;
    let Json(score) = body.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    let exists: Option<String> = sqlx::query_scalar("SELECT user_id FROM accounts WHERE user_id = $1")
        .bind(&score.user_id)
        .fetch_optional(&state.pool)
        .await?;
    if exists.is_none() {
        return Err(BackendError::refused(StatusCode::NOT_FOUND, "unknown_player", "no such game account"));
    }
    submit(&state.pool, &id, &score.user_id, Submitter::Server, &score.key, score.score).await
}

/// The operator's competition routes, nested under `/admin`: define one, and see one whole (every place,
/// trusted or not, the results and the refusals).
pub fn admin_router() -> Router<crate::AppState> {
    Router::new().route("/competitions", post(define_route)).route("/competitions/{id}", get(operator_view_route))
}

async fn define_route(
    State(state): State<crate::AppState>,
    body: Result<Json<CompetitionDefinition>, JsonRejection>,
) -> Result<Response, BackendError> {
    let Json(definition) = body.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    definition.validate().map_err(BackendError::BadRequest)?;
    match table::define(&state.pool, &definition).await? {
        table::Defined::Created => Ok((StatusCode::CREATED, Json(definition)).into_response()),
        table::Defined::Unchanged => Ok(Json(definition).into_response()),
        table::Defined::Conflict => {
            Err(BackendError::refused(StatusCode::CONFLICT, "competition_exists", "another competition has this id"))
        }
    }
}

async fn operator_view_route(
    State(state): State<crate::AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, BackendError> {
    let competition = known(&state.pool, &id).await?;
    let ranked = standings::ranked(&state.pool, &competition, 1000).await?;
    let places: Vec<_> = ranked
        .iter()
        .map(|r| {
            json!({"place": r.standing.place, "user_id": r.user_id, "player": r.standing.player,
            "score": r.standing.score, "trusted": r.standing.trusted})
        })
        .collect();
    let results: Vec<_> = standings::results(&state.pool, &id)
        .await?
        .into_iter()
        .map(|(user_id, winner)| json!({"user_id": user_id, "result": winner}))
        .collect();
    let refusals: serde_json::Map<String, serde_json::Value> =
        scores::refusals(&state.pool, &id).await?.into_iter().map(|(reason, n)| (reason, json!(n))).collect();
    Ok(Json(json!({
        "definition": competition.definition,
        "state": competition.state(crate::now_secs()),
        "untrusted": competition.definition.client_scores.is_some(),
        "places": places,
        "results": results,
        "refusals": refusals,
    })))
}
