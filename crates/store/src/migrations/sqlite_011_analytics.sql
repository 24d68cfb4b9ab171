-- Analytics: spend entered per channel (and campaign), guardrail alerts, and the audit
-- log of automatic actions.
CREATE TABLE channel_costs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel    TEXT NOT NULL,
    campaign   TEXT,
    spent_at   INTEGER NOT NULL,
    amount     INTEGER NOT NULL,
    note       TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX channel_costs_at ON channel_costs (spent_at);
CREATE TABLE campaign_alerts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    campaign TEXT NOT NULL,
    rule     TEXT NOT NULL,
    detail   TEXT NOT NULL,
    action   TEXT NOT NULL
);
CREATE INDEX campaign_alerts_campaign ON campaign_alerts (campaign, rule, at);
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
