//! The studio backend's inventory API (sandbox-defined: Amazon has no such API; the studio backend owns it), shared
//! by the backend that serves it and the game plugin that mirrors it: the snapshot, its change list, spends and
//! the paged history. Every route takes the player's studio session (`Authorization: Bearer rs_at.…`).

use serde::{Deserialize, Serialize};

use crate::catalog::ItemStack;

/// `GET`: the snapshot (`?since=N` adds the changes after version `N`); `If-None-Match: "vN"` → `304`.
pub const INVENTORY_PATH: &str = "/api/inventory";
/// `POST` a [`SpendRequest`] → `200` [`Snapshot`] or `409` [`SpendRefused`].
pub const SPEND_PATH: &str = "/api/inventory/spend";
/// `POST` (`?since=N`): pull what Amazon has for the player (Prime Gaming; paced per player on the backend),
/// then answer a [`SyncAnswer`].
pub const SYNC_PATH: &str = "/api/inventory/sync";
/// `GET` (`?before=V&limit=N`): a [`HistoryPage`], newest first.
pub const HISTORY_PATH: &str = "/api/inventory/history";
/// Most changes one answer lists; the snapshot is whole either way.
pub const MAX_CHANGES_PER_ANSWER: usize = 500;
/// Most item lines in one spend.
pub const MAX_SPEND_LINES: usize = 100;
/// Longest spend key.
pub const MAX_SPEND_KEY_LEN: usize = 128;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Items added (a purchase, a claimed Prime Gaming offer, a subscription's perks).
    Grant,
    /// Items taken back after a refund or an ended entitlement; what was already spent becomes a debt.
    Revoke,
    /// Items the player spent in the game.
    Spend,
    /// A kind this version does not know (a newer backend); shown, never acted on.
    #[serde(other)]
    Unknown,
}

impl ChangeKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Grant => "grant",
            ChangeKind::Revoke => "revoke",
            ChangeKind::Spend => "spend",
            ChangeKind::Unknown => "unknown",
        }
    }

    /// The kind named `text`.
    pub fn parse(text: &str) -> Self {
        match text {
            "grant" => ChangeKind::Grant,
            "revoke" => ChangeKind::Revoke,
            "spend" => ChangeKind::Spend,
            _ => ChangeKind::Unknown,
        }
    }
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeRecord {
    /// The inventory version it made.
    pub version: i64,
    /// What it does.
    pub kind: ChangeKind,
    /// Where it came from: `PRIME_GAMING`, `INSTANT_ACCESS`, `SUBSCRIPTION`, `DEVPAY`, `GAME`.
    pub source: String,
    /// Its unique key: the entitlement id, or the game's spend key.
    pub key: String,
    /// The offer (SKU) behind a grant or revocation, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The items it names.
    pub items: Vec<ItemStack>,
    /// For a revocation: what could not be taken back because it was spent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debt: Vec<ItemStack>,
    /// When (unix seconds).
    pub at: i64,
}

/// One line of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemCount {
    /// The item id.
    pub item: String,
    /// How many (1 for a flag).
    pub quantity: u64,
    /// For a flag that runs out: when (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_until: Option<i64>,
}

/// The player's items at a version (what a spend answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// The inventory version these items are at.
    pub version: i64,
    /// What the player holds.
    pub items: Vec<ItemCount>,
}

/// `GET /api/inventory` and `POST /api/inventory/sync`: the snapshot and the changes since the version asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncAnswer {
    /// The inventory version.
    pub version: i64,
    /// What the player holds at it.
    pub items: Vec<ItemCount>,
    /// The changes after `since`, oldest first, at most [`MAX_CHANGES_PER_ANSWER`].
    #[serde(default)]
    pub changes: Vec<ChangeRecord>,
    /// Whether this call pulled Amazon (sync only).
    #[serde(default)]
    pub pulled: bool,
    /// Why pulling Amazon failed, if it did (what was granted stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_error: Option<String>,
}

/// The game's spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!(
    {"key": "2f1c5e0a-spend-1", "items": [{"item": "gold", "quantity": 10}]}
)))]
pub struct SpendRequest {
    /// 1–128 printable characters the game chose and saved before sending (a UUID, say): a retry with the same
    /// key gets the first answer and spends nothing more.
    pub key: String,
    /// What to spend (1–100 lines).
    pub items: Vec<ItemStack>,
}

/// `409` to a spend the player cannot afford (nothing was spent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpendRefused {
    /// `insufficient`.
    pub error: String,
    /// In words.
    #[serde(default)]
    pub error_description: String,
    /// The first item short.
    pub item: String,
    /// How many the player holds.
    pub have: i64,
    /// How many the spend wanted.
    pub want: i64,
}

/// `GET /api/inventory/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    /// Newest first.
    pub changes: Vec<ChangeRecord>,
    /// Pass as `before` for the next (older) page; absent on the last.
    #[serde(default)]
    pub next_before: Option<i64>,
}

/// `"v{version}"`, the inventory's `ETag`.
pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_change_kind_is_kept_as_unknown() {
        let record: ChangeRecord = serde_json::from_str(
            r#"{"version":3,"kind":"gift","source":"X","key":"k","items":[{"item":"gem","quantity":1}],"at":1}"#,
        )
        .unwrap();
        assert_eq!(record.kind, ChangeKind::Unknown);
        assert_eq!(ChangeKind::parse("gift"), ChangeKind::Unknown);
        for kind in [ChangeKind::Grant, ChangeKind::Revoke, ChangeKind::Spend] {
            assert_eq!(ChangeKind::parse(kind.as_str()), kind);
        }
    }
}
