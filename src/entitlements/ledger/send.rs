//! The ledger source's send system: follows the [`PlayerSession`] (a new player opens their ledger), starts the
//! pull the [`PullPacer`] allows, and sends due fulfilment reports in batches.

use std::time::Instant;

use amazon_rewards_protocol::prime_gaming::{FulfillRequest, FulfillmentStatusUpdate, LastInstruction};
use bevy::prelude::*;

use super::{LedgerSource, LedgerUpdate};
use crate::auth::PlayerSession;
use crate::config::{LedgerStep, RewardsConfig};
use crate::core::bridge::RewardsRuntime;
use crate::entitlements::pacing::PullPacer;
use crate::entitlements::{PullReason, RewardsStatus};
use crate::error::RewardsError;

impl LedgerSource {
    fn session_changed(&self, session: Option<&Res<PlayerSession>>) -> bool {
        match session {
            Some(session) => session.is_changed(),
            None => self.player_id.is_some(),
        }
    }

    fn report_due(&self) -> bool {
        !self.report_in_flight
            && !self.report_queue.is_empty()
            && self.report_not_before.is_none_or(|t| Instant::now() >= t)
    }
}

/// When the ledger source next has work, for the send set's one condition: now if the session is not the one
/// the source follows; else when the pacer lets a waiting pull start or a queued report's backoff ends.
pub(crate) fn ledger_next_work(world: &World) -> Option<Instant> {
    let (source, pacer) = (world.get_resource::<LedgerSource>()?, world.get_resource::<PullPacer>()?);
    let session = world.get_resource::<PlayerSession>();
    let followed = (source.player_id.as_deref(), source.access_token.as_deref());
    if session.map(|s| (Some(s.player_id()), Some(s.access_token().secret()))).unwrap_or((None, None)) != followed {
        return Some(Instant::now());
    }
    if !source.ledger_ready || source.token.waiting() {
        return None;
    }
    let report = (!source.report_in_flight && !source.report_queue.is_empty())
        .then(|| source.report_not_before.unwrap_or_else(Instant::now));
    report.into_iter().chain(pacer.next_start()).min()
}

/// Follows the session, then starts a due pull and a due report. Runs in
/// [`RewardsSend`](crate::RewardsSend), woken when [`ledger_next_work`] says.
pub(crate) fn send_ledger_requests(
    session: Option<Res<PlayerSession>>,
    mut source: ResMut<LedgerSource>,
    mut pacer: ResMut<PullPacer>,
    mut status: ResMut<RewardsStatus>,
    runtime: Res<RewardsRuntime>,
    config: Res<RewardsConfig>,
    mut errors: MessageWriter<RewardsError>,
) {
    let source = &mut *source;
    if source.session_changed(session.as_ref()) {
        follow_session(source, &mut pacer, &mut status, &config, session.as_deref(), &mut errors);
    }
    if !source.ledger_ready || source.token.waiting() {
        return;
    }
    let Some(token) = source.access_token.clone() else {
        return;
    };
    if pacer.is_pending()
        && let Some(reason) = pacer.start_if_due(Instant::now())
    {
        status.pulling = true;
        source.start_pull(&runtime, &config, token.clone(), reason);
    }
    if source.report_due() {
        source.start_report(&runtime, &config, token);
    }
}

/// A fresh token for the same player keeps the ledger and resumes; another player (or none) starts over.
fn follow_session(
    source: &mut LedgerSource,
    pacer: &mut PullPacer,
    status: &mut RewardsStatus,
    config: &RewardsConfig,
    session: Option<&PlayerSession>,
    errors: &mut MessageWriter<RewardsError>,
) {
    let same_player = session.map(|s| s.player_id()) == source.player_id.as_deref();
    if same_player && session.is_some() {
        // E.g. after a refresh.
        source.access_token = session.map(|s| s.access_token().secret().to_owned());
        source.token.new_token();
        source.report_not_before = None;
        pacer.request(PullReason::LoggedIn);
        return;
    }
    if let Err(error) = source.begin_session(config, pacer, session) {
        errors.write(error);
    }
    *status = RewardsStatus::default();
    if session.is_some() {
        pacer.request(PullReason::LoggedIn);
    }
}

impl LedgerSource {
    fn start_pull(&self, runtime: &RewardsRuntime, config: &RewardsConfig, token: String, reason: PullReason) {
        let (client, session, config) = (self.client.clone(), self.session, config.clone());
        runtime.spawn(&self.outbox, async move {
            let result = client.fetch_all(&token).await;
            if result.is_ok() {
                config.entitlements.observe(LedgerStep::Pulled);
            }
            LedgerUpdate::PullFinished { session, reason, result }
        });
    }

    fn start_report(&mut self, runtime: &RewardsRuntime, config: &RewardsConfig, token: String) {
        let batch_size = self.report_queue.len().min(config.entitlements.max_report_batch);
        let batch: Vec<(String, LastInstruction)> = self.report_queue.drain(..batch_size).collect();
        self.report_in_flight = true;
        let request = FulfillRequest {
            fulfillment_status_updates: batch
                .iter()
                .map(|(id, instruction)| FulfillmentStatusUpdate {
                    entitlement_id: id.clone(),
                    last_instruction: *instruction,
                    fulfillment_address: config.entitlements.fulfillment_address.clone(),
                })
                .collect(),
        };
        let (client, session, config) = (self.client.clone(), self.session, config.clone());
        runtime.spawn(&self.outbox, async move {
            let result = client.fulfill(&token, &request).await;
            if result.is_ok() {
                config.entitlements.observe(LedgerStep::ReportSent);
            }
            LedgerUpdate::ReportFinished { session, entitlement_ids: batch, result }
        });
    }
}
