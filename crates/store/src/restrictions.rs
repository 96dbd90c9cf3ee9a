//! People an admin restricted from writing through the hub, and when each was last told so in
//! a conversation.

use switchboard_core::{ConversationId, PersonId};

use crate::connections::parse;
use crate::{Store, StoreError};

impl Store {
    /// Everyone restricted, in one read: the relay keeps the set in memory and checks every
    /// message's sender against it.
    pub async fn restricted_people(&self) -> Result<Vec<PersonId>, StoreError> {
        sqlx::query("SELECT person_id FROM restricted_people ORDER BY person_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| parse(row, "person_id"))
            .collect()
    }

    /// Makes exactly `people` the restricted ones.
    pub async fn set_restricted_people(&self, people: &[PersonId]) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM restricted_people")
                .execute(&mut *tx)
                .await?;
            let now = self.now().unix_millis();
            for person in people {
                sqlx::query(
                    "INSERT INTO restricted_people (person_id, created_at) VALUES ($1, $2) \
                     ON CONFLICT (person_id) DO NOTHING",
                )
                .bind(person.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Claims the right to tell a restricted person, in a conversation, that what they write
    /// there is not relayed: true at most once per `every` for each person and conversation,
    /// however many messages and hubs race for it.
    pub async fn claim_restriction_notice(
        &self,
        person: PersonId,
        conversation: ConversationId,
        every: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let before = now.unix_millis() - i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let claimed = sqlx::query(
            "INSERT INTO restriction_notices (person_id, conversation_id, sent_at) \
             VALUES ($1, $2, $3) ON CONFLICT (person_id, conversation_id) \
             DO UPDATE SET sent_at = excluded.sent_at \
             WHERE restriction_notices.sent_at <= $4",
        )
        .bind(person.to_string())
        .bind(conversation.to_string())
        .bind(now.unix_millis())
        .bind(before)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }
}
