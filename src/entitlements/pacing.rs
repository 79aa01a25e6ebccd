//! When to pull: the pure pacing state machine behind every entitlement pull.
//!
//! Triggers are coalesced (one pull in flight; a trigger during a pull schedules exactly one follow-up),
//! pulls start at least `min_interval` apart, failures back off exponentially with jitter, and a server's
//! `Retry-After` is honoured. No clock or randomness of its own: both are passed in, so it is tested exactly.

use std::time::{Duration, Instant};

use crate::config::PullPacing;

/// Why a pull happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullReason {
    /// The game started (the first pull once the ledger and a token are ready).
    Startup,
    /// The window regained focus, i.e. came to the top (the player may be back from claiming in the browser).
    FocusRegained,
    /// The window was restored from minimised, or uncovered (`WindowOccluded` with `occluded: false`).
    WindowRestored,
    /// The app resumed from pause (`AppLifecycle::WillResume`, mobile and some desktops).
    AppResumed,
    /// The device woke from sleep: the wall clock jumped ahead of the monotonic clock (checked in the
    /// background; a window that kept its focus never reports this).
    WokeFromSleep,
    /// The player visited the in-game store.
    StoreVisited,
    /// A player session began (login completed or a token was supplied).
    LoggedIn,
    /// A rewards recipient entity appeared after grants had waited for one.
    RecipientReady,
    /// The game asked explicitly with [`PullEntitlements`](crate::entitlements::PullEntitlements).
    Requested,
    /// A subscription was activated: its perks are waiting in the feed.
    SubscriptionActivated,
    /// A trigger arrived while a pull was in flight.
    FollowUp,
    /// A previous pull failed and is being retried after backoff.
    Retry,
}

/// The pacing state machine, a resource every trigger requests pulls from and the inventory source takes them
/// from.
#[derive(bevy::prelude::Resource, Debug, Clone)]
pub(crate) struct PullPacer {
    pacing: PullPacing,
    in_flight: bool,
    pending: Option<PullReason>,
    follow_up: bool,
    not_before: Option<Instant>,
    consecutive_failures: u32,
}

impl PullPacer {
    /// A pacer with nothing pending.
    pub fn new(pacing: PullPacing) -> Self {
        Self { pacing, in_flight: false, pending: None, follow_up: false, not_before: None, consecutive_failures: 0 }
    }

    /// Records a trigger. Coalesces with whatever is already pending or in flight.
    pub fn request(&mut self, reason: PullReason) {
        if self.in_flight {
            self.follow_up = true;
        } else if self.pending.is_none() {
            self.pending = Some(reason);
        }
    }

    /// Whether a pull is waiting to start.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some() || self.follow_up
    }

    /// When the waiting pull may start (`None`: none waits, or one runs).
    pub fn next_start(&self) -> Option<Instant> {
        (self.is_pending() && !self.in_flight).then(|| self.not_before.unwrap_or_else(Instant::now))
    }

    /// The earliest time the next pull may start.
    #[cfg(test)]
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// Consecutive failed pulls.
    #[cfg(test)]
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Starts a pull if one is pending and allowed at `now`; returns its reason.
    pub fn start_if_due(&mut self, now: Instant) -> Option<PullReason> {
        if self.in_flight || self.not_before.is_some_and(|t| now < t) {
            return None;
        }
        let reason = self.pending.take()?;
        self.in_flight = true;
        self.not_before = Some(now + self.pacing.min_interval);
        Some(reason)
    }

    /// The running pull succeeded.
    pub fn succeeded(&mut self) {
        self.in_flight = false;
        self.consecutive_failures = 0;
        if std::mem::take(&mut self.follow_up) {
            self.pending = Some(PullReason::FollowUp);
        }
    }

    /// The running pull failed at `now`. `jitter` in `[0, 1)` spreads retries of many clients apart.
    /// With `retry`, a new pull is scheduled after the delay; without (e.g. the token was refused), only a
    /// follow-up trigger or a new request starts one, still not before the delay. Returns the delay.
    pub fn failed(&mut self, now: Instant, retry_after: Option<Duration>, retry: bool, jitter: f64) -> Duration {
        self.in_flight = false;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let delay = self.backoff(jitter).max(retry_after.unwrap_or(Duration::ZERO));
        self.not_before = now.checked_add(delay);
        let follow_up = std::mem::take(&mut self.follow_up);
        if retry {
            self.pending = Some(PullReason::Retry);
        } else if follow_up {
            self.pending = Some(PullReason::FollowUp);
        }
        delay
    }

    /// The retry delay after the current run of failures; never below `min_interval`.
    fn backoff(&self, jitter: f64) -> Duration {
        backoff_delay(&self.pacing, self.consecutive_failures, jitter).max(self.pacing.min_interval)
    }
}

/// Exponential backoff with "equal jitter" after `failures` consecutive failures: half of
/// `backoff_base × 2^(failures-1)` (capped at `backoff_max`), plus `jitter` (in `[0, 1)`) of the other half.
pub(crate) fn backoff_delay(pacing: &PullPacing, failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let exponential = pacing.backoff_base.saturating_mul(1u32 << exponent).min(pacing.backoff_max);
    let half = exponential / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)` for jitter, from the standard library's randomly keyed hasher.
pub(crate) fn random_jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> PullPacing {
        PullPacing {
            min_interval: Duration::from_secs(5),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
        }
    }

    #[test]
    fn bursts_coalesce_into_one_pull_and_one_follow_up() {
        let t0 = Instant::now();
        let mut pacer = PullPacer::new(pacing());
        pacer.request(PullReason::Startup);
        pacer.request(PullReason::FocusRegained);
        assert_eq!(pacer.start_if_due(t0), Some(PullReason::Startup));
        assert_eq!(pacer.start_if_due(t0), None, "one pull in flight at a time");
        for _ in 0..10 {
            pacer.request(PullReason::StoreVisited);
        }
        pacer.succeeded();
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(1)), None, "min interval holds");
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(5)), Some(PullReason::FollowUp));
        pacer.succeeded();
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(60)), None, "exactly one follow-up");
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_reset_on_success() {
        let t0 = Instant::now();
        let mut pacer = PullPacer::new(pacing());
        let mut delays = Vec::new();
        for _ in 0..8 {
            pacer.request(PullReason::Requested);
            let now = pacer.not_before().unwrap_or(t0);
            assert!(pacer.start_if_due(now).is_some());
            delays.push(pacer.failed(now, None, true, 1.0));
        }
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![5, 5, 8, 16, 32, 60, 60, 60]);
        pacer.start_if_due(pacer.not_before().unwrap());
        pacer.succeeded();
        assert_eq!(pacer.consecutive_failures(), 0);
        // With no jitter, half the exponential delay (floored at min_interval).
        let mut pacer = PullPacer::new(pacing());
        for _ in 0..4 {
            pacer.request(PullReason::Requested);
            let now = pacer.not_before().unwrap_or(t0);
            pacer.start_if_due(now);
            pacer.failed(now, None, true, 0.0);
        }
        pacer.request(PullReason::Requested);
        let now = pacer.not_before().unwrap();
        pacer.start_if_due(now);
        assert_eq!(pacer.failed(now, None, true, 0.0), Duration::from_secs(16));
    }

    #[test]
    fn retry_after_is_honoured_even_beyond_the_backoff_cap() {
        let t0 = Instant::now();
        let mut pacer = PullPacer::new(pacing());
        pacer.request(PullReason::Startup);
        pacer.start_if_due(t0);
        let delay = pacer.failed(t0, Some(Duration::from_secs(120)), true, 0.5);
        assert_eq!(delay, Duration::from_secs(120));
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(119)), None);
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(120)), Some(PullReason::Retry));
    }

    #[test]
    fn a_refused_token_does_not_retry_by_itself() {
        let t0 = Instant::now();
        let mut pacer = PullPacer::new(pacing());
        pacer.request(PullReason::Startup);
        pacer.start_if_due(t0);
        pacer.failed(t0, None, false, 0.0);
        assert!(!pacer.is_pending());
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(3600)), None);
        pacer.request(PullReason::LoggedIn);
        assert_eq!(pacer.start_if_due(t0 + Duration::from_secs(3600)), Some(PullReason::LoggedIn));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
