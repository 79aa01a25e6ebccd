//! The background runtime and the channel bridge: network and disk work runs on a Tokio runtime (and the
//! ledger's writer thread) and comes back as [`BackgroundResult`]s drained by one system, so nothing
//! blocks a frame.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use amazon_rewards_protocol::prime_gaming::{Entitlement, FulfillResponse, LastInstruction};
use bevy::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::auth::LoginUpdate;
use crate::error::ApiError;
use crate::ledger::LedgerEvent;
use crate::pacing::PullReason;

/// A finished piece of background work.
pub(crate) enum BackgroundResult {
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
    /// Login progress or results.
    Login(LoginUpdate),
    /// Subscription activation or status.
    Subscriptions(crate::subscriptions::SubscriptionUpdate),
    /// Achievements saved or loaded, a moment delivered, challenges fetched.
    Moments(crate::moments::MomentsUpdate),
}

/// Wakes the app's event loop (set with the `winit` feature), so a result is applied at once even when a
/// reactive loop is asleep because the window is unfocused.
type Waker = Arc<OnceLock<Box<dyn Fn() + Send + Sync>>>;

/// The sending half of the bridge: sends a result, then wakes the event loop.
#[derive(Clone)]
pub(crate) struct ResultSender {
    sender: UnboundedSender<BackgroundResult>,
    waker: Waker,
}

impl ResultSender {
    pub(crate) fn send(&self, result: BackgroundResult) {
        // The app may have exited meanwhile; then nobody is waiting for the result.
        if self.sender.send(result).is_ok()
            && let Some(wake) = self.waker.get()
        {
            wake();
        }
    }
}

/// The Tokio runtime the plugin's network work runs on, and the sending half of the bridge.
#[derive(Resource)]
pub(crate) struct RewardsRuntime {
    runtime: tokio::runtime::Runtime,
    sender: ResultSender,
}

/// The receiving half of the bridge, drained once per frame.
#[derive(Resource)]
pub(crate) struct BackgroundResults(pub(crate) UnboundedReceiver<BackgroundResult>);

impl RewardsRuntime {
    pub(crate) fn new() -> std::io::Result<(Self, BackgroundResults)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("amazon-rewards-io")
            .enable_all()
            .build()?;
        let (sender, receiver) = unbounded_channel();
        let sender = ResultSender { sender, waker: Arc::new(OnceLock::new()) };
        Ok((Self { runtime, sender }, BackgroundResults(receiver)))
    }

    pub(crate) fn sender(&self) -> ResultSender {
        self.sender.clone()
    }

    /// Sets how the event loop is woken when a result arrives (once).
    #[cfg_attr(not(feature = "winit"), allow(dead_code))]
    pub(crate) fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.sender.waker.set(Box::new(wake));
    }

    /// Runs `work` in the background and sends its result back to the main thread.
    pub(crate) fn spawn<F>(&self, work: F) -> tokio::task::AbortHandle
    where
        F: Future<Output = BackgroundResult> + Send + 'static,
    {
        let sender = self.sender.clone();
        self.runtime.spawn(async move { sender.send(work.await) }).abort_handle()
    }

    /// Runs `work` in the background with no result for the main thread.
    pub(crate) fn spawn_detached<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(work);
    }
}
