-- Nothing to do on SQLite: an INTEGER-affinity column takes any integer (the PostgreSQL
-- half of this migration widens `events.system_write` to BIGINT).
SELECT 1;
