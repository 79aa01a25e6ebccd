//! A paid subscription the DevPay way, end to end: sign-up on the sandbox's pages → activation key → the
//! game hands it to the studio backend, which activates it with the license service (the product token never
//! ships in the game) → perks in the inventory → cancelled on the billing page → the billing clock moves on →
//! the backend's scheduled verification sees it → perks taken back.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use amazon_rewards_backend::devpay::{DevPayConfig, DevPayProductConfig};
use amazon_rewards_protocol::sandbox_admin::DevPayProduct;
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use common::studio::Studio;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const PRODUCT_TOKEN: &str = "season-pass-product-token";

#[test]
fn subscribe_activate_perks_then_cancel_removes_them_at_period_end() {
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("pass@example.com");
    let sandbox = fixture.url();
    let studio = Studio::start_with(&sandbox, |config| {
        config.devpay = Some(DevPayConfig {
            license_url: sandbox.clone(),
            products: HashMap::from([(
                "SEASONPASS".to_owned(),
                DevPayProductConfig { product_token: PRODUCT_TOKEN.into(), sku: "season-pass".into() },
            )]),
            verify_every: Duration::from_millis(200),
        });
    });
    studio.link_account("pass-holder", &customer.user_id);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let key = studio.runtime.block_on(async {
        let product = DevPayProduct {
            product_code: "SEASONPASS".into(),
            product_token: PRODUCT_TOKEN.into(),
            title: "Season pass".into(),
            description: "Perks every month.".into(),
            signup_fee_cents: 0,
            monthly_fee_cents: 999,
            redirect_url: "http://127.0.0.1:9/devpay/return".into(),
        };
        http.post(format!("{sandbox}/admin/devpay/products")).json(&product).send().await.unwrap();
        let credentials = [("email", "pass@example.com"), ("password", "pw")];
        http.post(format!("{sandbox}/devpay/signup/SEASONPASS")).form(&credentials).send().await.unwrap();
        let html = http
            .post(format!("{sandbox}/devpay/signup/SEASONPASS/confirm"))
            .form(&credentials)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        html.split(r#"<b id="activation-key">"#).nth(1).unwrap().split('<').next().unwrap().to_owned()
    });

    // The game hands the key to the backend with the player's token.
    let token = fixture.tokens_over_http("pass@example.com", "pw").access_token;
    let activate = |key: &str| {
        let body = json!({"ActivationKey": key, "ProductCode": "SEASONPASS"});
        studio.runtime.block_on(async {
            let response = http
                .post(format!("{}/api/devpay/activate", studio.backend.url()))
                .header("x-amz-access-token", &token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        })
    };
    let (status, standing) = activate(&key);
    assert_eq!(status, 200, "{standing}");
    assert_eq!((standing["active"].as_bool(), standing["monthly_fee_cents"].as_i64()), (Some(true), Some(999)));
    for (bad, code) in [
        (key.as_str(), "ActivationKeyAlreadyUsed"),
        ("NOSUCHKEY", "InvalidActivationKey"),
        ("", "InvalidActivationKey"),
    ] {
        let (status, answer) = activate(bad);
        assert_eq!((status, answer["error"].as_str()), (400, Some(code)), "{bad:?}");
    }

    let data = tempfile::tempdir().unwrap();
    let mut app = headless_app(test_config(&studio.backend.url(), data.path()));
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementRevoked>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "perks granted", |app| collected::<EntitlementGranted>(app).len() == 1);
    assert_eq!(collected::<EntitlementGranted>(&app)[0].source.as_deref(), Some("SUBSCRIPTION"));
    assert_eq!(inventory(&mut app).count("season_badge"), 1);

    // Cancelled on the billing page: the perks stay until the month ends.
    studio.runtime.block_on(async {
        let form = [("email", "pass@example.com"), ("password", "pw"), ("cancel", key.as_str())];
        let page =
            http.post(format!("{sandbox}/devpay/billing")).form(&form).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("then cancelled"), "{page}");
    });
    std::thread::sleep(Duration::from_millis(400));
    run_for(&mut app, Duration::from_millis(60));
    app.world_mut().write_message(StoreVisited);
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(inventory(&mut app).count("season_badge"), 1, "still paid for this month");

    // The month ends; the backend's scheduled verification notices; the game takes the perks back.
    studio.runtime.block_on(async { http.post(format!("{sandbox}/admin/devpay/clock/advance")).send().await.unwrap() });
    let started = std::time::Instant::now();
    while collected::<EntitlementRevoked>(&app).is_empty() {
        assert!(started.elapsed() < WAIT, "perks never removed");
        run_for(&mut app, Duration::from_millis(100));
        app.world_mut().write_message(PullEntitlements);
    }
    assert_eq!(inventory(&mut app).count("season_badge"), 0);
    let subscriptions: Value = studio.runtime.block_on(async {
        http.get(format!("{}/api/devpay/subscriptions", studio.backend.url()))
            .header("x-amz-access-token", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(subscriptions[0]["status"], "cancelled");
    assert_eq!(subscriptions[0]["active"], false);
}
