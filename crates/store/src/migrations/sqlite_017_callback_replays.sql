-- Delivery-status callbacks already applied, by a digest of (channel, signed timestamp,
-- body): a byte-identical callback replayed while its signature is still fresh is
-- refused. A key is kept until its signature could no longer verify (expires_at, ms);
-- older keys are pruned as new ones come, so the table holds one tolerance window.
CREATE TABLE callback_replays (
    key        TEXT PRIMARY KEY,
    channel    TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX callback_replays_expiry ON callback_replays (expires_at);
