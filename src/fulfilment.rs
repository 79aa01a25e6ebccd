//! The pull → grant → report loop on the main thread: the systems that start pulls when the pacer allows,
//! grant pulled entitlements into the recipient's inventory within a per-frame time budget, and report them
//! fulfilled once the ledger says the grant is durable.
//!
//! Exactly once: an entitlement is granted only if the ledger has never seen it granted; it is reported only
//! after its grant is on disk; a confirmed report is recorded, and a crash before that only causes a harmless
//! re-report (the Fulfill API is idempotent).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use amazon_rewards_protocol::prime_gaming::{
    Entitlement, FulfillRequest, FulfillResponse, FulfillResult, FulfillmentStatusUpdate, LastInstruction,
    NextInstruction, is_valid_sku,
};
use bevy::asset::LoadState;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy::window::{AppLifecycle, WindowFocused, WindowOccluded};

use crate::auth::{LoginUpdate, PlayerSession};
use crate::config::{LedgerStep, RewardsConfig};
use crate::entitlements::{
    EntitlementFulfilled, EntitlementGranted, EntitlementRevoked, PullCompleted, PullEntitlements, RewardsStatus,
    StoreVisited,
};
use crate::error::{ApiError, RewardsError};
use crate::http::EntitlementsClient;
use crate::inventory::{CatalogHandle, Inventory, ItemCatalog, RewardsRecipient};
use crate::ledger::{EntryState, LedgerChange, LedgerEvent, LedgerWriter, ledger_path};
use crate::pacing::{PullPacer, PullReason, backoff_delay, random_jitter};
use crate::runtime::{BackgroundResult, BackgroundResults, RewardsRuntime};

/// The main thread's view of fulfilment for the current session.
#[derive(Resource)]
pub(crate) struct Fulfilment {
    client: EntitlementsClient,
    ledger: LedgerWriter,
    pacer: PullPacer,
    /// Bumped whenever the player changes, so late results of an old session are ignored.
    session: u64,
    player_id: Option<String>,
    access_token: Option<String>,
    ledger_ready: bool,
    /// Every entitlement the ledger knows, with its state (granted ones are never granted again).
    /// A B-tree, not a hash map: a hash map's growth rehashes every key in one frame (over 1 ms at ~7k
    /// entries), while a B-tree's cost per insert stays small and even.
    states: BTreeMap<String, EntryState>,
    /// The inventory as granted: restored from the ledger, plus this session's grants.
    inventory: BTreeMap<String, u64>,
    grant_queue: VecDeque<Entitlement>,
    /// Durable grants and revocations waiting to be reported, with the status to report.
    report_queue: VecDeque<(String, LastInstruction)>,
    report_in_flight: bool,
    report_not_before: Option<Instant>,
    report_failures: u32,
    /// The token was refused: no pull or report until the login has refreshed it.
    token_refused: bool,
    /// The current token came from a refresh after a refusal: if it is refused too, that is a request
    /// error retried with backoff, not a reason for another refresh or a sign-out. One refresh per token:
    /// only a token that arrives some other way (the scheduled refresh before expiry, a new sign-in) clears it.
    refreshed_after_refusal: bool,
    /// Entitlements already complained about this session (one error each, not one per frame or pull).
    complained: HashSet<String>,
    waiting_for_recipient: bool,
    catalog_failure_reported: bool,
    /// When this frame's receiving began, if it had anything to do: granting counts it against its budget.
    busy_since: Option<Instant>,
    /// The monotonic and wall clocks at the previous frame, to notice the device slept in between.
    last_frame: Option<(Instant, std::time::SystemTime)>,
    /// Another instance holds the data directory: no ledger is opened, so nothing is granted or reported.
    read_only: bool,
}

impl Fulfilment {
    pub(crate) fn new(config: &RewardsConfig, ledger: LedgerWriter) -> Result<Self, ApiError> {
        let client = EntitlementsClient::new(
            &config.entitlements_url,
            config.request_timeout,
            config.max_response_bytes,
            config.max_pages,
        )?;
        Ok(Self {
            client,
            ledger,
            pacer: PullPacer::new(config.pacing.clone()),
            session: 0,
            player_id: None,
            access_token: None,
            ledger_ready: false,
            states: BTreeMap::new(),
            inventory: BTreeMap::new(),
            grant_queue: VecDeque::new(),
            report_queue: VecDeque::new(),
            report_in_flight: false,
            report_not_before: None,
            report_failures: 0,
            token_refused: false,
            refreshed_after_refusal: false,
            complained: HashSet::new(),
            waiting_for_recipient: false,
            catalog_failure_reported: false,
            busy_since: None,
            last_frame: None,
            read_only: false,
        })
    }

    /// Another instance holds the data directory: open no ledger (see [`RewardsError::AnotherInstanceRunning`]).
    pub(crate) fn make_read_only(&mut self) {
        self.read_only = true;
    }

    fn begin_session(&mut self, config: &RewardsConfig, session: Option<&PlayerSession>) -> Result<(), RewardsError> {
        self.session += 1;
        self.player_id = session.map(|s| s.player_id().to_owned());
        self.access_token = session.map(|s| s.access_token().secret().to_owned());
        self.ledger_ready = false;
        self.states.clear();
        self.inventory.clear();
        self.grant_queue.clear();
        self.report_queue.clear();
        self.report_in_flight = false;
        self.report_not_before = None;
        self.report_failures = 0;
        self.token_refused = false;
        self.refreshed_after_refusal = false;
        self.complained.clear();
        self.pacer = PullPacer::new(config.pacing.clone());
        if let Some(player_id) = &self.player_id {
            let data_dir = config
                .resolved_data_dir()
                .ok_or_else(|| RewardsError::Storage("no data directory: set RewardsConfig::data_dir".to_owned()))?;
            if self.read_only {
                return Err(RewardsError::AnotherInstanceRunning { data_dir: data_dir.display().to_string() });
            }
            self.ledger.open(self.session, player_id.clone(), ledger_path(&data_dir, player_id));
        }
        Ok(())
    }

    fn complain_once(&mut self, entitlement_id: &str) -> bool {
        self.complained.insert(entitlement_id.to_owned())
    }

    /// Whether the device slept since the previous frame: the monotonic clock stops during sleep on every
    /// desktop OS while the wall clock does not, so the wall clock runs ahead by (about) the time slept.
    fn woke_from_sleep(&mut self, config: &RewardsConfig) -> bool {
        let now = (Instant::now(), (config.wall_clock)());
        let Some((mono_before, wall_before)) = self.last_frame.replace(now) else {
            return false;
        };
        let mono = now.0.saturating_duration_since(mono_before);
        let wall = now.1.duration_since(wall_before).unwrap_or_default();
        wall.saturating_sub(mono) > config.sleep_threshold
    }

    /// Amazon's error process (retry, refresh, relink): an HTTP 400/401 may mean an expired token, so the
    /// first refusal stops requests until the login has refreshed the token once (`TokenRefused`); a refusal
    /// of the refreshed token is an ordinary request error, retried with backoff, never a sign-out. Returns
    /// whether requests now wait for a refresh.
    fn token_was_refused(&mut self, error: &ApiError, login_updates: &mut Vec<LoginUpdate>) -> bool {
        if !error.needs_new_token() || self.refreshed_after_refusal {
            return false;
        }
        self.token_refused = true;
        login_updates.push(LoginUpdate::TokenRefused);
        true
    }

    /// The next report waits: backoff after one more failure, at least the server's `Retry-After`.
    fn back_off_reports(&mut self, retry_after: Option<Duration>, pacing: &crate::config::PullPacing) -> Duration {
        self.report_failures = self.report_failures.saturating_add(1);
        let delay = backoff_delay(pacing, self.report_failures, random_jitter()).max(retry_after.unwrap_or_default());
        self.report_not_before = Instant::now().checked_add(delay);
        delay
    }

    /// Applies a Fulfill answer: confirmed entitlements go to the ledger; an `ERROR`, a result this version
    /// does not know, or an id the answer left out stays queued and is retried with backoff like a failed
    /// call (never at once: a partial answer must not turn into a request per frame).
    fn apply_report_answer(
        &mut self,
        session: u64,
        sent: Vec<(String, LastInstruction)>,
        response: FulfillResponse,
        pacing: &crate::config::PullPacing,
        errors: &mut MessageWriter<RewardsError>,
    ) {
        let mut outcomes: HashMap<String, (FulfillResult, Option<String>)> =
            response.fulfillment_status_updates.into_iter().map(|r| (r.entitlement_id, (r.result, r.reason))).collect();
        let mut confirmed = Vec::new();
        let mut unconfirmed = Vec::new();
        for (id, reported_as) in sent {
            match outcomes.remove(&id) {
                Some((FulfillResult::Success, _)) => confirmed.push(match reported_as {
                    LastInstruction::Fulfill => LedgerChange::Reported { entitlement_id: id },
                    LastInstruction::Revoke => LedgerChange::RevokeReported { entitlement_id: id },
                }),
                outcome => {
                    let reason = match outcome {
                        Some((_, reason)) => reason.unwrap_or_else(|| "no reason given".into()),
                        None => "the answer did not mention it".into(),
                    };
                    if self.complain_once(&id) {
                        errors.write(RewardsError::ReportRejected { entitlement_id: id.clone(), reason });
                    }
                    unconfirmed.push((id, reported_as));
                }
            }
        }
        self.ledger.record(session, confirmed);
        if unconfirmed.is_empty() {
            self.report_failures = 0;
        } else {
            self.report_queue.extend(unconfirmed);
            let delay = self.back_off_reports(None, pacing);
            warn!("the service did not confirm every fulfilment report; retrying them in {delay:?}");
        }
    }
}

/// What [`Receiver::receive`] works with.
#[derive(SystemParam)]
pub(crate) struct Receiver<'w, 's> {
    results: ResMut<'w, BackgroundResults>,
    fulfilment: ResMut<'w, Fulfilment>,
    status: ResMut<'w, RewardsStatus>,
    config: Res<'w, RewardsConfig>,
    recipients: Query<'w, 's, &'static mut Inventory, With<RewardsRecipient>>,
    pulled: MessageWriter<'w, PullCompleted>,
    fulfilled: MessageWriter<'w, EntitlementFulfilled>,
    errors: MessageWriter<'w, RewardsError>,
    subscriptions: crate::subscriptions::SubscriptionResults<'w>,
    moments: crate::moments::MomentsResults<'w>,
}

impl Receiver<'_, '_> {
    /// Drains the background bridge: pull and report results, ledger answers. Returns what concerns the
    /// login. Called from the plugin's receive system in
    /// [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
    pub(crate) fn receive(&mut self) -> Vec<LoginUpdate> {
        let Receiver {
            results,
            fulfilment,
            status,
            config,
            recipients,
            pulled,
            fulfilled,
            errors,
            subscriptions,
            moments,
        } = self;
        let mut login_updates = Vec::new();
        while let Ok(result) = results.0.try_recv() {
            let fulfilment = &mut **fulfilment;
            fulfilment.busy_since.get_or_insert_with(Instant::now);
            match result {
                BackgroundResult::PullFinished { session, reason, result } => {
                    if session != fulfilment.session {
                        continue;
                    }
                    status.pulling = false;
                    match result {
                        Ok(entitlements) => {
                            fulfilment.pacer.succeeded();
                            pulled.write(PullCompleted { reason, entitlements: entitlements.len() });
                            // The newest pull is the service's whole current view: it replaces what waited.
                            fulfilment.grant_queue = entitlements.into();
                            status.pending_grants = fulfilment.grant_queue.len();
                            status.last_pull = Some(Instant::now());
                            status.last_error = None;
                        }
                        Err(error) => {
                            let refused = fulfilment.token_was_refused(&error, &mut login_updates);
                            let delay =
                                fulfilment.pacer.failed(Instant::now(), error.retry_after(), !refused, random_jitter());
                            warn!("entitlement pull failed ({error}); next attempt in {delay:?} at the earliest");
                            status.last_error = Some(RewardsError::Pull(error.clone()));
                            errors.write(RewardsError::Pull(error));
                        }
                    }
                }
                BackgroundResult::ReportFinished { session, entitlement_ids, result } => {
                    if session != fulfilment.session {
                        continue;
                    }
                    fulfilment.report_in_flight = false;
                    match result {
                        Ok(response) => {
                            fulfilment.apply_report_answer(session, entitlement_ids, response, &config.pacing, errors);
                        }
                        Err(error) => {
                            for entry in entitlement_ids.into_iter().rev() {
                                fulfilment.report_queue.push_front(entry);
                            }
                            fulfilment.token_was_refused(&error, &mut login_updates);
                            let delay = fulfilment.back_off_reports(error.retry_after(), &config.pacing);
                            warn!("fulfilment report failed ({error}); retrying in {delay:?}");
                            status.last_error = Some(RewardsError::Report(error.clone()));
                            errors.write(RewardsError::Report(error));
                        }
                    }
                    status.pending_reports = fulfilment.report_queue.len();
                }
                BackgroundResult::Login(update) => login_updates.push(update),
                BackgroundResult::Subscriptions(update) => {
                    if subscriptions.apply(update) {
                        fulfilment.pacer.request(PullReason::SubscriptionActivated);
                    }
                }
                BackgroundResult::Moments(update) => moments.apply(update, errors),
                BackgroundResult::Ledger(event) => match event {
                    LedgerEvent::Opened { session, ledger } => {
                        if session != fulfilment.session {
                            continue;
                        }
                        fulfilment.report_queue = ledger.unreported.into();
                        fulfilment.states = ledger.states;
                        fulfilment.inventory = ledger.inventory;
                        fulfilment.ledger_ready = true;
                        for mut inventory in recipients.iter_mut() {
                            inventory.replace(fulfilment.inventory.clone());
                        }
                        fulfilment.pacer.request(PullReason::Startup);
                        status.ledger_ready = true;
                        status.pending_reports = fulfilment.report_queue.len();
                    }
                    LedgerEvent::OpenFailed { session, error } => {
                        if session == fulfilment.session {
                            error!("rewards ledger unavailable: {error}");
                            status.last_error = Some(RewardsError::Storage(error.clone()));
                            errors.write(RewardsError::Storage(error));
                        }
                    }
                    LedgerEvent::Persisted { session, durable, confirmed } => {
                        if session != fulfilment.session {
                            continue;
                        }
                        fulfilment.report_queue.extend(durable);
                        for (id, status) in confirmed {
                            if status == LastInstruction::Revoke {
                                fulfilment.states.insert(id, EntryState::RevokeReported);
                            } else {
                                fulfilment.states.insert(id.clone(), EntryState::Reported);
                                fulfilled.write(EntitlementFulfilled { entitlement_id: id });
                            }
                        }
                        status.pending_reports = fulfilment.report_queue.len();
                    }
                    LedgerEvent::WriteFailed { session, error } => {
                        if session == fulfilment.session {
                            error!("{error}; retrying");
                            status.last_error = Some(RewardsError::Storage(error.clone()));
                            errors.write(RewardsError::Storage(error));
                        }
                    }
                },
            }
        }
        login_updates
    }
}

/// Whether pulled entitlements wait to be granted (the run condition of [`apply_grants`]).
pub(crate) fn grants_waiting(fulfilment: Res<Fulfilment>) -> bool {
    !fulfilment.grant_queue.is_empty()
}

/// Grants pulled entitlements into the recipient's inventory, as many as fit in the frame's time budget,
/// and hands the grants to the ledger writer. Runs in [`AmazonRewardsSystems::Apply`](crate::AmazonRewardsSystems::Apply)
/// while grants wait.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_grants(
    mut fulfilment: ResMut<Fulfilment>,
    mut status: ResMut<RewardsStatus>,
    config: Res<RewardsConfig>,
    catalog_handle: Res<CatalogHandle>,
    catalogs: Res<Assets<ItemCatalog>>,
    asset_server: Res<AssetServer>,
    mut recipients: Query<&mut Inventory, With<RewardsRecipient>>,
    mut granted: MessageWriter<EntitlementGranted>,
    mut revoked: MessageWriter<EntitlementRevoked>,
    mut errors: MessageWriter<RewardsError>,
) {
    if fulfilment.grant_queue.is_empty() {
        return;
    }
    let fulfilment = &mut *fulfilment;
    let started = fulfilment.busy_since.take().unwrap_or_else(Instant::now);
    if !fulfilment.ledger_ready {
        return;
    }
    let Some(catalog) = catalogs.get(&catalog_handle.0) else {
        if let LoadState::Failed(error) = asset_server.load_state(&catalog_handle.0)
            && !fulfilment.catalog_failure_reported
        {
            fulfilment.catalog_failure_reported = true;
            error!("item catalog failed to load: {error}");
            errors.write(RewardsError::Catalog(error.to_string()));
        }
        return;
    };
    let mut recipient = recipients.single_mut().ok();
    let mut changes = Vec::new();
    while let Some(entitlement) = fulfilment.grant_queue.pop_front() {
        let Entitlement { entitlement_id, vendor_product_id: sku, next_instruction, source, active_until } =
            entitlement;
        let state = fulfilment.states.get(&entitlement_id).copied();
        if matches!(state, Some(EntryState::Revoked | EntryState::RevokeReported)) {
            // Final: a revoked entitlement is never granted again nor taken back twice.
            continue;
        }
        if next_instruction == NextInstruction::Revoke {
            let granted_items = match state {
                Some(EntryState::Granted | EntryState::Reported) => {
                    catalog.items_for(&sku).unwrap_or_default().to_vec()
                }
                _ => Vec::new(),
            };
            let (taken, missing) = match recipient.as_mut() {
                Some(inventory) => inventory.remove(&granted_items),
                None => crate::inventory::take_stacks(&mut fulfilment.inventory.clone(), &granted_items),
            };
            crate::inventory::take_stacks(&mut fulfilment.inventory, &taken);
            if !missing.is_empty() {
                warn!("entitlement {entitlement_id} revoked, but the player no longer had all of it: {missing:?}");
            }
            fulfilment.states.insert(entitlement_id.clone(), EntryState::Revoked);
            changes.push(LedgerChange::Revoked {
                entitlement_id: entitlement_id.clone(),
                sku: sku.clone(),
                taken: taken.clone(),
            });
            revoked.write(EntitlementRevoked { entitlement_id, sku, source, taken, missing });
            if started.elapsed() >= config.grant_budget_per_frame {
                break;
            }
            continue;
        }
        if matches!(state, Some(EntryState::Granted | EntryState::Reported)) {
            continue;
        }
        let grantable = next_instruction == NextInstruction::Fulfill
            && is_valid_sku(&sku)
            && catalog.items_for(&sku).is_some()
            && recipient.is_some();
        if !grantable {
            if state.is_none() {
                fulfilment.states.insert(entitlement_id.clone(), EntryState::Seen);
                changes.push(LedgerChange::Seen { entitlement_id: entitlement_id.clone(), sku: sku.clone() });
            }
            if next_instruction == NextInstruction::Fulfill && fulfilment.complain_once(&entitlement_id) {
                if recipient.is_none() {
                    fulfilment.waiting_for_recipient = true;
                    errors.write(RewardsError::NoRecipient { entitlement_id });
                } else {
                    warn!("entitlement {entitlement_id} has unknown SKU {sku:?}; left unfulfilled");
                    errors.write(RewardsError::UnknownSku { entitlement_id, sku });
                }
            }
        } else if let (Some(items), Some(inventory)) = (catalog.items_for(&sku), recipient.as_mut()) {
            inventory.add(items);
            for stack in items {
                let count = fulfilment.inventory.entry(stack.item.clone()).or_default();
                *count = count.saturating_add(stack.quantity);
            }
            fulfilment.states.insert(entitlement_id.clone(), EntryState::Granted);
            changes.push(LedgerChange::Granted {
                entitlement_id: entitlement_id.clone(),
                sku: sku.clone(),
                items: items.to_vec(),
                // Only the studio backend's feed names a source, and only it revokes.
                revocable: source.is_some(),
            });
            granted.write(EntitlementGranted { entitlement_id, sku, source, active_until, items: items.to_vec() });
        }
        if started.elapsed() >= config.grant_budget_per_frame {
            break;
        }
    }
    fulfilment.ledger.record(fulfilment.session, changes);
    status.pending_grants = fulfilment.grant_queue.len();
}

/// Gives a new recipient the inventory granted so far, and retries grants that waited for one.
pub(crate) fn on_recipient_added(
    added: On<Add, RewardsRecipient>,
    fulfilment: Option<ResMut<Fulfilment>>,
    mut inventories: Query<&mut Inventory>,
) {
    // Before startup there is no ledger yet; opening it fills every recipient then.
    let Some(mut fulfilment) = fulfilment else {
        return;
    };
    if let Ok(mut inventory) = inventories.get_mut(added.entity)
        && fulfilment.ledger_ready
    {
        inventory.replace(fulfilment.inventory.clone());
    }
    if std::mem::take(&mut fulfilment.waiting_for_recipient) {
        fulfilment.complained.clear();
        fulfilment.pacer.request(PullReason::RecipientReady);
    }
}

/// The window and app events Amazon's tips name as moments to check for new goods: the window coming to the
/// top (focus), restored from minimised (no longer occluded), and the app resuming from pause.
#[derive(SystemParam)]
pub(crate) struct WindowTriggers<'w, 's> {
    focus: MessageReader<'w, 's, WindowFocused>,
    occlusion: MessageReader<'w, 's, WindowOccluded>,
    lifecycle: MessageReader<'w, 's, AppLifecycle>,
}

impl WindowTriggers<'_, '_> {
    fn read(&mut self) -> Vec<PullReason> {
        let focus = self.focus.read().filter(|e| e.focused).map(|_| PullReason::FocusRegained);
        let restored = self.occlusion.read().filter(|e| !e.occluded).map(|_| PullReason::WindowRestored);
        let resumed = self.lifecycle.read().filter(|e| **e == AppLifecycle::WillResume).map(|_| PullReason::AppResumed);
        focus.chain(restored).chain(resumed).collect()
    }
}

/// Turns triggers into paced pulls and sends due fulfilment reports. Runs in
/// [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send).
#[allow(clippy::too_many_arguments)]
pub(crate) fn send_requests(
    session: Option<Res<PlayerSession>>,
    mut fulfilment: ResMut<Fulfilment>,
    mut status: ResMut<RewardsStatus>,
    runtime: Res<RewardsRuntime>,
    config: Res<RewardsConfig>,
    mut explicit: MessageReader<PullEntitlements>,
    mut store_visits: MessageReader<StoreVisited>,
    mut window_triggers: WindowTriggers,
    mut errors: MessageWriter<RewardsError>,
    mut subscription_requests: crate::subscriptions::SubscriptionRequests,
    mut moment_requests: crate::moments::MomentsRequests,
) {
    subscription_requests.send(session.as_deref(), &runtime, &config, fulfilment.client.http());
    moment_requests.send(session.as_deref(), &runtime, &config, &mut errors);
    let fulfilment = &mut *fulfilment;
    fulfilment.busy_since = None;
    let session_changed = match &session {
        Some(session) => session.is_changed(),
        None => fulfilment.player_id.is_some(),
    };
    if session_changed {
        let same_player = session.as_ref().map(|s| s.player_id()) == fulfilment.player_id.as_deref();
        if same_player && session.is_some() {
            // A fresh token for the same player (e.g. after a refresh): keep the ledger, resume.
            fulfilment.access_token = session.as_ref().map(|s| s.access_token().secret().to_owned());
            fulfilment.refreshed_after_refusal = std::mem::take(&mut fulfilment.token_refused);
            fulfilment.report_not_before = None;
            fulfilment.pacer.request(PullReason::LoggedIn);
        } else {
            if let Err(error) = fulfilment.begin_session(&config, session.as_deref()) {
                errors.write(error);
            }
            *status = RewardsStatus::default();
            if session.is_some() {
                fulfilment.pacer.request(PullReason::LoggedIn);
            }
        }
    }
    for _ in explicit.read() {
        fulfilment.pacer.request(PullReason::Requested);
    }
    for _ in store_visits.read() {
        fulfilment.pacer.request(PullReason::StoreVisited);
    }
    for reason in window_triggers.read() {
        fulfilment.pacer.request(reason);
    }
    if fulfilment.woke_from_sleep(&config) {
        fulfilment.pacer.request(PullReason::WokeFromSleep);
    }
    if !fulfilment.ledger_ready || fulfilment.token_refused {
        return;
    }
    let report_due = !fulfilment.report_in_flight
        && !fulfilment.report_queue.is_empty()
        && fulfilment.report_not_before.is_none_or(|t| Instant::now() >= t);
    if !fulfilment.pacer.is_pending() && !report_due {
        return;
    }
    let Some(token) = fulfilment.access_token.clone() else {
        return;
    };
    if fulfilment.pacer.is_pending()
        && let Some(reason) = fulfilment.pacer.start_if_due(Instant::now())
    {
        status.pulling = true;
        let client = fulfilment.client.clone();
        let session = fulfilment.session;
        let token = token.clone();
        let config = config.clone();
        runtime.spawn(async move {
            let result = client.fetch_all(&token).await;
            if result.is_ok() {
                config.observe(LedgerStep::Pulled);
            }
            BackgroundResult::PullFinished { session, reason, result }
        });
    }
    if report_due {
        let batch: Vec<(String, LastInstruction)> =
            fulfilment.report_queue.drain(..fulfilment.report_queue.len().min(config.max_report_batch)).collect();
        fulfilment.report_in_flight = true;
        let request = FulfillRequest {
            fulfillment_status_updates: batch
                .iter()
                .map(|(id, instruction)| FulfillmentStatusUpdate {
                    entitlement_id: id.clone(),
                    last_instruction: *instruction,
                    fulfillment_address: config.fulfillment_address.clone(),
                })
                .collect(),
        };
        let client = fulfilment.client.clone();
        let session = fulfilment.session;
        let config = config.clone();
        runtime.spawn(async move {
            let result = client.fulfill(&token, &request).await;
            if result.is_ok() {
                config.observe(LedgerStep::ReportSent);
            }
            BackgroundResult::ReportFinished { session, entitlement_ids: batch, result }
        });
    }
}
