use sqlx::AnyPool;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection as _, Row, SqlSafeStr};

use crate::{Backend, StoreError};

/// One schema step, written once per dialect. Versions only ever grow; a released step is
/// never edited, since sqlx refuses a database whose applied step's checksum changed.
struct Step {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "initial schema",
        sqlite: include_str!("../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Step {
        version: 2,
        description: "imports, e-mail aliases, settings, API tokens, audit log",
        sqlite: include_str!("../migrations/sqlite/0002_import_and_api.sql"),
        postgres: include_str!("../migrations/postgres/0002_import_and_api.sql"),
    },
    Step {
        version: 3,
        description: "sync: representation accounts and credentials, prompts, consent links",
        sqlite: include_str!("../migrations/sqlite/0003_sync.sql"),
        postgres: include_str!("../migrations/postgres/0003_sync.sql"),
    },
    Step {
        version: 4,
        description: "the people list read from one covering index",
        sqlite: include_str!("../migrations/sqlite/0004_people_listing.sql"),
        postgres: include_str!("../migrations/postgres/0004_people_listing.sql"),
    },
    Step {
        version: 5,
        description: "connection health as the token refresher last saw it",
        sqlite: include_str!("../migrations/sqlite/0005_connection_health.sql"),
        postgres: include_str!("../migrations/postgres/0005_connection_health.sql"),
    },
    Step {
        version: 6,
        description: "the teams accounts were imported from; indexes for expiring credentials and the hub's own accounts",
        sqlite: include_str!("../migrations/sqlite/0006_team_members.sql"),
        postgres: include_str!("../migrations/postgres/0006_team_members.sql"),
    },
    Step {
        version: 7,
        description: "the relay: inbox, outbox, message map, event subscriptions",
        sqlite: include_str!("../migrations/sqlite/0007_relay.sql"),
        postgres: include_str!("../migrations/postgres/0007_relay.sql"),
    },
    Step {
        version: 8,
        description: "an index for representation credentials that never expire",
        sqlite: include_str!("../migrations/sqlite/0008_unexpiring_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0008_unexpiring_secrets.sql"),
    },
    Step {
        version: 9,
        description: "when the relay's events reached the hub, to measure the latency it adds",
        sqlite: include_str!("../migrations/sqlite/0009_relay_latency.sql"),
        postgres: include_str!("../migrations/postgres/0009_relay_latency.sql"),
    },
    Step {
        version: 10,
        description: "the admin console: admins, their sessions, the first owner's setup link",
        sqlite: include_str!("../migrations/sqlite/0010_console.sql"),
        postgres: include_str!("../migrations/postgres/0010_console.sql"),
    },
    Step {
        version: 11,
        description: "the message map read by time and by sender, for the console's activity",
        sqlite: include_str!("../migrations/sqlite/0011_relay_activity.sql"),
        postgres: include_str!("../migrations/postgres/0011_relay_activity.sql"),
    },
    Step {
        version: 12,
        description: "disconnected connections, restricted people and the notices they were sent",
        sqlite: include_str!("../migrations/sqlite/0012_disconnect_and_restrictions.sql"),
        postgres: include_str!("../migrations/postgres/0012_disconnect_and_restrictions.sql"),
    },
    Step {
        version: 13,
        description: "the latest post delivered in each lane, so that a late copy says so",
        sqlite: include_str!("../migrations/sqlite/0013_relay_lanes.sql"),
        postgres: include_str!("../migrations/postgres/0013_relay_lanes.sql"),
    },
    Step {
        version: 14,
        description: "the outbox without its index by due time, which the planner misused",
        sqlite: include_str!("../migrations/sqlite/0014_outbox_without_due_index.sql"),
        postgres: include_str!("../migrations/postgres/0014_outbox_without_due_index.sql"),
    },
    Step {
        version: SEALED_PAYLOADS,
        description: "the relay's payloads sealed with the hub's key",
        sqlite: include_str!("../migrations/sqlite/0015_sealed_payloads.sql"),
        postgres: include_str!("../migrations/postgres/0015_sealed_payloads.sql"),
    },
    Step {
        version: 16,
        description: "prompts' links spent when the account is linked, not when followed",
        sqlite: include_str!("../migrations/sqlite/0016_prompts_spent_when_linked.sql"),
        postgres: include_str!("../migrations/postgres/0016_prompts_spent_when_linked.sql"),
    },
    Step {
        version: PLATFORMS_UNCHECKED,
        description: "platform names no longer checked by the schema, so that a new platform needs no migration",
        sqlite: include_str!("../migrations/sqlite/0017_platforms_unchecked.sql"),
        postgres: include_str!("../migrations/postgres/0017_platforms_unchecked.sql"),
    },
    Step {
        version: 18,
        description: "portals that share one native chat (a chatbot's chat with a person)",
        sqlite: include_str!("../migrations/sqlite/0018_shared_chats.sql"),
        postgres: include_str!("../migrations/postgres/0018_shared_chats.sql"),
    },
    Step {
        version: 19,
        description: "users and groups provisioned through SCIM, and SCIM tokens",
        sqlite: include_str!("../migrations/sqlite/0019_scim.sql"),
        postgres: include_str!("../migrations/postgres/0019_scim.sql"),
    },
    Step {
        version: 20,
        description: "Directory Sync's scope: the groups whose members are the hub's people",
        sqlite: include_str!("../migrations/sqlite/0020_directory_scope.sql"),
        postgres: include_str!("../migrations/postgres/0020_directory_scope.sql"),
    },
    Step {
        version: 21,
        description: "Directory Sync's members of directory groups, and each group's last reading",
        sqlite: include_str!("../migrations/sqlite/0021_directory_members.sql"),
        postgres: include_str!("../migrations/postgres/0021_directory_members.sql"),
    },
];

/// The step from which the relay's payloads are sealed: a database that takes it may hold
/// plaintext from before, in rows and in freed space.
pub(crate) const SEALED_PAYLOADS: i64 = 15;

/// The step that drops the checks listing platform names. SQLite drops a check only by
/// rebuilding its table, and dropping the old table with foreign keys on would delete (or
/// null out) every row that references it. SQLite ignores turning foreign keys off inside a
/// transaction, and sqlx runs each step in one: so on SQLite this step runs on a connection
/// of its own that turned them off before, and checks the keys itself before it commits.
const PLATFORMS_UNCHECKED: i64 = 17;

fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        STEPS
            .iter()
            .map(|step| {
                let sql = match backend {
                    Backend::Sqlite => step.sqlite,
                    Backend::Postgres => step.postgres,
                };
                Migration::new(
                    step.version,
                    step.description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Brings the schema up to date; returns whether this run took the step that seals the relay's
/// payloads.
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<bool, StoreError> {
    let migrator = migrator(backend);
    migrator.run_to(SEALED_PAYLOADS - 1, pool).await?;
    let sealed_before = applied(pool).await?.contains(&SEALED_PAYLOADS);
    migrator.run_to(PLATFORMS_UNCHECKED - 1, pool).await?;
    if backend == Backend::Sqlite && !applied(pool).await?.contains(&PLATFORMS_UNCHECKED) {
        // Out of the pool, since back there it would write without foreign keys.
        let mut conn = pool.acquire().await?.detach();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut conn)
            .await?;
        // `run_to` here would leave `Store::connect`'s future not `Send` (its `Acquire` bound
        // is not general enough); sqlx exposes `run_direct` for that.
        migrator
            .run_direct(Some(PLATFORMS_UNCHECKED), &mut conn, false)
            .await?;
        conn.close().await?;
    }
    migrator.run(pool).await?;
    Ok(!sealed_before)
}

pub(crate) async fn applied(pool: &AnyPool) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>("version").map_err(StoreError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_without_gaps() {
        for (index, step) in STEPS.iter().enumerate() {
            assert_eq!(step.version, index as i64 + 1, "{}", step.description);
        }
    }

    #[test]
    fn both_dialects_have_the_same_tables_after_each_step() {
        fn take(tables: &mut std::collections::BTreeSet<String>, sql: &str) {
            let name = |text: &str| text.trim_end_matches(';').to_owned();
            for line in sql.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["CREATE", "TABLE", table, ..] => {
                        tables.insert(name(table));
                    }
                    ["DROP", "TABLE", table, ..] => {
                        tables.remove(&name(table));
                    }
                    ["ALTER", "TABLE", from, "RENAME", "TO", to, ..] => {
                        tables.remove(&name(from));
                        tables.insert(name(to));
                    }
                    _ => {}
                }
            }
        }
        let (mut sqlite, mut postgres) = Default::default();
        for step in STEPS {
            take(&mut sqlite, step.sqlite);
            take(&mut postgres, step.postgres);
            assert_eq!(sqlite, postgres, "{}", step.description);
            // Line for line, except where SQLite rebuilds tables to do what PostgreSQL does
            // in place.
            if step.version != PLATFORMS_UNCHECKED {
                assert_eq!(
                    step.sqlite.lines().count(),
                    step.postgres.lines().count(),
                    "{}",
                    step.description
                );
            }
        }
    }
}
