-- The order an event placed, found by the event's message id: the order hooks (points,
-- referral rewards) follow the event log and look up each event's order this way.
CREATE INDEX orders_message ON orders (message_id);
