-- Step 3 of 3: make projects.namespace NOT NULL and unique (two projects
-- cannot share a namespace). Rows written between step 2 and now by a Canopy
-- that did not know the column are backfilled first.

-- +goose Up
UPDATE projects SET namespace = 'canopy-' || name WHERE namespace IS NULL;
ALTER TABLE projects ALTER COLUMN namespace SET NOT NULL;
CREATE UNIQUE INDEX projects_namespace_key ON projects (namespace);

-- +goose Down
DROP INDEX projects_namespace_key;
ALTER TABLE projects ALTER COLUMN namespace DROP NOT NULL;
