//! The login's systems: [`receive_login`] applies what the background flows report (in
//! [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive)), and [`handle_login_requests`] acts
//! on the game's [`LoginRequest`]s and on [`TokenRefused`] from any service (in
//! [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send), only when one waits).

use std::time::Duration;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::flow::FlowProgress;
use super::session::{LoginFlow, LoginUpdate};
use super::tokens::{StoredTokens, now_unix};
use super::{LoginError, LoginEvent, LoginMethod, LoginRequest, LoginState};
use crate::core::TokenRefused;
use crate::core::bridge::{Inbox, RewardsRuntime};

/// What the login systems work with.
#[derive(SystemParam)]
pub(crate) struct LoginDriver<'w, 's> {
    commands: Commands<'w, 's>,
    flow: ResMut<'w, LoginFlow>,
    runtime: Res<'w, RewardsRuntime>,
    events: MessageWriter<'w, LoginEvent>,
}

/// Applies the background flows' progress and results.
pub(crate) fn receive_login(mut inbox: ResMut<Inbox<LoginUpdate>>, mut login: LoginDriver) {
    while let Some(update) = inbox.next() {
        login.apply(update);
    }
}

/// Starts, cancels and ends sign-ins as the game asks, and refreshes a refused token.
pub(crate) fn handle_login_requests(
    mut requests: MessageReader<LoginRequest>,
    mut refusals: MessageReader<TokenRefused>,
    mut login: LoginDriver,
) {
    for request in requests.read() {
        login.request(*request);
    }
    if refusals.read().count() > 0 {
        login.token_refused();
    }
}

impl LoginDriver<'_, '_> {
    fn set_state(&mut self, state: LoginState) {
        super::state::change_login_state(&mut self.commands, state);
    }

    /// Signed in if tokens are in force, signed out otherwise.
    fn settle_state(&mut self) {
        let state = if self.flow.tokens.is_some() { LoginState::LoggedIn } else { LoginState::LoggedOut };
        self.set_state(state);
    }

    fn request(&mut self, request: LoginRequest) {
        let method = match request {
            LoginRequest::WithBrowser => LoginMethod::Browser,
            LoginRequest::WithDeviceCode => LoginMethod::DeviceCode,
            LoginRequest::Cancel => return self.cancel(),
            LoginRequest::SignOut | LoginRequest::Unlink => {
                self.flow.sign_out(&mut self.commands, &self.runtime, request == LoginRequest::Unlink);
                self.events.write(LoginEvent::SignedOut);
                return self.set_state(LoginState::LoggedOut);
            }
        };
        self.flow.start(&self.runtime, method);
        self.events.write(LoginEvent::Started(method));
        self.set_state(LoginState::SigningIn);
    }

    fn cancel(&mut self) {
        if let Some(running) = self.flow.running.take() {
            running.abort();
            self.flow.attempt += 1;
            self.events.write(LoginEvent::Cancelled);
            self.settle_state();
        }
    }

    /// Amazon's error process: retry, refresh, and only then relink. A service refused the access token
    /// (maybe expired), so refresh once; the services retry once with the new token and treat a second
    /// refusal as an ordinary request error. Only a refused refresh signs out.
    fn token_refused(&mut self) {
        let Some(tokens) = &self.flow.tokens else { return };
        if self.flow.refreshing {
            return;
        }
        if tokens.refresh_token.is_none() {
            let reason = LoginError::Provider {
                error: "invalid_token".into(),
                description: "the access token was refused and there is no refresh token".into(),
            };
            self.flow.forget(&mut self.commands, &self.runtime);
            self.events.write(LoginEvent::ReloginRequired(reason));
            self.set_state(LoginState::LoggedOut);
        } else {
            self.flow.refreshing = true;
            self.flow.schedule_refresh(&self.runtime, Duration::ZERO);
        }
    }

    fn apply(&mut self, update: LoginUpdate) {
        match update {
            LoginUpdate::Progress { attempt, progress } if attempt == self.flow.attempt => self.progress(progress),
            LoginUpdate::Finished { attempt, result } if attempt == self.flow.attempt => self.finished(result),
            LoginUpdate::Restored(loaded) => self.restored(loaded),
            LoginUpdate::Refreshed { generation, result } if generation == self.flow.generation() => {
                self.refreshed(result)
            }
            // Late news of a sign-in or refresh that was replaced meanwhile.
            LoginUpdate::Progress { .. } | LoginUpdate::Finished { .. } | LoginUpdate::Refreshed { .. } => {}
        }
    }

    fn progress(&mut self, progress: FlowProgress) {
        self.events.write(match progress {
            FlowProgress::BrowserOpened { url } => LoginEvent::BrowserOpened { url },
            FlowProgress::DeviceCodeReady { user_code, verification_uri, expires_in } => {
                LoginEvent::DeviceCodeReady { user_code, verification_uri, expires_in }
            }
        });
    }

    fn finished(&mut self, result: Result<StoredTokens, LoginError>) {
        self.flow.running = None;
        match result {
            Ok(tokens) => {
                let account = self.flow.adopt(&mut self.commands, &self.runtime, tokens);
                info!("linked Amazon account of {}", account.name);
                self.events.write(LoginEvent::SignedIn(account));
                self.set_state(LoginState::LoggedIn);
            }
            Err(error) => {
                warn!("sign-in failed: {error}");
                self.events.write(LoginEvent::Failed(error));
                self.settle_state();
            }
        }
    }

    /// The saved session read at startup: resumed if its token is fresh, refreshed first if not.
    fn restored(&mut self, loaded: Result<Option<StoredTokens>, LoginError>) {
        let flow = &mut *self.flow;
        match loaded {
            Ok(Some(tokens)) if flow.tokens.is_none() && flow.running.is_none() => {
                if tokens.expires_at > now_unix() + flow.refresh_margin().as_secs() {
                    flow.resuming = false;
                    let account = flow.adopt(&mut self.commands, &self.runtime, tokens);
                    self.events.write(LoginEvent::Resumed(account));
                    self.set_state(LoginState::LoggedIn);
                } else if tokens.refresh_token.is_some() {
                    flow.tokens = Some(tokens);
                    flow.refreshing = true;
                    flow.schedule_refresh(&self.runtime, Duration::ZERO);
                    self.set_state(LoginState::SigningIn);
                } else {
                    flow.resuming = false;
                }
            }
            Ok(_) => flow.resuming = false,
            Err(error) => {
                flow.resuming = false;
                warn!("the saved Amazon session could not be read: {error}");
                self.events.write(LoginEvent::Failed(error));
            }
        }
    }

    fn refreshed(&mut self, result: Result<StoredTokens, LoginError>) {
        self.flow.refresh_finished();
        match result {
            Ok(tokens) => {
                let account = self.flow.adopt(&mut self.commands, &self.runtime, tokens);
                if std::mem::take(&mut self.flow.resuming) {
                    self.events.write(LoginEvent::Resumed(account));
                    self.set_state(LoginState::LoggedIn);
                }
            }
            Err(error) if error.is_refresh_refused() => {
                // The refresh token itself was refused ("Token invalid"): only a new link helps.
                warn!("the Amazon session ended: {error}");
                self.flow.resuming = false;
                self.flow.forget(&mut self.commands, &self.runtime);
                self.events.write(LoginEvent::ReloginRequired(error));
                self.set_state(LoginState::LoggedOut);
            }
            Err(error) => {
                // Offline or a hiccup: keep the session and try again shortly.
                warn!("refreshing the Amazon session failed ({error}); retrying in 30 s");
                self.flow.refreshing = false;
                self.flow.schedule_refresh(&self.runtime, Duration::from_secs(30));
            }
        }
    }
}
