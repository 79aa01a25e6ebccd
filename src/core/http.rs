//! The HTTP exchange with every service (Prime Gaming, Login with Amazon, the studio backend): one client with
//! timeouts, bodies read with a size cap (never buffered past it), content type and status mapped to
//! [`ApiError`]. Runs on the background runtime.

use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The one HTTP client every service's calls go through: one connection pool, the request timeout, a body
/// cap, same-origin redirects only, and every failure as an [`ApiError`].
#[derive(bevy::prelude::Resource, Clone)]
pub(crate) struct ApiClient {
    http: reqwest::Client,
    max_response_bytes: usize,
    /// What the services' answers said about their environment (see [`Environment`]), last answer wins.
    environment: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// Which kind of service answered: a sandbox marks every answer (`x-amazon-rewards-environment: sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// No answer yet.
    Unknown,
    /// Answers without the sandbox mark (production Amazon, or a backend not in sandbox mode).
    Production,
    /// Answers from a sandbox.
    Sandbox,
}

impl ApiClient {
    pub(crate) fn new(timeout: Duration, max_response_bytes: usize) -> Result<Self, ApiError> {
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
        Ok(Self { http, max_response_bytes, environment: Default::default() })
    }

    /// The underlying client, to build requests (and for the OAuth client of the login).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// What the last answer said about its environment.
    pub(crate) fn environment(&self) -> Environment {
        match self.environment.load(std::sync::atomic::Ordering::Relaxed) {
            1 => Environment::Production,
            2 => Environment::Sandbox,
            _ => Environment::Unknown,
        }
    }

    fn note_environment(&self, response: &reqwest::Response) {
        let header = response.headers().get(amazon_rewards_protocol::http::ENVIRONMENT_HEADER);
        let sandbox =
            header.is_some_and(|v| v.as_bytes() == amazon_rewards_protocol::http::SANDBOX_ENVIRONMENT.as_bytes());
        self.environment.store(if sandbox { 2 } else { 1 }, std::sync::atomic::Ordering::Relaxed);
    }

    /// The largest body read.
    pub(crate) fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Sends `request` and reads its JSON answer, by Amazon's rules (a 400 or 401 may be an expired token).
    pub(crate) async fn exchange<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ApiError> {
        self.exchange_within(request, self.max_response_bytes).await.map(|(answer, _)| answer)
    }

    /// Like [`exchange_within`](Self::exchange_within), with `limit` as the body cap.
    pub(crate) async fn exchange_within<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<(T, usize), ApiError> {
        self.exchange_by(request, limit, classify_refusal).await
    }

    /// Like [`exchange`](Self::exchange) against the studio backend's own routes: a 401 is a refused token,
    /// any other 4xx is refused with the backend's error code (`{"error": "…"}`).
    pub(crate) async fn exchange_with_backend<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let (answer, _) = self.exchange_by(request, self.max_response_bytes, classify_backend_refusal).await?;
        Ok(answer)
    }

    /// Sends `request`; a refusal is judged by `classify`, a success read within `limit` bytes (the answer and
    /// the body's size).
    async fn exchange_by<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        limit: usize,
        classify: fn(u16, &str, Option<Duration>) -> ApiError,
    ) -> Result<(T, usize), ApiError> {
        let response = request.send().await.map_err(map_transport_error)?;
        self.note_environment(&response);
        let status = response.status();
        if !status.is_success() {
            return Err(refusal(response, classify).await);
        }
        self.read_json(response, limit).await
    }

    /// Against the studio backend: a success read as `T`, `304` as [`BackendAnswer::NotModified`], the status
    /// `expected` (e.g. a spend's `409`) read as `E`, anything else refused as by
    /// [`exchange_with_backend`](Self::exchange_with_backend).
    pub(crate) async fn exchange_with_backend_or<T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        expected: u16,
    ) -> Result<BackendAnswer<T, E>, ApiError> {
        let response = request.send().await.map_err(map_transport_error)?;
        self.note_environment(&response);
        let status = response.status().as_u16();
        if status == 304 {
            return Ok(BackendAnswer::NotModified);
        }
        if status == expected {
            let (other, _) = self.read_json(response, self.max_response_bytes).await?;
            return Ok(BackendAnswer::Other(other));
        }
        if !response.status().is_success() {
            return Err(refusal(response, classify_backend_refusal).await);
        }
        let (answer, _) = self.read_json(response, self.max_response_bytes).await?;
        Ok(BackendAnswer::Success(answer))
    }

    /// A JSON body within `limit` bytes (the answer and its size), by its `Content-Type`.
    async fn read_json<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<(T, usize), ApiError> {
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnexpectedContentType(content_type));
        }
        let body = read_capped(response, limit).await.map_err(|error| match error {
            CappedReadError::TooLarge => ApiError::TooLarge { limit: self.max_response_bytes },
            CappedReadError::Network(error) => ApiError::Network(error),
        })?;
        let answer = serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(e.to_string()))?;
        Ok((answer, body.len()))
    }
}

/// What the studio backend answered (see [`ApiClient::exchange_with_backend_or`]).
pub(crate) enum BackendAnswer<T, E> {
    /// A `2xx` answer.
    Success(T),
    /// `304`: what the game holds is current.
    NotModified,
    /// The expected non-success status, with its body.
    Other(E),
}

/// What a non-success answer means.
async fn refusal(response: reqwest::Response, classify: fn(u16, &str, Option<Duration>) -> ApiError) -> ApiError {
    let status = response.status();
    let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| parse_retry_after(v.to_str().ok()?));
    let code = status.as_u16();
    if code == 429 || code == 503 {
        return ApiError::RateLimited { retry_after };
    }
    let body = if status.is_client_error() { read_refusal(response).await } else { String::new() };
    classify(code, &body, retry_after)
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

/// What a studio-backend refusal means (its own routes, not the ones it relays from Amazon): a 401 is a
/// refused token, a 404 an unknown route or thing, any other 4xx carries the backend's error code
/// (`{"error": "InvalidActivationKey"}`, bounded and printable) when it names one.
fn classify_backend_refusal(code: u16, body: &str, retry_after: Option<Duration>) -> ApiError {
    let named = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|value| {
        let error = value.get("error")?.as_str()?;
        let printable = !error.is_empty() && error.len() <= 128 && error.chars().all(|c| c.is_ascii_graphic());
        printable.then(|| error.to_owned())
    });
    match (code, named) {
        (401, _) => ApiError::Unauthorized { status: code },
        (404, _) => ApiError::Status { status: code, retry_after },
        (400..=499, Some(error)) => ApiError::Refused { status: code, error },
        (code, _) => ApiError::Status { status: code, retry_after },
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
    fn the_backend_names_its_refusals() {
        let refused = |body| classify_backend_refusal(400, body, None);
        assert_eq!(
            refused(r#"{"error":"InvalidActivationKey"}"#),
            ApiError::Refused { status: 400, error: "InvalidActivationKey".into() }
        );
        assert_eq!(refused("not json"), ApiError::Status { status: 400, retry_after: None });
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(200));
        assert_eq!(refused(&long), ApiError::Status { status: 400, retry_after: None }, "unbounded codes are dropped");
        assert_eq!(classify_backend_refusal(401, "{}", None), ApiError::Unauthorized { status: 401 });
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
