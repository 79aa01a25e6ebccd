//! Paid subscriptions (DevPay-style) from the game's side: hand the studio backend an activation key
//! ([`ActivateSubscription`]), follow how each subscription stands in the [`Subscriptions`] resource (active,
//! paid through, price now and next month, cancelled at period end) with [`SubscriptionEvent`]s on change,
//! and send the player to the billing page ([`OpenBillingPage`]). Perks come and go through the entitlements
//! feed like any item: granted while the subscription is active, taken back when it ends.
//!
//! Needs `RewardsConfig::entitlements_url` to point at the studio backend.

use std::collections::BTreeMap;

use amazon_rewards_protocol::devpay::{ACTIVATE_PATH, ActivateRequest, SUBSCRIPTIONS_PATH, SubscriptionStatus};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use crate::auth::PlayerSession;
use crate::config::RewardsConfig;
use crate::entitlements::PullCompleted;
use crate::runtime::{BackgroundResult, RewardsRuntime};

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

/// Open the subscription billing page (`RewardsConfig::billing_url`) in the player's browser.
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct OpenBillingPage;

/// What happened to a subscription.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// The key was accepted; the subscription stands as given.
    Activated(SubscriptionStatus),
    /// The key was refused (`InvalidActivationKey`, `ActivationKeyAlreadyUsed`, `ExpiredActivationKey`, …) or
    /// could not be checked.
    ActivationFailed {
        /// The product.
        product_code: String,
        /// The service's error code, or what went wrong.
        reason: String,
    },
    /// A subscription's standing changed (renewed, price change announced, cancelled, ended, suspended).
    Changed(SubscriptionStatus),
}

/// How the player's subscriptions stand, by product code.
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    statuses: BTreeMap<String, SubscriptionStatus>,
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
}

/// Results from the background.
pub(crate) enum SubscriptionUpdate {
    Activated { product_code: String, result: Result<SubscriptionStatus, String> },
    Refreshed(Result<Vec<SubscriptionStatus>, String>),
}

/// Applies a result to the resource and reports what changed. Called from the plugin's receive system.
pub(crate) fn apply(
    update: SubscriptionUpdate,
    subscriptions: &mut Subscriptions,
    events: &mut MessageWriter<SubscriptionEvent>,
) {
    match update {
        SubscriptionUpdate::Activated { result: Ok(status), .. } => {
            subscriptions.statuses.insert(status.product_code.clone(), status.clone());
            events.write(SubscriptionEvent::Activated(status));
        }
        SubscriptionUpdate::Activated { product_code, result: Err(reason) } => {
            events.write(SubscriptionEvent::ActivationFailed { product_code, reason });
        }
        SubscriptionUpdate::Refreshed(Ok(statuses)) => {
            for status in statuses {
                if subscriptions.statuses.get(&status.product_code) != Some(&status) {
                    subscriptions.statuses.insert(status.product_code.clone(), status.clone());
                    events.write(SubscriptionEvent::Changed(status));
                }
            }
        }
        SubscriptionUpdate::Refreshed(Err(error)) => warn!("subscription status unavailable: {error}"),
    }
}

/// What the send system needs for subscriptions.
#[derive(SystemParam)]
pub(crate) struct SubscriptionRequests<'w, 's> {
    activations: MessageReader<'w, 's, ActivateSubscription>,
    refreshes: MessageReader<'w, 's, RefreshSubscriptions>,
    billing: MessageReader<'w, 's, OpenBillingPage>,
    pulls: MessageReader<'w, 's, PullCompleted>,
}

impl SubscriptionRequests<'_, '_> {
    /// Starts the requested work. Called from the plugin's send system.
    pub(crate) fn send(
        &mut self,
        session: Option<&PlayerSession>,
        runtime: &RewardsRuntime,
        config: &RewardsConfig,
        http: &reqwest::Client,
    ) {
        if self.activations.is_empty() && self.refreshes.is_empty() && self.billing.is_empty() && self.pulls.is_empty()
        {
            return;
        }
        if self.billing.read().count() > 0 {
            match config.billing_url.clone() {
                Some(url) => {
                    let open = config.login.open_browser.clone();
                    runtime.spawn_detached(async move {
                        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || open(&url)).await {
                            warn!("cannot open the billing page: {error}");
                        }
                    });
                }
                None => warn!("OpenBillingPage: RewardsConfig::billing_url is not set"),
            }
        }
        let refresh = self.refreshes.read().count() > 0 || self.pulls.read().count() > 0;
        let activations: Vec<ActivateSubscription> = self.activations.read().cloned().collect();
        let Some(session) = session else {
            for activation in activations {
                let product_code = activation.product_code;
                runtime.spawn(async move {
                    BackgroundResult::Subscriptions(SubscriptionUpdate::Activated {
                        product_code,
                        result: Err("not signed in".into()),
                    })
                });
            }
            return;
        };
        let base = config.entitlements_url.trim_end_matches('/').to_owned();
        let token = session.access_token().secret().to_owned();
        for activation in activations {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            runtime.spawn(async move {
                let product_code = activation.product_code.clone();
                let body = ActivateRequest {
                    activation_key: activation.activation_key,
                    product_code: activation.product_code,
                };
                let result = async {
                    let response = http
                        .post(format!("{base}{ACTIVATE_PATH}"))
                        .header(amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER, &token)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| e.without_url().to_string())?;
                    let ok = response.status().is_success();
                    let value: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
                    if ok {
                        serde_json::from_value(value).map_err(|e| e.to_string())
                    } else {
                        Err(value["error"].as_str().unwrap_or("activation refused").to_owned())
                    }
                }
                .await;
                BackgroundResult::Subscriptions(SubscriptionUpdate::Activated { product_code, result })
            });
        }
        if refresh {
            let http = http.clone();
            runtime.spawn(async move {
                let result = async {
                    let response = http
                        .get(format!("{base}{SUBSCRIPTIONS_PATH}"))
                        .header(amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER, &token)
                        .send()
                        .await
                        .map_err(|e| e.without_url().to_string())?;
                    if !response.status().is_success() {
                        return Err(format!("HTTP {}", response.status().as_u16()));
                    }
                    response.json::<Vec<SubscriptionStatus>>().await.map_err(|e| e.to_string())
                }
                .await;
                BackgroundResult::Subscriptions(SubscriptionUpdate::Refreshed(result))
            });
        }
    }
}
