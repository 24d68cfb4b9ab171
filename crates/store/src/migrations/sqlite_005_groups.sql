-- Group buys (拼團): deals, the groups opened under them, and their members.
CREATE TABLE group_deals (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE group_buys (
    id         TEXT PRIMARY KEY,
    deal_id    TEXT NOT NULL,
    leader     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    members    INTEGER NOT NULL,
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX group_buys_due ON group_buys (state, expires_at);
CREATE TABLE group_members (
    group_id  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
