-- Switchboard schema v20 (SQLite): Directory Sync's scope, the groups the admin chose. The
-- hub's people are the members of these groups: a person in none of them is never synced, and
-- one who leaves them is reset and removed. None chosen, everyone is in scope. A source is
-- where the group lives ('scim' for a group provisioned through SCIM). Keep in step with
-- ../postgres/0020_directory_scope.sql.

CREATE TABLE directory_scope (
    source TEXT NOT NULL CHECK (source <> ''),
    group_id TEXT NOT NULL CHECK (group_id <> ''),
    PRIMARY KEY (source, group_id)
);
