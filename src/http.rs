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

    /// Every entitlement, following pagination to the end.
    pub(crate) async fn fetch_all(&self, access_token: &str) -> Result<Vec<Entitlement>, ApiError> {
        let mut all = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..self.max_pages {
            let mut request = self
                .http
                .get(format!("{}{ENTITLEMENTS_PATH}", self.base_url))
                .header(ACCESS_TOKEN_HEADER, access_token);
            if let Some(token) = &next_token {
                request = request.query(&[(NEXT_TOKEN_QUERY, token)]);
            }
            let page: EntitlementsPage = self.exchange(request).await?;
            all.extend(page.entitlements);
            match page.next_token {
                Some(token) if Some(&token) == next_token.as_ref() => {
                    return Err(ApiError::Pagination("the server repeated its nextToken".into()));
                }
                Some(token) if !token.is_empty() => next_token = Some(token),
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
        let mut response = request.send().await.map_err(map_transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| parse_retry_after(v.to_str().ok()?));
            return Err(match status.as_u16() {
                429 | 503 => ApiError::RateLimited { retry_after },
                code @ (400 | 401 | 403) => ApiError::Unauthorized { status: code },
                code => ApiError::Status { status: code, retry_after },
            });
        }
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnexpectedContentType(content_type));
        }
        if response.content_length().is_some_and(|len| len > self.max_response_bytes as u64) {
            return Err(ApiError::TooLarge { limit: self.max_response_bytes });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_transport_error)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(ApiError::TooLarge { limit: self.max_response_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(e.to_string()))
    }
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

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(61));
        let parsed = parse_retry_after(&in_a_minute).unwrap();
        assert!(parsed > Duration::from_secs(55) && parsed <= Duration::from_secs(61), "{parsed:?}");
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
