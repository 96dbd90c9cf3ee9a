//! Imports: accounts as a platform lists them, page by page, with the run's progress; then the
//! match of all accounts into people.

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;
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
    /// Accounts the platform listed: `added + updated + skipped`.
    pub seen: i64,
    /// Accounts of people, new to the hub.
    pub added: i64,
    /// Accounts of people the hub had already.
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

    /// Stores one page of an import in one transaction and counts it in the run. `team` is the
    /// team the page lists the members of, for platforms that import by team: each account's
    /// membership is recorded. Accounts that are the hub's own representations (the guests and
    /// bots it created) are stored as such, whatever the platform says they are.
    pub async fn record_import_page(
        &self,
        run: &ImportRun,
        platform: Platform,
        team: Option<&str>,
        accounts: &[ImportedAccount],
    ) -> Result<(), StoreError> {
        self.write_accounts(run.connection_id, Some(run), platform, team, accounts)
            .await
    }

    /// Stores accounts learnt outside an import (Directory Sync's joiners), as an import page
    /// stores them but counted in no run: the connection's next import sees them like any
    /// other.
    pub async fn record_accounts(
        &self,
        connection: ConnectionId,
        platform: Platform,
        accounts: &[ImportedAccount],
    ) -> Result<(), StoreError> {
        self.write_accounts(connection, None, platform, None, accounts)
            .await
    }

    async fn write_accounts(
        &self,
        connection_id: ConnectionId,
        run: Option<&ImportRun>,
        platform: Platform,
        team: Option<&str>,
        accounts: &[ImportedAccount],
    ) -> Result<(), StoreError> {
        let run_id = run.map(|run| run.id.as_str());
        let changed: Result<(), StoreError> = async {
            let mut tx = self.begin_write().await?;
            let (mut added, mut updated, mut skipped) = (0i64, 0i64, 0i64);
            let now = self.now().unix_millis();
            let connection = connection_id.to_string();
            // The accounts of this page the connection already has, found in a few statements
            // rather than one per account: a large import writes hundreds of pages.
            let mut known: HashMap<String, String> = HashMap::new();
            let mut external_ids: Vec<&str> = accounts.iter().map(|a| a.external_id.as_str()).collect();
            external_ids.sort_unstable();
            external_ids.dedup();
            for chunk in external_ids.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from(
                    "SELECT id, external_id FROM accounts WHERE platform = $1 AND connection_id = $2 \
                     AND external_id IN (",
                );
                push_placeholders(&mut text, 3, chunk.len());
                text.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text))
                    .bind(platform.as_str())
                    .bind(connection.as_str());
                for external_id in chunk {
                    query = query.bind(*external_id);
                }
                for row in query.fetch_all(&mut *tx).await? {
                    known.insert(row.try_get("external_id")?, row.try_get("id")?);
                }
            }
            // The hub's own accounts among them: those its guests and bots act as.
            let mut hub_accounts: HashSet<String> = HashSet::new();
            for chunk in external_ids.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from(
                    "SELECT external_id FROM representations WHERE platform = $1 \
                     AND kind IN ('guest_account', 'bot') AND external_id IN (",
                );
                push_placeholders(&mut text, 2, chunk.len());
                text.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text)).bind(platform.as_str());
                for external_id in chunk {
                    query = query.bind(*external_id);
                }
                for row in query.fetch_all(&mut *tx).await? {
                    hub_accounts.insert(row.try_get("external_id")?);
                }
            }
            let kind_of = |account: &ImportedAccount| {
                if hub_accounts.contains(account.external_id.as_str()) {
                    AccountKind::HubRepresentation
                } else {
                    account.kind
                }
            };
            let mut inserts: Vec<(String, &ImportedAccount)> = Vec::new();
            // Accounts updated, with the row as this page last reports it.
            let mut updates: Vec<(String, &ImportedAccount)> = Vec::new();
            // Each account's addresses as this page last reports them.
            let mut addresses: HashMap<String, &ImportedAccount> = HashMap::new();
            let mut order: Vec<String> = Vec::new();
            for account in accounts {
                // Each listed account is counted once, so that the run's summary adds up: an
                // account that is no person is stored all the same, but counted as skipped.
                let person = kind_of(account) == AccountKind::Human && account.active;
                if !person {
                    skipped += 1;
                }
                let id = match known.get(account.external_id.as_str()) {
                    Some(id) => {
                        updates.push((id.clone(), account));
                        updated += i64::from(person);
                        id.clone()
                    }
                    None => {
                        let id = new_uuid().to_string();
                        known.insert(account.external_id.as_str().to_owned(), id.clone());
                        inserts.push((id.clone(), account));
                        added += i64::from(person);
                        id
                    }
                };
                if addresses.insert(id.clone(), account).is_none() {
                    order.push(id);
                }
            }
            for chunk in inserts.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from(
                    "INSERT INTO accounts (id, connection_id, platform, external_id, display_name, \
                     email, kind, active, updated_at, last_import, person_id) VALUES ",
                );
                push_rows(&mut text, chunk.len(), 10, ", NULL");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for (id, account) in chunk {
                    query = query
                        .bind(id.as_str())
                        .bind(connection.as_str())
                        .bind(platform.as_str())
                        .bind(account.external_id.as_str())
                        .bind(account.display_name.as_str())
                        .bind(account.emails.first().map(Email::as_str))
                        .bind(kind_of(account).as_str())
                        .bind(i64::from(account.active))
                        .bind(now)
                        .bind(run_id);
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(|error| match &error {
                        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                            StoreError::NotFound {
                                kind: "connection on that platform",
                                id: connection_id.to_string(),
                            }
                        }
                        _ => StoreError::Database(error),
                    })?;
            }
            for (id, account) in &updates {
                // Once the hub's, an account stays the hub's: a removed bot's deactivated user is
                // still listed, and must not turn into somebody else's bot.
                sqlx::query(
                    "UPDATE accounts SET display_name = $1, email = $2, \
                     kind = CASE WHEN kind = 'hub_representation' THEN kind ELSE $3 END, active = $4, \
                     last_import = COALESCE($5, last_import), updated_at = $6 WHERE id = $7",
                )
                .bind(account.display_name.as_str())
                .bind(account.emails.first().map(Email::as_str))
                .bind(kind_of(account).as_str())
                .bind(i64::from(account.active))
                .bind(run_id)
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            let mut replaced: Vec<&str> = updates.iter().map(|(id, _)| id.as_str()).collect();
            replaced.sort_unstable();
            replaced.dedup();
            for chunk in replaced.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from("DELETE FROM account_emails WHERE account_id IN (");
                push_placeholders(&mut text, 1, chunk.len());
                text.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *tx).await?;
            }
            let mut rows: Vec<(&str, &str, i64)> = Vec::new();
            for id in &order {
                let mut seen_addresses = HashSet::new();
                for (position, email) in addresses[id].emails.iter().enumerate() {
                    if seen_addresses.insert(email) {
                        rows.push((id.as_str(), email.as_str(), position as i64));
                    }
                }
            }
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut text =
                    String::from("INSERT INTO account_emails (account_id, email, position) VALUES ");
                push_rows(&mut text, chunk.len(), 3, "");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for (id, email, position) in chunk {
                    query = query.bind(*id).bind(*email).bind(*position);
                }
                query.execute(&mut *tx).await?;
            }
            // The hub's accounts belong to the people they represent.
            let hub_ids: Vec<&str> = accounts
                .iter()
                .filter(|account| hub_accounts.contains(account.external_id.as_str()))
                .filter_map(|account| known.get(account.external_id.as_str()))
                .map(String::as_str)
                .collect();
            for chunk in hub_ids.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from(
                    "UPDATE accounts SET person_id = (SELECT r.person_id FROM representations r \
                     WHERE r.platform = accounts.platform AND r.external_id = accounts.external_id \
                     AND r.kind IN ('guest_account', 'bot') LIMIT 1) WHERE id IN (",
                );
                push_placeholders(&mut text, 1, chunk.len());
                text.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *tx).await?;
            }
            if let (Some(team), Some(run_id)) = (team, run_id) {
                for chunk in order.chunks(ROWS_PER_STATEMENT) {
                    let mut text = String::from(
                        "INSERT INTO account_teams (account_id, team_id, last_import) VALUES ",
                    );
                    push_rows(&mut text, chunk.len(), 3, "");
                    text.push_str(
                        " ON CONFLICT (account_id, team_id) DO UPDATE SET last_import = excluded.last_import",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for id in chunk {
                        query = query.bind(id.as_str()).bind(team).bind(run_id);
                    }
                    query.execute(&mut *tx).await?;
                }
            }
            if let Some(run_id) = run_id {
                sqlx::query(
                    "UPDATE import_runs SET pages = pages + 1, seen = seen + $1, added = added + $2, \
                     updated = updated + $3, skipped = skipped + $4 WHERE id = $5 AND status = 'running'",
                )
                .bind(accounts.len() as i64)
                .bind(added)
                .bind(updated)
                .bind(skipped)
                .bind(run_id)
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

    /// Ends an import. A successful run marks the connection's accounts it did not see as
    /// inactive (they left); a failed run changes no account, so a half-finished listing never
    /// deactivates anyone.
    pub async fn finish_import(
        &self,
        run: &ImportRun,
        outcome: Result<(), String>,
    ) -> Result<ImportRun, StoreError> {
        let changed: Result<ImportRun, StoreError> = async {
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
                    // Memberships this run did not see: the account left that team (or the team is
                    // no longer selected).
                    sqlx::query(
                        "DELETE FROM account_teams WHERE last_import <> $1 \
                         AND account_id IN (SELECT id FROM accounts WHERE connection_id = $2)",
                    )
                    .bind(run.id.as_str())
                    .bind(run.connection_id.to_string())
                    .execute(&mut *tx)
                    .await?;
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
        .await;
        self.directory_changed();
        changed
    }

    /// Marks every import still recorded as running failed: called when the hub starts, holding
    /// the instance lock, so none of them can still be running, and an import the hub was
    /// stopped in the middle of would otherwise refuse every later import of its connection.
    /// Answers how many there were.
    pub async fn fail_interrupted_imports(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let failed = sqlx::query(
            "UPDATE import_runs SET status = 'failed', error = $1, finished_at = $2 \
             WHERE status = 'running'",
        )
        .bind("interrupted: the hub stopped before the import finished; import again")
        .bind(self.now().unix_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(failed)
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
        // Read row by row: a large directory's rows, all held at once, would take more memory
        // than the candidates made of them.
        let mut rows = sqlx::query(
            "SELECT a.id, a.connection_id, a.kind, a.active, a.display_name, e.email \
             FROM accounts a LEFT JOIN account_emails e ON e.account_id = a.id \
             ORDER BY a.id, e.position",
        )
        .fetch(&self.pool);
        let mut candidates: Vec<MatchCandidate> = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let row = &row;
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
        let mut rows =
            sqlx::query("SELECT id, person_id FROM accounts WHERE person_id IS NOT NULL")
                .fetch(&self.pool);
        let mut links = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            links.insert(parse(&row, "id")?, parse(&row, "person_id")?);
        }
        Ok(links)
    }

    /// Applies a reconciliation in one transaction, then refreshes every person's set of
    /// platforms and sets the primary platform of people who are on exactly one. A primary set
    /// automatically is withdrawn when the person turns out to be on several platforms and
    /// nothing depends on it yet (no representation), so that someone chooses; once they are
    /// represented it stays, and they are listed as needing a choice. Returns how many people
    /// were created.
    pub async fn apply_reconciliation(&self, plan: &Reconciliation) -> Result<usize, StoreError> {
        let changed: Result<usize, StoreError> = async {
            let mut tx = self.begin_write().await?;
            let now = self.now().unix_millis();
            for chunk in plan.new_people.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from(
                    "INSERT INTO people (id, display_name, email, created_at, updated_at, \
                     primary_platform, platforms) VALUES ",
                );
                push_rows(&mut text, chunk.len(), 5, ", NULL, 0");
                text.push_str(" ON CONFLICT (email) DO NOTHING");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for person in chunk {
                    query = query
                        .bind(new_uuid().to_string())
                        .bind(person.display_name.as_str())
                        .bind(person.email.as_str())
                        .bind(now)
                        .bind(now);
                }
                query.execute(&mut *tx).await?;
            }
            let mut by_email: HashMap<String, String> = HashMap::new();
            for chunk in plan.new_people.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from("SELECT id, email FROM people WHERE email IN (");
                push_placeholders(&mut text, 1, chunk.len());
                text.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for person in chunk {
                    query = query.bind(person.email.as_str());
                }
                for row in query.fetch_all(&mut *tx).await? {
                    by_email.insert(row.try_get("email")?, row.try_get("id")?);
                }
            }
            let mut new_ids = Vec::with_capacity(plan.new_people.len());
            for person in &plan.new_people {
                let id = by_email
                    .get(person.email.as_str())
                    .cloned()
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("no person with the address {}", person.email))
                    })?;
                new_ids.push(id);
            }
            let mut links: Vec<(String, String)> = Vec::with_capacity(plan.links.len());
            for (account, target) in &plan.links {
                let person = match target {
                    PersonRef::Existing(person) => person.to_string(),
                    PersonRef::New(index) => new_ids
                        .get(*index)
                        .cloned()
                        .ok_or_else(|| StoreError::Corrupt(format!("no new person {index}")))?,
                };
                links.push((account.to_string(), person));
            }
            for chunk in links.chunks(ROWS_PER_STATEMENT) {
                let mut text = String::from("UPDATE accounts SET person_id = CASE id");
                for index in 0..chunk.len() {
                    text.push_str(&format!(" WHEN ${} THEN ${}", 2 * index + 1, 2 * index + 2));
                }
                text.push_str(" END WHERE id IN (");
                push_placeholders(&mut text, 2 * chunk.len() + 1, chunk.len());
                text.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for (account, person) in chunk {
                    query = query.bind(account.as_str()).bind(person.as_str());
                }
                for (account, _) in chunk {
                    query = query.bind(account.as_str());
                }
                query.execute(&mut *tx).await?;
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
            // People on several platforms must choose; people on none (they left) have nothing
            // left to be primary on, so auto-sync never represents them.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE people SET primary_platform = NULL, primary_chosen_by = NULL, updated_at = $1 \
                 WHERE primary_chosen_by = 'automatic' AND platforms NOT IN ({singles}) \
                 AND NOT EXISTS (SELECT 1 FROM representations r WHERE r.person_id = people.id)"
            )))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(plan.new_people.len())
        }
        .await;
        self.directory_changed();
        changed
    }

    /// People who left: every account of theirs is inactive (deactivated, or gone from what
    /// the last imports listed), yet a representation of theirs is still pending, synced or
    /// failed on some platform.
    pub async fn people_who_left(&self) -> Result<Vec<PersonId>, StoreError> {
        sqlx::query(
            "SELECT p.id FROM people p WHERE p.platforms = 0 \
             AND EXISTS (SELECT 1 FROM accounts a WHERE a.person_id = p.id AND a.kind = 'human') \
             AND EXISTS (SELECT 1 FROM representations r WHERE r.person_id = p.id \
             AND r.status <> 'not_created') ORDER BY p.id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| parse(row, "id"))
        .collect()
    }
}

/// Rows per multi-row statement: well under both databases' limits on bound values.
const ROWS_PER_STATEMENT: usize = 200;

/// `$first, $first+1, …`: `count` placeholders, numbered in the order they appear.
fn push_placeholders(text: &mut String, first: usize, count: usize) {
    for index in 0..count {
        if index > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!("${}", first + index));
    }
}

/// `($1, $2, …)`, one group of `columns` placeholders per row, numbered in the order they
/// appear, each group followed by `tail` (literal values the rows share).
fn push_rows(text: &mut String, rows: usize, columns: usize, tail: &str) {
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        push_placeholders(text, row * columns + 1, columns);
        text.push_str(tail);
        text.push(')');
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
