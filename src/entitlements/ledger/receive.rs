//! The ledger source's receive system: pull and report results and the ledger writer's answers, applied to
//! [`LedgerSource`], [`RewardsStatus`] and the game's messages.

use std::time::Instant;

use amazon_rewards_protocol::prime_gaming::{Entitlement, FulfillResponse, LastInstruction};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::file::EntryState;
use super::{LedgerEvent, LedgerSource, LedgerUpdate};
use crate::config::RewardsConfig;
use crate::core::TokenRefused;
use crate::core::bridge::Inbox;
use crate::entitlements::pacing::{PullPacer, random_jitter};
use crate::entitlements::{EntitlementFulfilled, PullCompleted, PullReason, RewardsStatus};
use crate::error::{ApiError, RewardsError};
use crate::inventory::{Inventory, RewardsRecipient};

/// What receiving works with.
#[derive(SystemParam)]
pub(crate) struct LedgerReceiver<'w, 's> {
    source: ResMut<'w, LedgerSource>,
    pacer: ResMut<'w, PullPacer>,
    status: ResMut<'w, RewardsStatus>,
    config: Res<'w, RewardsConfig>,
    api: Res<'w, crate::core::http::ApiClient>,
    recipients: Query<'w, 's, &'static mut Inventory, With<RewardsRecipient>>,
    pulled: MessageWriter<'w, PullCompleted>,
    fulfilled: MessageWriter<'w, EntitlementFulfilled>,
    errors: MessageWriter<'w, RewardsError>,
    refusals: MessageWriter<'w, TokenRefused>,
}

/// Drains the ledger source's inbox. Runs in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
pub(crate) fn receive_ledger(mut inbox: ResMut<Inbox<LedgerUpdate>>, mut receiver: LedgerReceiver) {
    // Granting, later this frame, counts this frame's receiving against its budget.
    receiver.source.busy_since = Some(Instant::now());
    while let Some(update) = inbox.next() {
        match update {
            LedgerUpdate::PullFinished { session, reason, result } if session == receiver.source.session => {
                receiver.pull_finished(reason, result);
            }
            LedgerUpdate::ReportFinished { session, entitlement_ids, result } if session == receiver.source.session => {
                receiver.report_finished(entitlement_ids, result);
            }
            LedgerUpdate::Ledger(event) => receiver.ledger_answered(event),
            // Late results of an earlier player's session.
            LedgerUpdate::PullFinished { .. } | LedgerUpdate::ReportFinished { .. } => {}
        }
    }
}

impl LedgerReceiver<'_, '_> {
    fn pull_finished(&mut self, reason: PullReason, result: Result<Vec<Entitlement>, ApiError>) {
        self.status.pulling = false;
        self.status.environment = self.api.environment();
        match result {
            Ok(entitlements) => {
                self.pacer.succeeded();
                self.source.token.succeeded("pull");
                self.pulled.write(PullCompleted { reason, entitlements: entitlements.len() });
                // The newest pull is the service's whole current view: it replaces what waited.
                self.source.grant_queue = entitlements.into();
                self.status.pending_grants = self.source.grant_queue.len();
                self.status.last_pull = Some(Instant::now());
                self.status.last_error = None;
            }
            Err(error) => {
                let refused = self.source.token_was_refused(&error, "pull", &mut self.refusals);
                let delay = self.pacer.failed(Instant::now(), error.retry_after(), !refused, random_jitter());
                warn!("entitlement pull failed ({error}); next attempt in {delay:?} at the earliest");
                self.status.last_error = Some(RewardsError::Pull(error.clone()));
                self.errors.write(RewardsError::Pull(error));
            }
        }
    }

    fn report_finished(
        &mut self,
        entitlement_ids: Vec<(String, LastInstruction)>,
        result: Result<FulfillResponse, ApiError>,
    ) {
        let source = &mut *self.source;
        source.report_in_flight = false;
        let pacing = &self.config.entitlements.pacing;
        match result {
            Ok(response) => {
                source.token.succeeded("report");
                source.apply_report_answer(entitlement_ids, response, pacing, &mut self.errors);
            }
            Err(error) => {
                for entry in entitlement_ids.into_iter().rev() {
                    source.report_queue.push_front(entry);
                }
                source.token_was_refused(&error, "report", &mut self.refusals);
                let delay = source.back_off_reports(error.retry_after(), pacing);
                warn!("fulfilment report failed ({error}); retrying in {delay:?}");
                self.status.last_error = Some(RewardsError::Report(error.clone()));
                self.errors.write(RewardsError::Report(error));
            }
        }
        self.status.pending_reports = source.report_queue.len();
    }

    fn ledger_answered(&mut self, event: LedgerEvent) {
        let current = self.source.session;
        match event {
            LedgerEvent::Opened { session, ledger } if session == current => {
                let source = &mut *self.source;
                source.report_queue = ledger.unreported.into();
                source.states = ledger.states;
                source.inventory = ledger.inventory;
                source.ledger_ready = true;
                for mut inventory in self.recipients.iter_mut() {
                    inventory.replace(source.inventory.clone());
                }
                self.pacer.request(PullReason::Startup);
                self.status.ledger_ready = true;
                self.status.pending_reports = source.report_queue.len();
            }
            LedgerEvent::Persisted { session, durable, confirmed } if session == current => {
                self.source.report_queue.extend(durable);
                for (id, status) in confirmed {
                    if status == LastInstruction::Revoke {
                        self.source.states.insert(id, EntryState::RevokeReported);
                    } else {
                        self.source.states.insert(id.clone(), EntryState::Reported);
                        self.fulfilled.write(EntitlementFulfilled { entitlement_id: id });
                    }
                }
                self.status.pending_reports = self.source.report_queue.len();
            }
            LedgerEvent::OpenFailed { session, error } if session == current => {
                error!("rewards ledger unavailable: {error}");
                self.storage_failed(error);
            }
            LedgerEvent::WriteFailed { session, error } if session == current => {
                error!("{error}; retrying");
                self.storage_failed(error);
            }
            _ => {}
        }
    }

    fn storage_failed(&mut self, error: String) {
        self.status.last_error = Some(RewardsError::Storage(error.clone()));
        self.errors.write(RewardsError::Storage(error));
    }
}
