use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    PersonId, Platform, Representation, RepresentationKind, SyncEvent, SyncStatus, SyncStatusCode,
    Timestamp, Transition,
};

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

const REPRESENTATION_COLUMNS: &str =
    "person_id, platform, kind, status, failure_reason, account_id";

impl Store {
    /// Records that `person` is to be represented on `platform` as `kind`; it starts not created.
    pub async fn create_representation(
        &self,
        person: PersonId,
        platform: Platform,
        kind: RepresentationKind,
    ) -> Result<Representation, StoreError> {
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
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                kind: "person",
                id: person.to_string(),
            },
            _ => conflict_as(|| format!("a {platform} representation of person {person}"))(error),
        })?;
        Ok(Representation {
            person_id: person,
            platform,
            kind,
            status: SyncStatus::NotCreated,
            account_id: None,
        })
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
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPRESENTATION_COLUMNS} FROM representations \
             WHERE person_id = $1 AND platform = $2"
        )))
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_optional(&mut *tx)
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
        .execute(&mut *tx)
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
    })
}
