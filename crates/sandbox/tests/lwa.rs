//! Login with Amazon on the sandbox, driven over real HTTP the way a browser and a game would.

use amazon_rewards_protocol::lwa::{DeviceCodeResponse, OAuthErrorBody, Profile, TokenResponse};
use amazon_rewards_protocol::sandbox_admin::RegisterClient;
use amazon_rewards_sandbox::admin::Client;
use amazon_rewards_sandbox::lwa::LwaSettings;
use amazon_rewards_sandbox::{RunningSandbox, SandboxConfig, serve};
use base64::Engine;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

const CLIENT: &str = "amzn1.application-oa2-client.game";
const REDIRECT: &str = "http://127.0.0.1/amazon-rewards/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";

struct Lwa {
    sandbox: RunningSandbox,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Lwa {
    async fn start(settings: LwaSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SandboxConfig::new(0, dir.path().join("lwa.db"));
        config.lwa = settings;
        let sandbox = serve(config).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let lwa = Self { sandbox, http, _dir: dir };
        let client = RegisterClient {
            client_id: CLIENT.into(),
            client_secret: None,
            redirect_uris: vec![REDIRECT.into()],
            name: "Demo Game".into(),
        };
        let admin = Client::new(&lwa.sandbox.url());
        admin.register_client(&client).await.unwrap();
        admin.create_customer("p@example.com", "Pat", "secret").await.unwrap();
        lwa
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    fn authorize_params(&self, redirect: &str) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", CLIENT.into()),
            ("scope", "games::prime profile".into()),
            ("response_type", "code".into()),
            ("redirect_uri", redirect.into()),
            ("state", "state-123".into()),
            ("code_challenge", challenge(VERIFIER)),
            ("code_challenge_method", "S256".into()),
        ]
    }

    /// Signs in and answers the consent page; returns the redirect Location.
    async fn consent(&self, redirect: &str, decision: &str) -> String {
        let params = self.authorize_params(redirect);
        let page = self.http.get(self.url("/ap/oa")).query(&params).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("Demo Game"));
        let mut form = params.clone();
        form.push(("email", "p@example.com".into()));
        form.push(("password", "secret".into()));
        let consent = self.http.post(self.url("/ap/signin")).form(&form).send().await.unwrap();
        assert_eq!(consent.status(), StatusCode::OK);
        let html = consent.text().await.unwrap();
        assert!(html.contains("Your Prime Gaming rewards"));
        let ticket = html.split(r#"name="ticket" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
        let mut form = params;
        form.push(("ticket", ticket));
        form.push(("decision", decision.into()));
        let answer = self.http.post(self.url("/ap/consent")).form(&form).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::FOUND);
        answer.headers()["location"].to_str().unwrap().to_owned()
    }

    async fn code(&self, redirect: &str) -> String {
        let location = url::Url::parse(&self.consent(redirect, "allow").await).unwrap();
        let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], "state-123");
        pairs["code"].clone()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
        let response = self.http.post(self.url("/auth/o2/token")).form(form).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
        (response.status(), response.json().await.unwrap())
    }

    async fn exchange(
        &self,
        code: &str,
        redirect: &str,
        verifier: &str,
        client: &str,
    ) -> (StatusCode, serde_json::Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", client),
        ])
        .await
    }

    async fn profile(&self, access_token: &str) -> StatusCode {
        self.http.get(self.url("/user/profile")).bearer_auth(access_token).send().await.unwrap().status()
    }
}

fn error_of(body: &serde_json::Value) -> String {
    serde_json::from_value::<OAuthErrorBody>(body.clone()).unwrap().error
}

#[tokio::test]
async fn authorization_code_with_pkce_then_profile_then_refresh_rotation() {
    let lwa = Lwa::start(LwaSettings::default()).await;
    // Any port matches a registered loopback redirect URI (RFC 8252 §7.3).
    let redirect = "http://127.0.0.1:53682/amazon-rewards/callback";
    let code = lwa.code(redirect).await;
    let (status, body) = lwa.exchange(&code, redirect, VERIFIER, CLIENT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens: TokenResponse = serde_json::from_value(body).unwrap();
    assert!(tokens.access_token.starts_with("Atza|") && tokens.access_token.len() <= 2048);
    assert_eq!(tokens.token_type, "bearer");
    assert_eq!(tokens.expires_in, 3600);
    let profile: Profile = lwa
        .http
        .get(lwa.url("/user/profile"))
        .header("x-amz-access-token", &tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(profile.user_id.starts_with("amzn1.account."));
    assert_eq!(profile.name, "Pat");

    let refresh = tokens.refresh_token.unwrap();
    let (status, body) =
        lwa.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", CLIENT)]).await;
    assert_eq!(status, StatusCode::OK);
    let rotated: TokenResponse = serde_json::from_value(body).unwrap();
    assert_ne!(rotated.refresh_token.as_deref(), Some(refresh.as_str()), "rotation");
    assert_eq!(lwa.profile(&rotated.access_token).await, StatusCode::OK);
    // Reusing the rotated-out refresh token revokes the whole family.
    let (status, body) =
        lwa.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", CLIENT)]).await;
    assert_eq!((status, error_of(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_eq!(lwa.profile(&rotated.access_token).await, StatusCode::BAD_REQUEST);
    let (_, body) = lwa
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rotated.refresh_token.as_deref().unwrap()),
            ("client_id", CLIENT),
        ])
        .await;
    assert_eq!(error_of(&body), "invalid_grant");
}

#[tokio::test]
async fn code_replay_pkce_mismatch_wrong_client_and_wrong_redirect_are_refused() {
    let lwa = Lwa::start(LwaSettings::default()).await;
    let code = lwa.code(REDIRECT).await;
    let (status, body) = lwa.exchange(&code, REDIRECT, VERIFIER, CLIENT).await;
    assert_eq!(status, StatusCode::OK);
    let first: TokenResponse = serde_json::from_value(body).unwrap();
    // Replay: refused, and the tokens issued from the code are revoked.
    let (status, body) = lwa.exchange(&code, REDIRECT, VERIFIER, CLIENT).await;
    assert_eq!((status, error_of(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_eq!(lwa.profile(&first.access_token).await, StatusCode::BAD_REQUEST);

    let code = lwa.code(REDIRECT).await;
    let wrong_verifier = "x".repeat(64);
    let (_, body) = lwa.exchange(&code, REDIRECT, &wrong_verifier, CLIENT).await;
    assert_eq!(error_of(&body), "invalid_grant", "PKCE verifier mismatch");

    let code = lwa.code(REDIRECT).await;
    let (_, body) = lwa.exchange(&code, "http://127.0.0.1:9/amazon-rewards/callback", VERIFIER, CLIENT).await;
    assert_eq!(error_of(&body), "invalid_grant", "redirect_uri must equal the authorization request's");

    let code = lwa.code(REDIRECT).await;
    let (status, body) = lwa.exchange(&code, REDIRECT, VERIFIER, "amzn1.application-oa2-client.other").await;
    assert_eq!((status, error_of(&body).as_str()), (StatusCode::UNAUTHORIZED, "invalid_client"));

    let other = RegisterClient {
        client_id: "other".into(),
        client_secret: None,
        redirect_uris: vec![REDIRECT.into()],
        name: String::new(),
    };
    Client::new(&lwa.sandbox.url()).register_client(&other).await.unwrap();
    let code = lwa.code(REDIRECT).await;
    let (_, body) = lwa.exchange(&code, REDIRECT, VERIFIER, "other").await;
    assert_eq!(error_of(&body), "invalid_grant", "a code is bound to its client");

    let (_, body) = lwa.token(&[("grant_type", "password"), ("client_id", CLIENT)]).await;
    assert_eq!(error_of(&body), "unsupported_grant_type");
    let (_, body) = lwa.token(&[("client_id", CLIENT)]).await;
    assert_eq!(error_of(&body), "invalid_request");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let lwa = Lwa::start(LwaSettings { auth_code_lifetime: 0, ..Default::default() }).await;
    let code = lwa.code(REDIRECT).await;
    let (_, body) = lwa.exchange(&code, REDIRECT, VERIFIER, CLIENT).await;
    assert_eq!(error_of(&body), "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn unregistered_redirects_are_never_followed_and_deny_returns_access_denied() {
    let lwa = Lwa::start(LwaSettings::default()).await;
    for redirect in [
        "https://evil.example/amazon-rewards/callback",
        "http://localhost/amazon-rewards/callback",
        "http://127.0.0.1:8080/other-path",
        "http://127.0.0.1:8080/amazon-rewards/callback?extra=1",
        "http://10.0.0.1/amazon-rewards/callback",
    ] {
        let response = lwa.http.get(lwa.url("/ap/oa")).query(&lwa.authorize_params(redirect)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{redirect}");
        assert!(response.headers().get("location").is_none(), "never redirected to {redirect}");
        assert!(response.text().await.unwrap().contains("not registered"));
    }
    let mut no_pkce = lwa.authorize_params(REDIRECT);
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let response = lwa.http.get(lwa.url("/ap/oa")).query(&no_pkce).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT) && location.contains("error=invalid_request"), "{location}");

    let denied = lwa.consent(REDIRECT, "deny").await;
    assert!(denied.contains("error=access_denied") && denied.contains("state=state-123"), "{denied}");

    // A wrong password shows the form again, with no ticket.
    let mut form = lwa.authorize_params(REDIRECT);
    form.push(("email", "p@example.com".into()));
    form.push(("password", "wrong".into()));
    let response = lwa.http.post(lwa.url("/ap/signin")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!response.text().await.unwrap().contains("ticket"));
}

async fn codepair(lwa: &Lwa) -> DeviceCodeResponse {
    let response = lwa
        .http
        .post(lwa.url("/auth/o2/create/codepair"))
        .form(&[("response_type", "device_code"), ("client_id", CLIENT), ("scope", "games::prime profile")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn device_code_pending_slow_down_approved_and_expired() {
    let lwa = Lwa::start(LwaSettings { device_poll_interval: 1, ..Default::default() }).await;
    let pair = codepair(&lwa).await;
    assert_eq!(pair.user_code.len(), 6);
    assert_eq!(pair.verification_uri, lwa.url("/code"));
    assert_eq!((pair.expires_in, pair.interval), (600, 1));
    // LWA's documented poll, exactly what a shipped game sends: no client_id.
    let poll = [
        ("grant_type", "device_code"),
        ("device_code", pair.device_code.as_str()),
        ("user_code", pair.user_code.as_str()),
    ];
    let (_, body) = lwa.token(&poll).await;
    assert_eq!(error_of(&body), "authorization_pending");
    let (_, body) = lwa.token(&poll).await;
    assert_eq!(error_of(&body), "slow_down", "polled again at once");

    let page = lwa
        .http
        .post(lwa.url("/code"))
        .form(&[
            ("user_code", pair.user_code.to_lowercase().as_str()),
            ("email", "p@example.com"),
            ("password", "secret"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("return to the game"));
    tokio::time::sleep(std::time::Duration::from_millis(6100)).await; // interval grew by 5 s on slow_down
    // LWA refuses RFC 8628's grant type, and so does the sandbox, even for an approved code.
    let urn = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", pair.device_code.as_str()),
        ("user_code", pair.user_code.as_str()),
        ("client_id", CLIENT),
    ];
    let (status, body) = lwa.token(&urn).await;
    assert_eq!((status, error_of(&body)), (StatusCode::BAD_REQUEST, "unsupported_grant_type".into()), "{body}");
    // Both codes are required, and must be the pair's.
    let (_, body) = lwa.token(&poll[..2]).await;
    assert_eq!(error_of(&body), "invalid_request");
    let (_, body) = lwa.token(&[poll[0], poll[1], ("user_code", "WRONG1")]).await;
    assert_eq!(error_of(&body), "invalid_grant");
    let (status, body) = lwa.token(&poll).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens: TokenResponse = serde_json::from_value(body).unwrap();
    assert_eq!(lwa.profile(&tokens.access_token).await, StatusCode::OK);
    let (_, body) = lwa.token(&poll).await;
    assert_eq!(error_of(&body), "invalid_grant", "a device code is single-use");

    let expired = Lwa::start(LwaSettings { device_code_lifetime: 0, ..Default::default() }).await;
    let pair = codepair(&expired).await;
    let (_, body) = expired
        .token(&[
            ("grant_type", "device_code"),
            ("device_code", pair.device_code.as_str()),
            ("user_code", pair.user_code.as_str()),
        ])
        .await;
    assert_eq!(error_of(&body), "expired_token");
}
