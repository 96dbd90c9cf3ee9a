-- Switchboard schema v5 (PostgreSQL): each connection's health as the token refresher last saw it.
-- Keep in step with ../sqlite/0005_connection_health.sql.

CREATE TABLE connection_health (
    connection_id TEXT PRIMARY KEY NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    ok BIGINT NOT NULL CHECK (ok IN (0, 1)),
    identity TEXT,
    -- The granted scopes, space-separated.
    scopes TEXT NOT NULL,
    last_checked_at BIGINT NOT NULL,
    last_error TEXT
);
