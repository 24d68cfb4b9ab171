-- Scheduled weekly and monthly reviews (R10.5): one per cadence and period, the report
-- as JSON, and what sending it came to.
CREATE TABLE reviews (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cadence     TEXT NOT NULL,
    period_from TEXT NOT NULL,
    period_to   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    body        TEXT NOT NULL,
    delivery    TEXT,
    UNIQUE (cadence, period_from)
);
