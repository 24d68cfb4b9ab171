-- Journeys: durable timers (a waiting step's wake-up) and the record of effects done
-- once per (journey run, step).
CREATE TABLE journey_timers (
    key         TEXT PRIMARY KEY,
    due_at      INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX journey_timers_due ON journey_timers (due_at);
CREATE TABLE journey_effects (
    key     TEXT PRIMARY KEY,
    result  TEXT NOT NULL,
    done_at INTEGER NOT NULL
);
