//! Moments on the sandbox, over real HTTP: the campaign lifecycle (admin API and console page), getRewardInfo
//! and getReward behind `x-api-key` with the per-key rate limit, test vs live reward URLs, budget and inventory,
//! reward pages (a code, a shipping form) and the redemption report.

use amazon_rewards_protocol::moments::admin::{ApiKey, Campaign, NewCampaign, RedemptionReport, Transition};
use amazon_rewards_protocol::moments::{
    API_KEY_HEADER, CampaignState, GET_REWARD_INFO_PATH, GET_REWARD_PATH, RewardGrant, RewardInfo, RewardKind,
    RewardRequest,
};
use amazon_rewards_sandbox::admin::Client;
use amazon_rewards_sandbox::{RunningSandbox, SandboxConfig, serve};
use reqwest::StatusCode;
use serde_json::Value;

struct Moments {
    sandbox: RunningSandbox,
    http: reqwest::Client,
    key: String,
    admin: Client,
    _dir: tempfile::TempDir,
}

impl Moments {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = serve(SandboxConfig::new(0, dir.path().join("moments.db"))).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let admin = Client::new(&sandbox.url());
        let key = admin.create_moments_api_key().await.unwrap();
        Self { sandbox, http, admin, key: key.api_key, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    async fn campaign(&self, kind: RewardKind, cost: i64, budget: i64, inventory: i64) -> Campaign {
        let body = NewCampaign {
            api_key: self.key.clone(),
            name: "Five deposits".into(),
            kind,
            title: "Make 5 deposits, get 500 gems".into(),
            description: "Deposit coins at the bank five times.".into(),
            image_url: "https://example.com/gems.png".into(),
            cost_per_moment_cents: cost,
            budget_cents: budget,
            inventory,
        };
        self.admin.create_campaign(&body).await.unwrap()
    }

    async fn move_to(&self, id: &str, state: CampaignState) -> StatusCode {
        self.http
            .post(self.url(&format!("/admin/moments/campaigns/{id}/state")))
            .json(&Transition { state })
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn go_live(&self, id: &str) {
        for state in [CampaignState::PendingApproval, CampaignState::ApprovedTest, CampaignState::Live] {
            assert_eq!(self.move_to(id, state).await, StatusCode::OK);
        }
    }

    async fn call(&self, path: &str, key: &str, campaign: &str, customer: &str) -> reqwest::Response {
        let body = RewardRequest { campaign_id: campaign.into(), customer_id: customer.into() };
        self.http.post(self.url(path)).header(API_KEY_HEADER, key).json(&body).send().await.unwrap()
    }

    /// getReward, waiting out the per-key rate limit so tests that make many calls stay within it.
    async fn reward(&self, campaign: &str, customer: &str) -> reqwest::Response {
        loop {
            let response = self.call(GET_REWARD_PATH, &self.key, campaign, customer).await;
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                return response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    async fn report(&self, id: &str) -> RedemptionReport {
        self.admin.campaign_report(id).await.unwrap()
    }
}

#[tokio::test]
async fn the_lifecycle_allows_only_its_moves_and_only_active_campaigns_hand_out_rewards() {
    let m = Moments::start().await;
    let c = m.campaign(RewardKind::Digital, 100, 1000, 10).await;
    assert_eq!(c.state, CampaignState::Draft);
    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Live).await, StatusCode::CONFLICT, "no live without approval");
    let draft = m.reward(&c.campaign_id, "p1").await;
    assert_eq!(draft.status(), StatusCode::CONFLICT);
    assert_eq!(draft.json::<Value>().await.unwrap()["error"], "CampaignNotActive");

    assert_eq!(m.move_to(&c.campaign_id, CampaignState::PendingApproval).await, StatusCode::OK);
    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Rejected).await, StatusCode::OK);
    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Draft).await, StatusCode::OK);
    m.go_live(&c.campaign_id).await;
    assert_eq!(m.reward(&c.campaign_id, "p1").await.status(), StatusCode::OK);

    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Suspended).await, StatusCode::OK);
    let info: RewardInfo = m.call(GET_REWARD_INFO_PATH, &m.key, &c.campaign_id, "p2").await.json().await.unwrap();
    assert_eq!((info.state, info.available), (CampaignState::Suspended, false));
    let suspended = m.reward(&c.campaign_id, "p2").await;
    assert_eq!(suspended.json::<Value>().await.unwrap()["error"], "CampaignNotActive");
    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Live).await, StatusCode::OK);
    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Finished).await, StatusCode::OK);
    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Live).await, StatusCode::CONFLICT, "finished is final");
    assert_eq!(m.report(&c.campaign_id).await.issued, 1, "the suspended call charged nothing");
}

#[tokio::test]
async fn test_mode_shares_one_url_and_live_mode_gives_each_customer_one_reward() {
    let m = Moments::start().await;
    let c = m.campaign(RewardKind::Digital, 250, 10_000, 100).await;
    for state in [CampaignState::PendingApproval, CampaignState::ApprovedTest] {
        assert_eq!(m.move_to(&c.campaign_id, state).await, StatusCode::OK);
    }
    let a: RewardGrant = m.reward(&c.campaign_id, "alice").await.json().await.unwrap();
    let b: RewardGrant = m.reward(&c.campaign_id, "bob").await.json().await.unwrap();
    assert!(a.test && b.test);
    assert_eq!(a.reward_url, b.reward_url, "test mode answers the same URL every time");
    let test_page = m.http.get(&a.reward_url).send().await.unwrap().text().await.unwrap();
    assert!(test_page.contains("test mode"), "{test_page}");
    assert_eq!(m.report(&c.campaign_id).await.campaign.spent_cents, 0, "test rewards cost nothing");

    assert_eq!(m.move_to(&c.campaign_id, CampaignState::Live).await, StatusCode::OK);
    let a1: RewardGrant = m.reward(&c.campaign_id, "alice").await.json().await.unwrap();
    let b1: RewardGrant = m.reward(&c.campaign_id, "bob").await.json().await.unwrap();
    let a2: RewardGrant = m.reward(&c.campaign_id, "alice").await.json().await.unwrap();
    assert!(!a1.test);
    assert_ne!(a1.reward_url, b1.reward_url, "live mode: a unique URL per customer");
    assert_eq!(a1, a2, "a repeated call for the same customer is the same reward");
    let report = m.report(&c.campaign_id).await;
    assert_eq!((report.issued, report.campaign.spent_cents, report.campaign.inventory_remaining), (2, 500, 98));
}

#[tokio::test]
async fn budget_and_inventory_run_out_and_say_so() {
    let m = Moments::start().await;
    let by_budget = m.campaign(RewardKind::Digital, 300, 700, 100).await;
    m.go_live(&by_budget.campaign_id).await;
    let by_stock = m.campaign(RewardKind::Digital, 1, 10_000, 1).await;
    m.go_live(&by_stock.campaign_id).await;

    assert_eq!(m.reward(&by_budget.campaign_id, "c1").await.status(), StatusCode::OK);
    assert_eq!(m.reward(&by_budget.campaign_id, "c2").await.status(), StatusCode::OK);
    let third = m.reward(&by_budget.campaign_id, "c3").await;
    assert_eq!(third.status(), StatusCode::CONFLICT);
    assert_eq!(third.json::<Value>().await.unwrap()["error"], "BudgetExhausted");
    let info: RewardInfo =
        m.call(GET_REWARD_INFO_PATH, &m.key, &by_budget.campaign_id, "c3").await.json().await.unwrap();
    assert!(!info.available);
    assert_eq!(m.report(&by_budget.campaign_id).await.campaign.spent_cents, 600, "never past the budget");

    assert_eq!(m.reward(&by_stock.campaign_id, "c1").await.status(), StatusCode::OK);
    let none_left = m.reward(&by_stock.campaign_id, "c2").await;
    assert_eq!(none_left.json::<Value>().await.unwrap()["error"], "OutOfRewards");
}

#[tokio::test]
async fn the_rewards_api_refuses_forged_keys_other_apps_campaigns_and_more_than_five_calls_a_second() {
    let m = Moments::start().await;
    let c = m.campaign(RewardKind::Digital, 1, 100, 10).await;
    m.go_live(&c.campaign_id).await;
    let forged = m.call(GET_REWARD_PATH, "amzn-moments-forged", &c.campaign_id, "p").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"], "InvalidApiKey");
    let missing = m
        .http
        .post(m.url(GET_REWARD_PATH))
        .json(&RewardRequest { campaign_id: c.campaign_id.clone(), customer_id: "p".into() });
    assert_eq!(missing.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let other: ApiKey = m.admin.create_moments_api_key().await.unwrap();
    let not_theirs = m.call(GET_REWARD_PATH, &other.api_key, &c.campaign_id, "p").await;
    assert_eq!(not_theirs.status(), StatusCode::NOT_FOUND, "another app's key cannot use this campaign");
    let malformed = m.http.post(m.url(GET_REWARD_PATH)).header(API_KEY_HEADER, &m.key).body("{").send().await.unwrap();
    assert!(malformed.status().is_client_error());

    // A fresh window: five calls pass, the sixth is limited with Retry-After, and the window slides.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let response = m.call(GET_REWARD_INFO_PATH, &m.key, &c.campaign_id, "p").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(response.status());
    }
    assert_eq!(&statuses[..5], &[StatusCode::OK; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("1"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(m.call(GET_REWARD_INFO_PATH, &m.key, &c.campaign_id, "p").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reward_pages_hand_out_a_code_or_take_a_shipping_address_once_and_the_report_shows_it() {
    let m = Moments::start().await;
    let digital = m.campaign(RewardKind::Digital, 10, 1000, 10).await;
    m.go_live(&digital.campaign_id).await;
    let physical = m.campaign(RewardKind::Physical, 10, 1000, 10).await;
    m.go_live(&physical.campaign_id).await;

    let code_reward: RewardGrant = m.reward(&digital.campaign_id, "alice").await.json().await.unwrap();
    let page = m.http.get(&code_reward.reward_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Make 5 deposits, get 500 gems") && page.contains(r#"id="claim""#), "{page}");
    let claimed = m.http.post(&code_reward.reward_url).form(&[("x", "")]).send().await.unwrap().text().await.unwrap();
    let code = claimed.split(r#"id="reward-code" style="font-size:1.4em">"#).nth(1).unwrap().split('<').next().unwrap();
    assert_eq!(code.len(), 12, "{claimed}");
    let again = m.http.post(&code_reward.reward_url).form(&[("x", "")]).send().await.unwrap().text().await.unwrap();
    assert!(again.contains(code), "claiming twice shows the same code");

    let shipped: RewardGrant = m.reward(&physical.campaign_id, "bob").await.json().await.unwrap();
    let incomplete = m.http.post(&shipped.reward_url).form(&[("name", "Bob")]).send().await.unwrap();
    assert_eq!(incomplete.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(m.report(&physical.campaign_id).await.redeemed, 0, "an incomplete form redeems nothing");
    let form = [
        ("name", "Bob <b>"),
        ("address", "1 Main St"),
        ("city", "Seattle"),
        ("postal_code", "98101"),
        ("country", "US"),
    ];
    let done = m.http.post(&shipped.reward_url).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(done.contains("Bob &lt;b&gt;, 1 Main St, 98101 Seattle, US"), "{done}");

    let report = m.report(&digital.campaign_id).await;
    assert_eq!((report.issued, report.redeemed), (1, 1));
    assert!(report.rewards[0].redeemed_at.is_some());
    let html = m.http.get(m.url(&format!("/moments/console/{}/report", digital.campaign_id))).send().await.unwrap();
    assert!(html.text().await.unwrap().contains(r#"redeemed <span id="redeemed">1</span>"#));
    assert_eq!(m.http.get(m.url("/moments/r/not-a-reward")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_console_page_lists_campaigns_and_moves_them() {
    let m = Moments::start().await;
    let c = m.campaign(RewardKind::Digital, 10, 1000, 10).await;
    let console = m.http.get(m.url("/moments/console")).send().await.unwrap().text().await.unwrap();
    assert!(console.contains(&c.campaign_id) && console.contains(r#"data-state="PendingApproval""#), "{console}");
    assert!(!console.contains(r#"data-state="Live""#), "only allowed moves are offered");
    let moved = m
        .http
        .post(m.url(&format!("/moments/console/{}/state", c.campaign_id)))
        .form(&[("state", "PendingApproval")])
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    let campaign: Campaign = m.admin.campaign(&c.campaign_id).await.unwrap();
    assert_eq!(campaign.state, CampaignState::PendingApproval);
    let illegal = m
        .http
        .post(m.url(&format!("/moments/console/{}/state", c.campaign_id)))
        .form(&[("state", "Finished")])
        .send()
        .await
        .unwrap();
    assert_eq!(illegal.status(), StatusCode::CONFLICT);
}
