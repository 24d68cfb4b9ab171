-- Customer activity versus the system's own writes (docs/analytics.md, "Activity").
-- `system_write` = 1 marks an event Flywheel wrote itself (predicted-CLV traits, a
-- journey's set-trait step, imported customer attributes): it updates the profile but is
-- not something the customer did. `first_active`/`last_active` are a profile's first and
-- last customer event (NULL while it has none); `first_seen`/`last_seen` keep counting
-- every event.
ALTER TABLE events ADD COLUMN system_write BIGINT NOT NULL DEFAULT 0;
ALTER TABLE profiles ADD COLUMN first_active BIGINT;
ALTER TABLE profiles ADD COLUMN last_active BIGINT;
-- Written before this version: the predicted-CLV identify calls (no write key, traits
-- clv_*) and the journeys' set-trait identify calls.
UPDATE events SET system_write = 1
 WHERE kind = 'identify' AND ((source IS NULL AND body LIKE '%"clv_p_alive"%') OR source = 'journeys');
UPDATE profiles SET first_active = first_seen, last_active = last_seen;
