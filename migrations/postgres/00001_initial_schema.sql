-- Canopy's first schema: users, projects, apps, members, project tokens,
-- refresh tokens and signing keys.
--
-- Ids are UUID text (text, not uuid, so that a malformed id in a URL is
-- simply not found, as on SQLite); timestamps are timestamptz; conditions
-- and env are jsonb.

-- +goose Up
CREATE TABLE users (
    id            text PRIMARY KEY,
    email         text NOT NULL UNIQUE, -- lower-cased by the store
    name          text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE projects (
    id                  text PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    description         text NOT NULL DEFAULT '',
    owner_id            text NOT NULL REFERENCES users (id),
    status              text NOT NULL
                        CHECK (status IN ('provisioning', 'ready', 'failed', 'deleting')),
    reason              text NOT NULL DEFAULT '',
    conditions          jsonb NOT NULL DEFAULT '[]',
    generation          bigint NOT NULL DEFAULT 1,
    observed_generation bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_id_idx ON projects (created_at, id);

CREATE TABLE apps (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                text NOT NULL,
    image               text NOT NULL,
    target_port         integer NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
    replicas            integer NOT NULL CHECK (replicas >= 0),
    env                 jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL
                        CHECK (status IN ('provisioning', 'ready', 'failed', 'deleting')),
    reason              text NOT NULL DEFAULT '',
    available_replicas  integer NOT NULL DEFAULT 0,
    conditions          jsonb NOT NULL DEFAULT '[]',
    generation          bigint NOT NULL DEFAULT 1,
    observed_generation bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX apps_project_id_created_at_id_idx ON apps (project_id, created_at, id);

CREATE TABLE project_members (
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'viewer')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_id_idx ON project_members (user_id);

CREATE TABLE project_tokens (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);
CREATE INDEX project_tokens_project_id_idx ON project_tokens (project_id);

CREATE TABLE refresh_tokens (
    id         text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  text NOT NULL,
    hash       bytea NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
    id          text PRIMARY KEY,
    private_key bytea NOT NULL,
    created_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE project_tokens;
DROP TABLE project_members;
DROP TABLE apps;
DROP TABLE projects;
DROP TABLE users;
