//! The studio backend, running for a test: started in-process on its own runtime, pointed at the sandbox's
//! Login with Amazon, with helpers that play Amazon's part (signed Instant Access calls).

use amazon_rewards_backend::{BackendConfig, RunningBackend, serve};
use amazon_rewards_protocol::dta1::{AmzDate, Credential, KeyStore, sign};
use amazon_rewards_protocol::instant_access::FULFILLMENT_PATH;
use serde_json::{Value, json};

use super::Fixture;

/// The backend's own LWA client (confidential), registered by [`register_backend_client`].
pub const BACKEND_CLIENT: &str = "amzn1.application-oa2-client.studio-backend";
/// Its secret.
pub const BACKEND_SECRET: &str = "studio-backend-secret";

/// The operator token of the test backends.
pub const OPERATOR_TOKEN: &str = "studio-test-operator-token-000";

/// Registers the backend's confidential LWA client with the sandbox (loopback redirect: any port matches).
pub fn register_backend_client(fixture: &Fixture) {
    let client = amazon_rewards_protocol::sandbox_admin::RegisterClient {
        client_id: BACKEND_CLIENT.into(),
        client_secret: Some(BACKEND_SECRET.into()),
        redirect_uris: vec!["http://127.0.0.1/accounts/callback".into()],
        name: "Studio accounts".into(),
    };
    fixture.admin.register_client(&client).unwrap();
}

/// A backend on its own runtime, with an HTTP client playing Amazon.
pub struct Studio {
    pub runtime: tokio::runtime::Runtime,
    pub backend: RunningBackend,
    http: reqwest::Client,
    config: BackendConfig,
    _dir: tempfile::TempDir,
}

impl Studio {
    pub fn start(sandbox_url: &str) -> Self {
        Self::start_with(sandbox_url, |_| {})
    }

    /// Like [`Studio::start`], with a last word on the configuration.
    pub fn start_with(sandbox_url: &str, tweak: impl FnOnce(&mut BackendConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = BackendConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            format!("sqlite://{}", dir.path().join("studio.db").display()),
            KeyStore::parse("AMAZONSECRET AMAZONKEY").unwrap(),
        );
        config.lwa_tokeninfo_url = Some(format!("{sandbox_url}/auth/o2/tokeninfo"));
        config.game_client_ids = vec![super::CLIENT_ID.to_owned()];
        config.token_key = Some(amazon_rewards_backend::sealed::TokenKey::generate());
        config.prime_gaming_url = Some(sandbox_url.to_owned());
        // The backend's own security profile, for its new-account page (a confidential client).
        config.lwa_client = Some(amazon_rewards_backend::signup::LwaClient {
            authorize_url: format!("{sandbox_url}/ap/oa"),
            api_url: sandbox_url.to_owned(),
            client_id: BACKEND_CLIENT.into(),
            client_secret: BACKEND_SECRET.into(),
            public_url: String::new(),
            return_origins: vec![sandbox_url.to_owned()],
        });
        config.operator = Some(amazon_rewards_backend::operator::OperatorConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Some(OPERATOR_TOKEN.into()),
        });
        tweak(&mut config);
        let backend = runtime.block_on(serve(config.clone())).unwrap();
        Self { runtime, backend, http: reqwest::Client::new(), config, _dir: dir }
    }

    /// Another backend process's worth of server on the same database and settings (own caches, own port).
    pub fn sibling(&self) -> RunningBackend {
        let mut config = self.config.clone();
        config.operator = None;
        self.runtime.block_on(serve(config)).unwrap()
    }

    pub fn link_account(&self, username: &str, amazon_user_id: &str) -> String {
        let url = format!("{}/admin/accounts", self.backend.operator_url().unwrap());
        let body = json!({"username": username, "amazon_user_id": amazon_user_id});
        let account: Value = self.runtime.block_on(async {
            let request = self.http.post(url).bearer_auth(OPERATOR_TOKEN).json(&body);
            request.send().await.unwrap().json().await.unwrap()
        });
        account["user_id"].as_str().unwrap().to_owned()
    }

    /// A call as Amazon makes it: signed with DTA1.
    pub fn amazon_calls(&self, body: Value) {
        let body = body.to_string();
        let signed = sign(
            "POST",
            FULFILLMENT_PATH,
            "application/json",
            body.as_bytes(),
            &Credential::new("AMAZONKEY", "AMAZONSECRET"),
            AmzDate::now(),
        );
        let url = format!("{}{FULFILLMENT_PATH}", self.backend.url());
        let answer: Value = self.runtime.block_on(async {
            self.http
                .post(url)
                .header("content-type", "application/json")
                .header("x-amz-date", signed.x_amz_date)
                .header("authorization", signed.authorization)
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        assert_eq!(answer["response"], "OK", "{answer}");
    }

    pub fn column(&self, sql: &'static str, key: &str) -> Option<i64> {
        self.runtime.block_on(async {
            sqlx::query_scalar::<_, Option<i64>>(sql).bind(key).fetch_one(&self.backend.pool).await.unwrap()
        })
    }
}

impl Studio {
    /// Tells the sandbox (as Amazon) where the game's Instant Access endpoints are, and what it sells.
    pub fn register_with(&self, fixture: &Fixture, backend_url: &str) {
        let vendor = amazon_rewards_protocol::sandbox_admin::InstantAccessVendor {
            linking_url: format!("{backend_url}/instant-access/linking"),
            fulfillment_url: format!("{backend_url}/instant-access/fulfillment"),
            key_id: "AMAZONKEY".into(),
            secret: "AMAZONSECRET".into(),
            new_account_url: Some(format!("{backend_url}/accounts/new")),
        };
        let product = amazon_rewards_protocol::sandbox_admin::InstantAccessProduct {
            product_id: "ia-gem-crate".into(),
            title: "Crate of 100 gems".into(),
            price_cents: 499,
            subscription: false,
        };
        fixture.admin.set_instant_access_vendor(&vendor).unwrap();
        fixture.admin.add_instant_access_product(&product).unwrap();
        let pass = amazon_rewards_protocol::sandbox_admin::InstantAccessProduct {
            product_id: "season-pass".into(),
            title: "Season pass".into(),
            price_cents: 999,
            subscription: true,
        };
        fixture.admin.add_instant_access_product(&pass).unwrap();
    }
}
