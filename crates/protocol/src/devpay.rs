//! DevPay-style subscriptions (DevPay is retired): between the game and the studio backend, the activation
//! call and the subscription status the game shows (studio-defined); between the backend and Amazon, the
//! license service's actions ([`license`]).

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

/// Longest activation key accepted from a sign-up return or a player's typing.
pub const MAX_ACTIVATION_KEY_LEN: usize = 128;

/// Why a sign-up return (`?ActivationKey=…&ProductCode=…&state=…`) was not the one the game waits for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignUpReturnError {
    /// Not the sign-up this game started (forged or stale `state`).
    #[error("this was not the sign-up the game started")]
    NotOurs,
    /// For another product.
    #[error("the sign-up was not for {0}")]
    OtherProduct(String),
    /// No key, or not one of 1..=128 letters, digits and dashes.
    #[error("the sign-up sent back no usable activation key")]
    NoKey,
}

/// Whether `key` looks like an activation key: 1..=[`MAX_ACTIVATION_KEY_LEN`] ASCII letters, digits or `-`.
pub fn is_valid_activation_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_ACTIVATION_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Reads a sign-up return's query: the activation key, when the return carries this sign-up's `state` and
/// `product_code` and a well-formed key. The return's shape is DevPay's (`ActivationKey`, `ProductCode`) plus
/// the sandbox-defined `state`.
pub fn read_signup_return(
    query: &[(String, String)],
    state: &str,
    product_code: &str,
) -> Result<String, SignUpReturnError> {
    let value = |name: &str| crate::http::parameter(query, name);
    if value("state") != Some(state) {
        return Err(SignUpReturnError::NotOurs);
    }
    if value("ProductCode") != Some(product_code) {
        return Err(SignUpReturnError::OtherProduct(product_code.to_owned()));
    }
    match value("ActivationKey") {
        Some(key) if is_valid_activation_key(key) => Ok(key.to_owned()),
        _ => Err(SignUpReturnError::NoKey),
    }
}

/// Body of a sign-up link request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct SignUpRequest {
    /// The product to subscribe to.
    pub product_code: String,
}

/// A sign-up link bound to the player who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct SignUpLink {
    /// Where the player signs up, on any device.
    pub sign_up_url: String,
    /// Seconds the link stays good.
    pub expires_in: u64,
}

/// Body of an activation call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct ActivateRequest {
    /// The key from the sign-up confirmation.
    pub activation_key: String,
    /// The product it is for.
    pub product_code: String,
}

/// How a subscription stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl SubscriptionStatus {
    /// A payment failed and the subscription is suspended: the player should fix the payment (on the billing
    /// page); the next successful charge makes it active again.
    pub fn payment_problem(&self) -> bool {
        self.status == "suspended"
    }
}

/// The DevPay license service, the vendor's side of each call. DevPay is retired; its actions and parameter
/// names are kept (`ActivateHostedProduct`, `ActivateDesktopProduct`, `VerifyProductSubscriptionByPid`,
/// `VerifyProductSubscriptionByTokens`, `GetActiveSubscriptionsByPid`, `RefreshUserToken`), while the
/// transport is sandbox-defined: a JSON `POST` to `{license_url}/devpay/license/{Action}` instead of the
/// real service's query-string `GET` with XML answers. Errors are `{"Error":{"Code","Message"}}` with HTTP 400.
pub mod license {
    use serde::{Deserialize, Serialize};

    /// Activates a key for a hosted product: answers a persistent identifier and a user token.
    pub const ACTIVATE_HOSTED_PRODUCT: &str = "ActivateHostedProduct";
    /// Activates a key for a desktop product: answers a user token and the customer's key pair.
    pub const ACTIVATE_DESKTOP_PRODUCT: &str = "ActivateDesktopProduct";
    /// Whether a subscription, named by its persistent identifier and product code, is in force.
    pub const VERIFY_BY_PID: &str = "VerifyProductSubscriptionByPid";
    /// Whether a subscription, named by its user token and the product token, is in force.
    pub const VERIFY_BY_TOKENS: &str = "VerifyProductSubscriptionByTokens";
    /// The product codes a persistent identifier is subscribed to now.
    pub const GET_ACTIVE_SUBSCRIPTIONS_BY_PID: &str = "GetActiveSubscriptionsByPid";
    /// A new user token for an old one (the old one stops working).
    pub const REFRESH_USER_TOKEN: &str = "RefreshUserToken";

    /// The path of `action` on the license service.
    pub fn path(action: &str) -> String {
        format!("/devpay/license/{action}")
    }

    /// `ActivateHostedProduct` and `ActivateDesktopProduct`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct ActivateProduct {
        /// The key from the sign-up confirmation.
        pub activation_key: String,
        /// The vendor's secret product token.
        pub product_token: String,
        /// Sandbox-defined: the customer the vendor expects the key to belong to (its signed-in player); a
        /// key of another customer is refused and stays unused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub customer_id: Option<String>,
    }

    /// Answer of `ActivateHostedProduct`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct HostedActivation {
        /// Identifies the customer's subscription to the product from now on.
        pub persistent_identifier: String,
        /// The customer's user token.
        pub user_token: String,
        /// Whose subscription it is (sandbox-defined).
        pub customer_id: String,
    }

    /// Answer of `ActivateDesktopProduct`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct DesktopActivation {
        /// The customer's user token.
        pub user_token: String,
        /// Whose subscription it is (sandbox-defined).
        pub customer_id: String,
        /// The customer's access key id.
        #[serde(rename = "AWSAccessKeyId")]
        pub aws_access_key_id: String,
        /// The customer's secret key.
        pub secret_access_key: String,
    }

    /// `VerifyProductSubscriptionByPid`: the persistent identifier and the product code.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct VerifyByPid {
        /// From `ActivateHostedProduct`.
        pub persistent_identifier: String,
        /// The product.
        pub product_code: String,
    }

    /// `VerifyProductSubscriptionByTokens`: the user token and the product token.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct VerifyByTokens {
        /// From an activation.
        pub user_token: String,
        /// The vendor's product token.
        pub product_token: String,
    }

    /// `GetActiveSubscriptionsByPid`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct ActiveSubscriptionsQuery {
        /// From `ActivateHostedProduct`.
        pub persistent_identifier: String,
    }

    /// Answer of `GetActiveSubscriptionsByPid`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct ActiveSubscriptions {
        /// Product codes in force now.
        #[serde(default)]
        pub product_codes: Vec<String>,
    }

    /// `RefreshUserToken`, and its answer.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct UserToken {
        /// The user token.
        pub user_token: String,
    }

    /// A subscription's standing, answering both verify actions (fields beyond `Subscribed` are
    /// sandbox-defined: they carry what the seed's billing page shows).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct SubscriptionStanding {
        /// The customer the subscription belongs to (lets the vendor check whose it is).
        pub customer_id: String,
        /// Whether the customer may use the product now.
        pub subscribed: bool,
        /// `active`, `cancelled` or `suspended`.
        pub status: String,
        /// The last billing month paid for.
        pub paid_through_period: i64,
        /// The billing month in force.
        pub current_period: i64,
        /// Monthly fee in force now, in cents.
        pub monthly_fee_cents: i64,
        /// Monthly fee from next month, in cents (differs after a price change).
        pub next_monthly_fee_cents: i64,
        /// Cancelled, ending at the end of the paid month.
        pub cancel_at_period_end: bool,
        /// The day the paid time runs out (ISO 8601) unless the next month is paid.
        pub paid_until: String,
    }

    /// An error answer: `{"Error":{"Code":"InvalidActivationKey","Message":"…"}}`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct LicenseError {
        /// What went wrong.
        pub error: LicenseErrorDetail,
    }

    /// The code and message of a [`LicenseError`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "PascalCase")]
    pub struct LicenseErrorDetail {
        /// e.g. `InvalidActivationKey`, `ActivationKeyAlreadyUsed`, `InvalidProductCode`.
        pub code: String,
        /// Human-readable detail.
        pub message: String,
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn verify_by_pid_names_the_product_code() {
            let call = VerifyByPid { persistent_identifier: "PID-1".into(), product_code: "SEASONPASS".into() };
            assert_eq!(
                serde_json::to_string(&call).unwrap(),
                r#"{"PersistentIdentifier":"PID-1","ProductCode":"SEASONPASS"}"#
            );
            assert_eq!(path(VERIFY_BY_PID), "/devpay/license/VerifyProductSubscriptionByPid");
        }
    }
}
