ALTER TABLE ia_subscriptions ADD COLUMN licenses BIGINT;
