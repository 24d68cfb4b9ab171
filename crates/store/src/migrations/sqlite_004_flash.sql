-- Flash sales (秒殺) and their orders (held until paid or released).
CREATE TABLE flash_sales (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    stock      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE flash_orders (
    id         TEXT PRIMARY KEY,
    sale_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX flash_orders_sale ON flash_orders (sale_id, state);
CREATE INDEX flash_orders_due ON flash_orders (state, expires_at);
