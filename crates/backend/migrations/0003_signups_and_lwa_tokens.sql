CREATE TABLE account_signups (
    state         TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    return_url    TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE TABLE lwa_tokens (
    user_id       TEXT PRIMARY KEY REFERENCES accounts(user_id),
    refresh_token TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);
