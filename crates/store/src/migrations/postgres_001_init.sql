-- Flywheel system of record, version 1 (PostgreSQL). Times are ms since the Unix epoch, UTC; money is fen.
CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    name         TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    ts           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    source       TEXT,
    body         TEXT NOT NULL
);
CREATE INDEX events_user ON events (user_id, ts, seq) WHERE user_id IS NOT NULL;
CREATE INDEX events_anon ON events (anonymous_id, ts, seq) WHERE anonymous_id IS NOT NULL;

CREATE TABLE identities (
    id         TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL
);
CREATE INDEX identities_profile ON identities (profile_id);

CREATE TABLE profiles (
    id          TEXT PRIMARY KEY,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    event_count BIGINT NOT NULL
);

CREATE TABLE profile_traits (
    profile_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (profile_id, key)
);

CREATE TABLE orders (
    order_id     TEXT PRIMARY KEY,
    user_id      TEXT,
    anonymous_id TEXT,
    currency     TEXT NOT NULL,
    total        BIGINT NOT NULL,
    revenue      BIGINT NOT NULL,
    discount     BIGINT NOT NULL,
    shipping     BIGINT NOT NULL,
    tax          BIGINT NOT NULL,
    coupon       TEXT,
    placed_at    BIGINT NOT NULL,
    refunded     BIGINT NOT NULL DEFAULT 0,
    status       TEXT NOT NULL,
    message_id   TEXT NOT NULL
);
CREATE INDEX orders_user ON orders (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX orders_anon ON orders (anonymous_id) WHERE anonymous_id IS NOT NULL;

CREATE TABLE order_lines (
    order_id   TEXT NOT NULL,
    line_no    BIGINT NOT NULL,
    product_id TEXT,
    sku        TEXT,
    name       TEXT,
    category   TEXT,
    brand      TEXT,
    price      BIGINT NOT NULL,
    quantity   BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_adjustments (
    message_id TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    amount     BIGINT,
    at         BIGINT NOT NULL
);
CREATE INDEX order_adjustments_order ON order_adjustments (order_id);

CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    sku        TEXT,
    name       TEXT,
    category   TEXT,
    brand      TEXT,
    price      BIGINT,
    cost       BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE write_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
