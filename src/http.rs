//! The HTTP exchange with an entitlements service: one client with timeouts, bodies read with a size cap
//! (never buffered past it), content type and status mapped to [`ApiError`]. Runs on the background runtime.

use std::time::{Duration, SystemTime};

use amazon_rewards_protocol::prime_gaming::{
    ACCESS_TOKEN_HEADER, ENTITLEMENTS_PATH, Entitlement, EntitlementsPage, FULFILL_PATH, FulfillRequest,
    FulfillResponse, NEXT_TOKEN_QUERY,
};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A client for the Entitlements and Fulfill APIs.
#[derive(Clone)]
pub(crate) struct EntitlementsClient {
    http: reqwest::Client,
    base_url: String,
    max_response_bytes: usize,
    max_pages: usize,
}

impl EntitlementsClient {
    pub(crate) fn new(
        base_url: &str,
        timeout: Duration,
        max_response_bytes: usize,
        max_pages: usize,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // The access token travels in `x-amz-access-token`, which reqwest does not strip on a redirect to
            // another host: only same-origin redirects are followed, a few at most.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin =
                    attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
                if same_origin && attempt.previous().len() < 5 { attempt.follow() } else { attempt.stop() }
            }))
            .user_agent(concat!("bevy_amazon_rewards/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Network(e.to_string()))?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned(), max_response_bytes, max_pages })
    }

    /// The service's base URL, without a trailing slash.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The underlying client (timeouts set), for other calls to the same service.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Every entitlement, following pagination (optional on Prime Gaming's wire) to the end. The whole pull is
    /// held to `max_response_bytes` (not per page), and a server that hands out any earlier `NextToken` again
    /// (`A, B, A, …`) is refused rather than followed round the loop.
    pub(crate) async fn fetch_all(&self, access_token: &str) -> Result<Vec<Entitlement>, ApiError> {
        let mut all = Vec::new();
        let mut next_token: Option<String> = None;
        let mut seen_tokens = std::collections::HashSet::new();
        let mut budget = self.max_response_bytes;
        for _ in 0..self.max_pages {
            let mut request = self
                .http
                .get(format!("{}{ENTITLEMENTS_PATH}", self.base_url))
                .header(ACCESS_TOKEN_HEADER, access_token);
            if let Some(token) = &next_token {
                request = request.query(&[(NEXT_TOKEN_QUERY, token)]);
            }
            let (page, size): (EntitlementsPage, usize) = self.exchange_within(request, budget).await?;
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
            .http
            .post(format!("{}{FULFILL_PATH}", self.base_url))
            .header(ACCESS_TOKEN_HEADER, access_token)
            .json(request);
        self.exchange(request).await
    }

    pub(crate) async fn exchange<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ApiError> {
        self.exchange_within(request, self.max_response_bytes).await.map(|(answer, _)| answer)
    }

    /// Like [`exchange`](Self::exchange), with a body cap of `limit` bytes; also answers the body's size.
    async fn exchange_within<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<(T, usize), ApiError> {
        let mut response = request.send().await.map_err(map_transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| parse_retry_after(v.to_str().ok()?));
            let code = status.as_u16();
            if code == 429 || code == 503 {
                return Err(ApiError::RateLimited { retry_after });
            }
            let refusal = if status.is_client_error() { read_refusal(response).await } else { String::new() };
            return Err(classify_refusal(code, &refusal, retry_after));
        }
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnexpectedContentType(content_type));
        }
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(ApiError::TooLarge { limit: self.max_response_bytes });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_transport_error)? {
            if body.len() + chunk.len() > limit {
                return Err(ApiError::TooLarge { limit: self.max_response_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        let answer = serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(e.to_string()))?;
        Ok((answer, body.len()))
    }
}

/// Longest part of an error answer read to tell its kind.
const MAX_REFUSAL_BYTES: usize = 4096;

/// The start of an error answer's body (at most [`MAX_REFUSAL_BYTES`]); empty when it cannot be read.
async fn read_refusal(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_REFUSAL_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_REFUSAL_BYTES - body.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// What an error answer means, by Amazon's documented error process (`shared/WIRE.md`): "Not all
/// permissions are authorized" is a sign-in that lacked a scope; any other 400 or 401 may be an expired
/// token (Amazon answers those with 400), to be refreshed once; everything else is a request error.
pub(crate) fn classify_refusal(code: u16, body: &str, retry_after: Option<Duration>) -> ApiError {
    if body.contains("Not all permissions are authorized") {
        return ApiError::MissingPermissions;
    }
    match code {
        400 | 401 => ApiError::Unauthorized { status: code },
        code => ApiError::Status { status: code, retry_after },
    }
}

/// Why a body could not be read within its cap.
#[derive(Debug)]
pub(crate) enum CappedReadError {
    /// Longer than the cap (known from `Content-Length`, or found while streaming; never buffered past it).
    TooLarge,
    /// The connection failed.
    Network(String),
}

/// The whole body, read chunk by chunk and refused as soon as it passes `cap` bytes.
pub(crate) async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, CappedReadError> {
    if response.content_length().is_some_and(|length| length > cap as u64) {
        return Err(CappedReadError::TooLarge);
    }
    let mut body = Vec::new();
    let network = |e: reqwest::Error| CappedReadError::Network(e.without_url().to_string());
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > cap {
            return Err(CappedReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn map_transport_error(error: reqwest::Error) -> ApiError {
    if error.is_timeout() {
        ApiError::Timeout
    } else {
        // Only the error's kind and cause: reqwest's Display includes the URL, which carries no secret here,
        // but the access token travels in a header and is never part of it.
        ApiError::Network(error.without_url().to_string())
    }
}

/// `Retry-After`, bounded (see [`amazon_rewards_protocol::http::parse_retry_after`]).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    amazon_rewards_protocol::http::parse_retry_after(value, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        assert_eq!(classify_refusal(400, r#"{"error":"invalid_token"}"#, None), ApiError::Unauthorized { status: 400 });
        assert_eq!(classify_refusal(401, "", None), ApiError::Unauthorized { status: 401 });
        assert_eq!(classify_refusal(403, "forbidden", None), ApiError::Status { status: 403, retry_after: None });
        assert_eq!(classify_refusal(404, "", None), ApiError::Status { status: 404, retry_after: None });
        let missing = r#"{"message":"Not all permissions are authorized"}"#;
        assert_eq!(classify_refusal(403, missing, None), ApiError::MissingPermissions);
        assert_eq!(classify_refusal(400, missing, None), ApiError::MissingPermissions);
    }

    #[test]
    fn a_huge_retry_after_is_bounded() {
        use amazon_rewards_protocol::http::MAX_SERVER_DELAY;
        for huge in ["9999999999999999999", "99999999999999999999999", "86400", "Fri, 31 Dec 9999 23:59:59 GMT"] {
            assert_eq!(parse_retry_after(huge), Some(MAX_SERVER_DELAY), "{huge}");
        }
        // Bounded delays are safe to add to an instant.
        let _ = std::time::Instant::now() + parse_retry_after("9999999999999999999").unwrap();
    }
}
