//! One typed client for the sandbox's admin API, for tests, examples and the demo: every `/admin` call is a
//! method here (shapes in `amazon_rewards_protocol::sandbox_admin`). [`Client`] is async; [`BlockingClient`]
//! runs the same calls on a runtime of its own, for synchronous tests (never call it from inside a Tokio
//! runtime).
//!
//! ```no_run
//! use amazon_rewards_sandbox::admin::BlockingClient;
//! # fn seed(sandbox_url: &str) -> Result<(), amazon_rewards_sandbox::admin::AdminError> {
//! let admin = BlockingClient::new(sandbox_url);
//! admin.create_offer("prime-gold-pack", "500 gold coins")?;
//! let player = admin.create_customer("player@example.com", "Player", "pw")?;
//! admin.grant(&player.user_id, "prime-gold-pack", 1)?;
//! # Ok(()) }
//! ```

use amazon_rewards_protocol::moments::CampaignState;
use amazon_rewards_protocol::moments::admin::{ApiKey, Campaign, NewCampaign, RedemptionReport, Transition};
use amazon_rewards_protocol::sandbox_admin::{
    ADMIN_PREFIX, CreateCustomer, CreateOffer, Customer, DevPayBill, DevPayClock, DevPayPriceChange, DevPayProduct,
    EntitlementStatus, GrantEntitlement, GrantedEntitlements, InjectFault, InstantAccessProduct, InstantAccessVendor,
    Mail, MintToken, MintedToken, Offer, RegisterClient,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The sandbox could not be reached, or its answer not read.
    #[error("admin call {path}: {error}")]
    Http {
        /// The admin path.
        path: String,
        /// What failed.
        error: reqwest::Error,
    },
    /// The sandbox refused the call.
    #[error("admin call {path}: HTTP {status}: {body}")]
    Refused {
        /// The admin path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The sandbox's answer.
        body: String,
    },
    /// The answer was not the JSON expected.
    #[error("admin call {path}: unexpected answer: {error}")]
    Malformed {
        /// The admin path.
        path: String,
        /// Why it could not be read.
        error: serde_json::Error,
    },
}

/// The sandbox's admin API at one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for the sandbox at `sandbox_url` (e.g. `http://127.0.0.1:8787`).
    pub fn new(sandbox_url: &str) -> Self {
        Self { http: reqwest::Client::new(), base: format!("{}{ADMIN_PREFIX}", sandbox_url.trim_end_matches('/')) }
    }

    async fn send<R: DeserializeOwned>(&self, path: &str, request: reqwest::RequestBuilder) -> Result<R, AdminError> {
        let http = |error| AdminError::Http { path: path.to_owned(), error };
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let body = response.text().await.map_err(http)?;
        if !status.is_success() {
            return Err(AdminError::Refused { path: path.to_owned(), status: status.as_u16(), body });
        }
        let body = if body.is_empty() { "null" } else { body.as_str() };
        serde_json::from_str(body).map_err(|error| AdminError::Malformed { path: path.to_owned(), error })
    }

    /// `POST`s `body` to the admin path `path` (e.g. `/offers`).
    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, AdminError> {
        self.send(path, self.http.post(format!("{}{path}", self.base)).json(body)).await
    }

    /// `GET`s the admin path `path`.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, AdminError> {
        self.send(path, self.http.get(format!("{}{path}", self.base))).await
    }

    /// `DELETE`s the admin path `path`.
    pub async fn delete(&self, path: &str) -> Result<(), AdminError> {
        self.send::<serde_json::Value>(path, self.http.delete(format!("{}{path}", self.base))).await.map(drop)
    }
}

/// Defines each typed call once, as an async method of [`Client`] and a blocking one of [`BlockingClient`].
macro_rules! admin_calls {
    ($this:ident; $($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty $body:block)*) => {
        impl Client {
            $($(#[$doc])* pub async fn $name(&self, $($arg: $ty),*) -> Result<$out, AdminError> {
                let $this = self;
                $body
            })*
        }
        impl BlockingClient {
            $($(#[$doc])* pub fn $name(&self, $($arg: $ty),*) -> Result<$out, AdminError> {
                self.runtime.block_on(self.client.$name($($arg),*))
            })*
        }
    };
}

admin_calls! {
    this;
    /// Registers a Prime Gaming offer.
    fn create_offer(sku: &str, title: &str) -> Offer {
        this.post("/offers", &CreateOffer { sku: sku.into(), title: title.into() }).await
    }
    /// Creates a test customer (an Amazon account that can sign in).
    fn create_customer(email: &str, name: &str, password: &str) -> Customer {
        let customer = CreateCustomer { email: email.into(), name: name.into(), password: password.into() };
        this.post("/customers", &customer).await
    }
    /// Gives the customer `count` claimed entitlements of `sku`; their ids.
    fn grant(user_id: &str, sku: &str, count: u32) -> Vec<String> {
        let path = format!("/customers/{user_id}/entitlements");
        let granted: GrantedEntitlements = this.post(&path, &GrantEntitlement { sku: sku.into(), count }).await?;
        Ok(granted.entitlement_ids)
    }
    /// Where each of the customer's entitlements stands (fulfilled or not).
    fn entitlement_statuses(user_id: &str) -> Vec<EntitlementStatus> {
        this.get(&format!("/customers/{user_id}/entitlements")).await
    }
    /// Mints an access token for the customer, valid `expires_in` seconds (negative: already expired).
    fn mint_token(user_id: &str, expires_in: i64) -> String {
        let path = format!("/customers/{user_id}/tokens");
        let minted: MintedToken = this.post(&path, &MintToken { expires_in }).await?;
        Ok(minted.access_token)
    }
    /// Queues a fault on a path.
    fn inject_fault(fault: &InjectFault) -> serde_json::Value {
        this.post("/faults", fault).await
    }
    /// Clears every queued fault.
    fn clear_faults() -> () {
        this.delete("/faults").await
    }
    /// Registers a Login with Amazon client (security profile).
    fn register_client(client: &RegisterClient) -> serde_json::Value {
        this.post("/clients", client).await
    }
    /// Where the sandbox's Instant Access calls the studio backend, and the key it signs with.
    fn set_instant_access_vendor(vendor: &InstantAccessVendor) -> serde_json::Value {
        this.post("/instant-access/vendor", vendor).await
    }
    /// Adds an Instant Access product to the sandbox's store.
    fn add_instant_access_product(product: &InstantAccessProduct) -> serde_json::Value {
        this.post("/instant-access/products", product).await
    }
    /// Adds a DevPay product.
    fn add_devpay_product(product: &DevPayProduct) -> serde_json::Value {
        this.post("/devpay/products", product).await
    }
    /// Announces a DevPay price change, in force from the next period.
    fn change_devpay_price(product_code: &str, change: &DevPayPriceChange) -> serde_json::Value {
        this.post(&format!("/devpay/products/{product_code}/price"), change).await
    }
    /// Moves the DevPay billing clock to the next month (bills everyone due).
    fn advance_devpay_clock() -> DevPayClock {
        this.post("/devpay/clock/advance", &serde_json::json!({})).await
    }
    /// The customer's card fails (`true`) or works again (`false`) at the next DevPay bill.
    fn set_payment_problem(user_id: &str, failing: bool) -> serde_json::Value {
        let path = format!("/devpay/customers/{user_id}/payment-problem");
        if failing { this.post(&path, &serde_json::json!({})).await } else { this.delete(&path).await.map(|()| serde_json::Value::Null) }
    }
    /// The customer's DevPay bills.
    fn devpay_bills(user_id: &str) -> Vec<DevPayBill> {
        this.get(&format!("/devpay/customers/{user_id}/bills")).await
    }
    /// A new Moments API key.
    fn create_moments_api_key() -> ApiKey {
        this.post("/moments/api-keys", &serde_json::json!({})).await
    }
    /// A new Moments campaign (in draft).
    fn create_campaign(campaign: &NewCampaign) -> Campaign {
        this.post("/moments/campaigns", campaign).await
    }
    /// Moves a campaign to `state` (the console's review steps).
    fn set_campaign_state(campaign_id: &str, state: CampaignState) -> serde_json::Value {
        this.post(&format!("/moments/campaigns/{campaign_id}/state"), &Transition { state }).await
    }
    /// A campaign as it stands.
    fn campaign(campaign_id: &str) -> Campaign {
        this.get(&format!("/moments/campaigns/{campaign_id}")).await
    }
    /// A campaign's redemption report.
    fn campaign_report(campaign_id: &str) -> RedemptionReport {
        this.get(&format!("/moments/campaigns/{campaign_id}/report")).await
    }
    /// The mails the sandbox sent one customer.
    fn mailbox_of(customer_id: &str) -> Vec<Mail> {
        this.get(&format!("/mailbox?customer_id={customer_id}")).await
    }
    /// Every mail the sandbox sent, oldest first.
    fn mailbox() -> Vec<Mail> {
        this.get("/mailbox").await
    }
}

/// [`Client`]'s calls, blocking, on a runtime of its own.
#[derive(Debug)]
pub struct BlockingClient {
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl BlockingClient {
    /// A blocking client for the sandbox at `sandbox_url`.
    pub fn new(sandbox_url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
        Self { client: Client::new(sandbox_url), runtime }
    }

    /// `POST`s `body` to the admin path `path`.
    pub fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, AdminError> {
        self.runtime.block_on(self.client.post(path, body))
    }

    /// `GET`s the admin path `path`.
    pub fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, AdminError> {
        self.runtime.block_on(self.client.get(path))
    }

    /// `DELETE`s the admin path `path`.
    pub fn delete(&self, path: &str) -> Result<(), AdminError> {
        self.runtime.block_on(self.client.delete(path))
    }
}
