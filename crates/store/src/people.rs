use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    Account, AccountId, AccountKind, ChosenBy, ConnectionId, Email, ExternalUserId, Person,
    PersonId, Platform, Primary,
};

use crate::connections::{parse, parse_optional};
use crate::error::conflict_as;
use crate::{Store, StoreError, new_uuid};

/// An account as a platform reports it, before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub connection_id: ConnectionId,
    pub platform: Platform,
    pub external_id: ExternalUserId,
    pub display_name: String,
    pub email: Option<Email>,
    pub kind: AccountKind,
    pub active: bool,
}

const PERSON_COLUMNS: &str = "id, display_name, email, primary_platform, primary_chosen_by";
const ACCOUNT_COLUMNS: &str =
    "id, connection_id, platform, external_id, display_name, email, kind, active, person_id";

impl Store {
    pub async fn create_person(
        &self,
        display_name: &str,
        email: &Email,
    ) -> Result<Person, StoreError> {
        let changed: Result<Person, StoreError> = async {
            let person = Person {
                id: PersonId::from_uuid(new_uuid()),
                display_name: display_name.to_owned(),
                email: email.clone(),
                primary: None,
            };
            let now = self.now().unix_millis();
            sqlx::query(
                "INSERT INTO people (id, display_name, email, primary_platform, created_at, updated_at) \
                 VALUES ($1, $2, $3, NULL, $4, $4)",
            )
            .bind(person.id.to_string())
            .bind(display_name)
            .bind(email.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(conflict_as(|| format!("a person with e-mail {email}")))?;
            Ok(person)
        }
        .await;
        self.directory_changed();
        changed
    }

    pub async fn person(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(person_from_row)
        .transpose()
    }

    pub async fn person_by_email(&self, email: &Email) -> Result<Option<Person>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE email = $1"
        )))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(person_from_row)
        .transpose()
    }

    /// The admin's rule "members of `team` chat from `platform`": sets, as chosen by the admin,
    /// the primary of every person with an active account imported from `team` who has an
    /// active account of their own on `platform` and is on several platforms (people on one
    /// keep their automatic primary). Answers how many people's primary changed.
    pub async fn set_primary_of_team_members(
        &self,
        team: &str,
        platform: Platform,
    ) -> Result<u64, StoreError> {
        let changed: Result<u64, StoreError> = async {
            let singles: String = Platform::ALL
                .iter()
                .map(|p| p.bit().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE people SET primary_platform = $1, primary_chosen_by = 'admin', updated_at = $2 \
                 WHERE platforms NOT IN (0, {singles}) \
                 AND (primary_platform IS NULL OR primary_platform <> $3 \
                 OR primary_chosen_by IS NULL OR primary_chosen_by <> 'admin') \
                 AND id IN (SELECT a.person_id FROM account_teams t JOIN accounts a ON a.id = t.account_id \
                 WHERE t.team_id = $4 AND a.active = 1 AND a.person_id IS NOT NULL) \
                 AND EXISTS (SELECT 1 FROM accounts o WHERE o.person_id = people.id \
                 AND o.platform = $5 AND o.active = 1 AND o.kind = 'human')"
            )))
            .bind(platform.as_str())
            .bind(self.now().unix_millis())
            .bind(platform.as_str())
            .bind(team)
            .bind(platform.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(changed)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Sets (or clears, with `None`) a person's primary platform.
    pub async fn set_primary(
        &self,
        id: PersonId,
        primary: Option<Primary>,
    ) -> Result<Person, StoreError> {
        let changed: Result<Person, StoreError> = async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE people SET primary_platform = $1, primary_chosen_by = $2, updated_at = $3 \
                 WHERE id = $4 RETURNING {PERSON_COLUMNS}"
            )))
            .bind(primary.map(|p| p.platform.as_str()))
            .bind(primary.map(|p| p.chosen_by.as_str()))
            .bind(self.now().unix_millis())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "person",
                id: id.to_string(),
            })?;
            person_from_row(&row)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Deletes a person and everything that hangs off them (representations, history,
    /// conversation memberships); their accounts stay, unlinked, as the platforms still have them.
    pub async fn delete_person(&self, id: PersonId) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let result = sqlx::query("DELETE FROM people WHERE id = $1")
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: "person",
                    id: id.to_string(),
                });
            }
            Ok(())
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Inserts the account, or updates the one already known by its platform, connection and
    /// external id: importing the same user twice never makes two accounts. The link to a person
    /// is left as it was.
    pub async fn upsert_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        let changed: Result<Account, StoreError> = async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO accounts (id, connection_id, platform, external_id, display_name, email, \
                 kind, active, person_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9) \
                 ON CONFLICT (platform, connection_id, external_id) DO UPDATE SET \
                 display_name = excluded.display_name, email = excluded.email, kind = excluded.kind, \
                 active = excluded.active, updated_at = excluded.updated_at \
                 RETURNING {ACCOUNT_COLUMNS}"
            )))
            .bind(new_uuid().to_string())
            .bind(account.connection_id.to_string())
            .bind(account.platform.as_str())
            .bind(account.external_id.as_str())
            .bind(account.display_name.as_str())
            .bind(account.email.as_ref().map(Email::as_str))
            .bind(account.kind.as_str())
            .bind(i64::from(account.active))
            .bind(self.now().unix_millis())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                    kind: "connection on that platform",
                    id: account.connection_id.to_string(),
                },
                _ => StoreError::Database(error),
            })?;
            account_from_row(&row)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Links an account to the person it belongs to, or unlinks it with `None`.
    pub async fn link_account(
        &self,
        account: AccountId,
        person: Option<PersonId>,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let result = sqlx::query("UPDATE accounts SET person_id = $1 WHERE id = $2")
                .bind(person.map(|p| p.to_string()))
                .bind(account.to_string())
                .execute(&self.pool)
                .await
                .map_err(|error| match &error {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        StoreError::NotFound {
                            kind: "person",
                            id: person.map(|p| p.to_string()).unwrap_or_default(),
                        }
                    }
                    _ => StoreError::Database(error),
                })?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: "account",
                    id: account.to_string(),
                });
            }
            Ok(())
        }
        .await;
        self.directory_changed();
        changed
    }

    pub async fn accounts_of_person(&self, person: PersonId) -> Result<Vec<Account>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE person_id = $1 ORDER BY platform, id"
        )))
        .bind(person.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account_from_row)
        .collect()
    }
}

pub(crate) fn person_from_row(row: &AnyRow) -> Result<Person, StoreError> {
    Ok(Person {
        id: parse(row, "id")?,
        display_name: row.try_get("display_name")?,
        email: parse_email(row.try_get("email")?)?,
        primary: match parse_optional::<Platform>(row, "primary_platform")? {
            None => None,
            Some(platform) => {
                let chosen_by: Option<String> = row.try_get("primary_chosen_by")?;
                let chosen_by =
                    chosen_by
                        .as_deref()
                        .and_then(ChosenBy::parse)
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "primary {platform} chosen by {chosen_by:?}"
                            ))
                        })?;
                Some(Primary {
                    platform,
                    chosen_by,
                })
            }
        },
    })
}

fn account_from_row(row: &AnyRow) -> Result<Account, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Account {
        id: parse(row, "id")?,
        connection_id: parse(row, "connection_id")?,
        platform: parse(row, "platform")?,
        external_id: ExternalUserId::new(row.try_get::<String, _>("external_id")?),
        display_name: row.try_get("display_name")?,
        email: row
            .try_get::<Option<String>, _>("email")?
            .map(parse_email)
            .transpose()?,
        kind: AccountKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown account kind '{kind}'")))?,
        active: row.try_get::<i64, _>("active")? != 0,
        person_id: parse_optional(row, "person_id")?,
    })
}

fn parse_email(text: String) -> Result<Email, StoreError> {
    Email::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
