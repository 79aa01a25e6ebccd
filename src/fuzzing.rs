//! Entry points for the fuzz targets in `fuzz/` (not part of the API): the plugin's own files read from bytes,
//! with the properties each must keep. The ledger, token and Moments files are the plugin's on-disk formats,
//! so their readers live here rather than in the protocol crate.

use crate::auth::tokens;
use crate::entitlements::ledger::file::LedgerFile;

/// A ledger file: read or refused, never a panic; what is read writes back equal, and compaction is
/// idempotent and never touches the inventory.
pub fn ledger_file(bytes: &[u8]) {
    let Ok(mut ledger) = LedgerFile::parse(bytes, "amzn1.account.FUZZ") else {
        return;
    };
    let again = LedgerFile::parse(&serde_json::to_vec(&ledger).unwrap(), "amzn1.account.FUZZ").unwrap();
    assert_eq!(again, ledger);
    let inventory = ledger.inventory.clone();
    ledger.compact(1_800_000_000);
    assert_eq!(ledger.compact(1_800_000_000), 0, "compaction is idempotent");
    assert_eq!(ledger.inventory, inventory);
}

/// A token file: read or refused, never a panic; its `Debug` never shows the tokens.
pub fn tokens_file(bytes: &[u8]) {
    let Ok(stored) = tokens::parse(bytes) else {
        return;
    };
    let debug = format!("{stored:?}");
    let elsewhere = |secret: &str| {
        stored.user_id.contains(secret)
            || stored.name.contains(secret)
            || stored.email.as_deref().unwrap_or("").contains(secret)
    };
    for secret in [Some(stored.access_token.as_str()), stored.refresh_token.as_deref()].into_iter().flatten() {
        if secret.len() >= 8 && !elsewhere(secret) && !"StoredTokens".contains(secret) {
            assert!(!debug.contains(secret), "a token in Debug output");
        }
    }
}

/// The Moments file (`achievements.json`): read or refused, never a panic; what is read writes back equal.
pub fn moments_file(bytes: &[u8]) {
    crate::moments::fuzz_saved_moments(bytes);
}
