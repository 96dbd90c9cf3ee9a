-- Switchboard schema v15 (SQLite): what the relay stores of a message (an inbox item as the
-- platform delivered it, an outbox copy's content) is sealed with the hub's key from now on,
-- bound to its row, so that no copy of it the database leaves behind (a freed page, a WAL
-- frame, a backup) is readable without the key. The payloads become BLOBs; a column declared
-- TEXT keeps a BLOB as it is, so only the values change. Rows in flight at the upgrade (unread
-- events, queued copies, dead letters) are kept: converted to their UTF-8 bytes here, and
-- sealed by the store when it starts, before the relay reads any (told from sealed ones by the
-- sealed format's first byte, at every start, so an interrupted start leaves none unsealed);
-- the first start after the upgrade then vacuums the file, which drops the plaintext earlier
-- versions left in freed pages. Keep in step with ../postgres/0015_sealed_payloads.sql.

UPDATE relay_inbox SET payload = CAST(payload AS BLOB) WHERE payload IS NOT NULL;
UPDATE relay_outbox SET payload = CAST(payload AS BLOB);
