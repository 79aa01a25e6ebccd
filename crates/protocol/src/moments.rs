//! Moments: the Rewards API (backend ↔ Amazon), the game ↔ backend calls, and the sandbox's campaign
//! admin shapes. The public record names the two calls (getRewardInfo, getReward), the `x-api-key` header,
//! the 5 calls/s per-key limit, test vs live reward URLs and the campaign states; paths and field names are
//! **sandbox-defined** and kept here, in one place.

use serde::{Deserialize, Serialize};

/// Header carrying the Moments API key (server-side only: never in a game).
pub const API_KEY_HEADER: &str = "x-api-key";
/// `POST` [`RewardRequest`] → [`RewardInfo`]: notification content; consumes nothing.
pub const GET_REWARD_INFO_PATH: &str = "/moments/v1/getRewardInfo";
/// `POST` [`RewardRequest`] → [`RewardGrant`]: consumes a reward (the billable event).
pub const GET_REWARD_PATH: &str = "/moments/v1/getReward";
/// `GET` `{REWARD_STATUS_PATH}/{reward_id}` → [`RewardStatus`].
pub const REWARD_STATUS_PATH: &str = "/moments/v1/rewards";
/// Calls per second allowed per API key.
pub const CALLS_PER_SECOND: u32 = 5;

/// `POST` path where the game reports a reached moment to the studio backend ([`MomentRequest`] →
/// [`MomentAnswer`]).
pub const MOMENT_PATH: &str = "/api/moments";
/// `GET` path of the challenges the game may announce (→ `Vec<Challenge>`).
pub const CHALLENGES_PATH: &str = "/api/moments/challenges";

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CampaignState {
    /// Being written; not callable.
    Draft,
    /// Submitted to Amazon.
    PendingApproval,
    /// Approved for testing: getReward answers one shared test URL and charges nothing.
    ApprovedTest,
    /// Live: a unique reward URL per customer, charged at the cost per moment.
    Live,
    /// Over; no more rewards.
    Finished,
    /// Refused by Amazon; back to Draft to edit.
    Rejected,
    /// Paused (by Amazon or the developer); may go Live again.
    Suspended,
}

impl CampaignState {
    /// Every state, in lifecycle order.
    pub const ALL: [CampaignState; 7] = [
        CampaignState::Draft,
        CampaignState::PendingApproval,
        CampaignState::ApprovedTest,
        CampaignState::Live,
        CampaignState::Finished,
        CampaignState::Rejected,
        CampaignState::Suspended,
    ];

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_become(self, next: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, next),
            (Draft, PendingApproval)
                | (PendingApproval, ApprovedTest)
                | (PendingApproval, Rejected)
                | (Rejected, Draft)
                | (ApprovedTest, Live)
                | (ApprovedTest, Suspended)
                | (Live, Suspended)
                | (Live, Finished)
                | (Suspended, Live)
                | (Suspended, Finished)
        )
    }

    /// Whether getReward hands out rewards in this state.
    pub fn hands_out_rewards(self) -> bool {
        matches!(self, CampaignState::ApprovedTest | CampaignState::Live)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "Draft",
            CampaignState::PendingApproval => "PendingApproval",
            CampaignState::ApprovedTest => "ApprovedTest",
            CampaignState::Live => "Live",
            CampaignState::Finished => "Finished",
            CampaignState::Rejected => "Rejected",
            CampaignState::Suspended => "Suspended",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// Physical items ship to an address; digital ones hand out a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RewardKind {
    /// A redemption code shown on the reward page.
    Digital,
    /// A shipping form on the reward page.
    Physical,
}

/// What the customer is told about a reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Headline, e.g. "Make 5 deposits, get a $5 credit".
    pub title: String,
    /// Longer text.
    pub description: String,
    /// Image shown with it.
    pub image_url: String,
}

/// Body of getRewardInfo and getReward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RewardRequest {
    /// The campaign.
    pub campaign_id: String,
    /// The app's own, stable id for the customer (one reward per customer per campaign).
    pub customer_id: String,
}

/// Answer of getRewardInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RewardInfo {
    /// The campaign.
    pub campaign_id: String,
    /// Where it stands.
    pub state: CampaignState,
    /// The content to show.
    pub notification: Notification,
    /// Whether getReward would hand out a reward now (state, budget and inventory allow it).
    pub available: bool,
}

/// Answer of getReward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RewardGrant {
    /// The reward handed out.
    pub reward_id: String,
    /// Where the customer claims it.
    pub reward_url: String,
    /// `true` when the campaign is in test mode (shared URL, nothing charged).
    pub test: bool,
    /// The content to show.
    pub notification: Notification,
}

/// Answer of the reward status call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RewardStatus {
    /// The reward.
    pub reward_id: String,
    /// Claimed by the customer on the reward page.
    pub redeemed: bool,
    /// When (Unix seconds).
    pub redeemed_at: Option<i64>,
}

/// Error codes of the Rewards API, in `{"error": code, "message": …}` bodies.
pub mod error_code {
    /// Missing or unknown `x-api-key` (HTTP 403).
    pub const INVALID_API_KEY: &str = "InvalidApiKey";
    /// More than [`super::CALLS_PER_SECOND`] calls in a second (HTTP 429, `Retry-After`).
    pub const RATE_LIMITED: &str = "RateLimitExceeded";
    /// No such campaign for this key (HTTP 404).
    pub const CAMPAIGN_NOT_FOUND: &str = "CampaignNotFound";
    /// The campaign is not Approved (test) or Live (HTTP 409).
    pub const CAMPAIGN_NOT_ACTIVE: &str = "CampaignNotActive";
    /// Another reward would exceed the budget (HTTP 409).
    pub const BUDGET_EXHAUSTED: &str = "BudgetExhausted";
    /// No rewards left in the inventory (HTTP 409).
    pub const OUT_OF_REWARDS: &str = "OutOfRewards";
}

/// What the game sends when a moment is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MomentRequest {
    /// The moment (e.g. `five-deposits`); the backend maps it to a campaign.
    pub moment: String,
    /// The game's achievement that reached it, for the studio's records.
    #[serde(default)]
    pub achievement: String,
}

/// A reward the player can claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reward {
    /// The reward's id.
    pub reward_id: String,
    /// The moment that earned it.
    pub moment: String,
    /// Where to claim it (open in the browser).
    pub reward_url: String,
    /// Headline.
    pub title: String,
    /// Longer text.
    pub description: String,
    /// Image to show.
    pub image_url: String,
}

/// The backend's answer to a [`MomentRequest`]. Delivered either way: the game drops it from its outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MomentAnswer {
    /// A reward was handed out (or had been, for a repeated report: the same reward again).
    Rewarded {
        /// The reward.
        reward: Reward,
    },
    /// No reward: `already_rewarded`, `budget_exhausted`, `out_of_rewards`, `campaign_not_active`.
    NotRewarded {
        /// The moment.
        moment: String,
        /// Why.
        reason: String,
    },
}

/// A challenge the game may announce before the moment is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// The moment that earns it.
    pub moment: String,
    /// Headline.
    pub title: String,
    /// Longer text.
    pub description: String,
    /// Image to show.
    pub image_url: String,
}

/// Sandbox admin shapes for Moments.
pub mod admin {
    use serde::{Deserialize, Serialize};

    use super::{CampaignState, RewardKind};

    /// `POST /admin/moments/api-keys` answer: a new key for an app.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct ApiKey {
        /// The key (shown once).
        pub api_key: String,
    }

    /// `POST /admin/moments/campaigns` body.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct NewCampaign {
        /// The API key that may call this campaign.
        pub api_key: String,
        /// Name in the console.
        pub name: String,
        /// Physical or digital.
        pub kind: RewardKind,
        /// Notification headline.
        pub title: String,
        /// Notification text.
        pub description: String,
        /// Notification image.
        pub image_url: String,
        /// What each live reward costs the developer, in cents.
        pub cost_per_moment_cents: i64,
        /// Spend limit, in cents.
        pub budget_cents: i64,
        /// Rewards in stock.
        pub inventory: i64,
    }

    /// A campaign as the admin API and console show it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Campaign {
        /// Id.
        pub campaign_id: String,
        /// Name.
        pub name: String,
        /// State.
        pub state: CampaignState,
        /// Cost per moment, cents.
        pub cost_per_moment_cents: i64,
        /// Budget, cents.
        pub budget_cents: i64,
        /// Spent so far, cents.
        pub spent_cents: i64,
        /// Rewards left in stock.
        pub inventory_remaining: i64,
    }

    /// `POST /admin/moments/campaigns/{id}/state` body.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Transition {
        /// The state to move to.
        pub state: CampaignState,
    }

    /// One reward in a redemption report.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct ReportedReward {
        /// Reward id.
        pub reward_id: String,
        /// The app's customer id.
        pub customer_id: String,
        /// Issued at (Unix seconds).
        pub issued_at: i64,
        /// Redeemed at (Unix seconds).
        pub redeemed_at: Option<i64>,
    }

    /// `GET /admin/moments/campaigns/{id}/report`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct RedemptionReport {
        /// The campaign.
        pub campaign: Campaign,
        /// Rewards issued (live).
        pub issued: i64,
        /// Rewards redeemed.
        pub redeemed: i64,
        /// Every live reward.
        pub rewards: Vec<ReportedReward>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_documented_moves() {
        use CampaignState::*;
        assert!(Draft.can_become(PendingApproval));
        assert!(!Draft.can_become(Live), "no campaign goes live without approval");
        assert!(Live.can_become(Suspended) && Suspended.can_become(Live));
        assert!(!Finished.can_become(Live), "finished is final");
        assert!(CampaignState::ALL.iter().all(|s| !Finished.can_become(*s)));
        for state in CampaignState::ALL {
            assert_eq!(CampaignState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn answers_are_tagged() {
        let answer = MomentAnswer::NotRewarded { moment: "m".into(), reason: "already_rewarded".into() };
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["outcome"], "not_rewarded");
        assert_eq!(serde_json::from_value::<MomentAnswer>(json).unwrap(), answer);
    }
}
