//! The members of the directory groups Directory Sync follows, as last read from where each
//! group lives, and each group's last reading (for the console: when, how many, when they last
//! changed, what went wrong).

use std::collections::BTreeSet;

use sqlx::Row;
use switchboard_core::Timestamp;

use crate::{ScopeGroup, Store, StoreError};

/// Rows per INSERT: four values each, well inside both databases' limits on parameters.
const ROWS_PER_INSERT: usize = 500;

/// A group's last reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRead {
    pub group: ScopeGroup,
    pub read_at: Timestamp,
    /// Addresses read (a member with several counts each).
    pub members: i64,
    /// When a reading last found other members than the one before.
    pub changed_at: Option<Timestamp>,
    /// Why the last reading failed; its members are those of the last that succeeded.
    pub error: Option<String>,
}

impl Store {
    /// Replaces a group's members (`(address, account)`, addresses lowercased) with those just
    /// read at `read_at`; answers whether they differ from the ones before.
    pub async fn replace_directory_members(
        &self,
        group: &ScopeGroup,
        members: &[(String, String)],
        read_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let wanted: BTreeSet<(String, String)> = members
            .iter()
            .map(|(email, account)| (email.to_lowercase(), account.clone()))
            .collect();
        let mut tx = self.begin_write().await?;
        let held: BTreeSet<(String, String)> = sqlx::query(
            "SELECT email, account FROM directory_members WHERE source = $1 AND group_id = $2",
        )
        .bind(group.source.as_str())
        .bind(group.group_id.as_str())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("email")?, row.try_get("account")?)))
        .collect::<Result<_, StoreError>>()?;
        let changed = held != wanted;
        if changed {
            sqlx::query("DELETE FROM directory_members WHERE source = $1 AND group_id = $2")
                .bind(group.source.as_str())
                .bind(group.group_id.as_str())
                .execute(&mut *tx)
                .await?;
            let rows: Vec<&(String, String)> = wanted.iter().collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|n| {
                        format!(
                            "(${}, ${}, ${}, ${})",
                            4 * n + 1,
                            4 * n + 2,
                            4 * n + 3,
                            4 * n + 4
                        )
                    })
                    .collect();
                let statement = format!(
                    "INSERT INTO directory_members (source, group_id, email, account) VALUES {} \
                     ON CONFLICT DO NOTHING",
                    values.join(", ")
                );
                let mut insert = sqlx::query(sqlx::AssertSqlSafe(statement));
                for (email, account) in chunk {
                    insert = insert
                        .bind(group.source.as_str())
                        .bind(group.group_id.as_str())
                        .bind(email.as_str())
                        .bind(account.as_str());
                }
                insert.execute(&mut *tx).await?;
            }
        }
        sqlx::query(
            "INSERT INTO directory_reads (source, group_id, read_at, members, changed_at, error) \
             VALUES ($1, $2, $3, $4, $5, NULL) \
             ON CONFLICT (source, group_id) DO UPDATE SET read_at = excluded.read_at, \
             members = excluded.members, error = NULL, \
             changed_at = COALESCE(excluded.changed_at, directory_reads.changed_at)",
        )
        .bind(group.source.as_str())
        .bind(group.group_id.as_str())
        .bind(read_at.unix_millis())
        .bind(wanted.len() as i64)
        .bind(changed.then_some(read_at.unix_millis()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if changed {
            self.directory_changed();
        }
        Ok(changed)
    }

    /// Records that reading a group failed at `at`; its members stay those last read.
    pub async fn record_directory_read_error(
        &self,
        group: &ScopeGroup,
        at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO directory_reads (source, group_id, read_at, members, changed_at, error) \
             VALUES ($1, $2, $3, 0, NULL, $4) \
             ON CONFLICT (source, group_id) DO UPDATE SET read_at = excluded.read_at, \
             error = excluded.error",
        )
        .bind(group.source.as_str())
        .bind(group.group_id.as_str())
        .bind(at.unix_millis())
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every chosen group's last reading, by group.
    pub async fn directory_reads(&self) -> Result<Vec<DirectoryRead>, StoreError> {
        sqlx::query(
            "SELECT source, group_id, read_at, members, changed_at, error FROM directory_reads \
             ORDER BY source, group_id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(DirectoryRead {
                group: ScopeGroup {
                    source: row.try_get("source")?,
                    group_id: row.try_get("group_id")?,
                },
                read_at: Timestamp::from_unix_millis(row.try_get("read_at")?),
                members: row.try_get("members")?,
                changed_at: row
                    .try_get::<Option<i64>, _>("changed_at")?
                    .map(Timestamp::from_unix_millis),
                error: row.try_get("error")?,
            })
        })
        .collect()
    }

    /// Whether a member of any of `groups`, as last read, has the address `email`.
    pub async fn directory_member_with_address(
        &self,
        groups: &[ScopeGroup],
        email: &str,
    ) -> Result<bool, StoreError> {
        let rows = sqlx::query("SELECT source, group_id FROM directory_members WHERE email = $1")
            .bind(email.to_lowercase())
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let group = ScopeGroup {
                source: row.try_get("source")?,
                group_id: row.try_get("group_id")?,
            };
            if groups.contains(&group) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every address of the members of `groups`, as last read, lowercased.
    pub async fn directory_member_addresses(
        &self,
        groups: &[ScopeGroup],
    ) -> Result<Vec<String>, StoreError> {
        let mut addresses = Vec::new();
        for group in groups {
            let rows = sqlx::query(
                "SELECT email FROM directory_members WHERE source = $1 AND group_id = $2",
            )
            .bind(group.source.as_str())
            .bind(group.group_id.as_str())
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

/// What the store knows of one of a connection's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub active: bool,
    /// Linked to a person.
    pub linked: bool,
}

impl Store {
    /// The accounts the connection has, by external id, each with whether it is active and
    /// linked to a person.
    pub async fn account_states(
        &self,
        connection: switchboard_core::ConnectionId,
    ) -> Result<std::collections::HashMap<String, AccountState>, StoreError> {
        sqlx::query("SELECT external_id, active, person_id FROM accounts WHERE connection_id = $1")
            .bind(connection.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("external_id")?,
                    AccountState {
                        active: row.try_get::<i64, _>("active")? != 0,
                        linked: row.try_get::<Option<String>, _>("person_id")?.is_some(),
                    },
                ))
            })
            .collect()
    }
}
