//! The settings of [`SubscriptionsPlugin`](crate::subscriptions::SubscriptionsPlugin): the sign-up and
//! billing pages, and how long a sign-up is waited for.

use std::time::Duration;

/// Settings of [`SubscriptionsPlugin`](crate::subscriptions::SubscriptionsPlugin).
#[derive(Debug, Clone)]
pub struct SubscriptionsConfig {
    /// The subscription billing page [`OpenBillingPage`](crate::subscriptions::OpenBillingPage) opens. Default
    /// none (the message is refused with a warning).
    pub billing_url: Option<String>,
    /// Base of the subscription sign-up pages [`SignUpForSubscription`](crate::subscriptions::SignUpForSubscription)
    /// opens (`{signup_url}/{product_code}`), e.g. the sandbox's `http://127.0.0.1:8787/devpay/signup`. Default
    /// none.
    pub signup_url: Option<String>,
    /// How long a sign-up may take before the game stops waiting for the player to come back. Default 15 min.
    pub signup_timeout: Duration,
    /// How often the game checks whether a sign-up on another device went through. Default 5 s.
    pub signup_poll_interval: Duration,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self {
            billing_url: None,
            signup_url: None,
            signup_timeout: Duration::from_secs(15 * 60),
            signup_poll_interval: Duration::from_secs(5),
        }
    }
}
