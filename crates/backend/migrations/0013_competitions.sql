CREATE TABLE competitions (
    id            TEXT PRIMARY KEY,
    definition    TEXT NOT NULL,
    ends_at       BIGINT NOT NULL,
    closing_until BIGINT NOT NULL DEFAULT 0,
    closed_at     BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX competitions_to_close ON competitions(closed_at, ends_at);
CREATE TABLE competition_scores (
    competition_id TEXT NOT NULL REFERENCES competitions(id),
    user_id        TEXT NOT NULL REFERENCES accounts(user_id),
    best           BIGINT NOT NULL,
    reached_at     BIGINT NOT NULL,
    trusted        BIGINT NOT NULL,
    last_client_at BIGINT,
    PRIMARY KEY (competition_id, user_id)
);
CREATE TABLE competition_submissions (
    competition_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    submission_key TEXT NOT NULL,
    answer         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (competition_id, user_id, submission_key)
);
CREATE TABLE competition_refusals (
    competition_id TEXT NOT NULL,
    reason         TEXT NOT NULL,
    refused        BIGINT NOT NULL,
    PRIMARY KEY (competition_id, reason)
);
CREATE TABLE competition_results (
    competition_id TEXT NOT NULL REFERENCES competitions(id),
    place          BIGINT NOT NULL,
    user_id        TEXT NOT NULL,
    score          BIGINT NOT NULL,
    trusted        BIGINT NOT NULL,
    moment         TEXT,
    status         TEXT NOT NULL,
    reason         TEXT,
    reward_id      TEXT,
    reward_url     TEXT,
    paying_until   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (competition_id, place)
);
CREATE INDEX competition_results_to_pay ON competition_results(status);
