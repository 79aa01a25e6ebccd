//! The backend's OpenAPI description, `GET /openapi.json`: generated from the handlers' `#[utoipa::path]`
//! attributes while each service's router is built (`utoipa-axum`'s `routes!` registers a handler and describes
//! it in one step, so a described route is a served one and the description lists exactly the services this
//! backend was started with). It covers every route a game or Amazon calls, and the pages a player's browser
//! is sent to (linking, the new-account page, the DevPay sign-up return); the operator listener is not in it.
//!
//! Every game route answers its refusals with [`ErrorBody`] (`4XX`, added to each operation here rather than
//! repeated on every handler); the Instant Access routes take Amazon's DTA1 signature ([`DTA1`]).

use axum::Json;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Where the description is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Security scheme of the game routes: the studio session a linked game holds (`Authorization: Bearer rs_at.…`).
pub const SESSION: &str = "session";
/// Security scheme of the Instant Access routes: Amazon's `Authorization: DTA1-HMAC-SHA256 …` over the exact
/// body, with `x-amz-date` (see `amazon_rewards_protocol::dta1`).
pub const DTA1: &str = "dta1";
/// Security scheme of server-reported competition scores: the game server's own bearer token.
pub const GAME_SERVER: &str = "game_server";

/// A refusal: `{"error": code, "error_description": words}` (RFC 6749 §5.2's shape, used by every route).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A code the game can act on (`invalid_token`, `no_game_account`, `insufficient`, …).
    pub error: String,
    /// What went wrong, in words.
    pub error_description: String,
}

/// The service routes' description, finished: title, security schemes, the shared error answer, and the path
/// prefix a proxy in front of the backend strips (`--public-path-prefix`) as its server URL.
pub fn finish(mut doc: OpenApi, public_path_prefix: &str) -> OpenApi {
    if !public_path_prefix.is_empty() {
        doc.servers = Some(vec![utoipa::openapi::Server::new(public_path_prefix)]);
    }
    doc.info.title = "bevy_amazon_rewards studio backend".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description =
        Some("Routes a game or Amazon calls. Sandbox-defined where Amazon's record is silent.".into());
    let components = doc.components.get_or_insert_with(Default::default);
    let session = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("rs_at.…").build();
    components.add_security_scheme(SESSION, SecurityScheme::Http(session));
    let server = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
    components.add_security_scheme(GAME_SERVER, SecurityScheme::Http(server));
    let dta1 = ApiKeyValue::with_description("Authorization", "DTA1-HMAC-SHA256 over the body, with x-amz-date");
    components.add_security_scheme(DTA1, SecurityScheme::ApiKey(ApiKey::Header(dta1)));
    components.schemas.insert("ErrorBody".into(), <ErrorBody as utoipa::PartialSchema>::schema());
    let refused = "Refused: the request, its credential or the player's state";
    amazon_rewards_protocol::openapi::with_refusals(doc, "ErrorBody", refused)
}

/// The route serving `doc`.
pub fn router(doc: OpenApi) -> axum::Router {
    let doc = std::sync::Arc::new(doc);
    axum::Router::new().route(OPENAPI_PATH, get(move || async move { Json(doc.as_ref().clone()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_gets_the_shared_refusal_unless_it_describes_its_own() {
        let doc = serde_json::to_value(finish(crate::instant_access::router().into_openapi(), "/game")).unwrap();
        assert_eq!(doc["servers"][0]["url"], "/game");
        let linking = &doc["paths"]["/instant-access/linking"]["post"];
        assert_eq!(
            linking["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert_eq!(linking["security"][0][DTA1], serde_json::json!([]));
        for scheme in [SESSION, DTA1, GAME_SERVER] {
            assert!(doc["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
        }
    }
}
