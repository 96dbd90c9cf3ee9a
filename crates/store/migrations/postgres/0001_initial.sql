-- Switchboard schema v1 (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql: the same
-- tables, columns, keys and checks; only the dialect differs.

CREATE TABLE connections (
    id TEXT PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'google_chat', 'webex', 'zoom')),
    tenant TEXT NOT NULL CHECK (tenant <> ''),
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (platform, tenant),
    UNIQUE (id, platform)
);

CREATE TABLE connection_secrets (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (name <> ''),
    sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, name)
);

CREATE TABLE people (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(trim(email)) AND email LIKE '%_@_%'),
    primary_platform TEXT CHECK (primary_platform IN ('slack', 'teams', 'google_chat', 'webex', 'zoom')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    connection_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    external_id TEXT NOT NULL CHECK (external_id <> ''),
    display_name TEXT NOT NULL,
    email TEXT CHECK (email = lower(trim(email)) AND email LIKE '%_@_%'),
    kind TEXT NOT NULL CHECK (kind IN ('human', 'bot', 'hub_representation')),
    active BIGINT NOT NULL CHECK (active IN (0, 1)),
    person_id TEXT REFERENCES people (id) ON DELETE SET NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (connection_id, platform) REFERENCES connections (id, platform) ON DELETE CASCADE,
    UNIQUE (platform, connection_id, external_id)
);
CREATE INDEX accounts_by_person ON accounts (person_id);
CREATE INDEX accounts_by_email ON accounts (email);

CREATE TABLE representations (
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    platform TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'google_chat', 'webex', 'zoom')),
    kind TEXT NOT NULL CHECK (kind IN ('existing_account', 'guest_account', 'bot', 'unsupported')),
    status TEXT NOT NULL CHECK (status IN ('not_created', 'pending', 'synced', 'failed')),
    failure_reason TEXT,
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (person_id, platform),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX representations_by_status ON representations (platform, status);

CREATE TABLE representation_transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    from_status TEXT NOT NULL CHECK (from_status IN ('not_created', 'pending', 'synced', 'failed')),
    to_status TEXT NOT NULL CHECK (to_status IN ('not_created', 'pending', 'synced', 'failed')),
    failure_reason TEXT,
    cause TEXT NOT NULL CHECK (cause <> ''),
    at BIGINT NOT NULL,
    FOREIGN KEY (person_id, platform) REFERENCES representations (person_id, platform) ON DELETE CASCADE
);
CREATE INDEX representation_transitions_by_representation
    ON representation_transitions (person_id, platform, id);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    direct_key TEXT UNIQUE,
    created_at BIGINT NOT NULL,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);

CREATE TABLE conversation_participants (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, person_id)
);
CREATE INDEX conversation_participants_by_person ON conversation_participants (person_id);

CREATE TABLE portals (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    external_chat_id TEXT NOT NULL CHECK (external_chat_id <> ''),
    created_at BIGINT NOT NULL,
    FOREIGN KEY (connection_id, platform) REFERENCES connections (id, platform) ON DELETE CASCADE,
    UNIQUE (conversation_id, platform),
    UNIQUE (connection_id, external_chat_id)
);
