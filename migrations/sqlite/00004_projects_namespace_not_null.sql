-- Step 3 of 3: make projects.namespace NOT NULL and unique (two projects
-- cannot share a namespace). Rows written between step 2 and now by a Canopy
-- that did not know the column are backfilled first.
--
-- SQLite cannot add NOT NULL to an existing column, so the table is rebuilt
-- the way SQLite's ALTER TABLE documentation prescribes: create the new
-- table, copy the rows, drop the old table, rename the new one, recreate the
-- indexes. This runs in goose's transaction; tenancy/sqlstore runs SQLite
-- migrations on a connection with foreign_keys off (otherwise DROP TABLE
-- would cascade to apps, members and tokens) and runs PRAGMA
-- foreign_key_check once they are done.

-- +goose Up
UPDATE projects SET namespace = 'canopy-' || name WHERE namespace IS NULL;

CREATE TABLE projects_rebuild (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    owner_id            TEXT NOT NULL REFERENCES users (id),
    status              TEXT NOT NULL
                        CHECK (status IN ('provisioning', 'ready', 'failed', 'deleting')),
    reason              TEXT NOT NULL DEFAULT '',
    conditions          TEXT NOT NULL DEFAULT '[]',
    generation          INTEGER NOT NULL DEFAULT 1,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    namespace           TEXT NOT NULL
) STRICT;

INSERT INTO projects_rebuild (
    id, name, description, owner_id, status, reason, conditions,
    generation, observed_generation, created_at, updated_at, namespace)
SELECT
    id, name, description, owner_id, status, reason, conditions,
    generation, observed_generation, created_at, updated_at, namespace
FROM projects;

DROP TABLE projects;
ALTER TABLE projects_rebuild RENAME TO projects;
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_id_idx ON projects (created_at, id);
CREATE UNIQUE INDEX projects_namespace_key ON projects (namespace);

-- +goose Down
CREATE TABLE projects_rebuild (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    owner_id            TEXT NOT NULL REFERENCES users (id),
    status              TEXT NOT NULL
                        CHECK (status IN ('provisioning', 'ready', 'failed', 'deleting')),
    reason              TEXT NOT NULL DEFAULT '',
    conditions          TEXT NOT NULL DEFAULT '[]',
    generation          INTEGER NOT NULL DEFAULT 1,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    namespace           TEXT
) STRICT;

INSERT INTO projects_rebuild (
    id, name, description, owner_id, status, reason, conditions,
    generation, observed_generation, created_at, updated_at, namespace)
SELECT
    id, name, description, owner_id, status, reason, conditions,
    generation, observed_generation, created_at, updated_at, namespace
FROM projects;

DROP TABLE projects;
ALTER TABLE projects_rebuild RENAME TO projects;
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_id_idx ON projects (created_at, id);
