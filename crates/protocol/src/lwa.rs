//! Login with Amazon (OAuth 2.0): endpoint paths, scopes, and the JSON bodies of the token, code-pair and
//! profile endpoints, as Amazon documents them (LWA's developer docs, "LWA for Devices" for code pairing;
//! `shared/WIRE.md`). Unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// Authorization endpoint (`GET`), on `www.amazon.com` in production.
pub const AUTHORIZE_PATH: &str = "/ap/oa";
/// Token endpoint (`POST`, form), on `api.amazon.com` in production.
pub const TOKEN_PATH: &str = "/auth/o2/token";
/// Device authorization ("code-based linking") endpoint (`POST`, form).
pub const CODEPAIR_PATH: &str = "/auth/o2/create/codepair";
/// Profile endpoint (`GET`, bearer token).
pub const PROFILE_PATH: &str = "/user/profile";
/// Token-information endpoint (`GET ?access_token=…`): whom an access token was issued to.
pub const TOKENINFO_PATH: &str = "/auth/o2/tokeninfo";
/// Scope Prime Gaming needs.
pub const SCOPE_PRIME_GAMING: &str = "games::prime";
/// Scope for the customer's profile (user id, name, email).
pub const SCOPE_PROFILE: &str = "profile";
/// `grant_type` Amazon documents for polling a device code ("grant_type REQUIRED. Must be device_code").
pub const DEVICE_CODE_GRANT: &str = "device_code";
/// `grant_type` RFC 8628 defines for the same. LWA refuses it (`unsupported_grant_type`), and so does the
/// sandbox; it is here only so tests can say so.
pub const DEVICE_CODE_GRANT_URN: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Production authorization page (`www.amazon.com`).
pub const PRODUCTION_AUTHORIZE_URL: &str = "https://www.amazon.com/ap/oa";
/// Production base of the token, code-pair, profile and tokeninfo endpoints (`api.amazon.com`).
pub const PRODUCTION_API_URL: &str = "https://api.amazon.com";
/// Longest token LWA issues.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// Successful token endpoint answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// `Atza|…`.
    pub access_token: String,
    /// `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// `Atzr|…`; a new one on every refresh (rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthErrorBody {
    /// `invalid_grant`, `invalid_client`, `invalid_request`, `unsupported_grant_type`, `authorization_pending`,
    /// `slow_down`, `expired_token`, `access_denied`, …
    pub error: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// Answer of the code-pair endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCodeResponse {
    /// Secret the device polls with.
    pub device_code: String,
    /// Short code the player types at `verification_uri`.
    pub user_code: String,
    /// Where the player types it.
    pub verification_uri: String,
    /// Seconds until both codes expire (600).
    pub expires_in: u64,
    /// Least seconds between polls (30).
    pub interval: u64,
}

/// Answer of the profile endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    /// `amzn1.account.…`: stable and unique per customer.
    pub user_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Email, when the scope allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Answer of the tokeninfo endpoint (LWA's docs: `iss`, `user_id`, `aud`, `app_id`, `exp`, `iat`). A server
/// that accepts players' access tokens must check `aud`: an access token is a bearer token any app holding it
/// can present ("the access token does not belong to us", in Amazon's samples).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// The client id the token was issued to.
    pub aud: String,
    /// The customer, `amzn1.account.…`.
    pub user_id: String,
    /// The application the client belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Seconds the token stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// When it was issued (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer (`https://www.amazon.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// Whether `verifier` is a valid PKCE code verifier: 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
///
/// ```
/// use amazon_rewards_protocol::lwa::is_valid_pkce_verifier;
/// assert!(is_valid_pkce_verifier(&"a".repeat(43)));
/// assert!(!is_valid_pkce_verifier(&"a".repeat(42)));
/// assert!(!is_valid_pkce_verifier(&format!("{}+", "a".repeat(43))));
/// ```
pub fn is_valid_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
