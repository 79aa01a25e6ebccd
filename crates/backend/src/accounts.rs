//! Game accounts: the studio's own players, which Instant Access links Amazon customers to. Until the
//! new-account page exists, an admin JSON call creates them.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::AppState;

/// `POST /admin/accounts`: create a game account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAccount {
    /// What the customer types into Amazon's linking form (`infoField1`).
    pub username: String,
    /// The player's Amazon identity (LWA profile `user_id`), so the game can fetch what was bought.
    #[serde(default)]
    pub amazon_user_id: Option<String>,
}

/// A game account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The immutable user id answered to `GetUserId`.
    pub user_id: String,
    /// Its username.
    pub username: String,
}

/// Admin routes, nested under `/admin`.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/accounts", post(create_account))
}

async fn create_account(
    State(state): State<AppState>,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<Account>), (StatusCode, String)> {
    let Json(request) = body.map_err(|e| (e.status(), e.body_text()))?;
    let username = request.username.trim().to_owned();
    if username.is_empty() || username.len() > 128 {
        return Err((StatusCode::BAD_REQUEST, "a username is 1-128 characters".into()));
    }
    let user_id = format!("player-{}", crate::random_hex(12));
    let inserted = sqlx::query(
        "INSERT INTO accounts (user_id, username, amazon_user_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(&user_id)
    .bind(&username)
    .bind(request.amazon_user_id.as_deref())
    .bind(crate::now_secs())
    .execute(&state.pool)
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if inserted.rows_affected() == 0 {
        return Err((StatusCode::CONFLICT, format!("username {username} is taken")));
    }
    Ok((StatusCode::CREATED, Json(Account { user_id, username })))
}
