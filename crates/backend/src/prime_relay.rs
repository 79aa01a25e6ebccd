//! Prime Gaming, relayed server-side: with the refresh token it keeps for a player (from the new-account
//! page), the backend pulls the player's Prime Gaming entitlements itself and reports their fulfilment, so the
//! game sees one feed. Access tokens are cached until shortly before they expire; refresh tokens are rotated
//! and the new one stored at once.
//!
//! Amazon's documented error process (retry, refresh, relink; `shared/WIRE.md`): an HTTP 400/401 from Prime
//! Gaming may mean an expired access token, so the relay refreshes once and retries once; a second refusal is
//! a request error. Only LWA refusing the refresh token itself (`invalid_grant`) ends the relay for a player,
//! and then only the refresh token that was read is deleted, never one a sibling request just stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amazon_rewards_protocol::prime_gaming::{
    ACCESS_TOKEN_HEADER, ENTITLEMENTS_PATH, Entitlement, EntitlementsPage, FULFILL_PATH, FulfillRequest,
    FulfillResponse, NEXT_TOKEN_QUERY,
};
use oauth2::{RefreshToken, TokenResponse};
use sqlx::AnyPool;
use tokio::sync::Mutex;

use crate::signup::{LwaClient, oauth_client};

/// Source name of relayed entitlements.
pub const SOURCE_PRIME_GAMING: &str = "PRIME_GAMING";
/// Prefix of relayed entitlement ids in the feed.
pub const ID_PREFIX: &str = "pg:";
/// Most pages followed.
const MAX_PAGES: usize = 100;
/// Largest Prime Gaming answer read; a larger one is refused, not buffered.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// How long one process may hold a player's refresh lease: longer than any refresh takes (the LWA client's
/// timeout is 15 s), short enough that a crashed process does not block the player for long.
const LEASE_SECONDS: i64 = 30;
/// How often a request waiting for a sibling's refresh looks again, and how many times.
const LEASE_POLL: Duration = Duration::from_millis(100);
const LEASE_WAITS: usize = 400;
/// An access token is not used in its last five minutes.
const ACCESS_MARGIN: Duration = Duration::from_secs(300);

/// The outcome of asking for a player's refresh lease.
enum Lease {
    /// Ours, with the refresh token stored under it and the access token stored with it (sealed, and its
    /// expiry), which a sibling's refresh may have just written.
    Taken(String, StoredAccess),
    /// Another request holds it.
    Busy,
    /// The player has no stored link.
    NoLink,
}

/// A stored access token, sealed, and when it expires.
type StoredAccess = (Option<String>, Option<i64>);

/// Takes the lease on the player's row, unless someone else holds a live one.
async fn take_lease(pool: &AnyPool, user_id: &str) -> Result<Lease, String> {
    let now = crate::now_secs();
    let taken = sqlx::query(
        "UPDATE lwa_tokens SET refreshing_until = $1
         WHERE user_id = $2 AND (refreshing_until IS NULL OR refreshing_until < $3)",
    )
    .bind(now + LEASE_SECONDS)
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    let stored: Option<(String, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT refresh_token, access_token, access_expires_at FROM lwa_tokens WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?;
    Ok(match (taken.rows_affected(), stored) {
        (_, None) => Lease::NoLink,
        (1, Some((refresh, access, expires_at))) => Lease::Taken(refresh, (access, expires_at)),
        _ => Lease::Busy,
    })
}

/// Gives the lease back without changing the tokens.
async fn release_lease(pool: &AnyPool, user_id: &str, stored: &str) -> Result<(), String> {
    sqlx::query("UPDATE lwa_tokens SET refreshing_until = NULL WHERE user_id = $1 AND refresh_token = $2")
        .bind(user_id)
        .bind(stored)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Why a relayed call failed.
enum Refusal {
    /// HTTP 400/401: maybe the access token expired.
    MaybeToken(u16),
    /// Anything else.
    Failed(String),
}

/// Reads a Prime Gaming answer: JSON within [`MAX_ANSWER_BYTES`], or why not.
async fn read_answer<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, Refusal> {
    let status = response.status().as_u16();
    if status == 400 || status == 401 {
        return Err(Refusal::MaybeToken(status));
    }
    if !response.status().is_success() {
        return Err(Refusal::Failed(format!("Prime Gaming answered HTTP {status}")));
    }
    let body = crate::read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| Refusal::Failed(format!("Prime Gaming: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| Refusal::Failed(format!("unreadable Prime Gaming answer: {e}")))
}

/// The relay: Prime Gaming's base URL, the backend's LWA client, and cached access tokens per player.
pub struct PrimeRelay {
    base_url: String,
    lwa: Arc<LwaClient>,
    http: reqwest::Client,
    token_key: Option<Arc<crate::sealed::TokenKey>>,
    access: Mutex<HashMap<String, (String, Instant)>>,
    /// One refresh at a time per player in this process.
    gates: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl PrimeRelay {
    /// A relay to the Prime Gaming API at `base_url`.
    pub fn new(
        base_url: String,
        lwa: Arc<LwaClient>,
        http: reqwest::Client,
        token_key: Option<Arc<crate::sealed::TokenKey>>,
    ) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            lwa,
            http,
            token_key,
            access: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `call` with the player's access token; if Prime Gaming answers 400/401, refreshes the token once
    /// and runs it once more. `None` when the backend holds no working refresh token for the player.
    async fn with_access<T, F, Fut>(&self, pool: &AnyPool, user_id: &str, call: F) -> Result<Option<T>, String>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Refusal>>,
    {
        let Some(token) = self.access_token(pool, user_id, false).await? else {
            return Ok(None);
        };
        match call(token).await {
            Ok(answer) => return Ok(Some(answer)),
            Err(Refusal::Failed(error)) => {
                crate::telemetry::relay_error("prime_gaming");
                return Err(error);
            }
            Err(Refusal::MaybeToken(_)) => {}
        }
        let Some(token) = self.access_token(pool, user_id, true).await? else {
            return Ok(None);
        };
        let answer = match call(token).await {
            Ok(answer) => Ok(Some(answer)),
            Err(Refusal::Failed(error)) => Err(error),
            Err(Refusal::MaybeToken(status)) => {
                Err(format!("Prime Gaming refused the request with a fresh access token too (HTTP {status})"))
            }
        };
        if answer.is_err() {
            crate::telemetry::relay_error("prime_gaming");
        }
        answer
    }

    /// An access token for `user_id` (a cached one unless `fresh`), refreshing and storing the rotated refresh
    /// token when needed. `None` when the player never gave the backend a refresh token, or it no longer works.
    ///
    /// Refreshes are serialised per player: in this process by a per-player lock, across processes by a lease
    /// on the player's row, so no two requests ever present the same refresh token (a server that rotates
    /// may take a reuse for theft and revoke the family). The fresh access token is shared through the row
    /// (sealed like the refresh token), so a sibling process that waited uses it instead of refreshing again.
    async fn access_token(&self, pool: &AnyPool, user_id: &str, fresh: bool) -> Result<Option<String>, String> {
        let refused = if fresh { self.access.lock().await.remove(user_id).map(|(token, _)| token) } else { None };
        if let Some(token) = self.cached(user_id, refused.as_deref()).await {
            crate::telemetry::lwa_access_token("cached");
            return Ok(Some(token));
        }
        let gate = self.gates.lock().await.entry(user_id.to_owned()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        for _ in 0..LEASE_WAITS {
            if let Some(token) = self.cached(user_id, refused.as_deref()).await {
                return Ok(Some(token));
            }
            if let Some(token) = self.shared(pool, user_id, refused.as_deref()).await? {
                crate::telemetry::lwa_access_token("shared");
                return Ok(Some(token));
            }
            match take_lease(pool, user_id).await? {
                Lease::Taken(stored, access) => {
                    // A sibling may have finished its refresh between our look at the row and the lease:
                    // its access token is then in the row we now hold, and refreshing again would present a
                    // refresh token a rotating server just retired.
                    if let Some(token) = self.usable(user_id, access, refused.as_deref()).await {
                        release_lease(pool, user_id, &stored).await?;
                        crate::telemetry::lwa_access_token("shared");
                        return Ok(Some(token));
                    }
                    crate::telemetry::lwa_access_token("refreshed");
                    return self.refresh(pool, user_id, stored).await;
                }
                Lease::NoLink => return Ok(None),
                Lease::Busy => tokio::time::sleep(LEASE_POLL).await,
            }
        }
        Err("another backend process is still refreshing this player's token".into())
    }

    /// This process's cached access token, unless it is the one just refused.
    async fn cached(&self, user_id: &str, refused: Option<&str>) -> Option<String> {
        let access = self.access.lock().await;
        let (token, until) = access.get(user_id)?;
        (Instant::now() < *until && Some(token.as_str()) != refused).then(|| token.clone())
    }

    /// The access token another process stored for the player, if it is still good and not the refused one.
    async fn shared(&self, pool: &AnyPool, user_id: &str, refused: Option<&str>) -> Result<Option<String>, String> {
        let row: Option<StoredAccess> = sqlx::query_as(
            "SELECT access_token, access_expires_at FROM lwa_tokens WHERE user_id = $1 AND refreshing_until IS NULL",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await
        .map_err(|e| e.to_string())?;
        let Some(access) = row else { return Ok(None) };
        Ok(self.usable(user_id, access, refused).await)
    }

    /// The stored access token, opened and cached, if it is good for more than the margin and not the one
    /// just refused.
    async fn usable(&self, user_id: &str, (sealed, expires_at): StoredAccess, refused: Option<&str>) -> Option<String> {
        let (sealed, expires_at) = (sealed?, expires_at?);
        let left = expires_at - crate::now_secs() - ACCESS_MARGIN.as_secs() as i64;
        let token = crate::sealed::open(self.token_key.as_deref(), user_id, &sealed).ok()?;
        if left <= 0 || Some(token.as_str()) == refused {
            return None;
        }
        let until = Instant::now() + Duration::from_secs(left as u64);
        self.access.lock().await.insert(user_id.to_owned(), (token.clone(), until));
        Some(token)
    }

    /// Refreshes with the refresh token `stored` (the lease on the row is held), stores what LWA answers and
    /// gives the lease back.
    async fn refresh(&self, pool: &AnyPool, user_id: &str, stored: String) -> Result<Option<String>, String> {
        let refresh = match crate::sealed::open(self.token_key.as_deref(), user_id, &stored) {
            Ok(refresh) => refresh,
            Err(error) => {
                // Kept, not deleted: the right key may yet be configured.
                tracing::warn!(user_id, %error, "Prime Gaming relay: stored refresh token unusable; not relaying");
                release_lease(pool, user_id, &stored).await?;
                return Ok(None);
            }
        };
        let client = oauth_client(&self.lwa)?;
        let token = match client.exchange_refresh_token(&RefreshToken::new(refresh)).request_async(&self.http).await {
            Ok(token) => token,
            Err(oauth2::RequestTokenError::ServerResponse(refusal))
                if *refusal.error() == oauth2::basic::BasicErrorResponseType::InvalidGrant =>
            {
                // The player revoked the backend's access, or the token is dead ("Token invalid"): stop
                // relaying for them. Only the token read under the lease goes.
                sqlx::query("DELETE FROM lwa_tokens WHERE user_id = $1 AND refresh_token = $2")
                    .bind(user_id)
                    .bind(&stored)
                    .execute(pool)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::accounts::mark_link_broken(pool, user_id).await.map_err(|e| e.to_string())?;
                tracing::warn!(
                    user_id,
                    "Prime Gaming relay: refresh token refused; the link is broken until the player links again"
                );
                return Ok(None);
            }
            Err(error) => {
                release_lease(pool, user_id, &stored).await?;
                return Err(format!("refresh failed: {error}"));
            }
        };
        let lifetime = token.expires_in().unwrap_or(Duration::from_secs(3600)).min(Duration::from_secs(24 * 3600));
        let access = token.access_token().secret().clone();
        let key = self.token_key.as_deref();
        // A server that does not rotate answers no refresh token: the stored one stays.
        let rotated = token.refresh_token().map(|rotated| crate::sealed::seal(key, user_id, rotated.secret()));
        sqlx::query(
            "UPDATE lwa_tokens SET refresh_token = COALESCE($1, refresh_token), access_token = $2, access_expires_at = $3,
                 refreshing_until = NULL, updated_at = $4
             WHERE user_id = $5 AND refresh_token = $6",
        )
        .bind(rotated)
        .bind(crate::sealed::seal(key, user_id, &access))
        .bind(crate::now_secs() + lifetime.as_secs() as i64)
        .bind(crate::now_secs())
        .bind(user_id)
        .bind(&stored)
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
        let until = Instant::now() + lifetime.saturating_sub(ACCESS_MARGIN);
        self.access.lock().await.insert(user_id.to_owned(), (access.clone(), until));
        Ok(Some(access))
    }

    /// The player's Prime Gaming entitlements, ids prefixed with [`ID_PREFIX`].
    pub async fn entitlements(&self, pool: &AnyPool, user_id: &str) -> Result<Vec<Entitlement>, String> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.with_access(pool, user_id, |token| self.entitlements_page(token, next.clone())).await?;
            let Some(page) = page else {
                return Ok(Vec::new());
            };
            all.extend(page.entitlements.into_iter().map(|mut e| {
                e.entitlement_id = format!("{ID_PREFIX}{}", e.entitlement_id);
                e.source = Some(SOURCE_PRIME_GAMING.into());
                e
            }));
            match page.next_token {
                Some(token) if !token.is_empty() && Some(&token) != next.as_ref() => next = Some(token),
                Some(token) if !token.is_empty() => return Err("Prime Gaming repeated its nextToken".into()),
                _ => return Ok(all),
            }
        }
        Err("Prime Gaming pagination did not end".into())
    }

    async fn entitlements_page(&self, token: String, next: Option<String>) -> Result<EntitlementsPage, Refusal> {
        let mut request =
            self.http.get(format!("{}{ENTITLEMENTS_PATH}", self.base_url)).header(ACCESS_TOKEN_HEADER, token);
        if let Some(next) = &next {
            request = request.query(&[(NEXT_TOKEN_QUERY, next)]);
        }
        let response = request.send().await.map_err(|e| Refusal::Failed(e.without_url().to_string()))?;
        read_answer(response).await
    }

    /// Relays fulfilment reports (ids without the prefix) to Prime Gaming.
    pub async fn fulfill(
        &self,
        pool: &AnyPool,
        user_id: &str,
        request: &FulfillRequest,
    ) -> Result<FulfillResponse, String> {
        let call = |token: String| async move {
            let response = self
                .http
                .post(format!("{}{FULFILL_PATH}", self.base_url))
                .header(ACCESS_TOKEN_HEADER, token)
                .json(request)
                .send()
                .await
                .map_err(|e| Refusal::Failed(e.without_url().to_string()))?;
            read_answer(response).await
        };
        self.with_access(pool, user_id, call).await?.ok_or_else(|| "no Prime Gaming access for this player".into())
    }
}
