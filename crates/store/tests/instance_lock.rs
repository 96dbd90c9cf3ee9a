//! One hub per database: the lock a hub holds while it runs, on the database `DATABASE_URL`
//! names (a PostgreSQL server when it is a `postgres://` URL, where the lock is taken in the
//! database the URL names), or on a fresh SQLite file otherwise. One test, in steps: tests of
//! one binary run at once, and on PostgreSQL they would take each other's lock.

use std::time::Duration;

use sqlx::Connection;
use switchboard_store::{InstanceLock, InstanceLockError};

const QUICKLY: Duration = Duration::from_millis(50);

/// The database under test and what keeps a SQLite one alive.
fn database() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => url,
        _ => format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display()),
    };
    (url, dir)
}

#[tokio::test]
async fn one_hub_holds_a_database_until_it_stops_or_another_takes_its_lock() {
    sqlx::any::install_default_drivers();
    let (url, dir) = database();
    a_second_hub_is_refused_with_the_first_ones_name_until_the_first_stops(&url).await;
    a_hub_whose_lock_another_took_is_told_it_lost_it(&url, dir.path()).await;
}

/// The acquire that succeeds once the lock is released (PostgreSQL releases a closed or
/// ended session's locks as the server notices).
async fn acquire_once_free(url: &str, holder: &str) -> Option<InstanceLock> {
    for _ in 0..100 {
        match InstanceLock::acquire(url, holder, QUICKLY).await {
            Ok(lock) => return Some(lock),
            Err(InstanceLockError::Held { .. }) => tokio::time::sleep(QUICKLY).await,
            Err(error) => panic!("{error}"),
        }
    }
    None
}

async fn a_second_hub_is_refused_with_the_first_ones_name_until_the_first_stops(url: &str) {
    let first = InstanceLock::acquire(url, "switchboard pid 1 at 127.0.0.1:8080", QUICKLY)
        .await
        .unwrap();
    let refused = InstanceLock::acquire(url, "switchboard pid 2 at 127.0.0.1:8081", QUICKLY)
        .await
        .unwrap_err();
    let InstanceLockError::Held { holder } = &refused else {
        panic!("{refused}");
    };
    assert_eq!(holder, "switchboard pid 1 at 127.0.0.1:8080");
    assert!(
        refused.to_string().starts_with(
            "another hub is running on this database (switchboard pid 1 at 127.0.0.1:8080)"
        ),
        "{refused}"
    );

    drop(first);
    let mut second = acquire_once_free(url, "switchboard pid 2 at 127.0.0.1:8081")
        .await
        .expect("the lock was never released");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.lost())
            .await
            .is_err(),
        "a held lock is not lost"
    );
}

async fn a_hub_whose_lock_another_took_is_told_it_lost_it(url: &str, dir: &std::path::Path) {
    let mut first = acquire_once_free(url, "switchboard pid 3 at 127.0.0.1:8080")
        .await
        .expect("the lock was never released");
    if url.starts_with("postgres") {
        // The first hub's session ends (a restarted server, a broken connection) and another
        // hub takes the lock before the first notices.
        let mut admin = sqlx::AnyConnection::connect(url).await.unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'switchboard pid 3 at 127.0.0.1:8080'",
        )
        .execute(&mut admin)
        .await
        .unwrap();
    } else {
        // Someone removes the lock file, which lets another hub make its own.
        std::fs::remove_file(dir.join("hub.db.lock")).unwrap();
    }
    let _fourth = acquire_once_free(url, "switchboard pid 4 at 127.0.0.1:8081")
        .await
        .expect("the other hub never got the lock");
    let reason = tokio::time::timeout(Duration::from_secs(10), first.lost())
        .await
        .expect("the first hub never noticed");
    assert!(
        reason.contains("switchboard pid 4 at 127.0.0.1:8081") || reason.contains("lock file"),
        "{reason}"
    );
}
