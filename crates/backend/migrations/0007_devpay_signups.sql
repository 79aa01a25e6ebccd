CREATE TABLE devpay_signups (
    state          TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES accounts(user_id),
    amazon_user_id TEXT NOT NULL,
    product_code   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    used_at        BIGINT
);
