//! The moments to check for new goods, turned into paced pull requests on the [`PullPacer`] whatever the
//! inventory's source: the game's [`PullEntitlements`] and [`StoreVisited`], and the window and app events
//! Amazon's tips name (the window coming to the top, restored from minimised, the app resuming).

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy::window::{AppLifecycle, WindowFocused, WindowOccluded};

use super::pacing::PullPacer;
use super::{PullEntitlements, PullReason, StoreVisited};

/// The messages that trigger a pull.
#[derive(SystemParam)]
pub(crate) struct Triggers<'w, 's> {
    explicit: MessageReader<'w, 's, PullEntitlements>,
    store_visits: MessageReader<'w, 's, StoreVisited>,
    focus: MessageReader<'w, 's, WindowFocused>,
    occlusion: MessageReader<'w, 's, WindowOccluded>,
    lifecycle: MessageReader<'w, 's, AppLifecycle>,
}

impl Triggers<'_, '_> {
    fn read(&mut self) -> Vec<PullReason> {
        let explicit = self.explicit.read().map(|_| PullReason::Requested);
        let store = self.store_visits.read().map(|_| PullReason::StoreVisited);
        let focus = self.focus.read().filter(|e| e.focused).map(|_| PullReason::FocusRegained);
        let restored = self.occlusion.read().filter(|e| !e.occluded).map(|_| PullReason::WindowRestored);
        let resumed = self.lifecycle.read().filter(|e| **e == AppLifecycle::WillResume).map(|_| PullReason::AppResumed);
        explicit.chain(store).chain(focus).chain(restored).chain(resumed).collect()
    }
}

/// Requests a pull for each trigger (the pacer coalesces them). Runs in
/// [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send), before the source starts what is due.
pub(crate) fn request_pulls(mut triggers: Triggers, mut pacer: ResMut<PullPacer>) {
    for reason in triggers.read() {
        pacer.request(reason);
    }
}

/// Pull requests from other plugins (a subscription activated: its perks wait in the feed); nothing when
/// [`EntitlementsPlugin`](super::EntitlementsPlugin) is not added.
#[derive(SystemParam)]
pub(crate) struct PullRequests<'w> {
    pacer: Option<ResMut<'w, PullPacer>>,
}

impl PullRequests<'_> {
    pub(crate) fn request(&mut self, reason: PullReason) {
        if let Some(pacer) = self.pacer.as_mut() {
            pacer.request(reason);
        }
    }
}
