//! The subscriptions' receive system: sign-up progress, activations and status refreshes, applied to the
//! [`Subscriptions`] resource and reported as [`SubscriptionEvent`]s.

use std::collections::BTreeMap;

use amazon_rewards_protocol::devpay::SubscriptionStatus;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::backend::SubscriptionError;
use super::{ActivateSubscription, ActivationAnswered, ActivationRefused, SubscriptionEvent, Subscriptions};
use crate::core::TokenRefused;
use crate::core::bridge::Inbox;
use crate::entitlements::PullRequests;

/// Results from the background.
pub(crate) enum SubscriptionUpdate {
    SignUpOpened { product_code: String, url: String },
    SignUpLinkReady { product_code: String, url: String },
    SignUpReturned { product_code: String, result: Result<String, SubscriptionError> },
    Activated { product_code: String, result: Result<SubscriptionStatus, SubscriptionError> },
    Refreshed(Result<Vec<SubscriptionStatus>, SubscriptionError>),
    InstantAccessRefreshed(Result<Vec<amazon_rewards_protocol::instant_access::PlayerSubscription>, SubscriptionError>),
}

/// What receiving works with.
#[derive(SystemParam)]
pub(crate) struct SubscriptionResults<'w, 's> {
    commands: Commands<'w, 's>,
    subscriptions: ResMut<'w, Subscriptions>,
    events: MessageWriter<'w, SubscriptionEvent>,
    activations: MessageWriter<'w, ActivateSubscription>,
    refusals: MessageWriter<'w, TokenRefused>,
    pulls: PullRequests<'w>,
}

/// Drains the subscriptions' inbox. Runs in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
pub(crate) fn receive_subscriptions(mut inbox: ResMut<Inbox<SubscriptionUpdate>>, mut results: SubscriptionResults) {
    // Each answer also goes to observers, after the messages of this frame.
    while let Some(update) = inbox.next() {
        results.apply(update);
    }
}

impl SubscriptionResults<'_, '_> {
    fn apply(&mut self, update: SubscriptionUpdate) {
        match update {
            SubscriptionUpdate::SignUpOpened { product_code, url } => {
                self.events.write(SubscriptionEvent::SignUpOpened { product_code, url });
            }
            SubscriptionUpdate::SignUpLinkReady { product_code, url } => {
                self.events.write(SubscriptionEvent::SignUpLinkReady { product_code, url });
            }
            SubscriptionUpdate::SignUpReturned { product_code, result: Ok(activation_key) } => {
                self.events.write(SubscriptionEvent::SignUpReturned { product_code: product_code.clone() });
                // Activated with the session in force now, through the same path as a typed key.
                self.activations.write(ActivateSubscription { activation_key, product_code });
            }
            SubscriptionUpdate::SignUpReturned { product_code, result: Err(reason) }
            | SubscriptionUpdate::Activated { product_code, result: Err(reason) } => {
                self.refused_token(&reason);
                let reason = reason.to_string();
                let refused = ActivationRefused { reason: reason.clone() };
                self.commands.trigger(ActivationAnswered { product_code: product_code.clone(), outcome: Err(refused) });
                self.events.write(SubscriptionEvent::ActivationFailed { product_code, reason });
            }
            SubscriptionUpdate::Activated { product_code, result: Ok(status) } => {
                self.subscriptions.statuses.insert(status.product_code.clone(), status.clone());
                self.commands.trigger(ActivationAnswered { product_code, outcome: Ok(status.clone()) });
                self.events.write(SubscriptionEvent::Activated(status));
                // Its perks wait in the feed.
                self.pulls.request(crate::entitlements::PullReason::SubscriptionActivated);
            }
            SubscriptionUpdate::Refreshed(Ok(statuses)) => self.refreshed(statuses),
            SubscriptionUpdate::InstantAccessRefreshed(Ok(list)) => {
                if self.subscriptions.instant_access != list {
                    self.subscriptions.instant_access = list;
                }
            }
            SubscriptionUpdate::InstantAccessRefreshed(Err(error)) => {
                warn!("Instant Access subscriptions unavailable: {error}");
            }
            SubscriptionUpdate::Refreshed(Err(error)) => {
                self.refused_token(&error);
                warn!("subscription status unavailable: {error}");
            }
        }
    }

    fn refused_token(&mut self, error: &SubscriptionError) {
        if error.token_refused() {
            self.refusals.write(TokenRefused);
        }
    }

    fn refreshed(&mut self, statuses: Vec<SubscriptionStatus>) {
        // A player who subscribed again has the ended subscription too: the running one speaks for the product.
        let mut by_product: BTreeMap<String, SubscriptionStatus> = BTreeMap::new();
        for status in statuses {
            if !by_product.get(&status.product_code).is_some_and(|kept| kept.active && !status.active) {
                by_product.insert(status.product_code.clone(), status);
            }
        }
        for status in by_product.into_values() {
            if self.subscriptions.statuses.get(&status.product_code) != Some(&status) {
                self.subscriptions.statuses.insert(status.product_code.clone(), status.clone());
                self.events.write(SubscriptionEvent::Changed(status));
            }
        }
    }
}
