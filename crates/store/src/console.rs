//! The admin console's own records: admins with their roles and password hashes, their
//! sessions (kept by a hash of the cookie's value), and the one-time link that creates the first
//! owner.

use sqlx::Row;
use switchboard_core::{Email, Timestamp};

use crate::{Store, StoreError, new_uuid};

/// What an admin may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminRole {
    /// Reads everything, changes nothing.
    Viewer,
    /// Changes everything but the list of admins.
    Admin,
    /// Also manages admins and their roles.
    Owner,
}

impl AdminRole {
    pub const ALL: [AdminRole; 3] = [AdminRole::Owner, AdminRole::Admin, AdminRole::Viewer];

    pub const fn as_str(self) -> &'static str {
        match self {
            AdminRole::Owner => "owner",
            AdminRole::Admin => "admin",
            AdminRole::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub id: String,
    pub email: Email,
    pub role: AdminRole,
    pub created_at: Timestamp,
}

/// A signed-in admin as their session cookie finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    pub admin: Admin,
    /// The synchronizer token every form of this session carries.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

fn admin_from_row(row: &sqlx::any::AnyRow) -> Result<Admin, StoreError> {
    let email: String = row.try_get("email")?;
    let role: String = row.try_get("role")?;
    Ok(Admin {
        id: row.try_get("id")?,
        email: Email::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        role: AdminRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown admin role {role:?}")))?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn admin_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM admins")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Adds an admin; the first one is always an owner, whatever `role` says, so that a hub
    /// never has admins of whom none can manage the others.
    pub async fn create_admin(
        &self,
        email: &Email,
        password_hash: &str,
        role: AdminRole,
    ) -> Result<Admin, StoreError> {
        let id = new_uuid().to_string();
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO admins (id, email, password_hash, role, created_at) \
             SELECT $1, $2, $3, CASE WHEN EXISTS (SELECT 1 FROM admins) THEN $4 ELSE 'owner' END, $5 \
             RETURNING id, email, role, created_at",
        )
        .bind(id.as_str())
        .bind(email.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now.unix_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(crate::error::conflict_as(|| {
            format!("an admin with the e-mail address {email}")
        }))?;
        admin_from_row(&row)
    }

    /// The admin with this e-mail address and their password hash.
    pub async fn admin_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<(Admin, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, role, created_at, password_hash FROM admins WHERE email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((admin_from_row(&row)?, row.try_get("password_hash")?)))
            .transpose()
    }

    pub async fn admins(&self) -> Result<Vec<Admin>, StoreError> {
        sqlx::query("SELECT id, email, role, created_at FROM admins ORDER BY created_at, email")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(admin_from_row)
            .collect()
    }

    /// Changes an admin's role; refuses to leave the hub without an owner.
    pub async fn set_admin_role(&self, id: &str, role: AdminRole) -> Result<Admin, StoreError> {
        let row = sqlx::query(
            "UPDATE admins SET role = $1 WHERE id = $2 AND ($3 = 'owner' OR EXISTS \
             (SELECT 1 FROM admins o WHERE o.role = 'owner' AND o.id <> $4)) \
             RETURNING id, email, role, created_at",
        )
        .bind(role.as_str())
        .bind(id)
        .bind(role.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => admin_from_row(&row),
            None => Err(self.missing_admin_or_last_owner(id).await),
        }
    }

    /// Deletes an admin and their sessions; refuses to delete the last owner.
    pub async fn delete_admin(&self, id: &str) -> Result<(), StoreError> {
        let result = sqlx::query(
            "DELETE FROM admins WHERE id = $1 AND (role <> 'owner' OR EXISTS \
             (SELECT 1 FROM admins o WHERE o.role = 'owner' AND o.id <> $2))",
        )
        .bind(id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(self.missing_admin_or_last_owner(id).await);
        }
        Ok(())
    }

    async fn missing_admin_or_last_owner(&self, id: &str) -> StoreError {
        let exists = sqlx::query("SELECT 1 AS one FROM admins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        match exists {
            Ok(Some(_)) => StoreError::LastOwner,
            Ok(None) => StoreError::NotFound {
                kind: "admin",
                id: id.to_owned(),
            },
            Err(error) => error.into(),
        }
    }

    pub async fn create_admin_session(
        &self,
        id_hash: &str,
        admin_id: &str,
        csrf_token: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(admin_id)
        .bind(csrf_token)
        .bind(self.now().unix_millis())
        .bind(expires_at.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session with this hash, with its admin.
    pub async fn admin_session(&self, id_hash: &str) -> Result<Option<AdminSession>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.email, a.role, a.created_at, s.csrf_token, s.expires_at \
             FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(self.now().unix_millis())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AdminSession {
                admin: admin_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    /// Ends a session, and with it any that expired.
    pub async fn end_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1 OR expires_at <= $2")
            .bind(id_hash)
            .bind(self.now().unix_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces any earlier setup link with this one.
    pub async fn put_setup_link(
        &self,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM admin_setup_links")
            .execute(&mut *transaction)
            .await?;
        sqlx::query("INSERT INTO admin_setup_links (token_hash, expires_at) VALUES ($1, $2)")
            .bind(token_hash)
            .bind(expires_at.unix_millis())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Whether a live setup link has this hash (it stays usable until an owner exists).
    pub async fn setup_link_is_live(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM admin_setup_links WHERE token_hash = $1 AND expires_at > $2 \
             AND NOT EXISTS (SELECT 1 FROM admins)",
        )
        .bind(token_hash)
        .bind(self.now().unix_millis())
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Spends the setup link: true once, for the first caller, while no admin exists.
    pub async fn use_setup_link(&self, token_hash: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "DELETE FROM admin_setup_links WHERE token_hash = $1 AND expires_at > $2 \
             AND NOT EXISTS (SELECT 1 FROM admins)",
        )
        .bind(token_hash)
        .bind(self.now().unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
