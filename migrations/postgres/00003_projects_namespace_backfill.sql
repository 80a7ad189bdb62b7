-- Step 2 of 3: backfill projects.namespace. Every project created before
-- namespaces were stored used the default prefix, canopy-.

-- +goose Up
UPDATE projects SET namespace = 'canopy-' || name WHERE namespace IS NULL;

-- +goose Down
-- Nothing to undo: the values go with the column when 00002 is rolled back.
