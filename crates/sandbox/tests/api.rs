//! The sandbox's HTTP API, over real HTTP on loopback, with its database file.

use amazon_rewards_protocol::prime_gaming::{
    ACCESS_TOKEN_HEADER, EntitlementsPage, FulfillRequest, FulfillResponse, FulfillResult, FulfillmentStatusUpdate,
    LastInstruction,
};
use amazon_rewards_protocol::sandbox_admin::{
    CreateCustomer, CreateOffer, Customer, EntitlementStatus, GrantEntitlement, GrantedEntitlements, MintToken,
    MintedToken,
};
use amazon_rewards_sandbox::{SandboxConfig, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn admin<B: serde::Serialize>(&self, path: &str, body: &B) -> reqwest::Response {
        self.http.post(format!("{}/admin{path}", self.url)).json(body).send().await.unwrap()
    }

    async fn customer(&self, email: &str) -> Customer {
        let body = CreateCustomer { email: email.into(), name: "N".into(), password: "pw".into() };
        self.admin("/customers", &body).await.json().await.unwrap()
    }

    async fn token(&self, user: &str, expires_in: i64) -> String {
        let minted: MintedToken =
            self.admin(&format!("/customers/{user}/tokens"), &MintToken { expires_in }).await.json().await.unwrap();
        minted.access_token
    }

    async fn grant(&self, user: &str, sku: &str, count: u32) -> Vec<String> {
        let granted: GrantedEntitlements = self
            .admin(&format!("/customers/{user}/entitlements"), &GrantEntitlement { sku: sku.into(), count })
            .await
            .json()
            .await
            .unwrap();
        granted.entitlement_ids
    }

    async fn list(&self, token: &str, query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/entitlements{query}", self.url))
            .header(ACCESS_TOKEN_HEADER, token)
            .send()
            .await
            .unwrap()
    }

    async fn fulfill(&self, token: &str, ids: &[String]) -> FulfillResponse {
        let request = FulfillRequest {
            fulfillment_status_updates: ids
                .iter()
                .map(|id| FulfillmentStatusUpdate {
                    entitlement_id: id.clone(),
                    last_instruction: LastInstruction::Fulfill,
                    fulfillment_address: "Player".into(),
                })
                .collect(),
        };
        let response = self
            .http
            .post(format!("{}/api/fulfill", self.url))
            .header(ACCESS_TOKEN_HEADER, token)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn admin_input_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = serve(SandboxConfig::new(0, dir.path().join("s.db"))).await.unwrap();
    let c = Client { http: reqwest::Client::new(), url: sandbox.url() };
    let bad_sku = c.admin("/offers", &CreateOffer { sku: "no spaces".into(), title: "t".into() }).await;
    assert_eq!(bad_sku.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad_sku.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        c.admin("/offers", &CreateOffer { sku: "ok-1".into(), title: "t".into() }).await.status(),
        StatusCode::CREATED
    );
    let alice = c.customer("alice@example.com").await;
    assert!(alice.user_id.starts_with("amzn1.account."));
    let again = c
        .admin(
            "/customers",
            &CreateCustomer { email: "alice@example.com".into(), name: "A".into(), password: "x".into() },
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let unknown_offer = c.admin(&format!("/customers/{}/entitlements", alice.user_id), &json!({"sku": "nope"})).await;
    assert_eq!(unknown_offer.status(), StatusCode::NOT_FOUND);
    let unknown_customer = c.admin("/customers/amzn1.account.NOPE/entitlements", &json!({"sku": "ok-1"})).await;
    assert_eq!(unknown_customer.status(), StatusCode::NOT_FOUND);
    let malformed = c
        .http
        .post(format!("{}/admin/offers", c.url))
        .header("content-type", "application/json")
        .body("{\"sku\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let zero =
        c.admin(&format!("/customers/{}/entitlements", alice.user_id), &json!({"sku": "ok-1", "count": 0})).await;
    assert_eq!(zero.status(), StatusCode::BAD_REQUEST);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn entitlements_need_a_valid_token_of_this_customer() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = serve(SandboxConfig::new(0, dir.path().join("s.db"))).await.unwrap();
    let c = Client { http: reqwest::Client::new(), url: sandbox.url() };
    c.admin("/offers", &CreateOffer { sku: "gold".into(), title: "Gold".into() }).await;
    let alice = c.customer("alice@example.com").await;
    let bob = c.customer("bob@example.com").await;
    let alice_ids = c.grant(&alice.user_id, "gold", 2).await;
    let bob_token = c.token(&bob.user_id, 3600).await;
    let expired = c.token(&alice.user_id, -5).await;

    let missing = c.http.get(format!("{}/api/entitlements", c.url)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.list("Atza|forged", "").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(c.list(&expired, "").await.status(), StatusCode::BAD_REQUEST, "expired → 400 as on Amazon");
    assert_eq!(c.list(&"A".repeat(5000), "").await.status(), StatusCode::BAD_REQUEST);

    // Bearer works too.
    let bearer = c.http.get(format!("{}/api/entitlements", c.url)).bearer_auth(&bob_token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let bob_page: EntitlementsPage = bearer.json().await.unwrap();
    assert!(bob_page.entitlements.is_empty(), "bob sees none of alice's");

    // Bob cannot fulfil alice's entitlements.
    let response = c.fulfill(&bob_token, &alice_ids).await;
    assert!(
        response
            .fulfillment_status_updates
            .iter()
            .all(|r| r.result == FulfillResult::Error && r.reason.as_deref() == Some("UNKNOWN_ENTITLEMENT"))
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn listing_pages_and_fulfilment_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = serve(SandboxConfig::new(0, dir.path().join("s.db"))).await.unwrap();
    let c = Client { http: reqwest::Client::new(), url: sandbox.url() };
    c.admin("/offers", &CreateOffer { sku: "gold".into(), title: "Gold".into() }).await;
    let alice = c.customer("alice@example.com").await;
    let ids = c.grant(&alice.user_id, "gold", 25).await;
    let token = c.token(&alice.user_id, 3600).await;

    let mut seen = Vec::new();
    let mut query = "?pageSize=10".to_owned();
    loop {
        let response = c.list(&token, &query).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let page: EntitlementsPage = response.json().await.unwrap();
        assert!(page.entitlements.len() <= 10);
        seen.extend(page.entitlements.into_iter().map(|e| e.entitlement_id));
        match page.next_token {
            Some(next) => query = format!("?pageSize=10&nextToken={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every entitlement once, oldest first");
    assert_eq!(c.list(&token, "?nextToken=garbage").await.status(), StatusCode::BAD_REQUEST);

    let first = c.fulfill(&token, &ids[..5]).await;
    assert!(first.fulfillment_status_updates.iter().all(|r| r.result == FulfillResult::Success));
    let again = c.fulfill(&token, &ids[..5]).await;
    assert!(again.fulfillment_status_updates.iter().all(|r| r.result == FulfillResult::Success));
    let page: EntitlementsPage = c.list(&token, "?pageSize=1000").await.json().await.unwrap();
    assert_eq!(page.entitlements.len(), 20, "fulfilled entitlements are no longer returned");

    let statuses: Vec<EntitlementStatus> = c
        .http
        .get(format!("{}/admin/customers/{}/entitlements", c.url, alice.user_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(statuses.iter().filter(|s| s.fulfilled).count(), 5);
    assert!(statuses[..5].iter().all(|s| s.report_count == 2));

    // Bad fulfil bodies.
    let post = |body: &'static str, content_type: &'static str| {
        c.http
            .post(format!("{}/api/fulfill", c.url))
            .header(ACCESS_TOKEN_HEADER, &token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        post("{\"FulfillmentStatusUpdates\":[", "application/json").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post("{}", "text/plain").await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The old, invented shape is refused as a whole: Prime Gaming reads LastInstruction and FulfillmentAddress.
    let old_shape = c
        .http
        .post(format!("{}/api/fulfill", c.url))
        .header(ACCESS_TOKEN_HEADER, &token)
        .json(&json!({"FulfillmentStatusUpdates":[{"EntitlementId": ids[6], "FulfillmentStatus": "FULFILLED"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(old_shape.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let no_address = c
        .http
        .post(format!("{}/api/fulfill", c.url))
        .header(ACCESS_TOKEN_HEADER, &token)
        .json(&json!({"FulfillmentStatusUpdates":[{"EntitlementId": ids[6], "LastInstruction": "FULFILL"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_address.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The public Prime Gaming wire has no revocation.
    let revoked = c
        .http
        .post(format!("{}/api/fulfill", c.url))
        .header(ACCESS_TOKEN_HEADER, &token)
        .json(&json!({"FulfillmentStatusUpdates":[{"EntitlementId": ids[6], "LastInstruction": "REVOKE", "FulfillmentAddress": "Player"}]}))
        .send()
        .await
        .unwrap();
    let revoked: FulfillResponse = revoked.json().await.unwrap();
    assert_eq!(revoked.fulfillment_status_updates[0].result, FulfillResult::Error);
    let too_many: Vec<Value> = (0..1001)
        .map(
            |i| json!({"EntitlementId": format!("x{i}"), "LastInstruction": "FULFILL", "FulfillmentAddress": "Player"}),
        )
        .collect();
    let response = c
        .http
        .post(format!("{}/api/fulfill", c.url))
        .header(ACCESS_TOKEN_HEADER, &token)
        .json(&json!({"FulfillmentStatusUpdates": too_many}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn data_survives_a_restart_on_the_same_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("persist.db");
    let sandbox = serve(SandboxConfig::new(0, &database)).await.unwrap();
    let c = Client { http: reqwest::Client::new(), url: sandbox.url() };
    c.admin("/offers", &CreateOffer { sku: "gold".into(), title: "Gold".into() }).await;
    let alice = c.customer("alice@example.com").await;
    let ids = c.grant(&alice.user_id, "gold", 3).await;
    let token = c.token(&alice.user_id, 3600).await;
    c.fulfill(&token, &ids[..1]).await;
    assert!(dir.path().join("persist.db-wal").exists(), "WAL mode");
    sandbox.shutdown().await;

    let sandbox = serve(SandboxConfig::new(0, &database)).await.unwrap();
    let c = Client { http: reqwest::Client::new(), url: sandbox.url() };
    let page: EntitlementsPage = c.list(&token, "").await.json().await.unwrap();
    assert_eq!(page.entitlements.iter().map(|e| e.entitlement_id.clone()).collect::<Vec<_>>(), ids[1..]);
    sandbox.shutdown().await;

    let pool = amazon_rewards_sandbox::db::open(&database).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
    assert_eq!(
        versions,
        (1..=amazon_rewards_sandbox::db::latest_version()).collect::<Vec<_>>(),
        "each migration applied once"
    );
}

/// The hardening review's finding 10: any web page could drive the sandbox through DNS rebinding (no `Host`
/// check) or a cross-site request (no `Origin` check on the unauthenticated admin API), and fault parameters
/// were unbounded.
#[tokio::test]
async fn other_hosts_cross_origin_admin_calls_and_unbounded_faults_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = serve(SandboxConfig::new(0, dir.path().join("s.db"))).await.unwrap();
    let c = Client { http: reqwest::Client::new(), url: sandbox.url() };
    let port = sandbox.addr().port();
    let list = |host: String, origin: Option<String>| {
        let mut request = c.http.get(format!("{}/admin/customers", c.url)).header("host", host);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(list(format!("rebound.evil.example:{port}"), None).await, StatusCode::FORBIDDEN);
    assert_eq!(list(format!("127.0.0.1:{port}"), Some("http://evil.example".into())).await, StatusCode::FORBIDDEN);
    assert_eq!(list(format!("127.0.0.1:{port}"), None).await, StatusCode::OK, "tools send no Origin");
    assert_eq!(
        list(format!("127.0.0.1:{port}"), Some(format!("http://127.0.0.1:{port}"))).await,
        StatusCode::OK,
        "the sandbox's own pages may"
    );
    assert_eq!(list(format!("localhost:{port}"), None).await, StatusCode::OK);
    let public = c.http.get(format!("{}/api/entitlements", c.url)).header("host", "evil.example").send().await.unwrap();
    assert_eq!(public.status(), StatusCode::FORBIDDEN, "public APIs too");

    let fault = |body: Value| {
        let c = &c;
        async move { c.admin("/faults", &body).await }
    };
    let huge =
        json!({"path": "/api/entitlements", "times": 1, "fault": {"kind": "oversized", "bytes": 10_000_000_000u64}});
    assert_eq!(fault(huge).await.status(), StatusCode::BAD_REQUEST);
    let many = json!({"path": "/api/entitlements", "times": 4_000_000_000u32, "fault": {"kind": "malformed_json"}});
    assert_eq!(fault(many).await.status(), StatusCode::BAD_REQUEST);
    let slow = json!({"path": "/api/entitlements", "times": 1, "fault": {"kind": "delay", "millis": 86_400_000u64}});
    assert_eq!(fault(slow).await.status(), StatusCode::BAD_REQUEST);
    let fine = json!({"path": "/api/entitlements", "times": 2, "fault": {"kind": "malformed_json"}});
    assert_eq!(fault(fine).await.status(), StatusCode::NO_CONTENT);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn health_probes_and_every_answer_marked_as_a_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(SandboxConfig::new(0, dir.path().join("sandbox.db"))).await.unwrap();
    let http = reqwest::Client::new();
    let up = http.get(format!("{}/healthz", server.url())).send().await.unwrap();
    assert_eq!(up.status(), StatusCode::OK);
    assert_eq!(up.headers()["x-amazon-rewards-environment"], "sandbox");
    let ready: Value = http.get(format!("{}/readyz", server.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!((&ready["status"], &ready["database"]), (&json!("ready"), &json!("reachable")), "{ready}");
    assert_eq!(ready["migrations"]["applied"], ready["migrations"]["expected"]);
    let refused = http.get(format!("{}/api/entitlements", server.url())).send().await.unwrap();
    assert_eq!(refused.headers()["x-amazon-rewards-environment"], "sandbox", "refusals too");
}
