//! The settings of [`EntitlementsPlugin`](crate::entitlements::EntitlementsPlugin): pull pacing, the item
//! catalog, how grants are spread over frames and reported, and the ledger's step observer.

use std::sync::Arc;
use std::time::Duration;

pub use super::plugin::InventorySource;

/// Pacing of entitlement pulls: often enough to feel instant, never hammering the service.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPacing {
    /// Least time between the starts of two pulls. Triggers arriving sooner are coalesced into one pull
    /// at the end of the interval. Default 5 s.
    pub min_interval: Duration,
    /// First retry delay after a failed pull; doubles with each consecutive failure. Default 1 s.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay. Default 5 min.
    pub backoff_max: Duration,
}

impl Default for PullPacing {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// A boundary between two steps of the fulfilment ledger, reported to [`EntitlementsConfig::step_observer`].
///
/// The exactly-once guarantee holds if the process dies at any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LedgerStep {
    /// A pull returned entitlements; nothing is granted yet.
    Pulled,
    /// Grants (or revocations) and their marks are on disk, items included; the report is not sent yet.
    GrantPersisted,
    /// The fulfilment report was accepted by the server; the ledger does not know yet.
    ReportSent,
    /// The ledger is about to record the report's confirmation.
    ReportConfirming,
    /// Backend inventory: a spend's key is saved with the player's cache; the spend is not sent yet.
    SpendSaved,
    /// Backend inventory: the backend answered a spend; the cache does not know yet.
    SpendAnswered,
}

/// Called at each [`LedgerStep`], on whichever thread reaches it.
pub type StepObserver = Arc<dyn Fn(LedgerStep) + Send + Sync>;

/// Settings of [`EntitlementsPlugin`](crate::entitlements::EntitlementsPlugin).
#[derive(Clone)]
pub struct EntitlementsConfig {
    /// Where the items come from: the studio backend's inventory (set by
    /// [`AmazonRewardsPlugins::with_studio_backend`](crate::AmazonRewardsPlugins::with_studio_backend)), or the
    /// game's own ledger (the default, for games without a backend). See [`InventorySource`].
    pub source: InventorySource,
    /// Backend inventory: how long subscription perks (flags, and items with an end) stay on while the backend
    /// cannot be reached, counted from the last sync that reached it; then they go off until the next one.
    /// Counts (coins, gems) always show as last synced. Default 3 days.
    pub offline_grace: Duration,
    /// Pull pacing: how often triggers may start a pull, and the backoff after failures.
    pub pacing: PullPacing,
    /// Most pages followed in one pull (guards against a server that never stops paginating). Default 1000.
    pub max_pages: usize,
    /// Wall-clock budget per frame for applying grants; a large pull is spread over frames. Default 250 µs.
    pub grant_budget_per_frame: Duration,
    /// Most entitlements named in one Fulfill call. Default 100. Each grant is reported as soon as it is on
    /// disk, as Amazon asks ("send a response for each item as soon as the action is completed"); only
    /// reports that are already waiting together (granted in the same frame, or while the previous report
    /// was in flight) share a call, up to this many.
    pub max_report_batch: usize,
    /// The `FulfillmentAddress` sent with every fulfilment report: a stable, non-secret description of where
    /// the item went. Default `"Player"`, the value a shipped game client sends (its meaning is not
    /// documented).
    pub fulfillment_address: String,
    /// Asset path of the item catalog. Default `rewards.catalog.json`.
    pub catalog_path: String,
    /// Observer of ledger step boundaries, for diagnostics and crash testing. Default none.
    pub step_observer: Option<StepObserver>,
    /// How far the wall clock may run ahead of the monotonic clock before the plugin takes it for a device
    /// that slept and pulls ([`PullReason::WokeFromSleep`](crate::entitlements::PullReason)). Checked in the
    /// background every [`SLEEP_CHECK_INTERVAL`](crate::entitlements::SLEEP_CHECK_INTERVAL), never on the frame.
    /// Default 30 s.
    pub sleep_threshold: Duration,
    /// The wall clock compared with the monotonic one to notice sleep. Default [`SystemTime::now`]; tests
    /// replace it to make time jump.
    ///
    /// [`SystemTime::now`]: std::time::SystemTime::now
    pub wall_clock: fn() -> std::time::SystemTime,
}

impl Default for EntitlementsConfig {
    fn default() -> Self {
        Self {
            source: InventorySource::default(),
            offline_grace: Duration::from_secs(3 * 86_400),
            pacing: PullPacing::default(),
            max_pages: 1000,
            grant_budget_per_frame: Duration::from_micros(250),
            max_report_batch: 100,
            fulfillment_address: amazon_rewards_protocol::prime_gaming::DEFAULT_FULFILLMENT_ADDRESS.into(),
            catalog_path: "rewards.catalog.json".into(),
            step_observer: None,
            sleep_threshold: Duration::from_secs(30),
            wall_clock: std::time::SystemTime::now,
        }
    }
}

impl std::fmt::Debug for EntitlementsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntitlementsConfig")
            .field("source", &self.source)
            .field("offline_grace", &self.offline_grace)
            .field("pacing", &self.pacing)
            .field("max_pages", &self.max_pages)
            .field("grant_budget_per_frame", &self.grant_budget_per_frame)
            .field("max_report_batch", &self.max_report_batch)
            .field("catalog_path", &self.catalog_path)
            .field("sleep_threshold", &self.sleep_threshold)
            .finish_non_exhaustive()
    }
}

impl EntitlementsConfig {
    pub(crate) fn observe(&self, step: LedgerStep) {
        if let Some(observer) = &self.step_observer {
            observer(step);
        }
    }
}
