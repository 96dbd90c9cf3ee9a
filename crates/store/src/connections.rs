use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{Connection, ConnectionId, ExternalTenantId, Platform, Timestamp};
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

    pub async fn connection(&self, id: ConnectionId) -> Result<Option<Connection>, StoreError> {
        sqlx::query("SELECT id, platform, tenant, display_name FROM connections WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(connection_from_row)
            .transpose()
    }

    pub async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        sqlx::query(
            "SELECT id, platform, tenant, display_name FROM connections ORDER BY platform, display_name, id",
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
    /// The connection to this platform instance, if the hub has one.
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
    /// health recorded of the old ones.
    pub async fn replace_secrets(
        &self,
        connection: ConnectionId,
        secrets: &[(String, SecretString)],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let mut tx = self.begin_write().await?;
            let updated =
                sqlx::query("UPDATE connections SET credentials_expire_at = $1 WHERE id = $2")
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
