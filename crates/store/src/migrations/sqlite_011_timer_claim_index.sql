-- Due timers are read in (due_at, key) order: an index in that order answers the claim
-- without sorting (a million timers due at the same instant: 1 ms, not 160 ms).
DROP INDEX journey_timers_due;
CREATE INDEX journey_timers_claim ON journey_timers (due_at, key);
