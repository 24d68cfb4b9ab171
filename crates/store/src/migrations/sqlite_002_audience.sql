-- Audience definitions (tags, segments) and manual tag assignments; events by name for counters.
CREATE TABLE audience_definitions (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE manual_tags (
    tag        TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (tag, profile_id)
);
CREATE INDEX manual_tags_profile ON manual_tags (profile_id);
CREATE INDEX events_name ON events (name, ts);
