//! What the relay looks up for every message — the connections and their credentials, whose an
//! account is, people and their primary platforms, conversations and their portals,
//! representations and theirs — kept in memory between changes.
//!
//! Each lookup is a database round trip, and a message needs a dozen of them on its way in and
//! out, while the answers change only when an admin or a sync changes the directory. The store
//! counts those changes ([`Store::directory_version`]); an answer is kept with the version it
//! was read at and dropped as soon as the version moves, so nothing here is ever staler than
//! the database. Decrypted credentials are kept too, in memory the process already holds them
//! in while it sends.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use switchboard_core::{
    Connection, ConnectionId, Conversation, ConversationId, ExternalChatId, Person, PersonId,
    Platform, Portal, SyncStatus,
};
use switchboard_platform::{Actor, ConnectionContext, Credentials, EventSubscription};
use switchboard_secrets::SecretString;
use switchboard_store::{AccountIdentity, Store, StoreError};

/// Entries kept of each kind before the oldest ones are forgotten: a bound on memory for the
/// largest organisations, far above what a busy hour of messages looks up.
const CAPACITY: usize = 50_000;

/// The relay's read cache of the directory; cheap to clone, clones share it.
#[derive(Clone, Default)]
pub struct Directory {
    entries: Arc<Mutex<Entries>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Entries {
    /// The directory version the entries were read at.
    version: u64,
    connections: Option<Vec<Connection>>,
    restricted: Option<Arc<HashSet<PersonId>>>,
    contexts: HashMap<ConnectionId, Option<ConnectionContext>>,
    webhook_secrets: HashMap<(ConnectionId, String), Option<SecretString>>,
    subscriptions: HashMap<ConnectionId, Vec<EventSubscription>>,
    identities: HashMap<(ConnectionId, Platform, String), Option<AccountIdentity>>,
    actors: HashMap<(PersonId, Platform), Option<Actor>>,
    people: HashMap<PersonId, Option<Person>>,
    own_accounts: HashMap<(PersonId, Platform), Option<String>>,
    conversations: HashMap<ConversationId, Option<Conversation>>,
    portals: HashMap<(ConversationId, Platform), Option<Portal>>,
    portals_by_chat: HashMap<(ConnectionId, ExternalChatId), Option<Portal>>,
}

impl Entries {
    /// Forgets everything read before `version`.
    fn at(&mut self, version: u64) -> &mut Self {
        if self.version != version {
            *self = Entries {
                version,
                ..Entries::default()
            };
        }
        self
    }
}

fn remember<K: Eq + Hash, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, value);
}

impl Directory {
    /// Looks `key` up in one kind of entry, or loads it and keeps it unless the directory
    /// changed while it was being loaded.
    async fn cached<K, V>(
        &self,
        store: &Store,
        kind: fn(&mut Entries) -> &mut HashMap<K, V>,
        key: K,
        load: impl Future<Output = Result<V, StoreError>>,
    ) -> Result<V, StoreError>
    where
        K: Eq + Hash,
        V: Clone,
    {
        let version = store.directory_version();
        if let Some(found) = kind(self.lock().at(version)).get(&key) {
            return Ok(found.clone());
        }
        let loaded = load.await?;
        let mut entries = self.lock();
        if entries.version == version && store.directory_version() == version {
            remember(kind(&mut entries), key, loaded.clone());
        }
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves plain maps behind, still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn connections(&self, store: &Store) -> Result<Vec<Connection>, StoreError> {
        let version = store.directory_version();
        if let Some(found) = &self.lock().at(version).connections {
            return Ok(found.clone());
        }
        let loaded = store.connections().await?;
        let mut entries = self.lock();
        if entries.version == version && store.directory_version() == version {
            entries.connections = Some(loaded.clone());
        }
        Ok(loaded)
    }

    /// Whether an admin restricted the person from writing through the hub: everyone
    /// restricted is read at once and kept, so each message's check is a lookup in memory.
    pub async fn is_restricted(&self, store: &Store, person: PersonId) -> Result<bool, StoreError> {
        let version = store.directory_version();
        if let Some(found) = &self.lock().at(version).restricted {
            return Ok(found.contains(&person));
        }
        let loaded: Arc<HashSet<PersonId>> =
            Arc::new(store.restricted_people().await?.into_iter().collect());
        let mut entries = self.lock();
        if entries.version == version && store.directory_version() == version {
            entries.restricted = Some(loaded.clone());
        }
        Ok(loaded.contains(&person))
    }

    /// The connection the hub has on a platform.
    pub async fn connection_on(
        &self,
        store: &Store,
        platform: Platform,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self
            .connections(store)
            .await?
            .into_iter()
            .find(|c| c.platform == platform))
    }

    /// The connection with its credentials, as platform modules need it.
    pub async fn context(
        &self,
        store: &Store,
        connection: ConnectionId,
    ) -> Result<Option<ConnectionContext>, StoreError> {
        self.cached(
            store,
            |e| &mut e.contexts,
            connection,
            crate::import::connection_context(store, connection),
        )
        .await
    }

    pub async fn webhook_secret(
        &self,
        store: &Store,
        connection: ConnectionId,
        name: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        self.cached(
            store,
            |e| &mut e.webhook_secrets,
            (connection, name.to_owned()),
            store.webhook_secret(connection, name),
        )
        .await
    }

    /// The event subscriptions held for a connection, which its webhooks are checked against.
    pub async fn subscriptions(
        &self,
        store: &Store,
        connection: ConnectionId,
    ) -> Result<Vec<EventSubscription>, StoreError> {
        self.cached(store, |e| &mut e.subscriptions, connection, async {
            Ok(store
                .event_subscriptions(connection)
                .await?
                .into_iter()
                .map(|subscription| EventSubscription {
                    id: subscription.id,
                    resource: subscription.resource,
                    expires_at: subscription.expires_at,
                })
                .collect())
        })
        .await
    }

    /// Who an account on a connection is (see [`Store::account_identity`]).
    pub async fn identity(
        &self,
        store: &Store,
        connection: ConnectionId,
        platform: Platform,
        account: &str,
    ) -> Result<Option<AccountIdentity>, StoreError> {
        self.cached(
            store,
            |e| &mut e.identities,
            (connection, platform, account.to_owned()),
            store.account_identity(connection, platform, account),
        )
        .await
    }

    /// How to act as a person's representation on a platform, once it is synced.
    pub async fn actor(
        &self,
        store: &Store,
        person: PersonId,
        platform: Platform,
    ) -> Result<Option<Actor>, StoreError> {
        self.cached(
            store,
            |e| &mut e.actors,
            (person, platform),
            load_actor(store, person, platform),
        )
        .await
    }

    pub async fn person(
        &self,
        store: &Store,
        person: PersonId,
    ) -> Result<Option<Person>, StoreError> {
        self.cached(store, |e| &mut e.people, person, store.person(person))
            .await
    }

    /// A person's own active account on a platform.
    pub async fn own_account(
        &self,
        store: &Store,
        person: PersonId,
        platform: Platform,
    ) -> Result<Option<String>, StoreError> {
        self.cached(store, |e| &mut e.own_accounts, (person, platform), async {
            Ok(store
                .own_account(person, platform)
                .await?
                .map(|(_, account)| account))
        })
        .await
    }

    pub async fn conversation(
        &self,
        store: &Store,
        conversation: ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        self.cached(
            store,
            |e| &mut e.conversations,
            conversation,
            store.conversation(conversation),
        )
        .await
    }

    pub async fn portal(
        &self,
        store: &Store,
        conversation: ConversationId,
        platform: Platform,
    ) -> Result<Option<Portal>, StoreError> {
        self.cached(
            store,
            |e| &mut e.portals,
            (conversation, platform),
            store.portal(conversation, platform),
        )
        .await
    }

    pub async fn portal_by_chat(
        &self,
        store: &Store,
        connection: ConnectionId,
        chat: &ExternalChatId,
    ) -> Result<Option<Portal>, StoreError> {
        self.cached(
            store,
            |e| &mut e.portals_by_chat,
            (connection, chat.clone()),
            store.portal_by_chat(connection, chat),
        )
        .await
    }
}

async fn load_actor(
    store: &Store,
    person: PersonId,
    platform: Platform,
) -> Result<Option<Actor>, StoreError> {
    let Some(representation) = store.representation(person, platform).await? else {
        return Ok(None);
    };
    let Some(account) = representation
        .external_account
        .filter(|_| representation.status == SyncStatus::Synced)
    else {
        return Ok(None);
    };
    let secrets = store.representation_secrets(person, platform).await?;
    let mut credentials = Credentials::default();
    for (name, secret) in secrets.secrets {
        credentials.insert(name, secret);
    }
    credentials.set_expires_at(secrets.expires_at);
    Ok(Some(Actor::Representation {
        account,
        credentials,
    }))
}
