-- Switchboard schema v3 (PostgreSQL): what user sync keeps — the account that represents a person on
-- a secondary platform, its credentials (sealed), the prompts sent to people, and where a pending
-- consent sends the admin. Keep in step with ../sqlite/0003_sync.sql.

-- The platform's id of the account acting for the person (a bot user, a guest, their own account).
ALTER TABLE representations ADD COLUMN external_id TEXT CHECK (external_id <> '');

CREATE TABLE representation_secrets (
    person_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    name TEXT NOT NULL CHECK (name <> ''),
    sealed BYTEA NOT NULL,
    expires_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (person_id, platform, name),
    FOREIGN KEY (person_id, platform) REFERENCES representations (person_id, platform) ON DELETE CASCADE
);

-- "Sync now" links: only the token's hash is kept; each works once, until it expires.
CREATE TABLE prompts (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE CHECK (token_hash <> ''),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    FOREIGN KEY (person_id, platform) REFERENCES representations (person_id, platform) ON DELETE CASCADE
);
CREATE INDEX prompts_by_representation ON prompts (person_id, platform, created_at);

-- Where the browser is sent to give the consent a flow waits for (listed for an admin to walk).
ALTER TABLE flows ADD COLUMN url TEXT;
CREATE INDEX flows_by_purpose ON flows (purpose, expires_at);
