-- Segment and tag transitions, durable and in order (store::transitions): the log that
-- segment- and tag-triggered journeys follow behind a stored cursor, and the membership
-- it leads to, kept in the same transaction as each append so a membership change is
-- logged exactly once. Times are ms.
CREATE TABLE audience_transitions (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL,      -- segment | tag
    name       TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    change     TEXT NOT NULL,      -- entered | exited
    at         BIGINT NOT NULL,
    cause      TEXT NOT NULL       -- event | time | merge | manual | definition | reconcile
);
-- (The membership tables are in 020_audience_members.sql, shared by both dialects.)
