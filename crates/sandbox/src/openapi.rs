//! The sandbox's OpenAPI description, `GET /openapi.json`: generated from the handlers' `#[utoipa::path]`
//! attributes as the routers are built (`utoipa-axum`), covering every route a game or a studio backend calls
//! as it would call Amazon — Login with Amazon's token, code pair, profile and token info, Prime Gaming's
//! entitlements and fulfilment, the Moments Rewards API, the (sandbox-defined) DevPay license service — and the
//! health probes. The customer's pages and the `/admin` API are not in it.
//!
//! The token and code-pair endpoints read their forms field by field (unknown fields ignored, as RFC 6749
//! §3.2 asks), so their forms are described here by [`TokenForm`] and [`CodePairForm`].

use axum::Json;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Where the description is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// An RFC 6749 §5.2 refusal: `{"error": code, "error_description": words}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `invalid_token`, `invalid_grant`, `authorization_pending`, …
    pub error: String,
    /// In words (optional in LWA's answers).
    pub error_description: Option<String>,
}

/// A Moments Rewards API refusal: `{"error": code, "message": words}` (sandbox-defined).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MomentsError {
    /// `CampaignNotFound`, `BudgetExhausted`, `RateLimited`, …
    pub error: String,
    /// In words.
    pub message: String,
}

/// The token endpoint's form (LWA): which fields each grant reads.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `authorization_code`, `refresh_token` or `device_code`.
    #[schema(example = "refresh_token")]
    pub grant_type: String,
    /// Every grant but the device-code poll.
    pub client_id: Option<String>,
    /// A confidential client's secret.
    pub client_secret: Option<String>,
    /// `authorization_code`: the code.
    pub code: Option<String>,
    /// `authorization_code`: the PKCE verifier.
    pub code_verifier: Option<String>,
    /// `authorization_code`: the redirect the code was issued to.
    pub redirect_uri: Option<String>,
    /// `refresh_token`: the refresh token.
    pub refresh_token: Option<String>,
    /// `device_code`: the code pair's device code.
    pub device_code: Option<String>,
    /// `device_code`: the code pair's user code.
    pub user_code: Option<String>,
}

/// The code-pair request's form (LWA for devices).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct CodePairForm {
    /// `device_code`.
    #[schema(example = "device_code")]
    pub response_type: Option<String>,
    /// The security profile's client id.
    pub client_id: String,
    /// Space-separated scopes (`games::prime profile`).
    pub scope: Option<String>,
}

/// The routes' description, finished: title, security schemes, LWA's refusal shape where a route names none.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "bevy_amazon_rewards sandbox (the Amazon side)".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some("Amazon's shapes from the public record; sandbox-defined where it is silent.".into());
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
    components.add_security_scheme("lwa_token", SecurityScheme::Http(bearer));
    let header = |name: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(name)));
    components.add_security_scheme("amazon_access_token", header("x-amz-access-token"));
    components.add_security_scheme("moments_api_key", header(amazon_rewards_protocol::moments::API_KEY_HEADER));
    components.schemas.insert("ErrorBody".into(), <ErrorBody as utoipa::PartialSchema>::schema());
    amazon_rewards_protocol::openapi::with_refusals(doc, "ErrorBody", "Refused")
}

/// The route serving `doc`.
pub fn router<S: Clone + Send + Sync + 'static>(doc: OpenApi) -> axum::Router<S> {
    let doc = std::sync::Arc::new(doc);
    axum::Router::new().route(OPENAPI_PATH, get(move || async move { Json(doc.as_ref().clone()) }))
}
