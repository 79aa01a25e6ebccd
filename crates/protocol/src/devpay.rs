//! DevPay-style subscriptions between the game and the studio backend (sandbox-defined; DevPay is retired):
//! the activation call and the subscription status the game shows.

use serde::{Deserialize, Serialize};

/// `POST` path where the game hands the backend an activation key.
pub const ACTIVATE_PATH: &str = "/api/devpay/activate";
/// `GET` path of the player's subscriptions, verified on demand.
pub const SUBSCRIPTIONS_PATH: &str = "/api/devpay/subscriptions";
/// `POST` path where the game asks for a sign-up link that returns to the backend (for signing up on another
/// device, where no loopback listener can be reached).
pub const SIGNUP_PATH: &str = "/api/devpay/signup";
/// Path of the backend's page the sign-up returns to with `?ActivationKey=…&ProductCode=…&state=…`.
pub const RETURN_PATH: &str = "/devpay/return";

/// Body of a sign-up link request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignUpRequest {
    /// The product to subscribe to.
    pub product_code: String,
}

/// A sign-up link bound to the player who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignUpLink {
    /// Where the player signs up, on any device.
    pub sign_up_url: String,
    /// Seconds the link stays good.
    pub expires_in: u64,
}

/// Body of an activation call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivateRequest {
    /// The key from the sign-up confirmation.
    pub activation_key: String,
    /// The product it is for.
    pub product_code: String,
}

/// How a subscription stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionStatus {
    /// Product code.
    pub product_code: String,
    /// Usable now.
    pub active: bool,
    /// `active`, `cancelled` or `suspended`.
    pub status: String,
    /// Paid through this billing month.
    pub paid_through_period: i64,
    /// The billing month now.
    pub current_period: i64,
    /// Monthly fee now, in cents.
    pub monthly_fee_cents: i64,
    /// Monthly fee from next month, in cents (differs after a price change).
    pub next_monthly_fee_cents: i64,
    /// Cancelled: ends at the end of the paid month.
    pub cancel_at_period_end: bool,
    /// The day the paid time runs out unless the next month is paid (ISO 8601 date), when the license service
    /// says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_until: Option<String>,
}
