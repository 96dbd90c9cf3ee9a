-- Switchboard schema v6 (PostgreSQL): the teams each account was imported from, so the admin can act
-- on a team's members (choose their primary platform in one go); and indexes for lookups that
-- otherwise scan a whole table. Keep in step with ../sqlite/0006_team_members.sql.

-- One row per account and imported team (Teams imports the members of selected teams); each
-- import of the connection stamps the rows it saw, and a successful one drops the others (the
-- account left that team).
CREATE TABLE account_teams (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL CHECK (team_id <> ''),
    last_import TEXT NOT NULL,
    PRIMARY KEY (account_id, team_id)
);
CREATE INDEX account_teams_by_team ON account_teams (team_id, account_id);

-- The token refresher asks for representation credentials expiring before a deadline every
-- pass; only credentials that expire are indexed.
CREATE INDEX representation_secrets_by_expiry ON representation_secrets (expires_at)
    WHERE expires_at IS NOT NULL;

-- An import recognises the accounts the hub created (guests, bots) by their platform id.
CREATE INDEX representations_by_external_id ON representations (platform, external_id)
    WHERE external_id IS NOT NULL;
