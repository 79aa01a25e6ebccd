//! The ledger's writer thread: the only owner of the open ledger file. The frame sends it changes
//! ([`LedgerWriter::record`]) and learns from its answers ([`LedgerEvent`]) what is durable, so no frame waits
//! on the disk; a burst of changes becomes one atomic file replacement, and a failed write is retried.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use amazon_rewards_protocol::prime_gaming::LastInstruction;

use super::LedgerUpdate;
use super::file::{EntryState, LedgerChange, LedgerFile};
use crate::auth::tokens::now_unix;
use crate::config::{EntitlementsConfig, LedgerStep};
use crate::core::bridge::Outbox;

/// How long the writer waits before retrying a failed write.
const RETRY_WRITE_AFTER: Duration = Duration::from_secs(1);

/// What the main thread learns when a ledger is opened.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenedLedger {
    pub inventory: BTreeMap<String, u64>,
    pub states: BTreeMap<String, EntryState>,
    /// Granted or revoked but not confirmed reported: to be reported again, never applied again.
    pub unreported: Vec<(String, LastInstruction)>,
}

/// Answers of the writer.
pub(crate) enum LedgerEvent {
    Opened { session: u64, ledger: OpenedLedger },
    OpenFailed { session: u64, error: String },
    Persisted { session: u64, durable: Vec<(String, LastInstruction)>, confirmed: Vec<(String, LastInstruction)> },
    WriteFailed { session: u64, error: String },
}

enum LedgerCommand {
    Open { session: u64, player_id: String, path: PathBuf },
    Record { session: u64, changes: Vec<LedgerChange> },
}

/// The main thread's handle to the writer thread.
pub(crate) struct LedgerWriter {
    commands: Sender<LedgerCommand>,
}

impl LedgerWriter {
    pub(crate) fn spawn(results: Outbox<LedgerUpdate>, config: EntitlementsConfig) -> std::io::Result<Self> {
        let (commands, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("amazon-rewards-ledger".into())
            .spawn(move || WriterThread { results, config, open: None, pending: Vec::new() }.run(receiver))?;
        Ok(Self { commands })
    }

    pub(crate) fn open(&self, session: u64, player_id: String, path: PathBuf) {
        let _ = self.commands.send(LedgerCommand::Open { session, player_id, path });
    }

    pub(crate) fn record(&self, session: u64, changes: Vec<LedgerChange>) {
        if !changes.is_empty() {
            let _ = self.commands.send(LedgerCommand::Record { session, changes });
        }
    }
}

struct OpenLedger {
    session: u64,
    path: PathBuf,
    file: LedgerFile,
}

struct WriterThread {
    results: Outbox<LedgerUpdate>,
    config: EntitlementsConfig,
    open: Option<OpenLedger>,
    /// Changes applied in memory but not yet durable, in order.
    pending: Vec<LedgerChange>,
}

impl WriterThread {
    fn run(mut self, commands: Receiver<LedgerCommand>) {
        loop {
            let first = if self.pending.is_empty() {
                match commands.recv() {
                    Ok(command) => Some(command),
                    Err(_) => return,
                }
            } else {
                match commands.recv_timeout(RETRY_WRITE_AFTER) {
                    Ok(command) => Some(command),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            };
            // Everything already queued joins this write: one file replacement for a burst of changes.
            for command in first.into_iter().chain(commands.try_iter()) {
                self.handle(command);
            }
            if !self.pending.is_empty() {
                self.flush();
            }
        }
    }

    fn handle(&mut self, command: LedgerCommand) {
        match command {
            LedgerCommand::Open { session, player_id, path } => {
                if !self.pending.is_empty() {
                    self.flush();
                }
                self.pending.clear();
                self.open = None;
                let event = match LedgerFile::load(&path, &player_id) {
                    Ok(mut file) => {
                        // Saved with the next change; until then the file on disk is only larger.
                        file.compact(now_unix());
                        let ledger = OpenedLedger {
                            inventory: file.inventory.clone(),
                            states: file.entitlements.iter().map(|(id, e)| (id.clone(), e.state)).collect(),
                            unreported: file
                                .entitlements
                                .iter()
                                .filter_map(|(id, e)| match e.state {
                                    EntryState::Granted => Some((id.clone(), LastInstruction::Fulfill)),
                                    EntryState::Revoked => Some((id.clone(), LastInstruction::Revoke)),
                                    _ => None,
                                })
                                .collect(),
                        };
                        self.open = Some(OpenLedger { session, path, file });
                        LedgerEvent::Opened { session, ledger }
                    }
                    Err(error) => LedgerEvent::OpenFailed { session, error: error.0 },
                };
                self.results.send(LedgerUpdate::Ledger(event));
            }
            LedgerCommand::Record { session, changes } => {
                let Some(open) = self.open.as_mut().filter(|open| open.session == session) else {
                    return;
                };
                for change in &changes {
                    open.file.apply(change);
                }
                self.pending.extend(changes);
            }
        }
    }

    fn flush(&mut self) {
        let Some(open) = self.open.as_ref() else {
            self.pending.clear();
            return;
        };
        let confirms_reports = self
            .pending
            .iter()
            .any(|c| matches!(c, LedgerChange::Reported { .. } | LedgerChange::RevokeReported { .. }));
        if confirms_reports {
            self.config.observe(LedgerStep::ReportConfirming);
        }
        match open.file.save(&open.path) {
            Ok(()) => {
                let mut durable = Vec::new();
                let mut confirmed = Vec::new();
                let mut grants = false;
                for change in self.pending.drain(..) {
                    match change {
                        LedgerChange::Granted { entitlement_id, .. } => {
                            grants = true;
                            durable.push((entitlement_id, LastInstruction::Fulfill));
                        }
                        LedgerChange::Revoked { entitlement_id, .. } => {
                            grants = true;
                            durable.push((entitlement_id, LastInstruction::Revoke));
                        }
                        LedgerChange::Reported { entitlement_id } => {
                            confirmed.push((entitlement_id, LastInstruction::Fulfill))
                        }
                        LedgerChange::RevokeReported { entitlement_id } => {
                            confirmed.push((entitlement_id, LastInstruction::Revoke))
                        }
                        LedgerChange::Seen { .. } => {}
                    }
                }
                if grants {
                    self.config.observe(LedgerStep::GrantPersisted);
                }
                let event = LedgerEvent::Persisted { session: open.session, durable, confirmed };
                self.results.send(LedgerUpdate::Ledger(event));
            }
            Err(error) => {
                let event = LedgerEvent::WriteFailed {
                    session: open.session,
                    error: format!("cannot write {}: {error}", open.path.display()),
                };
                self.results.send(LedgerUpdate::Ledger(event));
            }
        }
    }
}
