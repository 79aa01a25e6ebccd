//! Claiming a reward: [`ClaimReward`] opens the reward's claim page in the player's browser, once the URL is
//! known to be safe to hand to it.

use bevy::prelude::*;

use super::outbox::MomentsOutbox;
use super::{ClaimAnswered, ClaimOutcome, ClaimReward, MomentsStatus};
use crate::config::RewardsConfig;
use crate::core::bridge::RewardsRuntime;

/// Opens each claimed reward's page, remembers it was opened, and answers each claim to observers.
pub(super) fn open_claims(
    commands: &mut Commands,
    claims: &mut MessageReader<ClaimReward>,
    outbox: &mut MomentsOutbox,
    status: &mut MomentsStatus,
    config: &RewardsConfig,
    runtime: &RewardsRuntime,
) {
    for claim in claims.read() {
        let answer = |outcome| ClaimAnswered { reward_id: claim.reward_id.clone(), outcome };
        let Some(earned) = outbox.saved.rewards.iter_mut().find(|r| r.reward.reward_id == claim.reward_id) else {
            warn!("ClaimReward: no reward {}", claim.reward_id);
            commands.trigger(answer(ClaimOutcome::UnknownReward));
            continue;
        };
        let url = earned.reward.reward_url.clone();
        if !is_openable_reward_url(&url) {
            commands.trigger(answer(ClaimOutcome::UnsafeUrl));
            warn!(
                "ClaimReward: reward {} has a URL that is not https (or http on loopback); not opened",
                claim.reward_id
            );
            continue;
        }
        if !earned.claim_opened {
            earned.claim_opened = true;
            status.rewards = outbox.own_rewards();
            outbox.save(config, runtime);
        }
        commands.trigger(answer(ClaimOutcome::Opened));
        let open = config.login.open_browser.clone();
        runtime.spawn_detached(async move {
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || open(&url)).await {
                warn!("cannot open the reward page: {error}");
            }
        });
    }
}

/// Whether a server-supplied reward URL may be handed to the system browser: `https`, or `http` to a loopback
/// host (the sandbox). Anything else (`file:`, `javascript:`, a custom scheme that starts a program) is not.
pub(crate) fn is_openable_reward_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => !name.is_empty(),
        "http" => name.eq_ignore_ascii_case("localhost") || name == "::1" || name.starts_with("127."),
        _ => false,
    }
}

#[cfg(test)]
mod reward_url_tests {
    use super::is_openable_reward_url;

    #[test]
    fn only_https_or_loopback_http_is_opened() {
        for good in ["https://www.amazon.com/rewards/x", "http://127.0.0.1:8787/moments/reward/1", "http://localhost/r"]
        {
            assert!(is_openable_reward_url(good), "{good}");
        }
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "http://evil.example/r",
            "http://127.0.0.1.evil.example@evil.example/",
            "steam://run/1",
            "https://",
            "",
        ] {
            assert!(!is_openable_reward_url(bad), "{bad}");
        }
    }
}
