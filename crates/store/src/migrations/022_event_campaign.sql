-- The campaign an event carries (context.campaign.name / .source: the utm parameters),
-- written when the event is stored, so attribution selects events with a campaign by a
-- real predicate instead of `body LIKE '%"campaign"%'`. Events stored earlier are filled
-- in by the migration's backfill (store::analytics::touches::backfill), which then drops
-- the old `events_campaign_ts` index.
ALTER TABLE events ADD COLUMN campaign_name TEXT;
ALTER TABLE events ADD COLUMN campaign_source TEXT;
-- Covering: attribution reads a period's touches from the index alone, never the rows
-- (whose bodies come before these columns).
CREATE INDEX events_campaign_at ON events (ts, user_id, campaign_name, campaign_source)
    WHERE campaign_name IS NOT NULL;
