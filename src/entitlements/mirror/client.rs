//! The studio backend's inventory API (`amazon_rewards_protocol::inventory`) over the shared [`ApiClient`]: a
//! sync answered `304` when nothing changed, spends with their `409`, and history pages.

use amazon_rewards_protocol::inventory::{
    HISTORY_PATH, HistoryPage, SPEND_PATH, SYNC_PATH, Snapshot, SpendRefused, SpendRequest, SyncAnswer, etag,
};
use reqwest::header::{AUTHORIZATION, IF_NONE_MATCH};

use crate::core::http::{ApiClient, BackendAnswer};
use crate::error::ApiError;

/// Most history lines asked for in one page.
pub(crate) const HISTORY_PAGE: u32 = 50;

/// A client for one backend's inventory routes.
#[derive(Clone)]
pub(crate) struct MirrorClient {
    api: ApiClient,
    base_url: String,
}

impl MirrorClient {
    pub(crate) fn new(api: ApiClient, base_url: &str) -> Self {
        Self { api, base_url: base_url.trim_end_matches('/').to_owned() }
    }

    fn post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.api.http().post(format!("{}{path}", self.base_url)).header(AUTHORIZATION, format!("Bearer {token}"))
    }

    /// Asks the backend to pull Amazon for the player, then for the changes after `since`: `None` when the
    /// inventory is still at `since` (`304`).
    pub(crate) async fn sync(&self, token: &str, since: i64) -> Result<Option<SyncAnswer>, ApiError> {
        let request = self.post(SYNC_PATH, token).query(&[("since", since)]).header(IF_NONE_MATCH, etag(since));
        match self.api.exchange_with_backend_or::<SyncAnswer, SyncAnswer>(request, 0).await? {
            BackendAnswer::Success(answer) => Ok(Some(answer)),
            BackendAnswer::NotModified => Ok(None),
            BackendAnswer::Other(_) => Err(ApiError::Malformed("unexpected status".into())),
        }
    }

    /// Spends: the new snapshot, or what was short (`409`).
    pub(crate) async fn spend(
        &self,
        token: &str,
        spend: &SpendRequest,
    ) -> Result<Result<Snapshot, SpendRefused>, ApiError> {
        let request = self.post(SPEND_PATH, token).json(spend);
        match self.api.exchange_with_backend_or::<Snapshot, SpendRefused>(request, 409).await? {
            BackendAnswer::Success(snapshot) => Ok(Ok(snapshot)),
            BackendAnswer::Other(refused) => Ok(Err(refused)),
            BackendAnswer::NotModified => Err(ApiError::Malformed("a spend answered 304".into())),
        }
    }

    /// One page of history, newest first, before version `before` (from the newest when `None`).
    pub(crate) async fn history(&self, token: &str, before: Option<i64>) -> Result<HistoryPage, ApiError> {
        let mut request = self
            .api
            .http()
            .get(format!("{}{HISTORY_PATH}", self.base_url))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .query(&[("limit", HISTORY_PAGE)]);
        if let Some(before) = before {
            request = request.query(&[("before", before)]);
        }
        self.api.exchange_with_backend(request).await
    }
}
