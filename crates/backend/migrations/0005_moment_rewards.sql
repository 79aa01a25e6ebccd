CREATE TABLE moment_rewards (
    amazon_user_id TEXT NOT NULL,
    moment         TEXT NOT NULL,
    achievement    TEXT NOT NULL,
    campaign_id    TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT,
    reward_id      TEXT,
    reward_url     TEXT,
    title          TEXT,
    description    TEXT,
    image_url      TEXT,
    cost_cents     BIGINT NOT NULL,
    test           BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    rewarded_at    BIGINT,
    redeemed_at    BIGINT,
    PRIMARY KEY (amazon_user_id, moment)
);
CREATE INDEX moment_rewards_by_campaign ON moment_rewards(campaign_id, status);
