-- Member tiers as last evaluated, to tell upgrades and downgrades.
CREATE TABLE loyalty_tiers (
    user_id      TEXT PRIMARY KEY,
    tier         TEXT NOT NULL,
    since        INTEGER NOT NULL,
    evaluated_at INTEGER NOT NULL
);
