ALTER TABLE ia_purchases ADD COLUMN fulfilled_at BIGINT;
ALTER TABLE ia_purchases ADD COLUMN revoke_reported_at BIGINT;
ALTER TABLE ia_subscriptions ADD COLUMN fulfilled_at BIGINT;
ALTER TABLE ia_subscriptions ADD COLUMN revoke_reported_at BIGINT;
CREATE INDEX accounts_by_amazon_user ON accounts(amazon_user_id);
