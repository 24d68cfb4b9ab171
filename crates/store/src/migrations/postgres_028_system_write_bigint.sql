-- `events.system_write` is bound as a 64-bit integer, like every integer the store
-- writes; a PostgreSQL store migrated while migration 023 declared it SMALLINT refused
-- every event insert ("error serializing parameter"). Same type as 023 declares now: a
-- no-op where it already is BIGINT.
ALTER TABLE events ALTER COLUMN system_write TYPE BIGINT;
