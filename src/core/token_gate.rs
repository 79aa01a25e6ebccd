//! The rule every service follows when Amazon (or the studio backend) refuses a token, after Amazon's error
//! process ("retry, refresh, relink"): an HTTP 400/401 may mean an expired token, so the first refusal stops
//! that service's requests until the login has refreshed the token once ([`TokenRefused`](super::TokenRefused));
//! the same call refused again with the refreshed token is an ordinary request error, retried with backoff,
//! never another refresh or a sign-out. Once that call succeeds with the new token the episode is over, and a
//! later refusal starts a new one (the token may have been revoked or expired since).

use crate::error::ApiError;

/// One service's state under that rule. Calls are named by the service (`"pull"`, `"report"`, …).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenGate {
    /// The call whose refusal is waiting for a refreshed token: no requests until then.
    waiting: Option<&'static str>,
    /// The call whose refusal the current token was refreshed for, until it succeeds with it.
    refreshed_for: Option<&'static str>,
}

impl TokenGate {
    /// Whether requests wait for a refreshed token.
    pub(crate) fn waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// `call` was answered with `error`: `true` when that starts a wait for a refresh (the caller asks the login
    /// for one).
    pub(crate) fn refused(&mut self, error: &ApiError, call: &'static str) -> bool {
        if !error.needs_new_token() || self.refreshed_for.is_some() {
            return false;
        }
        self.waiting = Some(call);
        true
    }

    /// A new token for the same player arrived (a refresh, scheduled or asked for).
    pub(crate) fn new_token(&mut self) {
        self.refreshed_for = self.waiting.take();
    }

    /// `call` succeeded with the current token.
    pub(crate) fn succeeded(&mut self, call: &'static str) {
        if self.refreshed_for == Some(call) {
            self.refreshed_for = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRED: ApiError = ApiError::Unauthorized { status: 400 };

    #[test]
    fn one_refresh_per_refusal_and_a_new_episode_once_the_refused_call_succeeds() {
        let mut gate = TokenGate::default();
        assert!(gate.refused(&EXPIRED, "pull") && gate.waiting());
        gate.new_token();
        assert!(!gate.waiting());
        assert!(!gate.refused(&EXPIRED, "pull"), "the refreshed token refused at once: a request error");
        assert!(!gate.waiting());
        gate.succeeded("pull");
        assert!(gate.refused(&EXPIRED, "pull"), "refused again after a good answer: refresh again");
    }

    #[test]
    fn another_call_succeeding_does_not_end_the_episode() {
        let mut gate = TokenGate::default();
        assert!(gate.refused(&EXPIRED, "report"));
        gate.new_token();
        gate.succeeded("pull");
        assert!(!gate.refused(&EXPIRED, "report"), "reports still refused with a token pulls work with");
    }

    #[test]
    fn a_scheduled_refresh_does_not_count_as_one_after_a_refusal() {
        let mut gate = TokenGate::default();
        gate.new_token();
        assert!(gate.refused(&EXPIRED, "pull"));
    }

    #[test]
    fn errors_that_are_not_about_the_token_never_wait() {
        let mut gate = TokenGate::default();
        assert!(!gate.refused(&ApiError::Timeout, "pull"));
        assert!(!gate.waiting());
    }
}
