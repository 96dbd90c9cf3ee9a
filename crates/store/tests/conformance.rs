//! The store's conformance suite. Every test runs against the database that `DATABASE_URL`
//! names: a PostgreSQL server when it is a `postgres://` URL (each test in a database of its
//! own, dropped afterwards), a fresh SQLite file otherwise. CI runs the suite both ways.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::{Connection, Row};
use switchboard_core::{
    AccountKind, Clock, ConversationKind, Email, ExternalChatId, ExternalTenantId, ExternalUserId,
    PersonId, Platform, RepresentationKind, SyncEvent, SyncStatus, SyncStatusCode, Timestamp,
};
use switchboard_secrets::{Cipher, ExposeSecret, SecretString, SecretsError};
use switchboard_store::{
    AccountIdentity, AdminRole, Backend, ConnectionHealth, MessageKey, NewAccount, NewOutboxItem,
    OutboxAction, PromptGrant, PromptLink, RepresentationSecrets, ScimField, ScimGroupRecord,
    ScimQuery, ScimUserRecord, ScopeGroup, Settlement, Store, StoreError, StoredSubscription,
    TokenPurpose,
};

/// A clock the tests move by hand.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

struct TestDb {
    url: String,
    clock: Arc<TestClock>,
    postgres_admin: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    async fn new() -> Self {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_700_000_000_000)));
        match std::env::var("DATABASE_URL") {
            Ok(admin_url) if matches!(Backend::of_url(&admin_url), Ok(Backend::Postgres)) => {
                let name = format!("switchboard_test_{}", uuid::Uuid::now_v7().simple());
                let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Self {
                    url: with_database(&admin_url, &name),
                    clock,
                    postgres_admin: Some((admin_url, name)),
                    _dir: dir,
                }
            }
            _ => Self {
                url: format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display()),
                clock,
                postgres_admin: None,
                _dir: dir,
            },
        }
    }

    async fn open(&self, key: u8) -> Store {
        Store::connect(&self.url, Cipher::from_key(&[key; 32]), self.clock.clone())
            .await
            .unwrap()
    }

    async fn raw(&self) -> sqlx::AnyConnection {
        sqlx::AnyConnection::connect(&self.url).await.unwrap()
    }

    /// The test clock's time now.
    fn millis(&self) -> i64 {
        self.clock.now().unix_millis()
    }

    fn advance(&self, millis: i64) {
        self.clock.0.fetch_add(millis, Ordering::SeqCst);
    }

    async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.postgres_admin {
            let mut admin = sqlx::AnyConnection::connect(admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (before_query, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    let authority = before_query.split('/').next().unwrap();
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

/// Runs `body` with a fresh database and drops it afterwards, even when the body panics. The
/// store opens the database first, unless the body takes the database alone.
macro_rules! store_test {
    ($name:ident, |$db:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            let db = Arc::new(TestDb::new().await);
            let $db = db.clone();
            let outcome = tokio::spawn(async move { $body }).await;
            db.drop_database().await;
            if let Err(error) = outcome {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    };
    ($name:ident, |$db:ident, $store:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            let db = Arc::new(TestDb::new().await);
            let $store = db.open(1).await;
            let $db = db.clone();
            let outcome = tokio::spawn(async move { $body }).await;
            db.drop_database().await;
            if let Err(error) = outcome {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    };
}

async fn slack_connection(store: &Store) -> switchboard_core::Connection {
    store
        .create_connection(Platform::Slack, &ExternalTenantId::new("T1"), "Acme")
        .await
        .unwrap()
}

async fn teams_connection(store: &Store) -> switchboard_core::Connection {
    store
        .create_connection(Platform::Teams, &ExternalTenantId::new("tenant"), "Acme")
        .await
        .unwrap()
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

fn human(
    connection: switchboard_core::ConnectionId,
    platform: Platform,
    id: &str,
    mail: &str,
) -> NewAccount {
    NewAccount {
        connection_id: connection,
        platform,
        external_id: ExternalUserId::new(id),
        display_name: format!("User {id}"),
        email: Some(email(mail)),
        kind: AccountKind::Human,
        active: true,
    }
}

store_test!(the_backend_is_the_one_database_url_names, |_db, store| {
    let expected = match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    assert_eq!(store.backend(), expected);
    store.ping().await.unwrap();
});

store_test!(
    migrations_run_once_and_are_idempotent_on_restart,
    |db, store| {
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            vec![
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21
            ]
        );
        let connection = slack_connection(&store).await;
        store.close().await;
        let reopened = db.open(1).await;
        assert_eq!(
            reopened.applied_migrations().await.unwrap(),
            vec![
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21
            ]
        );
        assert_eq!(
            reopened.connection(connection.id).await.unwrap(),
            Some(connection)
        );
    }
);

store_test!(the_schema_names_no_platform, |db, store| {
    // A new platform must need no migration: no check, index or default may list platforms.
    let schema = match store.backend() {
        Backend::Sqlite => "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL",
        Backend::Postgres => {
            "SELECT conrelid::regclass::text || ': ' || pg_get_constraintdef(oid) AS sql \
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
             UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' \
             UNION ALL SELECT table_name::text || '.' || column_name::text || ' DEFAULT ' \
             || column_default::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND column_default IS NOT NULL"
        }
    };
    let mut raw = db.raw().await;
    let schema: Vec<String> = sqlx::query(schema)
        .fetch_all(&mut raw)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("sql").unwrap())
        .collect();
    // The other checks were read, and are still there.
    assert!(schema.iter().any(|sql| sql.contains("'human'")));
    for platform in Platform::ALL {
        let name = format!("'{}'", platform.as_str());
        let naming: Vec<&String> = schema.iter().filter(|sql| sql.contains(&name)).collect();
        assert!(naming.is_empty(), "the schema names {name}: {naming:#?}");
    }
});

/// How many rows each table with a platform column, and each that references one, has.
async fn row_counts(raw: &mut sqlx::AnyConnection) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in [
        "connections",
        "connection_health",
        "people",
        "accounts",
        "representations",
        "representation_transitions",
        "prompts",
        "flows",
        "conversations",
        "conversation_participants",
        "portals",
    ] {
        let count = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(&mut *raw)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        counts.push((table, count));
    }
    counts
}

store_test!(
    rows_kept_from_before_platforms_were_unchecked_survive,
    |db| {
        let dialect = match db.postgres_admin {
            Some(_) => "postgres",
            None => "sqlite",
        };
        let before = sqlx::migrate::Migrator::new(std::path::Path::new(&format!(
            "{}/migrations/{dialect}",
            env!("CARGO_MANIFEST_DIR")
        )))
        .await
        .unwrap();
        let mut raw = db.raw().await;
        // Not `run_to`, whose future is not `Send` (its `Acquire` bound is not general enough).
        before.run_direct(Some(16), &mut raw, false).await.unwrap();
        let id = || uuid::Uuid::now_v7().to_string();
        let (slack, teams, ann, bea) = (id(), id(), id(), id());
        let (ann_on_slack, ann_on_teams, conversation, portal, prompt) =
            (id(), id(), id(), id(), id());
        let later = db.millis() + 3_600_000;
        for statement in [
            format!(
                "INSERT INTO connections (id, platform, tenant, display_name, created_at) \
                 VALUES ('{slack}', 'slack', 'T1', 'Acme', 1), \
                 ('{teams}', 'teams', 'tenant', 'Acme', 1)"
            ),
            format!(
                "INSERT INTO connection_health (connection_id, ok, scopes, last_checked_at) \
                 VALUES ('{slack}', 1, 'chat:write', 1)"
            ),
            format!(
                "INSERT INTO people (id, display_name, email, primary_platform, \
                 primary_chosen_by, platforms, created_at, updated_at) \
                 VALUES ('{ann}', 'Ann', 'ann@acme.example', 'teams', 'admin', 3, 1, 1), \
                 ('{bea}', 'Bea', 'bea@acme.example', NULL, NULL, 0, 1, 1)"
            ),
            format!(
                "INSERT INTO accounts (id, connection_id, platform, external_id, display_name, \
                 kind, active, person_id, updated_at) \
                 VALUES ('{ann_on_slack}', '{slack}', 'slack', 'U1', 'Ann', 'human', 1, \
                 '{ann}', 1), \
                 ('{ann_on_teams}', '{teams}', 'teams', 'u-ann', 'Ann', 'human', 1, '{ann}', 1)"
            ),
            format!(
                "INSERT INTO representations (person_id, platform, kind, status, account_id, \
                 external_id, updated_at) \
                 VALUES ('{ann}', 'slack', 'existing_account', 'synced', '{ann_on_slack}', \
                 'U1', 1)"
            ),
            format!(
                "INSERT INTO representation_transitions (person_id, platform, from_status, \
                 to_status, cause, at) \
                 VALUES ('{ann}', 'slack', 'pending', 'synced', 'linked', 1)"
            ),
            format!(
                "INSERT INTO prompts (id, person_id, platform, token_hash, created_at, \
                 expires_at) VALUES ('{prompt}', '{ann}', 'slack', 'h-ann', 1, {later})"
            ),
            format!(
                "INSERT INTO conversations (id, kind, created_at) \
                 VALUES ('{conversation}', 'group', 1)"
            ),
            format!(
                "INSERT INTO conversation_participants (conversation_id, person_id) \
                 VALUES ('{conversation}', '{ann}')"
            ),
            format!(
                "INSERT INTO portals (id, conversation_id, platform, connection_id, \
                 external_chat_id, created_at) \
                 VALUES ('{portal}', '{conversation}', 'slack', '{slack}', 'C1', 1)"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut raw)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO flows (state, purpose, platform, connection_id, person_id, sealed, \
             created_at, expires_at, url) \
             VALUES ('st', 'consent', 'slack', $1, $2, $3, 1, $4, $5)",
        )
        .bind(slack.as_str())
        .bind(ann.as_str())
        .bind(vec![0_u8])
        .bind(later)
        .bind("https://slack.example/approve")
        .execute(&mut raw)
        .await
        .unwrap();
        let counts = row_counts(&mut raw).await;
        raw.close().await.unwrap();

        let store = db.open(1).await;
        assert_eq!(store.applied_migrations().await.unwrap().last(), Some(&21));
        let mut raw = db.raw().await;
        assert_eq!(row_counts(&mut raw).await, counts);
        if store.backend() == Backend::Sqlite {
            let dangling = sqlx::query("SELECT * FROM pragma_foreign_key_check")
                .fetch_all(&mut raw)
                .await
                .unwrap();
            assert!(dangling.is_empty());
        }
        let slack: switchboard_core::ConnectionId = slack.parse().unwrap();
        let ann: PersonId = ann.parse().unwrap();
        let connection = store.connection(slack).await.unwrap().unwrap();
        assert_eq!(
            (connection.platform, connection.tenant.as_str()),
            (Platform::Slack, "T1")
        );
        assert_eq!(
            store.person(ann).await.unwrap().unwrap().primary,
            Some(switchboard_core::Primary {
                platform: Platform::Teams,
                chosen_by: switchboard_core::ChosenBy::Admin,
            })
        );
        assert_eq!(
            store
                .person(bea.parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .primary,
            None
        );
        assert_eq!(store.accounts_of_person(ann).await.unwrap().len(), 2);
        let representation = store
            .representation(ann, Platform::Slack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(representation.status, SyncStatus::Synced);
        assert_eq!(
            representation.account_id.map(|account| account.to_string()),
            Some(ann_on_slack)
        );
        assert_eq!(
            store.transitions(ann, Platform::Slack).await.unwrap().len(),
            1
        );
        let PromptLink::Open(grant) = store.prompt_link("h-ann").await.unwrap() else {
            panic!("the prompt's link is no longer open");
        };
        assert_eq!((grant.person_id, grant.platform), (ann, Platform::Slack));
        let consents = store.pending_consents().await.unwrap();
        assert_eq!(consents.len(), 1);
        assert_eq!(
            (consents[0].person_id, consents[0].platform),
            (ann, Platform::Slack)
        );
        let portal = store
            .portal(conversation.parse().unwrap(), Platform::Slack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(portal.connection_id, slack);

        // The references to the rebuilt tables still hold, and still cascade.
        store.delete_person(ann).await.unwrap();
        let mut left = std::collections::HashMap::new();
        left.extend(row_counts(&mut raw).await);
        for table in [
            "representations",
            "representation_transitions",
            "prompts",
            "flows",
            "conversation_participants",
        ] {
            assert_eq!(left[table], 0, "{table}");
        }
        assert_eq!(left["accounts"], 2, "an account outlives its person");
        sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(slack.to_string())
            .execute(&mut raw)
            .await
            .unwrap();
        left.extend(row_counts(&mut raw).await);
        assert_eq!(
            (left["accounts"], left["portals"], left["connection_health"]),
            (1, 0, 0)
        );
    }
);

/// Asserts that a read failed on a platform this version does not know, as it should on a row
/// a newer version wrote.
fn refused_unknown_platform<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Corrupt(message)) if message.contains("'matrix'") => {}
        other => panic!("expected an unknown platform to be refused, got {other:?}"),
    }
}

store_test!(
    a_platform_this_version_does_not_know_is_an_error_when_read,
    |db, store| {
        let id = || uuid::Uuid::now_v7().to_string();
        let (connection, person, account) = (id(), id(), id());
        let mut raw = db.raw().await;
        for statement in [
            format!(
                "INSERT INTO connections (id, platform, tenant, display_name, created_at) \
                 VALUES ('{connection}', 'matrix', 'example.org', 'Acme', 1)"
            ),
            format!(
                "INSERT INTO people (id, display_name, email, primary_platform, \
                 primary_chosen_by, created_at, updated_at) \
                 VALUES ('{person}', 'Ann', 'ann@acme.example', 'matrix', 'admin', 1, 1)"
            ),
            format!(
                "INSERT INTO accounts (id, connection_id, platform, external_id, display_name, \
                 kind, active, person_id, updated_at) \
                 VALUES ('{account}', '{connection}', 'matrix', '@ann', 'Ann', 'human', 1, \
                 '{person}', 1)"
            ),
            format!(
                "INSERT INTO representations (person_id, platform, kind, status, updated_at) \
                 VALUES ('{person}', 'matrix', 'bot', 'not_created', 1)"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut raw)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO flows (state, purpose, platform, person_id, sealed, created_at, \
             expires_at, url) VALUES ('st', 'consent', 'matrix', $1, $2, 1, $3, $4)",
        )
        .bind(person.as_str())
        .bind(vec![0_u8])
        .bind(db.millis() + 3_600_000)
        .bind("https://matrix.example/approve")
        .execute(&mut raw)
        .await
        .unwrap();
        let connection = connection.parse().unwrap();
        let person = person.parse().unwrap();
        refused_unknown_platform(store.connection(connection).await);
        refused_unknown_platform(store.connections().await);
        refused_unknown_platform(store.person(person).await);
        refused_unknown_platform(store.accounts_of_person(person).await);
        refused_unknown_platform(store.representations_of(person).await);
        refused_unknown_platform(store.pending_consents().await);
    }
);

store_test!(
    connections_are_unique_per_platform_and_tenant,
    |_db, store| {
        let tenant = ExternalTenantId::new("T0001");
        let slack = store
            .create_connection(Platform::Slack, &tenant, "Acme Slack")
            .await
            .unwrap();
        let teams = store
            .create_connection(Platform::Teams, &tenant, "Acme Microsoft")
            .await
            .unwrap();
        let duplicate = store
            .create_connection(Platform::Slack, &tenant, "Again")
            .await
            .unwrap_err();
        assert!(
            matches!(&duplicate, StoreError::Conflict(what) if what == "a slack connection to T0001"),
            "{duplicate}"
        );
        assert_eq!(
            store.connection(slack.id).await.unwrap(),
            Some(slack.clone())
        );
        assert_eq!(store.connections().await.unwrap(), vec![slack, teams]);
    }
);

store_test!(
    secrets_are_encrypted_at_rest_and_bound_to_their_row,
    |db, store| {
        let a = store
            .create_connection(Platform::Slack, &ExternalTenantId::new("TA"), "A")
            .await
            .unwrap();
        let b = store
            .create_connection(Platform::Slack, &ExternalTenantId::new("TB"), "B")
            .await
            .unwrap();
        let token = SecretString::from("xoxb-plain-token-value".to_owned());
        store.put_secret(a.id, "bot_token", &token).await.unwrap();
        assert_eq!(
            store
                .secret(a.id, "bot_token")
                .await
                .unwrap()
                .unwrap()
                .expose_secret(),
            "xoxb-plain-token-value"
        );
        assert!(store.secret(a.id, "user_token").await.unwrap().is_none());

        let mut raw = db.raw().await;
        let sealed: Vec<u8> = sqlx::query("SELECT sealed FROM connection_secrets")
            .fetch_one(&mut raw)
            .await
            .unwrap()
            .try_get("sealed")
            .unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"plain-toke"));

        store
            .put_secret(
                a.id,
                "bot_token",
                &SecretString::from("xoxb-rotated".to_owned()),
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .secret(a.id, "bot_token")
                .await
                .unwrap()
                .unwrap()
                .expose_secret(),
            "xoxb-rotated"
        );

        sqlx::query(
            "INSERT INTO connection_secrets (connection_id, name, sealed, updated_at) \
         SELECT $1, name, sealed, updated_at FROM connection_secrets WHERE connection_id = $2",
        )
        .bind(b.id.to_string())
        .bind(a.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
        assert!(matches!(
            store.secret(b.id, "bot_token").await,
            Err(StoreError::Secret(SecretsError::Undecryptable))
        ));

        let other_key = db.open(2).await;
        assert!(matches!(
            other_key.secret(a.id, "bot_token").await,
            Err(StoreError::Secret(SecretsError::Undecryptable))
        ));

        let unknown = switchboard_core::ConnectionId::from_uuid(uuid::Uuid::now_v7());
        assert!(matches!(
            store.put_secret(unknown, "bot_token", &token).await,
            Err(StoreError::NotFound {
                kind: "connection",
                ..
            })
        ));
    }
);

store_test!(
    people_are_unique_by_email_and_keep_their_primary,
    |_db, store| {
        let alice = store
            .create_person("Alice", &email("Alice@Acme.com"))
            .await
            .unwrap();
        assert_eq!(alice.email.as_str(), "alice@acme.com");
        assert!(matches!(
            store
                .create_person("Alice again", &email("alice@ACME.com "))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store
                .person_by_email(&email("ALICE@acme.com"))
                .await
                .unwrap(),
            Some(alice.clone())
        );
        let by_admin = switchboard_core::Primary {
            platform: Platform::Teams,
            chosen_by: switchboard_core::ChosenBy::Admin,
        };
        let chosen = store.set_primary(alice.id, Some(by_admin)).await.unwrap();
        assert_eq!(chosen.primary, Some(by_admin));
        assert_eq!(store.person(alice.id).await.unwrap(), Some(chosen));
        let cleared = store.set_primary(alice.id, None).await.unwrap();
        assert_eq!(cleared.primary, None);
        let nobody = PersonId::from_uuid(uuid::Uuid::now_v7());
        assert!(matches!(
            store.set_primary(nobody, Some(by_admin)).await,
            Err(StoreError::NotFound { kind: "person", .. })
        ));
    }
);

store_test!(
    importing_an_account_twice_updates_it_and_never_duplicates,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let first = store
            .upsert_account(&human(slack.id, Platform::Slack, "U1", "bob@acme.com"))
            .await
            .unwrap();
        let person = store
            .create_person("Bob", &email("bob@acme.com"))
            .await
            .unwrap();
        store.link_account(first.id, Some(person.id)).await.unwrap();

        let mut changed = human(slack.id, Platform::Slack, "U1", "robert@acme.com");
        changed.display_name = "Robert".to_owned();
        changed.active = false;
        let second = store.upsert_account(&changed).await.unwrap();
        assert_eq!(second.id, first.id);
        assert_eq!(second.display_name, "Robert");
        assert_eq!(second.email, Some(email("robert@acme.com")));
        assert!(!second.active);
        assert_eq!(
            second.person_id,
            Some(person.id),
            "re-import keeps the link"
        );
        assert_eq!(
            store.accounts_of_person(person.id).await.unwrap(),
            vec![second]
        );
    }
);

store_test!(
    an_account_must_match_its_connections_platform,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let wrong = human(slack.id, Platform::Teams, "U1", "x@acme.com");
        assert!(matches!(
            store.upsert_account(&wrong).await,
            Err(StoreError::NotFound { .. })
        ));
    }
);

store_test!(
    deleting_a_person_unlinks_accounts_and_removes_representations,
    |_db, store| {
        let teams = teams_connection(&store).await;
        let account = store
            .upsert_account(&human(
                teams.id,
                Platform::Teams,
                "guid-1",
                "carol@acme.com",
            ))
            .await
            .unwrap();
        let carol = store
            .create_person("Carol", &email("carol@acme.com"))
            .await
            .unwrap();
        store
            .link_account(account.id, Some(carol.id))
            .await
            .unwrap();
        store
            .create_representation(carol.id, Platform::Slack, RepresentationKind::Bot)
            .await
            .unwrap();
        store.delete_person(carol.id).await.unwrap();
        assert_eq!(store.person(carol.id).await.unwrap(), None);
        assert!(store.representations_of(carol.id).await.unwrap().is_empty());
        assert!(store.accounts_of_person(carol.id).await.unwrap().is_empty());
        let again = store
            .upsert_account(&human(
                teams.id,
                Platform::Teams,
                "guid-1",
                "carol@acme.com",
            ))
            .await
            .unwrap();
        assert_eq!((again.id, again.person_id), (account.id, None));
        assert!(matches!(
            store.delete_person(carol.id).await,
            Err(StoreError::NotFound { .. })
        ));
    }
);

store_test!(
    sync_events_follow_the_state_machine_and_are_recorded,
    |db, store| {
        let dave = store
            .create_person("Dave", &email("dave@acme.com"))
            .await
            .unwrap();
        let rep = store
            .create_representation(
                dave.id,
                Platform::Teams,
                RepresentationKind::ExistingAccount,
            )
            .await
            .unwrap();
        assert_eq!(rep.status, SyncStatus::NotCreated);
        assert!(matches!(
            store
                .create_representation(dave.id, Platform::Teams, RepresentationKind::GuestAccount)
                .await,
            Err(StoreError::Conflict(_))
        ));

        let refused = store
            .apply_sync_event(dave.id, Platform::Teams, SyncEvent::Completed, "test")
            .await
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::IllegalTransition(_)),
            "{refused}"
        );

        store
            .apply_sync_event(
                dave.id,
                Platform::Teams,
                SyncEvent::ConsentRequested,
                "admin: sync",
            )
            .await
            .unwrap();
        db.advance(1_000);
        store
            .apply_sync_event(
                dave.id,
                Platform::Teams,
                SyncEvent::Completed,
                "dave authorised",
            )
            .await
            .unwrap();
        db.advance(1_000);
        let failed = store
            .apply_sync_event(
                dave.id,
                Platform::Teams,
                SyncEvent::Failed {
                    reason: "refresh token revoked".to_owned(),
                },
                "token refresh",
            )
            .await
            .unwrap();
        assert_eq!(failed.from, SyncStatus::Synced);

        let stored = store
            .representation(dave.id, Platform::Teams)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.status.failure_reason(),
            Some("refresh token revoked")
        );

        let history = store.transitions(dave.id, Platform::Teams).await.unwrap();
        let summary: Vec<_> = history
            .iter()
            .map(|t| (t.from, t.to.code(), t.cause.as_str(), t.at.unix_millis()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    SyncStatusCode::NotCreated,
                    SyncStatusCode::Pending,
                    "admin: sync",
                    1_700_000_000_000
                ),
                (
                    SyncStatusCode::Pending,
                    SyncStatusCode::Synced,
                    "dave authorised",
                    1_700_000_001_000
                ),
                (
                    SyncStatusCode::Synced,
                    SyncStatusCode::Failed,
                    "token refresh",
                    1_700_000_002_000
                ),
            ]
        );
        assert_eq!(
            history[2].to.failure_reason(),
            Some("refresh token revoked")
        );

        assert!(matches!(
            store
                .apply_sync_event(dave.id, Platform::Slack, SyncEvent::Reset, "x")
                .await,
            Err(StoreError::NotFound {
                kind: "representation",
                ..
            })
        ));
    }
);

store_test!(the_schema_refuses_inconsistent_statuses, |db, store| {
    let erin = store
        .create_person("Erin", &email("erin@acme.com"))
        .await
        .unwrap();
    let mut raw = db.raw().await;
    for (status, reason) in [("failed", None), ("synced", Some("why")), ("unknown", None)] {
        let result = sqlx::query(
            "INSERT INTO representations (person_id, platform, kind, status, failure_reason, \
             account_id, updated_at) VALUES ($1, 'slack', 'bot', $2, $3, NULL, 0)",
        )
        .bind(erin.id.to_string())
        .bind(status)
        .bind(reason)
        .execute(&mut raw)
        .await;
        assert!(result.is_err(), "{status} with {reason:?} must be refused");
    }
    let result = sqlx::query(
        "INSERT INTO people (id, display_name, email, primary_platform, created_at, updated_at) \
         VALUES ('x', 'Shouty', 'SHOUTY@ACME.COM', NULL, 0, 0)",
    )
    .execute(&mut raw)
    .await;
    assert!(result.is_err(), "e-mail addresses are stored normalised");
});

store_test!(
    a_direct_conversation_is_one_per_pair_even_under_a_race,
    |_db, store| {
        let a = store
            .create_person("A", &email("a@acme.com"))
            .await
            .unwrap();
        let b = store
            .create_person("B", &email("b@acme.com"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let (x, y) = if i % 2 == 0 {
                (a.id, b.id)
            } else {
                (b.id, a.id)
            };
            tasks.push(tokio::spawn(async move {
                store.direct_conversation(x, y).await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap().unwrap().id);
        }
        assert_eq!(ids.len(), 1);
        let id = *ids.first().unwrap();
        let conversation = store.conversation(id).await.unwrap().unwrap();
        assert_eq!(conversation.kind, ConversationKind::Direct);
        assert_eq!(
            conversation.participants,
            [a.id, b.id].into_iter().collect()
        );
        assert!(matches!(
            store.direct_conversation(a.id, a.id).await,
            Err(StoreError::InvalidConversation(_))
        ));
    }
);

store_test!(group_conversations_and_portals, |_db, store| {
    let slack = slack_connection(&store).await;
    let teams = teams_connection(&store).await;
    let mut people = Vec::new();
    for name in ["p1", "p2", "p3"] {
        people.push(
            store
                .create_person(name, &email(&format!("{name}@acme.com")))
                .await
                .unwrap()
                .id,
        );
    }
    assert!(matches!(
        store.create_group_conversation(people[..2].to_vec()).await,
        Err(StoreError::InvalidConversation(_))
    ));
    let group = store
        .create_group_conversation(people.clone())
        .await
        .unwrap();
    let other_group = store
        .create_group_conversation(people.clone())
        .await
        .unwrap();
    assert_ne!(
        group.id, other_group.id,
        "platforms allow several group chats of one set"
    );

    let chat = ExternalChatId::new("G0123");
    let portal = store
        .create_portal(group.id, Platform::Slack, slack.id, &chat, None)
        .await
        .unwrap();
    assert_eq!(
        store.portal(group.id, Platform::Slack).await.unwrap(),
        Some(portal.clone())
    );
    assert_eq!(
        store.portal_by_chat(slack.id, &chat).await.unwrap(),
        Some(portal)
    );
    assert!(matches!(
        store
            .create_portal(
                group.id,
                Platform::Slack,
                slack.id,
                &ExternalChatId::new("G999"),
                None
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_portal(other_group.id, Platform::Slack, slack.id, &chat, None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_portal(
                group.id,
                Platform::Teams,
                slack.id,
                &ExternalChatId::new("19:x"),
                None
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .create_portal(
            group.id,
            Platform::Teams,
            teams.id,
            &ExternalChatId::new("19:x"),
            None,
        )
        .await
        .unwrap();
});

#[tokio::test]
async fn sqlite_databases_use_write_ahead_logging() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(0)));
    let store = Store::open_sqlite(
        &dir.path().join("hub.db"),
        Cipher::from_key(&[1; 32]),
        clock,
    )
    .await
    .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    let mut raw =
        sqlx::AnyConnection::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()))
            .await
            .unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn an_unreachable_database_is_reported_without_its_password() {
    let clock = Arc::new(TestClock(AtomicI64::new(0)));
    let err = Store::connect(
        "postgres://hub:hunter2@127.0.0.1:1/switchboard",
        Cipher::from_key(&[1; 32]),
        clock,
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "cannot connect to the database at postgres://hub:***@127.0.0.1:1/switchboard"
        ),
        "{message}"
    );
    assert!(!message.contains("hunter2"));
}

fn imported(id: &str, name: &str, emails: &[&str]) -> switchboard_store::ImportedAccount {
    switchboard_store::ImportedAccount {
        external_id: ExternalUserId::new(id),
        display_name: name.to_owned(),
        emails: emails.iter().map(|e| email(e)).collect(),
        kind: AccountKind::Human,
        active: true,
    }
}

async fn import(
    store: &Store,
    connection: &switchboard_core::Connection,
    accounts: &[switchboard_store::ImportedAccount],
) -> switchboard_store::ImportRun {
    let run = store.start_import(connection.id).await.unwrap();
    store
        .record_import_page(&run, connection.platform, None, accounts)
        .await
        .unwrap();
    let finished = store.finish_import(&run, Ok(())).await.unwrap();
    let plan = switchboard_core::reconcile(
        &switchboard_core::match_accounts(&store.match_candidates().await.unwrap()),
        &store.account_links().await.unwrap(),
    );
    store.apply_reconciliation(&plan).await.unwrap();
    finished
}

store_test!(
    imports_match_people_across_platforms_and_are_idempotent,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let mut bot = imported("B1", "Deploy Bot", &["deploy@acme.example"]);
        bot.kind = AccountKind::Bot;
        let slack_users = vec![
            imported("U1", "Ada Slack", &["ada@acme.example"]),
            imported("U2", "Bob", &["bob@acme.example"]),
            bot,
        ];
        let first = import(&store, &slack, &slack_users).await;
        assert_eq!(
            (first.seen, first.added, first.skipped, first.deactivated),
            (3, 2, 1, 0),
            "the bot is skipped, not added"
        );
        import(
            &store,
            &teams,
            &[
                imported(
                    "g-ada",
                    "Ada Teams",
                    &["ADA.L@acme.example", "ada@acme.example"],
                ),
                imported("g-cy", "Cy", &["cy@acme.example"]),
            ],
        )
        .await;

        let all = store
            .list_people(&switchboard_store::PeopleQuery {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        let summary: Vec<(String, Vec<Platform>, Option<Platform>)> = all
            .people
            .iter()
            .map(|p| {
                (
                    p.person.email.to_string(),
                    p.platforms.clone(),
                    p.person.primary.map(|primary| primary.platform),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "ada@acme.example".to_owned(),
                    vec![Platform::Slack, Platform::Teams],
                    None
                ),
                (
                    "bob@acme.example".to_owned(),
                    vec![Platform::Slack],
                    Some(Platform::Slack)
                ),
                (
                    "cy@acme.example".to_owned(),
                    vec![Platform::Teams],
                    Some(Platform::Teams)
                ),
            ],
            "the bot is no person; people on one platform get it as primary, Ada must choose"
        );
        let unchosen = store
            .list_people(&switchboard_store::PeopleQuery {
                primary: Some(switchboard_store::PrimaryFilter::Unchosen),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            unchosen
                .people
                .iter()
                .map(|p| p.person.email.as_str())
                .collect::<Vec<_>>(),
            vec!["ada@acme.example"],
            "Ada is now on two platforms: the admin is asked to choose"
        );

        let again = import(&store, &slack, &slack_users).await;
        assert_eq!((again.added, again.updated, again.skipped), (0, 2, 1));
        let after = store
            .list_people(&switchboard_store::PeopleQuery {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(after.people.len(), 3, "nothing duplicated");

        let left = import(&store, &slack, &slack_users[..1]).await;
        assert_eq!(left.deactivated, 1, "Bob left Slack");
        let bob = store
            .person_by_email(&email("bob@acme.example"))
            .await
            .unwrap()
            .unwrap();
        let accounts = store.accounts_of_person(bob.id).await.unwrap();
        assert_eq!(accounts.len(), 1);
        assert!(
            !accounts[0].active,
            "a leaver's account stays, marked inactive"
        );
    }
);

store_test!(
    only_one_import_of_a_connection_runs_at_a_time,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let run = store.start_import(slack.id).await.unwrap();
        assert!(matches!(
            store.start_import(slack.id).await,
            Err(StoreError::Conflict(_))
        ));
        let failed = store
            .finish_import(&run, Err("token revoked".to_owned()))
            .await
            .unwrap();
        assert_eq!(failed.status, switchboard_store::ImportStatus::Failed);
        assert_eq!(failed.error.as_deref(), Some("token revoked"));
        store.start_import(slack.id).await.unwrap();
        assert_eq!(store.import_runs(slack.id, 10).await.unwrap().len(), 2);
    }
);

store_test!(
    an_import_the_hub_stopped_in_is_failed_when_it_starts_again,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let interrupted = store.start_import(slack.id).await.unwrap();
        let finished = store
            .start_import(teams_connection(&store).await.id)
            .await
            .unwrap();
        store.finish_import(&finished, Ok(())).await.unwrap();
        assert_eq!(store.fail_interrupted_imports().await.unwrap(), 1);
        let run = store.import_run(&interrupted.id).await.unwrap().unwrap();
        assert_eq!(run.status, switchboard_store::ImportStatus::Failed);
        assert!(
            run.error
                .as_deref()
                .is_some_and(|e| e.contains("interrupted")),
            "{run:?}"
        );
        assert!(run.finished_at.is_some());
        let done = store.import_run(&finished.id).await.unwrap().unwrap();
        assert_eq!(done.status, switchboard_store::ImportStatus::Succeeded);
        store.start_import(slack.id).await.unwrap();
        assert_eq!(store.fail_interrupted_imports().await.unwrap(), 1);
        assert_eq!(store.fail_interrupted_imports().await.unwrap(), 0);
    }
);

store_test!(the_people_list_filters_searches_and_pages, |_db, store| {
    let slack = slack_connection(&store).await;
    let teams = teams_connection(&store).await;
    let slack_users: Vec<_> = (0..25)
        .map(|i| {
            imported(
                &format!("U{i}"),
                &format!("Person {i:02}"),
                &[&format!("p{i}@acme.example")],
            )
        })
        .collect();
    import(&store, &slack, &slack_users).await;
    import(
        &store,
        &teams,
        &[
            imported("g1", "Person 03", &["p3@acme.example"]),
            imported("g2", "Zed 50% Off", &["zed@acme.example"]),
        ],
    )
    .await;
    let p4 = store
        .person_by_email(&email("p4@acme.example"))
        .await
        .unwrap()
        .unwrap();
    store
        .create_representation(p4.id, Platform::Teams, RepresentationKind::GuestAccount)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_people(&switchboard_store::PeopleQuery {
                limit: 10,
                after: after.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.people.iter().map(|p| p.person.display_name.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    let query = |q: switchboard_store::PeopleQuery| {
        let store = store.clone();
        async move {
            store
                .list_people(&switchboard_store::PeopleQuery { limit: 100, ..q })
                .await
                .unwrap()
                .people
                .into_iter()
                .map(|p| p.person.email.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        query(switchboard_store::PeopleQuery {
            primary: Some(switchboard_store::PrimaryFilter::Unchosen),
            ..Default::default()
        })
        .await,
        vec!["p3@acme.example"]
    );
    // Anyone without a primary platform has nobody's choice yet, on one platform too: every
    // person matches one of the primary filters.
    store.set_primary(p4.id, None).await.unwrap();
    assert_eq!(
        query(switchboard_store::PeopleQuery {
            primary: Some(switchboard_store::PrimaryFilter::Unchosen),
            ..Default::default()
        })
        .await,
        vec!["p3@acme.example", "p4@acme.example"]
    );
    assert_eq!(
        query(switchboard_store::PeopleQuery {
            primary: Some(switchboard_store::PrimaryFilter::Is(Platform::Teams)),
            ..Default::default()
        })
        .await,
        vec!["zed@acme.example"]
    );
    assert_eq!(
        query(switchboard_store::PeopleQuery {
            search: Some("50%".to_owned()),
            ..Default::default()
        })
        .await,
        vec!["zed@acme.example"]
    );
    assert_eq!(
        query(switchboard_store::PeopleQuery {
            search: Some("PERSON 1".to_owned()),
            ..Default::default()
        })
        .await
        .len(),
        10
    );
    assert_eq!(
        query(switchboard_store::PeopleQuery {
            status: Some(SyncStatusCode::NotCreated),
            kind: Some(RepresentationKind::GuestAccount),
            ..Default::default()
        })
        .await,
        vec!["p4@acme.example"]
    );
    assert!(
        query(switchboard_store::PeopleQuery {
            status: Some(SyncStatusCode::Synced),
            ..Default::default()
        })
        .await
        .is_empty()
    );
});

store_test!(api_tokens_settings_and_the_audit_log, |_db, store| {
    let token = store
        .create_api_token("ci", "hash-1", TokenPurpose::Api)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_api_token("again", "hash-1", TokenPurpose::Scim)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let used = store.use_api_token("hash-1").await.unwrap().unwrap();
    assert_eq!(
        (used.id.as_str(), used.last_used_at.is_some()),
        (token.id.as_str(), true)
    );
    assert!(store.use_api_token("hash-2").await.unwrap().is_none());
    store.revoke_api_token(&token.id).await.unwrap();
    assert!(
        store.use_api_token("hash-1").await.unwrap().is_none(),
        "revoked"
    );
    assert!(matches!(
        store.revoke_api_token(&token.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.api_tokens().await.unwrap().len(), 1);

    assert_eq!(store.setting("auto_sync").await.unwrap(), None);
    store.set_setting("auto_sync", "true").await.unwrap();
    store.set_setting("auto_sync", "false").await.unwrap();
    assert_eq!(
        store.setting("auto_sync").await.unwrap().as_deref(),
        Some("false")
    );

    for n in 0..5 {
        store
            .audit(
                "token:ci",
                "person.reset",
                &format!("person-{n}"),
                "",
                "127.0.0.1",
            )
            .await
            .unwrap();
    }
    let newest = store.audit_log(None, 2).await.unwrap();
    assert_eq!(
        newest.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        vec!["person-4", "person-3"]
    );
    let older = store.audit_log(Some(newest[1].id), 10).await.unwrap();
    assert_eq!(older.len(), 3);
});

store_test!(a_connections_secrets_load_together, |_db, store| {
    let slack = slack_connection(&store).await;
    for (name, value) in [
        ("bot_token", "xoxb-1"),
        ("app_configuration_token", "xoxe-2"),
    ] {
        store
            .put_secret(slack.id, name, &SecretString::from(value.to_owned()))
            .await
            .unwrap();
    }
    let secrets = store.secrets(slack.id).await.unwrap();
    let names: Vec<(&str, &str)> = secrets
        .iter()
        .map(|(name, secret)| (name.as_str(), secret.expose_secret()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("app_configuration_token", "xoxe-2"),
            ("bot_token", "xoxb-1")
        ]
    );
});

store_test!(a_flow_is_taken_once_and_expires, |db, store| {
    let flow = |state: &str, expires_in: i64| switchboard_store::PendingFlow {
        state: state.to_owned(),
        purpose: switchboard_store::FlowPurpose::Connect,
        platform: Platform::Teams,
        connection_id: None,
        person_id: None,
        platform_state: SecretString::from("{\"step\":\"admin_consent\"}".to_owned()),
        url: None,
        expires_at: Timestamp::from_unix_millis(1_700_000_000_000 + expires_in),
    };
    store.save_flow(&flow("s1", 60_000)).await.unwrap();
    store.save_flow(&flow("s2", 1_000)).await.unwrap();
    assert!(matches!(
        store.save_flow(&flow("s1", 5)).await,
        Err(StoreError::Conflict(_))
    ));
    let taken = store.take_flow("s1").await.unwrap().unwrap();
    assert_eq!(
        taken.platform_state.expose_secret(),
        "{\"step\":\"admin_consent\"}"
    );
    assert!(
        store.take_flow("s1").await.unwrap().is_none(),
        "a state works once"
    );
    db.advance(2_000);
    assert!(store.take_flow("s2").await.unwrap().is_none(), "expired");
    assert!(store.take_flow("never").await.unwrap().is_none());
});

store_test!(
    a_represented_person_keeps_an_automatic_primary_but_is_asked_to_choose,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        import(
            &store,
            &slack,
            &[imported("U1", "Eve", &["eve@acme.example"])],
        )
        .await;
        let eve = store
            .person_by_email(&email("eve@acme.example"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(eve.primary.map(|p| p.platform), Some(Platform::Slack));
        store
            .create_representation(eve.id, Platform::Teams, RepresentationKind::GuestAccount)
            .await
            .unwrap();
        import(
            &store,
            &teams,
            &[imported("g-eve", "Eve", &["eve@acme.example"])],
        )
        .await;
        let eve = store.person(eve.id).await.unwrap().unwrap();
        assert_eq!(
            eve.primary,
            Some(switchboard_core::Primary {
                platform: Platform::Slack,
                chosen_by: switchboard_core::ChosenBy::Automatic
            }),
            "she keeps chatting from Slack"
        );
        let unchosen = store
            .list_people(&switchboard_store::PeopleQuery {
                primary: Some(switchboard_store::PrimaryFilter::Unchosen),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            unchosen.people.len(),
            1,
            "and the admin is asked to confirm"
        );
    }
);

store_test!(
    people_who_left_every_platform_lose_their_automatic_primary_and_are_listed_while_represented,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let ann = imported("U1", "Ann", &["ann@acme.example"]);
        let ben = imported("U2", "Ben", &["ben@acme.example"]);
        let mut cy = imported("U3", "Cy", &["cy@acme.example"]);
        import(&store, &slack, &[ann.clone(), ben.clone(), cy.clone()]).await;
        let person = |address: &'static str| {
            let store = &store;
            async move {
                store
                    .person_by_email(&email(address))
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let ben_id = person("ben@acme.example").await.id;
        store
            .create_representation(ben_id, Platform::Teams, RepresentationKind::GuestAccount)
            .await
            .unwrap();
        store
            .complete_sync(
                ben_id,
                Platform::Teams,
                &ExternalUserId::new("guest-ben"),
                &secrets(&[("access_token", "t")], None),
                "synced",
            )
            .await
            .unwrap();
        assert!(store.people_who_left().await.unwrap().is_empty());

        // Ann and Ben are no longer listed; Cy is listed deactivated.
        cy.active = false;
        let run = import(&store, &slack, &[cy]).await;
        assert_eq!((run.deactivated, run.updated, run.skipped), (2, 0, 1));
        for address in ["ann@acme.example", "cy@acme.example"] {
            assert_eq!(person(address).await.primary, None, "{address}");
        }
        assert!(
            person("ben@acme.example").await.primary.is_some(),
            "a represented primary stays until the person is reset"
        );
        assert_eq!(store.people_who_left().await.unwrap(), vec![ben_id]);
        let listed = store
            .list_people(&switchboard_store::PeopleQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.people.len(), 3, "leavers stay visible");
        assert!(listed.people.iter().all(|p| p.platforms.is_empty()));

        // Ann comes back: her account is active again, her person the same, her primary
        // automatic again.
        import(&store, &slack, &[ann]).await;
        let back = person("ann@acme.example").await;
        assert_eq!(back.primary.map(|p| p.platform), Some(Platform::Slack));
        assert_eq!(store.people_who_left().await.unwrap(), vec![ben_id]);
        store
            .reset_representation(ben_id, Platform::Teams, "left")
            .await
            .unwrap();
        assert!(store.people_who_left().await.unwrap().is_empty());
    }
);

/// Imports `teams`, each listing its members, as one run of `connection`.
async fn import_teams(
    store: &Store,
    connection: &switchboard_core::Connection,
    teams: &[(&str, Vec<switchboard_store::ImportedAccount>)],
) -> switchboard_store::ImportRun {
    let run = store.start_import(connection.id).await.unwrap();
    for (team, members) in teams {
        store
            .record_import_page(&run, connection.platform, Some(team), members)
            .await
            .unwrap();
    }
    let finished = store.finish_import(&run, Ok(())).await.unwrap();
    let plan = switchboard_core::reconcile(
        &switchboard_core::match_accounts(&store.match_candidates().await.unwrap()),
        &store.account_links().await.unwrap(),
    );
    store.apply_reconciliation(&plan).await.unwrap();
    finished
}

async fn team_members(store: &Store, team: &str) -> Vec<String> {
    let mut emails: Vec<String> = store
        .list_people(&switchboard_store::PeopleQuery {
            team: Some(team.to_owned()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .people
        .iter()
        .map(|p| p.person.email.as_str().to_owned())
        .collect();
    emails.sort();
    emails
}

store_test!(
    team_members_are_recorded_and_a_rule_chooses_their_primary,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        import(
            &store,
            &slack,
            &[
                imported("U1", "Ann", &["ann@acme.example"]),
                imported("U2", "Ben", &["ben@acme.example"]),
                imported("U3", "Cy", &["cy@acme.example"]),
            ],
        )
        .await;
        // Ann and Ben are on both platforms, Dee only on Teams; Ann is in both teams.
        import_teams(
            &store,
            &teams,
            &[
                (
                    "team-x",
                    vec![
                        imported("t-ann", "Ann", &["ann@acme.example"]),
                        imported("t-dee", "Dee", &["dee@acme.example"]),
                    ],
                ),
                (
                    "team-y",
                    vec![
                        imported("t-ann", "Ann", &["ann@acme.example"]),
                        imported("t-ben", "Ben", &["ben@acme.example"]),
                    ],
                ),
            ],
        )
        .await;
        assert_eq!(
            team_members(&store, "team-x").await,
            ["ann@acme.example", "dee@acme.example"]
        );
        assert_eq!(
            team_members(&store, "team-y").await,
            ["ann@acme.example", "ben@acme.example"]
        );
        assert!(team_members(&store, "team-z").await.is_empty());

        // Members of X on several platforms chat from Teams: Ann only (Dee keeps her
        // automatic primary); a second run changes nothing.
        assert_eq!(
            store
                .set_primary_of_team_members("team-x", Platform::Teams)
                .await
                .unwrap(),
            1
        );
        let primary = |address: &'static str| {
            let store = &store;
            async move {
                store
                    .person_by_email(&email(address))
                    .await
                    .unwrap()
                    .unwrap()
                    .primary
            }
        };
        assert_eq!(
            primary("ann@acme.example").await,
            Some(switchboard_core::Primary {
                platform: Platform::Teams,
                chosen_by: switchboard_core::ChosenBy::Admin,
            })
        );
        assert_eq!(
            primary("dee@acme.example").await,
            Some(switchboard_core::Primary {
                platform: Platform::Teams,
                chosen_by: switchboard_core::ChosenBy::Automatic,
            })
        );
        assert_eq!(primary("ben@acme.example").await, None);
        assert_eq!(
            store
                .set_primary_of_team_members("team-x", Platform::Teams)
                .await
                .unwrap(),
            0
        );
        // Members of Y chat from Slack: Ann changes again, and Ben.
        assert_eq!(
            store
                .set_primary_of_team_members("team-y", Platform::Slack)
                .await
                .unwrap(),
            2
        );
        // Nobody in Y has a Google Chat account: nothing changes.
        assert_eq!(
            store
                .set_primary_of_team_members("team-y", Platform::GoogleChat)
                .await
                .unwrap(),
            0
        );

        // Ann leaves team X: the next import drops that membership, and she stays in Y.
        import_teams(
            &store,
            &teams,
            &[
                (
                    "team-x",
                    vec![imported("t-dee", "Dee", &["dee@acme.example"])],
                ),
                (
                    "team-y",
                    vec![
                        imported("t-ann", "Ann", &["ann@acme.example"]),
                        imported("t-ben", "Ben", &["ben@acme.example"]),
                    ],
                ),
            ],
        )
        .await;
        assert_eq!(team_members(&store, "team-x").await, ["dee@acme.example"]);
        assert_eq!(
            team_members(&store, "team-y").await,
            ["ann@acme.example", "ben@acme.example"]
        );
        assert_eq!(
            store
                .set_primary_of_team_members("team-x", Platform::Teams)
                .await
                .unwrap(),
            0
        );
    }
);

store_test!(
    the_hubs_own_guests_and_bots_are_recognised_on_reimport,
    |_db, store| {
        let slack = slack_connection(&store).await;
        import(
            &store,
            &slack,
            &[imported("U1", "Ann", &["ann@acme.example"])],
        )
        .await;
        let ann = store
            .person_by_email(&email("ann@acme.example"))
            .await
            .unwrap()
            .unwrap();
        // The hub represents Ann's colleague Ben (on Teams only) by a bot on Slack.
        let ben = store
            .create_person("Ben", &email("ben@acme.example"))
            .await
            .unwrap();
        store
            .create_representation(ben.id, Platform::Slack, RepresentationKind::Bot)
            .await
            .unwrap();
        store
            .complete_sync(
                ben.id,
                Platform::Slack,
                &ExternalUserId::new("U-ben-bot"),
                &secrets(&[("bot_token", "xoxb-ben")], None),
                "approved",
            )
            .await
            .unwrap();
        let mut ben_bot = imported("U-ben-bot", "Ben", &[]);
        ben_bot.kind = AccountKind::Bot;
        let mut other_bot = imported("U-poll", "Poll Bot", &[]);
        other_bot.kind = AccountKind::Bot;
        // Listed with an address, the bot is still no person.
        let mut ben_bot_with_mail = ben_bot.clone();
        ben_bot_with_mail.kind = AccountKind::Human;
        ben_bot_with_mail.emails = vec![email("ben@acme.example")];
        let run = import(
            &store,
            &slack,
            &[
                imported("U1", "Ann", &["ann@acme.example"]),
                ben_bot_with_mail,
                other_bot,
            ],
        )
        .await;
        assert_eq!(
            (run.seen, run.added, run.updated, run.skipped),
            (3, 0, 1, 2),
            "Ann is updated; both bots are skipped: {run:?}"
        );
        let kinds = |store: &Store| {
            let store = store.clone();
            async move {
                let mut kinds: Vec<(String, AccountKind)> = store
                    .match_candidates()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| (c.display_name, c.kind))
                    .collect();
                kinds.sort_by(|a, b| a.0.cmp(&b.0));
                kinds
            }
        };
        let expected = vec![
            ("Ann".to_owned(), AccountKind::Human),
            ("Ben".to_owned(), AccountKind::HubRepresentation),
            ("Poll Bot".to_owned(), AccountKind::Bot),
        ];
        assert_eq!(kinds(&store).await, expected);
        let bens = store.accounts_of_person(ben.id).await.unwrap();
        assert_eq!(
            bens.iter()
                .map(|a| (a.external_id.as_str(), a.kind))
                .collect::<Vec<_>>(),
            [("U-ben-bot", AccountKind::HubRepresentation)],
            "the bot belongs to the person it represents"
        );
        assert_eq!(store.accounts_of_person(ann.id).await.unwrap().len(), 1);
        // Reset removes the bot; its deactivated user, still listed, stays the hub's.
        store
            .reset_representation(ben.id, Platform::Slack, "reset")
            .await
            .unwrap();
        ben_bot.active = false;
        import(
            &store,
            &slack,
            &[imported("U1", "Ann", &["ann@acme.example"]), ben_bot],
        )
        .await;
        assert_eq!(kinds(&store).await, expected);
        assert_eq!(
            store
                .list_people(&switchboard_store::PeopleQuery {
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .people
                .len(),
            2,
            "Ann and Ben, once each"
        );
    }
);

store_test!(
    credentials_that_never_expire_are_checked_when_last_stored_long_ago,
    |db, store| {
        let gus = store
            .create_person("Gus", &email("gus@acme.example"))
            .await
            .unwrap();
        let hal = store
            .create_person("Hal", &email("hal@acme.example"))
            .await
            .unwrap();
        for (person, expires_at) in [(gus.id, None), (hal.id, Some(1_800_000_000_000))] {
            store
                .create_representation(person, Platform::Slack, RepresentationKind::Bot)
                .await
                .unwrap();
            store
                .complete_sync(
                    person,
                    Platform::Slack,
                    &ExternalUserId::new(format!("U-{person}")),
                    &secrets(&[("bot_token", "xoxb")], expires_at),
                    "test",
                )
                .await
                .unwrap();
        }
        let stored_at = 1_700_000_000_000;
        let unchecked = |cutoff: i64| {
            let store = store.clone();
            async move {
                store
                    .representations_unchecked_since(Timestamp::from_unix_millis(cutoff), 100)
                    .await
                    .unwrap()
            }
        };
        assert!(unchecked(stored_at).await.is_empty(), "just stored");
        // Only Gus's never expire (Hal's are renewed before they do).
        assert_eq!(
            unchecked(stored_at + 1).await,
            vec![(gus.id, Platform::Slack, None)]
        );
        // Checked (stored again) a minute later: not due until the cutoff passes that.
        db.advance(60_000);
        store
            .set_representation_secrets(
                gus.id,
                Platform::Slack,
                &secrets(&[("bot_token", "xoxb")], None),
            )
            .await
            .unwrap();
        assert!(unchecked(stored_at + 1).await.is_empty());
        assert_eq!(unchecked(stored_at + 60_001).await.len(), 1);
        store
            .apply_sync_event(
                gus.id,
                Platform::Slack,
                SyncEvent::Failed {
                    reason: "token refresh: token_revoked".to_owned(),
                },
                "test",
            )
            .await
            .unwrap();
        assert!(
            unchecked(stored_at + 60_001).await.is_empty(),
            "only synced ones are checked"
        );
    }
);

store_test!(
    the_refresher_finds_its_credentials_through_indexes,
    |db, store| {
        let mut raw = db.raw().await;
        match store.backend() {
            Backend::Sqlite => {
                // The query of `Store::representations_expiring_before`.
                let plan: Vec<String> = sqlx::query(
                    "EXPLAIN QUERY PLAN SELECT r.person_id, r.platform, a.connection_id, \
                     MIN(s.expires_at) AS expires_at FROM representations r \
                     JOIN representation_secrets s ON s.person_id = r.person_id AND s.platform = r.platform \
                     LEFT JOIN accounts a ON a.id = r.account_id \
                     WHERE r.status = 'synced' AND s.expires_at IS NOT NULL AND s.expires_at < $1 \
                     GROUP BY r.person_id, r.platform, a.connection_id \
                     ORDER BY expires_at, r.person_id, r.platform LIMIT $2",
                )
                .bind(1_700_000_000_000i64)
                .bind(500i64)
                .fetch_all(&mut raw)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("detail").unwrap())
                .collect();
                assert!(
                    plan.iter()
                        .any(|step| step.contains("representation_secrets_by_expiry")),
                    "{plan:?}"
                );
                assert!(
                    !plan.iter().any(|step| step.starts_with("SCAN")),
                    "{plan:?}"
                );
                // The query of `Store::representations_unchecked_since`.
                let plan: Vec<String> = sqlx::query(
                    "EXPLAIN QUERY PLAN SELECT r.person_id, r.platform, a.connection_id, \
                     MIN(s.updated_at) AS checked_at FROM representation_secrets s \
                     JOIN representations r ON r.person_id = s.person_id AND r.platform = s.platform \
                     LEFT JOIN accounts a ON a.id = r.account_id \
                     WHERE s.expires_at IS NULL AND s.updated_at < $1 AND r.status = 'synced' \
                     GROUP BY r.person_id, r.platform, a.connection_id \
                     ORDER BY checked_at, r.person_id, r.platform LIMIT $2",
                )
                .bind(1_700_000_000_000i64)
                .bind(500i64)
                .fetch_all(&mut raw)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("detail").unwrap())
                .collect();
                assert!(
                    plan.iter()
                        .any(|step| step.contains("representation_secrets_unexpiring")),
                    "{plan:?}"
                );
                assert!(
                    !plan.iter().any(|step| step.starts_with("SCAN")),
                    "{plan:?}"
                );
            }
            Backend::Postgres => {
                let indexes: Vec<String> = sqlx::query(
                    "SELECT indexname::text AS indexname FROM pg_indexes WHERE tablename = 'representation_secrets'",
                )
                .fetch_all(&mut raw)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("indexname").unwrap())
                .collect();
                for index in [
                    "representation_secrets_by_expiry",
                    "representation_secrets_unexpiring",
                ] {
                    assert!(indexes.iter().any(|i| i == index), "{indexes:?}");
                }
            }
        }
    }
);

fn secrets(pairs: &[(&str, &str)], expires_at: Option<i64>) -> RepresentationSecrets {
    RepresentationSecrets {
        secrets: pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), SecretString::from((*value).to_owned())))
            .collect(),
        expires_at: expires_at.map(Timestamp::from_unix_millis),
    }
}

store_test!(
    a_completed_sync_keeps_its_account_and_sealed_credentials_until_reset,
    |db, store| {
        let ada = store
            .create_person("Ada", &email("ada@acme.example"))
            .await
            .unwrap();
        store
            .create_representation(ada.id, Platform::Slack, RepresentationKind::Bot)
            .await
            .unwrap();
        let transition = store
            .complete_sync(
                ada.id,
                Platform::Slack,
                &ExternalUserId::new("B-ada"),
                &secrets(
                    &[("bot_token", "xoxb-secret-ada"), ("app_id", "A1")],
                    Some(1_700_000_500_000),
                ),
                "admin approved the bot",
            )
            .await
            .unwrap();
        assert_eq!(transition.to, SyncStatus::Synced);
        let synced = store
            .representation(ada.id, Platform::Slack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(synced.external_account, Some(ExternalUserId::new("B-ada")));
        let stored = store
            .representation_secrets(ada.id, Platform::Slack)
            .await
            .unwrap();
        let names: Vec<(&str, &str)> = stored
            .secrets
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose_secret()))
            .collect();
        assert_eq!(
            names,
            vec![("app_id", "A1"), ("bot_token", "xoxb-secret-ada")]
        );
        assert_eq!(
            stored.expires_at,
            Some(Timestamp::from_unix_millis(1_700_000_500_000))
        );
        let mut raw = db.raw().await;
        for row in sqlx::query("SELECT sealed FROM representation_secrets")
            .fetch_all(&mut raw)
            .await
            .unwrap()
        {
            let sealed: Vec<u8> = row.try_get("sealed").unwrap();
            assert!(
                !sealed.windows(6).any(|w| w == b"secret"),
                "credentials are sealed at rest"
            );
        }
        let other_key = db.open(2).await;
        assert!(matches!(
            other_key
                .representation_secrets(ada.id, Platform::Slack)
                .await,
            Err(StoreError::Secret(_))
        ));
        let synced_now = store
            .representations_with_status(Some(Platform::Slack), SyncStatusCode::Synced)
            .await
            .unwrap();
        assert_eq!(synced_now, vec![synced]);
        assert!(
            store
                .representations_with_status(Some(Platform::Teams), SyncStatusCode::Synced)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .representations_with_status(None, SyncStatusCode::Pending)
                .await
                .unwrap()
                .is_empty()
        );

        store
            .reset_representation(ada.id, Platform::Slack, "admin: reset")
            .await
            .unwrap();
        let reset = store
            .representation(ada.id, Platform::Slack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (reset.status, reset.external_account),
            (SyncStatus::NotCreated, None)
        );
        assert!(
            store
                .representation_secrets(ada.id, Platform::Slack)
                .await
                .unwrap()
                .secrets
                .is_empty()
        );
        let history: Vec<_> = store
            .transitions(ada.id, Platform::Slack)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.from, t.to.code(), t.cause))
            .collect();
        assert_eq!(
            history,
            vec![
                (
                    SyncStatusCode::NotCreated,
                    SyncStatusCode::Synced,
                    "admin approved the bot".to_owned()
                ),
                (
                    SyncStatusCode::Synced,
                    SyncStatusCode::NotCreated,
                    "admin: reset".to_owned()
                ),
            ]
        );
        assert!(matches!(
            store
                .reset_representation(ada.id, Platform::Slack, "again")
                .await,
            Err(StoreError::IllegalTransition(_))
        ));
    }
);

store_test!(an_illegal_completion_stores_no_credentials, |_db, store| {
    let bob = store
        .create_person("Bob", &email("bob@acme.example"))
        .await
        .unwrap();
    store
        .create_representation(bob.id, Platform::Teams, RepresentationKind::ExistingAccount)
        .await
        .unwrap();
    assert!(matches!(
        store
            .complete_sync(
                bob.id,
                Platform::Teams,
                &ExternalUserId::new("u-bob"),
                &secrets(&[("access_token", "t")], None),
                "no prompt was ever sent",
            )
            .await,
        Err(StoreError::IllegalTransition(_))
    ));
    let unchanged = store
        .representation(bob.id, Platform::Teams)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (unchanged.status, unchanged.external_account),
        (SyncStatus::NotCreated, None)
    );
    assert!(
        store
            .representation_secrets(bob.id, Platform::Teams)
            .await
            .unwrap()
            .secrets
            .is_empty()
    );
    assert!(
        store
            .transitions(bob.id, Platform::Teams)
            .await
            .unwrap()
            .is_empty()
    );
});

store_test!(
    a_prompt_link_works_until_its_account_is_linked_or_it_expires,
    |db, store| {
        let cy = store
            .create_person("Cy", &email("cy@acme.example"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_prompt(cy.id, Platform::Teams, "h0", Timestamp::from_unix_millis(0))
                .await,
            Err(StoreError::NotFound { .. })
        ));
        store
            .create_representation(cy.id, Platform::Teams, RepresentationKind::ExistingAccount)
            .await
            .unwrap();
        let soon = Timestamp::from_unix_millis(1_700_000_001_000);
        let later = Timestamp::from_unix_millis(1_700_000_100_000);
        let first = store
            .create_prompt(cy.id, Platform::Teams, "h1", later)
            .await
            .unwrap();
        store
            .create_prompt(cy.id, Platform::Teams, "h2", soon)
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_prompt(cy.id, Platform::Teams, "h1", later)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.prompts_sent(cy.id, Platform::Teams).await.unwrap(), 2);
        let open = PromptLink::Open(PromptGrant {
            id: first,
            person_id: cy.id,
            platform: Platform::Teams,
            expires_at: later,
        });
        assert_eq!(store.prompt_link("h1").await.unwrap(), open);
        assert_eq!(
            store.prompt_link("h1").await.unwrap(),
            open,
            "following a link spends nothing"
        );
        assert_eq!(
            store.prompt_link("unknown").await.unwrap(),
            PromptLink::Gone
        );
        db.advance(2_000);
        assert_eq!(
            store.prompt_link("h2").await.unwrap(),
            PromptLink::Gone,
            "expired"
        );
        assert_eq!(store.prompt_link("h1").await.unwrap(), open);
        store
            .apply_sync_event(
                cy.id,
                Platform::Teams,
                SyncEvent::ConsentRequested,
                "prompted",
            )
            .await
            .unwrap();
        store
            .create_prompt(cy.id, Platform::Teams, "h3", later)
            .await
            .unwrap();
        store
            .complete_sync(
                cy.id,
                Platform::Teams,
                &ExternalUserId::new("u-cy"),
                &secrets(&[("access_token", "t")], None),
                "authorised",
            )
            .await
            .unwrap();
        for spent in ["h1", "h3"] {
            assert_eq!(
                store.prompt_link(spent).await.unwrap(),
                PromptLink::Linked {
                    platform: Platform::Teams
                },
                "a completed sync spends every link to it"
            );
        }
        assert_eq!(
            store.prompt_link("h2").await.unwrap(),
            PromptLink::Gone,
            "an expired link stays expired"
        );
        store
            .reset_representation(cy.id, Platform::Teams, "admin: reset")
            .await
            .unwrap();
        assert_eq!(
            store.prompts_sent(cy.id, Platform::Teams).await.unwrap(),
            0,
            "a reset forgets the prompts"
        );
    }
);

store_test!(
    links_spent_as_they_were_followed_work_again_after_the_upgrade_unless_linked,
    |db, store| {
        let later = Timestamp::from_unix_millis(1_700_000_100_000);
        let mut prompted = Vec::new();
        for (name, hash) in [("Cy", "h-cy"), ("Dee", "h-dee")] {
            let person = store
                .create_person(name, &email(&format!("{hash}@acme.example")))
                .await
                .unwrap();
            store
                .create_representation(
                    person.id,
                    Platform::Teams,
                    RepresentationKind::ExistingAccount,
                )
                .await
                .unwrap();
            store
                .apply_sync_event(
                    person.id,
                    Platform::Teams,
                    SyncEvent::ConsentRequested,
                    "prompted",
                )
                .await
                .unwrap();
            let id = store
                .create_prompt(person.id, Platform::Teams, hash, later)
                .await
                .unwrap();
            prompted.push((person.id, id));
        }
        // Dee finished the sign-in; Cy left it.
        store
            .complete_sync(
                prompted[1].0,
                Platform::Teams,
                &ExternalUserId::new("u-dee"),
                &secrets(&[("access_token", "t")], None),
                "authorised",
            )
            .await
            .unwrap();
        store.close().await;

        // As the version before left it: both links spent as they were followed.
        let mut raw = db.raw().await;
        sqlx::query("UPDATE prompts SET used_at = $1")
            .bind(db.millis())
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 16")
            .execute(&mut raw)
            .await
            .unwrap();
        raw.close().await.unwrap();

        let upgraded = db.open(1).await;
        assert_eq!(
            upgraded.prompt_link("h-cy").await.unwrap(),
            PromptLink::Open(PromptGrant {
                id: prompted[0].1.clone(),
                person_id: prompted[0].0,
                platform: Platform::Teams,
                expires_at: later,
            }),
            "the account was never linked: the link works again"
        );
        assert_eq!(
            upgraded.prompt_link("h-dee").await.unwrap(),
            PromptLink::Linked {
                platform: Platform::Teams
            }
        );
    }
);

store_test!(
    pending_consents_are_listed_until_taken_expired_or_reset,
    |db, store| {
        let dee = store
            .create_person("Dee", &email("dee@acme.example"))
            .await
            .unwrap();
        let eli = store
            .create_person("Eli", &email("eli@acme.example"))
            .await
            .unwrap();
        for person in [dee.id, eli.id] {
            store
                .create_representation(person, Platform::Slack, RepresentationKind::Bot)
                .await
                .unwrap();
        }
        let flow = |state: &str, purpose, person: Option<PersonId>, expires_in: i64| {
            switchboard_store::PendingFlow {
                state: state.to_owned(),
                purpose,
                platform: Platform::Slack,
                connection_id: None,
                person_id: person,
                platform_state: SecretString::from("{}".to_owned()),
                url: Some(format!("https://slack.example/authorize?state={state}")),
                expires_at: Timestamp::from_unix_millis(1_700_000_000_000 + expires_in),
            }
        };
        use switchboard_store::FlowPurpose;
        store
            .save_flow(&flow("c-dee", FlowPurpose::Consent, Some(dee.id), 60_000))
            .await
            .unwrap();
        db.advance(1);
        store
            .save_flow(&flow("c-eli", FlowPurpose::Consent, Some(eli.id), 1_000))
            .await
            .unwrap();
        store
            .save_flow(&flow("connect", FlowPurpose::Connect, None, 60_000))
            .await
            .unwrap();
        store
            .save_flow(&flow("a-dee", FlowPurpose::Authorize, Some(dee.id), 60_000))
            .await
            .unwrap();
        let listed: Vec<_> = store
            .pending_consents()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.person_id, c.url))
            .collect();
        assert_eq!(
            listed,
            vec![
                (
                    dee.id,
                    "https://slack.example/authorize?state=c-dee".to_owned()
                ),
                (
                    eli.id,
                    "https://slack.example/authorize?state=c-eli".to_owned()
                ),
            ]
        );
        let taken = store.take_flow("a-dee").await.unwrap().unwrap();
        assert_eq!(
            (taken.purpose, taken.person_id, taken.url.as_deref()),
            (
                FlowPurpose::Authorize,
                Some(dee.id),
                Some("https://slack.example/authorize?state=a-dee")
            )
        );
        db.advance(2_000);
        assert_eq!(store.pending_consents().await.unwrap().len(), 1, "expired");
        store
            .apply_sync_event(
                dee.id,
                Platform::Slack,
                SyncEvent::ConsentRequested,
                "bot created",
            )
            .await
            .unwrap();
        store
            .reset_representation(dee.id, Platform::Slack, "admin: reset")
            .await
            .unwrap();
        assert!(store.pending_consents().await.unwrap().is_empty());
        assert!(store.take_flow("c-dee").await.unwrap().is_none());
    }
);

store_test!(
    what_a_consent_leaves_behind_is_kept_without_a_status_change,
    |_db, store| {
        let fay = store
            .create_person("Fay", &email("fay@acme.example"))
            .await
            .unwrap();
        let unapproved = secrets(&[("app_id", "A9")], None);
        assert!(matches!(
            store
                .set_representation_secrets(fay.id, Platform::Slack, &unapproved)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        store
            .create_representation(fay.id, Platform::Slack, RepresentationKind::Bot)
            .await
            .unwrap();
        store
            .apply_sync_event(
                fay.id,
                Platform::Slack,
                SyncEvent::ConsentRequested,
                "bot created",
            )
            .await
            .unwrap();
        store
            .set_representation_secrets(fay.id, Platform::Slack, &unapproved)
            .await
            .unwrap();
        let kept = store
            .representation_secrets(fay.id, Platform::Slack)
            .await
            .unwrap();
        assert_eq!(kept.secrets.len(), 1);
        assert_eq!(kept.secrets[0].1.expose_secret(), "A9");
        let pending = store
            .representation(fay.id, Platform::Slack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (pending.status, pending.external_account),
            (SyncStatus::Pending, None)
        );
        store
            .reset_representation(fay.id, Platform::Slack, "admin: reset")
            .await
            .unwrap();
        assert!(
            store
                .representation_secrets(fay.id, Platform::Slack)
                .await
                .unwrap()
                .secrets
                .is_empty()
        );
    }
);

store_test!(
    only_a_representation_not_created_yet_changes_kind,
    |_db, store| {
        let gus = store
            .create_person("Gus", &email("gus@acme.example"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .set_representation_kind(gus.id, Platform::Teams, RepresentationKind::GuestAccount)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        store
            .create_representation(gus.id, Platform::Teams, RepresentationKind::GuestAccount)
            .await
            .unwrap();
        let changed = store
            .set_representation_kind(gus.id, Platform::Teams, RepresentationKind::ExistingAccount)
            .await
            .unwrap();
        assert_eq!(changed.kind, RepresentationKind::ExistingAccount);
        store
            .apply_sync_event(
                gus.id,
                Platform::Teams,
                SyncEvent::ConsentRequested,
                "prompted",
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .set_representation_kind(gus.id, Platform::Teams, RepresentationKind::GuestAccount)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store
                .representation(gus.id, Platform::Teams)
                .await
                .unwrap()
                .unwrap()
                .kind,
            RepresentationKind::ExistingAccount
        );
    }
);

store_test!(
    a_page_larger_than_one_statement_with_an_account_listed_twice_is_stored_once,
    |_db, store| {
        let slack = slack_connection(&store).await;
        // More accounts than one multi-row statement takes, the last listed twice: the second
        // listing is the one kept, as if the page had been written row by row.
        let mut page: Vec<_> = (0..450)
            .map(|i| {
                imported(
                    &format!("U{i}"),
                    &format!("Person {i:03}"),
                    &[&format!("person.{i}@acme.example")],
                )
            })
            .collect();
        page.push(imported(
            "U449",
            "Person 449 renamed",
            &["person.449@acme.example", "p449@acme.example"],
        ));
        let first = import(&store, &slack, &page).await;
        assert_eq!((first.seen, first.added, first.updated), (451, 450, 1));
        let listed = store
            .list_people(&switchboard_store::PeopleQuery {
                search: Some("person 449".to_owned()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.people.len(), 1);
        let accounts = store
            .accounts_of_person(listed.people[0].person.id)
            .await
            .unwrap();
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].display_name, "Person 449 renamed");
        // The alias was stored: an account elsewhere with it joins the same person.
        let teams = teams_connection(&store).await;
        import(
            &store,
            &teams,
            &[imported("g-449", "P 449", &["p449@acme.example"])],
        )
        .await;
        let accounts = store
            .accounts_of_person(listed.people[0].person.id)
            .await
            .unwrap();
        assert_eq!(accounts.len(), 2);

        // Imported again unchanged, every account is updated and nobody is added.
        page.pop();
        let again = import(&store, &slack, &page).await;
        assert_eq!((again.seen, again.added, again.updated), (450, 0, 450));
        let everyone = store
            .list_people(&switchboard_store::PeopleQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(everyone.people.len(), 450);
    }
);

store_test!(
    connection_health_is_recorded_and_expiring_connections_are_found,
    |_db, store| {
        let teams = teams_connection(&store).await;
        let slack = slack_connection(&store).await;
        assert_eq!(store.connection_health(teams.id).await.unwrap(), None);
        let health = ConnectionHealth {
            ok: true,
            identity: Some("hub@acme.com".to_owned()),
            scopes: vec!["User.Read".to_owned(), "Chat.ReadWrite".to_owned()],
            last_checked_at: Timestamp::from_unix_millis(1_000),
            last_error: None,
        };
        store
            .record_connection_health(teams.id, &health)
            .await
            .unwrap();
        assert_eq!(
            store.connection_health(teams.id).await.unwrap(),
            Some(health.clone())
        );
        let failing = ConnectionHealth {
            ok: false,
            last_error: Some("token refresh: revoked".to_owned()),
            ..health
        };
        store
            .record_connection_health(teams.id, &failing)
            .await
            .unwrap();
        assert_eq!(
            store.connection_health(teams.id).await.unwrap(),
            Some(failing)
        );

        store
            .replace_secrets(teams.id, &[], Some(Timestamp::from_unix_millis(5_000)))
            .await
            .unwrap();
        store.replace_secrets(slack.id, &[], None).await.unwrap();
        // New credentials (a reconnect): the health of the old ones is forgotten.
        assert_eq!(store.connection_health(teams.id).await.unwrap(), None);
        assert!(
            store
                .connections_expiring_before(Timestamp::from_unix_millis(5_000))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .connections_expiring_before(Timestamp::from_unix_millis(5_001))
                .await
                .unwrap(),
            vec![teams.id]
        );

        let erin = store
            .create_person("Erin", &email("erin@acme.com"))
            .await
            .unwrap();
        let fay = store
            .create_person("Fay", &email("fay@acme.com"))
            .await
            .unwrap();
        for person in [erin.id, fay.id] {
            store
                .create_representation(person, Platform::Teams, RepresentationKind::ExistingAccount)
                .await
                .unwrap();
        }
        store
            .apply_sync_event(
                erin.id,
                Platform::Teams,
                SyncEvent::ConsentRequested,
                "test",
            )
            .await
            .unwrap();
        // Fay's representation is not created yet: nothing of hers depends on the connection.
        assert_eq!(
            store.people_represented_through(teams.id).await.unwrap(),
            vec![erin.id]
        );
        assert!(
            store
                .people_represented_through(slack.id)
                .await
                .unwrap()
                .is_empty()
        );

        // Erin's own credentials expire at 7 s: found once synced, as due before 7.001 s.
        store
            .complete_sync(
                erin.id,
                Platform::Teams,
                &ExternalUserId::new("guid-erin"),
                &secrets(
                    &[("access_token", "a"), ("refresh_token", "r")],
                    Some(7_000),
                ),
                "test",
            )
            .await
            .unwrap();
        let due = |at: i64| {
            let store = store.clone();
            async move {
                store
                    .representations_expiring_before(Timestamp::from_unix_millis(at), 100)
                    .await
                    .unwrap()
            }
        };
        assert!(due(7_000).await.is_empty());
        assert_eq!(due(7_001).await, vec![(erin.id, Platform::Teams, None)]);
        store
            .apply_sync_event(
                erin.id,
                Platform::Teams,
                SyncEvent::Failed {
                    reason: "token refresh: revoked".to_owned(),
                },
                "test",
            )
            .await
            .unwrap();
        assert!(due(7_001).await.is_empty(), "only synced ones are renewed");
    }
);

/// Two people and the direct conversation between them, for the relay's tests.
async fn relay_pair(store: &Store) -> (PersonId, PersonId, switchboard_core::ConversationId) {
    let alice = store
        .create_person("Alice", &email("alice@acme.com"))
        .await
        .unwrap();
    let bob = store
        .create_person("Bob", &email("bob@acme.com"))
        .await
        .unwrap();
    let conversation = store.direct_conversation(alice.id, bob.id).await.unwrap();
    (alice.id, bob.id, conversation.id)
}

fn copy_item(
    conversation: switchboard_core::ConversationId,
    connection: switchboard_core::ConnectionId,
    sender: PersonId,
    message: &str,
    order: i64,
) -> NewOutboxItem {
    NewOutboxItem {
        conversation,
        platform: Platform::Teams,
        connection,
        sender,
        origin: MessageKey {
            platform: Platform::Slack,
            chat: ExternalChatId::new("D1"),
            message: message.to_owned(),
        },
        order,
        action: OutboxAction::Post,
        payload: format!("{{\"body\":\"{message}\"}}"),
        due_at: None,
        received_micros: Some(RECEIVED_MICROS + order),
    }
}

/// When the relay tests' events reached the hub.
const RECEIVED_MICROS: i64 = 1_700_000_000_000_000;

store_test!(
    relay_events_are_stored_once_and_acted_on_once,
    |db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        // A redelivery is not stored again.
        let items = [("Ev1", "{\"a\":1}"), ("Ev2", "{\"a\":2}")];
        assert_eq!(
            store
                .store_inbound(slack.id, &items, RECEIVED_MICROS)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .store_inbound(slack.id, &items[..1], RECEIVED_MICROS)
                .await
                .unwrap(),
            0
        );
        let due = store.due_inbound(10).await.unwrap();
        assert_eq!(
            due.iter().map(|i| i.event_id.as_str()).collect::<Vec<_>>(),
            ["Ev1", "Ev2"]
        );
        assert_eq!(due[0].received_micros, Some(RECEIVED_MICROS));
        // Two events about the same message (a group DM delivered to two bots): the first
        // queues its copy, the second is recognised as a repeat and queues nothing.
        let copy = copy_item(conversation, teams.id, alice, "1.0", 1);
        assert!(
            store
                .settle_inbound(
                    due[0].id,
                    Some((Platform::Slack, "posted/D1/1.0")),
                    std::slice::from_ref(&copy)
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .settle_inbound(due[1].id, Some((Platform::Slack, "posted/D1/1.0")), &[copy])
                .await
                .unwrap()
        );
        assert!(store.due_inbound(10).await.unwrap().is_empty());
        let leased = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].received_micros, Some(RECEIVED_MICROS + 1));

        // A failed read is tried again when due, not before.
        store
            .store_inbound(slack.id, &[("Ev3", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let third = store.due_inbound(10).await.unwrap().remove(0);
        let now = db.millis();
        store
            .inbound_failed(
                third.id,
                "Graph is down",
                Timestamp::from_unix_millis(now + 1000),
            )
            .await
            .unwrap();
        assert!(store.due_inbound(10).await.unwrap().is_empty());
    }
);

store_test!(
    copies_to_a_busy_platform_are_left_for_a_later_lease,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, bob, conversation) = relay_pair(&store).await;
        store
            .store_inbound(slack.id, &[("a", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let id = store.due_inbound(10).await.unwrap().remove(0).id;
        let to_slack = NewOutboxItem {
            platform: Platform::Slack,
            connection: slack.id,
            ..copy_item(conversation, slack.id, bob, "to slack", 2)
        };
        store
            .settle_inbound(
                id,
                None,
                &[
                    copy_item(conversation, teams.id, alice, "to teams", 1),
                    to_slack,
                ],
            )
            .await
            .unwrap();
        // Whether handed out as they were queued or chosen from the index, copies to Teams
        // stay while Teams is busy.
        let taken = store.lease_outbox(10, &[Platform::Teams]).await.unwrap();
        let messages: Vec<&str> = taken.iter().map(|i| i.origin.message.as_str()).collect();
        assert_eq!(messages, ["to slack"]);
        let taken = store.lease_outbox(10, &[]).await.unwrap();
        let messages: Vec<&str> = taken.iter().map(|i| i.origin.message.as_str()).collect();
        assert_eq!(messages, ["to teams"]);
    }
);

store_test!(
    relay_lanes_deliver_in_order_one_at_a_time_and_dead_letters_wait_for_the_admin,
    |db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, bob, first) = relay_pair(&store).await;
        let carol = store
            .create_person("Carol", &email("carol@acme.com"))
            .await
            .unwrap();
        let second = store.direct_conversation(alice, carol.id).await.unwrap().id;
        let inbox = |id: &'static str| {
            let store = &store;
            async move {
                store
                    .store_inbound(slack.id, &[(id, "{}")], RECEIVED_MICROS)
                    .await
                    .unwrap();
                store.due_inbound(10).await.unwrap().remove(0).id
            }
        };
        // Events arrive out of order: the lane follows the order the messages were sent in
        // (the relay holds a copy of a burst a moment for the events before it).
        let id = inbox("a").await;
        let held_for_the_burst = NewOutboxItem {
            due_at: Some(Timestamp::from_unix_millis(db.millis() + 500)),
            ..copy_item(first, teams.id, alice, "30", 30)
        };
        store
            .settle_inbound(id, None, &[held_for_the_burst])
            .await
            .unwrap();
        let id = inbox("b").await;
        store
            .settle_inbound(
                id,
                None,
                &[
                    copy_item(first, teams.id, alice, "10", 10),
                    copy_item(first, teams.id, bob, "20", 20),
                    copy_item(second, teams.id, alice, "other", 5),
                ],
            )
            .await
            .unwrap();
        let taken = store.lease_outbox(10, &[]).await.unwrap();
        let mut heads: Vec<&str> = taken.iter().map(|i| i.origin.message.as_str()).collect();
        heads.sort_unstable();
        assert_eq!(heads, ["10", "other"], "one per lane, the first of each");
        // Nothing more while both heads are in flight.
        assert!(store.lease_outbox(10, &[]).await.unwrap().is_empty());

        let ten = taken.iter().find(|i| i.origin.message == "10").unwrap();
        let made = MessageKey {
            platform: Platform::Teams,
            chat: ExternalChatId::new("19:chat"),
            message: "m10".to_owned(),
        };
        store.outbox_delivered(ten, Some(&made)).await.unwrap();
        let copies = store.copies_of(&ten.origin).await.unwrap();
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].copy, made);
        assert_eq!(copies[0].sender, alice);
        let relayed = store.relayed_copy(&made).await.unwrap().unwrap();
        assert_eq!(relayed.origin, ten.origin);
        assert_eq!(relayed.conversation, first);

        // The next of the lane; a failure makes it wait, and the lane waits with it.
        let next = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].origin.message, "20");
        assert_eq!(next[0].sender, bob);
        let retry_at = Timestamp::from_unix_millis(db.millis() + 5_000);
        store
            .outbox_failed(next[0].id, "429", Some(retry_at), None)
            .await
            .unwrap();
        assert!(store.lease_outbox(10, &[]).await.unwrap().is_empty());
        db.advance(5_000);
        let again = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].origin.message.as_str(), again[0].attempts),
            ("20", 1)
        );

        // Given up: dead-lettered for the admin, and the lane goes on without it.
        store
            .outbox_failed(again[0].id, "the chat is gone", None, None)
            .await
            .unwrap();
        let after = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].origin.message, "30");
        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (
                dead[0].item.origin.message.as_str(),
                dead[0].last_error.as_str()
            ),
            ("20", "the chat is gone")
        );
        // Retried by the admin: back in its place, first of its lane once "30" is done.
        store.retry_dead_letter(dead[0].item.id).await.unwrap();
        assert!(store.dead_letters(10).await.unwrap().is_empty());
        assert!(matches!(
            store.retry_dead_letter(dead[0].item.id).await,
            Err(StoreError::NotFound { .. })
        ));
        store.outbox_delivered(&after[0], None).await.unwrap();
        let revived = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(revived.len(), 1);
        assert_eq!(
            (revived[0].origin.message.as_str(), revived[0].attempts),
            ("20", 0)
        );
    }
);

store_test!(
    relay_held_copies_are_released_when_their_sender_syncs,
    |db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        store
            .store_inbound(slack.id, &[("e", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let id = store.due_inbound(1).await.unwrap()[0].id;
        store
            .settle_inbound(
                id,
                None,
                &[copy_item(conversation, teams.id, alice, "1", 1)],
            )
            .await
            .unwrap();
        let held = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        let later = Timestamp::from_unix_millis(db.millis() + 15_000);
        store
            .outbox_failed(
                held.id,
                "Alice is not synced to Teams yet",
                Some(later),
                None,
            )
            .await
            .unwrap();
        assert!(store.lease_outbox(10, &[]).await.unwrap().is_empty());
        assert_eq!(store.release_held(alice).await.unwrap(), 1);
        assert_eq!(store.lease_outbox(10, &[]).await.unwrap().len(), 1);
    }
);

store_test!(
    relay_knows_people_from_their_representations,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let (alice, bob, _) = relay_pair(&store).await;
        let account = store
            .upsert_account(&human(slack.id, Platform::Slack, "U1", "alice@acme.com"))
            .await
            .unwrap();
        store.link_account(account.id, Some(alice)).await.unwrap();
        store
            .create_representation(bob, Platform::Slack, RepresentationKind::Bot)
            .await
            .unwrap();
        store
            .complete_sync(
                bob,
                Platform::Slack,
                &ExternalUserId::new("UBOT"),
                &RepresentationSecrets::default(),
                "synced",
            )
            .await
            .unwrap();
        let identity = |id: &'static str| {
            let store = &store;
            async move {
                store
                    .account_identity(slack.id, Platform::Slack, id)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(identity("U1").await, Some(AccountIdentity::Person(alice)));
        assert_eq!(
            identity("UBOT").await,
            Some(AccountIdentity::Representation(bob))
        );
        assert_eq!(identity("U404").await, None);
        assert_eq!(
            store.own_account(alice, Platform::Slack).await.unwrap(),
            Some((slack.id, "U1".to_owned()))
        );
        assert_eq!(store.own_account(bob, Platform::Slack).await.unwrap(), None);
    }
);

store_test!(
    relay_webhook_secrets_are_sealed_and_subscriptions_replaced,
    |db, store| {
        let teams = teams_connection(&store).await;
        let secret = SecretString::from("signing-secret".to_owned());
        store
            .put_webhook_secret(teams.id, "app_signing_secret:A1", &secret)
            .await
            .unwrap();
        let found = store
            .webhook_secret(teams.id, "app_signing_secret:A1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.expose_secret(), "signing-secret");
        let mut raw = db.raw().await;
        let sealed: Vec<u8> = sqlx::query("SELECT sealed FROM webhook_secrets")
            .fetch_one(&mut raw)
            .await
            .unwrap()
            .try_get("sealed")
            .unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("signing-secret"));
        store
            .delete_webhook_secret(teams.id, "app_signing_secret:A1")
            .await
            .unwrap();
        assert!(
            store
                .webhook_secret(teams.id, "app_signing_secret:A1")
                .await
                .unwrap()
                .is_none()
        );

        let subscription = |id: &str, at: i64| StoredSubscription {
            id: id.to_owned(),
            resource: "/chats/getAllMessages".to_owned(),
            expires_at: Timestamp::from_unix_millis(at),
        };
        store
            .replace_event_subscriptions(teams.id, &[subscription("s1", 1), subscription("s2", 2)])
            .await
            .unwrap();
        store
            .replace_event_subscriptions(teams.id, &[subscription("s3", 3)])
            .await
            .unwrap();
        assert_eq!(
            store.event_subscriptions(teams.id).await.unwrap(),
            vec![subscription("s3", 3)]
        );
    }
);

store_test!(
    relay_forgets_read_events_after_the_retention,
    |db, store| {
        let slack = slack_connection(&store).await;
        store
            .store_inbound(slack.id, &[("old", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let id = store.due_inbound(1).await.unwrap()[0].id;
        store
            .settle_inbound(id, Some((Platform::Slack, "posted/D1/1")), &[])
            .await
            .unwrap();
        db.advance(10_000);
        let cutoff = Timestamp::from_unix_millis(db.millis() + 5_000);
        assert_eq!(store.prune_relay(cutoff).await.unwrap(), 2);
        // Forgotten: a redelivery now would be stored again.
        assert_eq!(
            store
                .store_inbound(slack.id, &[("old", "{}")], RECEIVED_MICROS)
                .await
                .unwrap(),
            1
        );
    }
);

store_test!(
    relay_copies_an_earlier_attempt_may_have_sent_are_marked_so,
    |db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        store
            .store_inbound(slack.id, &[("e", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let id = store.due_inbound(1).await.unwrap()[0].id;
        store
            .settle_inbound(
                id,
                None,
                &[copy_item(conversation, teams.id, alice, "1", 1)],
            )
            .await
            .unwrap();
        let first = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        assert_eq!(first.maybe_sent_since, None, "never tried before");
        let taken_at = db.millis();

        // The hub stops while sending; started again, it frees the copy, marked maybe sent.
        db.advance(1_000);
        assert_eq!(store.recover_outbox().await.unwrap(), 1);
        let again = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        assert_eq!(
            again.maybe_sent_since,
            Some(Timestamp::from_unix_millis(taken_at))
        );

        // The mark is what the relay says it is: kept through an unclear failure (a timeout)
        // and a definite one after it (a 429 says nothing of the timeout before), cleared when
        // no attempt may have reached the platform.
        let since = again.maybe_sent_since;
        store
            .outbox_failed(
                again.id,
                "timed out",
                Some(Timestamp::from_unix_millis(0)),
                since,
            )
            .await
            .unwrap();
        let third = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        assert_eq!(third.maybe_sent_since, since);
        store
            .outbox_failed(third.id, "429", Some(Timestamp::from_unix_millis(0)), since)
            .await
            .unwrap();
        let fourth = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        assert_eq!(fourth.maybe_sent_since, since);
        store
            .outbox_failed(
                fourth.id,
                "refused",
                Some(Timestamp::from_unix_millis(0)),
                None,
            )
            .await
            .unwrap();
        let fifth = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        assert_eq!(fifth.maybe_sent_since, None);
        assert_eq!(fifth.attempts, 3);

        // Throttled attempts do not count as failures, and keep the mark.
        let mut throttled = fifth;
        for _ in 0..12 {
            store
                .outbox_throttled(
                    throttled.id,
                    "429",
                    Timestamp::from_unix_millis(0),
                    Some(Timestamp::from_unix_millis(taken_at)),
                )
                .await
                .unwrap();
            throttled = store.lease_outbox(10, &[]).await.unwrap().remove(0);
        }
        assert_eq!(throttled.attempts, 3);
        assert_eq!(
            throttled.maybe_sent_since,
            Some(Timestamp::from_unix_millis(taken_at))
        );
        assert!(
            throttled.created_at.unix_millis() <= taken_at,
            "queued before it was taken"
        );
        let dead = store.dead_letters(10).await.unwrap();
        assert!(dead.is_empty());
    }
);

store_test!(console_admins_sessions_and_the_setup_link, |db, store| {
    let now = db.clock.now().unix_millis();
    // The setup link works once, and only while the hub has no admin.
    store
        .put_setup_link("link-1", Timestamp::from_unix_millis(now + 1_000))
        .await
        .unwrap();
    store
        .put_setup_link("link-2", Timestamp::from_unix_millis(now + 1_000))
        .await
        .unwrap();
    assert!(
        !store.setup_link_is_live("link-1").await.unwrap(),
        "replaced"
    );
    assert!(store.setup_link_is_live("link-2").await.unwrap());
    assert!(store.use_setup_link("link-2").await.unwrap());
    assert!(!store.use_setup_link("link-2").await.unwrap(), "spent");

    // The first admin is the owner, whatever role was asked for.
    let first = store
        .create_admin(&email("ada@example.com"), "hash-a", AdminRole::Viewer)
        .await
        .unwrap();
    assert_eq!(first.role, AdminRole::Owner);
    let second = store
        .create_admin(&email("bob@example.com"), "hash-b", AdminRole::Viewer)
        .await
        .unwrap();
    assert_eq!(second.role, AdminRole::Viewer);
    assert!(matches!(
        store
            .create_admin(&email("bob@example.com"), "hash-c", AdminRole::Admin)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.admin_count().await.unwrap(), 2);
    store
        .put_setup_link("link-3", Timestamp::from_unix_millis(now + 1_000))
        .await
        .unwrap();
    assert!(
        !store.use_setup_link("link-3").await.unwrap(),
        "an owner exists"
    );
    let (found, hash) = store
        .admin_by_email(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), hash.as_str()),
        (first.id.as_str(), "hash-a")
    );

    // The last owner can be neither demoted nor deleted.
    assert!(matches!(
        store.set_admin_role(&first.id, AdminRole::Admin).await,
        Err(StoreError::LastOwner)
    ));
    assert!(matches!(
        store.delete_admin(&first.id).await,
        Err(StoreError::LastOwner)
    ));
    store
        .set_admin_role(&second.id, AdminRole::Owner)
        .await
        .unwrap();
    let demoted = store
        .set_admin_role(&first.id, AdminRole::Admin)
        .await
        .unwrap();
    assert_eq!(demoted.role, AdminRole::Admin);

    // Sessions are found by their hash until they expire or end; deleting the admin ends them.
    store
        .create_admin_session(
            "session-1",
            &second.id,
            "csrf-1",
            Timestamp::from_unix_millis(now + 1_000),
        )
        .await
        .unwrap();
    let session = store.admin_session("session-1").await.unwrap().unwrap();
    assert_eq!(
        (session.admin.id.as_str(), session.csrf_token.as_str()),
        (second.id.as_str(), "csrf-1")
    );
    db.clock.0.store(now + 1_000, Ordering::SeqCst);
    assert!(
        store.admin_session("session-1").await.unwrap().is_none(),
        "expired"
    );
    store
        .create_admin_session(
            "session-2",
            &first.id,
            "csrf-2",
            Timestamp::from_unix_millis(now + 5_000),
        )
        .await
        .unwrap();
    store.end_admin_session("session-2").await.unwrap();
    assert!(store.admin_session("session-2").await.unwrap().is_none());
    store
        .create_admin_session(
            "session-3",
            &first.id,
            "csrf-3",
            Timestamp::from_unix_millis(now + 5_000),
        )
        .await
        .unwrap();
    store.delete_admin(&first.id).await.unwrap();
    assert!(store.admin_session("session-3").await.unwrap().is_none());
    assert_eq!(
        store.admins().await.unwrap(),
        vec![
            store
                .admin_by_email(&email("bob@example.com"))
                .await
                .unwrap()
                .unwrap()
                .0
        ]
    );
});

store_test!(the_audit_log_filtered_by_actor_and_action, |_db, store| {
    for (actor, action) in [
        ("admin:ada@example.com", "person.sync"),
        ("token:ci", "person.reset"),
        ("admin:ada@example.com", "token.create"),
        ("admin:bob_50%@example.com", "person.reset"),
    ] {
        store
            .audit(actor, action, "target", "", "127.0.0.1")
            .await
            .unwrap();
    }
    let matching = |actor: &'static str, action: &'static str| {
        let store = store.clone();
        async move {
            store
                .audit_log_matching(actor, action, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|e| format!("{} {}", e.actor, e.action))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        matching("ADA@", "").await,
        vec![
            "admin:ada@example.com token.create",
            "admin:ada@example.com person.sync"
        ]
    );
    assert_eq!(
        matching("", "person.").await,
        vec![
            "admin:bob_50%@example.com person.reset",
            "token:ci person.reset",
            "admin:ada@example.com person.sync"
        ]
    );
    assert_eq!(
        matching("_50%", "").await,
        vec!["admin:bob_50%@example.com person.reset"],
        "wildcards are taken literally"
    );
    assert_eq!(
        matching("", "reset").await,
        Vec::<String>::new(),
        "the action's start"
    );
    let newest = store.audit_log_matching("", "", None, 1).await.unwrap();
    let older = store
        .audit_log_matching("", "", Some(newest[0].id), 10)
        .await
        .unwrap();
    assert_eq!(older.len(), 3);
});

store_test!(
    the_directory_version_moves_with_the_directory_not_with_the_relay,
    |_db, store| {
        let before = store.directory_version();
        let slack = slack_connection(&store).await;
        let (alice, bob, _) = relay_pair(&store).await;
        let after_setup = store.directory_version();
        assert!(
            after_setup > before,
            "connections, people and conversations count"
        );
        let primary = switchboard_core::Primary {
            platform: Platform::Slack,
            chosen_by: switchboard_core::ChosenBy::Admin,
        };
        store.set_primary(alice, Some(primary)).await.unwrap();
        assert!(
            store.directory_version() > after_setup,
            "a primary platform counts"
        );
        let settled = store.directory_version();
        store
            .store_inbound(slack.id, &[("Ev1", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let due = store.due_inbound(1).await.unwrap();
        store
            .settle_inbound(due[0].id, Some((Platform::Slack, "posted/D1/1.0")), &[])
            .await
            .unwrap();
        assert_eq!(store.directory_version(), settled, "relay traffic does not");
        store.delete_person(bob).await.unwrap();
        assert!(store.directory_version() > settled, "a removal counts");
        let removed = store.directory_version();
        store.set_restricted_people(&[alice]).await.unwrap();
        assert!(store.directory_version() > removed, "a restriction counts");
        let restricted = store.directory_version();
        store
            .disconnect_connection(slack.id, "disconnected")
            .await
            .unwrap();
        assert!(
            store.directory_version() > restricted,
            "a disconnection counts"
        );
    }
);

store_test!(
    a_disconnected_connection_keeps_its_people_and_map_and_loses_every_secret,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, bob, conversation) = relay_pair(&store).await;
        let account = store
            .upsert_account(&human(slack.id, Platform::Slack, "U1", "alice@acme.com"))
            .await
            .unwrap();
        store.link_account(account.id, Some(alice)).await.unwrap();
        store
            .replace_secrets(
                slack.id,
                &[("bot_token".to_owned(), SecretString::from("xoxb-1"))],
                None,
            )
            .await
            .unwrap();
        store
            .put_webhook_secret(slack.id, "signing:A1", &SecretString::from("s"))
            .await
            .unwrap();
        store
            .replace_event_subscriptions(
                slack.id,
                &[StoredSubscription {
                    id: "sub".to_owned(),
                    resource: "chats".to_owned(),
                    expires_at: Timestamp::from_unix_millis(i64::MAX / 2),
                }],
            )
            .await
            .unwrap();
        store
            .create_representation(bob, Platform::Slack, RepresentationKind::Bot)
            .await
            .unwrap();
        store
            .complete_sync(
                bob,
                Platform::Slack,
                &ExternalUserId::new("UBOT"),
                &RepresentationSecrets {
                    secrets: vec![("bot_token".to_owned(), SecretString::from("xoxb-bob"))],
                    expires_at: None,
                },
                "synced",
            )
            .await
            .unwrap();
        // A copy waiting to go to Slack, and one waiting to go to Teams.
        let to_slack = NewOutboxItem {
            platform: Platform::Slack,
            ..copy_item(conversation, slack.id, bob, "m1", 1)
        };
        let to_teams = copy_item(conversation, teams.id, alice, "m2", 2);
        store
            .store_inbound(slack.id, &[("Ev1", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let due = store.due_inbound(1).await.unwrap();
        store
            .settle_events(&[
                Settlement {
                    inbox: Some(due[0].id),
                    seen: Some((Platform::Slack, "posted/D1/m1")),
                    written: None,
                    copies: &[to_slack],
                },
                Settlement {
                    inbox: None,
                    seen: Some((Platform::Slack, "posted/D1/m2")),
                    written: None,
                    copies: &[to_teams],
                },
            ])
            .await
            .unwrap();
        assert_eq!(store.connection_counts(slack.id).await.unwrap(), (1, 1));

        let done = store
            .disconnect_connection(slack.id, "the Slack connection was disconnected")
            .await
            .unwrap();
        assert_eq!(done.dead_lettered, 1);
        assert_eq!(done.failed, vec![bob]);
        assert_eq!(store.connection(slack.id).await.unwrap(), None);
        assert_eq!(store.connections().await.unwrap(), vec![teams.clone()]);
        let disconnected = store.disconnected_connections().await.unwrap();
        assert_eq!(disconnected.len(), 1);
        assert_eq!(disconnected[0].0, slack);
        assert!(store.secrets(slack.id).await.unwrap().is_empty());
        assert_eq!(store.connection_health(slack.id).await.unwrap(), None);
        assert!(
            store
                .webhook_secret(slack.id, "signing:A1")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .event_subscriptions(slack.id)
                .await
                .unwrap()
                .is_empty()
        );
        let bob_secrets = store
            .representation_secrets(bob, Platform::Slack)
            .await
            .unwrap();
        assert!(bob_secrets.secrets.is_empty(), "nothing secret stays");
        assert_eq!(
            store
                .representation(bob, Platform::Slack)
                .await
                .unwrap()
                .unwrap()
                .status,
            SyncStatus::Failed {
                reason: "the Slack connection was disconnected".to_owned()
            }
        );
        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].item.connection, slack.id);
        assert_eq!(dead[0].last_error, "connection disconnected");
        assert_eq!(
            store.relay_counts().await.unwrap().outbox,
            1,
            "Teams' copy waits"
        );
        assert!(matches!(
            store.disconnect_connection(slack.id, "again").await,
            Err(StoreError::NotFound { .. })
        ));
        // People, accounts and the map stay: the same workspace connected again is all there.
        assert_eq!(store.accounts_of_person(alice).await.unwrap().len(), 1);
        assert_eq!(
            store
                .connection_by_tenant(Platform::Slack, &ExternalTenantId::new("T1"))
                .await
                .unwrap(),
            Some(slack.clone())
        );
        store
            .replace_secrets(
                slack.id,
                &[("bot_token".to_owned(), SecretString::from("xoxb-2"))],
                None,
            )
            .await
            .unwrap();
        assert_eq!(store.connection(slack.id).await.unwrap(), Some(slack));
        assert!(store.disconnected_connections().await.unwrap().is_empty());
        assert_eq!(
            store
                .account_identity(disconnected[0].0.id, Platform::Slack, "U1")
                .await
                .unwrap(),
            Some(AccountIdentity::Person(alice))
        );
    }
);

store_test!(
    restricted_people_are_kept_and_told_once_a_day_per_conversation,
    |db, store| {
        let (alice, bob, conversation) = relay_pair(&store).await;
        assert!(store.restricted_people().await.unwrap().is_empty());
        store.set_restricted_people(&[bob, alice]).await.unwrap();
        let mut both = vec![alice, bob];
        both.sort();
        assert_eq!(store.restricted_people().await.unwrap(), both);
        store.set_restricted_people(&[alice]).await.unwrap();
        let reopened = db.open(1).await;
        assert_eq!(reopened.restricted_people().await.unwrap(), vec![alice]);
        let day = std::time::Duration::from_secs(24 * 3600);
        assert!(
            store
                .claim_restriction_notice(alice, conversation, day)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_restriction_notice(alice, conversation, day)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_restriction_notice(bob, conversation, day)
                .await
                .unwrap(),
            "per person"
        );
        db.advance(24 * 3600 * 1000 - 1);
        assert!(
            !store
                .claim_restriction_notice(alice, conversation, day)
                .await
                .unwrap()
        );
        db.advance(1);
        assert!(
            store
                .claim_restriction_notice(alice, conversation, day)
                .await
                .unwrap()
        );
        store.delete_person(alice).await.unwrap();
        assert!(store.restricted_people().await.unwrap().is_empty());
    }
);

store_test!(
    events_settled_together_are_acted_on_once_each_and_note_each_portals_last_message,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        let (first_chat, second_chat) = (ExternalChatId::new("D1"), ExternalChatId::new("D2"));
        store
            .create_portal(conversation, Platform::Slack, slack.id, &first_chat, None)
            .await
            .unwrap();
        let carol = store
            .create_person("Carol", &email("carol@acme.com"))
            .await
            .unwrap();
        let other = store.direct_conversation(alice, carol.id).await.unwrap().id;
        store
            .create_portal(other, Platform::Slack, slack.id, &second_chat, None)
            .await
            .unwrap();
        store
            .store_inbound(
                slack.id,
                &[("Ev1", "{}"), ("Ev2", "{}"), ("Ev3", "{}"), ("Ev4", "{}")],
                RECEIVED_MICROS,
            )
            .await
            .unwrap();
        let due = store.due_inbound(10).await.unwrap();
        // Already acted on before this batch.
        store
            .settle_event(None, Some((Platform::Slack, "posted/D1/0")), None, &[])
            .await
            .unwrap();
        let copies = |message: &str, order: i64| {
            vec![copy_item(conversation, teams.id, alice, message, order)]
        };
        let (one, two, repeat, old) = (
            copies("1", 10),
            copies("2", 20),
            copies("2", 20),
            copies("0", 5),
        );
        let fresh = store
            .settle_events(&[
                Settlement {
                    inbox: Some(due[0].id),
                    seen: Some((Platform::Slack, "posted/D1/1")),
                    written: Some((slack.id, &first_chat, 10)),
                    copies: &one,
                },
                Settlement {
                    inbox: Some(due[1].id),
                    seen: Some((Platform::Slack, "posted/D1/2")),
                    written: Some((slack.id, &first_chat, 20)),
                    copies: &two,
                },
                // The same message delivered twice in one batch: the first takes it.
                Settlement {
                    inbox: Some(due[2].id),
                    seen: Some((Platform::Slack, "posted/D1/2")),
                    written: Some((slack.id, &first_chat, 20)),
                    copies: &repeat,
                },
                Settlement {
                    inbox: Some(due[3].id),
                    seen: Some((Platform::Slack, "posted/D1/0")),
                    written: Some((slack.id, &second_chat, 7)),
                    copies: &old,
                },
            ])
            .await
            .unwrap();
        assert_eq!(fresh, [true, true, false, false]);
        assert!(store.due_inbound(10).await.unwrap().is_empty(), "all read");
        assert_eq!(
            store.last_message_in(slack.id, &first_chat).await.unwrap(),
            Some(20)
        );
        assert_eq!(
            store.last_message_in(slack.id, &second_chat).await.unwrap(),
            Some(7)
        );
        // An older message does not move a portal's last message back.
        store
            .settle_event(None, None, Some((slack.id, &first_chat, 15)), &[])
            .await
            .unwrap();
        assert_eq!(
            store.last_message_in(slack.id, &first_chat).await.unwrap(),
            Some(20)
        );
        let queued: Vec<String> = store
            .lease_outbox(10, &[])
            .await
            .unwrap()
            .into_iter()
            .map(|item| item.origin.message)
            .collect();
        assert_eq!(queued, ["1"], "one lane: its head only");
        assert_eq!(store.relay_counts().await.unwrap().outbox, 2);
    }
);

store_test!(
    a_batch_larger_than_one_statement_is_settled_whole_and_in_order,
    |_db, store| {
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        // More copies and events than one statement takes: cut into several.
        let keys: Vec<String> = (0..1_500).map(|n| format!("posted/D1/{n}")).collect();
        let copies: Vec<Vec<NewOutboxItem>> = (0..1_500_i64)
            .map(|n| {
                if n < 200 {
                    vec![copy_item(
                        conversation,
                        teams.id,
                        alice,
                        &n.to_string(),
                        1_000 - n,
                    )]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let settlements: Vec<Settlement<'_>> = keys
            .iter()
            .zip(&copies)
            .map(|(key, copies)| Settlement {
                inbox: None,
                seen: Some((Platform::Slack, key.as_str())),
                written: None,
                copies,
            })
            .collect();
        let fresh = store.settle_events(&settlements).await.unwrap();
        assert!(fresh.iter().all(|fresh| *fresh));
        assert_eq!(store.relay_counts().await.unwrap().outbox, 200);
        let again = store.settle_events(&settlements).await.unwrap();
        assert!(again.iter().all(|fresh| !*fresh), "each a repeat now");
        assert_eq!(store.relay_counts().await.unwrap().outbox, 200);
        // The lane's head is the copy written first (the lowest order), whatever statement
        // queued it.
        let head = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(head.len(), 1);
        assert_eq!(head[0].origin.message, "199");
    }
);

store_test!(
    a_post_queued_after_a_newer_one_was_delivered_in_its_lane_is_late,
    |_db, store| {
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        let copy_made = |message: &str| MessageKey {
            platform: Platform::Teams,
            chat: ExternalChatId::new("19:chat"),
            message: format!("copy-{message}"),
        };
        let queue = |message: &'static str, order: i64, action: OutboxAction| {
            let store = store.clone();
            async move {
                let copy = NewOutboxItem {
                    action,
                    ..copy_item(conversation, teams.id, alice, message, order)
                };
                store
                    .settle_event(None, None, None, std::slice::from_ref(&copy))
                    .await
                    .unwrap();
                store.lease_outbox(10, &[]).await.unwrap().remove(0)
            }
        };
        let first = queue("2", 20, OutboxAction::Post).await;
        assert_eq!((first.order, first.lane_last_posted), (20, None));
        assert!(!first.is_late(), "nothing delivered in its lane yet");
        store
            .outbox_delivered(&first, Some(&copy_made("2")))
            .await
            .unwrap();
        // Written before the delivered one, queued after it: late.
        let late = queue("1", 10, OutboxAction::Post).await;
        assert_eq!(late.lane_last_posted, Some(20));
        assert!(late.is_late());
        store
            .outbox_delivered(&late, Some(&copy_made("1")))
            .await
            .unwrap();
        // The lane's latest post stays the newest, whatever order copies were delivered in.
        let next = queue("3", 30, OutboxAction::Post).await;
        assert_eq!(next.lane_last_posted, Some(20));
        assert!(!next.is_late());
        store.outbox_delivered(&next, None).await.unwrap();
        // An edit, a deletion or a reaction is not a message in the chat: never late.
        let edit = queue("2", 5, OutboxAction::Edit).await;
        assert_eq!(edit.lane_last_posted, Some(30));
        assert!(!edit.is_late());
    }
);

store_test!(
    deliveries_stored_at_the_same_time_are_each_stored_once,
    |_db, store| {
        let slack = slack_connection(&store).await;
        // Twenty deliveries at once, of ten events each delivered twice.
        let writes: Vec<_> = (0..20)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let event = format!("Ev{}", n % 10);
                    store
                        .store_inbound(slack.id, &[(event.as_str(), "{}")], RECEIVED_MICROS)
                        .await
                })
            })
            .collect();
        let mut stored = 0;
        for write in writes {
            stored += write.await.unwrap().unwrap();
        }
        assert_eq!(stored, 10, "each event counts once");
        assert_eq!(store.due_inbound(100).await.unwrap().len(), 10);
    }
);

store_test!(
    the_message_map_counts_copies_per_day_and_the_people_who_wrote,
    |db, store| {
        let teams = teams_connection(&store).await;
        let (alice, bob, conversation) = relay_pair(&store).await;
        let start = db.millis();
        // One message a day: Alice's, Alice's, then Bob's.
        for (order, sender) in [(1, alice), (2, alice), (3, bob)] {
            let message = order.to_string();
            let copy = copy_item(conversation, teams.id, sender, &message, order);
            store
                .settle_event(None, None, None, std::slice::from_ref(&copy))
                .await
                .unwrap();
            let item = store.lease_outbox(1, &[]).await.unwrap().remove(0);
            let made = MessageKey {
                platform: Platform::Teams,
                chat: ExternalChatId::new("19:chat"),
                message: format!("copy {message}"),
            };
            store.outbox_delivered(&item, Some(&made)).await.unwrap();
            db.advance(86_400_000);
        }
        let first_day = start / 86_400_000;
        let days: Vec<(i64, Platform, i64)> = store
            .copies_per_day(Timestamp::from_unix_millis(start))
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.day - first_day, d.platform, d.copies))
            .collect();
        assert_eq!(
            days,
            [
                (0, Platform::Teams, 1),
                (1, Platform::Teams, 1),
                (2, Platform::Teams, 1)
            ]
        );
        let since = |days: i64| Timestamp::from_unix_millis(start + days * 86_400_000);
        assert_eq!(store.active_senders(since(0)).await.unwrap(), 2);
        assert_eq!(store.active_senders(since(2)).await.unwrap(), 1);
        let alices: Vec<String> = store
            .relayed_by(alice, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.copy.copy.message)
            .collect();
        assert_eq!(alices, ["copy 2", "copy 1"], "newest first");
    }
);

store_test!(
    a_copy_queued_in_an_idle_lane_is_taken_in_the_same_commit,
    |db, store| {
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        let queued_at = db.millis();
        store
            .settle_event(
                None,
                None,
                None,
                &[
                    copy_item(conversation, teams.id, alice, "1", 1),
                    copy_item(conversation, teams.id, alice, "2", 2),
                ],
            )
            .await
            .unwrap();
        // A hub that stops now finds the lane's first copy taken, the second queued behind it.
        assert_eq!(store.recover_outbox().await.unwrap(), 1);
        let first = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].origin.message, "1");
        assert_eq!(
            first[0].maybe_sent_since,
            Some(Timestamp::from_unix_millis(queued_at)),
            "looked for on its platform before it is posted again"
        );
        store.outbox_delivered(&first[0], None).await.unwrap();
        let second = store.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].origin.message, "2");
        assert_eq!(second[0].maybe_sent_since, None);
    }
);

/// Text the at-rest tests relay, then look for in what the database keeps.
const CANARY: &str = "canary-7f3a9c1e-kept-nowhere";

/// `text` as the hexadecimal digits PostgreSQL writes bytes with.
fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `needle` occurs in `bytes`.
fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The payloads the relay's tables hold now, as stored (read as bytes whatever the column's
/// type).
async fn stored_payloads(db: &TestDb) -> Vec<Vec<u8>> {
    let mut raw = db.raw().await;
    let bytes = match db.postgres_admin {
        Some(_) => "BYTEA",
        None => "BLOB",
    };
    let mut payloads = Vec::new();
    for table in ["relay_inbox", "relay_outbox"] {
        for row in sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(payload AS {bytes}) AS payload FROM {table} WHERE payload IS NOT NULL"
        )))
        .fetch_all(&mut raw)
        .await
        .unwrap()
        {
            payloads.push(row.try_get::<Vec<u8>, _>("payload").unwrap());
        }
    }
    payloads
}

/// Every row of every table, as text (on PostgreSQL each row's text form, which writes bytes
/// in hex): what the database answers, whatever column or type keeps a value.
async fn postgres_rows(db: &TestDb) -> Vec<String> {
    let mut raw = db.raw().await;
    let tables: Vec<String> =
        sqlx::query("SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&mut raw)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get("name").unwrap())
            .collect();
    let mut rows = Vec::new();
    for table in tables {
        for row in sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t::text AS row FROM {table} t"
        )))
        .fetch_all(&mut raw)
        .await
        .unwrap()
        {
            rows.push(row.try_get("row").unwrap());
        }
    }
    rows
}

/// Every byte of every file in `dir` (the database, its WAL and shared memory), by file name.
fn files_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect()
}

store_test!(
    relayed_text_is_stored_sealed_and_nothing_readable_is_left_of_it,
    |db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, bob, conversation) = relay_pair(&store).await;
        let event = format!(r#"{{"event":{{"type":"message","text":"{CANARY}"}}}}"#);
        store
            .store_inbound(slack.id, &[("EvCanary", event.as_str())], RECEIVED_MICROS)
            .await
            .unwrap();
        let stored = stored_payloads(&db).await;
        assert_eq!(stored.len(), 1);
        assert!(!contains(&stored[0], CANARY), "the inbox keeps plaintext");
        let due = store.due_inbound(10).await.unwrap();
        assert_eq!(due[0].payload, event);

        // Two copies: one delivered, one given up on (a dead letter keeps its content).
        let body = format!(r#"{{"body":"{CANARY}"}}"#);
        let copies = [
            NewOutboxItem {
                payload: body.clone(),
                ..copy_item(conversation, teams.id, alice, "1.0", 1)
            },
            NewOutboxItem {
                payload: body.clone(),
                platform: Platform::Slack,
                connection: slack.id,
                ..copy_item(conversation, slack.id, bob, "1.0", 1)
            },
        ];
        store
            .settle_inbound(due[0].id, Some((Platform::Slack, "posted/D1/1.0")), &copies)
            .await
            .unwrap();
        let stored = stored_payloads(&db).await;
        assert_eq!(
            stored.len(),
            2,
            "the inbox item's payload is dropped once read"
        );
        assert!(
            stored.iter().all(|payload| !contains(payload, CANARY)),
            "the outbox keeps plaintext"
        );
        let mut leased = store.lease_outbox(10, &[]).await.unwrap();
        leased.sort_by_key(|item| item.platform.as_str());
        assert_eq!(leased.len(), 2);
        assert!(leased.iter().all(|item| item.payload == body));
        store
            .outbox_delivered(
                &leased[1],
                Some(&MessageKey {
                    platform: Platform::Teams,
                    chat: ExternalChatId::new("19:chat"),
                    message: "m1".to_owned(),
                }),
            )
            .await
            .unwrap();
        store
            .outbox_failed(leased[0].id, "the chat is gone", None, None)
            .await
            .unwrap();
        assert_eq!(store.dead_letters(10).await.unwrap()[0].item.payload, body);

        match store.backend() {
            Backend::Postgres => {
                // Its files are the server's: what it answers must hold no plaintext.
                for row in postgres_rows(&db).await {
                    assert!(
                        !row.contains(CANARY) && !row.contains(&hex(CANARY)),
                        "a row keeps the relayed text: {row}"
                    );
                }
            }
            Backend::Sqlite => {
                store.close().await;
                let files = files_in(db._dir.path());
                // Closed, the database is checkpointed into its file and the WAL removed.
                assert_eq!(
                    files
                        .iter()
                        .map(|(name, _)| name.as_str())
                        .collect::<Vec<_>>(),
                    ["hub.db"]
                );
                for (name, bytes) in files {
                    assert!(!contains(&bytes, CANARY), "{name} keeps the relayed text");
                }
            }
        }
    }
);

store_test!(
    payloads_stored_before_they_were_sealed_are_sealed_at_start_and_still_read,
    |db, store| {
        let slack = slack_connection(&store).await;
        let teams = teams_connection(&store).await;
        let (alice, _, conversation) = relay_pair(&store).await;
        let old_event = format!(r#"{{"event":{{"text":"{CANARY} unread"}}}}"#);
        let old_copy = format!(r#"{{"body":"{CANARY} queued"}}"#);
        store
            .store_inbound(slack.id, &[("EvRead", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        let read = store.due_inbound(10).await.unwrap().remove(0);
        store
            .settle_inbound(
                read.id,
                None,
                &[copy_item(conversation, teams.id, alice, "1.0", 1)],
            )
            .await
            .unwrap();
        store
            .store_inbound(slack.id, &[("EvUnread", "{}")], RECEIVED_MICROS)
            .await
            .unwrap();
        store.close().await;

        // The database as the version before left it: plaintext payloads, step 15 not taken.
        let mut raw = db.raw().await;
        if db.postgres_admin.is_some() {
            for (table, null) in [("relay_inbox", "NULL"), ("relay_outbox", "''")] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {table} ALTER COLUMN payload TYPE TEXT USING {null}"
                )))
                .execute(&mut raw)
                .await
                .unwrap();
            }
        }
        sqlx::query("UPDATE relay_inbox SET payload = $1 WHERE event_id = 'EvUnread'")
            .bind(old_event.as_str())
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::query("UPDATE relay_outbox SET payload = $1")
            .bind(old_copy.as_str())
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 15")
            .execute(&mut raw)
            .await
            .unwrap();
        raw.close().await.unwrap();

        let upgraded = db.open(1).await;
        assert!(upgraded.applied_migrations().await.unwrap().contains(&15));
        let stored = stored_payloads(&db).await;
        assert_eq!(stored.len(), 2);
        assert!(
            stored.iter().all(|payload| !contains(payload, CANARY)),
            "a payload kept from before is still plaintext"
        );
        let due = upgraded.due_inbound(10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload, old_event);
        // Taken as it was queued, by the hub that stopped.
        upgraded.recover_outbox().await.unwrap();
        let leased = upgraded.lease_outbox(10, &[]).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].payload, old_copy);
        // Started again, nothing is sealed twice.
        upgraded.close().await;
        let again = db.open(1).await;
        assert_eq!(again.due_inbound(10).await.unwrap()[0].payload, old_event);
        if again.backend() == Backend::Sqlite {
            again.close().await;
            for (name, bytes) in files_in(db._dir.path()) {
                assert!(
                    !contains(&bytes, CANARY),
                    "{name} keeps plaintext from before"
                );
            }
        }
    }
);

#[tokio::test]
async fn sqlite_overwrites_what_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(1_700_000_000_000)));
    let store = Store::open_sqlite(
        &dir.path().join("hub.db"),
        Cipher::from_key(&[1; 32]),
        clock,
    )
    .await
    .unwrap();
    let teams = teams_connection(&store).await;
    // Something stored in the clear and then deleted: its page's free space must not keep it.
    store
        .replace_event_subscriptions(
            teams.id,
            &[StoredSubscription {
                id: "s1".to_owned(),
                resource: format!("/chats/{CANARY}/messages"),
                expires_at: Timestamp::from_unix_millis(1),
            }],
        )
        .await
        .unwrap();
    store
        .replace_event_subscriptions(teams.id, &[])
        .await
        .unwrap();
    store.close().await;
    for (name, bytes) in files_in(dir.path()) {
        assert!(!contains(&bytes, CANARY), "{name} keeps what was deleted");
    }
}

store_test!(
    the_synced_representations_of_a_connection_are_named_with_their_credentials,
    |_db, store| {
        let teams = teams_connection(&store).await;
        let slack = slack_connection(&store).await;
        let mut people = Vec::new();
        for name in ["ann", "bob", "cy"] {
            people.push(
                store
                    .create_person(name, &email(&format!("{name}@acme.example")))
                    .await
                    .unwrap(),
            );
        }
        let (ann, bob, cy) = (&people[0], &people[1], &people[2]);
        for (person, platform, kind) in [
            (ann, Platform::Teams, RepresentationKind::GuestAccount),
            (bob, Platform::Teams, RepresentationKind::GuestAccount),
            (cy, Platform::Slack, RepresentationKind::Bot),
        ] {
            store
                .create_representation(person.id, platform, kind)
                .await
                .unwrap();
        }
        for (person, platform, account) in [
            (ann, Platform::Teams, "guest-ann"),
            (cy, Platform::Slack, "bot-cy"),
        ] {
            store
                .complete_sync(
                    person.id,
                    platform,
                    &ExternalUserId::new(account),
                    &secrets(&[("access_token", &format!("token of {account}"))], None),
                    "created",
                )
                .await
                .unwrap();
        }
        assert_eq!(
            store.synced_representations_on(teams.id).await.unwrap(),
            vec![(ann.id, ExternalUserId::new("guest-ann"))],
            "Bob's guest is not synced"
        );
        assert_eq!(
            store.synced_representations_on(slack.id).await.unwrap(),
            vec![(cy.id, ExternalUserId::new("bot-cy"))]
        );
        // The relay acts as each with its own credentials, kept sealed and read back whole.
        let kept = store
            .representation_secrets(ann.id, Platform::Teams)
            .await
            .unwrap();
        assert_eq!(kept.secrets.len(), 1);
        assert_eq!(kept.secrets[0].0, "access_token");
        assert_eq!(kept.secrets[0].1.expose_secret(), "token of guest-ann");
    }
);

store_test!(
    portals_sharing_a_chat_are_found_by_it_most_recently_written_first,
    |_db, store| {
        let slack = slack_connection(&store).await;
        let (alice, _, with_bob) = relay_pair(&store).await;
        let carol = store
            .create_person("Carol", &email("carol@acme.com"))
            .await
            .unwrap();
        let with_carol = store.direct_conversation(alice, carol.id).await.unwrap().id;
        let shared = ExternalChatId::new("bot:U1");
        let (bob_chat, carol_chat) = (
            ExternalChatId::new("bot:U1/bob"),
            ExternalChatId::new("bot:U1/carol"),
        );
        let bob_portal = store
            .create_portal(
                with_bob,
                Platform::Slack,
                slack.id,
                &bob_chat,
                Some(&shared),
            )
            .await
            .unwrap();
        let carol_portal = store
            .create_portal(
                with_carol,
                Platform::Slack,
                slack.id,
                &carol_chat,
                Some(&shared),
            )
            .await
            .unwrap();
        let dave = store
            .create_person("Dave", &email("dave@acme.com"))
            .await
            .unwrap();
        let own_chat = store.direct_conversation(alice, dave.id).await.unwrap().id;
        store
            .create_portal(
                own_chat,
                Platform::Slack,
                slack.id,
                &ExternalChatId::new("D9"),
                None,
            )
            .await
            .unwrap();
        let found = store
            .portals_in_shared_chat(slack.id, &shared)
            .await
            .unwrap();
        let mut ids: Vec<_> = found
            .iter()
            .map(|(portal, last)| (portal.id, *last))
            .collect();
        ids.sort();
        let mut expected = vec![(bob_portal.id, None), (carol_portal.id, None)];
        expected.sort();
        assert_eq!(ids, expected);
        store
            .settle_event(None, None, Some((slack.id, &carol_chat, 2_000)), &[])
            .await
            .unwrap();
        store
            .settle_event(None, None, Some((slack.id, &bob_chat, 1_000)), &[])
            .await
            .unwrap();
        let found = store
            .portals_in_shared_chat(slack.id, &shared)
            .await
            .unwrap();
        assert_eq!(
            found
                .iter()
                .map(|(portal, last)| (portal.id, *last))
                .collect::<Vec<_>>(),
            vec![(carol_portal.id, Some(2_000)), (bob_portal.id, Some(1_000))]
        );
        assert!(
            store
                .portals_in_shared_chat(slack.id, &ExternalChatId::new("bot:U2"))
                .await
                .unwrap()
                .is_empty()
        );
    }
);

fn scim_user(id: &str, user_name: &str, email: &str, active: bool) -> ScimUserRecord {
    let at = Timestamp::from_unix_millis(1_000);
    ScimUserRecord {
        id: id.to_owned(),
        user_name: user_name.to_owned(),
        external_id: Some(format!("ext-{id}")),
        display_name: Some(user_name.to_owned()),
        email: Some(email.to_owned()),
        active,
        resource: "{}".to_owned(),
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

store_test!(
    scim_users_are_unique_by_name_in_any_case_filtered_paged_and_written_at_the_version_read,
    |_db, store| {
        store
            .insert_scim_user(&scim_user(
                "u1",
                "Ann@Acme.example",
                "Ann@Acme.example",
                true,
            ))
            .await
            .unwrap();
        store
            .insert_scim_user(&scim_user(
                "u2",
                "bo@acme.example",
                "bo@acme.example",
                false,
            ))
            .await
            .unwrap();
        assert!(matches!(
            store
                .insert_scim_user(&scim_user("u3", "ANN@acme.EXAMPLE", "x@y.z", true))
                .await,
            Err(StoreError::Conflict(_))
        ));
        let query = |equals: Vec<(ScimField, &str)>, start, count| ScimQuery {
            equals: equals
                .into_iter()
                .map(|(field, value)| (field, value.to_owned()))
                .collect(),
            start,
            count,
        };
        let (found, total) = store
            .scim_users(&query(
                vec![(ScimField::UserName, "ann@acme.example")],
                0,
                10,
            ))
            .await
            .unwrap();
        assert_eq!((found.len(), total), (1, 1));
        assert_eq!(found[0].email.as_deref(), Some("ann@acme.example"));
        let (found, _) = store
            .scim_users(&query(
                vec![
                    (ScimField::Email, "BO@acme.example"),
                    (ScimField::ExternalId, "ext-u2"),
                ],
                0,
                10,
            ))
            .await
            .unwrap();
        assert_eq!(found[0].id, "u2");
        assert!(!found[0].active);
        let (page, total) = store.scim_users(&query(vec![], 1, 1)).await.unwrap();
        assert_eq!((page.len(), total), (1, 2));
        assert_eq!(page[0].id, "u2");

        let mut renamed = scim_user("u2", "bo.stone@acme.example", "bo@acme.example", true);
        renamed.version = 2;
        store.update_scim_user(&renamed, 1).await.unwrap();
        assert!(matches!(
            store.update_scim_user(&renamed, 1).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store.scim_user("u2").await.unwrap().unwrap().user_name,
            "bo.stone@acme.example"
        );

        let at = Timestamp::from_unix_millis(2_000);
        let group = ScimGroupRecord {
            id: "g1".to_owned(),
            display_name: "Sales".to_owned(),
            external_id: None,
            resource: "{}".to_owned(),
            members: vec!["u1".to_owned(), "u2".to_owned()],
            version: 1,
            created_at: at,
            updated_at: at,
        };
        store.insert_scim_group(&group).await.unwrap();
        let mut stranger = group.clone();
        stranger.id = "g2".to_owned();
        stranger.members = vec!["nobody".to_owned()];
        assert!(matches!(
            store.insert_scim_group(&stranger).await,
            Err(StoreError::NotFound { .. })
        ));
        let (groups, total) = store
            .scim_groups(&query(vec![(ScimField::DisplayName, "Sales")], 0, 10))
            .await
            .unwrap();
        assert_eq!((groups.len(), total), (1, 1));
        assert_eq!(groups[0].members, vec!["u1", "u2"]);
        assert_eq!(
            store
                .scim_groups(&query(vec![(ScimField::UserName, "Sales")], 0, 10))
                .await
                .unwrap()
                .1,
            0
        );
        assert!(store.delete_scim_user("u1").await.unwrap());
        assert!(!store.delete_scim_user("u1").await.unwrap());
        assert_eq!(
            store.scim_group("g1").await.unwrap().unwrap().members,
            vec!["u2"]
        );
        assert!(store.delete_scim_group("g1").await.unwrap());
        assert!(store.scim_group("g1").await.unwrap().is_none());
        assert!(store.scim_user("u2").await.unwrap().is_some());
    }
);

store_test!(
    directory_scope_is_chosen_and_its_scim_members_are_the_active_ones,
    |_db, store| {
        assert!(store.directory_scope().await.unwrap().is_empty());
        store
            .insert_scim_user(&scim_user("u1", "ann", "Ann@Acme.example", true))
            .await
            .unwrap();
        store
            .insert_scim_user(&scim_user("u2", "bo", "bo@acme.example", false))
            .await
            .unwrap();
        store
            .insert_scim_user(&scim_user("u3", "cleo", "cleo@acme.example", true))
            .await
            .unwrap();
        let at = Timestamp::from_unix_millis(2_000);
        for (id, members) in [("g1", vec!["u1", "u2"]), ("g2", vec!["u1", "u3"])] {
            store
                .insert_scim_group(&ScimGroupRecord {
                    id: id.to_owned(),
                    display_name: id.to_owned(),
                    external_id: None,
                    resource: "{}".to_owned(),
                    members: members.into_iter().map(str::to_owned).collect(),
                    version: 1,
                    created_at: at,
                    updated_at: at,
                })
                .await
                .unwrap();
        }
        let chosen = vec![
            ScopeGroup {
                source: "scim".to_owned(),
                group_id: "g1".to_owned(),
            },
            ScopeGroup {
                source: "scim".to_owned(),
                group_id: "g2".to_owned(),
            },
        ];
        store.set_directory_scope(&chosen).await.unwrap();
        assert_eq!(store.directory_scope().await.unwrap(), chosen);
        assert_eq!(
            store
                .scim_members_addresses(&["g1".to_owned(), "g2".to_owned()])
                .await
                .unwrap(),
            vec!["ann@acme.example", "cleo@acme.example"]
        );
        let groups = ["g1".to_owned(), "g2".to_owned()];
        assert!(
            store
                .scim_member_with_address(&groups, "ANN@acme.example")
                .await
                .unwrap()
        );
        // Bo is in g1 but inactive; Cleo is in g2 only.
        assert!(
            !store
                .scim_member_with_address(&groups, "bo@acme.example")
                .await
                .unwrap()
        );
        assert!(
            !store
                .scim_member_with_address(&groups[..1], "cleo@acme.example")
                .await
                .unwrap()
        );
        store.set_directory_scope(&[]).await.unwrap();
        assert!(store.directory_scope().await.unwrap().is_empty());
    }
);

store_test!(
    a_directory_groups_members_are_replaced_by_each_reading_and_forgotten_with_the_group,
    |_db, store| {
        let group = ScopeGroup {
            source: "connection-1".to_owned(),
            group_id: "g-entra".to_owned(),
        };
        store
            .set_directory_scope(std::slice::from_ref(&group))
            .await
            .unwrap();
        let at = |ms| Timestamp::from_unix_millis(ms);
        let rows = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(email, account)| ((*email).to_owned(), (*account).to_owned()))
                .collect()
        };
        let first = rows(&[
            ("Ann@acme.example", "u1"),
            ("ann@legacy.example", "u1"),
            ("bo@acme.example", "u2"),
        ]);
        assert!(
            store
                .replace_directory_members(&group, &first, at(1_000))
                .await
                .unwrap()
        );
        assert!(
            !store
                .replace_directory_members(&group, &first, at(2_000))
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .directory_member_addresses(std::slice::from_ref(&group))
                .await
                .unwrap(),
            vec!["ann@acme.example", "ann@legacy.example", "bo@acme.example"]
        );
        let reads = store.directory_reads().await.unwrap();
        assert_eq!(reads.len(), 1);
        assert_eq!(
            (reads[0].read_at, reads[0].members, reads[0].changed_at),
            (at(2_000), 3, Some(at(1_000)))
        );
        // A larger reading than one statement holds, then a failed one that keeps it.
        let many: Vec<(String, String)> = (0..1_234)
            .map(|n| (format!("p{n}@acme.example"), format!("u{n}")))
            .collect();
        assert!(
            store
                .replace_directory_members(&group, &many, at(3_000))
                .await
                .unwrap()
        );
        store
            .record_directory_read_error(&group, at(4_000), "the group is gone")
            .await
            .unwrap();
        let reads = store.directory_reads().await.unwrap();
        assert_eq!(
            (
                reads[0].members,
                reads[0].changed_at,
                reads[0].error.as_deref()
            ),
            (1_234, Some(at(3_000)), Some("the group is gone"))
        );
        assert!(
            store
                .directory_member_with_address(std::slice::from_ref(&group), "P7@acme.example")
                .await
                .unwrap()
        );
        assert!(
            !store
                .directory_member_with_address(std::slice::from_ref(&group), "bo@acme.example")
                .await
                .unwrap()
        );
        // No longer chosen, the group's members and readings are forgotten.
        store.set_directory_scope(&[]).await.unwrap();
        assert!(store.directory_reads().await.unwrap().is_empty());
        assert!(
            store
                .directory_member_addresses(std::slice::from_ref(&group))
                .await
                .unwrap()
                .is_empty()
        );
    }
);
