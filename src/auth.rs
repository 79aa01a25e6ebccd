//! Who the player is to Amazon: the [`PlayerSession`] (player id and access token) that pulls and reports
//! run under.
//!
//! A game inserts the session resource once it has a token; replacing it with another player's session
//! switches ledgers, and removing it logs out. The browser login with Login with Amazon builds on this.

use bevy::prelude::*;

/// A Login with Amazon access token. Its `Debug` output never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token string (`Atza|…`).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, for an `x-amz-access-token` header. Never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// The signed-in player. While it exists, the plugin pulls entitlements for this player and grants them
/// into the [`Inventory`](crate::inventory::Inventory) of the [`RewardsRecipient`](crate::inventory::RewardsRecipient).
///
/// ```
/// # use bevy::prelude::*;
/// # use bevy_amazon_rewards::prelude::*;
/// fn on_token(mut commands: Commands) {
///     commands.insert_resource(PlayerSession::new("amzn1.account.EXAMPLE", AccessToken::new("Atza|…")));
/// }
/// ```
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct PlayerSession {
    player_id: String,
    access_token: AccessToken,
}

impl PlayerSession {
    /// A session for `player_id` (the Amazon user id, `amzn1.account.…`) with `access_token`.
    pub fn new(player_id: impl Into<String>, access_token: AccessToken) -> Self {
        Self { player_id: player_id.into(), access_token }
    }

    /// The player's id; their ledger is kept under it.
    pub fn player_id(&self) -> &str {
        &self.player_id
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
}
