-- Switchboard schema v7 (PostgreSQL): the relay — the inbox of events as platforms delivered them,
-- the outbox of what to send where, the map from each relayed message to its copies, and the
-- platforms' event subscriptions. Keep in step with ../sqlite/0007_relay.sql.
--
-- Message content lives here only until it is delivered: an inbox payload is cleared once read,
-- an outbox row is deleted once its copy is posted. The map keeps ids and metadata only.

CREATE TABLE relay_inbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL CHECK (event_id <> ''),
    payload TEXT,
    received_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    UNIQUE (connection_id, event_id)
);
CREATE INDEX relay_inbox_pending ON relay_inbox (next_attempt_at, id) WHERE payload IS NOT NULL;
CREATE INDEX relay_inbox_by_age ON relay_inbox (received_at);

-- What the relay has acted on, so that a redelivered or repeated event is acted on once.
CREATE TABLE relay_seen (
    platform TEXT NOT NULL,
    key TEXT NOT NULL CHECK (key <> ''),
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (platform, key)
);
CREATE INDEX relay_seen_by_age ON relay_seen (seen_at);

-- When the last message written in a portal was sent (microseconds): after a stop, the relay
-- reads each recently active portal's messages since then before anything newer.
ALTER TABLE portals ADD COLUMN last_message_micros BIGINT;
CREATE INDEX portals_by_activity ON portals (last_message_micros)
    WHERE last_message_micros IS NOT NULL;

-- One lane per conversation and destination platform: delivered in order, one at a time.
CREATE TABLE relay_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lane TEXT NOT NULL CHECK (lane <> ''),
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    sender_person_id TEXT NOT NULL,
    origin_platform TEXT NOT NULL,
    origin_chat TEXT NOT NULL,
    origin_message TEXT NOT NULL,
    -- The order of the lane: when the origin message was sent (microseconds), or for an edit,
    -- deletion or reaction, when it was routed.
    origin_order BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('post', 'edit', 'delete', 'react', 'unreact')),
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    -- When the copy was last taken to be sent, as long as that attempt may have reached the
    -- platform (kept across a crash and an ambiguous failure, cleared by a definite one): the
    -- next attempt first looks for a copy posted since.
    leased_at BIGINT,
    last_error TEXT,
    dead_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX relay_outbox_by_lane ON relay_outbox (lane, origin_order, id);
CREATE INDEX relay_outbox_due ON relay_outbox (next_attempt_at) WHERE dead_at IS NULL;
CREATE INDEX relay_outbox_by_sender ON relay_outbox (sender_person_id);

-- Each relayed message and its copy on each other platform: edits, deletes, reactions and
-- replies follow the message through here, after any restart.
CREATE TABLE relayed_messages (
    origin_platform TEXT NOT NULL,
    origin_chat TEXT NOT NULL,
    origin_message TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_person_id TEXT NOT NULL,
    copy_platform TEXT NOT NULL,
    copy_connection_id TEXT NOT NULL,
    copy_chat TEXT NOT NULL,
    copy_message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (origin_platform, origin_chat, origin_message, copy_platform),
    UNIQUE (copy_platform, copy_chat, copy_message)
);

-- The reactions last seen on a message, where the platform reports only a message's state
-- (Graph): what changed is the difference with the state before.
CREATE TABLE message_reactions (
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    message TEXT NOT NULL,
    user_id TEXT NOT NULL,
    emoji TEXT NOT NULL,
    PRIMARY KEY (platform, chat, message, user_id, emoji)
);

CREATE TABLE event_subscriptions (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL CHECK (subscription_id <> ''),
    resource TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, subscription_id)
);

-- Secrets that verify webhooks sent on a representation's behalf (a Slack bot app's signing
-- secret), looked up by the name a delivery gives; sealed like every credential.
CREATE TABLE webhook_secrets (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (name <> ''),
    sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, name)
);
