CREATE TABLE devpay_subscriptions (
    persistent_id          TEXT PRIMARY KEY,
    user_id                TEXT NOT NULL REFERENCES accounts(user_id),
    product_code           TEXT NOT NULL,
    subscribed             BIGINT NOT NULL,
    status                 TEXT NOT NULL,
    paid_through_period    BIGINT NOT NULL,
    current_period         BIGINT NOT NULL,
    monthly_fee_cents      BIGINT NOT NULL,
    next_monthly_fee_cents BIGINT NOT NULL,
    cancel_at_period_end   BIGINT NOT NULL,
    verified_at            BIGINT NOT NULL,
    fulfilled_at           BIGINT,
    revoke_reported_at     BIGINT
);
CREATE INDEX devpay_subscriptions_by_user ON devpay_subscriptions(user_id);
