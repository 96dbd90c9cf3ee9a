-- Switchboard schema v13 (PostgreSQL): for each lane (a conversation's copies to one platform),
-- when the origin of the latest post delivered there was sent. A copy ordered before it
-- reaches its chat after newer messages (its event came late, a platform's retry), and the
-- relay says so in the copy. Keep in step with ../sqlite/0013_relay_lanes.sql.

CREATE TABLE relay_lanes (
    lane TEXT PRIMARY KEY NOT NULL CHECK (lane <> ''),
    last_posted_order BIGINT NOT NULL
);
