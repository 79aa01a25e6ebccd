//! The client-side inventory source: the game pulls entitlements itself (from Prime Gaming, or from the studio
//! backend's feed), grants them into the recipient's inventory within a per-frame time budget, keeps a durable
//! ledger per player, and reports each grant fulfilled once the ledger says it is durable. Its systems:
//! `receive.rs` (results), `grant.rs` (grants and revocations), `send.rs` (pulls and reports when the
//! [`PullPacer`] allows); its files: `file.rs` (the format) and `writer.rs` (the thread that owns it).
//!
//! Exactly once: an entitlement is granted only if the ledger has never seen it granted; it is reported only
//! after its grant is on disk; a confirmed report is recorded, and a crash before that only causes a harmless
//! re-report (the Fulfill API is idempotent).

pub(crate) mod file;
mod grant;
mod receive;
mod send;
mod writer;

pub(crate) use grant::{apply_grants, on_recipient_added};
pub(crate) use receive::receive_ledger;
pub(crate) use send::{ledger_next_work, send_ledger_requests};
pub(crate) use writer::{LedgerEvent, LedgerWriter};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use amazon_rewards_protocol::prime_gaming::{Entitlement, FulfillResponse, FulfillResult, LastInstruction};
use bevy::prelude::*;

use super::PullReason;
use super::client::EntitlementsClient;
use super::pacing::{PullPacer, backoff_delay, random_jitter};
use crate::auth::PlayerSession;
use crate::config::{PullPacing, RewardsConfig};
use crate::core::TokenRefused;
use crate::core::bridge::{BusyFlag, Outbox};
use crate::core::token_gate::TokenGate;
use crate::error::{ApiError, RewardsError};
use file::{EntryState, LedgerChange, ledger_path};

/// What the ledger source's background work sends back.
pub(crate) enum LedgerUpdate {
    /// A pull finished.
    PullFinished { session: u64, reason: PullReason, result: Result<Vec<Entitlement>, ApiError> },
    /// A fulfilment report finished.
    ReportFinished {
        session: u64,
        entitlement_ids: Vec<(String, LastInstruction)>,
        result: Result<FulfillResponse, ApiError>,
    },
    /// The ledger writer answered.
    Ledger(LedgerEvent),
}

/// The main thread's view of the ledger source for the current session.
#[derive(Resource)]
pub(crate) struct LedgerSource {
    client: EntitlementsClient,
    outbox: Outbox<LedgerUpdate>,
    ledger: LedgerWriter,
    /// Raised while grants wait, so the receive schedule keeps granting on the next frames.
    granting: BusyFlag,
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
    /// Whether pulls and reports wait for a refreshed token (see [`TokenGate`]).
    token: TokenGate,
    /// Entitlements already complained about this session (one error each, not one per frame or pull).
    complained: HashSet<String>,
    waiting_for_recipient: bool,
    catalog_failure_reported: bool,
    /// When this frame's receiving began, if it had anything to do: granting counts it against its budget.
    busy_since: Option<Instant>,
    /// Another instance holds the data directory: no ledger is opened, so nothing is granted or reported.
    read_only: bool,
}

impl LedgerSource {
    pub(crate) fn new(
        client: EntitlementsClient,
        outbox: Outbox<LedgerUpdate>,
        ledger: LedgerWriter,
        granting: BusyFlag,
    ) -> Self {
        Self {
            granting,
            client,
            outbox,
            ledger,
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
            token: TokenGate::default(),
            complained: HashSet::new(),
            waiting_for_recipient: false,
            catalog_failure_reported: false,
            busy_since: None,
            read_only: false,
        }
    }

    /// Another instance holds the data directory: open no ledger (see [`RewardsError::AnotherInstanceRunning`]).
    pub(crate) fn make_read_only(&mut self) {
        self.read_only = true;
    }

    pub(super) fn begin_session(
        &mut self,
        config: &RewardsConfig,
        pacer: &mut PullPacer,
        session: Option<&PlayerSession>,
    ) -> Result<(), RewardsError> {
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
        self.token = TokenGate::default();
        self.complained.clear();
        *pacer = PullPacer::new(config.entitlements.pacing.clone());
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

    /// Amazon's error process ([`TokenGate`]): whether requests now wait for a refresh, asked for here.
    fn token_was_refused(
        &mut self,
        error: &ApiError,
        call: &'static str,
        refusals: &mut MessageWriter<TokenRefused>,
    ) -> bool {
        let refused = self.token.refused(error, call);
        if refused {
            refusals.write(TokenRefused);
        }
        refused
    }

    /// The next report waits: backoff after one more failure, at least the server's `Retry-After`.
    fn back_off_reports(&mut self, retry_after: Option<Duration>, pacing: &PullPacing) -> Duration {
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
        sent: Vec<(String, LastInstruction)>,
        response: FulfillResponse,
        pacing: &PullPacing,
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
        self.ledger.record(self.session, confirmed);
        if unconfirmed.is_empty() {
            self.report_failures = 0;
        } else {
            self.report_queue.extend(unconfirmed);
            let delay = self.back_off_reports(None, pacing);
            warn!("the service did not confirm every fulfilment report; retrying them in {delay:?}");
        }
    }
}
