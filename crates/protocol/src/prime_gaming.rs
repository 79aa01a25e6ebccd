//! Prime Gaming "pull integration": the Entitlements and Fulfill APIs.
//!
//! Amazon's official pages describe the flow (pull entitlements, grant, report fulfilment with "one more
//! API call"); the paths and field names below come from an unofficial client and are provisional, which is
//! why every one of them lives here and nowhere else.
//!
//! Pagination (`nextToken` query parameter, `NextToken` response field) is sandbox-defined.

use serde::{Deserialize, Serialize};

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
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextInstruction {
    /// Grant the item, then report it fulfilled.
    Fulfill,
    /// Nothing to do (already fulfilled).
    Noop,
    /// Take the item back (refund, payment problem, ended subscription), then report the revocation.
    /// Served by the studio backend's feed, not by Prime Gaming itself.
    Revoke,
    /// An instruction this version does not know; the entitlement is left alone.
    #[serde(other)]
    Unknown,
}

/// One entitlement: proof that a customer is owed a digital good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(rename_all = "PascalCase")]
pub struct EntitlementsPage {
    /// Entitlements on this page.
    #[serde(default)]
    pub entitlements: Vec<Entitlement>,
    /// Present when more pages follow: pass it back as the `nextToken` query parameter (sandbox-defined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Status reported for an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillmentStatus {
    /// The good was delivered to the player.
    Fulfilled,
    /// The good was taken back after a `REVOKE` instruction.
    Revoked,
}

/// One line of a Fulfill API request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FulfillmentStatusUpdate {
    /// The entitlement being reported.
    pub entitlement_id: String,
    /// What happened to it.
    pub fulfillment_status: FulfillmentStatus,
}

/// Body of a Fulfill API request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FulfillRequest {
    /// One update per entitlement.
    pub fulfillment_status_updates: Vec<FulfillmentStatusUpdate>,
}

/// Per-entitlement outcome of a Fulfill API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillResult {
    /// Recorded. Reporting an already-fulfilled entitlement again also answers `SUCCESS`.
    Success,
    /// Not recorded; see the reason.
    Error,
}

/// One line of a Fulfill API response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FulfillmentStatusUpdateResult {
    /// The entitlement this line answers.
    pub entitlement_id: String,
    /// Whether the report was recorded.
    pub result: FulfillResult,
    /// Why it was not, when `result` is `ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of a Fulfill API response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FulfillResponse {
    /// One line per requested update, in request order.
    pub fulfillment_status_update_results: Vec<FulfillmentStatusUpdateResult>,
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
    fn fulfill_request_round_trips_with_pascal_case_fields() {
        let request = FulfillRequest {
            fulfillment_status_updates: vec![FulfillmentStatusUpdate {
                entitlement_id: "e1".into(),
                fulfillment_status: FulfillmentStatus::Fulfilled,
            }],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"FulfillmentStatusUpdates":[{"EntitlementId":"e1","FulfillmentStatus":"FULFILLED"}]}"#);
        assert_eq!(serde_json::from_str::<FulfillRequest>(&json).unwrap(), request);
    }

    #[test]
    fn sku_rules() {
        assert!(is_valid_sku("A-b_c:d.9"));
        assert!(!is_valid_sku("a/b"));
        assert!(!is_valid_sku("é"));
        assert!(!is_valid_sku(&"a".repeat(MAX_SKU_LEN + 1)));
    }
}
