-- Switchboard schema v21 (PostgreSQL): the members of the directory groups Directory Sync follows,
-- as last read from where the groups live (a connection's directory), nested groups expanded:
-- one row per address of each member, so that a person matched by any address of theirs is
-- in scope. And each group's last reading: when, how many members, when its members last
-- changed, and the error that stopped the last reading, if one did. Keep in step with
-- ../sqlite/0021_directory_members.sql.

CREATE TABLE directory_members (
    source TEXT NOT NULL,
    group_id TEXT NOT NULL,
    email TEXT NOT NULL,
    account TEXT NOT NULL,
    PRIMARY KEY (source, group_id, email)
);

CREATE INDEX directory_members_by_email ON directory_members (email);

CREATE TABLE directory_reads (
    source TEXT NOT NULL,
    group_id TEXT NOT NULL,
    read_at BIGINT NOT NULL,
    members BIGINT NOT NULL,
    changed_at BIGINT,
    error TEXT,
    PRIMARY KEY (source, group_id)
);
