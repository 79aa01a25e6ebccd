//! The main thread's login state ([`LoginFlow`]): the sign-in under way, the tokens in force and their
//! scheduled refresh, and what happens when a token set is adopted or forgotten. The flows themselves run in
//! the background (`flow.rs`) and report back as [`LoginUpdate`]s.

use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;

use super::flow::{self, FlowProgress, LwaEndpoints};
use super::tokens::{self, StoredTokens, now_unix};
use super::{AccessToken, AmazonAccount, LoginError, LoginMethod, PlayerSession};
use crate::config::RewardsConfig;
use crate::core::bridge::{Outbox, RewardsRuntime};
use crate::core::http::ApiClient;

/// Updates from login work on the background runtime.
pub(crate) enum LoginUpdate {
    Progress { attempt: u64, progress: FlowProgress },
    Finished { attempt: u64, result: Result<StoredTokens, LoginError> },
    Restored(Result<Option<StoredTokens>, LoginError>),
    Refreshed { generation: u64, result: Result<StoredTokens, LoginError> },
}

/// The main thread's login state.
#[derive(Resource)]
pub(crate) struct LoginFlow {
    endpoints: Arc<LwaEndpoints>,
    outbox: Outbox<LoginUpdate>,
    refresh_margin: Duration,
    pub(super) attempt: u64,
    pub(super) running: Option<tokio::task::AbortHandle>,
    pub(super) tokens: Option<StoredTokens>,
    /// Bumped with every new token set, so a late refresh of an older set is ignored.
    generation: u64,
    refresh_task: Option<tokio::task::AbortHandle>,
    pub(super) refreshing: bool,
    pub(super) resuming: bool,
}

impl LoginFlow {
    pub(crate) fn new(config: &RewardsConfig, http: &ApiClient, outbox: Outbox<LoginUpdate>) -> Self {
        let login = &config.login;
        use amazon_rewards_protocol::lwa::{CODEPAIR_PATH, PROFILE_PATH, TOKEN_PATH};
        use amazon_rewards_protocol::studio::{
            LINK_API_PREFIX, LINK_AUTHORIZE_PATH, LINK_REVOKE_PATH, LINK_UNLINK_PATH,
        };
        let backend = login.studio_backend.as_deref().map(|url| url.trim_end_matches('/').to_owned());
        let (authorize_url, api) = match &backend {
            Some(url) => (format!("{url}{LINK_AUTHORIZE_PATH}"), format!("{url}{LINK_API_PREFIX}")),
            None => (login.authorize_url.clone(), login.api_url.trim_end_matches('/').to_owned()),
        };
        Self {
            outbox,
            endpoints: Arc::new(LwaEndpoints {
                studio: backend.map(|url| flow::StudioEndpoints {
                    revoke_url: format!("{url}{LINK_REVOKE_PATH}"),
                    unlink_url: format!("{url}{LINK_UNLINK_PATH}"),
                }),
                authorize_url,
                token_url: format!("{api}{TOKEN_PATH}"),
                codepair_url: format!("{api}{CODEPAIR_PATH}"),
                profile_url: format!("{api}{PROFILE_PATH}"),
                client_id: config.client_id.clone(),
                scopes: login.scopes.clone(),
                redirect_path: login.redirect_path.clone(),
                browser_timeout: login.browser_timeout,
                open_browser: login.open_browser.clone(),
                data_dir: config.resolved_data_dir(),
                http: http.http().clone(),
                token_files: Arc::default(),
            }),
            refresh_margin: login.refresh_margin,
            attempt: 0,
            running: None,
            tokens: None,
            generation: 0,
            refresh_task: None,
            refreshing: false,
            resuming: false,
        }
    }

    /// Reads the saved session in the background (at startup).
    pub(crate) fn restore(&mut self, runtime: &RewardsRuntime) {
        let Some(data_dir) = self.endpoints.data_dir.clone() else {
            return;
        };
        self.resuming = true;
        runtime.spawn(&self.outbox, async move {
            let loaded = tokio::task::spawn_blocking(move || tokens::load_current(&data_dir))
                .await
                .map_err(|e| LoginError::Storage(e.to_string()))
                .and_then(|r| r.map_err(|e| LoginError::Storage(e.to_string())));
            LoginUpdate::Restored(loaded)
        });
    }

    /// The refresh task finished (its result is being applied).
    pub(super) fn refresh_finished(&mut self) {
        self.refresh_task = None;
    }

    /// The generation of the token set in force.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// How long before expiry tokens are refreshed.
    pub(super) fn refresh_margin(&self) -> Duration {
        self.refresh_margin
    }

    /// Another instance holds the data directory: never save tokens there (a sign-in here still works for this
    /// run).
    pub(crate) fn make_read_only(&mut self) {
        self.endpoints.token_files.make_read_only();
    }

    pub(super) fn start(&mut self, runtime: &RewardsRuntime, method: LoginMethod) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
        self.attempt += 1;
        let attempt = self.attempt;
        let endpoints = self.endpoints.clone();
        let epoch = endpoints.token_files.epoch();
        let sender = self.outbox.clone();
        let progress = move |progress| sender.send(LoginUpdate::Progress { attempt, progress });
        self.running = Some(runtime.spawn(&self.outbox, async move {
            let result = match method {
                LoginMethod::Browser => flow::browser_login(endpoints, epoch, progress).await,
                LoginMethod::DeviceCode => flow::device_login(endpoints, epoch, progress).await,
            };
            LoginUpdate::Finished { attempt, result }
        }));
    }

    /// Refreshes after `delay` (now when zero).
    pub(super) fn schedule_refresh(&mut self, runtime: &RewardsRuntime, delay: Duration) {
        let Some(tokens) = self.tokens.clone() else {
            return;
        };
        if let Some(task) = self.refresh_task.take() {
            task.abort();
        }
        let endpoints = self.endpoints.clone();
        let epoch = endpoints.token_files.epoch();
        let generation = self.generation;
        self.refresh_task = Some(runtime.spawn(&self.outbox, async move {
            tokio::time::sleep(delay).await;
            let result = flow::refresh(endpoints, epoch, tokens).await;
            LoginUpdate::Refreshed { generation, result }
        }));
    }

    pub(super) fn refresh_delay(&self, tokens: &StoredTokens) -> Duration {
        let due = tokens.expires_at.saturating_sub(self.refresh_margin.as_secs());
        Duration::from_secs(due.saturating_sub(now_unix()))
    }

    /// Adopts a token set: the player's session (same player: same ledger) and the next refresh.
    pub(super) fn adopt(
        &mut self,
        commands: &mut Commands,
        runtime: &RewardsRuntime,
        tokens: StoredTokens,
    ) -> AmazonAccount {
        self.generation += 1;
        self.refreshing = false;
        let account =
            AmazonAccount { user_id: tokens.user_id.clone(), name: tokens.name.clone(), email: tokens.email.clone() };
        commands
            .insert_resource(PlayerSession::new(tokens.user_id.clone(), AccessToken::new(tokens.access_token.clone())));
        commands.insert_resource(account.clone());
        let delay = self.refresh_delay(&tokens);
        let refreshable = tokens.refresh_token.is_some();
        self.tokens = Some(tokens);
        if refreshable {
            self.schedule_refresh(runtime, delay);
        }
        account
    }

    /// Signs out (or, with `unlink`, unlinks): in backend mode the studio backend is told in the background
    /// (its answer does not matter to the player: the session is forgotten here at once either way).
    pub(super) fn sign_out(&mut self, commands: &mut Commands, runtime: &RewardsRuntime, unlink: bool) {
        if let (Some(studio), Some(tokens)) = (&self.endpoints.studio, &self.tokens) {
            let http = self.endpoints.http.clone();
            let call = if unlink {
                http.post(&studio.unlink_url).bearer_auth(&tokens.access_token)
            } else {
                let token = tokens.refresh_token.clone().unwrap_or_else(|| tokens.access_token.clone());
                http.post(&studio.revoke_url).form(&[("token", token)])
            };
            runtime.spawn_detached(async move {
                match call.send().await {
                    Ok(answer) if answer.status().is_success() => {}
                    Ok(answer) => warn!("the studio backend answered HTTP {} to a sign-out", answer.status().as_u16()),
                    Err(error) => warn!("the studio backend was not reached for a sign-out: {}", error.without_url()),
                }
            });
        }
        self.forget(commands, runtime);
    }

    /// Forgets the session: tokens (on disk too), session resources, timers.
    pub(super) fn forget(&mut self, commands: &mut Commands, runtime: &RewardsRuntime) {
        for task in [self.running.take(), self.refresh_task.take()].into_iter().flatten() {
            task.abort();
        }
        self.refreshing = false;
        self.generation += 1;
        // A sign-in finishing after this is not adopted.
        self.attempt += 1;
        // At once, on this thread: a save still running in the background from before is dropped.
        self.endpoints.token_files.end_epoch();
        if let (Some(tokens), Some(data_dir)) = (self.tokens.take(), self.endpoints.data_dir.clone()) {
            let files = self.endpoints.token_files.clone();
            runtime.spawn_detached(async move {
                let _ = tokio::task::spawn_blocking(move || files.delete(&data_dir, &tokens.user_id)).await;
            });
        }
        commands.remove_resource::<PlayerSession>();
        commands.remove_resource::<AmazonAccount>();
    }
}
