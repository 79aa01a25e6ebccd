//! A Moments app at the sandbox for tests: an API key, campaigns in any state, their reports, and the backend's
//! Moments settings for them.

use std::collections::HashMap;

use amazon_rewards_backend::moments::{MomentCampaign, MomentsConfig};
use amazon_rewards_protocol::moments::CampaignState;
use amazon_rewards_protocol::moments::RewardKind;
use amazon_rewards_protocol::moments::admin::{Campaign, NewCampaign, RedemptionReport};
use amazon_rewards_sandbox::admin::BlockingClient;

use super::Fixture;

/// A Moments app at the sandbox: its API key and live campaigns.
pub struct Rewards {
    pub sandbox: String,
    pub api_key: String,
    pub admin: BlockingClient,
}

impl Rewards {
    pub fn new(fixture: &Fixture) -> Self {
        let admin = BlockingClient::new(&fixture.url());
        let key = admin.create_moments_api_key().unwrap();
        Self { sandbox: fixture.url(), api_key: key.api_key, admin }
    }

    pub fn campaign(&self, cost: i64, budget: i64, state: CampaignState) -> String {
        let body = NewCampaign {
            api_key: self.api_key.clone(),
            name: "Five deposits".into(),
            kind: RewardKind::Digital,
            title: "500 bonus gems".into(),
            description: "For making 5 deposits at the bank.".into(),
            image_url: "https://example.com/gems.png".into(),
            cost_per_moment_cents: cost,
            budget_cents: budget,
            inventory: 100,
        };
        let campaign: Campaign = self.admin.create_campaign(&body).unwrap();
        for next in [CampaignState::PendingApproval, CampaignState::ApprovedTest, CampaignState::Live] {
            self.transition(&campaign.campaign_id, next);
            if next == state {
                break;
            }
        }
        campaign.campaign_id
    }

    pub fn transition(&self, id: &str, state: CampaignState) {
        let moved = self.admin.set_campaign_state(id, state);
        assert!(moved.is_ok(), "{id} → {state:?}: {moved:?}");
    }

    pub fn suspend(&self, id: &str) {
        self.transition(id, CampaignState::Suspended);
    }

    pub fn report(&self, id: &str) -> RedemptionReport {
        self.admin.campaign_report(id).unwrap()
    }

    pub fn config(&self, moments: &[(&str, &str, i64, i64)]) -> MomentsConfig {
        self.config_with_key(&self.api_key, moments)
    }

    pub fn config_with_key(&self, key: &str, moments: &[(&str, &str, i64, i64)]) -> MomentsConfig {
        let mut config = MomentsConfig::new(self.sandbox.clone(), key);
        config.moments = moments
            .iter()
            .map(|(moment, campaign, cost, budget)| {
                let campaign = MomentCampaign {
                    campaign_id: (*campaign).into(),
                    cost_per_moment_cents: *cost,
                    budget_cents: *budget,
                };
                ((*moment).to_owned(), campaign)
            })
            .collect::<HashMap<_, _>>();
        config
    }
}
