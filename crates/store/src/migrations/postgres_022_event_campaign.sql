-- The campaign an event carries (context.campaign.name / .source: the utm parameters),
-- written when the event is stored, so attribution selects events with a campaign by a
-- real predicate instead of `body LIKE '%"campaign"%'`. Events stored earlier are filled
-- in by the migration's backfill (store::analytics::touches::backfill), which then drops
-- the old `events_campaign_ts` index.
ALTER TABLE events ADD COLUMN campaign_name TEXT;
ALTER TABLE events ADD COLUMN campaign_source TEXT;
CREATE INDEX events_campaign_at ON events (ts) WHERE campaign_name IS NOT NULL;
