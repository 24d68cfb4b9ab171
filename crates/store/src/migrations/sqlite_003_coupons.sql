-- Coupon templates, coupon instances and their audit trail.
CREATE TABLE coupon_templates (
    id             TEXT PRIMARY KEY,
    body           TEXT NOT NULL,
    total_quantity INTEGER,
    per_user_limit INTEGER,
    issued         INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE TABLE coupons (
    id             TEXT PRIMARY KEY,
    template_id    TEXT NOT NULL,
    owner          TEXT,
    code           TEXT UNIQUE,
    state          TEXT NOT NULL,
    valid_from     INTEGER,
    valid_until    INTEGER,
    order_id       TEXT,
    reserved_until INTEGER,
    issued_at      INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX coupons_owner ON coupons (owner, state);
CREATE INDEX coupons_template ON coupons (template_id, owner);
CREATE TABLE coupon_audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    coupon_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    actor     TEXT,
    order_id  TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX coupon_audit_coupon ON coupon_audit (coupon_id, seq);
