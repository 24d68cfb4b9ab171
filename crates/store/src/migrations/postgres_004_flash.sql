-- Flash sales (秒殺) and their orders (held until paid or released).
CREATE TABLE flash_sales (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    stock      BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE flash_orders (
    id         TEXT PRIMARY KEY,
    sale_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    quantity   BIGINT NOT NULL,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX flash_orders_sale ON flash_orders (sale_id, state);
CREATE INDEX flash_orders_due ON flash_orders (state, expires_at);
