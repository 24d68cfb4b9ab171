-- Segment and tag membership as the transitions log leads to it (migration 020, both
-- dialects; the log itself is in sqlite_/postgres_020_transitions.sql).
-- Who is in each tracked segment and tag, as the log says.
CREATE TABLE audience_members (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (kind, name, profile_id)
);

-- The segments and tags whose membership is kept in audience_members (a definition is
-- tracked from its first silent evaluation; until then it has no stored membership).
CREATE TABLE audience_tracked (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
