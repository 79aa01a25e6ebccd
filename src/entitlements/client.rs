//! The Entitlements and Fulfill APIs of Prime Gaming (or the studio backend relaying them), over the shared
//! [`ApiClient`]: every page of a pull within one byte budget, and fulfilment reports.

use amazon_rewards_protocol::prime_gaming::{
    ACCESS_TOKEN_HEADER, ENTITLEMENTS_PATH, Entitlement, EntitlementsPage, FULFILL_PATH, FulfillRequest,
    FulfillResponse, NEXT_TOKEN_QUERY,
};

use crate::core::http::ApiClient;
use crate::error::ApiError;

/// A client for the Entitlements and Fulfill APIs at one base URL.
#[derive(Clone)]
pub(crate) struct EntitlementsClient {
    api: ApiClient,
    base_url: String,
    max_pages: usize,
}

impl EntitlementsClient {
    pub(crate) fn new(api: ApiClient, base_url: &str, max_pages: usize) -> Self {
        Self { api, base_url: base_url.trim_end_matches('/').to_owned(), max_pages }
    }

    /// Every entitlement, following pagination (optional on Prime Gaming's wire) to the end. The whole pull is
    /// held to `max_response_bytes` (not per page), and a server that hands out any earlier `NextToken` again
    /// (`A, B, A, …`) is refused rather than followed round the loop.
    pub(crate) async fn fetch_all(&self, access_token: &str) -> Result<Vec<Entitlement>, ApiError> {
        let mut all = Vec::new();
        let mut next_token: Option<String> = None;
        let mut seen_tokens = std::collections::HashSet::new();
        let mut budget = self.api.max_response_bytes();
        for _ in 0..self.max_pages {
            let mut request = self
                .api
                .http()
                .get(format!("{}{ENTITLEMENTS_PATH}", self.base_url))
                .header(ACCESS_TOKEN_HEADER, access_token);
            if let Some(token) = &next_token {
                request = request.query(&[(NEXT_TOKEN_QUERY, token)]);
            }
            let (page, size): (EntitlementsPage, usize) = self.api.exchange_within(request, budget).await?;
            budget -= size;
            all.extend(page.entitlements);
            match page.next_token {
                Some(token) if !token.is_empty() => {
                    if !seen_tokens.insert(token.clone()) {
                        return Err(ApiError::Pagination("the server repeated a nextToken".into()));
                    }
                    next_token = Some(token);
                }
                _ => return Ok(all),
            }
        }
        Err(ApiError::Pagination(format!("more than {} pages", self.max_pages)))
    }

    /// Reports entitlements fulfilled.
    pub(crate) async fn fulfill(
        &self,
        access_token: &str,
        request: &FulfillRequest,
    ) -> Result<FulfillResponse, ApiError> {
        let request = self
            .api
            .http()
            .post(format!("{}{FULFILL_PATH}", self.base_url))
            .header(ACCESS_TOKEN_HEADER, access_token)
            .json(request);
        self.api.exchange(request).await
    }
}
