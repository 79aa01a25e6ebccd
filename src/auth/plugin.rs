//! [`LoginPlugin`]: links the player's Amazon account with Login with Amazon and keeps the
//! [`PlayerSession`](super::PlayerSession) every other service runs under.

use bevy::prelude::*;

use super::session::LoginFlow;
use super::systems::{handle_login_requests, receive_login};
use super::{LoginConfig, LoginEvent, LoginRequest};
use crate::config::RewardsConfig;
use crate::core::bridge::RewardsRuntime;
use crate::core::http::ApiClient;
use crate::core::instance::DataDirAccess;
use crate::core::wake::WakeSendOn;
use crate::core::{RewardsReceive, RewardsSend};

/// Login with Amazon in the system browser or by code pairing, tokens saved per player and refreshed, and the
/// [`PlayerSession`](super::PlayerSession) resource while a player is linked. Part of
/// [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins); a game with its own Amazon login disables it and
/// inserts `PlayerSession` itself.
///
/// Adds the [`LoginRequest`] and [`LoginEvent`] messages and the [`LoginState`](crate::prelude::LoginState) state (applied by the login
/// itself, with no per-frame cost: see [`LoginState`](crate::prelude::LoginState)).
/// Systems: one in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive) (the background flows' results) and one in
/// [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send) that runs when a `LoginRequest` waits or a result (such as a
/// [`TokenRefused`](crate::TokenRefused) from another service) arrived; at [`PreStartup`], the saved session is read.
#[derive(Debug, Clone, Default)]
pub struct LoginPlugin {
    /// Login with Amazon settings, written into [`RewardsConfig::login`]. Default: production Amazon, scopes
    /// `games::prime profile`, the system browser, sessions restored at startup.
    pub config: LoginConfig,
}

impl Plugin for LoginPlugin {
    fn build(&self, app: &mut App) {
        let (runtime, _) = crate::core::require_core(app, "LoginPlugin");
        let (outbox, inbox) = runtime.channel();
        let world = app.world_mut();
        world.resource_mut::<RewardsConfig>().login = self.config.clone();
        let mut flow = LoginFlow::new(world.resource::<RewardsConfig>(), world.resource::<ApiClient>(), outbox);
        if world.resource::<DataDirAccess>().read_only() {
            flow.make_read_only();
        }
        super::state::add_login_state(app);
        app.insert_resource(flow)
            .insert_resource(inbox)
            .wake_send_on::<LoginRequest>()
            .add_message::<LoginEvent>()
            .add_systems(PreStartup, (restore_session, super::state::enter_initial_state))
            .add_systems(RewardsReceive, receive_login)
            .add_systems(RewardsSend, handle_login_requests);
    }
}

/// Reads the saved session in the background, unless another instance holds the data directory or the game
/// turned restoring off.
fn restore_session(
    mut flow: ResMut<LoginFlow>,
    runtime: Res<RewardsRuntime>,
    config: Res<RewardsConfig>,
    access: Res<DataDirAccess>,
) {
    if config.login.restore_session && !access.read_only() {
        flow.restore(&runtime);
    }
}
