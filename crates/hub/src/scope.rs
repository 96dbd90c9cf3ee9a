//! Directory Sync's scope as the hub applies it: the groups the admin chose (see
//! [`switchboard_core::Scope`]), their members read from where the groups live, and what
//! leaving it does — the leaver is reset (the guests and bots the hub made for them removed
//! from every platform) and removed from the hub, audited with the cause. Auto-sync syncs no one
//! outside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard_core::{Email, Person, Scope, ScopedPerson, SyncStatus, leavers};
use switchboard_store::{PeopleQuery, ScopeGroup, Store, StoreError};

use crate::AppState;

/// Where a group provisioned through SCIM lives.
pub const SCIM_SOURCE: &str = "scim";

/// How often Directory Sync reads the groups it follows even when no change was announced: a
/// notification lost on its way is caught by the next reading.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(300);

/// Reconciliations run one at a time (two at once would reset the same leavers twice), and
/// changes that arrive while one waits its turn are served by it: an identity provider writes
/// users one request at a time, thousands in a row, and each need not read every person again.
/// The directory groups Directory Sync follows are read by one loop ([`spawn`]), woken by a
/// platform's announcement of a change ([`read_groups_now`]) or every `reconcile_every`.
#[derive(Clone)]
pub struct Reconciling {
    turn: Arc<tokio::sync::Mutex<()>>,
    queued: Arc<AtomicBool>,
    read_now: Arc<tokio::sync::Notify>,
    reconcile_every: Duration,
}

impl Default for Reconciling {
    fn default() -> Self {
        Self::every(DEFAULT_RECONCILE_INTERVAL)
    }
}

impl Reconciling {
    pub(crate) fn read_now(&self) -> &tokio::sync::Notify {
        &self.read_now
    }

    pub(crate) fn reconcile_every(&self) -> Duration {
        self.reconcile_every
    }

    /// Directory groups read every `interval` besides the announced changes.
    pub fn every(interval: Duration) -> Self {
        Self {
            turn: Arc::default(),
            queued: Arc::default(),
            read_now: Arc::default(),
            reconcile_every: interval,
        }
    }
}

/// Whether a chosen group is provisioned through SCIM (else it lives in a connection's
/// directory, its source being the connection's id).
fn provisioned(group: &ScopeGroup) -> bool {
    group.source == SCIM_SOURCE
}

/// The scope the groups `groups` make.
pub async fn scope_of(store: &Store, groups: &[ScopeGroup]) -> Result<Scope, StoreError> {
    if groups.is_empty() {
        return Ok(Scope::Everyone);
    }
    let (scim, directory): (Vec<ScopeGroup>, Vec<ScopeGroup>) =
        groups.iter().cloned().partition(provisioned);
    let scim: Vec<String> = scim.into_iter().map(|group| group.group_id).collect();
    let mut addresses = store.scim_members_addresses(&scim).await?;
    addresses.extend(store.directory_member_addresses(&directory).await?);
    Ok(Scope::Members(
        addresses
            .iter()
            .filter_map(|address| Email::parse(address).ok())
            .collect(),
    ))
}

/// Whether the person at `email` is in the scope the admin chose: a question about one person,
/// answered without reading every member.
pub async fn includes(store: &Store, email: &Email) -> Result<bool, StoreError> {
    let groups = store.directory_scope().await?;
    if groups.is_empty() {
        return Ok(true);
    }
    let (scim, directory): (Vec<ScopeGroup>, Vec<ScopeGroup>) =
        groups.into_iter().partition(provisioned);
    let scim: Vec<String> = scim.into_iter().map(|group| group.group_id).collect();
    Ok(store
        .scim_member_with_address(&scim, email.as_str())
        .await?
        || store
            .directory_member_with_address(&directory, email.as_str())
            .await?)
}

/// The scope as the admin chose it.
pub async fn current(store: &Store) -> Result<Scope, StoreError> {
    scope_of(store, &store.directory_scope().await?).await
}

/// Every person, as the scope sees them, with the person itself.
async fn people(store: &Store) -> Result<Vec<(ScopedPerson, Person)>, StoreError> {
    let mut query = PeopleQuery {
        limit: 1_000,
        ..Default::default()
    };
    let mut people = Vec::new();
    loop {
        let page = store.list_people(&query).await?;
        for summary in page.people {
            let represented = summary
                .representations
                .iter()
                .any(|r| r.status != SyncStatus::NotCreated);
            people.push((
                ScopedPerson {
                    id: summary.person.id,
                    email: summary.person.email.clone(),
                    represented,
                },
                summary.person,
            ));
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(people),
        }
    }
}

/// What choosing `groups` would do, before it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Everyone in scope (`None`: everyone, no group being chosen).
    pub in_scope: Option<usize>,
    /// The represented people who would leave: reset and removed.
    pub leaving: Vec<Person>,
}

pub async fn preview(store: &Store, groups: &[ScopeGroup]) -> Result<Preview, StoreError> {
    let scope = scope_of(store, groups).await?;
    let people = people(store).await?;
    let scoped: Vec<ScopedPerson> = people.iter().map(|(scoped, _)| scoped.clone()).collect();
    let leaving = leavers(&scope, &scoped);
    Ok(Preview {
        in_scope: match &scope {
            Scope::Everyone => None,
            Scope::Members(_) => Some(
                scoped
                    .iter()
                    .filter(|person| scope.includes(&person.email))
                    .count(),
            ),
        },
        leaving: people
            .into_iter()
            .filter(|(scoped, _)| leaving.contains(&scoped.id))
            .map(|(_, person)| person)
            .collect(),
    })
}

/// How long after a leaver could not be removed (a sync of theirs was running) the
/// reconciliation tries again.
const RETRY_LEAVERS_AFTER: Duration = Duration::from_secs(5);

/// What a reconciliation did: how many leavers it removed, and how many it could not.
struct Reconciled {
    removed: usize,
    not_removed: usize,
}

/// Resets and removes everyone who has left the scope; answers how many, or `None` when no
/// group is chosen (nobody can leave). `cause` says what changed (for the audit log). The
/// caller holds the turn.
async fn reconcile(state: &AppState, cause: &str) -> Result<Option<Reconciled>, StoreError> {
    let scope = current(&state.store).await?;
    if scope == Scope::Everyone {
        return Ok(None);
    }
    let people = people(&state.store).await?;
    let scoped: Vec<ScopedPerson> = people.iter().map(|(scoped, _)| scoped.clone()).collect();
    let mut removed = 0;
    let mut not_removed = 0;
    for id in leavers(&scope, &scoped) {
        // Removing each takes its time: one who joined again meanwhile stays.
        let rejoined = match scoped.iter().find(|person| person.id == id) {
            Some(person) => includes(&state.store, &person.email).await?,
            None => false,
        };
        if rejoined {
            continue;
        }
        let actor = format!("directory: {cause}");
        let detail = match crate::sync::remove(state, id, &actor).await {
            Ok(()) => {
                removed += 1;
                "left the directory's groups: reset and removed".to_owned()
            }
            Err(error) => {
                not_removed += 1;
                tracing::warn!(person = %id, %error, "directory sync could not remove a leaver");
                format!("left the directory's groups; not removed: {error}")
            }
        };
        state
            .store
            .audit(
                &actor,
                "directory.leave",
                &id.to_string(),
                &detail,
                "directory",
            )
            .await?;
    }
    Ok(Some(Reconciled {
        removed,
        not_removed,
    }))
}

/// Reconciles in the background after a change to the groups or their members, then, when a
/// scope is chosen, lets auto-sync (when it is on) represent who joined. A reconciliation
/// queued already, not started, serves this change too.
pub fn reconcile_in_background(state: &AppState, cause: &str) {
    if state.scope.queued.swap(true, Ordering::SeqCst) {
        return;
    }
    let (state, cause) = (state.clone(), cause.to_owned());
    tokio::spawn(async move {
        let _turn = state.scope.turn.lock().await;
        // From here on, a change is this run's to miss: it queues the next one.
        state.scope.queued.store(false, Ordering::SeqCst);
        match reconcile(&state, &cause).await {
            Ok(None) => {}
            Ok(Some(Reconciled {
                removed,
                not_removed,
            })) => {
                if removed > 0 {
                    tracing::info!(removed, %cause, "directory sync removed leavers");
                }
                if not_removed > 0 {
                    // A sync of theirs was running (it began before they left): once it is
                    // over they can be reset.
                    let (state, cause) = (state.clone(), cause.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(RETRY_LEAVERS_AFTER).await;
                        reconcile_in_background(&state, &cause);
                    });
                }
                crate::sync::auto_sync_if_enabled(&state);
            }
            Err(error) => tracing::error!(%error, %cause, "directory sync failed"),
        }
    });
}
