//! Typed errors: what went wrong talking to a service ([`ApiError`]) and what the game is told
//! ([`RewardsError`], a Bevy message). Nothing is dropped silently: every failed task ends in one.

use std::time::Duration;

use bevy::prelude::*;

/// A failed HTTP exchange with an entitlements service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The connection failed or broke.
    #[error("network error: {0}")]
    Network(String),
    /// No complete answer within the request timeout.
    #[error("the service did not answer in time")]
    Timeout,
    /// HTTP 429 or 503: the service asks us to slow down.
    #[error("rate limited by the service (retry after {retry_after:?})")]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// HTTP 400/401 on an authenticated call: maybe the access token expired (Amazon answers an expired token
    /// with HTTP 400). The token is refreshed once and the call retried once; if that is refused too, it is a
    /// request error retried with backoff, never a sign-out.
    #[error("the service refused the request (HTTP {status}); the access token may have expired")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The Amazon sign-in did not grant every permission the service needs ("Not all permissions are
    /// authorized": the player's link lacks the `games::prime` or `profile` scope). Linking again with
    /// both scopes fixes it.
    #[error("the Amazon account link lacks a permission (games::prime and profile are needed): link the account again")]
    MissingPermissions,
    /// The studio backend refused the request with its own error code (e.g. `InvalidActivationKey`).
    #[error("{error}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The backend's error code.
        error: String,
    },
    /// Any other non-success status.
    #[error("the service answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The body is not JSON (by its `Content-Type`).
    #[error("unexpected content type {0:?}")]
    UnexpectedContentType(String),
    /// The body is larger than `RewardsConfig::max_response_bytes`.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The body is not the JSON expected (malformed, truncated, wrong shape).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Pagination did not end within `RewardsConfig::max_pages`, or repeated a token.
    #[error("pagination did not end: {0}")]
    Pagination(String),
}

impl ApiError {
    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } | ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the access token may be the cause (refresh it once before trying again).
    pub fn needs_new_token(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. })
    }
}

/// Something the plugin could not do, surfaced to the game as a message.
///
/// Entitlements involved are never lost: they stay unfulfilled on the service and are pulled again.
#[derive(Message, Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewardsError {
    /// Pulling entitlements failed; the pull is retried with backoff.
    #[error("pulling entitlements failed: {0}")]
    Pull(ApiError),
    /// Reporting fulfilment failed; the report is retried with backoff.
    #[error("reporting fulfilment failed: {0}")]
    Report(ApiError),
    /// The service refused the fulfilment report of one entitlement.
    #[error("the service refused the fulfilment of {entitlement_id}: {reason}")]
    ReportRejected {
        /// The entitlement.
        entitlement_id: String,
        /// The service's reason.
        reason: String,
    },
    /// An entitlement's SKU is not in the item catalog (or is not a valid SKU); it is left unfulfilled.
    #[error("entitlement {entitlement_id} has SKU {sku:?}, which the item catalog does not know")]
    UnknownSku {
        /// The entitlement.
        entitlement_id: String,
        /// Its SKU.
        sku: String,
    },
    /// No entity has the `RewardsRecipient` component (or more than one has); the entitlement is left
    /// unfulfilled and pulled again once a recipient exists.
    #[error("no single RewardsRecipient entity to grant entitlement {entitlement_id} to")]
    NoRecipient {
        /// The entitlement.
        entitlement_id: String,
    },
    /// The item catalog asset failed to load.
    #[error("the item catalog failed to load: {0}")]
    Catalog(String),
    /// Achievement progress that does not fit the achievement catalog (unknown id, a counter change for a
    /// flag); it is dropped.
    #[error("achievement progress ignored: {0}")]
    Achievement(String),
    /// Another instance of the game is running on the same data directory and holds it: this one grants,
    /// reports, refreshes and saves nothing (it would overwrite what the other wrote). Close the other
    /// instance and start again.
    #[error("another instance of the game is using {data_dir}; this one changes nothing there")]
    AnotherInstanceRunning {
        /// The data directory in use.
        data_dir: String,
    },
    /// The ledger could not be read or written (e.g. a full disk). Grants wait, unreported, and the
    /// write is retried.
    #[error("the rewards ledger could not be saved or loaded: {0}")]
    Storage(String),
    /// The studio backend refused a spend for good (an item it does not know, a malformed spend); nothing was
    /// spent.
    #[error("the studio backend refused the spend: {0}")]
    Spend(ApiError),
    /// Loading the inventory history failed; asking again retries.
    #[error("loading the inventory history failed: {0}")]
    History(ApiError),
    /// The request needs a signed-in player, and none is.
    #[error("no player is signed in")]
    NotSignedIn,
}

impl ApiError {
    /// Whether the request surely did not take effect and would be refused again as it is (a `4xx` other than
    /// a refused token, `408` or `429`): not worth retrying. Anything else — no answer, a `5xx`, an answer that
    /// cannot be read — leaves the outcome unknown.
    pub fn is_final_refusal(&self) -> bool {
        match self {
            ApiError::Refused { .. } | ApiError::MissingPermissions => true,
            ApiError::Status { status, .. } => (400..500).contains(status) && !matches!(status, 408 | 429),
            _ => false,
        }
    }
}
