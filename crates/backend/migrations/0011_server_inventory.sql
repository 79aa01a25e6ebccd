CREATE TABLE inventory_versions (
    user_id      TEXT PRIMARY KEY REFERENCES accounts(user_id),
    version      BIGINT NOT NULL,
    last_sync_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE inventory_items (
    user_id      TEXT NOT NULL REFERENCES accounts(user_id),
    item         TEXT NOT NULL,
    quantity     BIGINT NOT NULL,
    active_until BIGINT,
    PRIMARY KEY (user_id, item)
);
CREATE TABLE inventory_changes (
    user_id    TEXT NOT NULL REFERENCES accounts(user_id),
    version    BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    source     TEXT NOT NULL,
    change_key TEXT NOT NULL,
    items      TEXT NOT NULL,
    debt       TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, version),
    UNIQUE (user_id, kind, change_key)
);
CREATE TABLE inventory_spends (
    user_id    TEXT NOT NULL REFERENCES accounts(user_id),
    spend_key  TEXT NOT NULL,
    status     BIGINT NOT NULL,
    answer     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, spend_key)
);
CREATE TABLE held_entitlements (
    entitlement_id TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES accounts(user_id),
    source         TEXT NOT NULL,
    sku            TEXT NOT NULL,
    held_at        BIGINT NOT NULL
);
CREATE TABLE prime_grants (
    entitlement_id TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES accounts(user_id),
    instruction    TEXT NOT NULL,
    granted_at     BIGINT NOT NULL,
    reported_at    BIGINT
);
CREATE INDEX prime_grants_unreported ON prime_grants(reported_at, user_id);
