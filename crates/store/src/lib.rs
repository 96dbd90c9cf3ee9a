//! Switchboard's store: one code base over SQLite (the default, a file under the data
//! directory, in WAL mode) and PostgreSQL (when given a `postgres://` URL).
//!
//! Queries go through sqlx's `Any` driver with SQL written once for both databases. Two rules
//! keep that honest: values are limited to the types both back ends share (text, 64-bit
//! integers and bytes; ids as text, times as Unix milliseconds, flags as 0/1 — the `Any`
//! driver cannot read SQLite booleans), and placeholders are
//! numbered `$1, $2, …` in the order they first appear, because SQLite binds `$N` by first
//! appearance rather than by number. Each back end has its own migration files, kept in step,
//! since DDL is where the dialects really differ.

mod admin;
mod connections;
mod console;
mod conversations;
mod directory;
mod error;
mod flows;
mod group_commit;
mod health;
mod imports;
mod instance_lock;
mod listing;
mod migrations;
mod outbox_lanes;
mod people;
mod prompts;
mod relay;
mod representations;
mod restrictions;
mod scim;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection as _, Transaction};
use switchboard_core::{Clock, Timestamp};
use switchboard_secrets::Cipher;

pub use admin::{ApiToken, AuditEntry, TokenPurpose};
pub use connections::{DISCONNECTED_REASON, Disconnection};
pub use console::{Admin, AdminRole, AdminSession};
pub use directory::{AccountState, DirectoryRead};
pub use error::StoreError;
pub use flows::{FlowPurpose, PendingConsent, PendingFlow};
pub use health::ConnectionHealth;
pub use imports::{ImportRun, ImportStatus, ImportedAccount};
pub use instance_lock::{InstanceLock, InstanceLockError};
pub use listing::{PeopleCursor, PeoplePage, PeopleQuery, PersonSummary, PrimaryFilter};
pub use people::NewAccount;
pub use prompts::{PromptGrant, PromptLink};
pub use relay::{
    AccountIdentity, DailyCopies, DeadLetter, InboxItem, MessageKey, NewOutboxItem, OutboxAction,
    OutboxItem, RelayCounts, RelayedBy, RelayedCopy, Settlement, StoredSubscription,
};
pub use representations::{RepresentationSecrets, TransitionRecord};
pub use scim::{ScimField, ScimGroupRecord, ScimQuery, ScimUserRecord, ScopeGroup};

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The back end a database URL names, or why it names none the hub supports.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            }),
        }
    }
}

/// The hub's persistent state. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where the relay writes. SQLite allows one writer at a time, and a writer that finds the
    /// database locked sleeps and polls (1 ms, 2 ms, 5 ms…), which under load costs more than
    /// the writes: on SQLite this is one connection, so that writers queue for it instead. On
    /// PostgreSQL it is the pool.
    writer: AnyPool,
    /// Where inbound events are stored: a platform waits for the hub's answer only so long
    /// (Slack: 3 s), so on PostgreSQL its deliveries have connections of their own and never
    /// queue behind the relay's other work; on SQLite, the writer.
    ingest: AnyPool,
    /// Where the relay writes what it can redo (see [`Store::begin_redoable_write`]): on
    /// PostgreSQL, connections whose commits do not wait for the disk; on SQLite, the writer.
    redoable: AnyPool,
    backend: Backend,
    cipher: Cipher,
    clock: Arc<dyn Clock>,
    /// Grows with every change to the directory (people, accounts, representations,
    /// connections and their secrets, conversations and portals), after it is committed: what
    /// was read from it before is stale once this moved. The hub owns its database alone, so
    /// its own writes are all the changes there are.
    directory_version: Arc<AtomicU64>,
    /// Webhook deliveries stored together (see [`group_commit`]).
    inbound: Arc<group_commit::GroupCommit<relay::InboundDelivery, usize>>,
    /// Delivered copies recorded together.
    delivered: Arc<group_commit::GroupCommit<relay::Delivered, ()>>,
    /// The outbox's lanes, for choosing the next copies without scanning the outbox.
    outbox: Arc<relay::OutboxIndex>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// How long to wait for a connection before telling the operator the database is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write waits for SQLite's one writer connection: behind a large import's
/// transaction, which can take longer than a connection is waited for elsewhere.
const WRITER_PATIENCE: Duration = Duration::from_secs(60);

/// SQLite settings applied to every connection: write-ahead logging so readers never block the
/// writer, foreign keys enforced, a wait instead of an immediate `database is locked`, and
/// deleted content overwritten with zeros (in the page and in the WAL frame that writes it)
/// rather than left in free space, where the file would keep what the hub deleted.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                              PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                              PRAGMA secure_delete = ON;";

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(
        path: &Path,
        cipher: Cipher,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url, cipher, clock).await
    }

    /// Connects to the database at `url` and brings its schema up to date.
    pub async fn connect(
        url: &str,
        cipher: Cipher,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let connect_error = |cause: String| StoreError::Connect {
            url: redact_url(url),
            cause,
        };
        let options: AnyConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| connect_error(e.to_string()))?;
        // One connection first, on its own: a pool that cannot connect reports only that it
        // timed out, while the operator needs the reason (refused, unknown host, bad password).
        match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options)).await {
            Ok(Ok(probe)) => probe
                .close()
                .await
                .map_err(|e| connect_error(e.to_string()))?,
            Ok(Err(error)) => return Err(connect_error(error.to_string())),
            Err(_) => {
                return Err(connect_error(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool_with = |size: u32, settings: &'static str, patience: Duration| {
            AnyPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(patience)
                // sqlx pings each connection as it leaves the pool: a round trip before every
                // query (to SQLite's worker thread, or to PostgreSQL over the network). A
                // connection that broke fails its query instead, which the callers retry.
                .test_before_acquire(false)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if !settings.is_empty() {
                            sqlx::raw_sql(settings).execute(conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let pool_of = |size: u32| {
            pool_with(
                size,
                match backend {
                    Backend::Sqlite => SQLITE_PRAGMAS,
                    Backend::Postgres => "",
                },
                CONNECT_TIMEOUT,
            )
        };
        let pool = pool_of(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        })
        .await
        .map_err(|e| connect_error(e.to_string()))?;
        let payloads_newly_sealed = migrations::run(&pool, backend).await?;
        let (writer, ingest, redoable) = match backend {
            Backend::Sqlite => {
                let writer = pool_with(1, SQLITE_PRAGMAS, WRITER_PATIENCE)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?;
                (writer.clone(), writer.clone(), writer)
            }
            Backend::Postgres => (
                pool.clone(),
                pool_of(2).await.map_err(|e| connect_error(e.to_string()))?,
                pool_with(4, "SET synchronous_commit = off", CONNECT_TIMEOUT)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?,
            ),
        };
        let store = Self {
            pool,
            writer,
            ingest,
            redoable,
            backend,
            cipher,
            clock,
            directory_version: Arc::default(),
            inbound: Arc::default(),
            delivered: Arc::default(),
            outbox: Arc::default(),
        };
        let sealed = store.seal_unsealed_payloads().await?;
        if sealed > 0 {
            tracing::info!(
                payloads = sealed,
                "store: sealed the relay's payloads kept from before"
            );
        }
        if payloads_newly_sealed && backend == Backend::Sqlite {
            // Versions before kept the relay's payloads in plaintext, and freed pages keep
            // what was deleted from them: rewriting the file once leaves none. (A start
            // interrupted before this leaves them; PostgreSQL's files are the operator's, see
            // docs/data-at-rest.md.)
            sqlx::query("VACUUM").execute(&store.writer).await?;
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Changes whenever the directory changed: a cache of what was read from it is valid as
    /// long as this is the version it was read at (read before the reading started).
    pub fn directory_version(&self) -> u64 {
        self.directory_version.load(Ordering::Acquire)
    }

    /// Called by every method that changed the directory, once the change is committed.
    fn directory_changed(&self) {
        self.directory_version.fetch_add(1, Ordering::AcqRel);
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; waits for queries in flight.
    pub async fn close(&self) {
        self.ingest.close().await;
        self.writer.close().await;
        self.redoable.close().await;
        self.pool.close().await;
    }

    /// The versions of the migrations applied to this database, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        migrations::applied(&self.pool).await
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once, so a
    /// transaction never fails half-way with `database is locked` when it upgrades from read to
    /// write while another writer commits.
    async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(tx)
    }

    /// A write the relay can redo, when the database loses it in a power failure: on
    /// PostgreSQL its commit does not wait for the disk. What it records is derived from
    /// writes that do wait (the stored event, the lease taken before a copy is posted), and
    /// those come later in the same log, so any of them flushes it too — see ARCHITECTURE.md.
    async fn begin_redoable_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.redoable.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.redoable.begin().await?,
        };
        Ok(tx)
    }
}

fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The URL with any password replaced, fit for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://hub:s3cret@db:5432/switchboard"),
            "postgres://hub:***@db:5432/switchboard"
        );
        assert_eq!(
            redact_url("postgres://hub@db/switchboard"),
            "postgres://hub@db/switchboard"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn backends_are_told_by_scheme() {
        assert!(matches!(
            Backend::of_url("sqlite://x.db"),
            Ok(Backend::Sqlite)
        ));
        assert!(matches!(
            Backend::of_url("postgresql://h/db"),
            Ok(Backend::Postgres)
        ));
        let err = Backend::of_url("mysql://root:pw@h/db").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported database URL 'mysql://root:***@h/db': use sqlite://PATH or postgres://HOST/DATABASE"
        );
    }
}
