-- Switchboard schema v8 (SQLite): every pass, the token refresher also asks for representation
-- credentials that never expire (Slack bots' tokens) and were not checked for a while; only
-- those are indexed, by when they were last stored. Keep in step with
-- ../postgres/0008_unexpiring_secrets.sql.

CREATE INDEX representation_secrets_unexpiring ON representation_secrets (updated_at)
    WHERE expires_at IS NULL;
