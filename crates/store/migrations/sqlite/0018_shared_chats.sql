-- Switchboard schema v18 (SQLite): a portal may be one of several the platform shows in one
-- chat (a person's chat with Zoom's chatbot, through which everyone the platform cannot
-- represent reaches them). What is written in that chat names no conversation; the relay finds
-- the candidates by the chat they share. Keep in step with ../postgres/0018_shared_chats.sql.

ALTER TABLE portals ADD COLUMN shared_chat TEXT;
CREATE INDEX portals_by_shared_chat ON portals (connection_id, shared_chat)
    WHERE shared_chat IS NOT NULL;
