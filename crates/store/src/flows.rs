//! Browser flows in progress (an admin connecting a platform or approving a bot, a person
//! authorising their account): what the platform must remember, sealed, under the unguessable
//! `state` value the browser carries back.

use sqlx::Row;
use switchboard_core::{ConnectionId, PersonId, Platform, Timestamp};
use switchboard_secrets::SecretString;

use crate::connections::{parse, parse_optional};
use crate::{Store, StoreError};

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowPurpose {
    /// An admin connecting a platform instance.
    Connect,
    /// An admin approving the bot that represents a person.
    Consent,
    /// A person authorising their own account, from a prompt's "Sync now" link.
    Authorize,
}

impl FlowPurpose {
    pub const ALL: [FlowPurpose; 3] = [
        FlowPurpose::Connect,
        FlowPurpose::Consent,
        FlowPurpose::Authorize,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FlowPurpose::Connect => "connect",
            FlowPurpose::Consent => "consent",
            FlowPurpose::Authorize => "authorize",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// A bot waiting for an admin's approval: where to send the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConsent {
    pub person_id: PersonId,
    pub platform: Platform,
    pub url: String,
    pub expires_at: Timestamp,
}

/// A flow in progress.
#[derive(Debug, Clone)]
pub struct PendingFlow {
    pub state: String,
    pub purpose: FlowPurpose,
    pub platform: Platform,
    pub connection_id: Option<ConnectionId>,
    pub person_id: Option<PersonId>,
    /// The platform module's own state between steps.
    pub platform_state: SecretString,
    /// Where the browser is sent next, kept for flows someone walks later (a bot's consent).
    pub url: Option<String>,
    pub expires_at: Timestamp,
}

impl Store {
    /// Records a flow waiting for the browser to come back with `flow.state`.
    pub async fn save_flow(&self, flow: &PendingFlow) -> Result<(), StoreError> {
        let sealed = self
            .cipher
            .seal(&flow.platform_state, &format!("flow:{}", flow.state));
        sqlx::query(
            "INSERT INTO flows (state, purpose, platform, connection_id, person_id, sealed, \
             created_at, expires_at, url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(flow.state.as_str())
        .bind(flow.purpose.as_str())
        .bind(flow.platform.as_str())
        .bind(flow.connection_id.map(|id| id.to_string()))
        .bind(flow.person_id.map(|id| id.to_string()))
        .bind(sealed)
        .bind(self.now().unix_millis())
        .bind(flow.expires_at.unix_millis())
        .bind(flow.url.as_deref())
        .execute(&self.pool)
        .await
        .map_err(crate::error::conflict_as(|| {
            "a flow with that state".to_owned()
        }))?;
        Ok(())
    }

    /// Takes the flow with this state out of the store: each state works once. Expired flows
    /// are not returned.
    pub async fn take_flow(&self, state: &str) -> Result<Option<PendingFlow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT state, purpose, platform, connection_id, person_id, sealed, expires_at, url \
             FROM flows WHERE state = $1",
        )
        .bind(state)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM flows WHERE state = $1 OR expires_at < $2")
            .bind(state)
            .bind(self.now().unix_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at = Timestamp::from_unix_millis(row.try_get("expires_at")?);
        if expires_at < self.now() {
            return Ok(None);
        }
        let purpose: String = row.try_get("purpose")?;
        let sealed: Vec<u8> = row.try_get("sealed")?;
        Ok(Some(PendingFlow {
            state: row.try_get("state")?,
            purpose: FlowPurpose::parse(&purpose)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown flow purpose '{purpose}'")))?,
            platform: parse(&row, "platform")?,
            connection_id: parse_optional(&row, "connection_id")?,
            person_id: parse_optional(&row, "person_id")?,
            platform_state: self.cipher.open(&sealed, &format!("flow:{state}"))?,
            url: row.try_get("url")?,
            expires_at,
        }))
    }

    /// The bots waiting for an admin's approval, oldest first: the admin walks them one after
    /// another.
    pub async fn pending_consents(&self) -> Result<Vec<PendingConsent>, StoreError> {
        let rows = sqlx::query(
            "SELECT person_id, platform, url, expires_at FROM flows \
             WHERE purpose = $1 AND expires_at >= $2 AND person_id IS NOT NULL AND url IS NOT NULL \
             ORDER BY created_at, state",
        )
        .bind(FlowPurpose::Consent.as_str())
        .bind(self.now().unix_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingConsent {
                    person_id: parse(row, "person_id")?,
                    platform: parse(row, "platform")?,
                    url: row.try_get("url")?,
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                })
            })
            .collect()
    }
}
