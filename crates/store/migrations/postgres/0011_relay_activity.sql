-- Switchboard schema v11 (PostgreSQL): what the console's Activity and Person pages count in the
-- message map — copies per day, the people who wrote, a person's recent messages — read by
-- time, not by scanning the whole map. Keep in step with ../sqlite/0011_relay_activity.sql.

CREATE INDEX relayed_messages_by_time ON relayed_messages (created_at);
CREATE INDEX relayed_messages_by_sender ON relayed_messages (sender_person_id, created_at);
