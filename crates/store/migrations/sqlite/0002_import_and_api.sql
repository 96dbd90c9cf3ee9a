-- Switchboard schema v2 (SQLite): imports, e-mail aliases for matching, settings, API tokens and
-- the audit log. Keep in step with ../postgres/0002_import_and_api.sql.

CREATE TABLE account_emails (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email TEXT NOT NULL CHECK (email = lower(trim(email)) AND email LIKE '%_@_%'),
    position BIGINT NOT NULL CHECK (position >= 0),
    PRIMARY KEY (account_id, email)
);
CREATE INDEX account_emails_by_email ON account_emails (email);

ALTER TABLE accounts ADD COLUMN last_import TEXT;

ALTER TABLE connections ADD COLUMN credentials_expire_at BIGINT;

ALTER TABLE people ADD COLUMN platforms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE people ADD COLUMN primary_chosen_by TEXT
    CHECK (primary_chosen_by IN ('automatic', 'admin', 'person'));
UPDATE people SET primary_chosen_by = 'admin' WHERE primary_platform IS NOT NULL;
CREATE INDEX people_by_name ON people (display_name, id);

CREATE TABLE import_runs (
    id TEXT PRIMARY KEY NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    pages BIGINT NOT NULL,
    seen BIGINT NOT NULL,
    added BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    deactivated BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    CHECK ((status = 'failed') = (error IS NOT NULL)),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX import_runs_one_running_per_connection
    ON import_runs (connection_id) WHERE status = 'running';
CREATE INDEX import_runs_by_connection ON import_runs (connection_id, started_at);

CREATE TABLE selected_teams (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL CHECK (team_id <> ''),
    name TEXT NOT NULL,
    PRIMARY KEY (connection_id, team_id)
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL CHECK (name <> ''),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL CHECK (actor <> ''),
    action TEXT NOT NULL CHECK (action <> ''),
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at, id);

CREATE TABLE flows (
    state TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('connect', 'consent', 'authorize')),
    platform TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'google_chat', 'webex', 'zoom')),
    connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
    person_id TEXT REFERENCES people (id) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX flows_by_expiry ON flows (expires_at);
