//! Imports: accounts as a platform lists them, page by page, with the run's progress; then the
//! match of all accounts into people.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    AccountId, AccountKind, ConnectionId, Email, ExternalUserId, MatchCandidate, PersonId,
    PersonRef, Platform, Reconciliation, Timestamp,
};

use crate::connections::parse;
use crate::{Store, StoreError, new_uuid};

/// An account as an import page reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedAccount {
    pub external_id: ExternalUserId,
    pub display_name: String,
    /// Primary address first, then aliases; may be empty.
    pub emails: Vec<Email>,
    pub kind: AccountKind,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    Running,
    Succeeded,
    Failed,
}

impl ImportStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Succeeded => "succeeded",
            ImportStatus::Failed => "failed",
        }
    }
}

/// One import of a connection's users, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRun {
    pub id: String,
    pub connection_id: ConnectionId,
    pub status: ImportStatus,
    pub pages: i64,
    /// Accounts the platform listed.
    pub seen: i64,
    pub added: i64,
    pub updated: i64,
    /// Accounts of the connection that this run no longer saw, now marked inactive.
    pub deactivated: i64,
    /// Listed accounts that are not people (bots, deactivated users, the hub's own accounts).
    pub skipped: i64,
    pub error: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

const RUN_COLUMNS: &str = "id, connection_id, status, pages, seen, added, updated, deactivated, \
                           skipped, error, started_at, finished_at";

impl Store {
    /// Starts an import of `connection`; refused while another import of it is running.
    pub async fn start_import(&self, connection: ConnectionId) -> Result<ImportRun, StoreError> {
        let id = new_uuid().to_string();
        let result = sqlx::query(
            "INSERT INTO import_runs (id, connection_id, status, pages, seen, added, updated, \
             deactivated, skipped, error, started_at, finished_at) \
             VALUES ($1, $2, 'running', 0, 0, 0, 0, 0, 0, NULL, $3, NULL)",
        )
        .bind(id.as_str())
        .bind(connection.to_string())
        .bind(self.now().unix_millis())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "an import of connection {connection} that is still running"
                )));
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(StoreError::NotFound {
                    kind: "connection",
                    id: connection.to_string(),
                });
            }
            Err(error) => return Err(error.into()),
        }
        self.import_run(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "import run",
                id,
            })
    }

    /// Stores one page of an import in one transaction and counts it in the run.
    pub async fn record_import_page(
        &self,
        run: &ImportRun,
        platform: Platform,
        accounts: &[ImportedAccount],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let (mut added, mut updated, mut skipped) = (0i64, 0i64, 0i64);
        let now = self.now().unix_millis();
        for account in accounts {
            if account.kind != AccountKind::Human || !account.active {
                skipped += 1;
            }
            let existing: Option<String> = sqlx::query(
                "SELECT id FROM accounts WHERE platform = $1 AND connection_id = $2 AND external_id = $3",
            )
            .bind(platform.as_str())
            .bind(run.connection_id.to_string())
            .bind(account.external_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get("id"))
            .transpose()?;
            let primary = account.emails.first().map(Email::as_str);
            let id = match existing {
                Some(id) => {
                    sqlx::query(
                        "UPDATE accounts SET display_name = $1, email = $2, kind = $3, active = $4, \
                         last_import = $5, updated_at = $6 WHERE id = $7",
                    )
                    .bind(account.display_name.as_str())
                    .bind(primary)
                    .bind(account.kind.as_str())
                    .bind(i64::from(account.active))
                    .bind(run.id.as_str())
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM account_emails WHERE account_id = $1")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    updated += 1;
                    id
                }
                None => {
                    let id = new_uuid().to_string();
                    sqlx::query(
                        "INSERT INTO accounts (id, connection_id, platform, external_id, display_name, \
                         email, kind, active, person_id, updated_at, last_import) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)",
                    )
                    .bind(id.as_str())
                    .bind(run.connection_id.to_string())
                    .bind(platform.as_str())
                    .bind(account.external_id.as_str())
                    .bind(account.display_name.as_str())
                    .bind(primary)
                    .bind(account.kind.as_str())
                    .bind(i64::from(account.active))
                    .bind(now)
                    .bind(run.id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|error| match &error {
                        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                            StoreError::NotFound {
                                kind: "connection on that platform",
                                id: run.connection_id.to_string(),
                            }
                        }
                        _ => StoreError::Database(error),
                    })?;
                    added += 1;
                    id
                }
            };
            let mut seen_addresses = std::collections::HashSet::new();
            for (position, email) in account.emails.iter().enumerate() {
                if !seen_addresses.insert(email) {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO account_emails (account_id, email, position) VALUES ($1, $2, $3)",
                )
                .bind(id.as_str())
                .bind(email.as_str())
                .bind(position as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "UPDATE import_runs SET pages = pages + 1, seen = seen + $1, added = added + $2, \
             updated = updated + $3, skipped = skipped + $4 WHERE id = $5 AND status = 'running'",
        )
        .bind(accounts.len() as i64)
        .bind(added)
        .bind(updated)
        .bind(skipped)
        .bind(run.id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends an import. A successful run marks the connection's accounts it did not see as
    /// inactive (they left); a failed run changes no account, so a half-finished listing never
    /// deactivates anyone.
    pub async fn finish_import(
        &self,
        run: &ImportRun,
        outcome: Result<(), String>,
    ) -> Result<ImportRun, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = self.now().unix_millis();
        match outcome {
            Ok(()) => {
                let deactivated = sqlx::query(
                    "UPDATE accounts SET active = 0, updated_at = $1 WHERE connection_id = $2 \
                     AND active = 1 AND kind = 'human' AND (last_import IS NULL OR last_import <> $3)",
                )
                .bind(now)
                .bind(run.connection_id.to_string())
                .bind(run.id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query(
                    "UPDATE import_runs SET status = 'succeeded', deactivated = $1, finished_at = $2 \
                     WHERE id = $3 AND status = 'running'",
                )
                .bind(deactivated as i64)
                .bind(now)
                .bind(run.id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            Err(reason) => {
                sqlx::query(
                    "UPDATE import_runs SET status = 'failed', error = $1, finished_at = $2 \
                     WHERE id = $3 AND status = 'running'",
                )
                .bind(reason.as_str())
                .bind(now)
                .bind(run.id.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        self.import_run(&run.id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "import run",
                id: run.id.clone(),
            })
    }

    pub async fn import_run(&self, id: &str) -> Result<Option<ImportRun>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM import_runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(run_from_row)
        .transpose()
    }

    /// The connection's imports, newest first.
    pub async fn import_runs(
        &self,
        connection: ConnectionId,
        limit: i64,
    ) -> Result<Vec<ImportRun>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM import_runs WHERE connection_id = $1 \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        )))
        .bind(connection.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(run_from_row)
        .collect()
    }

    /// Replaces the teams whose members a connection imports.
    pub async fn select_teams(
        &self,
        connection: ConnectionId,
        teams: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM selected_teams WHERE connection_id = $1")
            .bind(connection.to_string())
            .execute(&mut *tx)
            .await?;
        for (team_id, name) in teams {
            sqlx::query(
                "INSERT INTO selected_teams (connection_id, team_id, name) VALUES ($1, $2, $3) \
                 ON CONFLICT (connection_id, team_id) DO NOTHING",
            )
            .bind(connection.to_string())
            .bind(team_id.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::NotFound {
                        kind: "connection",
                        id: connection.to_string(),
                    }
                }
                _ => StoreError::Database(error),
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The teams selected for import: `(team id, name)`, by name.
    pub async fn selected_teams(
        &self,
        connection: ConnectionId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query(
            "SELECT team_id, name FROM selected_teams WHERE connection_id = $1 ORDER BY name, team_id",
        )
        .bind(connection.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("team_id")?, row.try_get("name")?)))
        .collect()
    }

    /// Every account in creation order with its addresses, as matching needs them.
    pub async fn match_candidates(&self) -> Result<Vec<MatchCandidate>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.connection_id, a.kind, a.active, a.display_name, e.email \
             FROM accounts a LEFT JOIN account_emails e ON e.account_id = a.id \
             ORDER BY a.id, e.position",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut candidates: Vec<MatchCandidate> = Vec::new();
        for row in &rows {
            let id: AccountId = parse(row, "id")?;
            if candidates.last().is_none_or(|c| c.account != id) {
                let kind: String = row.try_get("kind")?;
                candidates.push(MatchCandidate {
                    account: id,
                    connection: parse(row, "connection_id")?,
                    kind: AccountKind::parse(&kind).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown account kind '{kind}'"))
                    })?,
                    active: row.try_get::<i64, _>("active")? != 0,
                    display_name: row.try_get("display_name")?,
                    emails: Vec::new(),
                });
            }
            if let Some(email) = row.try_get::<Option<String>, _>("email")? {
                let email = Email::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(candidate) = candidates.last_mut() {
                    candidate.emails.push(email);
                }
            }
        }
        Ok(candidates)
    }

    /// Which person each linked account belongs to.
    pub async fn account_links(&self) -> Result<HashMap<AccountId, PersonId>, StoreError> {
        sqlx::query("SELECT id, person_id FROM accounts WHERE person_id IS NOT NULL")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((parse(row, "id")?, parse(row, "person_id")?)))
            .collect()
    }

    /// Applies a reconciliation in one transaction, then refreshes every person's set of
    /// platforms and sets the primary platform of people who are on exactly one. A primary set
    /// automatically is withdrawn when the person turns out to be on several platforms and
    /// nothing depends on it yet (no representation), so that someone chooses; once they are
    /// represented it stays, and they are listed as needing a choice. Returns how many people
    /// were created.
    pub async fn apply_reconciliation(&self, plan: &Reconciliation) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = self.now().unix_millis();
        let mut new_ids = Vec::with_capacity(plan.new_people.len());
        for person in &plan.new_people {
            sqlx::query(
                "INSERT INTO people (id, display_name, email, primary_platform, created_at, \
                 updated_at, platforms) VALUES ($1, $2, $3, NULL, $4, $4, 0) \
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(new_uuid().to_string())
            .bind(person.display_name.as_str())
            .bind(person.email.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id: String = sqlx::query("SELECT id FROM people WHERE email = $1")
                .bind(person.email.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
            new_ids.push(id);
        }
        for (account, target) in &plan.links {
            let person = match target {
                PersonRef::Existing(person) => person.to_string(),
                PersonRef::New(index) => new_ids
                    .get(*index)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("no new person {index}")))?,
            };
            sqlx::query("UPDATE accounts SET person_id = $1 WHERE id = $2")
                .bind(person)
                .bind(account.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let bits: String = Platform::ALL
            .iter()
            .map(|p| format!("WHEN '{}' THEN {}", p.as_str(), p.bit()))
            .collect::<Vec<_>>()
            .join(" ");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE people SET platforms = (SELECT COALESCE(SUM(DISTINCT CASE a.platform {bits} \
             ELSE 0 END), 0) FROM accounts a WHERE a.person_id = people.id AND a.active = 1 \
             AND a.kind = 'human')"
        )))
        .execute(&mut *tx)
        .await?;
        let single: String = Platform::ALL
            .iter()
            .map(|p| format!("WHEN {} THEN '{}'", p.bit(), p.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        let singles: String = Platform::ALL
            .iter()
            .map(|p| p.bit().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE people SET primary_platform = CASE platforms {single} END, \
             primary_chosen_by = 'automatic', updated_at = $1 \
             WHERE primary_platform IS NULL AND platforms IN ({singles})"
        )))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE people SET primary_platform = NULL, primary_chosen_by = NULL, updated_at = $1 \
             WHERE primary_chosen_by = 'automatic' AND platforms NOT IN (0, {singles}) \
             AND NOT EXISTS (SELECT 1 FROM representations r WHERE r.person_id = people.id)"
        )))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(plan.new_people.len())
    }
}

fn run_from_row(row: &AnyRow) -> Result<ImportRun, StoreError> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "running" => ImportStatus::Running,
        "succeeded" => ImportStatus::Succeeded,
        "failed" => ImportStatus::Failed,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown import status '{other}'"
            )));
        }
    };
    Ok(ImportRun {
        id: row.try_get("id")?,
        connection_id: parse(row, "connection_id")?,
        status,
        pages: row.try_get("pages")?,
        seen: row.try_get("seen")?,
        added: row.try_get("added")?,
        updated: row.try_get("updated")?,
        deactivated: row.try_get("deactivated")?,
        skipped: row.try_get("skipped")?,
        error: row.try_get("error")?,
        started_at: Timestamp::from_unix_millis(row.try_get("started_at")?),
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at")?
            .map(Timestamp::from_unix_millis),
    })
}
