//! Instant Access against the backend over real HTTP: signatures, every operation, idempotency under
//! concurrency, on a SQLite file and on a real PostgreSQL server the test starts itself (`test_postgres`).

use std::net::SocketAddr;

use amazon_rewards_backend::{BackendConfig, RunningBackend, serve};
use amazon_rewards_protocol::dta1::{AmzDate, Credential, KeyStore, sign};
use amazon_rewards_protocol::instant_access::{FULFILLMENT_PATH, InstantAccessResponse, LINKING_PATH, ResponseCode};
use serde_json::{Value, json};

const KEYS: &str = "SECRETKEY KEYID\nOTHERSECRET OTHERKEY\n";

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

const OPERATOR_TOKEN: &str = "instant-access-test-operator-token";

async fn backend(database_url: &str) -> RunningBackend {
    let mut config = BackendConfig::new(any_port(), database_url, KeyStore::parse(KEYS).unwrap());
    config.operator = Some(amazon_rewards_backend::operator::OperatorConfig {
        listen: any_port(),
        token: Some(OPERATOR_TOKEN.into()),
    });
    serve(config).await.unwrap()
}

struct Caller {
    http: reqwest::Client,
    url: String,
    operator_url: Option<String>,
    credential: Credential,
}

impl Caller {
    fn new(backend: &RunningBackend) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: backend.url(),
            operator_url: backend.operator_url(),
            credential: Credential::new("KEYID", "SECRETKEY"),
        }
    }

    async fn raw(&self, path: &str, body: &str, at: AmzDate, credential: &Credential) -> (u16, Value) {
        let signed = sign("POST", path, "application/json", body.as_bytes(), credential, at);
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .header("x-amz-date", signed.x_amz_date)
            .header("authorization", signed.authorization)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, path: &str, body: Value) -> ResponseCode {
        let (status, answer) = self.raw(path, &body.to_string(), AmzDate::now(), &self.credential).await;
        assert_eq!(status, 200, "{answer}");
        serde_json::from_value::<InstantAccessResponse>(answer).unwrap().response
    }

    async fn account(&self, username: &str) -> String {
        let response = self
            .http
            .post(format!("{}/admin/accounts", self.operator_url.as_deref().expect("an operator listener")))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"username": username}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        response.json::<Value>().await.unwrap()["user_id"].as_str().unwrap().to_owned()
    }
}

fn purchase(user: &str, token: &str) -> Value {
    json!({"operation": "Purchase", "reason": "FULFILL", "productId": "ia-gem-crate", "userId": user, "purchaseToken": token})
}

fn revoke(user: &str, token: &str) -> Value {
    json!({"operation": "Revoke", "reason": "CUSTOMER_SERVICE_REQUEST", "productId": "ia-gem-crate", "userId": user, "purchaseToken": token})
}

async fn count(backend: &RunningBackend, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&backend.pool).await.unwrap()
}

async fn every_operation(database_url: &str) {
    let backend = backend(database_url).await;
    let caller = Caller::new(&backend);
    let user = caller.account("ada").await;

    let linked = caller
        .raw(
            LINKING_PATH,
            &json!({"operation": "GetUserId", "infoField1": "ada"}).to_string(),
            AmzDate::now(),
            &caller.credential,
        )
        .await;
    assert_eq!(linked.0, 200);
    assert_eq!(linked.1, json!({"response": "OK", "userId": user}));
    assert_eq!(
        caller.call(LINKING_PATH, json!({"operation": "getuserid", "infoField1": "nobody"})).await,
        ResponseCode::FailAccountInvalid
    );

    assert_eq!(caller.call(FULFILLMENT_PATH, purchase(&user, "t1")).await, ResponseCode::Ok);
    assert_eq!(caller.call(FULFILLMENT_PATH, purchase(&user, "t1")).await, ResponseCode::Ok, "a repeat is OK");
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ia_purchases").await, 1, "and granted once");
    assert_eq!(caller.call(FULFILLMENT_PATH, purchase("player-unknown", "t2")).await, ResponseCode::FailUserInvalid);
    let other = caller.account("bob").await;
    assert_eq!(
        caller.call(FULFILLMENT_PATH, purchase(&other, "t1")).await,
        ResponseCode::FailOther,
        "a token is one purchase"
    );

    assert_eq!(
        caller.call(FULFILLMENT_PATH, revoke(&user, "never-bought")).await,
        ResponseCode::FailInvalidPurchaseToken
    );
    assert_eq!(caller.call(FULFILLMENT_PATH, revoke(&other, "t1")).await, ResponseCode::FailUserInvalid);
    assert_eq!(caller.call(FULFILLMENT_PATH, revoke(&user, "t1")).await, ResponseCode::Ok);
    let revoked_at = count(&backend, "SELECT revoked_at FROM ia_purchases WHERE purchase_token = 't1'").await;
    assert_eq!(caller.call(FULFILLMENT_PATH, revoke(&user, "t1")).await, ResponseCode::Ok, "revoking again is OK");
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ia_purchases WHERE revoked = 1").await, 1);
    assert_eq!(
        count(&backend, "SELECT revoked_at FROM ia_purchases WHERE purchase_token = 't1'").await,
        revoked_at,
        "revoked once"
    );

    let activate = json!({"operation": "SubscriptionActivate", "subscriptionId": "s1", "productId": "season-pass", "userId": user});
    assert_eq!(caller.call(FULFILLMENT_PATH, activate.clone()).await, ResponseCode::Ok);
    assert_eq!(caller.call(FULFILLMENT_PATH, activate).await, ResponseCode::Ok);
    let deactivate = json!({"operation": "SubscriptionDeactivate", "subscriptionId": "s1", "reason": "USER_REQUEST", "period": "REGULAR"});
    assert_eq!(caller.call(FULFILLMENT_PATH, deactivate.clone()).await, ResponseCode::Ok);
    assert_eq!(caller.call(FULFILLMENT_PATH, deactivate).await, ResponseCode::Ok);
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ia_subscriptions WHERE active = 0").await, 1);
    let unknown = json!({"operation": "SubscriptionDeactivate", "subscriptionId": "nope", "reason": "NOT_RENEWED", "period": "REGULAR"});
    assert_eq!(caller.call(FULFILLMENT_PATH, unknown).await, ResponseCode::FailInvalidSubscription);
    // A purchase sent to the linking endpoint is not served there.
    assert_eq!(caller.call(LINKING_PATH, purchase(&user, "t9")).await, ResponseCode::FailOther);
    licenses_v3(&caller, &user).await;
    backend.shutdown().await;
}

/// The Java SDK's v3: licenses on activation, SubscriptionGet, SubscriptionUpdate, and REASSIGN.
async fn licenses_v3(caller: &Caller, user: &str) {
    let answer = |body: Value| async move {
        let (status, answer) =
            caller.raw(FULFILLMENT_PATH, &body.to_string(), AmzDate::now(), &caller.credential).await;
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let get =
        json!({"operation": "SubscriptionGet", "subscriptionId": "team", "productId": "season-pass", "userId": user});
    let update = |body: Value| {
        let mut call = json!({"operation": "SubscriptionUpdate", "subscriptionId": "team", "productId": "season-pass", "userId": user});
        call.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        call
    };
    assert_eq!(answer(get.clone()).await, json!({"response": "FAIL_INVALID_SUBSCRIPTION"}));
    let activate = json!({"operation": "SubscriptionActivate", "subscriptionId": "team", "productId": "season-pass",
        "userId": user, "numberOfLicenses": 3});
    assert_eq!(answer(activate).await, json!({"response": "OK"}));
    let counts = |used: u32, unused: u32| json!({"response": "OK", "numberOfUsedLicenses": used, "numberOfUnusedLicenses": unused});
    assert_eq!(answer(get.clone()).await, counts(1, 2));
    assert_eq!(answer(update(json!({"numberOfLicenses": 5}))).await, counts(1, 4));
    assert_eq!(answer(update(json!({"removeAllUnassignedLicenses": true}))).await, counts(1, 0));
    assert_eq!(
        answer(update(json!({"numberOfLicenses": 0}))).await,
        json!({"response": "FAIL_OTHER"}),
        "a seat in use stays"
    );
    assert_eq!(answer(get.clone()).await, counts(1, 0));
    let reassign = json!({"operation": "SubscriptionDeactivate", "subscriptionId": "team", "reason": "REASSIGN", "period": "REGULAR"});
    assert_eq!(answer(reassign).await, json!({"response": "OK"}));
    assert_eq!(answer(get).await, counts(0, 1), "the seat was freed");
    let (status, _) = caller
        .raw(FULFILLMENT_PATH, &update(json!({"numberOfLicenses": -2})).to_string(), AmzDate::now(), &caller.credential)
        .await;
    assert_eq!(status, 400, "a negative count is unreadable");
}

/// Behind a proxy that strips `/rewards`, Amazon signs the public path: the backend verifies over it.
#[tokio::test]
async fn signatures_are_verified_over_the_public_path_behind_a_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BackendConfig::new(any_port(), sqlite_url(&dir), KeyStore::parse(KEYS).unwrap());
    config.public_path_prefix = "/rewards".into();
    let backend = serve(config).await.unwrap();
    let caller = Caller::new(&backend);
    let body = json!({"operation": "GetUserId", "infoField1": "nobody"}).to_string();
    let credential = Credential::new("KEYID", "SECRETKEY");
    let signed = sign(
        "POST",
        &format!("/rewards{LINKING_PATH}"),
        "application/json",
        body.as_bytes(),
        &credential,
        AmzDate::now(),
    );
    let status = caller
        .http
        .post(format!("{}{LINKING_PATH}", caller.url))
        .header("content-type", "application/json")
        .header("x-amz-date", signed.x_amz_date)
        .header("authorization", signed.authorization)
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200, "signed for the public URL");
    let (status, _) = caller.raw(LINKING_PATH, &body, AmzDate::now(), &credential).await;
    assert_eq!(status, 403, "signed for the backend's own path: not what Amazon would sign");
    backend.shutdown().await;
}

async fn fifty_concurrent_identical_purchases(database_urls: &[String]) {
    // Several backend processes' worth of servers on one database, all getting the same call at once.
    let backends: Vec<RunningBackend> = futures::future::join_all(database_urls.iter().map(|url| backend(url))).await;
    let first = Caller::new(&backends[0]);
    let user = first.account("concurrent").await;
    let callers: Vec<Caller> = backends.iter().map(Caller::new).collect();
    let calls = (0..50).map(|i| {
        let caller = &callers[i % callers.len()];
        let body = purchase(&user, "the-one-token");
        async move { caller.call(FULFILLMENT_PATH, body).await }
    });
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|a| *a == ResponseCode::Ok), "{answers:?}");
    assert_eq!(count(&backends[0], "SELECT COUNT(*) FROM ia_purchases").await, 1, "granted exactly once");
    let revokes = (0..50).map(|i| {
        let caller = &callers[i % callers.len()];
        let body = revoke(&user, "the-one-token");
        async move { caller.call(FULFILLMENT_PATH, body).await }
    });
    assert!(futures::future::join_all(revokes).await.iter().all(|a| *a == ResponseCode::Ok));
    assert_eq!(count(&backends[0], "SELECT COUNT(*) FROM ia_purchases WHERE revoked = 1").await, 1);
    for backend in backends {
        backend.shutdown().await;
    }
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("backend.db").display())
}

#[tokio::test]
async fn every_operation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_operation(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_purchases_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    fifty_concurrent_identical_purchases(&[url.clone(), url]).await;
}

#[tokio::test]
async fn signatures_are_checked_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&sqlite_url(&dir)).await;
    let caller = Caller::new(&backend);
    let user = caller.account("eve").await;
    let body = purchase(&user, "sig-1").to_string();
    let now = AmzDate::now();

    let unsigned = caller
        .http
        .post(format!("{}{FULFILLMENT_PATH}", caller.url))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 403);
    let wrong_secret = caller.raw(FULFILLMENT_PATH, &body, now, &Credential::new("KEYID", "GUESSED")).await;
    assert_eq!(wrong_secret.0, 403);
    let unknown_key = caller.raw(FULFILLMENT_PATH, &body, now, &Credential::new("STRANGER", "SECRETKEY")).await;
    assert_eq!(unknown_key.0, 403);
    let stale = caller.raw(FULFILLMENT_PATH, &body, AmzDate { unix: now.unix - 16 * 60 }, &caller.credential).await;
    assert_eq!(stale.0, 403);
    let wrong_path = caller.raw(LINKING_PATH, &body, now, &caller.credential);
    // Signed for the linking path, sent to fulfilment: the canonical request differs.
    let signed = sign("POST", LINKING_PATH, "application/json", body.as_bytes(), &caller.credential, now);
    let misrouted = caller
        .http
        .post(format!("{}{FULFILLMENT_PATH}", caller.url))
        .header("content-type", "application/json")
        .header("x-amz-date", signed.x_amz_date)
        .header("authorization", signed.authorization)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(misrouted.status().as_u16(), 403);
    assert_eq!(wrong_path.await.0, 200, "correctly signed for where it goes");
    // A tampered body under a valid signature.
    let signed = sign("POST", FULFILLMENT_PATH, "application/json", body.as_bytes(), &caller.credential, now);
    let tampered = caller
        .http
        .post(format!("{}{FULFILLMENT_PATH}", caller.url))
        .header("content-type", "application/json")
        .header("x-amz-date", signed.x_amz_date)
        .header("authorization", signed.authorization)
        .body(purchase(&user, "sig-2").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 403);
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ia_purchases").await, 0, "nothing refused was recorded");

    // Signed but unreadable: 400.
    assert_eq!(caller.raw(FULFILLMENT_PATH, "{not json", now, &caller.credential).await.0, 400);
    assert_eq!(caller.raw(FULFILLMENT_PATH, r#"{"operation":"Refund"}"#, now, &caller.credential).await.0, 400);
    // Unknown fields are ignored and the other key works too.
    let extra = json!({"operation": "Purchase", "reason": "fulfill", "productId": "ia-gem-crate", "userId": user, "purchaseToken": "sig-3", "futureField": {"x": 1}});
    let answer =
        caller.raw(FULFILLMENT_PATH, &extra.to_string(), now, &Credential::new("OTHERKEY", "OTHERSECRET")).await;
    assert_eq!(answer, (200, json!({"response": "OK"})));
    backend.shutdown().await;
}

/// A fresh database on a PostgreSQL server of this test's own, kept running as long as the guard.
fn postgres_database() -> (test_postgres::TestPostgres, String) {
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    let url = server.fresh_database();
    (server, url)
}

#[tokio::test]
async fn every_operation_on_postgresql() {
    let (_server, url) = postgres_database();
    every_operation(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_purchases_on_postgresql_across_three_backends() {
    let (_server, url) = postgres_database();
    // Three backends starting together also race their migrations; each is applied once.
    fifty_concurrent_identical_purchases(&[url.clone(), url.clone(), url]).await;
}
