-- Switchboard schema v17 (SQLite): platform names are no longer listed in the schema, so that a
-- new platform needs no migration; the store writes only the names it knows and refuses to read
-- any other. SQLite cannot drop a CHECK constraint, so each table that had one is rebuilt as
-- https://www.sqlite.org/lang_altertable.html#otheralter says: created anew without it, rows
-- copied, the old table dropped, the new one renamed and its indexes created again. The store
-- runs this step with foreign keys off (see migrations.rs), since with them on, dropping
-- people or connections would delete or null out every row that references them. Columns,
-- keys, defaults, other checks and indexes are as before. Keep in step with
-- ../postgres/0017_platforms_unchecked.sql.

CREATE TABLE connections_new (
    id TEXT PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL,
    tenant TEXT NOT NULL CHECK (tenant <> ''),
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    credentials_expire_at BIGINT,
    disconnected_at BIGINT,
    UNIQUE (platform, tenant),
    UNIQUE (id, platform)
);
INSERT INTO connections_new (id, platform, tenant, display_name, created_at,
    credentials_expire_at, disconnected_at)
SELECT id, platform, tenant, display_name, created_at, credentials_expire_at, disconnected_at
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;

CREATE TABLE people_new (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(trim(email)) AND email LIKE '%_@_%'),
    primary_platform TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    platforms BIGINT NOT NULL DEFAULT 0,
    primary_chosen_by TEXT CHECK (primary_chosen_by IN ('automatic', 'admin', 'person'))
);
INSERT INTO people_new (id, display_name, email, primary_platform, created_at, updated_at,
    platforms, primary_chosen_by)
SELECT id, display_name, email, primary_platform, created_at, updated_at, platforms,
    primary_chosen_by
FROM people;
DROP TABLE people;
ALTER TABLE people_new RENAME TO people;
CREATE INDEX people_listing ON people (display_name, id, email, primary_platform,
    primary_chosen_by, platforms);

CREATE TABLE representations_new (
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('existing_account', 'guest_account', 'bot', 'unsupported')),
    status TEXT NOT NULL CHECK (status IN ('not_created', 'pending', 'synced', 'failed')),
    failure_reason TEXT,
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    updated_at BIGINT NOT NULL,
    external_id TEXT CHECK (external_id <> ''),
    PRIMARY KEY (person_id, platform),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
INSERT INTO representations_new (person_id, platform, kind, status, failure_reason, account_id,
    updated_at, external_id)
SELECT person_id, platform, kind, status, failure_reason, account_id, updated_at, external_id
FROM representations;
DROP TABLE representations;
ALTER TABLE representations_new RENAME TO representations;
CREATE INDEX representations_by_status ON representations (platform, status);
CREATE INDEX representations_by_external_id ON representations (platform, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE flows_new (
    state TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('connect', 'consent', 'authorize')),
    platform TEXT NOT NULL,
    connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
    person_id TEXT REFERENCES people (id) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    url TEXT
);
INSERT INTO flows_new (state, purpose, platform, connection_id, person_id, sealed, created_at,
    expires_at, url)
SELECT state, purpose, platform, connection_id, person_id, sealed, created_at, expires_at, url
FROM flows;
DROP TABLE flows;
ALTER TABLE flows_new RENAME TO flows;
CREATE INDEX flows_by_expiry ON flows (expires_at);
CREATE INDEX flows_by_purpose ON flows (purpose, expires_at);

-- With foreign keys off nothing above was checked against them: this step fails, and its
-- transaction rolls back, if any reference is left dangling.
CREATE TEMP TABLE foreign_key_violations (
    violations BIGINT NOT NULL CONSTRAINT no_foreign_key_violations CHECK (violations = 0)
);
INSERT INTO foreign_key_violations SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE foreign_key_violations;
