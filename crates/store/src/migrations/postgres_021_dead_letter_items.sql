-- Dead letters of workflows that do not follow the event log (a journey run's step):
-- every row is keyed by (workflow, item), `item` being the event seq in decimal for the
-- log followers (order rewards) and `RUN/STEP` for a journey step, which has no seq or
-- message id.
ALTER TABLE dead_letters ADD COLUMN item TEXT;
UPDATE dead_letters SET item = seq::text;
ALTER TABLE dead_letters ALTER COLUMN item SET NOT NULL;
ALTER TABLE dead_letters ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE dead_letters ALTER COLUMN message_id DROP NOT NULL;
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_workflow_seq_key;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_workflow_item_key UNIQUE (workflow, item);
