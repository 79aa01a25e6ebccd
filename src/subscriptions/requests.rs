//! The subscriptions' send system: starts what the game asked for — a sign-up here or on another device, an
//! activation, a status refresh (also after every successful pull), the billing page.

use amazon_rewards_protocol::devpay::ActivateRequest;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::backend::{SubscriptionError, SubscriptionsBackend};
use super::receive::SubscriptionUpdate;
use super::signup::{ElsewhereSignUp, sign_up_here};
use super::{
    ActivateSubscription, OpenBillingPage, RefreshSubscriptions, SignUpForSubscription, SignUpOnAnotherDevice,
};
use crate::auth::PlayerSession;
use crate::config::RewardsConfig;
use crate::core::bridge::{Outbox, RewardsRuntime};
use crate::core::http::ApiClient;
use crate::entitlements::PullCompleted;

/// The subscriptions' background work in progress.
#[derive(Resource)]
pub(crate) struct SubscriptionTasks {
    pub(crate) outbox: Outbox<SubscriptionUpdate>,
    /// The sign-up waiting for the player; a new one replaces it.
    waiting_sign_up: Option<tokio::task::AbortHandle>,
}

impl SubscriptionTasks {
    pub(crate) fn new(outbox: Outbox<SubscriptionUpdate>) -> Self {
        Self { outbox, waiting_sign_up: None }
    }

    fn replace_sign_up(&mut self, task: tokio::task::AbortHandle) {
        if let Some(previous) = self.waiting_sign_up.replace(task) {
            previous.abort();
        }
    }
}

/// The messages the send system reads.
#[derive(SystemParam)]
pub(crate) struct SubscriptionRequests<'w, 's> {
    sign_ups: MessageReader<'w, 's, SignUpForSubscription>,
    sign_ups_elsewhere: MessageReader<'w, 's, SignUpOnAnotherDevice>,
    activations: MessageReader<'w, 's, ActivateSubscription>,
    refreshes: MessageReader<'w, 's, RefreshSubscriptions>,
    billing: MessageReader<'w, 's, OpenBillingPage>,
    pulls: MessageReader<'w, 's, PullCompleted>,
}

impl SubscriptionRequests<'_, '_> {
    fn is_empty(&self) -> bool {
        self.sign_ups.is_empty()
            && self.sign_ups_elsewhere.is_empty()
            && self.activations.is_empty()
            && self.refreshes.is_empty()
            && self.billing.is_empty()
            && self.pulls.is_empty()
    }
}

/// Starts the requested work. Runs in [`RewardsSend`](crate::RewardsSend); does nothing unless one of the
/// subscriptions' requests (or a completed pull) waits.
pub(crate) fn send_subscription_requests(
    mut requests: SubscriptionRequests,
    mut tasks: ResMut<SubscriptionTasks>,
    session: Option<Res<PlayerSession>>,
    runtime: Res<RewardsRuntime>,
    config: Res<RewardsConfig>,
    api: Res<ApiClient>,
) {
    // The send schedule runs when any service has work: nothing to do unless one of ours waits.
    if requests.is_empty() {
        return;
    }
    let backend = session.as_deref().map(|session| SubscriptionsBackend {
        api: api.clone(),
        base: config.entitlements_url.trim_end_matches('/').to_owned(),
        token: session.access_token().secret().to_owned(),
    });
    if let Some(SignUpOnAnotherDevice { product_code }) = requests.sign_ups_elsewhere.read().last().cloned() {
        sign_up_elsewhere(&mut tasks, &runtime, &config, backend.clone(), product_code);
    }
    if let Some(SignUpForSubscription { product_code }) = requests.sign_ups.read().last().cloned() {
        sign_up(&mut tasks, &runtime, &config, backend.is_some(), product_code);
    }
    if requests.billing.read().count() > 0 {
        open_billing_page(&runtime, &config);
    }
    let refresh = requests.refreshes.read().count() > 0 || requests.pulls.read().count() > 0;
    for activation in requests.activations.read().cloned() {
        activate(&tasks.outbox, &runtime, backend.clone(), activation);
    }
    if let Some(backend) = backend.filter(|_| refresh) {
        let instant_access = backend.clone();
        runtime.spawn(&tasks.outbox, async move { SubscriptionUpdate::Refreshed(backend.statuses().await) });
        runtime.spawn(&tasks.outbox, async move {
            SubscriptionUpdate::InstantAccessRefreshed(instant_access.instant_access().await)
        });
    }
}

fn sign_up_elsewhere(
    tasks: &mut SubscriptionTasks,
    runtime: &RewardsRuntime,
    config: &RewardsConfig,
    backend: Option<SubscriptionsBackend>,
    product_code: String,
) {
    let sign_up = backend.map(|backend| ElsewhereSignUp {
        product_code: product_code.clone(),
        backend,
        poll_every: config.subscriptions.signup_poll_interval,
        timeout: config.subscriptions.signup_timeout,
    });
    let progress = tasks.outbox.clone();
    let task = runtime.spawn(&tasks.outbox, async move {
        let result = match sign_up {
            Some(sign_up) => sign_up.run(progress).await,
            None => Err(SubscriptionError::NotSignedIn),
        };
        SubscriptionUpdate::Activated { product_code, result }
    });
    tasks.replace_sign_up(task);
}

fn sign_up(
    tasks: &mut SubscriptionTasks,
    runtime: &RewardsRuntime,
    config: &RewardsConfig,
    signed_in: bool,
    product_code: String,
) {
    let url = match (&config.subscriptions.signup_url, signed_in) {
        (None, _) => Err(SubscriptionError::NoSignUpUrl),
        (_, false) => Err(SubscriptionError::NotSignedIn),
        (Some(url), true) => Ok(url.clone()),
    };
    let (open, timeout, progress) =
        (config.login.open_browser.clone(), config.subscriptions.signup_timeout, tasks.outbox.clone());
    let task = runtime.spawn(&tasks.outbox, async move {
        let result = match url {
            Ok(url) => sign_up_here(product_code.clone(), url, open, timeout, progress).await,
            Err(reason) => Err(reason),
        };
        SubscriptionUpdate::SignUpReturned { product_code, result }
    });
    tasks.replace_sign_up(task);
}

fn open_billing_page(runtime: &RewardsRuntime, config: &RewardsConfig) {
    let Some(url) = config.subscriptions.billing_url.clone() else {
        warn!("OpenBillingPage: SubscriptionsConfig::billing_url is not set");
        return;
    };
    let open = config.login.open_browser.clone();
    runtime.spawn_detached(async move {
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || open(&url)).await {
            warn!("cannot open the billing page: {error}");
        }
    });
}

fn activate(
    outbox: &Outbox<SubscriptionUpdate>,
    runtime: &RewardsRuntime,
    backend: Option<SubscriptionsBackend>,
    activation: ActivateSubscription,
) {
    runtime.spawn(outbox, async move {
        let product_code = activation.product_code.clone();
        let result = match backend {
            Some(backend) => {
                let body = ActivateRequest {
                    activation_key: activation.activation_key,
                    product_code: activation.product_code,
                };
                backend.activate(&body).await
            }
            None => Err(SubscriptionError::NotSignedIn),
        };
        SubscriptionUpdate::Activated { product_code, result }
    });
}
