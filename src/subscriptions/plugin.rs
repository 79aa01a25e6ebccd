//! [`SubscriptionsPlugin`]: DevPay-style subscriptions from the game's side.

use bevy::prelude::*;

use super::receive::receive_subscriptions;
use super::requests::{SubscriptionTasks, send_subscription_requests};
use super::{
    ActivateSubscription, OpenBillingPage, RefreshSubscriptions, SignUpForSubscription, SignUpOnAnotherDevice,
    SubscriptionEvent, Subscriptions, SubscriptionsConfig,
};
use crate::config::RewardsConfig;
use crate::core::wake::WakeSendOn;
use crate::core::{RewardsReceive, RewardsSend};
use crate::entitlements::PullCompleted;

/// Sign-ups in the browser or on another device, activation keys, how each subscription stands, and the
/// billing page, through the studio backend. Part of [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins);
/// a game without subscriptions disables it.
///
/// Adds the [`SignUpForSubscription`], [`SignUpOnAnotherDevice`], [`ActivateSubscription`],
/// [`RefreshSubscriptions`], [`OpenBillingPage`] and [`SubscriptionEvent`] messages and the [`Subscriptions`]
/// resource. Systems: one in [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send), run only when one of those requests (or a
/// completed pull, after which statuses are refreshed) waits; one in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
#[derive(Debug, Clone, Default)]
pub struct SubscriptionsPlugin {
    /// Sign-up and billing pages and sign-up timing, written into [`RewardsConfig::subscriptions`]. Default:
    /// no pages (sign-ups and the billing page are refused with a reason until set).
    pub config: SubscriptionsConfig,
}

impl Plugin for SubscriptionsPlugin {
    fn build(&self, app: &mut App) {
        let (runtime, _) = crate::core::require_core(app, "SubscriptionsPlugin");
        let (outbox, inbox) = runtime.channel();
        app.world_mut().resource_mut::<RewardsConfig>().subscriptions = self.config.clone();
        app.init_resource::<Subscriptions>()
            .insert_resource(SubscriptionTasks::new(outbox))
            .insert_resource(inbox)
            .wake_send_on::<ActivateSubscription>()
            .wake_send_on::<SignUpForSubscription>()
            .wake_send_on::<SignUpOnAnotherDevice>()
            .wake_send_on::<RefreshSubscriptions>()
            .wake_send_on::<OpenBillingPage>()
            // Statuses are refreshed after each pull; without EntitlementsPlugin none ever completes.
            .add_message::<PullCompleted>()
            .add_message::<SubscriptionEvent>()
            .add_systems(RewardsReceive, receive_subscriptions)
            .add_systems(RewardsSend, send_subscription_requests);
    }
}
