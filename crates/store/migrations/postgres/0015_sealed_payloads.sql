-- Switchboard schema v15 (PostgreSQL): what the relay stores of a message (an inbox item as the
-- platform delivered it, an outbox copy's content) is sealed with the hub's key from now on,
-- bound to its row, so that no copy of it the database leaves behind (a dead tuple, a WAL
-- segment, a backup) is readable without the key. The payloads become bytes.
--
-- Rows in flight at the upgrade (unread events, queued copies, dead letters) are kept, not
-- dropped: they are converted to their UTF-8 bytes here, and the store seals each of them when
-- it starts, before the relay reads any (it tells them from sealed ones by the sealed format's
-- first byte, and does so at every start, so an interrupted start leaves none unsealed).
-- Keep in step with ../sqlite/0015_sealed_payloads.sql.

ALTER TABLE relay_inbox ALTER COLUMN payload TYPE BYTEA USING convert_to(payload, 'UTF8');
ALTER TABLE relay_outbox ALTER COLUMN payload TYPE BYTEA USING convert_to(payload, 'UTF8');
