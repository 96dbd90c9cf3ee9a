//! What the REST API needs around the domain: API tokens (stored as hashes), settings, and the
//! audit log of every admin action.

use sqlx::Row;
use switchboard_core::Timestamp;

use crate::{Store, StoreError, new_uuid};

/// What a token opens: the REST API, or the SCIM endpoint an identity provider provisions
/// through. Neither opens the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Api,
    Scim,
}

impl TokenPurpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Api => "api",
            TokenPurpose::Scim => "scim",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "api" => Ok(TokenPurpose::Api),
            "scim" => Ok(TokenPurpose::Scim),
            other => Err(StoreError::Corrupt(format!(
                "unknown token purpose {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub purpose: TokenPurpose,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    /// Who acted: `token:<name>`, `admin:<e-mail>`, `system`.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    /// Where from: the client's address, or `cli`.
    pub source: String,
}

impl Store {
    /// Records a new token by the hash of its secret; the secret itself is never stored.
    pub async fn create_api_token(
        &self,
        name: &str,
        token_hash: &str,
        purpose: TokenPurpose,
    ) -> Result<ApiToken, StoreError> {
        let id = new_uuid().to_string();
        let now = self.now();
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, created_at, last_used_at, revoked_at, \
             purpose) VALUES ($1, $2, $3, $4, NULL, NULL, $5)",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(token_hash)
        .bind(now.unix_millis())
        .bind(purpose.as_str())
        .execute(&self.pool)
        .await
        .map_err(crate::error::conflict_as(|| {
            "an API token with that hash".to_owned()
        }))?;
        Ok(ApiToken {
            id,
            name: name.to_owned(),
            purpose,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The live token with this hash, marking it used now.
    pub async fn use_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let now = self.now().unix_millis();
        let row = sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL \
             RETURNING id, name, purpose, created_at, last_used_at, revoked_at",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query(
            "SELECT id, name, purpose, created_at, last_used_at, revoked_at FROM api_tokens \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(token_from_row)
        .collect()
    }

    pub async fn revoke_api_token(&self, id: &str) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(self.now().unix_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "live API token",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get("value"))
            .transpose()?)
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(self.now().unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail, source) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.now().unix_millis())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries older than `before` (an entry id), newest first, whose actor contains
    /// `actor` and whose action starts with `action` (any case).
    pub async fn audit_log_matching(
        &self,
        actor: &str,
        action: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let escape = |text: &str| {
            text.trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        sqlx::query(
            "SELECT id, at, actor, action, target, detail, source FROM audit_log \
             WHERE id < $1 AND lower(actor) LIKE $2 ESCAPE '\\' AND lower(action) LIKE $3 ESCAPE '\\' \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(format!("%{}%", escape(actor)))
        .bind(format!("{}%", escape(action)))
        .bind(limit.clamp(1, 1_000))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    /// Audit entries older than `before` (an entry id), newest first.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query(
            "SELECT id, at, actor, action, target, detail, source FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 1_000))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }
}

fn audit_from_row(row: &sqlx::any::AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: Timestamp::from_unix_millis(row.try_get("at")?),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        detail: row.try_get("detail")?,
        source: row.try_get("source")?,
    })
}

fn token_from_row(row: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        purpose: TokenPurpose::parse(&row.try_get::<String, _>("purpose")?)?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(Timestamp::from_unix_millis),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(Timestamp::from_unix_millis),
    })
}
