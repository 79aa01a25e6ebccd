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
use serde_json::Value;

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

    // The game hands the key to the backend (the plugin's ActivateSubscription).
    let token = fixture.tokens_over_http("pass@example.com", "pw").access_token;
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&studio.backend.url(), data.path());
    config.billing_url = Some(format!("{sandbox}/devpay/billing"));
    let (opened_sender, opened) = std::sync::mpsc::channel::<String>();
    let opened_sender = std::sync::Mutex::new(opened_sender);
    config.login.open_browser = std::sync::Arc::new(move |url: &str| {
        opened_sender.lock().unwrap().send(url.to_owned()).map_err(|e| e.to_string())
    });
    let mut app = headless_app(config);
    collect::<EntitlementGranted>(&mut app);
    collect::<EntitlementRevoked>(&mut app);
    collect::<SubscriptionEvent>(&mut app);
    spawn_recipient(&mut app);
    login(&mut app, &customer.user_id, &token);
    let activate = |app: &mut App, key: &str| {
        let before = collected::<SubscriptionEvent>(app).len();
        app.world_mut()
            .write_message(ActivateSubscription { activation_key: key.into(), product_code: "SEASONPASS".into() });
        run_until(app, WAIT, "activation answer", |app| {
            collected::<SubscriptionEvent>(app)[before..]
                .iter()
                .any(|e| matches!(e, SubscriptionEvent::Activated(_) | SubscriptionEvent::ActivationFailed { .. }))
        });
        collected::<SubscriptionEvent>(app)[before..]
            .iter()
            .find(|e| matches!(e, SubscriptionEvent::Activated(_) | SubscriptionEvent::ActivationFailed { .. }))
            .cloned()
            .unwrap()
    };
    let refused =
        |reason: &str| SubscriptionEvent::ActivationFailed { product_code: "SEASONPASS".into(), reason: reason.into() };
    assert_eq!(activate(&mut app, "NOSUCHKEY"), refused("InvalidActivationKey"));
    match activate(&mut app, &key) {
        SubscriptionEvent::Activated(status) => {
            assert!(status.active && status.monthly_fee_cents == 999 && !status.cancel_at_period_end, "{status:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(app.world().resource::<Subscriptions>().is_active("SEASONPASS"));
    assert_eq!(activate(&mut app, &key), refused("ActivationKeyAlreadyUsed"));
    assert_eq!(activate(&mut app, ""), refused("InvalidActivationKey"));

    // Perks arrive through the feed.
    app.world_mut().write_message(PullEntitlements);
    run_until(&mut app, WAIT, "perks granted", |app| collected::<EntitlementGranted>(app).len() == 1);
    assert_eq!(collected::<EntitlementGranted>(&app)[0].source.as_deref(), Some("SUBSCRIPTION"));
    assert_eq!(inventory(&mut app).count("season_badge"), 1);

    // The billing page opens in the browser.
    app.world_mut().write_message(OpenBillingPage);
    run_for(&mut app, Duration::from_millis(50));
    assert_eq!(opened.recv_timeout(Duration::from_secs(5)).unwrap(), format!("{sandbox}/devpay/billing"));

    // Cancelled on the billing page: the perks stay until the month ends.
    studio.runtime.block_on(async {
        let form = [("email", "pass@example.com"), ("password", "pw"), ("cancel", key.as_str())];
        let page =
            http.post(format!("{sandbox}/devpay/billing")).form(&form).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("then cancelled"), "{page}");
    });
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "cancellation seen", |app| {
        app.world().resource::<Subscriptions>().get("SEASONPASS").is_some_and(|s| s.cancel_at_period_end)
    });
    assert!(app.world().resource::<Subscriptions>().is_active("SEASONPASS"), "still paid for this month");
    run_for(&mut app, Duration::from_millis(400));
    app.world_mut().write_message(StoreVisited);
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(inventory(&mut app).count("season_badge"), 1, "perks stay until the month ends");

    // The month ends; the backend's scheduled verification notices; the game takes the perks back.
    studio.runtime.block_on(async { http.post(format!("{sandbox}/admin/devpay/clock/advance")).send().await.unwrap() });
    let started = std::time::Instant::now();
    while collected::<EntitlementRevoked>(&app).is_empty() {
        assert!(started.elapsed() < WAIT, "perks never removed");
        run_for(&mut app, Duration::from_millis(100));
        app.world_mut().write_message(PullEntitlements);
    }
    assert_eq!(inventory(&mut app).count("season_badge"), 0);
    run_until(&mut app, WAIT, "the end is seen", |app| {
        !app.world().resource::<Subscriptions>().is_active("SEASONPASS")
    });
    assert!(
        collected::<SubscriptionEvent>(&app)
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Changed(s) if s.status == "cancelled"))
    );
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
