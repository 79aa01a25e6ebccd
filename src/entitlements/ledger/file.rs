//! The durable fulfilment ledger's file format, one file per player under the OS data dir: each
//! entitlement's state (`seen → granted → reported`) together with the inventory it produced, and the
//! changes that move it. The writer thread (`writer.rs`) owns the file while the game runs.
//!
//! A grant and its `granted` mark reach the disk in the same atomic file replacement (write a temporary
//! file, fsync, rename, fsync the directory), before the fulfilment report is sent. On restart, `granted`
//! entries are re-reported, never re-granted.
//!
//! The file does not grow for ever: when a ledger is opened, entries that are settled for good and that no
//! service can still send again are dropped once they are older than [`SETTLED_RETENTION`] — confirmed
//! revocations, and confirmed grants that cannot be revoked (Prime Gaming's: its public wire has no
//! revocation, and it stops listing an entitlement once fulfilled). Grants the studio backend may still revoke
//! (Instant Access, subscriptions) keep what they granted, so a late refund takes back the right items.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::tokens::now_unix;
use crate::inventory::ItemStack;

/// File name of a player's ledger inside their directory.
pub const LEDGER_FILE: &str = "ledger.json";
const FORMAT_VERSION: u32 = 1;
/// How long a settled entry that nothing can send again is kept: long enough to outlast a service that
/// lists a just-fulfilled entitlement once more, short enough to keep the file (rewritten whole) small.
pub const SETTLED_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where an entitlement stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Pulled, not granted (unknown SKU, no recipient, or not yet processed).
    Seen,
    /// Granted into the inventory and durable; the fulfilment report may not have been confirmed.
    Granted,
    /// Reported fulfilled and confirmed by the service.
    Reported,
    /// Revoked (refund, payment problem, ended subscription): its items were taken back, durably; the
    /// revocation may not have been confirmed.
    Revoked,
    /// The revocation was reported and confirmed. Final.
    RevokeReported,
}

/// One entitlement's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The SKU it was for.
    pub sku: String,
    /// Its state.
    pub state: EntryState,
    /// What it granted (empty until granted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemStack>,
    /// What its revocation took back (never more than the inventory held).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken: Vec<ItemStack>,
    /// The service may still revoke it (it came from the studio backend's feed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revocable: bool,
    /// When it was settled (report or revocation confirmed), Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<u64>,
}

/// The on-disk form of a player's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerFile {
    /// Format version, for future migrations.
    pub format: u32,
    /// Whose ledger this is.
    pub player_id: String,
    /// Every entitlement ever seen, by id.
    pub entitlements: BTreeMap<String, LedgerEntry>,
    /// The persisted inventory: item id → count.
    pub inventory: BTreeMap<String, u64>,
}

/// Why a ledger file was not read: what went wrong, in words (the file is left untouched).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LedgerFileError(pub String);

impl LedgerFile {
    /// Reads a ledger file; a missing file is an empty ledger.
    pub fn load(path: &Path, player_id: &str) -> Result<Self, LedgerFileError> {
        match fs::read(path) {
            Ok(bytes) => {
                Self::parse(&bytes, player_id).map_err(|e| LedgerFileError(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(LedgerFile { format: FORMAT_VERSION, player_id: player_id.to_owned(), ..Default::default() })
            }
            Err(e) => Err(LedgerFileError(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Reads a ledger file's bytes: damaged JSON, another player's ledger or a newer format is refused (and the
    /// file left untouched by the caller).
    pub fn parse(bytes: &[u8], player_id: &str) -> Result<Self, LedgerFileError> {
        let refused = |reason: String| LedgerFileError(reason);
        let ledger: LedgerFile =
            serde_json::from_slice(bytes).map_err(|e| refused(format!("damaged ({e}); it was left untouched")))?;
        if ledger.player_id != player_id {
            return Err(refused("belongs to another player; it was left untouched".into()));
        }
        if ledger.format > FORMAT_VERSION {
            return Err(refused(format!("written by a newer version (format {})", ledger.format)));
        }
        Ok(ledger)
    }

    /// Applies a change. Applying the same change twice has no further effect.
    pub fn apply(&mut self, change: &LedgerChange) {
        match change {
            LedgerChange::Seen { entitlement_id, sku } => {
                self.entitlements.entry(entitlement_id.clone()).or_insert_with(|| LedgerEntry::seen(sku));
            }
            LedgerChange::Granted { entitlement_id, sku, items, revocable } => {
                let entry = self.entitlements.entry(entitlement_id.clone()).or_insert_with(|| LedgerEntry::seen(sku));
                if entry.state == EntryState::Seen {
                    entry.state = EntryState::Granted;
                    entry.items = items.clone();
                    entry.revocable = *revocable;
                    for stack in items {
                        *self.inventory.entry(stack.item.clone()).or_default() += stack.quantity;
                    }
                }
            }
            LedgerChange::Reported { entitlement_id } => {
                if let Some(entry) = self.entitlements.get_mut(entitlement_id)
                    && entry.state == EntryState::Granted
                {
                    entry.state = EntryState::Reported;
                    entry.settled_at = Some(now_unix());
                }
            }
            LedgerChange::Revoked { entitlement_id, sku, taken } => {
                let entry = self.entitlements.entry(entitlement_id.clone()).or_insert_with(|| LedgerEntry::seen(sku));
                if matches!(entry.state, EntryState::Seen | EntryState::Granted | EntryState::Reported) {
                    entry.state = EntryState::Revoked;
                    entry.taken = taken.clone();
                    for stack in taken {
                        if let Some(count) = self.inventory.get_mut(&stack.item) {
                            *count = count.saturating_sub(stack.quantity);
                        }
                    }
                }
            }
            LedgerChange::RevokeReported { entitlement_id } => {
                if let Some(entry) = self.entitlements.get_mut(entitlement_id)
                    && entry.state == EntryState::Revoked
                {
                    entry.state = EntryState::RevokeReported;
                    entry.settled_at = Some(now_unix());
                }
            }
        }
    }

    /// Drops entries settled for good, that no service can send again, once older than
    /// [`SETTLED_RETENTION`] (see the module's doc). Settled entries of older files, which did not record when,
    /// count as settled `now`. Returns how many were dropped.
    pub fn compact(&mut self, now: u64) -> usize {
        let before = self.entitlements.len();
        let cutoff = now.saturating_sub(SETTLED_RETENTION.as_secs());
        self.entitlements.retain(|_, entry| {
            let settled = matches!(entry.state, EntryState::Reported | EntryState::RevokeReported);
            if settled && entry.settled_at.is_none() {
                entry.settled_at = Some(now);
            }
            let droppable =
                entry.state == EntryState::RevokeReported || (entry.state == EntryState::Reported && !entry.revocable);
            !(droppable && entry.settled_at.is_some_and(|at| at < cutoff))
        });
        before - self.entitlements.len()
    }

    /// Replaces the file at `path` atomically with this ledger, readable by the owner only.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::core::storage::write_private(path, &bytes)
    }
}

/// The ledger path of `player_id` under `data_dir`.
pub fn ledger_path(data_dir: &Path, player_id: &str) -> PathBuf {
    crate::core::storage::player_dir(data_dir, player_id).join(LEDGER_FILE)
}

/// A change sent to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerChange {
    /// An entitlement was pulled.
    Seen {
        /// Entitlement id.
        entitlement_id: String,
        /// Its SKU.
        sku: String,
    },
    /// An entitlement was granted these items.
    Granted {
        /// Entitlement id.
        entitlement_id: String,
        /// Its SKU.
        sku: String,
        /// What it granted.
        items: Vec<ItemStack>,
        /// Whether its service may still revoke it (the studio backend's feed).
        revocable: bool,
    },
    /// The service confirmed the fulfilment report.
    Reported {
        /// Entitlement id.
        entitlement_id: String,
    },
    /// An entitlement was revoked and these items taken back.
    Revoked {
        /// Entitlement id.
        entitlement_id: String,
        /// Its SKU.
        sku: String,
        /// What was taken back.
        taken: Vec<ItemStack>,
    },
    /// The service confirmed the revocation report.
    RevokeReported {
        /// Entitlement id.
        entitlement_id: String,
    },
}

impl LedgerEntry {
    fn seen(sku: &str) -> Self {
        Self {
            sku: sku.to_owned(),
            state: EntryState::Seen,
            items: Vec::new(),
            taken: Vec::new(),
            revocable: false,
            settled_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(item: &str, quantity: u64) -> ItemStack {
        ItemStack { item: item.into(), quantity }
    }

    #[test]
    fn granting_twice_adds_items_once_and_reporting_needs_a_grant() {
        let mut ledger = LedgerFile::default();
        let grant = LedgerChange::Granted {
            entitlement_id: "e1".into(),
            sku: "gold".into(),
            items: vec![stack("gold", 5)],
            revocable: false,
        };
        ledger.apply(&LedgerChange::Reported { entitlement_id: "e1".into() });
        assert!(ledger.entitlements.is_empty());
        ledger.apply(&grant);
        ledger.apply(&grant);
        assert_eq!(ledger.inventory["gold"], 5);
        ledger.apply(&LedgerChange::Reported { entitlement_id: "e1".into() });
        ledger.apply(&grant);
        assert_eq!(ledger.entitlements["e1"].state, EntryState::Reported);
        assert_eq!(ledger.inventory["gold"], 5);
    }

    #[test]
    fn revocation_takes_back_once_never_below_zero_and_is_final() {
        let mut ledger = LedgerFile::default();
        let grant = LedgerChange::Granted {
            entitlement_id: "e1".into(),
            sku: "gems".into(),
            items: vec![stack("gem", 100)],
            revocable: true,
        };
        ledger.apply(&grant);
        ledger.apply(&LedgerChange::Reported { entitlement_id: "e1".into() });
        let revoke =
            LedgerChange::Revoked { entitlement_id: "e1".into(), sku: "gems".into(), taken: vec![stack("gem", 100)] };
        ledger.apply(&revoke);
        ledger.apply(&revoke);
        assert_eq!(ledger.inventory["gem"], 0, "taken back once");
        ledger.apply(&grant);
        assert_eq!(ledger.inventory["gem"], 0, "a revoked entitlement is never granted again");
        assert_eq!(ledger.entitlements["e1"].state, EntryState::Revoked);
        ledger.apply(&LedgerChange::RevokeReported { entitlement_id: "e1".into() });
        assert_eq!(ledger.entitlements["e1"].state, EntryState::RevokeReported);
        // Taking more than is held stops at zero.
        let mut short = LedgerFile::default();
        short.inventory.insert("gem".into(), 3);
        short.apply(&LedgerChange::Revoked {
            entitlement_id: "e2".into(),
            sku: "gems".into(),
            taken: vec![stack("gem", 5)],
        });
        assert_eq!(short.inventory["gem"], 0);
        // A revocation of something never granted just records it.
        let mut never = LedgerFile::default();
        never.apply(&LedgerChange::Revoked { entitlement_id: "e3".into(), sku: "gems".into(), taken: vec![] });
        assert_eq!(never.entitlements["e3"].state, EntryState::Revoked);
        assert!(never.inventory.is_empty());
    }

    #[test]
    fn saves_atomically_owner_only_and_refuses_to_overwrite_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "amzn1.account.ABC/../x");
        assert!(path.starts_with(dir.path().join("players")));
        assert_eq!(path.parent().unwrap().parent().unwrap(), dir.path().join("players"));
        let mut ledger = LedgerFile::load(&path, "p").unwrap();
        ledger.apply(&LedgerChange::Granted {
            entitlement_id: "e1".into(),
            sku: "gold".into(),
            items: vec![stack("gold", 2)],
            revocable: false,
        });
        ledger.save(&path).unwrap();
        assert_eq!(LedgerFile::load(&path, "p").unwrap(), ledger);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        fs::write(&path, b"{\"format\":1,\"entitle").unwrap();
        let error = LedgerFile::load(&path, "p").unwrap_err();
        assert!(error.0.contains("damaged"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"{\"format\":1,\"entitle");
    }

    /// The hardening review: the ledger grew for ever and was rewritten whole on every change.
    #[test]
    fn settled_entries_nothing_can_send_again_are_compacted_after_the_retention() {
        let mut ledger = LedgerFile::default();
        let grant = |id: &str, revocable: bool| LedgerChange::Granted {
            entitlement_id: id.into(),
            sku: "gold".into(),
            items: vec![stack("gold", 1)],
            revocable,
        };
        for (id, revocable) in [("prime-old", false), ("ia-old", true), ("prime-new", false), ("unreported", false)] {
            ledger.apply(&grant(id, revocable));
        }
        for id in ["prime-old", "ia-old", "prime-new"] {
            ledger.apply(&LedgerChange::Reported { entitlement_id: id.into() });
        }
        ledger.apply(&LedgerChange::Revoked { entitlement_id: "refunded".into(), sku: "gold".into(), taken: vec![] });
        ledger.apply(&LedgerChange::RevokeReported { entitlement_id: "refunded".into() });
        let now = now_unix();
        let long_ago = now - SETTLED_RETENTION.as_secs() - 1;
        for id in ["prime-old", "ia-old", "refunded"] {
            ledger.entitlements.get_mut(id).unwrap().settled_at = Some(long_ago);
        }
        assert_eq!(ledger.compact(now), 2);
        let kept: Vec<&str> = ledger.entitlements.keys().map(String::as_str).collect();
        assert_eq!(kept, ["ia-old", "prime-new", "unreported"], "revocable, recent and unreported stay");
        assert_eq!(ledger.inventory["gold"], 4, "the inventory is untouched");
        // An older file's settled entries start their retention now.
        let mut older = LedgerFile::default();
        older.apply(&grant("x", false));
        older.apply(&LedgerChange::Reported { entitlement_id: "x".into() });
        older.entitlements.get_mut("x").unwrap().settled_at = None;
        assert_eq!(older.compact(now), 0);
        assert_eq!(older.entitlements["x"].settled_at, Some(now));
    }
}
