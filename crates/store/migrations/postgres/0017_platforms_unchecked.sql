-- Switchboard schema v17 (PostgreSQL): platform names are no longer listed in the schema, so
-- that a new platform needs no migration; the store writes only the names it knows and refuses
-- to read any other. The checks were named by PostgreSQL after their table and column. Keep in
-- step with ../sqlite/0017_platforms_unchecked.sql.

ALTER TABLE connections DROP CONSTRAINT connections_platform_check;
ALTER TABLE people DROP CONSTRAINT people_primary_platform_check;
ALTER TABLE representations DROP CONSTRAINT representations_platform_check;
ALTER TABLE flows DROP CONSTRAINT flows_platform_check;
