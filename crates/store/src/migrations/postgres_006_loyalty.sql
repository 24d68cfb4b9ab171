-- Loyalty: the append-only points ledger, which earn lots each debit consumed, and
-- birthday perks granted (one per user per year). Balances are derived, never stored.
CREATE TABLE loyalty_entries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        TEXT NOT NULL,
    delta          BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    source         TEXT NOT NULL,
    source_key     TEXT NOT NULL UNIQUE,
    lot_expires_at BIGINT,
    streak         BIGINT,
    shortfall      BIGINT,
    at             BIGINT NOT NULL
);
CREATE INDEX loyalty_entries_user ON loyalty_entries (user_id, id);
CREATE INDEX loyalty_entries_lots ON loyalty_entries (kind, lot_expires_at);
CREATE TABLE loyalty_lot_uses (
    entry_id BIGINT NOT NULL,
    lot_id   BIGINT NOT NULL,
    points   BIGINT NOT NULL,
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX loyalty_lot_uses_lot ON loyalty_lot_uses (lot_id);
CREATE TABLE loyalty_birthdays (
    user_id    TEXT NOT NULL,
    year       BIGINT NOT NULL,
    tier       TEXT NOT NULL,
    value      BIGINT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, year)
);
