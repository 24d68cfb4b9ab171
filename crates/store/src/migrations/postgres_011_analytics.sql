-- Analytics: spend entered per channel (and campaign), guardrail alerts, and the audit
-- log of automatic actions.
CREATE TABLE channel_costs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel    TEXT NOT NULL,
    campaign   TEXT,
    spent_at   BIGINT NOT NULL,
    amount     BIGINT NOT NULL,
    note       TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX channel_costs_at ON channel_costs (spent_at);
CREATE TABLE campaign_alerts (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    campaign TEXT NOT NULL,
    rule     TEXT NOT NULL,
    detail   TEXT NOT NULL,
    action   TEXT NOT NULL
);
CREATE INDEX campaign_alerts_campaign ON campaign_alerts (campaign, rule, at);
CREATE TABLE audit_log (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
