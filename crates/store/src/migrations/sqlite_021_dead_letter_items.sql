-- Dead letters of workflows that do not follow the event log (a journey run's step):
-- every row is keyed by (workflow, item), `item` being the event seq in decimal for the
-- log followers (order rewards) and `RUN/STEP` for a journey step, which has no seq or
-- message id. SQLite cannot drop a table constraint, so the table is rebuilt.
CREATE TABLE dead_letters_v21 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow        TEXT NOT NULL,
    item            TEXT NOT NULL,
    seq             INTEGER,
    message_id      TEXT,
    user_id         TEXT,
    error           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failed_at INTEGER NOT NULL,
    last_failed_at  INTEGER NOT NULL,
    UNIQUE (workflow, item)
);
INSERT INTO dead_letters_v21 (id, workflow, item, seq, message_id, user_id, error, attempts, first_failed_at, last_failed_at)
    SELECT id, workflow, CAST(seq AS TEXT), seq, message_id, user_id, error, attempts, first_failed_at, last_failed_at
    FROM dead_letters;
DROP TABLE dead_letters;
ALTER TABLE dead_letters_v21 RENAME TO dead_letters;
