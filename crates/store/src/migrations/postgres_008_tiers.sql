-- Member tiers as last evaluated, to tell upgrades and downgrades.
CREATE TABLE loyalty_tiers (
    user_id      TEXT PRIMARY KEY,
    tier         TEXT NOT NULL,
    since        BIGINT NOT NULL,
    evaluated_at BIGINT NOT NULL
);
