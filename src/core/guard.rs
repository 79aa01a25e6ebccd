//! The release guard: a release build of a game (`cfg(not(debug_assertions))`) does not start against the
//! sandbox — a non-`https` or loopback endpoint — unless the game opts in
//! ([`RewardsConfig::allow_sandbox_in_release`]), so test settings never ship by accident. The decision is a
//! plain function of the build kind, the endpoints and the opt-in, tested directly.

use amazon_rewards_protocol::http::is_sandbox_url;

use crate::config::RewardsConfig;

/// Which kind of build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// `debug_assertions` on: anything goes.
    Debug,
    /// A release build: production endpoints only, unless opted in.
    Release,
}

impl BuildKind {
    /// The build this code was compiled as.
    pub fn current() -> Self {
        if cfg!(debug_assertions) { BuildKind::Debug } else { BuildKind::Release }
    }
}

/// A sandbox endpoint in a release build without the opt-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this release build is configured for a sandbox: {setting} is {url} (not https, or loopback). Point it at \
     production, or set RewardsConfig::allow_sandbox_in_release to ship a test build on purpose"
)]
pub struct SandboxInRelease {
    /// Which setting.
    pub setting: &'static str,
    /// Its URL.
    pub url: String,
}

/// The decision: `Err` names the first sandbox endpoint a release build without the opt-in would use.
pub fn check_endpoints<'a>(
    build: BuildKind,
    endpoints: impl IntoIterator<Item = (&'static str, &'a str)>,
    allow_sandbox_in_release: bool,
) -> Result<(), SandboxInRelease> {
    if build == BuildKind::Debug || allow_sandbox_in_release {
        return Ok(());
    }
    match endpoints.into_iter().find(|(_, url)| is_sandbox_url(url)) {
        Some((setting, url)) => Err(SandboxInRelease { setting, url: url.to_owned() }),
        None => Ok(()),
    }
}

/// Every endpoint `config` makes the game call or open.
pub fn endpoints(config: &RewardsConfig) -> Vec<(&'static str, &str)> {
    let mut endpoints = vec![
        ("RewardsConfig::entitlements_url", config.entitlements_url.as_str()),
        ("LoginConfig::authorize_url", config.login.authorize_url.as_str()),
        ("LoginConfig::api_url", config.login.api_url.as_str()),
    ];
    let optional = [
        ("LoginConfig::studio_backend", &config.login.studio_backend),
        ("MomentsConfig::moments_url", &config.moments.moments_url),
        ("SubscriptionsConfig::signup_url", &config.subscriptions.signup_url),
        ("SubscriptionsConfig::billing_url", &config.subscriptions.billing_url),
    ];
    endpoints.extend(optional.into_iter().filter_map(|(name, url)| url.as_deref().map(|url| (name, url))));
    endpoints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_build_refuses_the_sandbox_unless_opted_in() {
        let production = [("a", "https://api.amazon.com"), ("b", "https://rewards.studio.example")];
        let sandbox = [("a", "https://api.amazon.com"), ("b", "http://127.0.0.1:8787")];
        assert_eq!(check_endpoints(BuildKind::Release, production, false), Ok(()));
        let refused = check_endpoints(BuildKind::Release, sandbox, false).unwrap_err();
        assert_eq!((refused.setting, refused.url.as_str()), ("b", "http://127.0.0.1:8787"));
        assert!(refused.to_string().contains("allow_sandbox_in_release"));
        assert_eq!(check_endpoints(BuildKind::Release, sandbox, true), Ok(()), "opted in");
        assert_eq!(check_endpoints(BuildKind::Debug, sandbox, false), Ok(()), "debug builds may use it");
    }

    #[test]
    fn the_defaults_are_production_and_the_sandbox_settings_are_not() {
        let defaults = RewardsConfig::default();
        assert_eq!(check_endpoints(BuildKind::Release, endpoints(&defaults), false), Ok(()));
        let mut sandbox = RewardsConfig::default();
        sandbox.use_amazon_at("http://127.0.0.1:8787");
        assert!(check_endpoints(BuildKind::Release, endpoints(&sandbox), false).is_err());
        let mut backend = RewardsConfig::default();
        backend.login.studio_backend = Some("http://localhost:8788".into());
        let refused = check_endpoints(BuildKind::Release, endpoints(&backend), false).unwrap_err();
        assert_eq!(refused.setting, "LoginConfig::studio_backend");
    }
}
