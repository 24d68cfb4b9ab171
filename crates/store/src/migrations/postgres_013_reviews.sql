-- Scheduled weekly and monthly reviews (R10.5): one per cadence and period, the report
-- as JSON, what the last sending came to, how often it was tried, and when it went out
-- to everyone (NULL: still to send).
CREATE TABLE reviews (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cadence     TEXT NOT NULL,
    period_from TEXT NOT NULL,
    period_to   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    body        TEXT NOT NULL,
    delivery    TEXT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    sent_at     BIGINT,
    UNIQUE (cadence, period_from)
);
