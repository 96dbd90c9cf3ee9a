//! Disconnecting a platform: what it will touch (for the confirmation), then, in order, the
//! hub's guests and bots there removed if the admin asked (they cannot be removed once the
//! credentials are gone), the platform's event subscriptions removed (best effort), and the
//! connection disconnected in the store (`Store::disconnect_connection`): its credentials and
//! everything else secret deleted, the copies waiting for it dead-lettered. People, accounts
//! and the message map stay, so connecting the same workspace or tenant again restores them.

use switchboard_core::{Connection, ConnectionId, PersonId, Platform, SyncStatusCode};
use switchboard_platform::EventSubscription;
use switchboard_store::StoreError;

use crate::AppState;
use crate::import::connection_context;

/// What disconnecting a connection will touch, for the admin to confirm.
#[derive(Debug, Clone)]
pub struct Plan {
    pub connection: Connection,
    /// The connection's imported accounts: kept.
    pub accounts: i64,
    /// Copies waiting to be sent through the connection: dead-lettered.
    pub queued: i64,
    /// The people with a guest account or bot the hub created on the platform: removed only
    /// if the admin asks.
    pub created: Vec<PersonId>,
    /// The people whose synced or pending representation acts through the connection: failed
    /// (if not removed), since its credentials are deleted.
    pub represented: usize,
}

/// What disconnecting did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The people whose guest account or bot was removed.
    pub removed: Vec<PersonId>,
    /// The people whose guest account or bot could not be removed, and why: left on the
    /// platform, for its admin to remove.
    pub not_removed: Vec<(PersonId, String)>,
    /// Why the platform's event subscriptions could not be removed, if they could not (they
    /// expire on their own, and what they send is refused meanwhile).
    pub unsubscribe_error: Option<String>,
    /// Copies that were waiting to be sent through the connection, now dead letters.
    pub dead_lettered: u64,
    /// Representations turned to failed because their credentials were deleted.
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    #[error("no connection with id {0}")]
    Unknown(ConnectionId),
    #[error("connection {0} is already disconnected")]
    AlreadyDisconnected(ConnectionId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The connected connection `id`, or why there is none.
async fn connected(state: &AppState, id: ConnectionId) -> Result<Connection, DisconnectError> {
    if let Some(connection) = state.store.connection(id).await? {
        return Ok(connection);
    }
    let disconnected = state.store.disconnected_connections().await?;
    if disconnected.iter().any(|(c, _)| c.id == id) {
        Err(DisconnectError::AlreadyDisconnected(id))
    } else {
        Err(DisconnectError::Unknown(id))
    }
}

/// The people with a guest account or bot the hub created on `platform` (whatever its status
/// but not created).
async fn created_on(state: &AppState, platform: Platform) -> Result<Vec<PersonId>, StoreError> {
    let mut people = Vec::new();
    for status in [
        SyncStatusCode::Synced,
        SyncStatusCode::Pending,
        SyncStatusCode::Failed,
    ] {
        for representation in state
            .store
            .representations_with_status(Some(platform), status)
            .await?
        {
            if representation.kind.created_by_hub() {
                people.push(representation.person_id);
            }
        }
    }
    people.sort();
    Ok(people)
}

pub async fn plan(state: &AppState, id: ConnectionId) -> Result<Plan, DisconnectError> {
    let connection = connected(state, id).await?;
    let (accounts, queued) = state.store.connection_counts(id).await?;
    Ok(Plan {
        created: created_on(state, connection.platform).await?,
        represented: state.store.people_represented_through(id).await?.len(),
        connection,
        accounts,
        queued,
    })
}

/// Disconnects the connection `id`; with `remove_representations`, first resets the
/// representations the hub created on its platform (each failure is reported, not hidden).
pub async fn disconnect(
    state: &AppState,
    id: ConnectionId,
    remove_representations: bool,
    actor: &str,
) -> Result<Outcome, DisconnectError> {
    let connection = connected(state, id).await?;
    let platform = connection.platform;
    let mut outcome = Outcome::default();
    if remove_representations {
        let cause = format!("{actor}: disconnecting {}", platform.display_name());
        for person in created_on(state, platform).await? {
            match crate::sync::reset_on(state, person, platform, &cause).await {
                Ok(_) => outcome.removed.push(person),
                Err(error) => outcome.not_removed.push((person, error.to_string())),
            }
        }
    }
    outcome.unsubscribe_error = unsubscribe(state, id).await?;
    let reason = format!(
        "the {} connection was disconnected: reconnect it, then re-attempt",
        platform.display_name()
    );
    let done = state.store.disconnect_connection(id, &reason).await?;
    outcome.dead_lettered = done.dead_lettered;
    outcome.failed = done.failed.len();
    state.relay.connection_changed();
    tracing::info!(connection = %id, platform = platform.as_str(), removed = outcome.removed.len(), "platform disconnected");
    Ok(outcome)
}

/// Asks the platform to stop sending the connection's events, while its credentials still
/// work; a failure is reported, and the disconnection goes on.
async fn unsubscribe(state: &AppState, id: ConnectionId) -> Result<Option<String>, StoreError> {
    let Some(context) = connection_context(&state.store, id).await? else {
        return Ok(None);
    };
    let Some(module) = state.platforms.get(context.connection.platform).cloned() else {
        return Ok(None);
    };
    let current: Vec<EventSubscription> = state
        .store
        .event_subscriptions(id)
        .await?
        .into_iter()
        .map(|s| EventSubscription {
            id: s.id,
            resource: s.resource,
            expires_at: s.expires_at,
        })
        .collect();
    if current.is_empty() {
        return Ok(None);
    }
    Ok(module
        .remove_subscriptions(&context, &current)
        .await
        .err()
        .map(|error| error.to_string()))
}
