use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    Connection, ConnectionId, ExternalTenantId, PersonId, Platform, SyncEvent, Timestamp,
};
use switchboard_secrets::SecretString;

use crate::error::conflict_as;
use crate::{Store, StoreError, new_uuid};

impl Store {
    /// Records a newly connected platform instance; one per platform and tenant.
    pub async fn create_connection(
        &self,
        platform: Platform,
        tenant: &ExternalTenantId,
        display_name: &str,
    ) -> Result<Connection, StoreError> {
        let changed: Result<Connection, StoreError> = async {
            let connection = Connection {
                id: ConnectionId::from_uuid(new_uuid()),
                platform,
                tenant: tenant.clone(),
                display_name: display_name.to_owned(),
            };
            sqlx::query(
                "INSERT INTO connections (id, platform, tenant, display_name, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(connection.id.to_string())
            .bind(platform.as_str())
            .bind(tenant.as_str())
            .bind(display_name)
            .bind(self.now().unix_millis())
            .execute(&self.pool)
            .await
            .map_err(conflict_as(|| {
                format!("a {platform} connection to {tenant}")
            }))?;
            Ok(connection)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// A connected connection; a disconnected one is no longer there for the hub to use.
    pub async fn connection(&self, id: ConnectionId) -> Result<Option<Connection>, StoreError> {
        sqlx::query(
            "SELECT id, platform, tenant, display_name FROM connections \
             WHERE id = $1 AND disconnected_at IS NULL",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(connection_from_row)
        .transpose()
    }

    /// The connected connections, which the hub imports from, syncs on and relays through.
    pub async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        sqlx::query(
            "SELECT id, platform, tenant, display_name FROM connections \
             WHERE disconnected_at IS NULL ORDER BY platform, display_name, id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(connection_from_row)
        .collect()
    }

    /// Stores a credential of a connection, encrypted; replaces any previous value of that name.
    pub async fn put_secret(
        &self,
        connection: ConnectionId,
        name: &str,
        secret: &SecretString,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let sealed = self.cipher.seal(secret, &secret_context(connection, name));
            let result = sqlx::query(
                "INSERT INTO connection_secrets (connection_id, name, sealed, updated_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (connection_id, name) DO UPDATE SET sealed = excluded.sealed, \
                 updated_at = excluded.updated_at",
            )
            .bind(connection.to_string())
            .bind(name)
            .bind(sealed)
            .bind(self.now().unix_millis())
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
        .await;
        self.directory_changed();
        changed
    }

    /// A credential of a connection, decrypted, if one of that name is stored.
    pub async fn secret(
        &self,
        connection: ConnectionId,
        name: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        let row = sqlx::query(
            "SELECT sealed FROM connection_secrets WHERE connection_id = $1 AND name = $2",
        )
        .bind(connection.to_string())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.try_get("sealed")?;
        Ok(Some(
            self.cipher
                .open(&sealed, &secret_context(connection, name))?,
        ))
    }
}

impl Store {
    /// The connections an admin disconnected, with when: their people, accounts and message
    /// map wait for the same workspace or tenant to be connected again.
    pub async fn disconnected_connections(
        &self,
    ) -> Result<Vec<(Connection, Timestamp)>, StoreError> {
        sqlx::query(
            "SELECT id, platform, tenant, display_name, disconnected_at FROM connections \
             WHERE disconnected_at IS NOT NULL ORDER BY platform, display_name, id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                connection_from_row(row)?,
                Timestamp::from_unix_millis(row.try_get("disconnected_at")?),
            ))
        })
        .collect()
    }

    /// The connection to this platform instance, if the hub has one, connected or not (a
    /// reconnection finds the disconnected one again).
    pub async fn connection_by_tenant(
        &self,
        platform: Platform,
        tenant: &ExternalTenantId,
    ) -> Result<Option<Connection>, StoreError> {
        sqlx::query(
            "SELECT id, platform, tenant, display_name FROM connections \
             WHERE platform = $1 AND tenant = $2",
        )
        .bind(platform.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(connection_from_row)
        .transpose()
    }

    /// Replaces all of a connection's credentials at once, and when they expire; forgets the
    /// health recorded of the old ones. A disconnected connection is connected again.
    pub async fn replace_secrets(
        &self,
        connection: ConnectionId,
        secrets: &[(String, SecretString)],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let mut tx = self.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE connections SET credentials_expire_at = $1, disconnected_at = NULL \
                     WHERE id = $2",
            )
            .bind(expire_at.map(Timestamp::unix_millis))
            .bind(connection.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(StoreError::NotFound {
                    kind: "connection",
                    id: connection.to_string(),
                });
            }
            // New credentials: whatever was checked of the old ones no longer says anything.
            for statement in [
                "DELETE FROM connection_secrets WHERE connection_id = $1",
                "DELETE FROM connection_health WHERE connection_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(connection.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let now = self.now().unix_millis();
            for (name, secret) in secrets {
                sqlx::query(
                    "INSERT INTO connection_secrets (connection_id, name, sealed, updated_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(connection.to_string())
                .bind(name.as_str())
                .bind(self.cipher.seal(secret, &secret_context(connection, name)))
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

    /// When a connection's credentials expire, if they do.
    pub async fn credentials_expire_at(
        &self,
        connection: ConnectionId,
    ) -> Result<Option<Timestamp>, StoreError> {
        Ok(
            sqlx::query("SELECT credentials_expire_at FROM connections WHERE id = $1")
                .bind(connection.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.try_get::<Option<i64>, _>("credentials_expire_at"))
                .transpose()?
                .flatten()
                .map(Timestamp::from_unix_millis),
        )
    }

    /// Every credential of a connection, decrypted, by name.
    pub async fn secrets(
        &self,
        connection: ConnectionId,
    ) -> Result<Vec<(String, SecretString)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sealed FROM connection_secrets WHERE connection_id = $1 ORDER BY name",
        )
        .bind(connection.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut secrets = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name")?;
            let sealed: Vec<u8> = row.try_get("sealed")?;
            let secret = self
                .cipher
                .open(&sealed, &secret_context(connection, &name))?;
            secrets.push((name, secret));
        }
        Ok(secrets)
    }
}

/// Binds a sealed secret to its row, so a value copied elsewhere no longer opens.
fn secret_context(connection: ConnectionId, name: &str) -> String {
    format!("connection:{connection}:{name}")
}

fn connection_from_row(row: &AnyRow) -> Result<Connection, StoreError> {
    Ok(Connection {
        id: parse(row, "id")?,
        platform: parse(row, "platform")?,
        tenant: ExternalTenantId::new(row.try_get::<String, _>("tenant")?),
        display_name: row.try_get("display_name")?,
    })
}

/// Reads a text column into a type with a textual form, reporting unreadable data as corrupt.
pub(crate) fn parse<T>(row: &AnyRow, column: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// Like [`parse`], for a nullable column.
pub(crate) fn parse_optional<T>(row: &AnyRow, column: &str) -> Result<Option<T>, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| {
        text.parse()
            .map_err(|e: T::Err| StoreError::Corrupt(format!("column {column}: {e}")))
    })
    .transpose()
}

/// What disconnecting a connection did besides deleting its credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnection {
    /// Copies that were waiting to be sent through the connection, now dead letters.
    pub dead_lettered: u64,
    /// People whose synced or pending representation acted through the connection, now failed.
    pub failed: Vec<PersonId>,
}

/// Why copies queued for a disconnected connection were given up.
pub const DISCONNECTED_REASON: &str = "connection disconnected";

impl Store {
    /// Disconnects a connection in one transaction: deletes everything secret held for it (its
    /// credentials, the webhook secrets of its apps, the credentials of the representations
    /// acting through it) with its health and event subscriptions, turns those
    /// representations to failed with `reason`, and dead-letters the copies waiting to be sent
    /// through it. Its people, accounts, conversations, portals and message map stay, for a
    /// reconnection of the same workspace or tenant ([`Store::replace_secrets`]).
    pub async fn disconnect_connection(
        &self,
        connection: ConnectionId,
        reason: &str,
    ) -> Result<Disconnection, StoreError> {
        let changed: Result<Disconnection, StoreError> = async {
            let mut tx = self.begin_write().await?;
            let now = self.now().unix_millis();
            let id = connection.to_string();
            let platform: Platform = match sqlx::query(
                "SELECT platform FROM connections WHERE id = $1 AND disconnected_at IS NULL",
            )
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            {
                Some(row) => parse(&row, "platform")?,
                None => {
                    return Err(StoreError::NotFound {
                        kind: "connection",
                        id,
                    });
                }
            };
            let represented: Vec<PersonId> = sqlx::query(REPRESENTED_THROUGH)
                .bind(&id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| parse(row, "person_id"))
                .collect::<Result<_, _>>()?;
            let mut failed = Vec::new();
            for person in represented {
                let event = SyncEvent::Failed {
                    reason: reason.to_owned(),
                };
                match self
                    .transition_in(&mut tx, person, platform, event, reason)
                    .await
                {
                    Ok(_) => failed.push(person),
                    Err(StoreError::IllegalTransition(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            sqlx::query(
                "DELETE FROM representation_secrets WHERE platform = $1 AND EXISTS (\
                 SELECT 1 FROM representations r LEFT JOIN accounts a ON a.id = r.account_id \
                 WHERE r.person_id = representation_secrets.person_id AND r.platform = $1 \
                 AND (a.id IS NULL OR a.connection_id = $2))",
            )
            .bind(platform.as_str())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            for statement in [
                "DELETE FROM connection_secrets WHERE connection_id = $1",
                "DELETE FROM connection_health WHERE connection_id = $1",
                "DELETE FROM webhook_secrets WHERE connection_id = $1",
                "DELETE FROM event_subscriptions WHERE connection_id = $1",
                "DELETE FROM flows WHERE connection_id = $1",
            ] {
                sqlx::query(statement).bind(&id).execute(&mut *tx).await?;
            }
            let dead_lettered: Vec<i64> = sqlx::query(
                "UPDATE relay_outbox SET dead_at = $1, last_error = $2, lease_until = NULL \
                 WHERE connection_id = $3 AND dead_at IS NULL RETURNING id",
            )
            .bind(now)
            .bind(DISCONNECTED_REASON)
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
            sqlx::query(
                "UPDATE connections SET disconnected_at = $1, credentials_expire_at = NULL \
                 WHERE id = $2",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            self.forget_queued(&dead_lettered);
            Ok(Disconnection {
                dead_lettered: dead_lettered.len() as u64,
                failed,
            })
        }
        .await;
        self.directory_changed();
        changed
    }

    /// What disconnecting a connection would touch: its accounts (kept) and the copies waiting
    /// to be sent through it (dead-lettered).
    pub async fn connection_counts(
        &self,
        connection: ConnectionId,
    ) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM accounts WHERE connection_id = $1) AS accounts, \
             (SELECT COUNT(*) FROM relay_outbox WHERE connection_id = $1 AND dead_at IS NULL) \
             AS queued",
        )
        .bind(connection.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("accounts")?, row.try_get("queued")?))
    }
}

/// The people whose synced or pending representation acts through a connection: those on its
/// platform, unless tied to an account of another connection of that platform.
pub(crate) const REPRESENTED_THROUGH: &str = "SELECT r.person_id FROM representations r \
     JOIN connections c ON c.id = $1 AND c.platform = r.platform \
     LEFT JOIN accounts a ON a.id = r.account_id \
     WHERE r.status IN ('synced', 'pending') \
     AND (a.id IS NULL OR a.connection_id = c.id) \
     ORDER BY r.person_id";
