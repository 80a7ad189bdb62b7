-- Canopy's first schema: users, projects, apps, members, project tokens,
-- refresh tokens and signing keys.
--
-- SQLite conventions used throughout: STRICT tables; ids are UUID text;
-- timestamps are UTC text in the fixed-width form 2006-01-02T15:04:05.000000Z,
-- so that text order is time order; conditions and env are JSON text.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE, -- lower-cased by the store
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE projects (
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
    updated_at          TEXT NOT NULL
) STRICT;
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_id_idx ON projects (created_at, id);

CREATE TABLE apps (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    image               TEXT NOT NULL,
    target_port         INTEGER NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
    replicas            INTEGER NOT NULL CHECK (replicas >= 0),
    env                 TEXT NOT NULL DEFAULT '{}',
    status              TEXT NOT NULL
                        CHECK (status IN ('provisioning', 'ready', 'failed', 'deleting')),
    reason              TEXT NOT NULL DEFAULT '',
    available_replicas  INTEGER NOT NULL DEFAULT 0,
    conditions          TEXT NOT NULL DEFAULT '[]',
    generation          INTEGER NOT NULL DEFAULT 1,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (project_id, name)
) STRICT;
CREATE INDEX apps_project_id_created_at_id_idx ON apps (project_id, created_at, id);

CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
) STRICT;
CREATE INDEX project_members_user_id_idx ON project_members (user_id);

CREATE TABLE project_tokens (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
) STRICT;
CREATE INDEX project_tokens_project_id_idx ON project_tokens (project_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    spent_at   TEXT,
    revoked_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    private_key BLOB NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE project_tokens;
DROP TABLE project_members;
DROP TABLE apps;
DROP TABLE projects;
DROP TABLE users;
