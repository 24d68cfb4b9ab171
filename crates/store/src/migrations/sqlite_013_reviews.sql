-- Scheduled weekly and monthly reviews (R10.5): one per cadence and period, the report
-- as JSON, what the last sending came to, how often it was tried, and when it went out
-- to everyone (NULL: still to send).
CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cadence     TEXT NOT NULL,
    period_from TEXT NOT NULL,
    period_to   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    body        TEXT NOT NULL,
    delivery    TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     INTEGER,
    UNIQUE (cadence, period_from)
);
