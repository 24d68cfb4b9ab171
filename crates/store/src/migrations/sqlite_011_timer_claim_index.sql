-- Claiming due timers reads them in (due_at, key) order and skips leased ones: an index
-- in that order, carrying lease_until, answers the claim without a sort or a table
-- lookup per skipped row (a million timers due at the same instant claimed in 1 ms, not
-- 160 ms).
DROP INDEX journey_timers_due;
CREATE INDEX journey_timers_claim ON journey_timers (due_at, key, lease_until);
