-- Switchboard schema v12 (PostgreSQL): a connection can be disconnected (its credentials deleted,
-- its people, accounts and message map kept for a reconnection of the same workspace or
-- tenant), and people can be restricted from writing through the hub, with when each was last
-- told so in a conversation. Keep in step with ../sqlite/0012_disconnect_and_restrictions.sql.

ALTER TABLE connections ADD COLUMN disconnected_at BIGINT;

CREATE TABLE restricted_people (
    person_id TEXT PRIMARY KEY NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE TABLE restriction_notices (
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (person_id, conversation_id)
);
