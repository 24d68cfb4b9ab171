-- Points-for-coupon exchanges (積分兌換) by the client's idempotency key: the request
-- (user, template, points) and the answer first given. The row, the ledger's spend entry
-- (source key `exchange:<key>`) and the coupon are written in one transaction, so either
-- all three exist or none; a retry with the same key reads the answer back.
CREATE TABLE points_exchanges (
    key         TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    template_id TEXT NOT NULL,
    points      INTEGER NOT NULL,
    coupon_id   TEXT NOT NULL,
    response    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX points_exchanges_user ON points_exchanges (user_id, created_at);
