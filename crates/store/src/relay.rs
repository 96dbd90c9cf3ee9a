//! What the relay keeps: the inbox of events as platforms delivered them, the outbox of copies
//! to send, the map from each relayed message to its copies, and the platforms' event
//! subscriptions.
//!
//! Delivery guarantees rest on three rules kept here. An event is stored before its delivery
//! is acknowledged, so a crash loses nothing. What the relay decides about an event (the copies
//! to send) is written in the same transaction that marks the event read and remembers it as
//! seen, so a redelivered or re-read event is acted on once. A copy leaves the outbox in the
//! same transaction that records it in the map.

use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    ConnectionId, ConversationId, ExternalChatId, PersonId, Platform, Portal, Timestamp,
};

use switchboard_secrets::SecretString;

use crate::connections::{parse, parse_optional};
use crate::{Backend, Store, StoreError};

/// A stored event not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub id: i64,
    pub connection_id: ConnectionId,
    pub event_id: String,
    pub payload: String,
    pub attempts: i64,
    /// When its delivery reached the hub (microseconds since the epoch).
    pub received_micros: Option<i64>,
}

/// What to do on a destination platform for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxAction {
    Post,
    Edit,
    Delete,
    React,
    Unreact,
}

impl OutboxAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            OutboxAction::Post => "post",
            OutboxAction::Edit => "edit",
            OutboxAction::Delete => "delete",
            OutboxAction::React => "react",
            OutboxAction::Unreact => "unreact",
        }
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        [
            OutboxAction::Post,
            OutboxAction::Edit,
            OutboxAction::Delete,
            OutboxAction::React,
            OutboxAction::Unreact,
        ]
        .into_iter()
        .find(|action| action.as_str() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown outbox action '{name}'")))
    }
}

/// A message on a platform, as the map and the outbox name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    pub platform: Platform,
    pub chat: ExternalChatId,
    pub message: String,
}

/// A copy to send, as the relay decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    pub conversation: ConversationId,
    pub platform: Platform,
    pub connection: ConnectionId,
    /// Whose representation sends the copy.
    pub sender: PersonId,
    /// The message the copy is of.
    pub origin: MessageKey,
    /// Where the copy goes in its lane: when the origin message was sent (microseconds since
    /// the epoch), so that a lane delivers in the order people wrote, not the order events
    /// arrived in.
    pub order: i64,
    pub action: OutboxAction,
    /// What the copy says, in the relay's own encoding.
    pub payload: String,
    /// Not sent before this time; `None` for at once.
    pub due_at: Option<Timestamp>,
    /// When the event it was decided from reached the hub (microseconds since the epoch), to
    /// measure the latency the hub adds; `None` for a message read back from a history.
    pub received_micros: Option<i64>,
}

impl NewOutboxItem {
    fn lane(&self) -> String {
        lane_of(self.conversation, self.platform)
    }
}

/// Copies to one conversation on one platform leave one at a time, in order: their lane.
fn lane_of(conversation: ConversationId, platform: Platform) -> String {
    format!("{conversation}/{}", platform.as_str())
}

/// What the relay decided about one event, recorded with [`Store::settle_events`].
#[derive(Debug, Clone, Copy)]
pub struct Settlement<'a> {
    /// The stored event to mark read, when it came from the inbox.
    pub inbox: Option<i64>,
    /// What makes the event unique (a message's id, an edit's version): an event whose key
    /// was remembered before is a repeat.
    pub seen: Option<(Platform, &'a str)>,
    /// A message written in a portal: (its connection, chat, when it was sent in microseconds).
    pub written: Option<(ConnectionId, &'a ExternalChatId, i64)>,
    pub copies: &'a [NewOutboxItem],
}

/// Rows written by one statement at most: far below both databases' limits on parameters
/// (SQLite 32,766; PostgreSQL 65,535) for the widest row.
const ROWS_PER_STATEMENT: usize = 1_000;

/// A statement whose text changes with its number of rows: not kept prepared, where it would
/// push the fixed statements out of each connection's cache.
fn rows_statement<'q>(sql: String) -> Query<'q> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false)
}

/// An event still fresh stays so only if its `seen` key was remembered just now (inserted,
/// not found there already).
fn keep_remembered(
    events: &[Settlement<'_>],
    fresh: &mut [bool],
    remembered: &std::collections::HashSet<(String, String)>,
) {
    for (event, fresh) in events.iter().zip(fresh.iter_mut()) {
        if let Some((platform, key)) = event.seen
            && *fresh
        {
            *fresh = remembered.contains(&(platform.as_str().to_owned(), key.to_owned()));
        }
    }
}

/// The latest message sent in each portal written in, as (connection, chat) → microseconds.
fn last_messages<'a>(events: &[Settlement<'a>]) -> Vec<((String, &'a str), i64)> {
    let mut last: std::collections::BTreeMap<(String, &str), i64> =
        std::collections::BTreeMap::new();
    for (connection, chat, micros) in events.iter().filter_map(|e| e.written) {
        let latest = last
            .entry((connection.to_string(), chat.as_str()))
            .or_insert(micros);
        *latest = (*latest).max(micros);
    }
    last.into_iter().collect()
}

/// Where [`Store::settle_events`] cuts a batch for PostgreSQL, as the end of each run of
/// events: each run's statement stays far below the limit on parameters (17 per copy, 6 per
/// event).
fn settlement_chunks(events: &[Settlement<'_>]) -> Vec<usize> {
    const COPIES_PER_STATEMENT: usize = ROWS_PER_STATEMENT / 17;
    let mut ends = Vec::new();
    let (mut start, mut copies) = (0, 0);
    for (index, event) in events.iter().enumerate() {
        if index > start
            && (copies + event.copies.len() > COPIES_PER_STATEMENT
                || index - start >= ROWS_PER_STATEMENT)
        {
            ends.push(index);
            (start, copies) = (index, 0);
        }
        copies += event.copies.len();
    }
    ends.push(events.len());
    ends
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds an outbox row's fourteen values, in the order of the outbox's insert statements.
fn bind_outbox_row<'q>(query: Query<'q>, copy: &'q NewOutboxItem, now: i64) -> Query<'q> {
    query
        .bind(copy.lane())
        .bind(copy.conversation.to_string())
        .bind(copy.platform.as_str())
        .bind(copy.connection.to_string())
        .bind(copy.sender.to_string())
        .bind(copy.origin.platform.as_str())
        .bind(copy.origin.chat.as_str())
        .bind(copy.origin.message.as_str())
        .bind(copy.order)
        .bind(copy.action.as_str())
        .bind(copy.payload.as_str())
        .bind(copy.due_at.map_or(now, Timestamp::unix_millis))
        .bind(now)
        .bind(copy.received_micros)
}

/// Binds the rows of lanes' latest posts: (lane, order).
fn bind_lane_rows<'q>(mut query: Query<'q>, lanes: &[(&'q str, i64)]) -> Query<'q> {
    for (lane, order) in lanes {
        query = query.bind(*lane).bind(*order);
    }
    query
}

/// Binds the message map's rows (ten values each) of delivered copies.
fn bind_map_rows<'q>(
    mut query: Query<'q>,
    copies: &[(&'q Delivered, &'q MessageKey)],
    now: i64,
) -> Query<'q> {
    for (delivered, copy) in copies {
        query = query
            .bind(delivered.origin.platform.as_str())
            .bind(delivered.origin.chat.as_str())
            .bind(delivered.origin.message.as_str())
            .bind(delivered.conversation.to_string())
            .bind(delivered.sender.to_string())
            .bind(copy.platform.as_str())
            .bind(delivered.connection.to_string())
            .bind(copy.chat.as_str())
            .bind(copy.message.as_str())
            .bind(now);
    }
    query
}

/// `($1, $2, $3), ($4, $5, $6)…` for `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    placeholders_from(0, rows, columns)
}

/// Like [`placeholders`], numbered from `$(after + 1)`.
fn placeholders_from(after: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=columns)
                .map(|column| format!("${}", after + row * columns + column))
                .collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A webhook delivery's items, waiting to be stored with others.
pub(crate) struct InboundDelivery {
    connection: ConnectionId,
    /// (event id, payload)
    items: Vec<(String, String)>,
    received_micros: i64,
}

/// A delivered copy, waiting to be recorded with others.
pub(crate) struct Delivered {
    id: i64,
    origin: MessageKey,
    conversation: ConversationId,
    sender: PersonId,
    connection: ConnectionId,
    copy: Option<MessageKey>,
    /// For a post: its lane and place there, which becomes the lane's latest post.
    posted: Option<(String, i64)>,
}

/// Copies the relay made on one day (UTC) on one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCopies {
    /// Days since 1970-01-01.
    pub day: i64,
    pub platform: Platform,
    pub copies: i64,
}

/// A message a person had relayed, and when its copy was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedBy {
    pub copy: RelayedCopy,
    pub at: Timestamp,
}

/// A copy waiting in the outbox, leased to whoever took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub conversation: ConversationId,
    pub platform: Platform,
    pub connection: ConnectionId,
    pub sender: PersonId,
    pub origin: MessageKey,
    pub action: OutboxAction,
    pub payload: String,
    /// Attempts that failed, not counting those the platform throttled.
    pub attempts: i64,
    /// When the copy was queued.
    pub created_at: Timestamp,
    /// Its place in its lane: when the origin message was sent (microseconds), or for an
    /// edit, deletion or reaction, when it was routed.
    pub order: i64,
    /// The place of the latest post delivered in the same lane, if any.
    pub lane_last_posted: Option<i64>,
    /// Set when an earlier attempt may have reached the platform (the hub stopped during it,
    /// or it failed in a way that leaves the outcome unknown): when that attempt started.
    pub maybe_sent_since: Option<Timestamp>,
    /// When the event it was decided from reached the hub (microseconds since the epoch).
    pub received_micros: Option<i64>,
}

impl OutboxItem {
    /// A post whose lane delivered a newer message already: its origin's event reached the
    /// hub late (a platform's retry), so the copy lands below messages written after it.
    pub fn is_late(&self) -> bool {
        self.action == OutboxAction::Post
            && self.lane_last_posted.is_some_and(|last| last > self.order)
    }
}

/// A copy that could not be delivered after the last retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub last_error: String,
    pub dead_at: Timestamp,
}

/// What the relay has to do, at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayCounts {
    /// Events stored and not read yet.
    pub inbox: i64,
    /// Copies waiting to be sent, first attempts and retries.
    pub outbox: i64,
    /// Of those, copies that failed at least once (retrying, or held for a sync).
    pub retrying: i64,
    pub dead_letters: i64,
}

/// A relayed message and one of its copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedCopy {
    pub origin: MessageKey,
    pub conversation: ConversationId,
    pub sender: PersonId,
    pub copy: MessageKey,
    pub copy_connection: ConnectionId,
}

/// A subscription through which a platform delivers a connection's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: String,
    pub resource: String,
    pub expires_at: Timestamp,
}

/// How an account relates to the people the hub knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountIdentity {
    /// A person's own account.
    Person(PersonId),
    /// The account that represents a person on this platform (a guest, a bot, or the person's
    /// own account they authorised the hub to act as).
    Representation(PersonId),
}

impl AccountIdentity {
    pub const fn person(self) -> PersonId {
        match self {
            AccountIdentity::Person(person) | AccountIdentity::Representation(person) => person,
        }
    }
}

const OUTBOX_COLUMNS: &str = "id, conversation_id, platform, connection_id, sender_person_id, \
     origin_platform, origin_chat, origin_message, origin_order, action, payload, attempts, \
     created_at, leased_at, received_micros";

/// A copy `o` that may be sent now (`$1` the time in milliseconds): due, not taken, the first
/// undelivered one of its lane, and no other copy of its lane is in flight.
const LEASABLE: &str = "o.dead_at IS NULL AND o.next_attempt_at <= $1 \
     AND (o.lease_until IS NULL OR o.lease_until < $1) \
     AND NOT EXISTS (SELECT 1 FROM relay_outbox h WHERE h.lane = o.lane \
         AND h.dead_at IS NULL AND h.id <> o.id \
         AND (h.origin_order < o.origin_order \
              OR (h.origin_order = o.origin_order AND h.id < o.id) \
              OR h.lease_until >= $1))";

const COPY_COLUMNS: &str = "origin_platform, origin_chat, origin_message, conversation_id, \
     sender_person_id, copy_platform, copy_connection_id, copy_chat, copy_message";

impl Store {
    /// Stores the items of a delivery that reached the hub at `received_micros` (microseconds
    /// since the epoch), each once however often it is delivered; returns how many were new.
    /// Committed together with the deliveries stored at the same time.
    pub async fn store_inbound(
        &self,
        connection: ConnectionId,
        items: &[(&str, &str)],
        received_micros: i64,
    ) -> Result<usize, StoreError> {
        let delivery = InboundDelivery {
            connection,
            items: items
                .iter()
                .map(|&(event, payload)| (event.to_owned(), payload.to_owned()))
                .collect(),
            received_micros,
        };
        let store = self.clone();
        self.inbound
            .write(delivery, |deliveries| async move {
                store.store_inbound_together(deliveries).await
            })
            .await
    }

    async fn store_inbound_together(
        &self,
        deliveries: Vec<InboundDelivery>,
    ) -> Result<Vec<usize>, StoreError> {
        let now = self.now().unix_millis();
        let rows: Vec<(&InboundDelivery, &(String, String))> = deliveries
            .iter()
            .flat_map(|delivery| delivery.items.iter().map(move |item| (delivery, item)))
            .collect();
        let mut stored = std::collections::HashSet::new();
        let chunks: Vec<_> = rows.chunks(ROWS_PER_STATEMENT / 6).collect();
        // One statement is a transaction of its own; more need one around them.
        let mut tx = match (chunks.len(), self.backend) {
            (0 | 1, _) => None,
            (_, Backend::Sqlite) => Some(self.ingest.begin_with("BEGIN IMMEDIATE").await?),
            (_, Backend::Postgres) => Some(self.ingest.begin().await?),
        };
        for chunk in chunks {
            let mut query = rows_statement(format!(
                "INSERT INTO relay_inbox (connection_id, event_id, payload, received_at, \
                 next_attempt_at, received_micros) VALUES {} \
                 ON CONFLICT (connection_id, event_id) DO NOTHING \
                 RETURNING connection_id, event_id",
                placeholders(chunk.len(), 6)
            ));
            for (delivery, (event, payload)) in chunk {
                query = query
                    .bind(delivery.connection.to_string())
                    .bind(event.as_str())
                    .bind(payload.as_str())
                    .bind(now)
                    .bind(now)
                    .bind(delivery.received_micros);
            }
            let inserted = match &mut tx {
                Some(tx) => query.fetch_all(&mut **tx).await?,
                None => query.fetch_all(&self.ingest).await?,
            };
            for row in inserted {
                stored.insert((
                    row.try_get::<String, _>("connection_id")?,
                    row.try_get::<String, _>("event_id")?,
                ));
            }
        }
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        // Each new event counts for the first delivery that had it.
        Ok(deliveries
            .iter()
            .map(|delivery| {
                let connection = delivery.connection.to_string();
                delivery
                    .items
                    .iter()
                    .filter(|(event, _)| stored.remove(&(connection.clone(), event.clone())))
                    .count()
            })
            .collect())
    }

    /// Stored events due to be read, oldest first.
    pub async fn due_inbound(&self, limit: i64) -> Result<Vec<InboxItem>, StoreError> {
        sqlx::query(
            "SELECT id, connection_id, event_id, payload, attempts, received_micros \
             FROM relay_inbox \
             WHERE payload IS NOT NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(self.now().unix_millis())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(InboxItem {
                id: row.try_get("id")?,
                connection_id: parse(row, "connection_id")?,
                event_id: row.try_get("event_id")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
                received_micros: row.try_get("received_micros")?,
            })
        })
        .collect()
    }

    /// Reading an event failed for now: it is read again at `retry_at`.
    pub async fn inbound_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE relay_inbox SET attempts = attempts + 1, last_error = $1, \
             next_attempt_at = $2 WHERE id = $3",
        )
        .bind(error)
        .bind(retry_at.unix_millis())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records what the relay decided about a stored event, in one transaction: the event is
    /// marked read (its content dropped), `seen` (what makes it unique: a message's id, an
    /// edit's version) is remembered, and the copies are queued — unless `seen` was already
    /// remembered, in which case the event is a repeat and nothing is queued. `written` notes
    /// when the last message of a portal was sent. Returns whether the copies were queued.
    pub async fn settle_inbound(
        &self,
        id: i64,
        seen: Option<(Platform, &str)>,
        copies: &[NewOutboxItem],
    ) -> Result<bool, StoreError> {
        self.settle_event(Some(id), seen, None, copies).await
    }

    /// Like [`Store::settle_inbound`], for an event read from elsewhere than the inbox (a
    /// portal's history, read after a stop) when `inbox` is `None`, and noting in `written`
    /// (portal connection, chat, microseconds) when the portal's last message was sent.
    pub async fn settle_event(
        &self,
        inbox: Option<i64>,
        seen: Option<(Platform, &str)>,
        written: Option<(ConnectionId, &ExternalChatId, i64)>,
        copies: &[NewOutboxItem],
    ) -> Result<bool, StoreError> {
        let settled = self
            .settle_events(&[Settlement {
                inbox,
                seen,
                written,
                copies,
            }])
            .await?;
        Ok(settled[0])
    }

    /// Records what the relay decided about several events, in the order decided, in a few
    /// statements whatever their number (each statement is a round trip to the database,
    /// which costs more than the work). Returns, for each, whether it was acted on: `false`
    /// for a repeat — its `seen` key remembered before, or taken by an earlier event of the
    /// same call — whose copies were not queued.
    pub async fn settle_events(&self, events: &[Settlement<'_>]) -> Result<Vec<bool>, StoreError> {
        let now = self.now().unix_millis();
        let mut fresh = vec![true; events.len()];
        let mut keys = std::collections::HashSet::new();
        for (event, fresh) in events.iter().zip(&mut fresh) {
            if let Some(key) = event.seen {
                *fresh = keys.insert(key);
            }
        }
        match self.backend {
            Backend::Sqlite => self.settle_in_transaction(events, &mut fresh, now).await?,
            Backend::Postgres => {
                let mut start = 0;
                for end in settlement_chunks(events) {
                    self.settle_in_one_statement(&events[start..end], &mut fresh[start..end], now)
                        .await?;
                    start = end;
                }
            }
        }
        Ok(fresh)
    }

    /// SQLite: one transaction of a statement per table (SQLite has no data-modifying `WITH`).
    async fn settle_in_transaction(
        &self,
        events: &[Settlement<'_>],
        fresh: &mut [bool],
        now: i64,
    ) -> Result<(), StoreError> {
        let keys: std::collections::HashSet<(Platform, &str)> = events
            .iter()
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .filter_map(|(event, _)| event.seen)
            .collect();
        let mut tx = self.begin_redoable_write().await?;
        let read: Vec<String> = events
            .iter()
            .filter_map(|e| e.inbox.map(|id| id.to_string()))
            .collect();
        for chunk in read.chunks(ROWS_PER_STATEMENT) {
            // The ids are integers the database gave.
            rows_statement(format!(
                "UPDATE relay_inbox SET payload = NULL, last_error = NULL WHERE id IN ({})",
                chunk.join(", ")
            ))
            .execute(&mut *tx)
            .await?;
        }
        let last_messages = last_messages(events);
        for chunk in last_messages.chunks(ROWS_PER_STATEMENT) {
            let mut query = rows_statement(format!(
                "UPDATE portals SET last_message_micros = v.column3 FROM (VALUES {}) AS v \
                 WHERE portals.connection_id = v.column1 AND portals.external_chat_id = v.column2 \
                 AND (portals.last_message_micros IS NULL \
                      OR portals.last_message_micros < v.column3)",
                placeholders(chunk.len(), 3)
            ));
            for ((connection, chat), micros) in chunk {
                query = query.bind(connection.as_str()).bind(*chat).bind(*micros);
            }
            query.execute(&mut *tx).await?;
        }
        let keys: Vec<(Platform, &str)> = keys.into_iter().collect();
        let mut remembered = std::collections::HashSet::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut query = rows_statement(format!(
                "INSERT INTO relay_seen (platform, key, seen_at) VALUES {} \
                 ON CONFLICT (platform, key) DO NOTHING RETURNING platform, key",
                placeholders(chunk.len(), 3)
            ));
            for (platform, key) in chunk {
                query = query.bind(platform.as_str()).bind(*key).bind(now);
            }
            for row in query.fetch_all(&mut *tx).await? {
                remembered.insert((
                    row.try_get::<String, _>("platform")?,
                    row.try_get::<String, _>("key")?,
                ));
            }
        }
        keep_remembered(events, fresh, &remembered);
        let copies: Vec<&NewOutboxItem> = events
            .iter()
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .flat_map(|(event, _)| event.copies)
            .collect();
        for chunk in copies.chunks(ROWS_PER_STATEMENT / 14) {
            let mut query = rows_statement(format!(
                "INSERT INTO relay_outbox (lane, conversation_id, platform, connection_id, \
                 sender_person_id, origin_platform, origin_chat, origin_message, origin_order, \
                 action, payload, next_attempt_at, created_at, received_micros) VALUES {}",
                placeholders(chunk.len(), 14)
            ));
            for copy in chunk {
                query = bind_outbox_row(query, copy, now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL: the events' whole record in one statement, one round trip. The copies of
    /// an event with a `seen` key are queued only when the key's insertion in the same
    /// statement returned it (data-modifying `WITH` parts see each other's `RETURNING`).
    async fn settle_in_one_statement(
        &self,
        events: &[Settlement<'_>],
        fresh: &mut [bool],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut parts = Vec::new();
        let mut next = 0;
        let mut numbers = |count: usize| {
            let row: Vec<String> = (next + 1..=next + count).map(|n| format!("${n}")).collect();
            next += count;
            format!("({})", row.join(", "))
        };
        let read: Vec<String> = events
            .iter()
            .filter_map(|e| e.inbox.map(|id| id.to_string()))
            .collect();
        if !read.is_empty() {
            // The ids are integers the database gave.
            parts.push(format!(
                "read AS (UPDATE relay_inbox SET payload = NULL, last_error = NULL \
                 WHERE id IN ({}))",
                read.join(", ")
            ));
        }
        let last_messages = last_messages(events);
        if !last_messages.is_empty() {
            let rows: Vec<String> = last_messages.iter().map(|_| numbers(3)).collect();
            parts.push(format!(
                "written AS (UPDATE portals SET last_message_micros = v.micros \
                 FROM (VALUES {}) AS v (connection_id, chat, micros) \
                 WHERE portals.connection_id = v.connection_id \
                 AND portals.external_chat_id = v.chat \
                 AND (portals.last_message_micros IS NULL \
                      OR portals.last_message_micros < v.micros))",
                rows.join(", ")
            ));
        }
        let keys: Vec<(Platform, &str)> = events
            .iter()
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .filter_map(|(event, _)| event.seen)
            .collect();
        if keys.is_empty() {
            parts.push("seen AS (SELECT ''::text AS platform, ''::text AS key WHERE false)".into());
        } else {
            let rows: Vec<String> = keys.iter().map(|_| numbers(3)).collect();
            parts.push(format!(
                "seen AS (INSERT INTO relay_seen (platform, key, seen_at) VALUES {} \
                 ON CONFLICT (platform, key) DO NOTHING RETURNING platform, key)",
                rows.join(", ")
            ));
        }
        let copies: Vec<(Option<(Platform, &str)>, &NewOutboxItem)> = events
            .iter()
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .flat_map(|(event, _)| event.copies.iter().map(|copy| (event.seen, copy)))
            .collect();
        if !copies.is_empty() {
            let rows: Vec<String> = copies.iter().map(|_| numbers(17)).collect();
            // Inserted in the order decided: the identity breaks ties within a lane.
            parts.push(format!(
                "queued AS (INSERT INTO relay_outbox (lane, conversation_id, platform, \
                 connection_id, sender_person_id, origin_platform, origin_chat, origin_message, \
                 origin_order, action, payload, next_attempt_at, created_at, received_micros) \
                 SELECT lane, conversation_id, platform, connection_id, sender_person_id, \
                 origin_platform, origin_chat, origin_message, origin_order, action, payload, \
                 next_attempt_at, created_at, received_micros \
                 FROM (VALUES {}) AS c (position, seen_platform, seen_key, lane, conversation_id, \
                 platform, connection_id, sender_person_id, origin_platform, origin_chat, \
                 origin_message, origin_order, action, payload, next_attempt_at, created_at, \
                 received_micros) \
                 WHERE c.seen_key IS NULL OR EXISTS (SELECT 1 FROM seen \
                     WHERE seen.platform = c.seen_platform AND seen.key = c.seen_key) \
                 ORDER BY c.position)",
                rows.join(", ")
            ));
        }
        let mut query = rows_statement(format!(
            "WITH {} SELECT platform, key FROM seen",
            parts.join(", ")
        ));
        for ((connection, chat), micros) in &last_messages {
            query = query.bind(connection.clone()).bind(*chat).bind(*micros);
        }
        for (platform, key) in &keys {
            query = query.bind(platform.as_str()).bind(*key).bind(now);
        }
        for (position, (seen, copy)) in (0_i64..).zip(&copies) {
            query = query
                .bind(position)
                .bind(seen.map(|(platform, _)| platform.as_str()))
                .bind(seen.map(|(_, key)| key));
            query = bind_outbox_row(query, copy, now);
        }
        let remembered: std::collections::HashSet<(String, String)> = query
            .fetch_all(&self.redoable)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("platform")?, row.try_get("key")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        keep_remembered(events, fresh, &remembered);
        Ok(())
    }

    /// Takes up to `limit` copies that are due, each the first undelivered one of its lane (in
    /// lane order) in a lane with none in flight, and leases them until `lease_until`: nobody
    /// else takes them before then.
    pub async fn lease_outbox(
        &self,
        limit: i64,
        lease_until: Timestamp,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let now = self.now().unix_millis();
        if self.backend == Backend::Postgres {
            return self
                .lease_outbox_in_one_statement(limit, lease_until, now)
                .await;
        }
        let candidates = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS}, l.last_posted_order AS lane_last_posted \
             FROM relay_outbox o LEFT JOIN relay_lanes l ON l.lane = o.lane WHERE {LEASABLE} \
             ORDER BY o.next_attempt_at, o.id LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        if candidates.is_empty() {
            return Ok(candidates);
        }
        // All taken in one statement (the ids are integers the database gave); a copy someone
        // else took meanwhile is left out.
        let ids = candidates
            .iter()
            .map(|item| item.id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let taken: std::collections::HashSet<i64> = rows_statement(format!(
            "UPDATE relay_outbox SET lease_until = $1, leased_at = $2 WHERE id IN ({ids}) \
             AND (lease_until IS NULL OR lease_until < $2) RETURNING id"
        ))
        .bind(lease_until.unix_millis())
        .bind(now)
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()?;
        let leased: Vec<OutboxItem> = candidates
            .into_iter()
            .filter(|item| taken.contains(&item.id))
            .collect();
        Ok(leased)
    }

    /// PostgreSQL: chosen and taken in one statement. What is returned is each copy as it was
    /// before it was taken (the self-join reads the statement's snapshot): its `leased_at`
    /// says since when an earlier attempt may have posted it.
    async fn lease_outbox_in_one_statement(
        &self,
        limit: i64,
        lease_until: Timestamp,
        now: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let before: Vec<String> = OUTBOX_COLUMNS
            .split(", ")
            .map(|column| format!("before.{column}"))
            .collect();
        let mut leased = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH due AS (SELECT o.id FROM relay_outbox o WHERE {LEASABLE} \
                 ORDER BY o.next_attempt_at, o.id LIMIT $2) \
             UPDATE relay_outbox AS taken SET lease_until = $3, leased_at = $1 \
             FROM relay_outbox AS before LEFT JOIN relay_lanes AS l ON l.lane = before.lane \
             WHERE taken.id IN (SELECT id FROM due) AND before.id = taken.id \
             AND (taken.lease_until IS NULL OR taken.lease_until < $1) \
             RETURNING {}, l.last_posted_order AS lane_last_posted",
            before.join(", ")
        )))
        .bind(now)
        .bind(limit)
        .bind(lease_until.unix_millis())
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(outbox_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        leased.sort_by_key(|item| item.id);
        Ok(leased)
    }

    /// A copy was delivered: it leaves the outbox, and the copy it made (if any: a deletion
    /// or a reaction makes none) enters the map, in one transaction — committed together with
    /// the copies delivered at the same time.
    pub async fn outbox_delivered(
        &self,
        item: &OutboxItem,
        copy: Option<&MessageKey>,
    ) -> Result<(), StoreError> {
        let delivered = Delivered {
            id: item.id,
            origin: item.origin.clone(),
            conversation: item.conversation,
            sender: item.sender,
            connection: item.connection,
            copy: copy.cloned(),
            posted: (item.action == OutboxAction::Post)
                .then(|| (lane_of(item.conversation, item.platform), item.order)),
        };
        let store = self.clone();
        self.delivered
            .write(delivered, |delivered| async move {
                store.outbox_delivered_together(delivered).await
            })
            .await
    }

    async fn outbox_delivered_together(
        &self,
        delivered: Vec<Delivered>,
    ) -> Result<Vec<()>, StoreError> {
        let now = self.now().unix_millis();
        // SQLite: a transaction of a statement per table for each run of copies; PostgreSQL:
        // one statement per run (data-modifying `WITH` parts), each whole by itself.
        let mut tx = match self.backend {
            Backend::Sqlite => Some(self.begin_redoable_write().await?),
            Backend::Postgres => None,
        };
        for chunk in delivered.chunks(ROWS_PER_STATEMENT / 10) {
            // The ids are integers the database gave.
            let ids: Vec<String> = chunk.iter().map(|d| d.id.to_string()).collect();
            let delete = format!("DELETE FROM relay_outbox WHERE id IN ({})", ids.join(", "));
            let copies: Vec<(&Delivered, &MessageKey)> = chunk
                .iter()
                .filter_map(|d| d.copy.as_ref().map(|copy| (d, copy)))
                .collect();
            let mut lanes: std::collections::BTreeMap<&str, i64> =
                std::collections::BTreeMap::new();
            for (lane, order) in chunk.iter().filter_map(|d| d.posted.as_ref()) {
                let latest = lanes.entry(lane.as_str()).or_insert(*order);
                *latest = (*latest).max(*order);
            }
            // In one statement the parameters run on from one part to the next.
            let first_lane_parameter = match tx {
                Some(_) => 0,
                None => copies.len() * 10,
            };
            let map = (!copies.is_empty()).then(|| {
                format!(
                    "INSERT INTO relayed_messages (origin_platform, origin_chat, origin_message, \
                     conversation_id, sender_person_id, copy_platform, copy_connection_id, \
                     copy_chat, copy_message, created_at) VALUES {} \
                     ON CONFLICT (origin_platform, origin_chat, origin_message, copy_platform) \
                     DO NOTHING",
                    placeholders(copies.len(), 10)
                )
            });
            let latest = (!lanes.is_empty()).then(|| {
                format!(
                    "INSERT INTO relay_lanes (lane, last_posted_order) VALUES {} \
                     ON CONFLICT (lane) DO UPDATE SET last_posted_order = CASE \
                     WHEN excluded.last_posted_order > relay_lanes.last_posted_order \
                     THEN excluded.last_posted_order ELSE relay_lanes.last_posted_order END",
                    placeholders_from(first_lane_parameter, lanes.len(), 2)
                )
            });
            let lanes: Vec<(&str, i64)> = lanes.into_iter().collect();
            match &mut tx {
                Some(tx) => {
                    rows_statement(delete).execute(&mut **tx).await?;
                    if let Some(map) = map {
                        bind_map_rows(rows_statement(map), &copies, now)
                            .execute(&mut **tx)
                            .await?;
                    }
                    if let Some(latest) = latest {
                        bind_lane_rows(rows_statement(latest), &lanes)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                None => {
                    let mut parts: Vec<String> =
                        [Some(delete), map, latest].into_iter().flatten().collect();
                    let last = parts.pop().unwrap_or_default();
                    let statement = if parts.is_empty() {
                        last
                    } else {
                        let named: Vec<String> = parts
                            .iter()
                            .enumerate()
                            .map(|(n, part)| format!("part{n} AS ({part})"))
                            .collect();
                        format!("WITH {} {last}", named.join(", "))
                    };
                    bind_lane_rows(
                        bind_map_rows(rows_statement(statement), &copies, now),
                        &lanes,
                    )
                    .execute(&self.redoable)
                    .await?;
                }
            }
        }
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(vec![(); delivered.len()])
    }

    /// A delivery attempt failed: tried again at `retry_at`, or — `retry_at` being `None` —
    /// dead-lettered for an admin to see and retry. `maybe_sent_since` is when the earliest
    /// attempt that may have reached the platform all the same (a timeout, a server error, a
    /// stop) started, `None` when none may have: the next attempt looks for what was posted
    /// since then before posting again.
    pub async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
        maybe_sent_since: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.outbox_attempted(id, error, retry_at, maybe_sent_since, 1)
            .await
    }

    /// The platform throttled a delivery attempt: tried again at `retry_at`, when it asked.
    /// Unlike [`Store::outbox_failed`], the attempt does not count towards the copy's
    /// failures: a chat held at its rate limit keeps its whole retry budget for real failures.
    pub async fn outbox_throttled(
        &self,
        id: i64,
        error: &str,
        retry_at: Timestamp,
        maybe_sent_since: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.outbox_attempted(id, error, Some(retry_at), maybe_sent_since, 0)
            .await
    }

    /// An attempt that did not deliver the copy, counted as `failures` (0 or 1).
    async fn outbox_attempted(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
        maybe_sent_since: Option<Timestamp>,
        failures: i64,
    ) -> Result<(), StoreError> {
        let now = self.now().unix_millis();
        sqlx::query(
            "UPDATE relay_outbox SET attempts = attempts + $1, last_error = $2, \
             lease_until = NULL, next_attempt_at = $3, dead_at = $4, leased_at = $5 WHERE id = $6",
        )
        .bind(failures)
        .bind(error)
        .bind(retry_at.map_or(now, Timestamp::unix_millis))
        .bind(retry_at.is_none().then_some(now))
        .bind(maybe_sent_since.map(Timestamp::unix_millis))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// After a restart: the copies a stopped hub had taken are free again, and each is marked
    /// as maybe sent (its attempt may have reached the platform before the hub stopped). A hub
    /// owns its database alone; several hubs on one database would need lease owners.
    pub async fn recover_outbox(&self) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("UPDATE relay_outbox SET lease_until = NULL WHERE lease_until IS NOT NULL")
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    /// The copies made since `since`, per day and destination platform, oldest day first.
    pub async fn copies_per_day(&self, since: Timestamp) -> Result<Vec<DailyCopies>, StoreError> {
        sqlx::query(
            "SELECT created_at / 86400000 AS day, copy_platform, COUNT(*) AS copies \
             FROM relayed_messages WHERE created_at >= $1 \
             GROUP BY created_at / 86400000, copy_platform ORDER BY day, copy_platform",
        )
        .bind(since.unix_millis())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(DailyCopies {
                day: row.try_get("day")?,
                platform: parse(row, "copy_platform")?,
                copies: row.try_get("copies")?,
            })
        })
        .collect()
    }

    /// How many people had a message relayed since `since`.
    pub async fn active_senders(&self, since: Timestamp) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(DISTINCT sender_person_id) AS people FROM relayed_messages \
             WHERE created_at >= $1",
        )
        .bind(since.unix_millis())
        .fetch_one(&self.pool)
        .await?
        .try_get("people")?)
    }

    /// The copies of a person's most recently relayed messages, newest first.
    pub async fn relayed_by(
        &self,
        person: PersonId,
        limit: i64,
    ) -> Result<Vec<RelayedBy>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COPY_COLUMNS}, created_at FROM relayed_messages \
             WHERE sender_person_id = $1 ORDER BY created_at DESC LIMIT $2"
        )))
        .bind(person.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(RelayedBy {
                copy: copy_from_row(row)?,
                at: Timestamp::from_unix_millis(row.try_get("created_at")?),
            })
        })
        .collect()
    }

    /// When the last message written in a chat was sent (microseconds), if it is a portal the
    /// relay has seen a message in.
    pub async fn last_message_in(
        &self,
        connection: ConnectionId,
        chat: &ExternalChatId,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query(
            "SELECT last_message_micros FROM portals WHERE connection_id = $1 \
             AND external_chat_id = $2",
        )
        .bind(connection.to_string())
        .bind(chat.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| row.try_get::<Option<i64>, _>("last_message_micros"))
        .transpose()?
        .flatten())
    }

    /// The portals a message was written in since `since_micros`, with when the last one was
    /// sent: those whose history the relay reads after a stop.
    pub async fn portals_active_since(
        &self,
        since_micros: i64,
    ) -> Result<Vec<(Portal, i64)>, StoreError> {
        sqlx::query(
            "SELECT id, conversation_id, platform, connection_id, external_chat_id, \
             last_message_micros FROM portals WHERE last_message_micros >= $1",
        )
        .bind(since_micros)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                Portal {
                    id: parse(row, "id")?,
                    conversation_id: parse(row, "conversation_id")?,
                    platform: parse(row, "platform")?,
                    connection_id: parse(row, "connection_id")?,
                    external_chat_id: ExternalChatId::new(
                        row.try_get::<String, _>("external_chat_id")?,
                    ),
                },
                row.try_get("last_message_micros")?,
            ))
        })
        .collect()
    }

    /// Makes the copies held for a person's sync due now (their sync completed).
    pub async fn release_held(&self, sender: PersonId) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE relay_outbox SET next_attempt_at = $1 WHERE sender_person_id = $2 \
             AND dead_at IS NULL AND attempts > 0 AND next_attempt_at > $1",
        )
        .bind(self.now().unix_millis())
        .bind(sender.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    pub async fn relay_counts(&self) -> Result<RelayCounts, StoreError> {
        let inbox = sqlx::query("SELECT COUNT(*) AS n FROM relay_inbox WHERE payload IS NOT NULL")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, \
             COALESCE(SUM(CASE WHEN attempts > 0 AND dead_at IS NULL THEN 1 ELSE 0 END), 0) AS retrying, \
             COALESCE(SUM(CASE WHEN dead_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS dead \
             FROM relay_outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        let dead_letters: i64 = row.try_get("dead")?;
        Ok(RelayCounts {
            inbox,
            outbox: row.try_get::<i64, _>("n")? - dead_letters,
            retrying: row.try_get("retrying")?,
            dead_letters,
        })
    }

    /// Copies given up on, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS}, last_error, dead_at, l.last_posted_order AS lane_last_posted \
             FROM relay_outbox o LEFT JOIN relay_lanes l ON l.lane = o.lane \
             WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, id DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(DeadLetter {
                item: outbox_from_row(row)?,
                last_error: row
                    .try_get::<Option<String>, _>("last_error")?
                    .unwrap_or_default(),
                dead_at: Timestamp::from_unix_millis(row.try_get("dead_at")?),
            })
        })
        .collect()
    }

    /// Puts a dead letter back in its lane, to be tried again at once with fresh retries.
    pub async fn retry_dead_letter(&self, id: i64) -> Result<(), StoreError> {
        let revived = sqlx::query(
            "UPDATE relay_outbox SET dead_at = NULL, attempts = 0, next_attempt_at = $1, \
             lease_until = NULL WHERE id = $2 AND dead_at IS NOT NULL",
        )
        .bind(self.now().unix_millis())
        .bind(id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if revived == 0 {
            return Err(StoreError::NotFound {
                kind: "dead letter",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// The copies of a message the hub relayed.
    pub async fn copies_of(&self, origin: &MessageKey) -> Result<Vec<RelayedCopy>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COPY_COLUMNS} FROM relayed_messages WHERE origin_platform = $1 \
             AND origin_chat = $2 AND origin_message = $3"
        )))
        .bind(origin.platform.as_str())
        .bind(origin.chat.as_str())
        .bind(origin.message.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(copy_from_row)
        .collect()
    }

    /// The relayed message that `copy` is a copy of, if it is one.
    pub async fn relayed_copy(&self, copy: &MessageKey) -> Result<Option<RelayedCopy>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COPY_COLUMNS} FROM relayed_messages WHERE copy_platform = $1 \
             AND copy_chat = $2 AND copy_message = $3"
        )))
        .bind(copy.platform.as_str())
        .bind(copy.chat.as_str())
        .bind(copy.message.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(copy_from_row)
        .transpose()
    }

    /// Who an account on `connection` is: a person's own account, a representation, or
    /// nobody the hub knows. A person's own account that they authorised the hub to act as is
    /// their representation.
    pub async fn account_identity(
        &self,
        connection: ConnectionId,
        platform: Platform,
        external_id: &str,
    ) -> Result<Option<AccountIdentity>, StoreError> {
        if let Some(row) = sqlx::query(
            "SELECT person_id FROM representations WHERE platform = $1 AND external_id = $2 \
             AND status = 'synced'",
        )
        .bind(platform.as_str())
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?
        {
            return Ok(Some(AccountIdentity::Representation(parse(
                &row,
                "person_id",
            )?)));
        }
        let row = sqlx::query(
            "SELECT person_id FROM accounts WHERE platform = $1 AND connection_id = $2 \
             AND external_id = $3 AND kind = 'human'",
        )
        .bind(platform.as_str())
        .bind(connection.to_string())
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => {
                parse_optional::<PersonId>(&row, "person_id")?.map(AccountIdentity::Person)
            }
            None => None,
        })
    }

    /// A person's own active account on a platform, if they have one.
    pub async fn own_account(
        &self,
        person: PersonId,
        platform: Platform,
    ) -> Result<Option<(ConnectionId, String)>, StoreError> {
        sqlx::query(
            "SELECT connection_id, external_id FROM accounts WHERE person_id = $1 \
             AND platform = $2 AND kind = 'human' AND active = 1 ORDER BY updated_at DESC",
        )
        .bind(person.to_string())
        .bind(platform.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| Ok((parse(&row, "connection_id")?, row.try_get("external_id")?)))
        .transpose()
    }

    /// The subscriptions through which a connection's events arrive.
    pub async fn event_subscriptions(
        &self,
        connection: ConnectionId,
    ) -> Result<Vec<StoredSubscription>, StoreError> {
        sqlx::query(
            "SELECT subscription_id, resource, expires_at FROM event_subscriptions \
             WHERE connection_id = $1 ORDER BY expires_at",
        )
        .bind(connection.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(StoredSubscription {
                id: row.try_get("subscription_id")?,
                resource: row.try_get("resource")?,
                expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
            })
        })
        .collect()
    }

    /// Replaces what is known of a connection's subscriptions.
    pub async fn replace_event_subscriptions(
        &self,
        connection: ConnectionId,
        subscriptions: &[StoredSubscription],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM event_subscriptions WHERE connection_id = $1")
            .bind(connection.to_string())
            .execute(&mut *tx)
            .await?;
        for subscription in subscriptions {
            sqlx::query(
                "INSERT INTO event_subscriptions (connection_id, subscription_id, resource, \
                 expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(connection.to_string())
            .bind(subscription.id.as_str())
            .bind(subscription.resource.as_str())
            .bind(subscription.expires_at.unix_millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the relay already acted on what `key` names.
    pub async fn seen_before(&self, platform: Platform, key: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 AS found FROM relay_seen WHERE platform = $1 AND key = $2")
                .bind(platform.as_str())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// The reactions last seen on a message, as `(user, emoji)`.
    pub async fn reactions_seen(
        &self,
        message: &MessageKey,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query(
            "SELECT user_id, emoji FROM message_reactions WHERE platform = $1 AND chat = $2 \
             AND message = $3 ORDER BY user_id, emoji",
        )
        .bind(message.platform.as_str())
        .bind(message.chat.as_str())
        .bind(message.message.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("user_id")?, row.try_get("emoji")?)))
        .collect()
    }

    /// Replaces the reactions seen on a message.
    pub async fn replace_reactions_seen(
        &self,
        message: &MessageKey,
        reactions: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM message_reactions WHERE platform = $1 AND chat = $2 AND message = $3",
        )
        .bind(message.platform.as_str())
        .bind(message.chat.as_str())
        .bind(message.message.as_str())
        .execute(&mut *tx)
        .await?;
        for (user, emoji) in reactions {
            sqlx::query(
                "INSERT INTO message_reactions (platform, chat, message, user_id, emoji) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(message.platform.as_str())
            .bind(message.chat.as_str())
            .bind(message.message.as_str())
            .bind(user.as_str())
            .bind(emoji.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keeps a secret that verifies webhooks sent on a representation's behalf.
    pub async fn put_webhook_secret(
        &self,
        connection: ConnectionId,
        name: &str,
        secret: &SecretString,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            let sealed = self
                .cipher
                .seal(secret, &webhook_secret_context(connection, name));
            sqlx::query(
                "INSERT INTO webhook_secrets (connection_id, name, sealed, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id, name) \
                 DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            )
            .bind(connection.to_string())
            .bind(name)
            .bind(sealed)
            .bind(self.now().unix_millis())
            .execute(&self.writer)
            .await?;
            Ok(())
        }
        .await;
        self.directory_changed();
        changed
    }

    pub async fn webhook_secret(
        &self,
        connection: ConnectionId,
        name: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT sealed FROM webhook_secrets WHERE connection_id = $1 AND name = $2",
        )
        .bind(connection.to_string())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.try_get("sealed")?;
        Ok(Some(self.cipher.open(
            &sealed,
            &webhook_secret_context(connection, name),
        )?))
    }

    pub async fn delete_webhook_secret(
        &self,
        connection: ConnectionId,
        name: &str,
    ) -> Result<(), StoreError> {
        let changed: Result<(), StoreError> = async {
            sqlx::query("DELETE FROM webhook_secrets WHERE connection_id = $1 AND name = $2")
                .bind(connection.to_string())
                .bind(name)
                .execute(&self.writer)
                .await?;
            Ok(())
        }
        .await;
        self.directory_changed();
        changed
    }

    /// Forgets events read before `before`: platforms stop redelivering long before then.
    pub async fn prune_relay(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let inbox =
            sqlx::query("DELETE FROM relay_inbox WHERE payload IS NULL AND received_at < $1")
                .bind(before.unix_millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let seen = sqlx::query("DELETE FROM relay_seen WHERE seen_at < $1")
            .bind(before.unix_millis())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(inbox + seen)
    }
}

fn webhook_secret_context(connection: ConnectionId, name: &str) -> String {
    format!("webhook:{connection}:{name}")
}

fn message_key(
    row: &AnyRow,
    platform: &str,
    chat: &str,
    message: &str,
) -> Result<MessageKey, StoreError> {
    Ok(MessageKey {
        platform: parse(row, platform)?,
        chat: ExternalChatId::new(row.try_get::<String, _>(chat)?),
        message: row.try_get(message)?,
    })
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxItem, StoreError> {
    let action: String = row.try_get("action")?;
    Ok(OutboxItem {
        id: row.try_get("id")?,
        conversation: parse(row, "conversation_id")?,
        platform: parse(row, "platform")?,
        connection: parse(row, "connection_id")?,
        sender: parse(row, "sender_person_id")?,
        origin: message_key(row, "origin_platform", "origin_chat", "origin_message")?,
        action: OutboxAction::parse(&action)?,
        payload: row.try_get("payload")?,
        attempts: row.try_get("attempts")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        order: row.try_get("origin_order")?,
        lane_last_posted: row.try_get("lane_last_posted")?,
        maybe_sent_since: row
            .try_get::<Option<i64>, _>("leased_at")?
            .map(Timestamp::from_unix_millis),
        received_micros: row.try_get("received_micros")?,
    })
}

fn copy_from_row(row: &AnyRow) -> Result<RelayedCopy, StoreError> {
    Ok(RelayedCopy {
        origin: message_key(row, "origin_platform", "origin_chat", "origin_message")?,
        conversation: parse(row, "conversation_id")?,
        sender: parse(row, "sender_person_id")?,
        copy: message_key(row, "copy_platform", "copy_chat", "copy_message")?,
        copy_connection: parse(row, "copy_connection_id")?,
    })
}
