ALTER TABLE lwa_tokens ADD COLUMN refreshing_until BIGINT;
ALTER TABLE lwa_tokens ADD COLUMN access_token TEXT;
ALTER TABLE lwa_tokens ADD COLUMN access_expires_at BIGINT;
ALTER TABLE moment_rewards ADD COLUMN reserved_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE account_signups ADD COLUMN browser_hash TEXT;
CREATE TABLE moment_budgets (
    campaign_id    TEXT PRIMARY KEY,
    reserved_cents BIGINT NOT NULL
);
