//! The sandbox's admin JSON API (sandbox-defined): how tests, examples and the demo seed the emulated
//! Amazon side with offers, test customers and claimed entitlements, and inspect fulfilment.
//!
//! Every route lives under [`ADMIN_PREFIX`]. None of this exists on real Amazon.

use serde::{Deserialize, Serialize};

/// Prefix of every admin route.
pub const ADMIN_PREFIX: &str = "/admin";

/// `POST /admin/offers`: register a Prime Gaming offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOffer {
    /// The offer's SKU (`VendorProductId`).
    pub sku: String,
    /// What the player sees on the claim page.
    pub title: String,
}

/// An offer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The offer's SKU.
    pub sku: String,
    /// Its title.
    pub title: String,
}

/// `POST /admin/customers`: create a test customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCustomer {
    /// Sign-in email, unique.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Sign-in password (sandbox only; stored hashed).
    pub password: String,
}

/// A test customer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Amazon-style user id, `amzn1.account.…`.
    pub user_id: String,
    /// Sign-in email.
    pub email: String,
    /// Display name.
    pub name: String,
}

/// `POST /admin/customers/{user_id}/entitlements`: the customer claims an offer, as on Prime Gaming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantEntitlement {
    /// SKU of a registered offer.
    pub sku: String,
    /// How many separate entitlements to create (default 1); each gets its own id.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Answer to [`GrantEntitlement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedEntitlements {
    /// The ids of the entitlements created, in order.
    pub entitlement_ids: Vec<String>,
}

/// `POST /admin/customers/{user_id}/tokens`: mint an access token for a customer without the browser login.
/// A test helper; the plugin's normal path obtains tokens through Login with Amazon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintToken {
    /// Lifetime in seconds (default 3600). Zero or negative mints an already expired token.
    #[serde(default = "hour")]
    pub expires_in: i64,
}

fn hour() -> i64 {
    3600
}

/// Answer to [`MintToken`]: an LWA-shaped token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedToken {
    /// `Atza|…` access token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
}

/// One entitlement's fulfilment state, from `GET /admin/customers/{user_id}/entitlements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementStatus {
    /// Entitlement id.
    pub entitlement_id: String,
    /// SKU of the offer.
    pub sku: String,
    /// Whether the game has reported it fulfilled.
    pub fulfilled: bool,
    /// How many Fulfill calls named this entitlement (re-reports after a crash are expected and harmless).
    pub report_count: u32,
}

/// What a fault injected on the public API does (sandbox-defined, for testing clients against bad servers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status and body; with `retry_after` adds a `Retry-After` header (seconds).
    Status {
        /// HTTP status code.
        status: u16,
        /// `Retry-After` seconds.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer 200 with a body that is not valid JSON.
    MalformedJson,
    /// Answer 200 with a JSON body cut in the middle.
    TruncatedJson,
    /// Answer 200 with a valid body but `Content-Type: text/html`.
    WrongContentType,
    /// Answer 200 with a JSON body of this many bytes.
    Oversized {
        /// Body size in bytes.
        bytes: usize,
    },
    /// Answer with this status and this JSON body (e.g. an OAuth error such as `slow_down`).
    Json {
        /// HTTP status code.
        status: u16,
        /// The body, sent as `application/json`.
        body: serde_json::Value,
    },
    /// Wait this long before answering normally (a slow or hung server).
    Delay {
        /// Delay in milliseconds.
        millis: u64,
    },
}

/// `POST /admin/faults`: make the next `times` requests to `path` misbehave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectFault {
    /// Public API path the fault applies to, e.g. `/api/entitlements`.
    pub path: String,
    /// How many requests it applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// What it does.
    pub fault: FaultKind,
}

/// `POST /admin/clients`: register a Login with Amazon client (a game's security profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterClient {
    /// `amzn1.application-oa2-client.…`.
    pub client_id: String,
    /// Confidential clients (a studio backend) have one; public clients (a game) do not.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Allowed redirect URIs. For loopback IP URIs (`http://127.0.0.1/…`, `http://[::1]/…`) any port matches
    /// (RFC 8252 §7.3); scheme, host, path and query must match exactly.
    pub redirect_uris: Vec<String>,
    /// Name shown on the consent page.
    #[serde(default)]
    pub name: String,
}

/// `POST /admin/instant-access/vendor`: where the sandbox (as Amazon) sends Instant Access calls for the game,
/// and the key it signs them with (the vendor's key store holds the same pair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantAccessVendor {
    /// The vendor's account-linking endpoint, e.g. `http://127.0.0.1:8788/instant-access/linking`.
    pub linking_url: String,
    /// The vendor's fulfilment endpoint.
    pub fulfillment_url: String,
    /// Public key id.
    pub key_id: String,
    /// Secret key.
    pub secret: String,
    /// The vendor's new-account page, offered when account linking finds no account (`return_url` is appended).
    #[serde(default)]
    pub new_account_url: Option<String>,
}

/// `POST /admin/instant-access/products`: a product sold on the "buy on Amazon" page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantAccessProduct {
    /// The vendor's SKU.
    pub product_id: String,
    /// What the customer sees.
    pub title: String,
    /// Price in cents (display only).
    pub price_cents: i64,
    /// A subscription (activate / deactivate) rather than a one-off purchase.
    #[serde(default)]
    pub subscription: bool,
}

/// `POST /admin/devpay/products`: a paid product sold the DevPay way (sandbox-defined emulation of a retired
/// service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevPayProduct {
    /// Product code, shown to the customer and sent to the vendor with the activation key.
    pub product_code: String,
    /// Secret the vendor's license calls carry.
    pub product_token: String,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// One-time sign-up fee in cents.
    pub signup_fee_cents: i64,
    /// Monthly fee in cents.
    pub monthly_fee_cents: i64,
    /// Where the confirmation page sends the customer, with `?ActivationKey=…&ProductCode=…`.
    pub redirect_url: String,
    /// Further return addresses a sign-up link may ask for with `redirect_uri` (say, the studio backend's
    /// `/devpay/return` next to a desktop game's loopback address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_redirect_urls: Vec<String>,
}

/// `POST /admin/devpay/products/{code}/price`: a new monthly fee from the next billing period on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevPayPriceChange {
    /// The new monthly fee in cents.
    pub monthly_fee_cents: i64,
}

/// One entry of `GET /admin/devpay/customers/{user_id}/bills`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevPayBill {
    /// The product billed.
    pub product_code: String,
    /// The billing month.
    pub period: i64,
    /// `signup` or `monthly`.
    pub kind: String,
    /// Amount in cents.
    pub amount_cents: i64,
    /// Whether the payment went through.
    pub paid: bool,
}

/// Answer of `POST /admin/devpay/clock/advance`: the billing period now in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevPayClock {
    /// Months since the sandbox started billing.
    pub period: i64,
}

/// `GET /admin/mailbox?customer_id=…` (newest first) and `GET /admin/mailbox/{seq}`: an e-mail Amazon Payments
/// sent a DevPay customer (sandbox-defined; the sandbox's mail catcher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// Order of sending.
    pub seq: i64,
    /// The customer's e-mail address.
    pub recipient: String,
    /// `signup`, `bill`, `price_change`, `cancellation` or `payment_problem`.
    pub kind: String,
    /// The subject line.
    pub subject: String,
    /// When it was sent (Unix seconds).
    pub sent_at: i64,
    /// The plain-text body.
    pub text_body: String,
    /// The HTML body (every value in it escaped).
    pub html_body: String,
}
