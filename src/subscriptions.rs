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
//! `RewardsConfig::signup_url`. The product's registered vendor URL must be the loopback address
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

use std::collections::BTreeMap;

use amazon_rewards_protocol::devpay::{
    ACTIVATE_PATH, ActivateRequest, SIGNUP_PATH, SUBSCRIPTIONS_PATH, SignUpLink, SignUpRequest, SubscriptionStatus,
};
use amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use oauth2::CsrfToken;
use oauth2::url::Url;

use crate::auth::{BrowserOpener, PlayerSession};
use crate::config::RewardsConfig;
use crate::entitlements::PullCompleted;
use crate::loopback::{LoopbackError, LoopbackListener, Query, ReturnPages};
use crate::runtime::{BackgroundResult, ResultSender, RewardsRuntime};

/// Path of the loopback address the sign-up pages send the player back to, with `?ActivationKey=…&ProductCode=…`.
pub const SIGNUP_RETURN_PATH: &str = "/amazon-rewards/subscribed";

/// Sign the player up in the system browser: the sign-up pages of `product_code` open
/// (`RewardsConfig::signup_url`), and when they send the player back, the activation key they carry is
/// activated like an [`ActivateSubscription`]. A new sign-up replaces one still waiting.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SignUpForSubscription {
    /// The product to subscribe to.
    pub product_code: String,
}

/// Sign the player up on another device (a phone, say) when the game cannot open a browser the sign-up could
/// return from: the studio backend makes a sign-up link bound to the player, handed over in
/// [`SubscriptionEvent::SignUpLinkReady`] for the game to show (as text or a QR code). The sign-up returns to
/// the backend, which activates the key; the game checks every `RewardsConfig::signup_poll_interval` and reports
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

/// Open the subscription billing page (`RewardsConfig::billing_url`) in the player's browser.
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
    SignUpOpened { product_code: String, url: String },
    SignUpLinkReady { product_code: String, url: String },
    SignUpReturned { product_code: String, result: Result<String, String> },
    Activated { product_code: String, result: Result<SubscriptionStatus, String> },
    Refreshed(Result<Vec<SubscriptionStatus>, String>),
}

/// What the receive system needs for subscriptions.
#[derive(SystemParam)]
pub(crate) struct SubscriptionResults<'w> {
    subscriptions: ResMut<'w, Subscriptions>,
    events: MessageWriter<'w, SubscriptionEvent>,
    activations: MessageWriter<'w, ActivateSubscription>,
}

impl SubscriptionResults<'_> {
    /// Applies a result to the resource and reports what changed; `true` when a pull should follow (an
    /// activation put perks in the feed). Called from the plugin's receive system.
    pub(crate) fn apply(&mut self, update: SubscriptionUpdate) -> bool {
        let (subscriptions, events) = (&mut self.subscriptions, &mut self.events);
        match update {
            SubscriptionUpdate::SignUpOpened { product_code, url } => {
                events.write(SubscriptionEvent::SignUpOpened { product_code, url });
            }
            SubscriptionUpdate::SignUpLinkReady { product_code, url } => {
                events.write(SubscriptionEvent::SignUpLinkReady { product_code, url });
            }
            SubscriptionUpdate::SignUpReturned { product_code, result: Ok(activation_key) } => {
                events.write(SubscriptionEvent::SignUpReturned { product_code: product_code.clone() });
                // Activated with the session in force now, through the same path as a typed key.
                self.activations.write(ActivateSubscription { activation_key, product_code });
            }
            SubscriptionUpdate::SignUpReturned { product_code, result: Err(reason) }
            | SubscriptionUpdate::Activated { product_code, result: Err(reason) } => {
                events.write(SubscriptionEvent::ActivationFailed { product_code, reason });
            }
            SubscriptionUpdate::Activated { result: Ok(status), .. } => {
                subscriptions.statuses.insert(status.product_code.clone(), status.clone());
                events.write(SubscriptionEvent::Activated(status));
                return true;
            }
            SubscriptionUpdate::Refreshed(Ok(statuses)) => {
                // A player who subscribed again has the ended subscription too: the running one speaks for
                // the product.
                let mut by_product: BTreeMap<String, SubscriptionStatus> = BTreeMap::new();
                for status in statuses {
                    if !by_product.get(&status.product_code).is_some_and(|kept| kept.active && !status.active) {
                        by_product.insert(status.product_code.clone(), status);
                    }
                }
                for status in by_product.into_values() {
                    if subscriptions.statuses.get(&status.product_code) != Some(&status) {
                        subscriptions.statuses.insert(status.product_code.clone(), status.clone());
                        events.write(SubscriptionEvent::Changed(status));
                    }
                }
            }
            SubscriptionUpdate::Refreshed(Err(error)) => warn!("subscription status unavailable: {error}"),
        }
        false
    }
}

/// What a sign-up redirect says: the activation key, if it is the answer to this sign-up.
fn judge_return(query: &Query, expected_state: &str, product_code: &str) -> Result<String, String> {
    amazon_rewards_protocol::devpay::read_signup_return(query, expected_state, product_code).map_err(|e| e.to_string())
}

/// Opens the sign-up pages with a loopback return address and waits for the player to come back.
async fn sign_up(
    product_code: String,
    signup_url: String,
    open_browser: BrowserOpener,
    timeout: std::time::Duration,
    progress: ResultSender,
) -> Result<String, String> {
    let listener =
        LoopbackListener::bind(SIGNUP_RETURN_PATH).await.map_err(|e| format!("cannot listen for the return: {e}"))?;
    let state = CsrfToken::new_random();
    let mut url = Url::parse(&format!("{}/{product_code}", signup_url.trim_end_matches('/')))
        .map_err(|_| "RewardsConfig::signup_url is not a URL".to_owned())?;
    url.query_pairs_mut().append_pair("redirect_uri", listener.redirect_uri()).append_pair("state", state.secret());
    let address = url.to_string();
    progress.send(BackgroundResult::Subscriptions(SubscriptionUpdate::SignUpOpened {
        product_code: product_code.clone(),
        url: address.clone(),
    }));
    tokio::task::spawn_blocking(move || open_browser(&address))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open the browser: {e}"))?;
    let pages = ReturnPages {
        done: ("Subscribed", "Your subscription is being activated. Return to the game."),
        failed: "Sign-up did not complete",
    };
    match listener
        .wait_for(timeout, state.secret(), pages, |query| judge_return(query, state.secret(), &product_code))
        .await
    {
        Ok(outcome) => outcome,
        Err(LoopbackError::Timeout) => Err("the sign-up was not finished in time".into()),
        Err(LoopbackError::Network(error)) => Err(error),
    }
}

/// The player's subscriptions, as the backend verifies them now.
async fn fetch_subscriptions(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Vec<SubscriptionStatus>, String> {
    let response = http
        .get(format!("{base}{SUBSCRIPTIONS_PATH}"))
        .header(ACCESS_TOKEN_HEADER, token)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    serde_json::from_slice(&read_answer(response).await?).map_err(|e| e.to_string())
}

/// Largest answer read from the backend's subscription routes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The body within [`MAX_ANSWER_BYTES`], never buffered past it.
async fn read_answer(response: reqwest::Response) -> Result<Vec<u8>, String> {
    crate::http::read_capped(response, MAX_ANSWER_BYTES).await.map_err(|error| match error {
        crate::http::CappedReadError::TooLarge => format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
        crate::http::CappedReadError::Network(error) => error,
    })
}

/// `POST`s `body` to the backend for the player; the answer, or the backend's error code (`fallback` when it
/// names none).
async fn post_for_player<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: &impl serde::Serialize,
    fallback: &str,
) -> Result<T, String> {
    let response = http
        .post(url)
        .header(ACCESS_TOKEN_HEADER, token)
        .json(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let ok = response.status().is_success();
    let value: serde_json::Value = serde_json::from_slice(&read_answer(response).await?).map_err(|e| e.to_string())?;
    if ok {
        serde_json::from_value(value).map_err(|e| e.to_string())
    } else {
        Err(value["error"].as_str().unwrap_or(fallback).to_owned())
    }
}

/// Where a sign-up on another device stands.
struct ElsewhereSignUp {
    product_code: String,
    http: reqwest::Client,
    base: String,
    token: String,
    poll_every: std::time::Duration,
    timeout: std::time::Duration,
}

impl ElsewhereSignUp {
    /// Asks the backend for a link, hands it to the game, and waits for the subscription to become active.
    async fn run(self, progress: ResultSender) -> Result<SubscriptionStatus, String> {
        let request = SignUpRequest { product_code: self.product_code.clone() };
        let link: SignUpLink = post_for_player(
            &self.http,
            format!("{}{SIGNUP_PATH}", self.base),
            &self.token,
            &request,
            "no sign-up link",
        )
        .await?;
        progress.send(BackgroundResult::Subscriptions(SubscriptionUpdate::SignUpLinkReady {
            product_code: self.product_code.clone(),
            url: link.sign_up_url,
        }));
        let deadline = tokio::time::Instant::now() + self.timeout.min(std::time::Duration::from_secs(link.expires_in));
        loop {
            tokio::time::sleep(self.poll_every).await;
            // A failed check is tried again at the next tick; only the deadline ends the wait.
            if let Ok(statuses) = fetch_subscriptions(&self.http, &self.base, &self.token).await
                && let Some(active) = statuses.into_iter().find(|s| s.product_code == self.product_code && s.active)
            {
                return Ok(active);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err("the sign-up was not finished in time".into());
            }
        }
    }
}

/// What the send system needs for subscriptions.
#[derive(SystemParam)]
pub(crate) struct SubscriptionRequests<'w, 's> {
    sign_ups: MessageReader<'w, 's, SignUpForSubscription>,
    sign_ups_elsewhere: MessageReader<'w, 's, SignUpOnAnotherDevice>,
    waiting_sign_up: Local<'s, Option<tokio::task::AbortHandle>>,
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
        if self.activations.is_empty()
            && self.refreshes.is_empty()
            && self.billing.is_empty()
            && self.pulls.is_empty()
            && self.sign_ups.is_empty()
            && self.sign_ups_elsewhere.is_empty()
        {
            return;
        }
        if let Some(SignUpOnAnotherDevice { product_code }) = self.sign_ups_elsewhere.read().last().cloned() {
            if let Some(previous) = self.waiting_sign_up.take() {
                previous.abort();
            }
            let sign_up = session.map(|session| ElsewhereSignUp {
                product_code: product_code.clone(),
                http: http.clone(),
                base: config.entitlements_url.trim_end_matches('/').to_owned(),
                token: session.access_token().secret().to_owned(),
                poll_every: config.signup_poll_interval,
                timeout: config.signup_timeout,
            });
            let progress = runtime.sender();
            *self.waiting_sign_up = Some(runtime.spawn(async move {
                let result = match sign_up {
                    Some(sign_up) => sign_up.run(progress).await,
                    None => Err("not signed in".to_owned()),
                };
                BackgroundResult::Subscriptions(SubscriptionUpdate::Activated { product_code, result })
            }));
        }
        if let Some(SignUpForSubscription { product_code }) = self.sign_ups.read().last().cloned() {
            if let Some(previous) = self.waiting_sign_up.take() {
                previous.abort();
            }
            let result = match (&config.signup_url, session) {
                (None, _) => Err("RewardsConfig::signup_url is not set".to_owned()),
                (_, None) => Err("not signed in".to_owned()),
                (Some(url), Some(_)) => Ok(url.clone()),
            };
            let (open, timeout, progress) =
                (config.login.open_browser.clone(), config.signup_timeout, runtime.sender());
            *self.waiting_sign_up = Some(runtime.spawn(async move {
                let result = match result {
                    Ok(url) => sign_up(product_code.clone(), url, open, timeout, progress).await,
                    Err(reason) => Err(reason),
                };
                BackgroundResult::Subscriptions(SubscriptionUpdate::SignUpReturned { product_code, result })
            }));
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
                let url = format!("{base}{ACTIVATE_PATH}");
                let result = post_for_player(&http, url, &token, &body, "activation refused").await;
                BackgroundResult::Subscriptions(SubscriptionUpdate::Activated { product_code, result })
            });
        }
        if refresh {
            let http = http.clone();
            runtime.spawn(async move {
                let result = fetch_subscriptions(&http, &base, &token).await;
                BackgroundResult::Subscriptions(SubscriptionUpdate::Refreshed(result))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_sign_up_return_is_judged_by_state_product_and_key() {
        let good = [("ActivationKey", "ABCD1234EF"), ("ProductCode", "PASS"), ("state", "s1")];
        assert_eq!(judge_return(&query(&good), "s1", "PASS"), Ok("ABCD1234EF".into()));
        assert!(judge_return(&query(&good), "s2", "PASS").unwrap_err().contains("not the sign-up"));
        assert!(judge_return(&query(&good[..2]), "s1", "PASS").is_err(), "no state");
        assert!(judge_return(&query(&good), "s1", "OTHER").unwrap_err().contains("not for OTHER"));
        let long = "K".repeat(amazon_rewards_protocol::devpay::MAX_ACTIVATION_KEY_LEN + 1);
        for key in ["", "<script>", "A B", long.as_str()] {
            let bad = [("ActivationKey", key), ("ProductCode", "PASS"), ("state", "s1")];
            assert!(judge_return(&query(&bad), "s1", "PASS").unwrap_err().contains("no usable"), "{key:?}");
        }
    }
}
