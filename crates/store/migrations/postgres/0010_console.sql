-- Switchboard schema v10 (PostgreSQL): the admin console's admins (argon2 password
-- hashes), their sessions (kept by the SHA-256 of the cookie's value, never the value itself) and
-- the one-time setup link that creates the first owner. Keep in step with
-- ../sqlite/0010_console.sql.

CREATE TABLE admins (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(trim(email)) AND email LIKE '%_@_%'),
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at BIGINT NOT NULL
);

CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    admin_id TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions (admin_id);

CREATE TABLE admin_setup_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
