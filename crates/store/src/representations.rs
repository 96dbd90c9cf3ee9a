use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use switchboard_core::{
    ConnectionId, ExternalUserId, PersonId, Platform, Representation, RepresentationKind,
    SyncEvent, SyncStatus, SyncStatusCode, Timestamp, Transition,
};
use switchboard_secrets::SecretString;

use crate::connections::{parse, parse_optional};
use crate::error::conflict_as;
use crate::{Store, StoreError};

/// One recorded change of a representation's sync status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    pub from: SyncStatusCode,
    pub to: SyncStatus,
    /// Who or what caused it, in words an admin understands ("admin alice@acme.com: reset").
    pub cause: String,
    pub at: Timestamp,
}

/// A representation's credentials, decrypted, and when its access token expires.
#[derive(Debug, Clone, Default)]
pub struct RepresentationSecrets {
    pub secrets: Vec<(String, SecretString)>,
    pub expires_at: Option<Timestamp>,
}

const REPRESENTATION_COLUMNS: &str =
    "person_id, platform, kind, status, failure_reason, account_id, external_id";

impl Store {
    /// Records that `person` is to be represented on `platform` as `kind`; it starts not created.
    pub async fn create_representation(
        &self,
        person: PersonId,
        platform: Platform,
        kind: RepresentationKind,
    ) -> Result<Representation, StoreError> {
        let changed: Result<Representation, StoreError> = async {
            sqlx::query(
                "INSERT INTO representations (person_id, platform, kind, status, failure_reason, \
                 account_id, updated_at) VALUES ($1, $2, $3, 'not_created', NULL, NULL, $4)",
            )
            .bind(person.to_string())
            .bind(platform.as_str())
            .bind(kind.as_str())
            .bind(self.now().unix_millis())
            .execute(&self.pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::NotFound {
                        kind: "person",
                        id: person.to_string(),
                    }
                }
                _ => {
                    conflict_as(|| format!("a {platform} representation of person {person}"))(error)
                }
            })?;
            Ok(Representation {
                person_id: person,
                platform,
                kind,
                status: SyncStatus::NotCreated,
                account_id: None,
                external_account: None,
            })
        }
        .await;
        self.directory_changed();
        changed
    }

    pub async fn representation(
        &self,
        person: PersonId,
        platform: Platform,
    ) -> Result<Option<Representation>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPRESENTATION_COLUMNS} FROM representations \
             WHERE person_id = $1 AND platform = $2"
        )))
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(representation_from_row)
        .transpose()
    }

    pub async fn representations_of(
        &self,
        person: PersonId,
    ) -> Result<Vec<Representation>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPRESENTATION_COLUMNS} FROM representations WHERE person_id = $1 \
             ORDER BY platform"
        )))
        .bind(person.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(representation_from_row)
        .collect()
    }

    /// Runs `event` through the sync state machine and, if it is legal, stores the new status
    /// and its history entry in one transaction. An illegal event changes nothing.
    pub async fn apply_sync_event(
        &self,
        person: PersonId,
        platform: Platform,
        event: SyncEvent,
        cause: &str,
    ) -> Result<Transition, StoreError> {
        let changed: Result<Transition, StoreError> = async {
            let mut tx = self.begin_write().await?;
            let transition = self
                .transition_in(&mut tx, person, platform, event, cause)
                .await?;
            tx.commit().await?;
            Ok(transition)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Completes a sync: the representation is `account` on the platform, acting with
    /// `secrets` (sealed at rest, replacing any before), its status becomes synced and its
    /// prompts' links are spent — all in one transaction, so a synced representation always has
    /// its credentials.
    pub async fn complete_sync(
        &self,
        person: PersonId,
        platform: Platform,
        account: &ExternalUserId,
        secrets: &RepresentationSecrets,
        cause: &str,
    ) -> Result<Transition, StoreError> {
        self.sync_with(
            person,
            platform,
            SyncEvent::Completed,
            account,
            secrets,
            cause,
        )
        .await
    }

    /// Like [`Store::complete_sync`], for a person's own account the admin's standing grant lets
    /// the hub act as, with no prompt ([`SyncEvent::Granted`]).
    pub async fn grant_sync(
        &self,
        person: PersonId,
        platform: Platform,
        account: &ExternalUserId,
        secrets: &RepresentationSecrets,
        cause: &str,
    ) -> Result<Transition, StoreError> {
        self.sync_with(
            person,
            platform,
            SyncEvent::Granted,
            account,
            secrets,
            cause,
        )
        .await
    }

    async fn sync_with(
        &self,
        person: PersonId,
        platform: Platform,
        event: SyncEvent,
        account: &ExternalUserId,
        secrets: &RepresentationSecrets,
        cause: &str,
    ) -> Result<Transition, StoreError> {
        let changed: Result<Transition, StoreError> = async {
            let mut tx = self.begin_write().await?;
            let transition = self
                .transition_in(&mut tx, person, platform, event, cause)
                .await?;
            sqlx::query(
                "UPDATE representations SET external_id = $1 WHERE person_id = $2 AND platform = $3",
            )
            .bind(account.as_str())
            .bind(person.to_string())
            .bind(platform.as_str())
            .execute(&mut *tx)
            .await?;
            self.replace_secrets_in(&mut tx, person, platform, secrets)
                .await?;
            // This is where "Sync now" links are spent, every one sent for the representation:
            // not when followed, so that a person who left the sign-in unfinished can come back.
            sqlx::query(
                "UPDATE prompts SET used_at = $1 \
                 WHERE person_id = $2 AND platform = $3 AND used_at IS NULL",
            )
            .bind(self.now().unix_millis())
            .bind(person.to_string())
            .bind(platform.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(transition)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Replaces a representation's stored credentials without changing its status: what the
    /// platform created before a consent (a bot's app), kept so it can be removed again.
    pub async fn set_representation_secrets(
        &self,
        person: PersonId,
        platform: Platform,
        secrets: &RepresentationSecrets,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let mut tx = self.begin_write().await?;
            self.replace_secrets_in(&mut tx, person, platform, secrets)
                .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.directory_changed();
        changed
    }

    async fn replace_secrets_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        person: PersonId,
        platform: Platform,
        secrets: &RepresentationSecrets,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM representation_secrets WHERE person_id = $1 AND platform = $2")
            .bind(person.to_string())
            .bind(platform.as_str())
            .execute(&mut **tx)
            .await?;
        let now = self.now().unix_millis();
        for (name, secret) in &secrets.secrets {
            sqlx::query(
                "INSERT INTO representation_secrets (person_id, platform, name, sealed, \
                 expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(person.to_string())
            .bind(platform.as_str())
            .bind(name.as_str())
            .bind(self.cipher.seal(
                secret,
                &representation_secret_context(person, platform, name),
            ))
            .bind(secrets.expires_at.map(Timestamp::unix_millis))
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::NotFound {
                        kind: "representation",
                        id: format!("{person}/{platform}"),
                    }
                }
                _ => StoreError::Database(error),
            })?;
        }
        Ok(())
    }

    /// Breaks a sync: the status returns to not created, and the account, its credentials, the
    /// person's unused prompts and the flows waiting for consent are forgotten, in one
    /// transaction. Removing what the hub created on the platform is the caller's job, first.
    pub async fn reset_representation(
        &self,
        person: PersonId,
        platform: Platform,
        cause: &str,
    ) -> Result<Transition, StoreError> {
        let changed: Result<Transition, StoreError> = async {
            let mut tx = self.begin_write().await?;
            let transition = self
                .transition_in(&mut tx, person, platform, SyncEvent::Reset, cause)
                .await?;
            for statement in [
                "UPDATE representations SET external_id = NULL WHERE person_id = $1 AND platform = $2",
                "DELETE FROM representation_secrets WHERE person_id = $1 AND platform = $2",
                "DELETE FROM prompts WHERE person_id = $1 AND platform = $2",
                "DELETE FROM flows WHERE person_id = $1 AND platform = $2",
            ] {
                sqlx::query(statement)
                    .bind(person.to_string())
                    .bind(platform.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(transition)
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Changes how a representation that is not created yet will be made (the person gained or
    /// lost an account on that platform since it was recorded). Refused once it exists, as a
    /// conflict: what was created must be reset first.
    pub async fn set_representation_kind(
        &self,
        person: PersonId,
        platform: Platform,
        kind: RepresentationKind,
    ) -> Result<Representation, StoreError> {
        let changed: Result<Representation, StoreError> = async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE representations SET kind = $1, updated_at = $2 \
                 WHERE person_id = $3 AND platform = $4 AND status = 'not_created' \
                 RETURNING {REPRESENTATION_COLUMNS}"
            )))
            .bind(kind.as_str())
            .bind(self.now().unix_millis())
            .bind(person.to_string())
            .bind(platform.as_str())
            .fetch_optional(&self.pool)
            .await?;
            match row {
                Some(row) => representation_from_row(&row),
                None => Err(match self.representation(person, platform).await? {
                    Some(_) => StoreError::Conflict(format!(
                        "the created {platform} representation of person {person}"
                    )),
                    None => StoreError::NotFound {
                        kind: "representation",
                        id: format!("{person}/{platform}"),
                    },
                }),
            }
        }
        .await;
        self.directory_changed();
        changed
    }

    /// The credentials a synced representation acts with (empty when none are stored).
    pub async fn representation_secrets(
        &self,
        person: PersonId,
        platform: Platform,
    ) -> Result<RepresentationSecrets, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sealed, expires_at FROM representation_secrets \
             WHERE person_id = $1 AND platform = $2 ORDER BY name",
        )
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut found = RepresentationSecrets::default();
        for row in &rows {
            let name: String = row.try_get("name")?;
            let sealed: Vec<u8> = row.try_get("sealed")?;
            let secret = self.cipher.open(
                &sealed,
                &representation_secret_context(person, platform, &name),
            )?;
            found.expires_at = row
                .try_get::<Option<i64>, _>("expires_at")?
                .map(Timestamp::from_unix_millis);
            found.secrets.push((name, secret));
        }
        Ok(found)
    }

    /// Every representation in `status` (on `platform`, if given), for bulk work: re-prompting
    /// the pending, re-attempting the failed.
    pub async fn representations_with_status(
        &self,
        platform: Option<Platform>,
        status: SyncStatusCode,
    ) -> Result<Vec<Representation>, StoreError> {
        let rows = match platform {
            Some(platform) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {REPRESENTATION_COLUMNS} FROM representations \
                     WHERE status = $1 AND platform = $2 ORDER BY person_id"
                )))
                .bind(status.as_str())
                .bind(platform.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {REPRESENTATION_COLUMNS} FROM representations \
                     WHERE status = $1 ORDER BY person_id, platform"
                )))
                .bind(status.as_str())
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(representation_from_row).collect()
    }

    /// The synced representations on a connection, by person and account, ordered by account:
    /// those the relay acts as there, whose events a platform may need watched one by one, each
    /// with that representation's own credentials (see [`Store::representation_secrets`]).
    pub async fn synced_representations_on(
        &self,
        connection: ConnectionId,
    ) -> Result<Vec<(PersonId, ExternalUserId)>, StoreError> {
        // A representation names its account on the platform; one that is the person's own
        // account belongs to that account's connection, any other to the platform's.
        let rows = sqlx::query(
            "SELECT r.person_id, r.external_id FROM representations r \
             JOIN connections c ON c.platform = r.platform \
             LEFT JOIN accounts a ON a.id = r.account_id \
             WHERE c.id = $1 AND r.status = 'synced' AND r.external_id IS NOT NULL \
             AND (a.id IS NULL OR a.connection_id = c.id) ORDER BY r.external_id",
        )
        .bind(connection.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse(row, "person_id")?,
                    ExternalUserId::new(row.try_get::<String, _>("external_id")?),
                ))
            })
            .collect()
    }

    /// Applies `event` to the representation inside `tx` and records the transition.
    pub(crate) async fn transition_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        person: PersonId,
        platform: Platform,
        event: SyncEvent,
        cause: &str,
    ) -> Result<Transition, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPRESENTATION_COLUMNS} FROM representations \
             WHERE person_id = $1 AND platform = $2"
        )))
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "representation",
            id: format!("{person}/{platform}"),
        })?;
        let mut representation = representation_from_row(&row)?;
        let transition = representation.apply(event)?;
        let now = self.now().unix_millis();
        sqlx::query(
            "UPDATE representations SET status = $1, failure_reason = $2, updated_at = $3 \
             WHERE person_id = $4 AND platform = $5",
        )
        .bind(transition.to.code().as_str())
        .bind(transition.to.failure_reason())
        .bind(now)
        .bind(person.to_string())
        .bind(platform.as_str())
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO representation_transitions (person_id, platform, from_status, to_status, \
             failure_reason, cause, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(person.to_string())
        .bind(platform.as_str())
        .bind(transition.from.code().as_str())
        .bind(transition.to.code().as_str())
        .bind(transition.to.failure_reason())
        .bind(cause)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(transition)
    }

    /// The history of a representation's sync status, oldest first.
    pub async fn transitions(
        &self,
        person: PersonId,
        platform: Platform,
    ) -> Result<Vec<TransitionRecord>, StoreError> {
        sqlx::query(
            "SELECT from_status, to_status, failure_reason, cause, at \
             FROM representation_transitions WHERE person_id = $1 AND platform = $2 ORDER BY id",
        )
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(TransitionRecord {
                from: SyncStatusCode::parse(&row.try_get::<String, _>("from_status")?)?,
                to: SyncStatus::from_parts(
                    SyncStatusCode::parse(&row.try_get::<String, _>("to_status")?)?,
                    row.try_get("failure_reason")?,
                )?,
                cause: row.try_get("cause")?,
                at: Timestamp::from_unix_millis(row.try_get("at")?),
            })
        })
        .collect()
    }
}

pub(crate) fn representation_from_row(row: &AnyRow) -> Result<Representation, StoreError> {
    Ok(Representation {
        person_id: parse(row, "person_id")?,
        platform: parse(row, "platform")?,
        kind: RepresentationKind::parse(&row.try_get::<String, _>("kind")?)?,
        status: SyncStatus::from_parts(
            SyncStatusCode::parse(&row.try_get::<String, _>("status")?)?,
            row.try_get("failure_reason")?,
        )?,
        account_id: parse_optional(row, "account_id")?,
        external_account: row
            .try_get::<Option<String>, _>("external_id")?
            .map(ExternalUserId::new),
    })
}

/// Binds a representation's sealed secret to its row.
fn representation_secret_context(person: PersonId, platform: Platform, name: &str) -> String {
    format!("representation:{person}:{platform}:{name}")
}
