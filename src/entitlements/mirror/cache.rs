//! The last inventory the backend answered, kept per player on disk (`players/<id>/inventory.json`, owner-only,
//! replaced atomically) so the game shows it offline, with the spends saved before they were sent; and which
//! of its items the game shows now: a subscription perk (a flag, or an item with `active_until`) only while it
//! lasts and at most [`EntitlementsConfig::offline_grace`](crate::config::EntitlementsConfig::offline_grace)
//! after the last sync. Nothing is granted or spent from the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use amazon_rewards_protocol::inventory::{ItemCount, SpendRequest};
use serde::{Deserialize, Serialize};

/// The cache file in each player's directory.
pub(crate) const CACHE_FILE: &str = "inventory.json";

/// The cache of `player_id` under `data_dir`.
pub(crate) fn cache_path(data_dir: &Path, player_id: &str) -> PathBuf {
    crate::core::storage::player_dir(data_dir, player_id).join(CACHE_FILE)
}

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedInventory {
    /// The version `items` are at.
    pub items_version: i64,
    /// The items, as the backend answered them.
    pub items: Vec<ItemCount>,
    /// Every change up to this version was announced to the game; the next sync asks for the ones after it.
    pub seen_version: i64,
    /// When the backend last answered a sync (unix seconds).
    pub synced_at: Option<u64>,
    /// Spends saved before sending and not answered yet: sent again (same key) until the backend answers.
    #[serde(default)]
    pub pending_spends: Vec<SpendRequest>,
}

/// A cache file and its contents, shared by the background tasks that change it (one at a time).
#[derive(Clone)]
pub(crate) struct CacheFile {
    inner: Arc<tokio::sync::Mutex<(Option<PathBuf>, CachedInventory)>>,
}

impl CacheFile {
    /// The cache at `path` (`None`: kept in memory only, when another instance holds the data directory).
    pub(crate) fn new(path: Option<PathBuf>, contents: CachedInventory) -> Self {
        Self { inner: Arc::new(tokio::sync::Mutex::new((path, contents))) }
    }

    /// Applies `change` only if it can be written: the new contents, or why not (nothing changed then). For
    /// what must be on disk before the game acts on it (a spend's key before it is sent).
    pub(crate) async fn save(&self, change: impl FnOnce(&mut CachedInventory)) -> Result<CachedInventory, String> {
        let mut guard = self.inner.lock().await;
        let mut contents = guard.1.clone();
        change(&mut contents);
        if let Some(path) = guard.0.clone() {
            write(path, &contents).await?;
        }
        guard.1 = contents.clone();
        Ok(contents)
    }

    /// Applies `change` and writes the file: the new contents, or, when they could not be written (they still
    /// apply in memory and are written with the next change), the contents and why.
    pub(crate) async fn update(
        &self,
        change: impl FnOnce(&mut CachedInventory),
    ) -> Result<CachedInventory, (CachedInventory, String)> {
        let mut guard = self.inner.lock().await;
        change(&mut guard.1);
        let contents = guard.1.clone();
        match guard.0.clone() {
            Some(path) => write(path, &contents).await.map(|()| contents.clone()).map_err(|e| (contents, e)),
            None => Ok(contents),
        }
    }
}

async fn write(path: PathBuf, contents: &CachedInventory) -> Result<(), String> {
    let bytes = serde_json::to_vec(contents).map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || crate::core::storage::write_private(&path, &bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot save the inventory cache: {e}"))
}

/// Reads the cache at `path`: empty when there is none; a damaged file is an error (and the game starts from
/// an empty cache: the backend has the inventory).
pub(crate) fn read(path: &Path) -> Result<CachedInventory, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!("the inventory cache {} is damaged ({e}); it is rebuilt from the backend", path.display())
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(CachedInventory::default()),
        Err(error) => Err(format!("cannot read the inventory cache {}: {error}", path.display())),
    }
}

/// What the game shows of `cache` at `now` (unix seconds), and when that next changes: counts as cached; a perk
/// (`is_perk`, or any item with `active_until`) only before its `active_until` and before `synced_at + grace`.
pub(crate) fn shown_items(
    cache: &CachedInventory,
    is_perk: impl Fn(&str) -> bool,
    grace: Duration,
    now: u64,
) -> (BTreeMap<String, u64>, Option<u64>) {
    let grace_ends = cache.synced_at.map(|at| at.saturating_add(grace.as_secs()));
    let mut shown = BTreeMap::new();
    let mut next_change: Option<u64> = None;
    for line in &cache.items {
        let perk = line.active_until.is_some() || is_perk(&line.item);
        if perk {
            let until = line.active_until.map(|t| t.max(0) as u64);
            let off_at = match (until, grace_ends) {
                (Some(until), Some(grace)) => until.min(grace),
                (Some(until), None) => until,
                (None, Some(grace)) => grace,
                (None, None) => 0,
            };
            if now >= off_at {
                continue;
            }
            next_change = Some(next_change.map_or(off_at, |t| t.min(off_at)));
        }
        if line.quantity > 0 {
            shown.insert(line.item.clone(), line.quantity);
        }
    }
    (shown, next_change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &str, quantity: u64, active_until: Option<i64>) -> ItemCount {
        ItemCount { item: item.into(), quantity, active_until }
    }

    #[test]
    fn perks_stay_on_for_the_grace_after_the_last_sync_then_go_off() {
        const DAY: u64 = 86_400;
        let cache = CachedInventory {
            items: vec![line("gem", 40, None), line("vip", 1, None), line("season", 1, Some(10 * DAY as i64))],
            synced_at: Some(DAY),
            ..Default::default()
        };
        let is_perk = |item: &str| item == "vip";
        let grace = Duration::from_secs(3 * DAY);
        let (shown, next) = shown_items(&cache, is_perk, grace, DAY + 60);
        assert_eq!(shown.len(), 3);
        assert_eq!(next, Some(4 * DAY), "the grace ends before the season does");
        let (shown, next) = shown_items(&cache, is_perk, grace, 4 * DAY);
        assert_eq!((shown.get("gem"), shown.len(), next), (Some(&40), 1, None), "counts stay, perks go off");
        let fresh = CachedInventory { synced_at: Some(9 * DAY), ..cache.clone() };
        let (shown, next) = shown_items(&fresh, is_perk, grace, 9 * DAY);
        assert_eq!((shown.len(), next), (3, Some(10 * DAY)), "the season ends before the grace");
        let (shown, _) = shown_items(&fresh, is_perk, grace, 10 * DAY);
        assert!(!shown.contains_key("season") && shown.contains_key("vip"));
    }

    #[test]
    fn a_damaged_cache_is_an_error_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE);
        assert_eq!(read(&path).unwrap(), CachedInventory::default());
        std::fs::write(&path, b"{\"items_version\": 3, \"items\": [").unwrap();
        assert!(read(&path).unwrap_err().contains("damaged"));
    }
}
