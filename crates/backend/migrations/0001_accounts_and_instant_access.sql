CREATE TABLE accounts (
    user_id        TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    amazon_user_id TEXT UNIQUE,
    created_at     BIGINT NOT NULL
);
CREATE TABLE ia_purchases (
    purchase_token TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES accounts(user_id),
    product_id     TEXT NOT NULL,
    revoked        BIGINT NOT NULL DEFAULT 0,
    revoke_reason  TEXT,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX ia_purchases_by_user ON ia_purchases(user_id);
CREATE TABLE ia_subscriptions (
    subscription_id   TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES accounts(user_id),
    product_id        TEXT NOT NULL,
    active            BIGINT NOT NULL,
    deactivate_reason TEXT,
    period            TEXT,
    activated_at      BIGINT NOT NULL,
    deactivated_at    BIGINT
);
CREATE INDEX ia_subscriptions_by_user ON ia_subscriptions(user_id);
