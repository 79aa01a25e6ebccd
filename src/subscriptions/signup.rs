//! The two sign-up paths: in this machine's browser, returning to a loopback listener with the activation key
//! ([`sign_up_here`]), and on another device through a link the backend binds to the player, waiting for the
//! subscription to appear ([`ElsewhereSignUp`]).

use std::time::Duration;

use amazon_rewards_protocol::devpay::{SignUpReturnError, SubscriptionStatus};
use oauth2::CsrfToken;
use oauth2::url::Url;

use super::SIGNUP_RETURN_PATH;
use super::backend::{SubscriptionError, SubscriptionsBackend};
use super::receive::SubscriptionUpdate;
use crate::auth::BrowserOpener;
use crate::core::bridge::Outbox;
use crate::core::loopback::{LoopbackError, LoopbackListener, Query, ReturnPages};

/// What a sign-up redirect says: the activation key, if it is the answer to this sign-up.
fn judge_return(query: &Query, expected_state: &str, product_code: &str) -> Result<String, SignUpReturnError> {
    amazon_rewards_protocol::devpay::read_signup_return(query, expected_state, product_code)
}

/// Opens the sign-up pages with a loopback return address and waits for the player to come back.
pub(crate) async fn sign_up_here(
    product_code: String,
    signup_url: String,
    open_browser: BrowserOpener,
    timeout: Duration,
    progress: Outbox<SubscriptionUpdate>,
) -> Result<String, SubscriptionError> {
    let listener =
        LoopbackListener::bind(SIGNUP_RETURN_PATH).await.map_err(|e| SubscriptionError::Listener(e.to_string()))?;
    let state = CsrfToken::new_random();
    let mut url = Url::parse(&format!("{}/{product_code}", signup_url.trim_end_matches('/')))
        .map_err(|_| SubscriptionError::BadSignUpUrl)?;
    url.query_pairs_mut().append_pair("redirect_uri", listener.redirect_uri()).append_pair("state", state.secret());
    let address = url.to_string();
    progress.send(SubscriptionUpdate::SignUpOpened { product_code: product_code.clone(), url: address.clone() });
    tokio::task::spawn_blocking(move || open_browser(&address))
        .await
        .map_err(|e| SubscriptionError::Browser(e.to_string()))?
        .map_err(|e| SubscriptionError::Browser(e.0))?;
    let pages = ReturnPages {
        done: ("Subscribed", "Your subscription is being activated. Return to the game."),
        failed: "Sign-up did not complete",
    };
    match listener
        .wait_for(timeout, state.secret(), pages, |query| judge_return(query, state.secret(), &product_code))
        .await
    {
        Ok(outcome) => Ok(outcome?),
        Err(LoopbackError::Timeout) => Err(SubscriptionError::Timeout),
        Err(LoopbackError::Network(error)) => Err(SubscriptionError::Listener(error)),
    }
}

/// A sign-up on another device.
pub(crate) struct ElsewhereSignUp {
    pub(crate) product_code: String,
    pub(crate) backend: SubscriptionsBackend,
    pub(crate) poll_every: Duration,
    pub(crate) timeout: Duration,
}

impl ElsewhereSignUp {
    /// Asks the backend for a link, hands it to the game, and waits for the subscription to become active.
    pub(crate) async fn run(
        self,
        progress: Outbox<SubscriptionUpdate>,
    ) -> Result<SubscriptionStatus, SubscriptionError> {
        let link = self.backend.sign_up_link(&self.product_code).await?;
        progress.send(SubscriptionUpdate::SignUpLinkReady {
            product_code: self.product_code.clone(),
            url: link.sign_up_url,
        });
        let deadline = tokio::time::Instant::now() + self.timeout.min(Duration::from_secs(link.expires_in));
        loop {
            tokio::time::sleep(self.poll_every).await;
            // A failed check is tried again at the next tick; only the deadline ends the wait.
            if let Ok(statuses) = self.backend.statuses().await
                && let Some(active) = statuses.into_iter().find(|s| s.product_code == self.product_code && s.active)
            {
                return Ok(active);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SubscriptionError::Timeout);
            }
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
        assert!(judge_return(&query(&good), "s2", "PASS").unwrap_err().to_string().contains("not the sign-up"));
        assert!(judge_return(&query(&good[..2]), "s1", "PASS").is_err(), "no state");
        assert!(judge_return(&query(&good), "s1", "OTHER").unwrap_err().to_string().contains("not for OTHER"));
        let long = "K".repeat(amazon_rewards_protocol::devpay::MAX_ACTIVATION_KEY_LEN + 1);
        for key in ["", "<script>", "A B", long.as_str()] {
            let bad = [("ActivationKey", key), ("ProductCode", "PASS"), ("state", "s1")];
            assert!(judge_return(&query(&bad), "s1", "PASS").unwrap_err().to_string().contains("no usable"), "{key:?}");
        }
    }
}
