-- Switchboard schema v9 (PostgreSQL): when each event's delivery reached the hub, in microseconds,
-- kept with the event and with the copies decided from it, so that the latency the hub adds
-- (webhook received → copy accepted by the destination platform) can be measured. Empty for
-- copies of messages read back from a platform's history. Keep in step with
-- ../sqlite/0009_relay_latency.sql.

ALTER TABLE relay_inbox ADD COLUMN received_micros BIGINT;
ALTER TABLE relay_outbox ADD COLUMN received_micros BIGINT;
