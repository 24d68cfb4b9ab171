-- Journeys: definitions by version, runs (one per user and business key), the message
-- log, and per-channel consent.
CREATE TABLE journeys (
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE journey_status (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    status     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE journey_runs (
    id          TEXT PRIMARY KEY,
    journey     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    run_key     TEXT NOT NULL,
    step        BIGINT NOT NULL,
    state       TEXT NOT NULL,
    wait_event  TEXT,
    wait_until  BIGINT,
    path        TEXT NOT NULL,
    context     TEXT NOT NULL,
    entered_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    converted_at BIGINT
);
CREATE INDEX journey_runs_entry ON journey_runs (journey, user_id, run_key, entered_at);
CREATE INDEX journey_runs_wait ON journey_runs (wait_event, user_id) WHERE wait_event IS NOT NULL;
CREATE INDEX journey_runs_active ON journey_runs (journey, state);
CREATE INDEX journey_runs_user ON journey_runs (user_id);
CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    journey     TEXT,
    run_id      TEXT,
    step        TEXT,
    channel     TEXT NOT NULL,
    category    TEXT NOT NULL,
    campaign    TEXT,
    status      TEXT NOT NULL,
    reason      TEXT,
    address     TEXT,
    subject     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    delivered_at BIGINT,
    opened_at   BIGINT,
    clicked_at  BIGINT,
    converted_at BIGINT
);
CREATE INDEX messages_user ON messages (user_id, created_at);
CREATE INDEX messages_journey ON messages (journey, created_at);
CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    state      TEXT NOT NULL,
    source     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel)
);
