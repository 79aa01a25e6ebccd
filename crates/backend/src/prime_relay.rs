//! Prime Gaming, relayed server-side: with the refresh token it keeps for a player (from the new-account
//! page), the backend pulls the player's Prime Gaming entitlements itself and reports their fulfilment, so the
//! game sees one feed. Access tokens are cached until shortly before they expire; refresh tokens are rotated
//! and the new one stored at once.

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

/// The relay: Prime Gaming's base URL, the backend's LWA client, and cached access tokens per player.
pub struct PrimeRelay {
    base_url: String,
    lwa: Arc<LwaClient>,
    http: reqwest::Client,
    token_key: Option<Arc<crate::sealed::TokenKey>>,
    access: Mutex<HashMap<String, (String, Instant)>>,
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
        }
    }

    /// An access token for `user_id`, refreshing (and storing the rotated refresh token) when needed.
    /// `None` when the player never gave the backend a refresh token, or it no longer works.
    async fn access_token(&self, pool: &AnyPool, user_id: &str) -> Result<Option<String>, String> {
        if let Some((token, until)) = self.access.lock().await.get(user_id)
            && Instant::now() < *until
        {
            return Ok(Some(token.clone()));
        }
        let stored: Option<String> = sqlx::query_scalar("SELECT refresh_token FROM lwa_tokens WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let refresh = match crate::sealed::open(self.token_key.as_deref(), user_id, &stored) {
            Ok(refresh) => refresh,
            Err(error) => {
                // Kept, not deleted: the right key may yet be configured.
                tracing::warn!(user_id, %error, "Prime Gaming relay: stored refresh token unusable; not relaying");
                return Ok(None);
            }
        };
        let client = oauth_client(&self.lwa)?;
        let token = match client.exchange_refresh_token(&RefreshToken::new(refresh)).request_async(&self.http).await {
            Ok(token) => token,
            Err(oauth2::RequestTokenError::ServerResponse(_)) => {
                // The player revoked the backend's access, or the token is dead: stop relaying for them.
                let _ = sqlx::query("DELETE FROM lwa_tokens WHERE user_id = $1").bind(user_id).execute(pool).await;
                tracing::warn!(user_id, "Prime Gaming relay: refresh token refused; relay stopped for this player");
                return Ok(None);
            }
            Err(error) => return Err(format!("refresh failed: {error}")),
        };
        if let Some(rotated) = token.refresh_token() {
            sqlx::query("UPDATE lwa_tokens SET refresh_token = $1, updated_at = $2 WHERE user_id = $3")
                .bind(crate::sealed::seal(self.token_key.as_deref(), user_id, rotated.secret()))
                .bind(crate::now_secs())
                .bind(user_id)
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?;
        }
        let lifetime = token.expires_in().unwrap_or(Duration::from_secs(3600));
        let access = token.access_token().secret().clone();
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(300));
        self.access.lock().await.insert(user_id.to_owned(), (access.clone(), until));
        Ok(Some(access))
    }

    /// The player's Prime Gaming entitlements, ids prefixed with [`ID_PREFIX`].
    pub async fn entitlements(&self, pool: &AnyPool, user_id: &str) -> Result<Vec<Entitlement>, String> {
        let Some(token) = self.access_token(pool, user_id).await? else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request =
                self.http.get(format!("{}{ENTITLEMENTS_PATH}", self.base_url)).header(ACCESS_TOKEN_HEADER, &token);
            if let Some(next) = &next {
                request = request.query(&[(NEXT_TOKEN_QUERY, next)]);
            }
            let response = request.send().await.map_err(|e| e.without_url().to_string())?;
            if !response.status().is_success() {
                self.access.lock().await.remove(user_id);
                return Err(format!("Prime Gaming answered HTTP {}", response.status().as_u16()));
            }
            let page: EntitlementsPage = response.json().await.map_err(|e| e.to_string())?;
            all.extend(page.entitlements.into_iter().map(|mut e| {
                e.entitlement_id = format!("{ID_PREFIX}{}", e.entitlement_id);
                e.source = Some(SOURCE_PRIME_GAMING.into());
                e
            }));
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(all),
            }
        }
        Err("Prime Gaming pagination did not end".into())
    }

    /// Relays fulfilment reports (ids without the prefix) to Prime Gaming.
    pub async fn fulfill(
        &self,
        pool: &AnyPool,
        user_id: &str,
        request: &FulfillRequest,
    ) -> Result<FulfillResponse, String> {
        let token = self.access_token(pool, user_id).await?.ok_or("no Prime Gaming access for this player")?;
        let response = self
            .http
            .post(format!("{}{FULFILL_PATH}", self.base_url))
            .header(ACCESS_TOKEN_HEADER, token)
            .json(request)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("Prime Gaming answered HTTP {}", response.status().as_u16()));
        }
        response.json().await.map_err(|e| e.to_string())
    }
}
