-- Saved funnels (owned by analytics): a named list of steps with its conversion window and
-- breakdown, run again by name from the CLI, the API and the console.
CREATE TABLE saved_funnels (
    name       TEXT PRIMARY KEY,
    steps      TEXT NOT NULL,
    window_ms  BIGINT NOT NULL,
    breakdown  TEXT,
    created_at BIGINT NOT NULL
);
