-- A write key's scope: 'server' keys (the shop's backend) may record orders, refunds,
-- cancellations and contact traits; 'client' keys (browsers, apps) only behaviour.
-- Keys made before scopes existed keep working as they did: they are server keys.
ALTER TABLE write_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'server';
