-- Coupon templates, coupon instances and their audit trail.
CREATE TABLE coupon_templates (
    id             TEXT PRIMARY KEY,
    body           TEXT NOT NULL,
    total_quantity BIGINT,
    per_user_limit BIGINT,
    issued         BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE TABLE coupons (
    id             TEXT PRIMARY KEY,
    template_id    TEXT NOT NULL,
    owner          TEXT,
    code           TEXT UNIQUE,
    state          TEXT NOT NULL,
    valid_from     BIGINT,
    valid_until    BIGINT,
    order_id       TEXT,
    reserved_until BIGINT,
    issued_at      BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX coupons_owner ON coupons (owner, state);
CREATE INDEX coupons_template ON coupons (template_id, owner);
CREATE TABLE coupon_audit (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    coupon_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    actor     TEXT,
    order_id  TEXT,
    at        BIGINT NOT NULL
);
CREATE INDEX coupon_audit_coupon ON coupon_audit (coupon_id, seq);
