//! Imports run in the background: page by page from the platform into the store, with the
//! run's progress visible as it goes, then a fresh match of every account into people.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use switchboard_core::{AccountKind, ConnectionId, ImportScope, match_accounts, reconcile};
use switchboard_platform::{
    ChatPlatform, ConnectionContext, Credentials, ImportRequest, PlatformUser,
};
use switchboard_store::{ImportRun, ImportedAccount, Store, StoreError};

use crate::AppState;

/// Why an import could not start.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no connection with id {0}")]
    UnknownConnection(ConnectionId),
    #[error("connection {0} was disconnected: connect its platform again before importing")]
    Disconnected(ConnectionId),
    #[error("this hub has no {0} module configured")]
    PlatformNotConfigured(&'static str),
    #[error("{platform} imports the members of selected {}: select at least one {} first", team.many, team.one)]
    NoTeamsSelected {
        platform: &'static str,
        team: switchboard_core::Noun,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The connection with its credentials, as platform modules need it.
pub async fn connection_context(
    store: &Store,
    connection: ConnectionId,
) -> Result<Option<ConnectionContext>, StoreError> {
    let Some(connection) = store.connection(connection).await? else {
        return Ok(None);
    };
    let mut credentials = Credentials::default();
    for (name, secret) in store.secrets(connection.id).await? {
        credentials.insert(name, secret);
    }
    Ok(Some(ConnectionContext {
        connection,
        credentials,
    }))
}

/// Starts importing a connection's users in the background and returns the new run at once.
/// Once it finished and accounts were matched into people, auto-sync runs if it is on.
pub async fn start_import(
    state: &AppState,
    connection: ConnectionId,
) -> Result<ImportRun, ImportError> {
    let (store, platforms) = (&state.store, &state.platforms);
    let Some(context) = connection_context(store, connection).await? else {
        let disconnected = store.disconnected_connections().await?;
        return Err(if disconnected.iter().any(|(c, _)| c.id == connection) {
            ImportError::Disconnected(connection)
        } else {
            ImportError::UnknownConnection(connection)
        });
    };
    let platform_name = context.connection.platform.display_name();
    let platform = platforms
        .get(context.connection.platform)
        .cloned()
        .ok_or(ImportError::PlatformNotConfigured(platform_name))?;
    let teams: Vec<String> = match platform.rules().import {
        ImportScope::AllUsers => Vec::new(),
        ImportScope::SelectedTeams { team } => {
            let selected = store.selected_teams(connection).await?;
            if selected.is_empty() {
                return Err(ImportError::NoTeamsSelected {
                    platform: platform_name,
                    team,
                });
            }
            selected.into_iter().map(|(id, _)| id).collect()
        }
    };
    let run = store.start_import(connection).await?;
    let (app, store, started) = (state.clone(), store.clone(), run.clone());
    let running = state.matching.import_started();
    tokio::spawn(async move {
        let outcome = import_pages(&store, platform, &context, &started, teams).await;
        if let Err(reason) = &outcome {
            tracing::warn!(connection = %started.connection_id, run = %started.id, %reason, "import failed");
        }
        let finished = store.finish_import(&started, outcome).await;
        drop(running);
        match finished {
            Ok(finished) => {
                tracing::info!(
                    connection = %finished.connection_id, run = %finished.id,
                    seen = finished.seen, added = finished.added, updated = finished.updated,
                    deactivated = finished.deactivated, "import finished"
                );
                match_when_quiet(app).await;
            }
            Err(error) => {
                tracing::error!(%error, run = %started.id, "cannot record the end of an import")
            }
        }
    });
    Ok(run)
}

/// How long after an import ends the match waits for another import to start (an admin or the
/// demo importing platforms one after the other), so that one match follows the last.
const MATCH_QUIET: std::time::Duration = std::time::Duration::from_millis(500);

/// Matching accounts into people after imports. Each match reads every account, so imports run
/// one after the other would each start one while the next import writes its pages (on five
/// platforms of 100,000 people, 6 s more and 100 MiB more at the peak). A match asked for after
/// an import waits until no import is running and nobody asked again for [`MATCH_QUIET`]; one
/// match runs at a time; and a match covers every request made before it started.
#[derive(Clone, Default)]
pub struct Matching(Arc<MatchingState>);

#[derive(Default)]
struct MatchingState {
    /// Imports of this hub running now (the instance lock makes them the only ones).
    running_imports: AtomicUsize,
    /// Matches asked for so far.
    asked: AtomicU64,
    /// Held by the running match: how many requests the last match covered.
    covered: tokio::sync::Mutex<u64>,
}

/// An import, counted as running until dropped.
struct RunningImport(Matching);

impl Drop for RunningImport {
    fn drop(&mut self) {
        self.0.0.running_imports.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Matching {
    fn import_started(&self) -> RunningImport {
        self.0.running_imports.fetch_add(1, Ordering::SeqCst);
        RunningImport(self.clone())
    }

    fn ask(&self) -> u64 {
        self.0.asked.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Matches every account into people now, unless a match that started after this call
    /// did.
    pub async fn match_now(&self, store: &Store) -> Result<(), StoreError> {
        let wanted = self.ask();
        self.match_covering(store, wanted).await.map(drop)
    }

    /// Runs a match unless one that started after request `wanted` ran already; answers
    /// whether it ran one.
    async fn match_covering(&self, store: &Store, wanted: u64) -> Result<bool, StoreError> {
        let mut covered = self.0.covered.lock().await;
        if *covered >= wanted {
            return Ok(false);
        }
        let upto = self.0.asked.load(Ordering::SeqCst);
        rematch(store).await?;
        *covered = upto;
        Ok(true)
    }
}

/// The match an import's end asks for (see [`Matching`]), then auto-sync where it is on.
async fn match_when_quiet(state: AppState) {
    let matching = &state.matching;
    let wanted = matching.ask();
    tokio::time::sleep(MATCH_QUIET).await;
    if matching.0.running_imports.load(Ordering::SeqCst) > 0
        || matching.0.asked.load(Ordering::SeqCst) > wanted
    {
        // The running import's end, or whoever asked later, matches.
        return;
    }
    match matching.match_covering(&state.store, wanted).await {
        Ok(true) => crate::sync::auto_sync_if_enabled(&state),
        Ok(false) => {}
        Err(error) => tracing::error!(%error, "matching accounts into people failed"),
    }
}

async fn import_pages(
    store: &Store,
    platform: Arc<dyn ChatPlatform>,
    context: &ConnectionContext,
    run: &ImportRun,
    teams: Vec<String>,
) -> Result<(), String> {
    if teams.is_empty() {
        return import_listing(store, &platform, context, run, None).await;
    }
    // One team at a time, so that each page is known to list that team's members.
    for team in teams {
        import_listing(store, &platform, context, run, Some(team)).await?;
    }
    Ok(())
}

/// Imports every page of one listing: the whole directory, or one team's members.
async fn import_listing(
    store: &Store,
    platform: &Arc<dyn ChatPlatform>,
    context: &ConnectionContext,
    run: &ImportRun,
    team: Option<String>,
) -> Result<(), String> {
    let mut request = ImportRequest {
        teams: team.iter().cloned().collect(),
        cursor: None,
    };
    loop {
        let page = platform
            .import_users(context, &request)
            .await
            .map_err(|error| error.to_string())?;
        let accounts: Vec<ImportedAccount> = page.users.iter().map(imported_account).collect();
        store
            .record_import_page(run, context.connection.platform, team.as_deref(), &accounts)
            .await
            .map_err(|error| error.to_string())?;
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return Ok(()),
        }
    }
}

pub(crate) fn imported_account(user: &PlatformUser) -> ImportedAccount {
    ImportedAccount {
        external_id: user.id.clone(),
        display_name: user.display_name.clone(),
        emails: user.emails.clone(),
        kind: if user.is_bot {
            AccountKind::Bot
        } else {
            AccountKind::Human
        },
        active: !user.deactivated,
    }
}

/// Matches every account into people again and applies the differences.
async fn rematch(store: &Store) -> Result<usize, StoreError> {
    let candidates = store.match_candidates().await?;
    let matched = match_accounts(&candidates);
    for (connection, accounts) in &matched.conflicts {
        tracing::warn!(%connection, accounts = accounts.len(), "several accounts of one connection share an e-mail address");
    }
    let plan = reconcile(&matched, &store.account_links().await?);
    store.apply_reconciliation(&plan).await
}
