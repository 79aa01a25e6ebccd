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
        redirect_uris: vec!["http://127.0.0.1/accounts/callback".into(), "http://127.0.0.1/link/callback".into()],
        name: "Studio accounts".into(),
    };
    fixture.admin.register_client(&client).unwrap();
}

/// The test backends' settings: the sandbox's LWA, Prime Gaming and the backend's own security profile, a
/// fresh token key, an operator listener; `database_url` as given.
pub fn backend_config(sandbox_url: &str, database_url: &str) -> BackendConfig {
    let mut config = BackendConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        database_url.to_owned(),
        KeyStore::parse("AMAZONSECRET AMAZONKEY").unwrap(),
    );
    config.game_client_ids = vec![super::CLIENT_ID.to_owned()];
    config.sandbox = true;
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
    config
}

/// DevPay through the sandbox's license service and sign-up pages, no products configured.
pub fn sandbox_devpay(sandbox_url: &str) -> amazon_rewards_backend::devpay::DevPayConfig {
    amazon_rewards_backend::devpay::DevPayConfig {
        license_url: sandbox_url.to_owned(),
        products: Default::default(),
        verify_every: std::time::Duration::from_secs(60),
        signup_url: Some(format!("{sandbox_url}/devpay/signup")),
        public_url: String::new(),
    }
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
        let mut config = backend_config(sandbox_url, &format!("sqlite://{}", dir.path().join("studio.db").display()));
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

/// A studio session, as a linked game holds it.
#[derive(Debug, Clone)]
pub struct StudioSession {
    pub access_token: String,
    pub refresh_token: String,
}

/// The PKCE verifier the HTTP-played links use, and its S256 challenge.
fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = "v".repeat(64);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Studio {
    /// Links `email`'s Amazon account through `backend_url` in the browser, the test playing the browser over
    /// plain HTTP (sign-in and consent at the sandbox's LWA, the backend's callback, the game's loopback code),
    /// then redeems the code as the game does. The session the game would hold.
    pub fn link_in_browser_at(&self, fixture: &Fixture, backend_url: &str, email: &str) -> StudioSession {
        register_backend_client(fixture);
        let (verifier, challenge) = pkce();
        let redirect = "http://127.0.0.1:1/amazon-rewards/callback";
        let mut authorize = url::Url::parse(&format!("{backend_url}/link/authorize")).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", super::CLIENT_ID)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "game-state")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let location = |url: String| {
            self.runtime.block_on(async {
                let answer = no_redirects.get(url).send().await.unwrap();
                assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
                answer.headers()["location"].to_str().unwrap().to_owned()
            })
        };
        let at_lwa = location(authorize.to_string());
        let to_backend = fixture.consent_over_http(&at_lwa, email, "pw");
        let to_game = url::Url::parse(&location(to_backend)).unwrap();
        let pairs: std::collections::HashMap<_, _> = to_game.query_pairs().into_owned().collect();
        assert_eq!(pairs.get("state").map(String::as_str), Some("game-state"), "{to_game}");
        let code = pairs.get("code").unwrap_or_else(|| panic!("no code: {to_game}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", redirect),
            ("client_id", super::CLIENT_ID),
        ];
        let (status, tokens) = self.token_request_at(backend_url, &form);
        assert_eq!(status, 200, "{tokens}");
        StudioSession {
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// [`Studio::link_in_browser_at`] this backend.
    pub fn link_in_browser(&self, fixture: &Fixture, email: &str) -> StudioSession {
        self.link_in_browser_at(fixture, &self.backend.url(), email)
    }

    /// The studio access token of `email`, linked in the browser: what a linked game sends.
    pub fn session(&self, fixture: &Fixture, email: &str) -> String {
        self.link_in_browser(fixture, email).access_token
    }

    /// A form posted to `backend_url`'s token endpoint: status and JSON answer.
    pub fn token_request_at(&self, backend_url: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{backend_url}/link/auth/o2/token");
        self.runtime.block_on(async {
            let answer = self.http.post(url).form(form).send().await.unwrap();
            (answer.status().as_u16(), answer.json().await.unwrap_or_default())
        })
    }

    /// A refresh at this backend: status and answer.
    pub fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", super::CLIENT_ID)];
        self.token_request_at(&self.backend.url(), &form)
    }

    /// A game-facing call with `token`: status and JSON answer.
    pub fn game_call(&self, method: &str, path: &str, token: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.backend.url());
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&json!({})),
        };
        self.runtime.block_on(async {
            let answer = request.bearer_auth(token).send().await.unwrap();
            (answer.status().as_u16(), answer.json().await.unwrap_or_default())
        })
    }

    /// Runs a query returning one text column for `key`.
    pub fn texts(&self, sql: &'static str, key: &str) -> Vec<String> {
        self.runtime.block_on(async {
            sqlx::query_scalar::<_, String>(sql).bind(key).fetch_all(&self.backend.pool).await.unwrap()
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
