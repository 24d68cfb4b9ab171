-- A spend entry may cover a period of shop-local days: `spent_at` is then the start of its
-- first day and `spent_until` the start of the day after its last (exclusive); reports
-- spread the amount evenly over those days. NULL: a one-off spend at `spent_at`.
ALTER TABLE channel_costs ADD COLUMN spent_until BIGINT;
