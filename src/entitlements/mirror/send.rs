//! The mirror's send system: follows the [`PlayerSession`] (a new player's cache is read), takes the game's
//! [`SpendItems`] and [`LoadHistory`], and starts the sync the [`PullPacer`] allows, the next spend and history
//! pages; and refreshes what is shown when a perk's time runs out.

use std::time::{Duration, Instant};

use amazon_rewards_protocol::inventory::{MAX_SPEND_KEY_LEN, MAX_SPEND_LINES, SpendRequest};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::cache::{self, CacheFile, CachedInventory};
use super::state::{Mirror, MirrorUpdate, SpendAttempt, Synced};
use super::{LoadHistory, SpendItems, SpendOutcome, SpendResult};
use crate::auth::PlayerSession;
use crate::config::{LedgerStep, RewardsConfig};
use crate::core::bridge::RewardsRuntime;
use crate::entitlements::pacing::PullPacer;
use crate::entitlements::{PullReason, RewardsStatus};
use crate::error::RewardsError;
use crate::inventory::{CatalogHandle, Inventory, ItemCatalog, RewardsRecipient};

/// How often what is shown is computed again while the item catalog is still loading.
const CATALOG_WAIT: Duration = Duration::from_millis(250);

/// When the mirror next has work: now if the session is not the one it follows or a spend can go; else when
/// the pacer lets a sync start, or what is shown changes (a perk's end).
pub(crate) fn mirror_next_work(world: &World) -> Option<Instant> {
    let (mirror, pacer) = (world.get_resource::<Mirror>()?, world.get_resource::<PullPacer>()?);
    let session = world.get_resource::<PlayerSession>();
    let followed = (mirror.player_id.as_deref(), mirror.access_token.as_deref());
    if session.map(|s| (Some(s.player_id()), Some(s.access_token().secret()))).unwrap_or((None, None)) != followed {
        return Some(Instant::now());
    }
    if !mirror.loaded {
        return None;
    }
    let shown = mirror.shown_changes_at.map(|at| {
        let wait = at.saturating_sub(mirror.now_secs());
        Instant::now().checked_add(Duration::from_secs(wait)).unwrap_or_else(Instant::now)
    });
    let catalog = mirror.shown_without_catalog.then(|| Instant::now() + CATALOG_WAIT);
    let spend = mirror.spend_due().then(Instant::now);
    let sync = (!mirror.token.waiting()).then(|| pacer.next_start()).flatten();
    [shown, catalog, spend, sync].into_iter().flatten().min()
}

/// What sending works with.
#[derive(SystemParam)]
pub(crate) struct MirrorSender<'w, 's> {
    session: Option<Res<'w, PlayerSession>>,
    mirror: ResMut<'w, Mirror>,
    pacer: ResMut<'w, PullPacer>,
    status: ResMut<'w, RewardsStatus>,
    runtime: Res<'w, RewardsRuntime>,
    config: Res<'w, RewardsConfig>,
    spends: MessageReader<'w, 's, SpendItems>,
    history: MessageReader<'w, 's, LoadHistory>,
    history_state: ResMut<'w, super::InventoryHistory>,
    recipients: Query<'w, 's, &'static mut Inventory, With<RewardsRecipient>>,
    catalog: CatalogAccess<'w>,
    commands: Commands<'w, 's>,
}

/// The item catalog, when loaded (it says which items are perks).
#[derive(SystemParam)]
pub(crate) struct CatalogAccess<'w> {
    handle: Option<Res<'w, CatalogHandle>>,
    assets: Option<Res<'w, Assets<ItemCatalog>>>,
}

impl CatalogAccess<'_> {
    pub(super) fn get(&self) -> Option<&ItemCatalog> {
        self.assets.as_ref()?.get(&self.handle.as_ref()?.0)
    }
}

/// Follows the session, takes spends and history requests, then starts what is due. Runs in
/// [`RewardsSend`](crate::RewardsSend), woken when [`mirror_next_work`] says or a message waits.
pub(crate) fn send_mirror_requests(mut sender: MirrorSender) {
    if sender.session_changed() {
        sender.follow_session();
    }
    sender.take_spends();
    sender.take_history_requests();
    let mirror = &mut *sender.mirror;
    if !mirror.loaded {
        return;
    }
    let now = mirror.now_secs();
    if mirror.shown_changes_at.is_some_and(|at| now >= at) || mirror.shown_without_catalog {
        let catalog = sender.catalog.get();
        mirror.show(sender.recipients.single_mut().ok(), catalog);
    }
    if mirror.token.waiting() {
        return;
    }
    if !mirror.sync_in_flight
        && sender.pacer.is_pending()
        && let Some(reason) = sender.pacer.start_if_due(Instant::now())
    {
        sender.status.pulling = true;
        mirror.start_sync(&sender.runtime, &sender.config, reason);
    }
    if mirror.spend_due() {
        mirror.start_spend(&sender.runtime, &sender.config);
    }
}

impl MirrorSender<'_, '_> {
    fn session_changed(&self) -> bool {
        match &self.session {
            Some(session) => session.is_changed(),
            None => self.mirror.player_id.is_some(),
        }
    }

    /// A fresh token for the same player resumes; another player (or none) starts over from their cache.
    fn follow_session(&mut self) {
        let mirror = &mut *self.mirror;
        let session = self.session.as_deref();
        if session.is_some() && session.map(PlayerSession::player_id) == mirror.player_id.as_deref() {
            mirror.access_token = session.map(|s| s.access_token().secret().to_owned());
            mirror.token.new_token();
            self.pacer.request(PullReason::LoggedIn);
            return;
        }
        let (old_session, read_only) = (mirror.session, mirror.read_only);
        *mirror = Mirror::new(mirror.client.clone(), mirror.outbox.clone(), mirror.grace, mirror.wall_clock);
        mirror.session = old_session + 1;
        mirror.read_only = read_only;
        mirror.player_id = session.map(|s| s.player_id().to_owned());
        mirror.access_token = session.map(|s| s.access_token().secret().to_owned());
        *self.pacer = PullPacer::new(self.config.entitlements.pacing.clone());
        *self.status = RewardsStatus::default();
        *self.history_state = super::InventoryHistory::default();
        if let Ok(mut inventory) = self.recipients.single_mut() {
            inventory.replace(Default::default());
        }
        let Some(player_id) = mirror.player_id.clone() else { return };
        let path = match self.config.resolved_data_dir() {
            Some(dir) if !mirror.read_only => Some(cache::cache_path(&dir, &player_id)),
            _ => None,
        };
        let session = mirror.session;
        self.runtime.spawn(&mirror.outbox, async move {
            let result = match path.clone() {
                Some(path) => {
                    tokio::task::spawn_blocking(move || cache::read(&path)).await.unwrap_or_else(|e| Err(e.to_string()))
                }
                None => Ok(CachedInventory::default()),
            };
            MirrorUpdate::Loaded { session, path, result }
        });
    }

    /// Queues the game's spends, or answers at once those that cannot be sent.
    fn take_spends(&mut self) {
        let spends: Vec<SpendItems> = self.spends.read().cloned().collect();
        for spend in spends {
            let refused = if self.mirror.player_id.is_none() {
                Some(RewardsError::NotSignedIn)
            } else if self.mirror.read_only {
                let data_dir = self.config.resolved_data_dir().unwrap_or_default().display().to_string();
                Some(RewardsError::AnotherInstanceRunning { data_dir })
            } else {
                malformed(&spend)
            };
            match refused {
                Some(error) => {
                    self.commands.trigger(SpendResult { key: spend.key, outcome: SpendOutcome::Refused(error) })
                }
                None => self.mirror.spends.push_back(SpendRequest { key: spend.key, items: spend.items }),
            }
        }
        self.status.pending_spends = self.mirror.spends.len() + usize::from(self.mirror.spend_in_flight);
    }

    fn take_history_requests(&mut self) {
        let Some(request) = self.history.read().last().copied() else { return };
        let mirror = &mut *self.mirror;
        let (Some(token), false) = (mirror.access_token.clone(), mirror.history_in_flight) else { return };
        let before = match request {
            LoadHistory::Newest => None,
            LoadHistory::Older if self.history_state.more => self.history_state.next_before,
            LoadHistory::Older => return,
        };
        mirror.history_in_flight = true;
        self.history_state.loading = true;
        let (client, session, older) = (mirror.client.clone(), mirror.session, request == LoadHistory::Older);
        self.runtime.spawn(&mirror.outbox, async move {
            MirrorUpdate::History { session, older, result: client.history(&token, before).await }
        });
    }
}

/// Why a spend is malformed, if it is (checked before it is saved, as the backend would).
fn malformed(spend: &SpendItems) -> Option<RewardsError> {
    let bad = |why: String| Some(RewardsError::Spend(crate::error::ApiError::Refused { status: 400, error: why }));
    if spend.key.is_empty() || spend.key.len() > MAX_SPEND_KEY_LEN || spend.key.chars().any(char::is_control) {
        return bad("the spend key must be 1-128 printable characters".into());
    }
    if spend.items.is_empty() || spend.items.len() > MAX_SPEND_LINES || spend.items.iter().any(|s| s.quantity == 0) {
        return bad("a spend names 1-100 items, each at least once".into());
    }
    None
}

impl Mirror {
    pub(super) fn spend_due(&self) -> bool {
        self.loaded
            && !self.spend_in_flight
            && !self.spends_wait_for_sync
            && !self.token.waiting()
            && !self.spends.is_empty()
    }

    fn start_sync(&mut self, runtime: &RewardsRuntime, config: &RewardsConfig, reason: PullReason) {
        let (Some(token), Some(cache)) = (self.access_token.clone(), self.cache.clone()) else { return };
        self.sync_in_flight = true;
        let (client, session, config, since) =
            (self.client.clone(), self.session, config.clone(), self.view.seen_version);
        let now = self.now_secs();
        runtime.spawn(&self.outbox, async move {
            let result = match client.sync(&token, since).await {
                Ok(answer) => {
                    config.entitlements.observe(LedgerStep::Pulled);
                    Ok(save_sync(&cache, answer, now).await)
                }
                Err(error) => Err(error),
            };
            MirrorUpdate::Synced { session, reason, result }
        });
    }

    fn start_spend(&mut self, runtime: &RewardsRuntime, config: &RewardsConfig) {
        let (Some(token), Some(cache), Some(spend)) =
            (self.access_token.clone(), self.cache.clone(), self.spends.pop_front())
        else {
            return;
        };
        self.spend_in_flight = true;
        let (client, session, config) = (self.client.clone(), self.session, config.clone());
        runtime.spawn(&self.outbox, async move {
            let result = spend_once(&client, &cache, &token, &spend, &config).await;
            MirrorUpdate::Spent { session, spend, result }
        });
    }
}

/// Saves a sync's answer (the items if newer than those held, the changes cursor, the time) and says which
/// changes to announce.
async fn save_sync(
    cache: &CacheFile,
    answer: Option<amazon_rewards_protocol::inventory::SyncAnswer>,
    now: u64,
) -> Synced {
    let mut announce = Vec::new();
    let saved = cache
        .update(|contents| {
            contents.synced_at = Some(now);
            let Some(answer) = &answer else { return };
            announce = answer.changes.iter().filter(|c| c.version > contents.seen_version).cloned().collect();
            if answer.version >= contents.items_version {
                contents.items = answer.items.clone();
                contents.items_version = answer.version;
            }
            contents.seen_version = contents.seen_version.max(answer.version);
        })
        .await;
    match saved {
        Ok(contents) => Synced { answer, announce, cache: contents, cache_error: None },
        Err((contents, error)) => Synced { answer, announce, cache: contents, cache_error: Some(error) },
    }
}

/// Saves the spend's key, sends it, and records the answer (see [`SpendAttempt`]).
async fn spend_once(
    client: &super::client::MirrorClient,
    cache: &CacheFile,
    token: &str,
    spend: &SpendRequest,
    config: &RewardsConfig,
) -> SpendAttempt {
    let saved = cache
        .save(|contents| {
            if !contents.pending_spends.iter().any(|p| p.key == spend.key) {
                contents.pending_spends.push(spend.clone());
            }
        })
        .await;
    if let Err(error) = saved {
        return SpendAttempt::NotSaved(error);
    }
    config.entitlements.observe(LedgerStep::SpendSaved);
    let answer = client.spend(token, spend).await;
    if answer.is_ok() {
        config.entitlements.observe(LedgerStep::SpendAnswered);
    }
    let forget = |contents: &mut CachedInventory| contents.pending_spends.retain(|p| p.key != spend.key);
    match answer {
        Ok(answer) => {
            let update = |contents: &mut CachedInventory| {
                forget(contents);
                if let Ok(snapshot) = &answer
                    && snapshot.version >= contents.items_version
                {
                    contents.items = snapshot.items.clone();
                    contents.items_version = snapshot.version;
                }
            };
            let cache = cache.update(update).await.unwrap_or_else(|(contents, _)| contents);
            SpendAttempt::Answered { answer, cache }
        }
        Err(error) if error.is_final_refusal() => {
            let cache = cache.update(forget).await.unwrap_or_else(|(contents, _)| contents);
            SpendAttempt::Refused { error, cache }
        }
        Err(error) => SpendAttempt::Unsettled(error),
    }
}
