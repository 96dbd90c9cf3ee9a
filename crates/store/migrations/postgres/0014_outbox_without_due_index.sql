-- Switchboard schema v14 (PostgreSQL): the outbox loses its index of copies by due time. Which
-- copy is due is known from the hub's index in memory; the database only confirms a chosen
-- copy, by its id and its lane. Left in place, the index tempted the planner into scanning
-- it whole for each confirmation: a queue's index fills with the entries of deleted copies
-- until a vacuum, and on PostgreSQL this was half the server's time under load. It also
-- cost an entry for each copy queued. Keep in step with ../sqlite/0014_outbox_without_due_index.sql.

DROP INDEX relay_outbox_due;
