-- Work a workflow gave up on after repeated failures of its own (not store outages):
-- one row per (workflow, event seq), listed by the dead-letter API and CLI until a
-- retry succeeds (then the row is deleted). Times are ms.
CREATE TABLE dead_letters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    message_id      TEXT NOT NULL,
    user_id         TEXT,
    error           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failed_at INTEGER NOT NULL,
    last_failed_at  INTEGER NOT NULL,
    UNIQUE (workflow, seq)
);
