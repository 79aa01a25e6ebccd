//! Waking from sleep as a pull trigger, noticed off the frame: a background task compares the wall clock with
//! the monotonic one every [`SLEEP_CHECK_INTERVAL`]; the monotonic clock stops during sleep on every desktop OS
//! while the wall clock does not, so the wall clock running ahead by more than
//! [`EntitlementsConfig::sleep_threshold`](crate::config::EntitlementsConfig::sleep_threshold) means the device
//! slept in between.

use std::time::{Duration, Instant, SystemTime};

use bevy::prelude::*;

use super::PullReason;
use super::pacing::PullPacer;
use crate::config::RewardsConfig;
use crate::core::bridge::{Inbox, Outbox, RewardsRuntime};

/// How often the clocks are compared.
pub const SLEEP_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The device woke from sleep.
pub(crate) struct WokeFromSleep;

/// The sending half of the wake-up channel, until the watcher starts.
#[derive(Resource)]
pub(crate) struct SleepWatcher(pub(crate) Outbox<WokeFromSleep>);

/// Starts the background watcher. At [`PreStartup`].
pub(crate) fn watch_for_sleep(watcher: Res<SleepWatcher>, runtime: Res<RewardsRuntime>, config: Res<RewardsConfig>) {
    let outbox = watcher.0.clone();
    let (threshold, wall_clock) = (config.entitlements.sleep_threshold, config.entitlements.wall_clock);
    runtime.spawn_detached(async move {
        let mut before = (Instant::now(), wall_clock());
        loop {
            tokio::time::sleep(SLEEP_CHECK_INTERVAL).await;
            let now = (Instant::now(), wall_clock());
            if slept(before, now, threshold) {
                outbox.send(WokeFromSleep);
            }
            before = now;
        }
    });
}

/// Whether the wall clock ran ahead of the monotonic one by more than `threshold` between two readings.
fn slept(before: (Instant, SystemTime), now: (Instant, SystemTime), threshold: Duration) -> bool {
    let monotonic = now.0.saturating_duration_since(before.0);
    let wall = now.1.duration_since(before.1).unwrap_or_default();
    wall.saturating_sub(monotonic) > threshold
}

/// Requests a pull for each wake-up. Runs in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
pub(crate) fn receive_wake_ups(mut inbox: ResMut<Inbox<WokeFromSleep>>, mut pacer: ResMut<PullPacer>) {
    while inbox.next().is_some() {
        pacer.request(PullReason::WokeFromSleep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wall_clock_that_runs_ahead_means_sleep() {
        let (mono, wall) = (Instant::now(), SystemTime::now());
        let threshold = Duration::from_secs(30);
        let later = |m: u64, w: u64| (mono + Duration::from_secs(m), wall + Duration::from_secs(w));
        assert!(!slept((mono, wall), later(2, 2), threshold), "awake");
        assert!(!slept((mono, wall), later(2, 31), threshold), "within the threshold");
        assert!(slept((mono, wall), later(2, 3600), threshold), "an hour asleep");
        assert!(
            !slept((mono, wall), (mono + Duration::from_secs(2), wall - Duration::from_secs(60)), threshold),
            "the wall clock set back"
        );
    }
}
