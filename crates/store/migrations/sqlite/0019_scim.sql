-- Switchboard schema v19 (SQLite): the users and groups an identity provider provisions through
-- SCIM 2.0 (RFC 7643/7644), and tokens for it. A resource is kept as the provider last wrote it
-- (JSON text), with the attributes its filters ask for beside it, indexed. userName is unique
-- without regard to case, as RFC 7643 defines it (caseExact false). Keep in step with
-- ../postgres/0019_scim.sql.

ALTER TABLE api_tokens ADD COLUMN purpose TEXT NOT NULL DEFAULT 'api'
    CHECK (purpose IN ('api', 'scim'));

CREATE TABLE scim_users (
    id TEXT PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL CHECK (user_name <> ''),
    user_name_key TEXT NOT NULL UNIQUE,
    external_id TEXT,
    display_name TEXT,
    email TEXT,
    active BIGINT NOT NULL CHECK (active IN (0, 1)),
    resource TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX scim_users_by_external_id ON scim_users (external_id);
CREATE INDEX scim_users_by_email ON scim_users (email);

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL CHECK (display_name <> ''),
    external_id TEXT,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX scim_groups_by_name ON scim_groups (display_name);

CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_by_user ON scim_group_members (user_id);
