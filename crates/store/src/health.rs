use sqlx::Row;
use switchboard_core::{ConnectionId, PersonId, Platform, Timestamp};

use crate::connections::{parse, parse_optional};
use crate::{Store, StoreError};

/// A connection's health as it was last checked: whether its credentials work, who they act
/// as, what they may do, and the last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionHealth {
    pub ok: bool,
    pub identity: Option<String>,
    pub scopes: Vec<String>,
    pub last_checked_at: Timestamp,
    pub last_error: Option<String>,
}

impl Store {
    /// Records a connection's health, replacing what was recorded before.
    pub async fn record_connection_health(
        &self,
        connection: ConnectionId,
        health: &ConnectionHealth,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO connection_health (connection_id, ok, identity, scopes, \
             last_checked_at, last_error) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (connection_id) DO UPDATE SET ok = excluded.ok, \
             identity = excluded.identity, scopes = excluded.scopes, \
             last_checked_at = excluded.last_checked_at, last_error = excluded.last_error",
        )
        .bind(connection.to_string())
        .bind(i64::from(health.ok))
        .bind(health.identity.as_deref())
        .bind(health.scopes.join(" "))
        .bind(health.last_checked_at.unix_millis())
        .bind(health.last_error.as_deref())
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound {
                    kind: "connection",
                    id: connection.to_string(),
                })
            }
            other => other.map(drop).map_err(StoreError::from),
        }
    }

    /// A connection's last recorded health, if it was ever checked.
    pub async fn connection_health(
        &self,
        connection: ConnectionId,
    ) -> Result<Option<ConnectionHealth>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT ok, identity, scopes, last_checked_at, last_error FROM connection_health \
             WHERE connection_id = $1",
        )
        .bind(connection.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let scopes: String = row.try_get("scopes")?;
        Ok(Some(ConnectionHealth {
            ok: row.try_get::<i64, _>("ok")? != 0,
            identity: row.try_get("identity")?,
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            last_checked_at: Timestamp::from_unix_millis(row.try_get("last_checked_at")?),
            last_error: row.try_get("last_error")?,
        }))
    }

    /// The connections whose credentials expire before `deadline` (or already have), soonest
    /// first.
    pub async fn connections_expiring_before(
        &self,
        deadline: Timestamp,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        sqlx::query(
            "SELECT id FROM connections WHERE credentials_expire_at IS NOT NULL \
             AND credentials_expire_at < $1 ORDER BY credentials_expire_at, id",
        )
        .bind(deadline.unix_millis())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| parse(row, "id"))
        .collect()
    }

    /// The people whose synced or pending representation acts through `connection`: those on
    /// its platform, unless tied to an account of another connection of that platform.
    pub async fn people_represented_through(
        &self,
        connection: ConnectionId,
    ) -> Result<Vec<PersonId>, StoreError> {
        sqlx::query(crate::connections::REPRESENTED_THROUGH)
            .bind(connection.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| parse(row, "person_id"))
            .collect()
    }

    /// Up to `limit` synced representations whose own credentials expire before `deadline`
    /// (or already have), soonest first, each with the connection of the account it is tied
    /// to, if any.
    pub async fn representations_expiring_before(
        &self,
        deadline: Timestamp,
        limit: u32,
    ) -> Result<Vec<(PersonId, Platform, Option<ConnectionId>)>, StoreError> {
        sqlx::query(
            "SELECT r.person_id, r.platform, a.connection_id, MIN(s.expires_at) AS expires_at \
             FROM representations r \
             JOIN representation_secrets s ON s.person_id = r.person_id AND s.platform = r.platform \
             LEFT JOIN accounts a ON a.id = r.account_id \
             WHERE r.status = 'synced' AND s.expires_at IS NOT NULL AND s.expires_at < $1 \
             GROUP BY r.person_id, r.platform, a.connection_id \
             ORDER BY expires_at, r.person_id, r.platform LIMIT $2",
        )
        .bind(deadline.unix_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                parse(row, "person_id")?,
                parse(row, "platform")?,
                parse_optional(row, "connection_id")?,
            ))
        })
        .collect()
    }

    /// Up to `limit` synced representations whose own credentials never expire (a Slack bot's
    /// token) and were last stored — renewed or checked — before `cutoff`, longest unchecked
    /// first, each with the connection of the account it is tied to, if any.
    pub async fn representations_unchecked_since(
        &self,
        cutoff: Timestamp,
        limit: u32,
    ) -> Result<Vec<(PersonId, Platform, Option<ConnectionId>)>, StoreError> {
        sqlx::query(
            "SELECT r.person_id, r.platform, a.connection_id, MIN(s.updated_at) AS checked_at \
             FROM representation_secrets s \
             JOIN representations r ON r.person_id = s.person_id AND r.platform = s.platform \
             LEFT JOIN accounts a ON a.id = r.account_id \
             WHERE s.expires_at IS NULL AND s.updated_at < $1 AND r.status = 'synced' \
             GROUP BY r.person_id, r.platform, a.connection_id \
             ORDER BY checked_at, r.person_id, r.platform LIMIT $2",
        )
        .bind(cutoff.unix_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                parse(row, "person_id")?,
                parse(row, "platform")?,
                parse_optional(row, "connection_id")?,
            ))
        })
        .collect()
    }
}
