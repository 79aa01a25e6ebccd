//! Paid subscriptions the DevPay way, end to end over real HTTP: the sandbox's sign-up pages in a real headless
//! Chromium send the player back to the game's loopback listener with an activation key → the game hands it to
//! the studio backend, which activates it with the license service (the product token never ships in the game)
//! → perks in the inventory → two months billed with a price change between → cancelled on the billing page →
//! the billing clock moves on → the backend's scheduled verification sees it → perks taken back, once.
//! Typed keys and their refusals (malformed, unknown, used, another customer's) go through the same path.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use amazon_rewards_backend::devpay::{DevPayConfig, DevPayProductConfig};
use amazon_rewards_protocol::sandbox_admin::{DevPayBill, DevPayPriceChange, DevPayProduct};
use bevy::prelude::*;
use bevy_amazon_rewards::auth::BrowserOpener;
use bevy_amazon_rewards::prelude::*;
use bevy_amazon_rewards::subscriptions::SIGNUP_RETURN_PATH;
use common::studio::Studio;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const PRODUCT_TOKEN: &str = "season-pass-product-token";

/// A sandbox selling the season pass, and a studio backend that knows its product token.
struct Shop {
    fixture: Fixture,
    studio: Studio,
    sandbox: String,
    http: reqwest::Client,
}

impl Shop {
    fn open() -> Self {
        Self::open_with(|_| {})
    }

    /// Like [`Shop::open`], with a last word on the backend's configuration.
    fn open_with(tweak: impl FnOnce(&mut amazon_rewards_backend::BackendConfig)) -> Self {
        let fixture = Fixture::start();
        fixture.register_client();
        let sandbox = fixture.url();
        let studio = Studio::start_with(&sandbox, |config| {
            config.devpay = Some(DevPayConfig {
                license_url: sandbox.clone(),
                products: HashMap::from([(
                    "SEASONPASS".to_owned(),
                    DevPayProductConfig { product_token: PRODUCT_TOKEN.into(), sku: "season-pass".into() },
                )]),
                verify_every: Duration::from_millis(200),
                signup_url: Some(format!("{sandbox}/devpay/signup")),
                public_url: String::new(),
            });
            tweak(config);
        });
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let shop = Self { fixture, studio, sandbox, http };
        let product = DevPayProduct {
            product_code: "SEASONPASS".into(),
            product_token: PRODUCT_TOKEN.into(),
            title: "Season pass".into(),
            description: "Perks every month.".into(),
            signup_fee_cents: 500,
            monthly_fee_cents: 999,
            // A desktop game's loopback listener; any port matches.
            redirect_url: format!("http://127.0.0.1{SIGNUP_RETURN_PATH}"),
            // The studio backend, for sign-ups on another device.
            other_redirect_urls: vec![format!("{}/devpay/return", shop.studio.backend.url())],
        };
        shop.fixture.admin.add_devpay_product(&product).unwrap();
        shop
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.studio.runtime.block_on(future)
    }

    /// A sandbox customer with a game account at the studio, and their access token.
    fn player(&self, email: &str) -> (String, String) {
        let customer = self.fixture.customer(email);
        self.studio.link_account(email.split('@').next().unwrap(), &customer.user_id);
        (customer.user_id, self.studio.session(&self.fixture, email))
    }

    /// Signs up over plain HTTP (no loopback listener waiting); returns the activation key.
    fn sign_up_over_http(&self, email: &str) -> String {
        let credentials = [("email", email), ("password", "pw")];
        let html = self.block_on(async {
            let url = format!("{}/devpay/signup/SEASONPASS/confirm", self.sandbox);
            self.http.post(url).form(&credentials).send().await.unwrap().text().await.unwrap()
        });
        html.split(r#"<b id="activation-key">"#).nth(1).unwrap().split('<').next().unwrap().to_owned()
    }

    fn advance_clock(&self) {
        self.fixture.admin.advance_devpay_clock().unwrap();
    }

    fn bills(&self, user_id: &str) -> Vec<(i64, String, i64, bool)> {
        let bills: Vec<DevPayBill> = self.fixture.admin.devpay_bills(user_id).unwrap();
        bills.into_iter().map(|b| (b.period, b.kind, b.amount_cents, b.paid)).collect()
    }

    fn game(&self, data: &std::path::Path, user_id: &str, token: &str, open: BrowserOpener) -> App {
        let mut config = test_config(&self.studio.backend.url(), data);
        config.subscriptions.signup_url = Some(format!("{}/devpay/signup", self.sandbox));
        config.subscriptions.billing_url = Some(format!("{}/devpay/billing", self.sandbox));
        config.subscriptions.signup_poll_interval = Duration::from_millis(200);
        config.login.open_browser = open;
        let mut app = headless_app(config);
        collect::<EntitlementGranted>(&mut app);
        collect::<EntitlementRevoked>(&mut app);
        collect::<SubscriptionEvent>(&mut app);
        spawn_recipient(&mut app);
        login(&mut app, user_id, token);
        app
    }
}

/// A browser opener that records the URLs it was asked to open.
fn recording_opener() -> (BrowserOpener, mpsc::Receiver<String>) {
    let (sender, opened) = mpsc::channel::<String>();
    let sender = Mutex::new(sender);
    (Arc::new(move |url: &str| sender.lock().unwrap().send(url.to_owned()).map_err(|e| e.to_string().into())), opened)
}

fn subscription(app: &App) -> Option<SubscriptionStatus> {
    app.world().resource::<Subscriptions>().get("SEASONPASS").cloned()
}

/// Activates a typed key and returns the answer.
fn activate(app: &mut App, key: &str) -> SubscriptionEvent {
    let answered = |e: &&SubscriptionEvent| {
        matches!(e, SubscriptionEvent::Activated(_) | SubscriptionEvent::ActivationFailed { .. })
    };
    let before = collected::<SubscriptionEvent>(app).len();
    let observed = std::sync::Arc::new(Mutex::new(Vec::<ActivationAnswered>::new()));
    let sink = observed.clone();
    let observer = app.world_mut().add_observer(move |answer: On<ActivationAnswered>| {
        sink.lock().unwrap().push((*answer).clone());
    });
    let observer = observer.id();
    app.world_mut()
        .write_message(ActivateSubscription { activation_key: key.into(), product_code: "SEASONPASS".into() });
    run_until(app, WAIT, "activation answer", |app| {
        collected::<SubscriptionEvent>(app)[before..].iter().any(|e| answered(&e))
    });
    app.world_mut().despawn(observer);
    let event = collected::<SubscriptionEvent>(app)[before..].iter().find(answered).cloned().unwrap();
    // The same answer reaches observers, matched to the request by product code.
    let observed = observed.lock().unwrap().clone();
    assert_eq!(observed.len(), 1, "one answer per request: {observed:?}");
    assert_eq!(observed[0].product_code, "SEASONPASS");
    match (&event, &observed[0].outcome) {
        (SubscriptionEvent::Activated(status), Ok(answered)) => assert_eq!(status, answered),
        (SubscriptionEvent::ActivationFailed { reason, .. }, Err(answered)) => assert_eq!(reason, &answered.reason),
        other => panic!("the message and the observer disagree: {other:?}"),
    }
    event
}

/// A first-of-month date `YYYY-MM-01` as a month count.
fn month_of(date: &str) -> i64 {
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    assert_eq!((parts.len(), parts[2]), (3, 1), "{date}");
    parts[0] * 12 + parts[1] - 1
}

/// Walks the sign-up pages in a real browser as `email`: the product and its price, sign-in, confirmation.
fn sign_up_in(browser: &webdriver::Browser, url: &str, email: &str) {
    browser.goto(url);
    browser.wait_for_text("Sign-up fee <b>$5.00</b>, then <b>$9.99</b> per month", WAIT);
    browser.type_into("#email", email);
    browser.type_into("#password", "pw");
    browser.click("#continue");
    browser.wait_for_text("You pay $14.99 now", WAIT);
    browser.click("#confirm");
}

fn refused(reason: &str) -> SubscriptionEvent {
    SubscriptionEvent::ActivationFailed { product_code: "SEASONPASS".into(), reason: reason.into() }
}

#[test]
fn sign_up_in_the_browser_then_perks_two_billed_months_with_a_price_change_and_cancellation() {
    assert!(
        webdriver::available(),
        "install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let shop = Shop::open();
    let (user_id, token) = shop.player("pass@example.com");

    // The "system browser" is headless Chromium: it walks the sign-up pages and is sent back to the game's
    // loopback listener by the confirmation page.
    let (report, browser_result) = mpsc::channel::<(String, String)>();
    let report = Mutex::new(report);
    let open: BrowserOpener = Arc::new(move |url: &str| {
        let (url, report) = (url.to_owned(), report.lock().unwrap().clone());
        std::thread::spawn(move || {
            let browser = webdriver::Browser::launch();
            sign_up_in(&browser, &url, "pass@example.com");
            let page = browser.wait_for_text("Your subscription is being activated", WAIT);
            let _ = report.send((browser.current_url(), page));
        });
        Ok(())
    });
    let data = tempfile::tempdir().unwrap();
    let mut app = shop.game(data.path(), &user_id, &token, open);
    app.world_mut().write_message(SignUpForSubscription { product_code: "SEASONPASS".into() });
    run_until(&mut app, WAIT, "signed up and activated", |app| {
        collected::<SubscriptionEvent>(app)
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Activated(_) | SubscriptionEvent::ActivationFailed { .. }))
    });
    let events = collected::<SubscriptionEvent>(&app).to_vec();
    assert!(
        matches!(&events[0], SubscriptionEvent::SignUpOpened { url, .. } if url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A")),
        "{events:?}"
    );
    assert_eq!(events[1], SubscriptionEvent::SignUpReturned { product_code: "SEASONPASS".into() });
    let SubscriptionEvent::Activated(status) = &events[2] else { panic!("{events:?}") };
    assert!(status.active && status.monthly_fee_cents == 999 && !status.cancel_at_period_end, "{status:?}");
    let (landed, page) = browser_result.recv_timeout(WAIT).unwrap();
    assert!(
        landed.starts_with("http://127.0.0.1:") && landed.contains(&format!("{SIGNUP_RETURN_PATH}?ActivationKey="))
    );
    assert!(page.contains("Return to the game"));

    // The perks arrive by themselves: an activation triggers a pull.
    run_until(&mut app, WAIT, "perks granted", |app| collected::<EntitlementGranted>(app).len() == 1);
    let grant = &collected::<EntitlementGranted>(&app)[0];
    assert_eq!(grant.source.as_deref(), Some("SUBSCRIPTION"));
    assert_eq!(grant.active_until, status.paid_until, "a time-bounded grant: until the paid time runs out");
    let first_until = month_of(status.paid_until.as_deref().unwrap());
    let perks = inventory(&mut app);
    assert!(perks.has("season_badge") && perks.has("double_coins"), "{perks:?}");

    // Month 1 at $9.99; a price change the player sees before it applies; month 2 at $12.99.
    shop.advance_clock();
    let change = DevPayPriceChange { monthly_fee_cents: 1299 };
    shop.fixture.admin.change_devpay_price("SEASONPASS", &change).unwrap();
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "price change announced", |app| {
        subscription(app).is_some_and(|s| s.current_period == 1 && s.next_monthly_fee_cents == 1299)
    });
    assert_eq!(subscription(&app).unwrap().monthly_fee_cents, 999, "this month still at the old price");
    shop.advance_clock();
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "new price in force", |app| {
        subscription(app).is_some_and(|s| s.current_period == 2 && s.monthly_fee_cents == 1299)
    });
    let expected: Vec<(i64, String, i64, bool)> =
        [(0, "signup", 500), (0, "monthly", 999), (1, "monthly", 999), (2, "monthly", 1299)]
            .into_iter()
            .map(|(period, kind, cents)| (period, kind.to_owned(), cents, true))
            .collect();
    assert_eq!(shop.bills(&user_id), expected, "each month billed at the price in force for it");
    assert_eq!(month_of(subscription(&app).unwrap().paid_until.as_deref().unwrap()), first_until + 2, "renewed twice");

    // The player sees the same bills on the billing page the game opens, and cancels there.
    let (opener, opened) = recording_opener();
    app.world_mut().resource_mut::<RewardsConfig>().login.open_browser = opener;
    app.world_mut().write_message(OpenBillingPage);
    run_for(&mut app, Duration::from_millis(50));
    let billing_url = opened.recv_timeout(WAIT).unwrap();
    assert_eq!(billing_url, format!("{}/devpay/billing", shop.sandbox));
    let browser = webdriver::Browser::launch();
    browser.goto(&billing_url);
    browser.wait_for_text("Application Billing", WAIT);
    browser.type_into("#email", "pass@example.com");
    browser.type_into("#password", "pw");
    browser.click("#continue");
    let page = browser.wait_for_text("Month 2: monthly $12.99 paid", WAIT);
    assert!(page.contains("3 months of service, $37.97 paid in all."), "usage shown: {page}");
    for bill in ["Month 0: signup $5.00 paid", "Month 0: monthly $9.99 paid", "Month 1: monthly $9.99 paid"] {
        assert!(page.contains(bill), "{bill} in {page}");
    }
    browser.click("#cancel-SEASONPASS");
    browser.wait_for_text("active until the end of month 2, then cancelled", WAIT);

    // Amazon Payments' e-mails, in the customer's mailbox: newest first, each openable.
    browser.goto(&format!("{}/mailbox", shop.sandbox));
    browser.wait_for_text("Your messages from Amazon Payments", WAIT);
    browser.type_into("#email", "pass@example.com");
    browser.type_into("#password", "pw");
    browser.click("#continue");
    let list = browser.wait_for_text("Your subscription to", WAIT);
    let order = ["is cancelled", "bill for", "price of", "bill for", "Your subscription to"];
    let mut at = 0;
    for subject in order {
        let found = list[at..].find(subject).unwrap_or_else(|| panic!("{subject} after {at} in {list}"));
        at += found + subject.len();
    }
    let newest = list.split("id=\"open-").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
    browser.click(&format!("#open-{newest}"));
    let mail = browser.wait_for_text("you will not be charged again", WAIT);
    assert!(mail.contains("From: Amazon Payments") && !mail.contains("DevPay"), "{mail}");

    // Cancelled: the perks stay until the paid month ends.
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "cancellation seen", |app| subscription(app).is_some_and(|s| s.cancel_at_period_end));
    assert!(subscription(&app).unwrap().active, "still paid for this month");
    app.world_mut().write_message(StoreVisited);
    run_for(&mut app, Duration::from_millis(500));
    assert!(inventory(&mut app).has("double_coins"), "perks stay until the month ends");

    // The month ends; the backend's scheduled verification notices; the game takes the perks back, once.
    shop.advance_clock();
    let started = std::time::Instant::now();
    while collected::<EntitlementRevoked>(&app).is_empty() {
        assert!(started.elapsed() < WAIT, "perks never removed");
        run_for(&mut app, Duration::from_millis(100));
        app.world_mut().write_message(PullEntitlements);
    }
    let perks = inventory(&mut app);
    assert!(!perks.has("season_badge") && !perks.has("double_coins"), "{perks:?}");
    run_until(&mut app, WAIT, "the end is seen", |app| subscription(app).is_some_and(|s| !s.active));
    assert!(
        collected::<SubscriptionEvent>(&app)
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Changed(s) if s.status == "cancelled"))
    );
    for _ in 0..3 {
        app.world_mut().write_message(PullEntitlements);
        run_for(&mut app, Duration::from_millis(150));
    }
    assert_eq!(collected::<EntitlementGranted>(&app).len(), 1, "granted once");
    assert_eq!(collected::<EntitlementRevoked>(&app).len(), 1, "taken back once");
    assert_eq!(shop.bills(&user_id).len(), 4, "nothing billed after the cancellation");
}

#[test]
fn typed_keys_malformed_unknown_used_and_other_customers_are_refused() {
    let shop = Shop::open();
    let (user_id, token) = shop.player("typist@example.com");
    let (_other_id, other_token) = shop.player("other@example.com");
    let key = shop.sign_up_over_http("typist@example.com");
    let others_key = shop.sign_up_over_http("other@example.com");
    let data = tempfile::tempdir().unwrap();
    let (opener, _opened) = recording_opener();
    let mut app = shop.game(data.path(), &user_id, &token, opener);

    assert_eq!(activate(&mut app, "NOSUCHKEY"), refused("InvalidActivationKey"));
    assert_eq!(activate(&mut app, ""), refused("InvalidActivationKey"));
    assert_eq!(activate(&mut app, "'; DROP TABLE keys; --\u{1F511}"), refused("InvalidActivationKey"));
    // Another customer's key: refused, and left unused for its owner.
    assert_eq!(activate(&mut app, &others_key), refused("ActivationKeyNotForCustomer"));
    let owner_activates = shop.block_on(async {
        shop.http
            .post(format!("{}/api/devpay/activate", shop.studio.backend.url()))
            .header("x-amz-access-token", &other_token)
            .json(&json!({"ActivationKey": others_key, "ProductCode": "SEASONPASS"}))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(owner_activates.status(), reqwest::StatusCode::OK);

    match activate(&mut app, &key.to_lowercase()) {
        SubscriptionEvent::Activated(status) => assert!(status.active, "{status:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(activate(&mut app, &key), refused("ActivationKeyAlreadyUsed"));
    run_until(&mut app, WAIT, "perks granted", |app| collected::<EntitlementGranted>(app).len() == 1);
    assert!(inventory(&mut app).has("season_badge"));

    // Malformed bodies and unknown products at the backend answer clear errors, never a 5xx.
    let backend = shop.studio.backend.url();
    for (body, code) in [
        ("{\"ActivationKey\": 7}", "invalid_request"),
        ("not json", "invalid_request"),
        ("{\"ActivationKey\": \"K\", \"ProductCode\": \"NOPE\"}", "UnknownProduct"),
    ] {
        let answer: Value = shop.block_on(async {
            shop.http
                .post(format!("{backend}/api/devpay/activate"))
                .header("x-amz-access-token", &token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        assert_eq!(answer["error"], code, "{body}");
    }
}

#[test]
fn a_sign_up_return_that_is_not_ours_activates_nothing() {
    let shop = Shop::open();
    let (user_id, token) = shop.player("wary@example.com");
    let (opener, opened) = recording_opener();
    let data = tempfile::tempdir().unwrap();
    let mut app = shop.game(data.path(), &user_id, &token, opener);
    app.world_mut().write_message(SignUpForSubscription { product_code: "SEASONPASS".into() });
    run_for(&mut app, Duration::from_millis(50));
    let url = url::Url::parse(&opened.recv_timeout(WAIT).unwrap()).unwrap();
    let listener = url.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    // Something else on the machine calls the listener with a key but without the sign-up's state.
    let key = shop.sign_up_over_http("wary@example.com");
    let forged = shop.block_on(async {
        reqwest::get(format!("{listener}?ActivationKey={key}&ProductCode=SEASONPASS&state=guess")).await.unwrap()
    });
    assert_eq!(forged.status(), reqwest::StatusCode::BAD_REQUEST);
    run_for(&mut app, Duration::from_millis(200));
    let ended =
        collected::<SubscriptionEvent>(&app).iter().any(|e| matches!(e, SubscriptionEvent::ActivationFailed { .. }));
    assert!(!ended, "a forged return neither activates nor ends the player's own sign-up");
    assert!(subscription(&app).is_none(), "nothing activated");
    // The key was not spent: typed in, it still works.
    assert!(matches!(activate(&mut app, &key), SubscriptionEvent::Activated(_)));
}

#[test]
fn a_payment_problem_suspends_the_subscription_takes_the_perks_back_and_a_fixed_payment_restores_it() {
    let shop = Shop::open();
    let (user_id, token) = shop.player("late@example.com");
    let key = shop.sign_up_over_http("late@example.com");
    let data = tempfile::tempdir().unwrap();
    let (opener, opened) = recording_opener();
    let mut app = shop.game(data.path(), &user_id, &token, opener);
    assert!(matches!(activate(&mut app, &key), SubscriptionEvent::Activated(_)));
    run_until(&mut app, WAIT, "perks granted", |app| inventory(app).has("double_coins"));

    // The card on file fails at the next monthly bill: suspended, perks gone, the failed bill on record.
    shop.fixture.admin.set_payment_problem(&user_id, true).unwrap();
    shop.advance_clock();
    let started = std::time::Instant::now();
    while collected::<EntitlementRevoked>(&app).is_empty() {
        assert!(started.elapsed() < WAIT, "perks never removed");
        run_for(&mut app, Duration::from_millis(100));
        app.world_mut().write_message(PullEntitlements);
    }
    assert!(!inventory(&mut app).has("double_coins") && !inventory(&mut app).has("season_badge"));
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "suspension seen", |app| {
        subscription(app).is_some_and(|s| s.status == "suspended" && !s.active)
    });
    assert_eq!(shop.bills(&user_id).last().unwrap(), &(1, "monthly".to_owned(), 999, false));

    // The game prompts to fix the payment: the billing page opens. Fixed, the next bill is charged and the
    // subscription is active again.
    assert!(subscription(&app).unwrap().payment_problem());
    app.world_mut().write_message(OpenBillingPage);
    let mut page = None;
    run_until(&mut app, WAIT, "the billing page opened", |_| {
        page = page.take().or_else(|| opened.try_recv().ok());
        page.is_some()
    });
    let page = page.unwrap();
    assert!(page.contains("/devpay/billing"), "{page}");
    shop.fixture.admin.set_payment_problem(&user_id, false).unwrap();
    shop.advance_clock();
    app.world_mut().write_message(RefreshSubscriptions);
    run_until(&mut app, WAIT, "active again", |app| {
        app.world_mut().write_message(RefreshSubscriptions);
        subscription(app).is_some_and(|s| s.active && !s.payment_problem())
    });
    assert_eq!(shop.bills(&user_id).last().unwrap(), &(2, "monthly".to_owned(), 999, true), "charged this time");
}

#[test]
fn sign_up_on_another_device_returns_to_the_backend_once() {
    assert!(
        webdriver::available(),
        "install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let shop = Shop::open();
    let (user_id, token) = shop.player("couch@example.com");
    let data = tempfile::tempdir().unwrap();
    let (opener, opened) = recording_opener();
    let mut app = shop.game(data.path(), &user_id, &token, opener);
    app.world_mut().write_message(SignUpOnAnotherDevice { product_code: "SEASONPASS".into() });
    run_until(&mut app, WAIT, "a link to show", |app| {
        collected::<SubscriptionEvent>(app).iter().any(|e| matches!(e, SubscriptionEvent::SignUpLinkReady { .. }))
    });
    let Some(SubscriptionEvent::SignUpLinkReady { url, .. }) = collected::<SubscriptionEvent>(&app).first().cloned()
    else {
        panic!("{:?}", collected::<SubscriptionEvent>(&app))
    };
    assert!(opened.try_recv().is_err(), "nothing opens on this device");

    // The player's phone: a real browser signs up; the confirmation returns to the studio backend.
    let phone = webdriver::Browser::launch();
    sign_up_in(&phone, &url, "couch@example.com");
    phone.wait_for_text("Your subscription is active. Return to the game.", WAIT);
    let returned = phone.current_url();
    assert!(returned.starts_with(&format!("{}/devpay/return?ActivationKey=", shop.studio.backend.url())), "{returned}");

    // The game notices on its own, and the perks follow.
    run_until(&mut app, WAIT, "activation noticed", |app| {
        collected::<SubscriptionEvent>(app).iter().any(|e| matches!(e, SubscriptionEvent::Activated(_)))
    });
    assert!(subscription(&app).is_some_and(|s| s.active));
    run_until(&mut app, WAIT, "perks granted", |app| inventory(app).has("double_coins"));

    // The return link works once; a forged state activates nothing.
    phone.goto(&returned);
    phone.wait_for_text("unknown, used or expired", WAIT);
    let forged = returned.replace("state=", "state=x");
    phone.goto(&forged);
    phone.wait_for_text("unknown, used or expired", WAIT);
    run_for(&mut app, Duration::from_millis(300));
    assert_eq!(collected::<EntitlementGranted>(&app).len(), 1, "granted once");
}

/// With a server-owned inventory the perks are flags on the server: on while paid (through the paid-through
/// day), off when a payment problem suspends the subscription.
#[test]
fn with_a_server_inventory_the_perks_are_flags_while_paid_go_when_suspended_and_return_once_paid() {
    use amazon_rewards_backend::inventory::{InventoryConfig, catalog::ServerCatalog};
    let catalog = ServerCatalog::load(&std::path::Path::new(&assets_dir()).join("rewards.catalog.json")).unwrap();
    let shop = Shop::open_with(|config| config.inventory = Some(InventoryConfig::new(catalog)));
    let (user_id, token) = shop.player("flags@example.com");
    let key = shop.sign_up_over_http("flags@example.com");
    let base = shop.studio.backend.url();
    let request = |method: &str, path: &str, body: Option<serde_json::Value>| {
        let url = format!("{base}{path}");
        shop.block_on(async {
            let http = reqwest::Client::new();
            let request = if method == "GET" { http.get(url) } else { http.post(url).json(&body.unwrap()) };
            let answer = request.bearer_auth(&token).send().await.unwrap();
            (answer.status().as_u16(), answer.json::<serde_json::Value>().await.unwrap_or_default())
        })
    };
    let activate = serde_json::json!({"ActivationKey": key, "ProductCode": "SEASONPASS"});
    let (status, answer) = request("POST", amazon_rewards_protocol::devpay::ACTIVATE_PATH, Some(activate));
    assert_eq!(status, 200, "{answer}");
    let flags = |snapshot: &serde_json::Value| -> Vec<(String, bool)> {
        snapshot["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["item"].as_str().unwrap().to_owned(), i["active_until"].is_i64()))
            .collect()
    };
    let (_, snapshot) = request("GET", "/api/inventory", None);
    assert_eq!(flags(&snapshot), [("double_coins".to_owned(), true), ("season_badge".to_owned(), true)], "{snapshot}");
    assert!(snapshot["items"].as_array().unwrap().iter().all(|i| i["quantity"] == 1));
    let version = snapshot["version"].as_i64().unwrap();

    // Verified again (same period): nothing changes; a payment problem at the next bill suspends it.
    shop.fixture.admin.set_payment_problem(&user_id, true).unwrap();
    shop.advance_clock();
    let started = std::time::Instant::now();
    loop {
        let (_, snapshot) = request("GET", "/api/inventory", None);
        if flags(&snapshot).is_empty() {
            assert!(snapshot["version"].as_i64().unwrap() > version);
            break;
        }
        assert!(started.elapsed() < WAIT, "perks never removed: {snapshot}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, history) = request("GET", "/api/inventory/history", None);
    let kinds: Vec<_> =
        history["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["revoke", "grant"], "{history}");
    assert!(history["changes"][0]["debt"].is_null(), "a flag taken back leaves no debt");

    // The player fixes the payment; the next bill is charged, and the perks come back by the normal grant path.
    shop.fixture.admin.set_payment_problem(&user_id, false).unwrap();
    shop.advance_clock();
    let started = std::time::Instant::now();
    loop {
        let (_, snapshot) = request("GET", "/api/inventory", None);
        if flags(&snapshot).len() == 2 {
            break;
        }
        assert!(started.elapsed() < WAIT, "perks never restored: {snapshot}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, history) = request("GET", "/api/inventory/history", None);
    let kinds: Vec<_> =
        history["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["grant", "revoke", "grant"], "{history}");
}
