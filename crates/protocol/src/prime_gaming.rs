//! Prime Gaming "pull integration": the Entitlements and Fulfill APIs.
//!
//! Sources: Amazon's pull-integration pages describe the flow (pull entitlements, grant, report fulfilment,
//! "send a response for each item as soon as the action is completed; avoid batching"); the paths, the header
//! and every field name come from the only public wire-level source, a shipped PC game's client, which talks to
//! [`PRODUCTION_BASE_URL`] (see `shared/WIRE.md`). Unknown fields are ignored everywhere.
//!
//! Not in the public record, and so marked where they appear: pagination (`nextToken` / `NextToken`, followed
//! when present, sandbox-defined); the `REVOKE` instruction and `Source` / `ActiveUntil` fields of the studio
//! backend's own feed (studio-defined); the `Reason` of an `ERROR` result (sandbox-defined).

use serde::{Deserialize, Serialize};

/// Where Prime Gaming's Entitlements and Fulfill APIs live (the shipped client's base URL).
pub const PRODUCTION_BASE_URL: &str = "https://twitch.amazon.com";
/// The `FulfillmentAddress` the shipped client sends. Its meaning is not documented; it is the known-good
/// value for "where the item went", so it is the default.
pub const DEFAULT_FULFILLMENT_ADDRESS: &str = "Player";
/// Path of the Entitlements API (`GET`).
pub const ENTITLEMENTS_PATH: &str = "/api/entitlements";
/// Path of the Fulfill API (`POST`).
pub const FULFILL_PATH: &str = "/api/fulfill";
/// Header carrying the player's Login with Amazon access token.
pub const ACCESS_TOKEN_HEADER: &str = "x-amz-access-token";
/// Query parameter continuing a paginated entitlements listing (sandbox-defined).
pub const NEXT_TOKEN_QUERY: &str = "nextToken";
/// Longest SKU (`VendorProductId`) accepted.
pub const MAX_SKU_LEN: usize = 128;

/// What the game should do with an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextInstruction {
    /// Grant the item, then report it fulfilled.
    Fulfill,
    /// Not explained publicly: deliver nothing, report nothing, and do not read its absence from a later
    /// answer as a revocation.
    Noop,
    /// Take the item back (refund, payment problem, ended subscription), then report the revocation.
    /// Studio-defined: served by the studio backend's feed only; the public Prime Gaming wire has no
    /// revocation.
    Revoke,
    /// An instruction this version does not know; the entitlement is left alone.
    #[serde(other)]
    Unknown,
}

/// One entitlement: proof that a customer is owed a digital good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Entitlement {
    /// Unique, stable identifier of this entitlement; the unit of exactly-once fulfilment.
    pub entitlement_id: String,
    /// The SKU of the offer, as registered by the vendor. See [`is_valid_sku`].
    pub vendor_product_id: String,
    /// What to do with it.
    pub next_instruction: NextInstruction,
    /// Where it comes from, in the studio backend's feed (`PRIME_GAMING`, `INSTANT_ACCESS`, `SUBSCRIPTION`);
    /// absent from Prime Gaming's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For a time-bounded entitlement (a subscription's perks), the day it runs out unless renewed, as an
    /// ISO 8601 date, as it stood when served; a `REVOKE` follows when it ends. Studio-backend-defined; absent
    /// from Prime Gaming's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_until: Option<String>,
}

/// A page of the Entitlements API response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct EntitlementsPage {
    /// Entitlements on this page.
    #[serde(default)]
    pub entitlements: Vec<Entitlement>,
    /// Present when more pages follow: pass it back as the `nextToken` query parameter (sandbox-defined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// What the game did with an entitlement, as reported in `LastInstruction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LastInstruction {
    /// The good was delivered to the player (the shipped client's only value).
    Fulfill,
    /// The good was taken back after a `REVOKE` instruction. Studio-defined: sent to the studio backend's
    /// feed only, never to Prime Gaming.
    Revoke,
}

/// One line of a Fulfill API request:
/// `{"EntitlementId":"…","LastInstruction":"FULFILL","FulfillmentAddress":"Player"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct FulfillmentStatusUpdate {
    /// The entitlement being reported.
    pub entitlement_id: String,
    /// What was done with it.
    pub last_instruction: LastInstruction,
    /// A stable, non-secret description of where the item went; see [`DEFAULT_FULFILLMENT_ADDRESS`].
    pub fulfillment_address: String,
}

/// Body of a Fulfill API request (`POST`, `application/json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct FulfillRequest {
    /// One update per entitlement.
    pub fulfillment_status_updates: Vec<FulfillmentStatusUpdate>,
}

/// Per-entitlement outcome of a Fulfill API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillResult {
    /// Recorded. Reporting an already-fulfilled entitlement again also answers `SUCCESS`.
    Success,
    /// Not recorded: report it again later.
    Error,
    /// A result this version does not know: treated as not recorded.
    #[serde(other)]
    Unknown,
}

/// One line of a Fulfill API response: `{"EntitlementId":"…","Result":"SUCCESS"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct FulfillmentStatusUpdateResult {
    /// The entitlement this line answers.
    pub entitlement_id: String,
    /// Whether the report was recorded.
    pub result: FulfillResult,
    /// Why it was not, when `result` is `ERROR` (sandbox-defined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of a Fulfill API response. The shipped client reads the per-entitlement results under the key
/// `FulfillmentStatusUpdates`, the same key as the request's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct FulfillResponse {
    /// One line per requested update. An id left out was not recorded.
    #[serde(default)]
    pub fulfillment_status_updates: Vec<FulfillmentStatusUpdateResult>,
}

/// Whether `sku` is a valid `VendorProductId`: 1..=128 ASCII alphanumerics and `- _ : .`.
///
/// ```
/// use amazon_rewards_protocol::prime_gaming::is_valid_sku;
/// assert!(is_valid_sku("gold-pack_01:eu.v2"));
/// assert!(!is_valid_sku("gold pack"));
/// assert!(!is_valid_sku(""));
/// ```
pub fn is_valid_sku(sku: &str) -> bool {
    !sku.is_empty()
        && sku.len() <= MAX_SKU_LEN
        && sku.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entitlements_page_reads_the_documented_shape() {
        let body = r#"{"Entitlements":[{"EntitlementId":"e1","VendorProductId":"gold","NextInstruction":"FULFILL","Extra":1},
                       {"EntitlementId":"e2","VendorProductId":"gem","NextInstruction":"SOMETHING_NEW"}]}"#;
        let page: EntitlementsPage = serde_json::from_str(body).unwrap();
        assert_eq!(page.entitlements.len(), 2);
        assert_eq!(page.entitlements[0].next_instruction, NextInstruction::Fulfill);
        assert_eq!(page.entitlements[1].next_instruction, NextInstruction::Unknown);
        assert_eq!(page.next_token, None);
    }

    #[test]
    fn fulfill_request_has_the_shipped_clients_shape() {
        let request = FulfillRequest {
            fulfillment_status_updates: vec![FulfillmentStatusUpdate {
                entitlement_id: "e1".into(),
                last_instruction: LastInstruction::Fulfill,
                fulfillment_address: DEFAULT_FULFILLMENT_ADDRESS.into(),
            }],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"FulfillmentStatusUpdates":[{"EntitlementId":"e1","LastInstruction":"FULFILL","FulfillmentAddress":"Player"}]}"#
        );
        assert_eq!(serde_json::from_str::<FulfillRequest>(&json).unwrap(), request);
        // The old, invented shape is not a Fulfill request.
        let old = r#"{"FulfillmentStatusUpdates":[{"EntitlementId":"e1","LastInstruction":"FULFILLED"}]}"#;
        assert!(serde_json::from_str::<FulfillRequest>(old).is_err());
    }

    #[test]
    fn fulfill_response_is_read_under_fulfillment_status_updates() {
        let body = r#"{"FulfillmentStatusUpdates":[{"EntitlementId":"e1","Result":"SUCCESS"},
                       {"EntitlementId":"e2","Result":"ERROR"},{"EntitlementId":"e3","Result":"LATER","X":1}]}"#;
        let response: FulfillResponse = serde_json::from_str(body).unwrap();
        let results: Vec<_> = response.fulfillment_status_updates.iter().map(|r| r.result).collect();
        assert_eq!(results, [FulfillResult::Success, FulfillResult::Error, FulfillResult::Unknown]);
        assert_eq!(serde_json::from_str::<FulfillResponse>("{}").unwrap(), FulfillResponse::default());
    }

    #[test]
    fn sku_rules() {
        assert!(is_valid_sku("A-b_c:d.9"));
        assert!(!is_valid_sku("a/b"));
        assert!(!is_valid_sku("é"));
        assert!(!is_valid_sku(&"a".repeat(MAX_SKU_LEN + 1)));
    }
}
