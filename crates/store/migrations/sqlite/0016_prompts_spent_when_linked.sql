-- Switchboard schema v16 (SQLite): a "Sync now" link is spent when the account it asks for is
-- linked, no longer when the person follows it. Links that earlier versions spent as they were
-- followed, for an account that never got linked (the person left the platform's sign-in
-- unfinished), work again until they expire, instead of saying the account is linked. Keep in
-- step with ../postgres/0016_prompts_spent_when_linked.sql.

UPDATE prompts SET used_at = NULL
WHERE used_at IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM representations r
    WHERE r.person_id = prompts.person_id AND r.platform = prompts.platform
      AND r.status = 'synced'
  );
