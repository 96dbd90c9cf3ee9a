//! The users and groups an identity provider provisions through SCIM 2.0 (RFC 7643/7644). A
//! resource is kept as the provider last wrote it (JSON text, which the hub reads and writes);
//! beside it, the attributes the providers' filters ask for, indexed. A write names the version
//! it read: a resource that changed meanwhile is not overwritten.

use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::Timestamp;

use crate::{Store, StoreError};

/// A user as an identity provider provisioned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUserRecord {
    pub id: String,
    /// Unique without regard to case.
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    /// The address the hub matches the user by, lowercased: the work address, else the
    /// primary one, else the first.
    pub email: Option<String>,
    /// `false` is a soft delete: the user is still listed, and has left.
    pub active: bool,
    /// The resource as last written (JSON), without `id` and `meta`.
    pub resource: String,
    /// Moves with every write; the resource's ETag.
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A group as an identity provider provisioned it, with its members' user ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroupRecord {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    /// The resource as last written (JSON), without `id`, `meta` and `members`.
    pub resource: String,
    pub members: Vec<String>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An attribute a SCIM list may be filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimField {
    Id,
    UserName,
    ExternalId,
    DisplayName,
    Email,
}

/// Which resources a list returns: those for which every equality holds (an attribute a
/// resource type does not have matches nothing), the page from `start` (0-based) of at most
/// `count`, in the order they were created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScimQuery {
    pub equals: Vec<(ScimField, String)>,
    pub start: i64,
    pub count: i64,
}

const USER_COLUMNS: &str = "id, user_name, external_id, display_name, email, active, resource, \
                            version, created_at, updated_at";
const GROUP_COLUMNS: &str = "id, display_name, external_id, resource, version, created_at, \
                             updated_at";

/// The condition and values of `query` on a table with the given column for each field; `None`
/// when it asks for a field the table lacks (nothing matches).
fn conditions(
    query: &ScimQuery,
    column: impl Fn(ScimField) -> Option<&'static str>,
) -> Option<(String, Vec<String>)> {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    for (field, value) in &query.equals {
        let column = column(*field)?;
        values.push(match field {
            ScimField::UserName | ScimField::Email => value.to_lowercase(),
            _ => value.clone(),
        });
        clauses.push(format!("{column} = ${}", values.len()));
    }
    let condition = if clauses.is_empty() {
        "1 = 1".to_owned()
    } else {
        clauses.join(" AND ")
    };
    Some((condition, values))
}

fn user_column(field: ScimField) -> Option<&'static str> {
    Some(match field {
        ScimField::Id => "id",
        ScimField::UserName => "user_name_key",
        ScimField::ExternalId => "external_id",
        ScimField::DisplayName => "display_name",
        ScimField::Email => "email",
    })
}

fn group_column(field: ScimField) -> Option<&'static str> {
    match field {
        ScimField::Id => Some("id"),
        ScimField::ExternalId => Some("external_id"),
        ScimField::DisplayName => Some("display_name"),
        ScimField::UserName | ScimField::Email => None,
    }
}

impl Store {
    /// Records a new user; a userName taken by another (in any case) is a conflict.
    pub async fn insert_scim_user(&self, user: &ScimUserRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scim_users (id, user_name, user_name_key, external_id, display_name, \
             email, active, resource, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(user.id.as_str())
        .bind(user.user_name.as_str())
        .bind(user.user_name.to_lowercase())
        .bind(user.external_id.as_deref())
        .bind(user.display_name.as_deref())
        .bind(user.email.as_deref().map(str::to_lowercase))
        .bind(i64::from(user.active))
        .bind(user.resource.as_str())
        .bind(user.version)
        .bind(user.created_at.unix_millis())
        .bind(user.updated_at.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(crate::error::conflict_as(|| {
            format!("a SCIM user named {}", user.user_name)
        }))?;
        Ok(())
    }

    pub async fn scim_user(&self, id: &str) -> Result<Option<ScimUserRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM scim_users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Replaces a user read at `read_version`: a conflict when it changed since (or its new
    /// userName is another's), not found when it is gone.
    pub async fn update_scim_user(
        &self,
        user: &ScimUserRecord,
        read_version: i64,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE scim_users SET user_name = $1, user_name_key = $2, external_id = $3, \
             display_name = $4, email = $5, active = $6, resource = $7, version = $8, \
             updated_at = $9 WHERE id = $10 AND version = $11",
        )
        .bind(user.user_name.as_str())
        .bind(user.user_name.to_lowercase())
        .bind(user.external_id.as_deref())
        .bind(user.display_name.as_deref())
        .bind(user.email.as_deref().map(str::to_lowercase))
        .bind(i64::from(user.active))
        .bind(user.resource.as_str())
        .bind(user.version)
        .bind(user.updated_at.unix_millis())
        .bind(user.id.as_str())
        .bind(read_version)
        .execute(&self.pool)
        .await
        .map_err(crate::error::conflict_as(|| {
            format!("a SCIM user named {}", user.user_name)
        }))?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        match self.scim_user(&user.id).await? {
            Some(_) => Err(StoreError::Conflict(format!(
                "SCIM user {} changed since it was read",
                user.id
            ))),
            None => Err(StoreError::NotFound {
                kind: "SCIM user",
                id: user.id.clone(),
            }),
        }
    }

    /// Deletes a user (and its group memberships); whether there was one.
    pub async fn delete_scim_user(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_with_memberships("scim_users", "user_id", id)
            .await
    }

    /// Deletes the row `id` of `table` and the memberships whose `member_column` names it, in
    /// one transaction; whether there was one.
    async fn delete_with_memberships(
        &self,
        table: &'static str,
        member_column: &'static str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM scim_group_members WHERE {member_column} = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE id = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// A page of the users `query` selects, and how many it selects in all.
    pub async fn scim_users(
        &self,
        query: &ScimQuery,
    ) -> Result<(Vec<ScimUserRecord>, i64), StoreError> {
        let (rows, total) = self
            .scim_page("scim_users", USER_COLUMNS, user_column, query)
            .await?;
        let users = rows.iter().map(user_from_row).collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    /// The rows of `table` that `query` selects, a page of them, and how many it selects.
    async fn scim_page(
        &self,
        table: &'static str,
        columns: &'static str,
        column: impl Fn(ScimField) -> Option<&'static str>,
        query: &ScimQuery,
    ) -> Result<(Vec<AnyRow>, i64), StoreError> {
        let Some((condition, values)) = conditions(query, column) else {
            return Ok((Vec::new(), 0));
        };
        let total = self.count_where(table, &condition, &values).await?;
        let page = values.len();
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM {table} WHERE {condition} \
             ORDER BY created_at, id LIMIT ${} OFFSET ${}",
            page + 1,
            page + 2
        )));
        for value in &values {
            rows = rows.bind(value.as_str());
        }
        let rows = rows
            .bind(query.count)
            .bind(query.start)
            .fetch_all(&self.pool)
            .await?;
        Ok((rows, total))
    }

    async fn count_where(
        &self,
        table: &'static str,
        condition: &str,
        values: &[String],
    ) -> Result<i64, StoreError> {
        let mut count = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        )));
        for value in values {
            count = count.bind(value.as_str());
        }
        Ok(count.fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Records a new group with its members; a member that is no user is not found.
    pub async fn insert_scim_group(&self, group: &ScimGroupRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO scim_groups (id, display_name, external_id, resource, version, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(group.id.as_str())
        .bind(group.display_name.as_str())
        .bind(group.external_id.as_deref())
        .bind(group.resource.as_str())
        .bind(group.version)
        .bind(group.created_at.unix_millis())
        .bind(group.updated_at.unix_millis())
        .execute(&mut *tx)
        .await?;
        insert_members(&mut tx, &group.id, &group.members).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn scim_group(&self, id: &str) -> Result<Option<ScimGroupRecord>, StoreError> {
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM scim_groups WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let mut group = group_from_row(&row)?;
        group.members = self.scim_members(id).await?;
        Ok(Some(group))
    }

    async fn scim_members(&self, group: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT user_id FROM scim_group_members WHERE group_id = $1 ORDER BY user_id")
            .bind(group)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(row.try_get("user_id")?))
            .collect()
    }

    /// Replaces a group read at `read_version`, members and all (see
    /// [`Store::update_scim_user`]).
    pub async fn update_scim_group(
        &self,
        group: &ScimGroupRecord,
        read_version: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE scim_groups SET display_name = $1, external_id = $2, resource = $3, \
             version = $4, updated_at = $5 WHERE id = $6 AND version = $7",
        )
        .bind(group.display_name.as_str())
        .bind(group.external_id.as_deref())
        .bind(group.resource.as_str())
        .bind(group.version)
        .bind(group.updated_at.unix_millis())
        .bind(group.id.as_str())
        .bind(read_version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            drop(tx);
            return match self.scim_group(&group.id).await? {
                Some(_) => Err(StoreError::Conflict(format!(
                    "SCIM group {} changed since it was read",
                    group.id
                ))),
                None => Err(StoreError::NotFound {
                    kind: "SCIM group",
                    id: group.id.clone(),
                }),
            };
        }
        sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1")
            .bind(group.id.as_str())
            .execute(&mut *tx)
            .await?;
        insert_members(&mut tx, &group.id, &group.members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a group; whether there was one. Its users stay.
    pub async fn delete_scim_group(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_with_memberships("scim_groups", "group_id", id)
            .await
    }

    /// Every SCIM group, by id with its display name, without members.
    pub async fn scim_group_names(&self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query("SELECT id, display_name FROM scim_groups ORDER BY display_name, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("display_name")?)))
            .collect()
    }

    /// A page of the groups `query` selects, with their members, and how many it selects.
    pub async fn scim_groups(
        &self,
        query: &ScimQuery,
    ) -> Result<(Vec<ScimGroupRecord>, i64), StoreError> {
        let (rows, total) = self
            .scim_page("scim_groups", GROUP_COLUMNS, group_column, query)
            .await?;
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut group = group_from_row(row)?;
            group.members = self.scim_members(&group.id).await?;
            groups.push(group);
        }
        Ok((groups, total))
    }
}

async fn insert_members(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    group: &str,
    members: &[String],
) -> Result<(), StoreError> {
    for member in members {
        sqlx::query(
            "INSERT INTO scim_group_members (group_id, user_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(member.as_str())
        .execute(&mut **tx)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                kind: "SCIM user",
                id: member.clone(),
            },
            _ => StoreError::Database(error),
        })?;
    }
    Ok(())
}

fn user_from_row(row: &AnyRow) -> Result<ScimUserRecord, StoreError> {
    Ok(ScimUserRecord {
        id: row.try_get("id")?,
        user_name: row.try_get("user_name")?,
        external_id: row.try_get("external_id")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        active: row.try_get::<i64, _>("active")? == 1,
        resource: row.try_get("resource")?,
        version: row.try_get("version")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
    })
}

fn group_from_row(row: &AnyRow) -> Result<ScimGroupRecord, StoreError> {
    Ok(ScimGroupRecord {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        external_id: row.try_get("external_id")?,
        resource: row.try_get("resource")?,
        members: Vec::new(),
        version: row.try_get("version")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
    })
}

/// A group chosen as part of Directory Sync's scope, by where it lives and its id there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeGroup {
    /// `scim` for a group provisioned through SCIM.
    pub source: String,
    pub group_id: String,
}

impl Store {
    /// The groups Directory Sync's scope is made of; none when every person is in scope.
    pub async fn directory_scope(&self) -> Result<Vec<ScopeGroup>, StoreError> {
        sqlx::query("SELECT source, group_id FROM directory_scope ORDER BY source, group_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(ScopeGroup {
                    source: row.try_get("source")?,
                    group_id: row.try_get("group_id")?,
                })
            })
            .collect()
    }

    /// Replaces the scope's groups.
    pub async fn set_directory_scope(&self, groups: &[ScopeGroup]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM directory_scope")
            .execute(&mut *tx)
            .await?;
        for group in groups {
            sqlx::query(
                "INSERT INTO directory_scope (source, group_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(group.source.as_str())
            .bind(group.group_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        // What was read of groups no longer chosen is no longer anyone's.
        for table in ["directory_members", "directory_reads"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM directory_scope s \
                 WHERE s.source = {table}.source AND s.group_id = {table}.group_id)"
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    /// Whether an active user in any of the SCIM groups `groups` has the address `email`.
    pub async fn scim_member_with_address(
        &self,
        groups: &[String],
        email: &str,
    ) -> Result<bool, StoreError> {
        for group in groups {
            let found = sqlx::query(
                "SELECT 1 AS found FROM scim_group_members m JOIN scim_users u \
                 ON u.id = m.user_id WHERE m.group_id = $1 AND u.active = 1 AND u.email = $2",
            )
            .bind(group.as_str())
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The addresses of the active users in any of the SCIM groups `groups`, lowercased.
    pub async fn scim_members_addresses(
        &self,
        groups: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut addresses = Vec::new();
        for group in groups {
            let rows = sqlx::query(
                "SELECT u.email FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id \
                 WHERE m.group_id = $1 AND u.active = 1 AND u.email IS NOT NULL",
            )
            .bind(group.as_str())
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                addresses.push(row.try_get::<String, _>("email")?);
            }
        }
        addresses.sort_unstable();
        addresses.dedup();
        Ok(addresses)
    }
}
