//! An Amazon identity linked to a game account: the account found or created for the LWA `user_id`, the
//! backend's LWA tokens for it (sealed; the `lwa_tokens` row the Prime Gaming relay uses) and the profile
//! the `profile` scope brought (`amazon_profiles`, whose SQL lives here); and unlinking, which deletes the
//! last two and keeps the account. Amazon's account-link guide: store the `user_id`, the tokens and their
//! expiry on the studio's side; relink by deleting them and linking again.

use std::time::Duration;

use amazon_rewards_protocol::lwa::Profile;
use sqlx::{AnyConnection, AnyPool};

use super::sessions;
use crate::sealed::{TokenKey, seal};

/// What Login with Amazon answered for a player who just approved the backend.
pub(crate) struct AmazonGrant {
    pub profile: Profile,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Duration,
}

/// Links the identity in `grant` (finding or creating its game account), stores its tokens and profile, and
/// answers the game account.
pub(crate) async fn link(pool: &AnyPool, key: Option<&TokenKey>, grant: &AmazonGrant) -> Result<String, sqlx::Error> {
    let profile = &grant.profile;
    let user_id = crate::accounts::claim_for_amazon_user(pool, &profile.user_id, &profile.name).await?;
    let now = crate::now_secs();
    let mut tx = pool.begin().await?;
    if let Some(refresh) = &grant.refresh_token {
        sqlx::query(
            "INSERT INTO lwa_tokens (user_id, refresh_token, updated_at, access_token, access_expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET refresh_token = EXCLUDED.refresh_token,
                 updated_at = EXCLUDED.updated_at, access_token = EXCLUDED.access_token,
                 access_expires_at = EXCLUDED.access_expires_at, refreshing_until = NULL",
        )
        .bind(&user_id)
        .bind(seal(key, &user_id, refresh))
        .bind(now)
        .bind(seal(key, &user_id, &grant.access_token))
        .bind(now + grant.expires_in.as_secs().min(24 * 3600) as i64)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO amazon_profiles (user_id, name, email, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, updated_at = EXCLUDED.updated_at",
    )
    .bind(&user_id)
    .bind(&profile.name)
    .bind(&profile.email)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    crate::accounts::clear_link_broken(&mut tx, &user_id).await?;
    tx.commit().await?;
    Ok(user_id)
}

/// The display name the player's Amazon profile gave, if it is still stored.
pub(crate) async fn profile_name(pool: &AnyPool, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM amazon_profiles WHERE user_id = $1").bind(user_id).fetch_optional(pool).await
}

/// Unlinks `user_id` from `amazon_user_id` in one transaction: the LWA tokens, the profile and the pending
/// links go, every session ends; the game account and its purchases stay.
pub(crate) async fn unlink(pool: &AnyPool, user_id: &str, amazon_user_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    forget(&mut tx, user_id).await?;
    crate::accounts::forget_amazon_user(&mut tx, user_id, amazon_user_id).await?;
    // Ending the sessions revokes read leases on the account, which covers the forgotten identity too.
    sessions::end_all(&mut tx, pool, user_id, "unlinked").await?;
    tx.commit().await
}

async fn forget(connection: &mut AnyConnection, user_id: &str) -> Result<(), sqlx::Error> {
    for delete in [
        "DELETE FROM lwa_tokens WHERE user_id = $1",
        "DELETE FROM amazon_profiles WHERE user_id = $1",
        "DELETE FROM link_codes WHERE user_id = $1",
        "DELETE FROM link_pairings WHERE user_id = $1",
    ] {
        sqlx::query(delete).bind(user_id).execute(&mut *connection).await?;
    }
    Ok(())
}
