use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    ConnectionId, Conversation, ConversationId, ConversationKind, ExternalChatId, PersonId,
    Platform, Portal, PortalId,
};

use crate::connections::parse;
use crate::error::conflict_as;
use crate::{Store, StoreError, new_uuid};

const PORTAL_COLUMNS: &str = "id, conversation_id, platform, connection_id, external_chat_id";

impl Store {
    /// The direct-message conversation between two people, created on first use. Whoever
    /// starts it, and however many callers race, there is one per pair.
    pub async fn direct_conversation(
        &self,
        a: PersonId,
        b: PersonId,
    ) -> Result<Conversation, StoreError> {
        let changed: Result<Conversation, StoreError> = async {
            let candidate = Conversation::new(
                ConversationId::from_uuid(new_uuid()),
                ConversationKind::Direct,
                [a, b],
            )?;
            let key = candidate
                .direct_key()
                .expect("a direct conversation always has a key");
            let mut tx = self.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO conversations (id, kind, direct_key, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (direct_key) DO NOTHING",
            )
            .bind(candidate.id.to_string())
            .bind(ConversationKind::Direct.as_str())
            .bind(key.as_str())
            .bind(self.now().unix_millis())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !inserted {
                let id: String = sqlx::query("SELECT id FROM conversations WHERE direct_key = $1")
                    .bind(key.as_str())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("id")?;
                tx.commit().await?;
                return Ok(Conversation {
                    id: id
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                    ..candidate
                });
            }
            insert_participants(&mut tx, &candidate).await?;
            tx.commit().await?;
            Ok(candidate)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// A new group chat between `participants` (three or more people).
    pub async fn create_group_conversation(
        &self,
        participants: impl IntoIterator<Item = PersonId>,
    ) -> Result<Conversation, StoreError> {
        let changed: Result<Conversation, StoreError> = async {
            let conversation = Conversation::new(
                ConversationId::from_uuid(new_uuid()),
                ConversationKind::Group,
                participants,
            )?;
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO conversations (id, kind, direct_key, created_at) VALUES ($1, $2, NULL, $3)",
            )
            .bind(conversation.id.to_string())
            .bind(ConversationKind::Group.as_str())
            .bind(self.now().unix_millis())
            .execute(&mut *tx)
            .await?;
            insert_participants(&mut tx, &conversation).await?;
            tx.commit().await?;
            Ok(conversation)
        }
        .await;
        self.directory_changed();
        changed
    }

    pub async fn conversation(
        &self,
        id: ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        let Some(row) = sqlx::query("SELECT kind FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        let kind = ConversationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown conversation kind '{kind}'")))?;
        let participants = sqlx::query(
            "SELECT person_id FROM conversation_participants WHERE conversation_id = $1",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| parse::<PersonId>(row, "person_id"))
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Conversation::new(id, kind, participants)?))
    }

    /// Records the native chat of a conversation on one platform; one per platform.
    /// `shared_chat` names the platform's chat the portal is shown in when it shares that chat
    /// with other portals (see [`Store::portals_in_shared_chat`]).
    pub async fn create_portal(
        &self,
        conversation: ConversationId,
        platform: Platform,
        connection: ConnectionId,
        chat: &ExternalChatId,
        shared_chat: Option<&ExternalChatId>,
    ) -> Result<Portal, StoreError> {
        let changed: Result<Portal, StoreError> = async {
            let portal = Portal {
                id: PortalId::from_uuid(new_uuid()),
                conversation_id: conversation,
                platform,
                connection_id: connection,
                external_chat_id: chat.clone(),
            };
            sqlx::query(
                "INSERT INTO portals (id, conversation_id, platform, connection_id, external_chat_id, \
                 created_at, shared_chat) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(portal.id.to_string())
            .bind(conversation.to_string())
            .bind(platform.as_str())
            .bind(connection.to_string())
            .bind(chat.as_str())
            .bind(self.now().unix_millis())
            .bind(shared_chat.map(ExternalChatId::as_str))
            .execute(&self.pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                    kind: "conversation or connection on that platform",
                    id: format!("{conversation}/{connection}"),
                },
                _ => conflict_as(|| {
                    format!("a {platform} portal of conversation {conversation} or for chat {chat}")
                })(error),
            })?;
            Ok(portal)
        }
        .await;
        self.directory_changed();
        changed
    }

    pub async fn portal(
        &self,
        conversation: ConversationId,
        platform: Platform,
    ) -> Result<Option<Portal>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PORTAL_COLUMNS} FROM portals WHERE conversation_id = $1 AND platform = $2"
        )))
        .bind(conversation.to_string())
        .bind(platform.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(portal_from_row)
        .transpose()
    }

    /// The portal that a platform's chat belongs to, if the hub knows it.
    pub async fn portal_by_chat(
        &self,
        connection: ConnectionId,
        chat: &ExternalChatId,
    ) -> Result<Option<Portal>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PORTAL_COLUMNS} FROM portals WHERE connection_id = $1 AND external_chat_id = $2"
        )))
        .bind(connection.to_string())
        .bind(chat.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(portal_from_row)
        .transpose()
    }

    /// The portals shown in one chat of the platform's that they share, each with when it was
    /// last written in, by a person there or by a copy the relay delivered (microseconds;
    /// `None` if never), most recent first.
    pub async fn portals_in_shared_chat(
        &self,
        connection: ConnectionId,
        shared_chat: &ExternalChatId,
    ) -> Result<Vec<(Portal, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.conversation_id, p.platform, p.connection_id, p.external_chat_id, \
             p.last_message_micros, \
             (SELECT MAX(r.created_at) FROM relayed_messages r \
              WHERE r.copy_platform = p.platform AND r.copy_chat = p.external_chat_id) \
             AS last_copy_millis \
             FROM portals p WHERE p.connection_id = $1 AND p.shared_chat = $2",
        )
        .bind(connection.to_string())
        .bind(shared_chat.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut portals = rows
            .iter()
            .map(|row| {
                let written: Option<i64> = row.try_get("last_message_micros")?;
                let copied: Option<i64> = row.try_get("last_copy_millis")?;
                let last = written.max(copied.map(|millis| millis.saturating_mul(1000)));
                Ok((portal_from_row(row)?, last))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        portals.sort_by_key(|(_, last)| std::cmp::Reverse(*last));
        Ok(portals)
    }
}

async fn insert_participants(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    conversation: &Conversation,
) -> Result<(), StoreError> {
    for person in &conversation.participants {
        sqlx::query(
            "INSERT INTO conversation_participants (conversation_id, person_id) VALUES ($1, $2)",
        )
        .bind(conversation.id.to_string())
        .bind(person.to_string())
        .execute(&mut **tx)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                kind: "person",
                id: person.to_string(),
            },
            _ => StoreError::Database(error),
        })?;
    }
    Ok(())
}

fn portal_from_row(row: &AnyRow) -> Result<Portal, StoreError> {
    Ok(Portal {
        id: parse(row, "id")?,
        conversation_id: parse(row, "conversation_id")?,
        platform: parse(row, "platform")?,
        connection_id: parse(row, "connection_id")?,
        external_chat_id: ExternalChatId::new(row.try_get::<String, _>("external_chat_id")?),
    })
}
