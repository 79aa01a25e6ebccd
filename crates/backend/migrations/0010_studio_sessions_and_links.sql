CREATE TABLE studio_sessions (
    family_id     TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES accounts(user_id),
    client_id     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoke_reason TEXT
);
CREATE INDEX studio_sessions_by_user ON studio_sessions(user_id);
CREATE TABLE session_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES studio_sessions(family_id),
    kind       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX session_tokens_by_family ON session_tokens(family_id);
CREATE TABLE link_requests (
    state          TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    game_state     TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    lwa_verifier   TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE TABLE link_codes (
    code_hash      TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES accounts(user_id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE TABLE link_pairings (
    device_hash     TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    lwa_device_code TEXT NOT NULL,
    user_code       TEXT NOT NULL,
    interval_secs   BIGINT NOT NULL,
    next_poll_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    status          TEXT NOT NULL,
    user_id         TEXT REFERENCES accounts(user_id)
);
CREATE TABLE amazon_profiles (
    user_id    TEXT PRIMARY KEY REFERENCES accounts(user_id),
    name       TEXT NOT NULL,
    email      TEXT,
    updated_at BIGINT NOT NULL
);
ALTER TABLE accounts ADD COLUMN link_broken_at BIGINT;
ALTER TABLE accounts ADD COLUMN unlinked_amazon_hash TEXT;
CREATE INDEX accounts_by_unlinked_amazon_hash ON accounts(unlinked_amazon_hash);
