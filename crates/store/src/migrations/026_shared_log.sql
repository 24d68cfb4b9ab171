-- The shared log that every process of a deployment folds in the same order: one row
-- per committed ingest batch, keyed by the highest event `seq` it stored. `body` holds
-- the batch's identity merges and, per stored event in `seq` order, the profile it was
-- resolved to, so a process that did not ingest the batch rebuilds exactly the state of
-- the one that did.
CREATE TABLE event_batches (
    last_seq  BIGINT PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    events    BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX event_batches_at ON event_batches (at);

-- Leases: which process holds a role that only one may hold at a time (the audience
-- transitions recorder). A holder renews before `until_ms`; after it, anyone may claim.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
