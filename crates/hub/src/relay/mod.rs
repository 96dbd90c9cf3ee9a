//! The relay: carries messages between people's primary platforms.
//!
//! The path of a message: a platform's webhook is verified and each of its items stored in the
//! inbox before the delivery is acknowledged (`crate::webhooks`); [`route`] reads stored items,
//! resolves the native chat to a conversation, decides which platforms need a copy, and queues
//! the copies in the outbox in the same transaction that marks the item read; [`deliver`]
//! posts each copy as the sender's representation, one at a time per conversation and
//! platform, and records it in the message map. [`spawn`] starts both loops and the upkeep of
//! the platforms' event subscriptions.
//!
//! The relay and user sync know each other through two narrow doors only: the relay asks
//! [`UnsyncedSenders`] to prompt a sender who is not represented yet where they wrote to, and
//! user sync tells the relay through [`Relay::representation_synced`] that what was held for a
//! person can go.

mod deliver;
pub use deliver::ADDED_LATENCY;
mod notice;
pub use notice::RESTRICTED_NOTICE;
mod own_posts;
pub use own_posts::{Door, RecentCopies, is_own_post};
mod payload;
mod route;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::{ConnectionId, ExternalUserId, PersonId, Platform, Timestamp};
use switchboard_platform::{Actor, EventSubscription};
use switchboard_store::{Store, StoredSubscription};
use tokio::sync::Notify;

use crate::AppState;
use crate::import::connection_context;

/// What the relay's loops share with the rest of the hub: the signals that wake them as soon
/// as there is work, rather than at their next tick, and the copies lately posted.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    inbox: Arc<Notify>,
    outbox: Arc<Notify>,
    subscriptions: Arc<Notify>,
    read_back: Arc<ReadBack>,
    pub copies: Arc<RecentCopies>,
}

/// Connections whose chats are to be read back, each from the earliest time since which a
/// delivery may have been given up by its platform, and the signal that wakes the loop that
/// reads them.
#[derive(Debug, Default)]
struct ReadBack {
    pending: Mutex<HashMap<ConnectionId, i64>>,
    wanted: Notify,
}

impl Relay {
    /// A person's representation was synced: what was held for it goes out now, and the
    /// account's events are subscribed to where the platform watches each account.
    pub async fn representation_synced(&self, store: &Store, person: PersonId) {
        self.subscriptions.notify_one();
        match store.release_held(person).await {
            Ok(0) => {}
            Ok(released) => {
                tracing::info!(%person, released, "relay: held copies released");
                self.outbox_filled();
            }
            Err(error) => tracing::warn!(%person, %error, "relay: cannot release held copies"),
        }
    }

    /// New items are in the inbox.
    pub fn inbox_filled(&self) {
        self.inbox.notify_one();
    }

    /// Copies were queued or put back in their lanes.
    pub fn outbox_filled(&self) {
        self.outbox.notify_one();
    }

    /// A connection was made or renewed: its event subscriptions may need creating.
    pub fn connection_changed(&self) {
        self.subscriptions.notify_one();
    }

    /// `connection`'s platform retried a delivery: deliveries made since `since_micros` may
    /// have failed on every attempt and been given up, unannounced. Its chats are read back
    /// from then on, shortly, once for however many retries come meanwhile.
    pub fn redelivered(&self, connection: ConnectionId, since_micros: i64) {
        self.read_back
            .pending
            .lock()
            .expect("read-back lock")
            .entry(connection)
            .and_modify(|since| *since = (*since).min(since_micros))
            .or_insert(since_micros);
        self.read_back.wanted.notify_one();
    }

    /// Waits for connections to read back, and takes them.
    async fn to_read_back(&self) -> HashMap<ConnectionId, i64> {
        self.read_back.wanted.notified().await;
        // Retries come in bursts, while a platform's deliveries fail: one reading covers a
        // burst, and the chats are not read again and again meanwhile.
        tokio::time::sleep(READ_BACK_DELAY).await;
        std::mem::take(&mut *self.read_back.pending.lock().expect("read-back lock"))
    }
}

/// What the relay asks of user sync, and all it asks.
#[async_trait::async_trait]
pub trait UnsyncedSenders: Send + Sync {
    /// Asks `person`, who wrote to someone on `platform` but is not represented there yet, to
    /// authorise their account there, as the sync settings allow; answers whether a prompt
    /// went out.
    async fn prompt(&self, person: PersonId, platform: Platform) -> Result<bool, String>;
}

/// How often the loops look for work when nothing woke them: for retries that came due.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long after a platform's retry its connection's chats are read back, and how long the
/// reading rests after each pass: while a platform's deliveries keep failing, the chats active
/// that day are read at most about once a minute, within the platforms' limits on reading.
const READ_BACK_DELAY: Duration = Duration::from_secs(10);
const READ_BACK_PAUSE: Duration = Duration::from_secs(50);
/// How often the event subscriptions are checked (renewed before they expire).
const SUBSCRIPTION_CHECK: Duration = Duration::from_secs(60);
/// How long the ids of read events are kept to recognise redeliveries: far longer than any
/// platform retries (Slack: minutes; Graph: up to four hours).
const SEEN_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Starts the relay's loops, with `senders` to prompt people whose copies wait for their sync;
/// they run until the process ends.
pub fn spawn(state: AppState, senders: Arc<dyn UnsyncedSenders>) {
    let relay = state.clone();
    tokio::spawn(async move {
        // Before anything is routed: recovery reads the outbox afresh.
        deliver::recover(&relay).await;
        tokio::spawn(route::run(relay.clone()));
        tokio::spawn(route::read_back(relay.clone()));
        deliver::run(relay, senders).await;
    });
    tokio::spawn(maintain_subscriptions(state));
}

/// Whether `actor` is the representation acting as `account`: the directory reads a person's
/// representation at its own moment, and a sync in between may have given it another account.
fn acts_as(actor: &Actor, account: &ExternalUserId) -> bool {
    matches!(actor, Actor::Representation { account: acting, .. } if acting == account)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis().saturating_add(millis(by)))
}

/// Where a platform delivers its events to this hub.
pub fn events_url(public_url: &str, platform: Platform) -> String {
    format!(
        "{}/webhooks/{}",
        public_url.trim_end_matches('/'),
        platform.as_str()
    )
}

async fn maintain_subscriptions(state: AppState) {
    loop {
        if let Err(error) = maintain_once(&state).await {
            tracing::warn!(%error, "relay: keeping event subscriptions failed");
        }
        let forget_before =
            Timestamp::from_unix_millis(state.clock.now().unix_millis() - millis(SEEN_RETENTION));
        if let Err(error) = state.store.prune_relay(forget_before).await {
            tracing::warn!(%error, "relay: pruning read events failed");
        }
        let _ =
            tokio::time::timeout(SUBSCRIPTION_CHECK, state.relay.subscriptions.notified()).await;
    }
}

/// Creates or renews each connection's event subscriptions.
async fn maintain_once(state: &AppState) -> Result<(), switchboard_store::StoreError> {
    let followed = state.store.directory_scope().await?;
    for connection in state.store.connections().await? {
        let Some(module) = state.platforms.get(connection.platform).cloned() else {
            continue;
        };
        let Some(context) = connection_context(&state.store, connection.id).await? else {
            continue;
        };
        let current: Vec<EventSubscription> = state
            .store
            .event_subscriptions(connection.id)
            .await?
            .into_iter()
            .map(|s| EventSubscription {
                id: s.id,
                resource: s.resource,
                expires_at: s.expires_at,
            })
            .collect();
        let url = events_url(&state.public_url, connection.platform);
        // Each watched account with the credentials it acts with: some platforms let only an
        // account subscribe to its own events.
        let mut watched = Vec::new();
        for (person, account) in state.store.synced_representations_on(connection.id).await? {
            if let Some(actor) = state
                .directory
                .actor(&state.store, person, connection.platform)
                .await?
                .filter(|actor| acts_as(actor, &account))
            {
                watched.push(actor);
            }
        }
        // The directory groups Directory Sync follows on this connection.
        let groups: Vec<String> = followed
            .iter()
            .filter(|group| group.source == connection.id.to_string())
            .map(|group| group.group_id.clone())
            .collect();
        match module
            .maintain_subscriptions(
                &context,
                &url,
                &watched,
                &groups,
                &current,
                state.clock.now(),
            )
            .await
        {
            Ok(kept) if same_subscriptions(&kept, &current) => {}
            Ok(kept) => {
                let stored: Vec<StoredSubscription> = kept
                    .into_iter()
                    .map(|s| StoredSubscription {
                        id: s.id,
                        resource: s.resource,
                        expires_at: s.expires_at,
                    })
                    .collect();
                state
                    .store
                    .replace_event_subscriptions(connection.id, &stored)
                    .await?;
                tracing::info!(connection = %connection.id, count = stored.len(), "relay: event subscriptions updated");
            }
            Err(error) => {
                tracing::warn!(connection = %connection.id, %error, "relay: cannot keep event subscriptions");
            }
        }
    }
    Ok(())
}

/// Whether two lists hold the same subscriptions, whatever their order: a module answers them
/// in the order of the watched accounts, the store in its own, and an unchanged set is neither
/// written again nor logged as updated.
fn same_subscriptions(one: &[EventSubscription], other: &[EventSubscription]) -> bool {
    fn sorted(list: &[EventSubscription]) -> Vec<(&str, &str, Timestamp)> {
        let mut keys: Vec<_> = list
            .iter()
            .map(|s| (s.id.as_str(), s.resource.as_str(), s.expires_at))
            .collect();
        keys.sort_unstable();
        keys
    }
    sorted(one) == sorted(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(id: &str, expires_at: i64) -> EventSubscription {
        EventSubscription {
            id: id.to_owned(),
            resource: format!("users/{id}"),
            expires_at: Timestamp::from_unix_millis(expires_at),
        }
    }

    #[test]
    fn subscriptions_are_the_same_whatever_their_order_and_differ_by_any_field() {
        let (a, b) = (subscription("a", 1), subscription("b", 2));
        assert!(same_subscriptions(
            &[a.clone(), b.clone()],
            &[b.clone(), a.clone()]
        ));
        assert!(!same_subscriptions(
            &[a.clone(), b.clone()],
            std::slice::from_ref(&a)
        ));
        assert!(!same_subscriptions(
            &[a.clone(), b],
            &[a, subscription("b", 3)]
        ));
    }
}
