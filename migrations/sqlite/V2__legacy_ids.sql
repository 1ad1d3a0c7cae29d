-- The id a batch had in the original service (import-legacy): equal to id
-- when it could be kept, another when that id was taken here (--renumber).
-- A rerun of the import finds its batches by it.
ALTER TABLE batches ADD COLUMN legacy_id INTEGER;
CREATE UNIQUE INDEX batches_legacy_id ON batches (legacy_id) WHERE legacy_id IS NOT NULL;
