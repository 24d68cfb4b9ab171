-- A member's lots (earn entries) by user and kind: without it SQLite answered "this
-- user's lots" through loyalty_entries_lots (kind, …), reading every earn entry of the
-- shop for each posting, so points slowed as the ledger grew.
CREATE INDEX loyalty_entries_user_kind ON loyalty_entries (user_id, kind, id);
