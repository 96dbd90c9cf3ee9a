use switchboard_core::{IllegalTransition, InvalidConversation, UnknownName};
use switchboard_secrets::SecretsError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("unsupported database URL '{url}': use sqlite://PATH or postgres://HOST/DATABASE")]
    UnsupportedUrl { url: String },
    // The causes below are part of the message rather than error sources, so that a report
    // printing the whole chain does not say them twice.
    #[error("cannot connect to the database at {url}: {cause}")]
    Connect { url: String, cause: String },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("the hub must keep an owner: make another admin an owner first")]
    LastOwner,
    #[error("no {kind} with id {id}")]
    NotFound { kind: &'static str, id: String },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error(transparent)]
    InvalidConversation(#[from] InvalidConversation),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Secret(#[from] SecretsError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A write committed together with others failed (the cause, as their commit reported it).
    #[error("database error: {0}")]
    GroupCommit(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}

impl From<UnknownName> for StoreError {
    fn from(error: UnknownName) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

/// Turns a unique-key violation into a `Conflict` naming `what`; other errors pass through.
pub(crate) fn conflict_as(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(error),
    }
}
