//! The studio backend's linking surface (sandbox-defined: no Amazon source describes a studio's own
//! endpoints). The backend is the game's OAuth 2.0 authorization server and speaks Login with Amazon's own
//! shapes under [`LINK_API_PREFIX`] (token endpoint, code pair, profile: `/link/auth/o2/token`,
//! `/link/auth/o2/create/codepair`, `/link/user/profile`), so the game runs the same browser and code-pairing
//! flows against it as against LWA; what it receives is a studio session, never an LWA token.

/// Where the game sends the browser to link (`response_type=code`, `client_id`, a loopback `redirect_uri`,
/// `state`, `code_challenge`, `code_challenge_method=S256`).
pub const LINK_AUTHORIZE_PATH: &str = "/link/authorize";
/// Where Login with Amazon returns the browser to the backend (register `{public_url}/link/callback` with
/// the backend's security profile).
pub const LINK_CALLBACK_PATH: &str = "/link/callback";
/// Prefix of LWA's token, code-pair and profile paths on the backend.
pub const LINK_API_PREFIX: &str = "/link";
/// Sign-out: `token=<refresh or access token>` (form), RFC 7009; always `200`.
pub const LINK_REVOKE_PATH: &str = "/link/revoke";
/// Unlink (`POST`, the session's bearer token): the backend forgets the Amazon link, its tokens and the
/// profile, keeps the game account and its purchases, and ends every session of the account.
pub const LINK_UNLINK_PATH: &str = "/link/unlink";
/// Prefix of studio access tokens (so an LWA token, `Atza|…`, is never mistaken for one).
pub const ACCESS_TOKEN_PREFIX: &str = "rs_at.";
/// Prefix of studio refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "rs_rt.";
/// The OAuth error a refused refresh answers when the Amazon link itself is broken (LWA refused the
/// backend's refresh token): only linking again helps.
pub const LINK_BROKEN: &str = "link_broken";
