-- Events that carry a campaign (context.campaign: utm parameters) by time: attribution
-- reads them for a period without reading every event body of the period.
CREATE INDEX events_campaign_ts ON events (ts) WHERE body LIKE '%"campaign"%';
