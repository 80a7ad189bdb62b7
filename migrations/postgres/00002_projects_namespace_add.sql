-- Projects store their namespace (prefix + name) so that the prefix can be
-- changed without renaming the namespaces of existing projects.
--
-- Step 1 of 3 of adding a NOT NULL column to a table that holds rows: add it
-- nullable. A one-step ADD COLUMN ... NOT NULL fails on a populated table.

-- +goose Up
ALTER TABLE projects ADD COLUMN namespace text;

-- +goose Down
ALTER TABLE projects DROP COLUMN namespace;
