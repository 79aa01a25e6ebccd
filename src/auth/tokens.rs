//! The token store: a player's Login with Amazon tokens and profile in `players/<id>/tokens.json` under the
//! data dir (owner-only, replaced atomically), plus a `current_player` file naming who to sign back in.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::core::storage;

const TOKENS_FILE: &str = "tokens.json";
const CURRENT_PLAYER_FILE: &str = "current_player";

/// What is kept for a signed-in player. `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredTokens {
    pub user_id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: u64,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Where `user_id`'s tokens live.
pub fn tokens_path(data_dir: &Path, user_id: &str) -> PathBuf {
    storage::player_dir(data_dir, user_id).join(TOKENS_FILE)
}

/// Saves the tokens and makes their player the one restored at the next start.
pub(crate) fn save(data_dir: &Path, tokens: &StoredTokens) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(tokens).map_err(std::io::Error::other)?;
    storage::write_private(&tokens_path(data_dir, &tokens.user_id), &bytes)?;
    storage::write_private(&data_dir.join(CURRENT_PLAYER_FILE), tokens.user_id.as_bytes())
}

/// The tokens of the player who was signed in last, if any.
pub(crate) fn load_current(data_dir: &Path) -> std::io::Result<Option<StoredTokens>> {
    let user_id = match std::fs::read_to_string(data_dir.join(CURRENT_PLAYER_FILE)) {
        Ok(user_id) => user_id,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match std::fs::read(tokens_path(data_dir, user_id.trim())) {
        Ok(bytes) => parse(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a token file's bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<StoredTokens, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Forgets `user_id`'s tokens (sign-out, or a refresh token the server refused). The pointer to the player
/// goes first: once the tokens are gone, nothing names them, and a crash in between only leaves tokens
/// nobody resumes.
pub(crate) fn delete(data_dir: &Path, user_id: &str) -> std::io::Result<()> {
    let current = data_dir.join(CURRENT_PLAYER_FILE);
    if std::fs::read_to_string(&current).is_ok_and(|id| id.trim() == user_id) {
        storage::remove(&current)?;
    }
    storage::remove(&tokens_path(data_dir, user_id))
}

/// Serialises writes of token files with sign-outs, so a save already running when the player signs out (a
/// refresh finishing in the background) cannot write the tokens back after they were forgotten. Every flow
/// takes the epoch when it starts; a sign-out moves the epoch on; a save from an older epoch is dropped.
#[derive(Default)]
pub(crate) struct TokenFiles {
    epoch: std::sync::atomic::AtomicU64,
    writing: std::sync::Mutex<()>,
    read_only: std::sync::atomic::AtomicBool,
}

impl TokenFiles {
    /// The epoch a flow starting now saves under.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Never save again (another instance holds the data directory).
    pub(crate) fn make_read_only(&self) {
        self.read_only.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Saves `tokens` unless a sign-out happened since `epoch`. Returns whether they were saved.
    pub(crate) fn save(&self, epoch: u64, data_dir: &Path, tokens: &StoredTokens) -> std::io::Result<bool> {
        let _one_writer = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.epoch() != epoch || self.read_only.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        save(data_dir, tokens).map(|()| true)
    }

    /// Ends the epoch now (on the main thread, at sign-out): saves of flows started before it are dropped.
    pub(crate) fn end_epoch(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Forgets `user_id`'s tokens, after any save in progress.
    pub(crate) fn delete(&self, data_dir: &Path, user_id: &str) -> std::io::Result<()> {
        let _one_writer = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        delete(data_dir, user_id)
    }
}

#[cfg(test)]
mod token_file_tests {
    use super::*;

    /// The hardening review: a sign-out could be undone by a token save still running in `spawn_blocking`.
    #[test]
    fn a_save_from_before_a_sign_out_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let files = TokenFiles::default();
        let tokens = StoredTokens {
            user_id: "amzn1.account.SAVER".into(),
            name: "Saver".into(),
            email: None,
            access_token: "Atza|a".into(),
            expires_at: 1,
            refresh_token: Some("Atzr|r".into()),
        };
        let before_sign_out = files.epoch();
        assert!(files.save(before_sign_out, dir.path(), &tokens).unwrap());
        files.end_epoch();
        files.delete(dir.path(), &tokens.user_id).unwrap();
        assert!(!files.save(before_sign_out, dir.path(), &tokens).unwrap(), "a late save is dropped");
        assert!(!tokens_path(dir.path(), &tokens.user_id).exists());
        assert!(load_current(dir.path()).unwrap().is_none());
        assert!(files.save(files.epoch(), dir.path(), &tokens).unwrap(), "a new sign-in saves again");
    }
}
