//! One hub per database. The relay keeps state beside the database that a second hub would
//! not see (the outbox's lanes in memory, leases it believes it holds, the event subscriptions
//! it renews), so until several hubs are designed to share one database, a hub holds a lock
//! for as long as it runs: a PostgreSQL session-level advisory lock, or an exclusive lock on a
//! file beside the SQLite database. Both are released by the operating system or the server
//! when the process or its session ends, so a crashed hub never leaves a stale lock behind.
//!
//! A second hub is refused with the holder's own description (process, host, address). A hub
//! that loses its lock (its PostgreSQL session ended and another hub took the lock, or the
//! lock file was removed or replaced) is told so by [`InstanceLock::lost`] and must stop.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};

use crate::Backend;

/// The advisory lock's key: "SWBD" in ASCII, small enough that PostgreSQL reports it whole in
/// `pg_locks.objid`, where the holder is looked up.
const ADVISORY_KEY: i64 = 0x5357_4244;
/// How long connecting for the lock may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL keeps at most 63 bytes of an `application_name`.
const APPLICATION_NAME_MAX: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum InstanceLockError {
    #[error("another hub is running on this database ({holder}); stop it first")]
    Held { holder: String },
    #[error("cannot take the hub's lock on {target}: {cause}")]
    Unavailable { target: String, cause: String },
    /// Worded as the store words it, since it is usually the first to try.
    #[error("cannot connect to the database at {url}: {cause}")]
    Unreachable { url: String, cause: String },
}

/// The lock a running hub holds on its database.
pub struct InstanceLock {
    held: Held,
    holder: String,
    check_every: Duration,
}

enum Held {
    File {
        file: File,
        path: PathBuf,
    },
    Advisory {
        url: String,
        session: Box<AnyConnection>,
    },
    /// An in-memory SQLite database, which no other process can open.
    Nothing,
}

impl std::fmt::Debug for InstanceLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceLock")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl InstanceLock {
    /// Takes the lock of the database at `url` (a `sqlite:` or `postgres:` URL) as `holder`, a
    /// description of this hub that a second one is told; checks every `check_every` that it
    /// is still held.
    pub async fn acquire(
        url: &str,
        holder: &str,
        check_every: Duration,
    ) -> Result<Self, InstanceLockError> {
        sqlx::any::install_default_drivers();
        let unavailable = |cause: String| InstanceLockError::Unavailable {
            target: crate::redact_url(url),
            cause,
        };
        let backend = Backend::of_url(url).map_err(|e| unavailable(e.to_string()))?;
        let held = match backend {
            Backend::Sqlite => match sqlite_path(url) {
                Some(database) => {
                    let path = lock_path(&database);
                    Held::File {
                        file: lock_file(&path, holder)?,
                        path,
                    }
                }
                None => Held::Nothing,
            },
            Backend::Postgres => {
                let session = advisory_lock(url, holder).await?;
                Held::Advisory {
                    url: url.to_owned(),
                    session: Box::new(session),
                }
            }
        };
        Ok(Self {
            held,
            holder: holder.to_owned(),
            check_every,
        })
    }

    /// Resolves, with why, once the lock is no longer this hub's; pending while it is.
    pub async fn lost(&mut self) -> String {
        let mut ticks = tokio::time::interval(self.check_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match &mut self.held {
                Held::Nothing => std::future::pending::<()>().await,
                Held::File { file, path } => {
                    if !still_locked(file, path) {
                        return format!(
                            "the lock file {} was removed or replaced, so another hub may be running on this database",
                            path.display()
                        );
                    }
                }
                Held::Advisory { url, session } => {
                    let alive = tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        sqlx::query("SELECT 1").execute(session.as_mut()),
                    )
                    .await
                    .is_ok_and(|answered| answered.is_ok());
                    if alive {
                        continue;
                    }
                    // The session ended, and the lock with it: take it again unless another
                    // hub has. A database that does not answer keeps this hub waiting, as it
                    // keeps its relay waiting.
                    match advisory_lock(url, &self.holder).await {
                        Ok(renewed) => {
                            tracing::warn!(
                                "the database session holding the hub's lock ended; the lock was taken again"
                            );
                            **session = renewed;
                        }
                        Err(InstanceLockError::Held { holder }) if holder != self.holder => {
                            return format!(
                                "the database session holding the hub's lock ended and another hub took it ({holder})"
                            );
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the hub's lock cannot be checked; trying again");
                        }
                    }
                }
            }
        }
    }
}

/// The file a `sqlite:` URL names; `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The lock file beside a SQLite database: `switchboard.db.lock` for `switchboard.db`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    database.with_file_name(name)
}

/// Locks the file at `path` for this process and writes `holder` into it; a hub that finds it
/// locked reads who holds it.
fn lock_file(path: &Path, holder: &str) -> Result<File, InstanceLockError> {
    let unavailable = |cause: std::io::Error| InstanceLockError::Unavailable {
        target: path.display().to_string(),
        cause: cause.to_string(),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(unavailable)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut written = String::new();
            file.read_to_string(&mut written).map_err(unavailable)?;
            let holder = match written.trim() {
                "" => format!("its lock file is {}", path.display()),
                holder => holder.to_owned(),
            };
            return Err(InstanceLockError::Held { holder });
        }
        Err(TryLockError::Error(error)) => return Err(unavailable(error)),
    }
    file.set_len(0).map_err(unavailable)?;
    file.rewind().map_err(unavailable)?;
    writeln!(file, "{holder}").map_err(unavailable)?;
    file.sync_all().map_err(unavailable)?;
    Ok(file)
}

/// Whether the file at `path` is still the one this hub locked.
fn still_locked(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(ours), Ok(there)) => ours.dev() == there.dev() && ours.ino() == there.ino(),
        _ => false,
    }
}

/// A session of its own that holds the advisory lock, named after `holder` so that another
/// hub can say who holds it.
async fn advisory_lock(url: &str, holder: &str) -> Result<AnyConnection, InstanceLockError> {
    let unavailable = |cause: String| InstanceLockError::Unavailable {
        target: crate::redact_url(url),
        cause,
    };
    let unreachable = |cause: String| InstanceLockError::Unreachable {
        url: crate::redact_url(url),
        cause,
    };
    let mut session = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(url))
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| unreachable(e.to_string()))?;
    sqlx::query("SELECT set_config('application_name', $1, false)")
        .bind(application_name(holder))
        .execute(&mut session)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let taken: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS taken")
        .bind(ADVISORY_KEY)
        .fetch_one(&mut session)
        .await
        .and_then(|row| row.try_get("taken"))
        .map_err(|e| unavailable(e.to_string()))?;
    if taken {
        return Ok(session);
    }
    let holder: Option<String> = sqlx::query(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 \
         AND l.objid = CAST($1 AS oid) \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(ADVISORY_KEY)
    .fetch_optional(&mut session)
    .await
    .map_err(|e| unavailable(e.to_string()))?
    .map(|row| row.try_get("application_name"))
    .transpose()
    .map_err(|e| unavailable(e.to_string()))?;
    let _ = session.close().await;
    Err(InstanceLockError::Held {
        holder: holder
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "a session whose name is not visible to this user".to_owned()),
    })
}

/// `holder` cut to what PostgreSQL keeps of a session's name, at a character boundary.
fn application_name(holder: &str) -> String {
    let mut end = holder.len().min(APPLICATION_NAME_MAX);
    while !holder.is_char_boundary(end) {
        end -= 1;
    }
    holder[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_the_database_the_url_names() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/switchboard/switchboard.db?mode=rwc")
                .map(|p| lock_path(&p)),
            Some(PathBuf::from("/var/lib/switchboard/switchboard.db.lock"))
        );
        assert_eq!(
            sqlite_path("sqlite:hub.db").map(|p| lock_path(&p)),
            Some(PathBuf::from("hub.db.lock"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://:memory:"), None);
    }

    #[test]
    fn a_long_holder_is_cut_where_postgresql_would_cut_it_but_whole_characters() {
        let long = "é".repeat(40);
        let cut = application_name(&long);
        assert!(cut.len() <= APPLICATION_NAME_MAX);
        assert_eq!(cut, "é".repeat(31));
    }
}
