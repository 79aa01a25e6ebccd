//! Paid subscriptions (DevPay-style) from the game's side: send the player to the sign-up pages and take the
//! activation key from the redirect that brings them back ([`SignUpForSubscription`]), let them sign up on
//! another device through a link the studio backend makes ([`SignUpOnAnotherDevice`]), or hand over a key the
//! player typed ([`ActivateSubscription`]); the studio backend activates it. Follow how each subscription
//! stands in the [`Subscriptions`] resource (active, paid through, price now and next month, cancelled at
//! period end) with [`SubscriptionEvent`]s on change, and send the player to the billing page
//! ([`OpenBillingPage`]). Perks come and go through the entitlements feed like any catalog offer: granted once
//! when the subscription is activated, taken back once when it ends.
//!
//! Needs `RewardsConfig::entitlements_url` to point at the studio backend, and for the automatic path
//! [`SubscriptionsConfig::signup_url`]. The product's registered vendor URL must be the loopback address
//! `http://127.0.0.1/amazon-rewards/subscribed` ([`SIGNUP_RETURN_PATH`]; any port matches, as in RFC 8252
//! §7.3).
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_amazon_rewards::prelude::*;
//!
//! fn subscribe_button(mut sign_ups: MessageWriter<SignUpForSubscription>) {
//!     // On click: the browser opens the sign-up pages; the key comes back by itself.
//!     sign_ups.write(SignUpForSubscription { product_code: "SEASONPASS".into() });
//! }
//!
//! fn show(subscriptions: Res<Subscriptions>, mut events: MessageReader<SubscriptionEvent>) {
//!     for event in events.read() {
//!         info!("{event:?}");
//!     }
//!     if subscriptions.is_active("SEASONPASS") {
//!         // Show the season pass perks.
//!     }
//! }
//! ```

mod backend;
mod config;
mod plugin;
mod receive;
mod requests;
mod signup;

use std::collections::BTreeMap;

use amazon_rewards_protocol::devpay::SubscriptionStatus;
use bevy::prelude::*;

pub use config::SubscriptionsConfig;
pub use plugin::SubscriptionsPlugin;

/// Path of the loopback address the sign-up pages send the player back to, with `?ActivationKey=…&ProductCode=…`.
pub const SIGNUP_RETURN_PATH: &str = "/amazon-rewards/subscribed";

/// Sign the player up in the system browser: the sign-up pages of `product_code` open
/// ([`SubscriptionsConfig::signup_url`]), and when they send the player back, the activation key they carry is
/// activated like an [`ActivateSubscription`]. A new sign-up replaces one still waiting.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SignUpForSubscription {
    /// The product to subscribe to.
    pub product_code: String,
}

/// Sign the player up on another device (a phone, say) when the game cannot open a browser the sign-up could
/// return from: the studio backend makes a sign-up link bound to the player, handed over in
/// [`SubscriptionEvent::SignUpLinkReady`] for the game to show (as text or a QR code). The sign-up returns to
/// the backend, which activates the key; the game checks every [`SubscriptionsConfig::signup_poll_interval`] and reports
/// [`SubscriptionEvent::Activated`]. A new sign-up replaces one still waiting. Needs the backend's
/// `--devpay-signup-url`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SignUpOnAnotherDevice {
    /// The product to subscribe to.
    pub product_code: String,
}

/// Activate a subscription with the key the player got at sign-up (typed in, or from the sign-up redirect).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct ActivateSubscription {
    /// The activation key.
    pub activation_key: String,
    /// The product it is for.
    pub product_code: String,
}

/// Ask the backend how the player's subscriptions stand now (also done after every successful pull).
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct RefreshSubscriptions;

/// Open the subscription billing page ([`SubscriptionsConfig::billing_url`]) in the player's browser.
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct OpenBillingPage;

/// What happened to a subscription.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// The sign-up pages were opened in the browser at `url` (show it, in case the browser did not come up).
    SignUpOpened {
        /// The product.
        product_code: String,
        /// The sign-up address.
        url: String,
    },
    /// A sign-up link for another device is ready: show it; the game waits for the subscription to appear.
    SignUpLinkReady {
        /// The product.
        product_code: String,
        /// The sign-up address, bound to this player.
        url: String,
    },
    /// The sign-up pages sent the player back with an activation key; activation follows.
    SignUpReturned {
        /// The product.
        product_code: String,
    },
    /// The key was accepted; the subscription stands as given.
    Activated(SubscriptionStatus),
    /// The key was refused (`InvalidActivationKey`, `ActivationKeyAlreadyUsed`, `ExpiredActivationKey`,
    /// `ActivationKeyNotForCustomer`, …) or could not be checked, or the sign-up did not bring one back.
    ActivationFailed {
        /// The product.
        product_code: String,
        /// The service's error code, or what went wrong.
        reason: String,
    },
    /// A subscription's standing changed (renewed, price change announced, cancelled, ended, suspended).
    Changed(SubscriptionStatus),
}

/// The answer to one [`ActivateSubscription`] (or to the activation a sign-up led to), as an observer event, so a
/// game can match it to its request by product code:
///
/// ```
/// # use bevy::prelude::*;
/// # use bevy_amazon_rewards::prelude::*;
/// # let mut app = App::new();
/// app.add_observer(|answer: On<ActivationAnswered>| match &answer.outcome {
///     Ok(status) => info!("{} is active until {:?}", answer.product_code, status.paid_until),
///     Err(refused) => warn!("{} was not activated: {refused}", answer.product_code),
/// });
/// ```
#[derive(Event, Debug, Clone, PartialEq, Eq)]
pub struct ActivationAnswered {
    /// The product the key was for.
    pub product_code: String,
    /// How the subscription stands now, or why the key was refused.
    pub outcome: Result<SubscriptionStatus, ActivationRefused>,
}

/// Why an activation did not go through: the backend's error code (such as `ActivationKeyAlreadyUsed`), or what
/// went wrong, in words; the same text as [`SubscriptionEvent::ActivationFailed`]'s `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ActivationRefused {
    /// The reason.
    pub reason: String,
}

/// How the player's subscriptions stand, by product code.
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    statuses: BTreeMap<String, SubscriptionStatus>,
    /// The player's Instant Access subscriptions (with a studio backend), refreshed with the DevPay ones.
    pub(crate) instant_access: Vec<amazon_rewards_protocol::instant_access::PlayerSubscription>,
}

impl Subscriptions {
    /// The standing of `product_code`, if the player ever subscribed.
    pub fn get(&self, product_code: &str) -> Option<&SubscriptionStatus> {
        self.statuses.get(product_code)
    }

    /// Whether `product_code` is usable now.
    pub fn is_active(&self, product_code: &str) -> bool {
        self.get(product_code).is_some_and(|s| s.active)
    }

    /// Every subscription.
    pub fn iter(&self) -> impl Iterator<Item = &SubscriptionStatus> {
        self.statuses.values()
    }

    /// The player's Instant Access subscriptions, newest first: active, or how each ended
    /// ([`PlayerSubscription::describe`](amazon_rewards_protocol::instant_access::PlayerSubscription::describe):
    /// "ended in the grace period after a failed payment: …").
    pub fn instant_access(&self) -> &[amazon_rewards_protocol::instant_access::PlayerSubscription] {
        &self.instant_access
    }
}
