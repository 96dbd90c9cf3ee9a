//! What the relay keeps: the inbox of events as platforms delivered them, the outbox of copies
//! to send, the map from each relayed message to its copies, and the platforms' event
//! subscriptions.
//!
//! Delivery guarantees rest on three rules kept here. An event is stored before its delivery
//! is acknowledged, so a crash loses nothing. What the relay decides about an event (the copies
//! to send) is written in the same transaction that marks the event read and remembers it as
//! seen, so a redelivered or re-read event is acted on once. A copy leaves the outbox in the
//! same transaction that records it in the map.
//!
//! What a message says is stored only sealed with the hub's key (an inbox item as the
//! platform delivered it, an outbox copy's content), each bound to its row, so that what the
//! database leaves behind of it (a freed page, a WAL frame, a dead tuple) is ciphertext.

use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_core::{
    ConnectionId, ConversationId, ExternalChatId, PersonId, Platform, Portal, Timestamp,
};

use switchboard_secrets::{Cipher, SecretString, SecretsError};

use crate::connections::{parse, parse_optional};
use crate::outbox_lanes::{Lanes, QueuedCopy};
use crate::{Backend, Store, StoreError};

/// How long a copy stays leased in the database: longer than a platform call with its own
/// retries. Within the hub its lane stays in flight until the attempt is recorded; the lease
/// (and `leased_at`, kept after it) tells a restarted hub that an attempt may have posted it.
const LEASE_MILLIS: i64 = 120_000;
/// When a copy whose attempt could not be recorded is tried again (it is then looked for on
/// its platform before being posted again).
const RECORDING_RETRY_MILLIS: i64 = 5_000;

/// The outbox as the deliverer needs it, kept in memory by the store.
#[derive(Debug, Default)]
pub(crate) struct OutboxIndex {
    /// Set once the index was read from the database.
    loaded: tokio::sync::OnceCell<()>,
    lanes: std::sync::Mutex<Lanes>,
    /// Copies taken as they were queued, for the next [`Store::lease_outbox`].
    handed: std::sync::Mutex<std::collections::VecDeque<OutboxItem>>,
}

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

/// Statements of up to this many rows are kept prepared.
const PREPARED_UP_TO_ROWS: usize = 4;

/// A statement whose text changes with its number of rows (`rows`, all its parts together;
/// every value a parameter, so that the text depends on nothing else). At a human pace the
/// relay writes an event, a copy at a time, so the small shapes recur and are kept prepared:
/// parsing and planning them again cost more than running them (on PostgreSQL about two
/// thirds of a settlement's time). The many shapes of a burst are not, where they would push
/// the fixed statements out of each connection's cache.
fn rows_statement<'q>(sql: String, rows: usize) -> Query<'q> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows <= PREPARED_UP_TO_ROWS)
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
/// events: each run's statement stays far below the limit on parameters (19 per copy, 6 per
/// event).
fn settlement_chunks(events: &[Settlement<'_>]) -> Vec<usize> {
    const COPIES_PER_STATEMENT: usize = ROWS_PER_STATEMENT / 19;
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

/// A copy to queue: its event's `seen` key, the copy, and whether it is taken as it is queued.
type SettledCopy<'a> = (Option<(Platform, &'a str)>, &'a NewOutboxItem, bool);

/// Binds an outbox row's sixteen values, in the order of the outbox's insert statements, with
/// its payload `sealed` ([`Store::seal_copy`]); a copy `taken` as it is queued is leased from
/// the start.
fn bind_outbox_row<'q>(
    query: Query<'q>,
    copy: &'q NewOutboxItem,
    sealed: Vec<u8>,
    taken: bool,
    now: i64,
) -> Query<'q> {
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
        .bind(sealed)
        .bind(copy.due_at.map_or(now, Timestamp::unix_millis))
        .bind(now)
        .bind(copy.received_micros)
        .bind(taken.then(|| now.saturating_add(LEASE_MILLIS)))
        .bind(taken.then_some(now))
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

fn bind_ids<'q>(query: Query<'q>, ids: impl IntoIterator<Item = i64>) -> Query<'q> {
    ids.into_iter().fold(query, |query, id| query.bind(id))
}

/// `(?, ?, ?), (?, ?, ?)…` on SQLite, `($1, $2, $3), ($4, $5, $6)…` on PostgreSQL, for `rows`
/// rows of `columns` values: the parameters of a statement that has no others, bound in the
/// order they are written.
///
/// SQLite looks a numbered parameter up by name among all of the statement's, once when it
/// parses the statement and again as sqlx binds each value: time that grows with the square of
/// a batch's parameters, an eighth of the hub's time under load. Anonymous ones are numbered as
/// they come. (sqlx counts only the anonymous ones in order, so a statement must not mix both.)
fn parameters(backend: Backend, rows: usize, columns: usize) -> String {
    match backend {
        Backend::Sqlite => {
            let row = format!("({})", vec!["?"; columns].join(", "));
            vec![row; rows].join(", ")
        }
        Backend::Postgres => placeholders_from(0, rows, columns),
    }
}

/// `($(after + 1), $(after + 2)), …` for `rows` rows of `columns` values.
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
    /// (event id, sealed payload)
    items: Vec<(String, Vec<u8>)>,
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
        // Sealed here, by each delivery's own task, rather than by whichever commits the group.
        let delivery = InboundDelivery {
            connection,
            items: items
                .iter()
                .map(|&(event, payload)| {
                    let context = inbox_context(&connection.to_string(), event);
                    (
                        event.to_owned(),
                        self.cipher.seal_bytes(payload.as_bytes(), &context),
                    )
                })
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
        let rows: Vec<(&InboundDelivery, &(String, Vec<u8>))> = deliveries
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
            let mut query = rows_statement(
                format!(
                    "INSERT INTO relay_inbox (connection_id, event_id, payload, received_at, \
                     next_attempt_at, received_micros) VALUES {} \
                     ON CONFLICT (connection_id, event_id) DO NOTHING \
                     RETURNING connection_id, event_id",
                    parameters(self.backend, chunk.len(), 6)
                ),
                chunk.len(),
            );
            for (delivery, (event, payload)) in chunk {
                query = query
                    .bind(delivery.connection.to_string())
                    .bind(event.as_str())
                    .bind(payload.as_slice())
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
            let connection: String = row.try_get("connection_id")?;
            let event_id: String = row.try_get("event_id")?;
            let sealed: Vec<u8> = row.try_get("payload")?;
            Ok(InboxItem {
                id: row.try_get("id")?,
                connection_id: parse(row, "connection_id")?,
                payload: open_payload(
                    &self.cipher,
                    &sealed,
                    &inbox_context(&connection, &event_id),
                )?,
                event_id,
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
    ///
    /// A copy that is due and whose lane has nothing queued nor in flight is taken as it is
    /// queued, in the same commit, and handed to the next [`Store::lease_outbox`] without
    /// another round trip.
    pub async fn settle_events(&self, events: &[Settlement<'_>]) -> Result<Vec<bool>, StoreError> {
        self.ensure_outbox_index().await?;
        let now = self.now().unix_millis();
        let mut fresh = vec![true; events.len()];
        let mut keys = std::collections::HashSet::new();
        for (event, fresh) in events.iter().zip(&mut fresh) {
            if let Some(key) = event.seen {
                *fresh = keys.insert(key);
            }
        }
        // Each lane's first copy of the batch (events may come out of order): the one a
        // lane with nothing queued nor in flight sends at once, if it is due.
        let mut first_in_lane: std::collections::HashMap<String, (i64, usize, usize)> =
            std::collections::HashMap::new();
        for (e, event) in events.iter().enumerate().filter(|(e, _)| fresh[*e]) {
            for (c, copy) in event.copies.iter().enumerate() {
                let place = (copy.order, e, c);
                let first = first_in_lane.entry(copy.lane()).or_insert(place);
                *first = (*first).min(place);
            }
        }
        let taken: Vec<Vec<bool>> = {
            let mut lanes = self.lanes();
            events
                .iter()
                .enumerate()
                .map(|(e, event)| {
                    event
                        .copies
                        .iter()
                        .enumerate()
                        .map(|(c, copy)| {
                            let lane = copy.lane();
                            let take = first_in_lane
                                .get(&lane)
                                .is_some_and(|&(_, first_e, first_c)| (first_e, first_c) == (e, c))
                                && copy.due_at.is_none_or(|due| due.unix_millis() <= now)
                                && lanes.is_idle(&lane);
                            if take {
                                lanes.reserve(&lane);
                            }
                            take
                        })
                        .collect()
                })
                .collect()
        };
        let reserved = || {
            events
                .iter()
                .zip(&taken)
                .flat_map(|(event, taken)| event.copies.iter().zip(taken))
                .filter(|(_, taken)| **taken)
                .map(|(copy, _)| copy.lane())
        };
        let written = match self.backend {
            Backend::Sqlite => {
                self.settle_in_transaction(events, &taken, &mut fresh, now)
                    .await
            }
            Backend::Postgres => {
                let mut start = 0;
                let mut ids = Vec::new();
                let mut written = Ok(());
                for end in settlement_chunks(events) {
                    match self
                        .settle_in_one_statement(
                            &events[start..end],
                            &taken[start..end],
                            &mut fresh[start..end],
                            now,
                        )
                        .await
                    {
                        Ok(chunk) => ids.extend(chunk),
                        Err(error) => {
                            written = Err(error);
                            break;
                        }
                    }
                    start = end;
                }
                written.map(|()| ids)
            }
        };
        let ids = match written {
            Ok(ids) => ids,
            Err(error) => {
                let mut lanes = self.lanes();
                for lane in reserved() {
                    lanes.release(&lane);
                }
                return Err(error);
            }
        };
        self.index_queued(events, &taken, &fresh, ids, now).await;
        Ok(fresh)
    }

    /// Enters the copies just queued in the outbox's index, in the order decided (the
    /// database numbered them in that order), and hands over those taken as they were queued.
    async fn index_queued(
        &self,
        events: &[Settlement<'_>],
        taken: &[Vec<bool>],
        fresh: &[bool],
        mut ids: Vec<i64>,
        now: i64,
    ) {
        ids.sort_unstable();
        let queued: Vec<(&NewOutboxItem, bool)> = events
            .iter()
            .zip(taken)
            .zip(fresh)
            .filter(|(_, fresh)| **fresh)
            .flat_map(|((event, taken), _)| event.copies.iter().zip(taken.iter().copied()))
            .collect();
        let reserved: std::collections::HashSet<String> = events
            .iter()
            .zip(taken)
            .flat_map(|(event, taken)| event.copies.iter().zip(taken))
            .filter(|(_, taken)| **taken)
            .map(|(copy, _)| copy.lane())
            .collect();
        if ids.len() != queued.len() {
            // Not expected: the index is rebuilt from the outbox rather than guessed.
            tracing::error!(
                queued = queued.len(),
                numbered = ids.len(),
                "store: the copies just queued do not match their numbers; reading the outbox again"
            );
            {
                let mut lanes = self.lanes();
                for lane in &reserved {
                    lanes.release(lane);
                }
            }
            if let Err(error) = self.reconcile_outbox().await {
                tracing::warn!(%error, "store: reading the outbox again failed");
            }
            return;
        }
        let handed: Vec<(i64, &NewOutboxItem)> = ids
            .iter()
            .zip(&queued)
            .filter(|(_, (_, taken))| *taken)
            .map(|(id, (copy, _))| (*id, *copy))
            .collect();
        let last_posted = match self
            .lanes_last_posted(handed.iter().map(|(_, copy)| copy.lane()).collect())
            .await
        {
            Ok(last_posted) => last_posted,
            Err(error) => {
                tracing::warn!(%error, "store: cannot read the lanes' latest posts; their copies are leased as usual");
                let mut lanes = self.lanes();
                for (id, (copy, _)) in ids.iter().zip(&queued) {
                    lanes.queue(QueuedCopy {
                        id: *id,
                        lane: copy.lane(),
                        order: copy.order,
                        due: now,
                    });
                }
                for lane in &reserved {
                    lanes.release(lane);
                }
                return;
            }
        };
        let mut lanes = self.lanes();
        let mut used = std::collections::HashSet::new();
        for (id, (copy, taken)) in ids.iter().zip(&queued) {
            let lane = copy.lane();
            lanes.queue(QueuedCopy {
                id: *id,
                lane: lane.clone(),
                order: copy.order,
                due: copy.due_at.map_or(now, Timestamp::unix_millis),
            });
            if *taken {
                used.insert(lane);
            }
        }
        for lane in reserved.difference(&used) {
            lanes.release(lane);
        }
        drop(lanes);
        let mut handed_over = self.handed();
        for (id, copy) in handed {
            handed_over.push_back(OutboxItem {
                id,
                conversation: copy.conversation,
                platform: copy.platform,
                connection: copy.connection,
                sender: copy.sender,
                origin: copy.origin.clone(),
                action: copy.action,
                payload: copy.payload.clone(),
                attempts: 0,
                created_at: Timestamp::from_unix_millis(now),
                order: copy.order,
                lane_last_posted: last_posted.get(&copy.lane()).copied(),
                maybe_sent_since: None,
                received_micros: copy.received_micros,
            });
        }
    }

    /// The place of the latest post delivered in each of `lanes` that has one.
    async fn lanes_last_posted(
        &self,
        mut lanes: Vec<String>,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        lanes.sort_unstable();
        lanes.dedup();
        let mut last_posted = std::collections::HashMap::new();
        for chunk in lanes.chunks(ROWS_PER_STATEMENT) {
            let mut query = rows_statement(
                format!(
                    "SELECT lane, last_posted_order FROM relay_lanes WHERE lane IN {}",
                    parameters(self.backend, 1, chunk.len())
                ),
                chunk.len(),
            );
            for lane in chunk {
                query = query.bind(lane.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                last_posted.insert(row.try_get("lane")?, row.try_get("last_posted_order")?);
            }
        }
        Ok(last_posted)
    }

    /// SQLite: one transaction of a statement per table (SQLite has no data-modifying `WITH`).
    async fn settle_in_transaction(
        &self,
        events: &[Settlement<'_>],
        taken: &[Vec<bool>],
        fresh: &mut [bool],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let keys: std::collections::HashSet<(Platform, &str)> = events
            .iter()
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .filter_map(|(event, _)| event.seen)
            .collect();
        let mut tx = self.begin_redoable_write().await?;
        let read: Vec<i64> = events.iter().filter_map(|e| e.inbox).collect();
        for chunk in read.chunks(ROWS_PER_STATEMENT) {
            let query = rows_statement(
                format!(
                    "UPDATE relay_inbox SET payload = NULL, last_error = NULL WHERE id IN {}",
                    parameters(self.backend, 1, chunk.len())
                ),
                chunk.len(),
            );
            bind_ids(query, chunk.iter().copied())
                .execute(&mut *tx)
                .await?;
        }
        let last_messages = last_messages(events);
        for chunk in last_messages.chunks(ROWS_PER_STATEMENT) {
            let mut query = rows_statement(
                format!(
                    "UPDATE portals SET last_message_micros = v.column3 FROM (VALUES {}) AS v \
                     WHERE portals.connection_id = v.column1 \
                     AND portals.external_chat_id = v.column2 \
                     AND (portals.last_message_micros IS NULL \
                          OR portals.last_message_micros < v.column3)",
                    parameters(self.backend, chunk.len(), 3)
                ),
                chunk.len(),
            );
            for ((connection, chat), micros) in chunk {
                query = query.bind(connection.as_str()).bind(*chat).bind(*micros);
            }
            query.execute(&mut *tx).await?;
        }
        let keys: Vec<(Platform, &str)> = keys.into_iter().collect();
        let mut remembered = std::collections::HashSet::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut query = rows_statement(
                format!(
                    "INSERT INTO relay_seen (platform, key, seen_at) VALUES {} \
                     ON CONFLICT (platform, key) DO NOTHING RETURNING platform, key",
                    parameters(self.backend, chunk.len(), 3)
                ),
                chunk.len(),
            );
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
        let copies: Vec<(&NewOutboxItem, bool)> = events
            .iter()
            .zip(taken)
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .flat_map(|((event, taken), _)| event.copies.iter().zip(taken.iter().copied()))
            .collect();
        let mut ids = Vec::with_capacity(copies.len());
        for chunk in copies.chunks(ROWS_PER_STATEMENT / 16) {
            let mut query = rows_statement(
                format!(
                    "INSERT INTO relay_outbox (lane, conversation_id, platform, connection_id, \
                     sender_person_id, origin_platform, origin_chat, origin_message, \
                     origin_order, action, payload, next_attempt_at, created_at, \
                     received_micros, lease_until, leased_at) VALUES {} RETURNING id",
                    parameters(self.backend, chunk.len(), 16)
                ),
                chunk.len(),
            );
            for (copy, taken) in chunk {
                query = bind_outbox_row(query, copy, self.seal_copy(copy), *taken, now);
            }
            for row in query.fetch_all(&mut *tx).await? {
                ids.push(row.try_get("id")?);
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// PostgreSQL: the events' whole record in one statement, one round trip. The copies of
    /// an event with a `seen` key are queued only when the key's insertion in the same
    /// statement returned it (data-modifying `WITH` parts see each other's `RETURNING`).
    async fn settle_in_one_statement(
        &self,
        events: &[Settlement<'_>],
        taken: &[Vec<bool>],
        fresh: &mut [bool],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut parts = Vec::new();
        let mut next = 0;
        let mut numbers = |count: usize| {
            let row: Vec<String> = (next + 1..=next + count).map(|n| format!("${n}")).collect();
            next += count;
            format!("({})", row.join(", "))
        };
        let read: Vec<i64> = events.iter().filter_map(|e| e.inbox).collect();
        if !read.is_empty() {
            parts.push(format!(
                "read AS (UPDATE relay_inbox SET payload = NULL, last_error = NULL \
                 WHERE id IN {})",
                numbers(read.len())
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
        let copies: Vec<SettledCopy<'_>> = events
            .iter()
            .zip(taken)
            .zip(fresh.iter())
            .filter(|(_, fresh)| **fresh)
            .flat_map(|((event, taken), _)| {
                event
                    .copies
                    .iter()
                    .zip(taken)
                    .map(|(copy, taken)| (event.seen, copy, *taken))
            })
            .collect();
        if !copies.is_empty() {
            let rows: Vec<String> = copies.iter().map(|_| numbers(19)).collect();
            // Inserted in the order decided: the identity breaks ties within a lane.
            parts.push(format!(
                "queued AS (INSERT INTO relay_outbox (lane, conversation_id, platform, \
                 connection_id, sender_person_id, origin_platform, origin_chat, origin_message, \
                 origin_order, action, payload, next_attempt_at, created_at, received_micros, \
                 lease_until, leased_at) \
                 SELECT lane, conversation_id, platform, connection_id, sender_person_id, \
                 origin_platform, origin_chat, origin_message, origin_order, action, payload, \
                 next_attempt_at, created_at, received_micros, lease_until, leased_at \
                 FROM (VALUES {}) AS c (position, seen_platform, seen_key, lane, conversation_id, \
                 platform, connection_id, sender_person_id, origin_platform, origin_chat, \
                 origin_message, origin_order, action, payload, next_attempt_at, created_at, \
                 received_micros, lease_until, leased_at) \
                 WHERE c.seen_key IS NULL OR EXISTS (SELECT 1 FROM seen \
                     WHERE seen.platform = c.seen_platform AND seen.key = c.seen_key) \
                 ORDER BY c.position \
                 RETURNING id)",
                rows.join(", ")
            ));
        }
        let queued_ids = if copies.is_empty() {
            ""
        } else {
            " UNION ALL SELECT NULL, NULL, id FROM queued"
        };
        let mut query = rows_statement(
            format!(
                "WITH {} SELECT platform, key, NULL::bigint AS id FROM seen{queued_ids}",
                parts.join(", ")
            ),
            read.len() + last_messages.len() + keys.len() + copies.len(),
        );
        query = bind_ids(query, read.iter().copied());
        for ((connection, chat), micros) in &last_messages {
            query = query.bind(connection.clone()).bind(*chat).bind(*micros);
        }
        for (platform, key) in &keys {
            query = query.bind(platform.as_str()).bind(*key).bind(now);
        }
        for (position, (seen, copy, taken)) in (0_i64..).zip(&copies) {
            query = query
                .bind(position)
                .bind(seen.map(|(platform, _)| platform.as_str()))
                .bind(seen.map(|(_, key)| key));
            query = bind_outbox_row(query, copy, self.seal_copy(copy), *taken, now);
        }
        // A copy taken as it is queued may be posted as soon as this returns: its lease (which
        // tells a restarted hub to look for the copy before posting it again) must be durable
        // first, and so must everything before it.
        let pool = if copies.iter().any(|(_, _, taken)| *taken) {
            &self.writer
        } else {
            &self.redoable
        };
        let mut remembered = std::collections::HashSet::new();
        let mut ids = Vec::new();
        for row in query.fetch_all(pool).await? {
            match row.try_get::<Option<i64>, _>("id")? {
                Some(id) => ids.push(id),
                None => {
                    remembered.insert((row.try_get("platform")?, row.try_get("key")?));
                }
            }
        }
        keep_remembered(events, fresh, &remembered);
        Ok(ids)
    }

    /// Takes up to `limit` copies that are due, each the first undelivered one of its lane (in
    /// lane order) in a lane with none in flight, and leases them: nobody takes them again
    /// before their attempt is recorded ([`Store::outbox_delivered`], [`Store::outbox_failed`],
    /// [`Store::outbox_throttled`]) or the hub restarts ([`Store::recover_outbox`]).
    ///
    /// Copies taken as they were queued come first, without a round trip; the others are
    /// chosen from the index in memory and taken by a statement that refuses any the
    /// database does not agree is next in its lane.
    ///
    /// Copies to the platforms in `busy` are left for a later call: the relay names a
    /// platform there when its copies already hold their share of the deliveries in flight.
    pub async fn lease_outbox(
        &self,
        limit: i64,
        busy: &[Platform],
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.ensure_outbox_index().await?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut leased: Vec<OutboxItem> = Vec::new();
        {
            let mut handed = self.handed();
            let mut kept = std::collections::VecDeque::new();
            while let Some(item) = handed.pop_front() {
                if leased.len() < limit && !busy.contains(&item.platform) {
                    leased.push(item);
                } else {
                    kept.push_back(item);
                }
            }
            *handed = kept;
        }
        let now = self.now().unix_millis();
        let chosen = self.lanes().take_due(now, limit - leased.len(), busy);
        if chosen.is_empty() {
            return Ok(leased);
        }
        let taken = match self.backend {
            Backend::Sqlite => self.take_in_transaction(&chosen, now).await,
            Backend::Postgres => self.take_in_one_statement(&chosen, now).await,
        };
        let taken = match taken {
            Ok(taken) => taken,
            Err(error) => {
                let mut lanes = self.lanes();
                for copy in &chosen {
                    lanes.release(&copy.lane);
                }
                drop(lanes);
                // Still taken: handed out at the next call.
                let mut handed = self.handed();
                for item in leased.into_iter().rev() {
                    handed.push_front(item);
                }
                return Err(error);
            }
        };
        let refused: Vec<&QueuedCopy> = chosen
            .iter()
            .filter(|copy| !taken.iter().any(|item| item.id == copy.id))
            .collect();
        if !refused.is_empty()
            && let Err(error) = self.reconcile_refused(&refused, now).await
        {
            tracing::warn!(%error, "store: cannot read again the lanes of copies refused");
        }
        leased.extend(taken);
        Ok(leased)
    }

    /// SQLite: the chosen copies read, then taken on the writer (a copy someone else took
    /// meanwhile is left out).
    async fn take_in_transaction(
        &self,
        chosen: &[QueuedCopy],
        now: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let candidates = rows_statement(
            format!(
                "SELECT {OUTBOX_COLUMNS}, l.last_posted_order AS lane_last_posted \
                 FROM relay_outbox o LEFT JOIN relay_lanes l ON l.lane = o.lane \
                 WHERE o.id IN {} AND {LEASABLE}",
                placeholders_from(1, 1, chosen.len())
            ),
            chosen.len(),
        )
        .bind(now);
        let candidates = bind_ids(candidates, chosen.iter().map(|copy| copy.id))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| outbox_from_row(row, &self.cipher))
            .collect::<Result<Vec<_>, _>>()?;
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let take = rows_statement(
            format!(
                "UPDATE relay_outbox SET lease_until = $1, leased_at = $2 WHERE id IN {} \
                 AND (lease_until IS NULL OR lease_until < $2) RETURNING id",
                placeholders_from(2, 1, candidates.len())
            ),
            candidates.len(),
        )
        .bind(now.saturating_add(LEASE_MILLIS))
        .bind(now);
        let taken: std::collections::HashSet<i64> =
            bind_ids(take, candidates.iter().map(|item| item.id))
                .fetch_all(&self.writer)
                .await?
                .iter()
                .map(|row| row.try_get::<i64, _>("id"))
                .collect::<Result<_, _>>()?;
        Ok(candidates
            .into_iter()
            .filter(|item| taken.contains(&item.id))
            .collect())
    }

    /// PostgreSQL: checked and taken in one statement. What is returned is each copy as it
    /// was before it was taken (the self-join reads the statement's snapshot): its
    /// `leased_at` says since when an earlier attempt may have posted it.
    async fn take_in_one_statement(
        &self,
        chosen: &[QueuedCopy],
        now: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let before: Vec<String> = OUTBOX_COLUMNS
            .split(", ")
            .map(|column| format!("before.{column}"))
            .collect();
        let take = rows_statement(
            format!(
                "WITH due AS (SELECT o.id FROM relay_outbox o \
                     WHERE o.id IN {} AND {LEASABLE}) \
                 UPDATE relay_outbox AS taken SET lease_until = $2, leased_at = $1 \
                 FROM relay_outbox AS before LEFT JOIN relay_lanes AS l ON l.lane = before.lane \
                 WHERE taken.id IN (SELECT id FROM due) AND before.id = taken.id \
                 AND (taken.lease_until IS NULL OR taken.lease_until < $1) \
                 RETURNING {}, l.last_posted_order AS lane_last_posted",
                placeholders_from(2, 1, chosen.len()),
                before.join(", ")
            ),
            chosen.len(),
        )
        .bind(now)
        .bind(now.saturating_add(LEASE_MILLIS));
        let mut taken = bind_ids(take, chosen.iter().map(|copy| copy.id))
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(|row| outbox_from_row(row, &self.cipher))
            .collect::<Result<Vec<_>, _>>()?;
        taken.sort_by_key(|item| item.id);
        Ok(taken)
    }

    /// The database refused copies the index thought were next: their lanes are read again
    /// (a copy gone or dead-lettered leaves the index; one not due, or behind another, waits
    /// its turn) and are free to be chosen from again.
    async fn reconcile_refused(&self, refused: &[&QueuedCopy], now: i64) -> Result<(), StoreError> {
        let mut lanes: Vec<String> = refused.iter().map(|copy| copy.lane.clone()).collect();
        lanes.sort_unstable();
        lanes.dedup();
        self.lanes().begin_reconciliation();
        let found = self.queued_copies(Some(&lanes), now).await;
        let mut index = self.lanes();
        index.end_reconciliation();
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                for copy in refused {
                    index.retry(copy.id, now.saturating_add(RECORDING_RETRY_MILLIS));
                }
                return Err(error);
            }
        };
        for copy in refused {
            match found.iter().find(|(row, _)| row.id == copy.id) {
                Some((row, _)) => {
                    // Behind a copy taken by a hub that stopped: not before that lease ends.
                    let busy_until = found
                        .iter()
                        .filter(|(other, leased)| *leased && other.lane == copy.lane)
                        .map(|(other, _)| other.due)
                        .max()
                        .unwrap_or(row.due);
                    index.queue(QueuedCopy {
                        due: row.due.max(busy_until),
                        ..row.clone()
                    });
                }
                None => index.remove(copy.id),
            }
        }
        index.add_missing(found.into_iter().map(|(copy, _)| copy).collect());
        for lane in &lanes {
            index.release(lane);
        }
        Ok(())
    }

    /// The outbox's queued copies (not dead-lettered) in `lanes`, or all of them, each with
    /// whether a lease holds it now (it is then due when the lease ends).
    async fn queued_copies(
        &self,
        lanes: Option<&[String]>,
        now: i64,
    ) -> Result<Vec<(QueuedCopy, bool)>, StoreError> {
        let mut rows = Vec::new();
        let select = "SELECT id, lane, origin_order, next_attempt_at, lease_until \
                      FROM relay_outbox WHERE dead_at IS NULL";
        match lanes {
            None => rows = sqlx::query(select).fetch_all(&self.pool).await?,
            Some(lanes) => {
                for chunk in lanes.chunks(ROWS_PER_STATEMENT) {
                    let mut query = rows_statement(
                        format!(
                            "{select} AND lane IN {}",
                            parameters(self.backend, 1, chunk.len())
                        ),
                        chunk.len(),
                    );
                    for lane in chunk {
                        query = query.bind(lane.as_str());
                    }
                    rows.extend(query.fetch_all(&self.pool).await?);
                }
            }
        }
        rows.iter()
            .map(|row| {
                let lease: Option<i64> = row.try_get("lease_until")?;
                let leased = lease.is_some_and(|until| until >= now);
                let next: i64 = row.try_get("next_attempt_at")?;
                Ok((
                    QueuedCopy {
                        id: row.try_get("id")?,
                        lane: row.try_get("lane")?,
                        order: row.try_get("origin_order")?,
                        due: match lease {
                            Some(until) if leased => next.max(until.saturating_add(1)),
                            _ => next,
                        },
                    },
                    leased,
                ))
            })
            .collect()
    }

    /// Reads the whole outbox and enters in the index any queued copy it lacks: a safety net
    /// run now and then by the deliverer. Returns how many were missing.
    pub async fn reconcile_outbox(&self) -> Result<usize, StoreError> {
        self.ensure_outbox_index().await?;
        self.index_whole_outbox().await
    }

    /// Reads the whole outbox and enters in the index the queued copies it lacks (none removed
    /// meanwhile comes back); returns how many.
    async fn index_whole_outbox(&self) -> Result<usize, StoreError> {
        let now = self.now().unix_millis();
        self.lanes().begin_reconciliation();
        let found = self.queued_copies(None, now).await;
        let mut lanes = self.lanes();
        let added =
            found.map(|found| lanes.add_missing(found.into_iter().map(|(copy, _)| copy).collect()));
        lanes.end_reconciliation();
        added
    }

    /// When the earliest copy the index knows is due (milliseconds since the epoch), if any:
    /// the deliverer sleeps until then.
    pub fn next_outbox_due(&self) -> Option<i64> {
        if !self.handed().is_empty() {
            return Some(0);
        }
        self.lanes().next_due()
    }

    /// Builds the outbox's index once, from the database.
    async fn ensure_outbox_index(&self) -> Result<(), StoreError> {
        self.outbox
            .loaded
            .get_or_try_init(|| async { self.index_whole_outbox().await.map(|_| ()) })
            .await?;
        Ok(())
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.outbox
            .lanes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handed(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<OutboxItem>> {
        self.outbox
            .handed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let recorded = self
            .delivered
            .write(delivered, |delivered| async move {
                store.outbox_delivered_together(delivered).await
            })
            .await;
        match &recorded {
            Ok(()) => self.lanes().remove(item.id),
            Err(_) => self.lanes().retry(
                item.id,
                self.now()
                    .unix_millis()
                    .saturating_add(RECORDING_RETRY_MILLIS),
            ),
        }
        recorded
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
            let ids: Vec<i64> = chunk.iter().map(|d| d.id).collect();
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
            let one_statement = tx.is_none();
            let values = |after: usize, rows: usize, columns: usize| {
                if one_statement {
                    placeholders_from(after, rows, columns)
                } else {
                    parameters(self.backend, rows, columns)
                }
            };
            let delete = format!(
                "DELETE FROM relay_outbox WHERE id IN {}",
                values(0, 1, ids.len())
            );
            let map = (!copies.is_empty()).then(|| {
                format!(
                    "INSERT INTO relayed_messages (origin_platform, origin_chat, origin_message, \
                     conversation_id, sender_person_id, copy_platform, copy_connection_id, \
                     copy_chat, copy_message, created_at) VALUES {} \
                     ON CONFLICT (origin_platform, origin_chat, origin_message, copy_platform) \
                     DO NOTHING",
                    values(ids.len(), copies.len(), 10)
                )
            });
            let latest = (!lanes.is_empty()).then(|| {
                format!(
                    "INSERT INTO relay_lanes (lane, last_posted_order) VALUES {} \
                     ON CONFLICT (lane) DO UPDATE SET last_posted_order = CASE \
                     WHEN excluded.last_posted_order > relay_lanes.last_posted_order \
                     THEN excluded.last_posted_order ELSE relay_lanes.last_posted_order END",
                    values(ids.len() + copies.len() * 10, lanes.len(), 2)
                )
            });
            let lanes: Vec<(&str, i64)> = lanes.into_iter().collect();
            match &mut tx {
                Some(tx) => {
                    bind_ids(rows_statement(delete, ids.len()), ids.iter().copied())
                        .execute(&mut **tx)
                        .await?;
                    if let Some(map) = map {
                        bind_map_rows(rows_statement(map, copies.len()), &copies, now)
                            .execute(&mut **tx)
                            .await?;
                    }
                    if let Some(latest) = latest {
                        bind_lane_rows(rows_statement(latest, lanes.len()), &lanes)
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
                    let rows = ids.len() + copies.len() + lanes.len();
                    bind_lane_rows(
                        bind_map_rows(
                            bind_ids(rows_statement(statement, rows), ids.iter().copied()),
                            &copies,
                            now,
                        ),
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
        let recorded = sqlx::query(
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
        .await;
        let mut lanes = self.lanes();
        match (&recorded, retry_at) {
            (Ok(_), Some(retry_at)) => lanes.retry(id, retry_at.unix_millis()),
            (Ok(_), None) => lanes.remove(id),
            (Err(_), _) => lanes.retry(id, now.saturating_add(RECORDING_RETRY_MILLIS)),
        }
        recorded?;
        Ok(())
    }

    /// After a restart: the copies a stopped hub had taken are free again, and each is marked
    /// as maybe sent (its attempt may have reached the platform before the hub stopped). A hub
    /// owns its database alone; several hubs on one database would need lease owners.
    ///
    /// The index of the outbox is read again from the database: what this store handed out
    /// before is forgotten.
    pub async fn recover_outbox(&self) -> Result<u64, StoreError> {
        let recovered =
            sqlx::query("UPDATE relay_outbox SET lease_until = NULL WHERE lease_until IS NOT NULL")
                .execute(&self.writer)
                .await?
                .rows_affected();
        self.ensure_outbox_index().await?;
        *self.lanes() = Lanes::default();
        self.handed().clear();
        self.index_whole_outbox().await?;
        Ok(recovered)
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
        let released = sqlx::query(
            "UPDATE relay_outbox SET next_attempt_at = $1 WHERE sender_person_id = $2 \
             AND dead_at IS NULL AND attempts > 0 AND next_attempt_at > $1 \
             RETURNING id, lane, origin_order, next_attempt_at",
        )
        .bind(self.now().unix_millis())
        .bind(sender.to_string())
        .fetch_all(&self.writer)
        .await?;
        self.requeue(&released)?;
        Ok(released.len() as u64)
    }

    /// Copies that left the outbox other than by being delivered (dead-lettered all at once).
    pub(crate) fn forget_queued(&self, ids: &[i64]) {
        let mut lanes = self.lanes();
        for id in ids {
            lanes.remove(*id);
        }
    }

    /// Enters in the index the copies of `rows` (id, lane, origin_order, next_attempt_at), made
    /// due or put back in their lanes.
    fn requeue(&self, rows: &[AnyRow]) -> Result<(), StoreError> {
        let copies = rows
            .iter()
            .map(|row| {
                Ok(QueuedCopy {
                    id: row.try_get("id")?,
                    lane: row.try_get("lane")?,
                    order: row.try_get("origin_order")?,
                    due: row.try_get("next_attempt_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let mut lanes = self.lanes();
        for copy in copies {
            lanes.queue(copy);
        }
        Ok(())
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
                item: outbox_from_row(row, &self.cipher)?,
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
             lease_until = NULL WHERE id = $2 AND dead_at IS NOT NULL \
             RETURNING id, lane, origin_order, next_attempt_at",
        )
        .bind(self.now().unix_millis())
        .bind(id)
        .fetch_all(&self.writer)
        .await?;
        self.requeue(&revived)?;
        if revived.is_empty() {
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

    /// Replaces what is known of a connection's subscriptions; moves the directory version.
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
        // Webhooks are verified against the subscriptions held, read through the directory's
        // cache.
        self.directory_changed();
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

    /// An outbox copy's payload, sealed for its row.
    fn seal_copy(&self, copy: &NewOutboxItem) -> Vec<u8> {
        let context = outbox_context(
            copy.conversation,
            copy.platform,
            &copy.origin,
            copy.action,
            copy.order,
        );
        self.cipher.seal_bytes(copy.payload.as_bytes(), &context)
    }

    /// Seals the payloads stored before payloads were sealed: rows in flight when the database
    /// took the step that seals them (`0015_sealed_payloads.sql`), which left them as their
    /// plaintext's bytes. Run at every start, before the relay reads anything, so that a start
    /// interrupted half-way leaves none behind; returns how many it sealed.
    pub(crate) async fn seal_unsealed_payloads(&self) -> Result<usize, StoreError> {
        let inbox = sqlx::query(
            "SELECT id, connection_id, event_id, payload FROM relay_inbox \
             WHERE payload IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let outbox = sqlx::query(
            "SELECT id, conversation_id, platform, origin_platform, origin_chat, \
             origin_message, origin_order, action, payload FROM relay_outbox",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut sealed: Vec<(&str, i64, Vec<u8>)> = Vec::new();
        for row in &inbox {
            let payload: Vec<u8> = row.try_get("payload")?;
            if !Cipher::is_sealed(&payload) {
                let context = inbox_context(
                    &row.try_get::<String, _>("connection_id")?,
                    &row.try_get::<String, _>("event_id")?,
                );
                sealed.push((
                    "relay_inbox",
                    row.try_get("id")?,
                    self.cipher.seal_bytes(&payload, &context),
                ));
            }
        }
        for row in &outbox {
            let payload: Vec<u8> = row.try_get("payload")?;
            if !Cipher::is_sealed(&payload) {
                let action: String = row.try_get("action")?;
                let context = outbox_context(
                    parse(row, "conversation_id")?,
                    parse(row, "platform")?,
                    &message_key(row, "origin_platform", "origin_chat", "origin_message")?,
                    OutboxAction::parse(&action)?,
                    row.try_get("origin_order")?,
                );
                sealed.push((
                    "relay_outbox",
                    row.try_get("id")?,
                    self.cipher.seal_bytes(&payload, &context),
                ));
            }
        }
        if sealed.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        for (table, id, payload) in &sealed {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET payload = $1 WHERE id = $2"
            )))
            .bind(payload.as_slice())
            .bind(*id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(sealed.len())
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

/// What binds an inbox item's sealed payload to its row: its connection and event id.
fn inbox_context(connection: &str, event_id: &str) -> String {
    format!("relay_inbox:{connection}:{event_id}")
}

/// What binds an outbox copy's sealed payload to its row: its lane, the message it is a copy
/// of, what it does there and its place in the lane (none of which a row changes).
fn outbox_context(
    conversation: ConversationId,
    platform: Platform,
    origin: &MessageKey,
    action: OutboxAction,
    order: i64,
) -> String {
    format!(
        "relay_outbox:{}:{}/{}/{}:{}:{order}",
        lane_of(conversation, platform),
        origin.platform.as_str(),
        origin.chat.as_str(),
        origin.message,
        action.as_str()
    )
}

fn open_payload(cipher: &Cipher, sealed: &[u8], context: &str) -> Result<String, StoreError> {
    String::from_utf8(cipher.open_bytes(sealed, context)?)
        .map_err(|_| StoreError::Secret(SecretsError::NotText))
}

fn outbox_from_row(row: &AnyRow, cipher: &Cipher) -> Result<OutboxItem, StoreError> {
    let action: String = row.try_get("action")?;
    let conversation = parse(row, "conversation_id")?;
    let platform = parse(row, "platform")?;
    let origin = message_key(row, "origin_platform", "origin_chat", "origin_message")?;
    let action = OutboxAction::parse(&action)?;
    let order = row.try_get("origin_order")?;
    let sealed: Vec<u8> = row.try_get("payload")?;
    Ok(OutboxItem {
        id: row.try_get("id")?,
        conversation,
        platform,
        connection: parse(row, "connection_id")?,
        sender: parse(row, "sender_person_id")?,
        payload: open_payload(
            cipher,
            &sealed,
            &outbox_context(conversation, platform, &origin, action, order),
        )?,
        origin,
        action,
        attempts: row.try_get("attempts")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        order,
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
