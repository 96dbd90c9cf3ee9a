//! Prompts: the "Sync now" links sent to people. The link carries a random token; the store keeps
//! only its hash, so a database leak hands out no working link. Each works until the account it
//! asks for is linked, or until it expires.

use sqlx::Row;
use switchboard_core::{PersonId, Platform, Timestamp};

use crate::connections::parse;
use crate::{Store, StoreError};

/// A prompt's link, accepted: whose representation on which platform it authorises, and until
/// when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptGrant {
    pub id: String,
    pub person_id: PersonId,
    pub platform: Platform,
    pub expires_at: Timestamp,
}

/// What a prompt's link stands for when someone follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptLink {
    /// Unspent and unexpired: it may start a sign-in.
    Open(PromptGrant),
    /// Spent, not yet expired: the account it asked for on `platform` is linked.
    Linked { platform: Platform },
    /// Expired (spent or not), forgotten by a reset, or never sent.
    Gone,
}

impl Store {
    /// Records a prompt sent for the representation of `person` on `platform`, under the hash
    /// of its link's token; answers its id.
    pub async fn create_prompt(
        &self,
        person: PersonId,
        platform: Platform,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<String, StoreError> {
        let id = crate::new_uuid().to_string();
        sqlx::query(
            "INSERT INTO prompts (id, person_id, platform, token_hash, created_at, expires_at, \
             used_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(id.as_str())
        .bind(person.to_string())
        .bind(platform.as_str())
        .bind(token_hash)
        .bind(self.now().unix_millis())
        .bind(expires_at.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                kind: "representation",
                id: format!("{person}/{platform}"),
            },
            _ => crate::error::conflict_as(|| "a prompt with that token".to_owned())(error),
        })?;
        Ok(id)
    }

    /// What the link whose token hashes to `token_hash` stands for now. Following it spends
    /// nothing: a prompt is spent when the account it asks for is linked
    /// ([`Store::complete_sync`]), so a person who left the platform's sign-in unfinished can
    /// follow it again.
    pub async fn prompt_link(&self, token_hash: &str) -> Result<PromptLink, StoreError> {
        let row = sqlx::query(
            "SELECT id, person_id, platform, expires_at, used_at FROM prompts \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(PromptLink::Gone);
        };
        let expires_at = Timestamp::from_unix_millis(row.try_get("expires_at")?);
        if expires_at < self.now() {
            return Ok(PromptLink::Gone);
        }
        let platform = parse(&row, "platform")?;
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(PromptLink::Linked { platform });
        }
        Ok(PromptLink::Open(PromptGrant {
            id: row.try_get("id")?,
            person_id: parse(&row, "person_id")?,
            platform,
            expires_at,
        }))
    }

    /// How many prompts the representation has been sent since it was last reset.
    pub async fn prompts_sent(
        &self,
        person: PersonId,
        platform: Platform,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS sent FROM prompts WHERE person_id = $1 AND platform = $2",
        )
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get("sent")?)
    }

    /// When the person was last prompted to authorise their account on `platform`.
    pub async fn last_prompt_at(
        &self,
        person: PersonId,
        platform: Platform,
    ) -> Result<Option<Timestamp>, StoreError> {
        Ok(sqlx::query(
            "SELECT MAX(created_at) AS last FROM prompts WHERE person_id = $1 AND platform = $2",
        )
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get::<Option<i64>, _>("last")?
        .map(Timestamp::from_unix_millis))
    }
}
