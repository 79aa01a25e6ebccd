//! The studio backend's subscription routes, over the shared [`ApiClient`]: how the player's subscriptions
//! stand, activating a key, and asking for a sign-up link for another device. And [`SubscriptionError`], what
//! can go wrong on the way.

use amazon_rewards_protocol::devpay::{
    ACTIVATE_PATH, ActivateRequest, SIGNUP_PATH, SUBSCRIPTIONS_PATH, SignUpLink, SignUpRequest, SignUpReturnError,
    SubscriptionStatus,
};
use amazon_rewards_protocol::instant_access::{PLAYER_SUBSCRIPTIONS_PATH, PlayerSubscription};
use amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER;

use crate::core::http::ApiClient;
use crate::error::ApiError;

/// Why a sign-up or an activation did not go through. Its text is what
/// [`SubscriptionEvent::ActivationFailed`](super::SubscriptionEvent::ActivationFailed) carries: for a key the
/// backend refused, its error code (`InvalidActivationKey`, `ActivationKeyAlreadyUsed`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubscriptionError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("SubscriptionsConfig::signup_url is not set")]
    NoSignUpUrl,
    #[error("SubscriptionsConfig::signup_url is not a URL")]
    BadSignUpUrl,
    #[error("cannot listen for the return: {0}")]
    Listener(String),
    #[error("cannot open the browser: {0}")]
    Browser(String),
    #[error("the sign-up was not finished in time")]
    Timeout,
    #[error("{0}")]
    Return(#[from] SignUpReturnError),
    #[error("{0}")]
    Api(#[from] ApiError),
}

impl SubscriptionError {
    /// Whether the backend refused the player's token (to be refreshed once, as for every service).
    pub(crate) fn token_refused(&self) -> bool {
        matches!(self, SubscriptionError::Api(error) if error.needs_new_token())
    }
}

/// The studio backend's subscription routes for one player.
#[derive(Clone)]
pub(crate) struct SubscriptionsBackend {
    pub(crate) api: ApiClient,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl SubscriptionsBackend {
    /// The player's subscriptions, as the backend verifies them now.
    pub(crate) async fn statuses(&self) -> Result<Vec<SubscriptionStatus>, SubscriptionError> {
        let request =
            self.api.http().get(format!("{}{SUBSCRIPTIONS_PATH}", self.base)).header(ACCESS_TOKEN_HEADER, &self.token);
        Ok(self.api.exchange_with_backend(request).await?)
    }

    /// The player's Instant Access subscriptions, and how each that ended did.
    pub(crate) async fn instant_access(&self) -> Result<Vec<PlayerSubscription>, SubscriptionError> {
        let url = format!("{}{PLAYER_SUBSCRIPTIONS_PATH}", self.base);
        let request = self.api.http().get(url).header(ACCESS_TOKEN_HEADER, &self.token);
        Ok(self.api.exchange_with_backend(request).await?)
    }

    /// Activates a key the player got at sign-up.
    pub(crate) async fn activate(&self, body: &ActivateRequest) -> Result<SubscriptionStatus, SubscriptionError> {
        self.post(ACTIVATE_PATH, body).await
    }

    /// A sign-up link bound to the player, for another device.
    pub(crate) async fn sign_up_link(&self, product_code: &str) -> Result<SignUpLink, SubscriptionError> {
        self.post(SIGNUP_PATH, &SignUpRequest { product_code: product_code.to_owned() }).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, SubscriptionError> {
        let request =
            self.api.http().post(format!("{}{path}", self.base)).header(ACCESS_TOKEN_HEADER, &self.token).json(body);
        Ok(self.api.exchange_with_backend(request).await?)
    }
}
