//! Reading stored events and deciding what to send where.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use switchboard_core::{
    ConnectionId, Conversation, ExternalChatId, ExternalUserId, Participant, Platform, RichText,
    SharedPortal, Unreached, answered, destinations,
};
use switchboard_platform::{
    Actor, ChatKind, ChatPlatform, ConnectionContext, EventEnvelope, InboundEvent, InboundKind,
    MessageRef, PlatformError, SubscriptionChange,
};
use switchboard_store::{
    AccountIdentity, InboxItem, MessageKey, NewOutboxItem, OutboxAction, Settlement, StoreError,
    StoredSubscription,
};

use super::payload::{Body, Payload, Target};
use super::{Door, is_own_post};
use super::{IDLE_POLL, later};
use crate::AppState;

/// Events read per pass, all at once.
const BATCH: i64 = 128;
/// An event that cannot be read (the platform failing) is tried this often before it is
/// given up, over about an hour.
const READ_ATTEMPTS: i64 = 12;

pub(super) async fn run(state: AppState) {
    if let Err(error) = catch_up(&state, None, None).await {
        tracing::warn!(%error, "relay: catching up after a stop failed");
    }
    loop {
        match route_due(&state).await {
            // A full batch: more are waiting. Otherwise whatever was stored since the batch
            // was read has signalled (the signal is kept until it is awaited), so the inbox
            // is read again at once only if there is something new.
            Ok(routed) if routed == BATCH as usize => {}
            Ok(_) => {
                let _ = tokio::time::timeout(IDLE_POLL, state.relay.inbox.notified()).await;
            }
            Err(error) => {
                tracing::warn!(%error, "relay: reading the inbox failed");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Reads the due events once; returns how many there were.
///
/// Reading is the slow part (Graph's notifications must be completed by fetching the message,
/// each fetch a round trip, longer when the platform throttles), so the whole batch is read at
/// once, and each decision is made as soon as its event and every one before it are read: one
/// at a time, in the order the events were stored, so that a chat seen for the first time
/// becomes one conversation.
async fn route_due(state: &AppState) -> Result<usize, StoreError> {
    let items = state.store.due_inbound(BATCH).await?;
    let mut contexts: HashMap<ConnectionId, Option<ConnectionContext>> = HashMap::new();
    for item in &items {
        if let std::collections::hash_map::Entry::Vacant(slot) = contexts.entry(item.connection_id)
        {
            slot.insert(
                state
                    .directory
                    .context(&state.store, item.connection_id)
                    .await?,
            );
        }
    }
    // Spawned, so that every read goes on while earlier events are being decided: the event,
    // and for a message in a chat the hub has no portal for, what it must know of that chat.
    let reads: Vec<_> = items
        .iter()
        .cloned()
        .map(|item| {
            let state = state.clone();
            let context = contexts.get(&item.connection_id).cloned().flatten();
            tokio::spawn(async move {
                let read = read(&state, context.as_ref(), &item).await;
                let new_chat = match (&read, context.as_ref()) {
                    (Ok(Some(event)), Some(context)) => {
                        prepare_new_chat(&state, context, event).await
                    }
                    _ => None,
                };
                (read, new_chat)
            })
        })
        .collect();
    let mut batch = Batch::default();
    for (item, read) in items.iter().zip(reads) {
        let (read, new_chat) = read.await.unwrap_or_else(|failed| {
            (
                Err(PlatformError::Unavailable(format!(
                    "reading the event failed: {failed}"
                ))),
                None,
            )
        });
        if let Some((chat, new_chat)) = new_chat {
            batch.new_chats.insert((item.connection_id, chat), new_chat);
        }
        let context = contexts[&item.connection_id].as_ref();
        route_item(state, context, item, read, &mut batch).await?;
    }
    if batch.settle(state).await? {
        state.relay.outbox_filled();
    }
    Ok(items.len())
}

/// What reading a stored event gave: nothing to route (its connection or module is gone, or
/// the platform says it is nothing the hub acts on), an event, or the platform's failure.
type Read = Result<Option<InboundEvent>, PlatformError>;

/// Reads a stored event; one of the hub's own posts, which the door did not recognise yet
/// (its announcement overtook the answer to the post), is not read at all.
async fn read(state: &AppState, context: Option<&ConnectionContext>, item: &InboxItem) -> Read {
    let Some(context) = context else {
        return Ok(None);
    };
    let Some(module) = state.platforms.get(context.connection.platform).cloned() else {
        return Ok(None);
    };
    let envelope = EventEnvelope {
        event_id: item.event_id.clone(),
        payload: item.payload.clone(),
    };
    match is_own_post(
        state,
        module.as_ref(),
        context.connection.id,
        &envelope,
        Door::Inbox,
    )
    .await
    {
        Ok(true) => return Ok(None),
        Ok(false) => {}
        // The full path recognises it all the same.
        Err(error) => {
            tracing::debug!(%error, "relay: cannot tell whether an event is the hub's own post")
        }
    }
    let addressee = match module.event_addressee(&envelope) {
        Some(account) => match addressee(state, context, &account).await {
            Ok(actor) => actor,
            Err(error) => {
                return Err(PlatformError::Unavailable(format!(
                    "looking up the representation the event is addressed to failed: {error}"
                )));
            }
        },
        None => None,
    };
    module
        .read_event(context, &envelope, addressee.as_ref())
        .await
}

/// The hub's synced representation acting as `account` on the connection's platform, with the
/// credentials it acts with (`None` when there is none: the module says what that means).
async fn addressee(
    state: &AppState,
    context: &ConnectionContext,
    account: &ExternalUserId,
) -> Result<Option<Actor>, StoreError> {
    let platform = context.connection.platform;
    let Some(AccountIdentity::Representation(person)) = state
        .directory
        .identity(
            &state.store,
            context.connection.id,
            platform,
            account.as_str(),
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(state
        .directory
        .actor(&state.store, person, platform)
        .await?
        .filter(|actor| super::acts_as(actor, account)))
}

/// What the hub must know of a chat it has no portal for before it can decide a message
/// written there: who is in it, read as `reader`, and, when one of the hub's representations
/// is (the chat is to be relayed), what was written there shortly before (`None` when that
/// could not be read). Read beside the batch's other reads, not while every decision waits.
struct NewChat {
    reader: Actor,
    members: Vec<ExternalUserId>,
    history: Option<Vec<InboundEvent>>,
}

/// Reads what a message's chat needs if the hub has no portal for it; `None` otherwise, or when
/// it cannot be read now (the decision then reads it itself, and meets the failure there).
async fn prepare_new_chat(
    state: &AppState,
    context: &ConnectionContext,
    event: &InboundEvent,
) -> Option<(ExternalChatId, NewChat)> {
    let InboundKind::MessagePosted { .. } = &event.kind else {
        return None;
    };
    let module = state.platforms.get(context.connection.platform).cloned()?;
    let posted = Posted::of(state, context.connection.platform, event.kind.clone())?;
    let connection = context.connection.id;
    let platform = context.connection.platform;
    let known = state
        .directory
        .portal_by_chat(&state.store, connection, &posted.origin.chat)
        .await;
    if !matches!(known, Ok(None)) {
        return None;
    }
    let (reader, members) = chat_members(state, module.as_ref(), context, &posted)
        .await
        .ok()?;
    let mut represented = false;
    for member in &members {
        if let Ok(Some(AccountIdentity::Representation(_))) = state
            .directory
            .identity(&state.store, connection, platform, member.as_str())
            .await
        {
            represented = true;
            break;
        }
    }
    let history = if represented {
        let after = posted.order - super::millis(BACKFILL_WINDOW) * 1000;
        module
            .messages_since(context, &reader, &posted.origin.chat, after)
            .await
            .ok()
    } else {
        None
    };
    Some((
        posted.origin.chat,
        NewChat {
            reader,
            members,
            history,
        },
    ))
}

/// Why an event could not be routed now.
#[derive(Debug, thiserror::Error)]
enum RouteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// What the relay decided about one event: what makes it unique, the copies to queue, and
/// (for a message written in a portal) when it was sent there.
#[derive(Debug, Default)]
struct Decision {
    seen: Option<String>,
    copies: Vec<NewOutboxItem>,
    written: Option<(ConnectionId, ExternalChatId, i64)>,
    /// A chat seen for the first time: what was written there shortly before this message
    /// (and missed, the hub being stopped) goes first.
    backfill: Option<Backfill>,
}

#[derive(Debug)]
struct Backfill {
    reader: Actor,
    chat: ExternalChatId,
    before_micros: i64,
}

/// How far back a chat seen for the first time is read for messages the hub missed.
const BACKFILL_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Relays, before a new chat's first message, what was written there shortly before it and
/// missed (a platform gives up redelivering, or redelivers after newer messages).
async fn backfill(
    state: &AppState,
    module: &dyn ChatPlatform,
    context: &ConnectionContext,
    decision: &Decision,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    let Some(backfill) = &decision.backfill else {
        return Ok(());
    };
    let read_before = batch
        .new_chats
        .get(&(context.connection.id, backfill.chat.clone()))
        .and_then(|chat| chat.history.clone());
    let events = match read_before {
        Some(events) => events,
        None => {
            let after = backfill.before_micros - super::millis(BACKFILL_WINDOW) * 1000;
            match module
                .messages_since(context, &backfill.reader, &backfill.chat, after)
                .await
            {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(chat = %backfill.chat, %error, "relay: cannot read what a new chat held before");
                    return Ok(());
                }
            }
        }
    };
    for event in events {
        let earlier = matches!(&event.kind, InboundKind::MessagePosted { sent_at_micros: Some(at), .. } if *at < backfill.before_micros);
        if !earlier {
            continue;
        }
        match decide(state, module, context, event, batch).await {
            Ok(decision) => batch.push(None, context.connection.platform, decision),
            Err(RouteError::Store(error)) => return Err(error),
            Err(RouteError::Platform(error)) => {
                tracing::warn!(chat = %backfill.chat, %error, "relay: a missed message cannot be relayed");
            }
        }
    }
    Ok(())
}

impl Decision {
    fn nothing(seen: String) -> Self {
        Self {
            seen: Some(seen),
            ..Self::default()
        }
    }
}

/// The decisions of one pass over the inbox (or over histories read back), recorded together:
/// one transaction of a few statements, however many events.
#[derive(Default)]
struct Batch {
    decided: Vec<Decided>,
    /// What was read beforehand of chats the hub had no portal for.
    new_chats: HashMap<(ConnectionId, ExternalChatId), NewChat>,
}

struct Decided {
    /// The stored event to mark read, when it came from the inbox.
    inbox: Option<i64>,
    seen: Option<(Platform, String)>,
    decision: Decision,
}

impl Batch {
    fn push(&mut self, inbox: Option<i64>, platform: Platform, mut decision: Decision) {
        let seen = decision.seen.take().map(|key| (platform, key));
        self.decided.push(Decided {
            inbox,
            seen,
            decision,
        });
    }

    /// A stored event there is nothing to do about: it is only marked read.
    fn mark_read(&mut self, inbox: i64) {
        self.decided.push(Decided {
            inbox: Some(inbox),
            seen: None,
            decision: Decision::default(),
        });
    }

    /// When the last message of a portal decided in this pass was sent.
    fn last_written(&self, connection: ConnectionId, chat: &ExternalChatId) -> Option<i64> {
        self.decided
            .iter()
            .filter_map(|d| d.decision.written.as_ref())
            .filter(|(c, written_in, _)| *c == connection && written_in == chat)
            .map(|(_, _, micros)| *micros)
            .max()
    }

    /// Records the decisions; returns whether copies were queued.
    async fn settle(self, state: &AppState) -> Result<bool, StoreError> {
        if self.decided.is_empty() {
            return Ok(false);
        }
        let settlements: Vec<Settlement<'_>> = self
            .decided
            .iter()
            .map(|d| Settlement {
                inbox: d.inbox,
                seen: d
                    .seen
                    .as_ref()
                    .map(|(platform, key)| (*platform, key.as_str())),
                written: d
                    .decision
                    .written
                    .as_ref()
                    .map(|(connection, chat, micros)| (*connection, chat, *micros)),
                copies: &d.decision.copies,
            })
            .collect();
        let fresh = state.store.settle_events(&settlements).await?;
        Ok(self
            .decided
            .iter()
            .zip(fresh)
            .any(|(d, fresh)| fresh && !d.decision.copies.is_empty()))
    }
}

/// Messages of a chat sent closer together than this are a burst, whose events may overtake
/// each other on their way (platforms deliver concurrently; a second later the earlier event
/// has arrived, unless its delivery failed, and a retry comes seconds later, which no short
/// wait covers)…
const BURST: Duration = Duration::from_secs(1);
/// …so each waits this long for the ones before it.
const REORDER_WAIT: Duration = Duration::from_millis(500);

/// Acts on what a platform says of a subscription: events it may have lost are read back from
/// the connection's recently active chats; a subscription removed or due for renewal is handed
/// to the upkeep, which creates or renews it at once, and what was written while a removed one
/// was gone is read back shortly after.
async fn subscription_changed(
    state: &AppState,
    context: &ConnectionContext,
    subscription: &str,
    change: SubscriptionChange,
) -> Result<(), StoreError> {
    let connection = context.connection.id;
    tracing::info!(%connection, subscription, ?change, "relay: a subscription changed");
    if change == SubscriptionChange::Missed {
        // Boxed: catching up decides events itself.
        return Box::pin(catch_up(state, Some(connection), None)).await;
    }
    let now = state.clock.now();
    let kept: Vec<StoredSubscription> = state
        .store
        .event_subscriptions(connection)
        .await?
        .into_iter()
        .filter(|s| !(s.id == subscription && change == SubscriptionChange::Removed))
        .map(|s| StoredSubscription {
            expires_at: if s.id == subscription {
                now
            } else {
                s.expires_at
            },
            ..s
        })
        .collect();
    state
        .store
        .replace_event_subscriptions(connection, &kept)
        .await?;
    state.relay.connection_changed();
    if change == SubscriptionChange::Removed {
        // Nothing was delivered from the moment the subscription went until the upkeep makes
        // it anew: what was written meanwhile is read back once it exists again.
        state
            .relay
            .redelivered(connection, now.unix_millis().saturating_mul(1000));
    }
    Ok(())
}

/// How far back the relay reads portals' histories after a stop.
const CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Reads back the chats of connections whose platform retried a delivery (see
/// [`super::Relay::redelivered`]), beside the route loop: a message whose every delivery
/// failed is relayed late rather than never, and one that was delivered is recognised as a
/// repeat when the two are recorded.
pub(super) async fn read_back(state: AppState) {
    loop {
        for (connection, since) in state.relay.to_read_back().await {
            tracing::info!(%connection, "relay: the platform retried deliveries; reading its chats back");
            if let Err(error) = catch_up(&state, Some(connection), Some(since)).await {
                tracing::warn!(%connection, %error, "relay: reading chats back failed");
            }
        }
        tokio::time::sleep(super::READ_BACK_PAUSE).await;
    }
}

/// After a stop, each portal written in recently is read from its last message on, and what
/// was written there meanwhile is relayed, in order, before anything newer: platforms retry a
/// delivery only for a while (Slack three times, within minutes), and a retry can come after
/// newer messages. With `from` (microseconds), each is read from then at the latest: messages
/// older than a portal's last one may have been lost too.
async fn catch_up(
    state: &AppState,
    only: Option<ConnectionId>,
    from: Option<i64>,
) -> Result<(), StoreError> {
    let since = now_micros(state) - super::millis(CATCH_UP_WINDOW) * 1000;
    let mut batch = Batch::default();
    for (portal, last) in state.store.portals_active_since(since).await? {
        if only.is_some_and(|connection| connection != portal.connection_id) {
            continue;
        }
        let Some(context) = state
            .directory
            .context(&state.store, portal.connection_id)
            .await?
        else {
            continue;
        };
        let Some(module) = state.platforms.get(portal.platform).cloned() else {
            continue;
        };
        let Some(conversation) = state
            .directory
            .conversation(&state.store, portal.conversation_id)
            .await?
        else {
            continue;
        };
        // Read as someone in the chat: a participant's representation there (a Slack bot is
        // in its DMs), or the hub.
        let mut reader = Actor::Hub;
        for person in &conversation.participants {
            if let Some(actor) = state
                .directory
                .actor(&state.store, *person, portal.platform)
                .await?
            {
                reader = actor;
                break;
            }
        }
        let events = match module
            .messages_since(
                &context,
                &reader,
                &portal.external_chat_id,
                from.map_or(last, |from| from.min(last)),
            )
            .await
        {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(chat = %portal.external_chat_id, %error, "relay: cannot read what a portal missed");
                continue;
            }
        };
        for event in events {
            match decide(state, module.as_ref(), &context, event, &batch).await {
                Ok(decision) => batch.push(None, portal.platform, decision),
                Err(RouteError::Store(error)) => return Err(error),
                Err(RouteError::Platform(error)) => {
                    tracing::warn!(chat = %portal.external_chat_id, %error, "relay: a missed message cannot be relayed");
                }
            }
        }
    }
    if batch.settle(state).await? {
        tracing::info!("relay: relayed messages whose events were missed");
        state.relay.outbox_filled();
    }
    Ok(())
}

/// Routes one stored event, once read, adding what was decided to the batch.
async fn route_item(
    state: &AppState,
    context: Option<&ConnectionContext>,
    item: &InboxItem,
    read: Read,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    let (Some(context), Some(module)) = (
        context,
        context.and_then(|c| state.platforms.get(c.connection.platform).cloned()),
    ) else {
        // The connection was removed since (or its platform's module): nowhere to go.
        batch.mark_read(item.id);
        return Ok(());
    };
    let platform = context.connection.platform;
    let decided = match read {
        Ok(None) => Ok(Decision::default()),
        Ok(Some(event)) => decide(state, module.as_ref(), context, event, batch).await,
        Err(error) => Err(RouteError::Platform(error)),
    };
    match decided {
        Ok(mut decision) => {
            for copy in &mut decision.copies {
                copy.received_micros = item.received_micros;
            }
            backfill(state, module.as_ref(), context, &decision, batch).await?;
            batch.push(Some(item.id), platform, decision);
            Ok(())
        }
        Err(RouteError::Store(error)) => Err(error),
        Err(RouteError::Platform(error))
            if error.is_retryable() && item.attempts + 1 < READ_ATTEMPTS =>
        {
            let wait = error
                .retry_after()
                .unwrap_or_else(|| backoff(item.attempts));
            tracing::debug!(event = %item.event_id, %error, ?wait, "relay: reading an event failed; retrying");
            state
                .store
                .inbound_failed(item.id, &error.to_string(), later(state.clock.now(), wait))
                .await?;
            Ok(())
        }
        Err(RouteError::Platform(error)) => {
            tracing::warn!(event = %item.event_id, %error, "relay: an event cannot be read; dropped");
            batch.mark_read(item.id);
            Ok(())
        }
    }
}

/// 1 s, 2 s, 4 s… up to ten minutes.
fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 9) as u32).min(Duration::from_secs(600))
}

/// Decides what to do about an event; `batch` holds the decisions made before it and not
/// recorded yet.
async fn decide(
    state: &AppState,
    module: &dyn ChatPlatform,
    context: &ConnectionContext,
    event: InboundEvent,
    batch: &Batch,
) -> Result<Decision, RouteError> {
    let platform = context.connection.platform;
    match event.kind {
        posted @ InboundKind::MessagePosted { .. } => {
            let Some(posted) = Posted::of(state, platform, posted) else {
                return Ok(Decision::default());
            };
            route_post(state, module, context, posted, batch).await
        }
        InboundKind::MessageToSharedChat {
            message,
            sender,
            sent_at_micros,
            body,
        } => {
            let posted = Posted {
                origin: key(platform, &message),
                chat_kind: ChatKind::Direct,
                sender,
                recipient: None,
                order: sent_at_micros.unwrap_or_else(|| now_micros(state)),
                body,
                thread: None,
            };
            match in_shared_chat(state, context, posted, batch).await? {
                Some(posted) => route_post(state, module, context, posted, batch).await,
                None => Ok(Decision::nothing(format!(
                    "posted/{}/{}",
                    message.chat, message.id
                ))),
            }
        }
        InboundKind::MessageEdited { message, body } => {
            let action = Follow {
                origin: key(platform, &message),
                action: OutboxAction::Edit,
                payload: Payload {
                    body: Some(Body::from(&body)),
                    ..Payload::default()
                },
            };
            route_follow_up(state, event.event_id, action).await
        }
        InboundKind::MessageDeleted { message } => {
            let action = Follow {
                origin: key(platform, &message),
                action: OutboxAction::Delete,
                payload: Payload::default(),
            };
            route_follow_up(state, event.event_id, action).await
        }
        InboundKind::ReactionChanged {
            message,
            user,
            emoji,
            present,
        } => {
            let reaction = Reaction {
                message: key(platform, &message),
                user,
                emoji,
                present,
            };
            route_reaction(state, context, event.event_id, reaction).await
        }
        InboundKind::MessageState {
            message,
            edit,
            reactions,
        } => message_state(state, context, key(platform, &message), edit, reactions).await,
        // Directory changes are Directory Sync's, not the relay's: a user disabled or deleted
        // may have left the groups it follows, which it reads again. Other changes to users
        // (the guests the hub itself invites among them) leave the groups as they are.
        InboundKind::UserChanged { user } => {
            if user.deactivated {
                crate::groups::read_now(state);
            }
            Ok(Decision::nothing(event.event_id))
        }
        InboundKind::DirectoryChanged { .. } => {
            crate::groups::read_now(state);
            Ok(Decision::nothing(event.event_id))
        }
        InboundKind::SubscriptionChanged {
            subscription,
            change,
        } => {
            subscription_changed(state, context, &subscription, change).await?;
            Ok(Decision::nothing(event.event_id))
        }
    }
}

fn key(platform: Platform, message: &MessageRef) -> MessageKey {
    MessageKey {
        platform,
        chat: message.chat.clone(),
        message: message.id.clone(),
    }
}

/// A message written on a platform.
struct Posted {
    origin: MessageKey,
    chat_kind: ChatKind,
    sender: ExternalUserId,
    recipient: Option<ExternalUserId>,
    order: i64,
    body: RichText,
    thread: Option<MessageRef>,
}

impl Posted {
    /// The message an event says was written; `None` for any other event.
    fn of(state: &AppState, platform: Platform, kind: InboundKind) -> Option<Self> {
        let InboundKind::MessagePosted {
            message,
            chat_kind,
            sender,
            recipient,
            sent_at_micros,
            body,
            thread,
        } = kind
        else {
            return None;
        };
        Some(Self {
            origin: key(platform, &message),
            chat_kind,
            sender,
            recipient,
            order: sent_at_micros.unwrap_or_else(|| now_micros(state)),
            body,
            thread,
        })
    }
}

/// Now, as a lane order for what has no time of its own (edits, deletions): after every
/// message sent before.
fn now_micros(state: &AppState) -> i64 {
    state.clock.now().unix_millis().saturating_mul(1000)
}

async fn route_post(
    state: &AppState,
    module: &dyn ChatPlatform,
    context: &ConnectionContext,
    posted: Posted,
    batch: &Batch,
) -> Result<Decision, RouteError> {
    let store = &state.store;
    let connection = context.connection.id;
    let platform = context.connection.platform;
    let seen = format!("posted/{}/{}", posted.origin.chat, posted.origin.message);
    let sender = match state
        .directory
        .identity(store, connection, platform, posted.sender.as_str())
        .await?
    {
        Some(AccountIdentity::Person(person)) => person,
        // What a representation writes is the hub's own doing (or a person on their secondary
        // platform, where their chats stay): relaying it again would echo.
        Some(AccountIdentity::Representation(_)) => return Ok(Decision::nothing(seen)),
        // Somebody the hub did not import (an outside guest, another app).
        None => return Ok(Decision::nothing(seen)),
    };
    // Both at once: each is a round trip, and the route loop decides one event at a time.
    let (relayed, stored_last) = tokio::try_join!(
        store.relayed_copy(&posted.origin),
        store.last_message_in(connection, &posted.origin.chat)
    )?;
    if relayed.is_some() {
        return Ok(Decision::nothing(seen));
    }
    let mut backfill_from = None;
    let conversation = match state
        .directory
        .portal_by_chat(store, connection, &posted.origin.chat)
        .await?
    {
        Some(portal) => {
            state
                .directory
                .conversation(store, portal.conversation_id)
                .await?
        }
        None => {
            let read_before = batch
                .new_chats
                .get(&(connection, posted.origin.chat.clone()))
                .map(|chat| (chat.reader.clone(), chat.members.clone()));
            let (reader, members) = match read_before {
                Some(read) => read,
                None => chat_members(state, module, context, &posted).await?,
            };
            let adopted =
                adopt_chat(state, connection, platform, &posted.origin.chat, &members).await?;
            if adopted.is_some() {
                backfill_from = Some(reader);
            }
            adopted
        }
    };
    let Some(conversation) = conversation else {
        return Ok(Decision::nothing(seen));
    };
    // An admin restricted the sender: their message stays where it was written.
    if state.directory.is_restricted(store, sender).await? {
        super::notice::restricted(state, sender, platform, conversation.id);
        return Ok(Decision::nothing(seen));
    }
    let mut participants = Vec::with_capacity(conversation.participants.len());
    for person in &conversation.participants {
        let primary = state
            .directory
            .person(store, *person)
            .await?
            .and_then(|p| p.primary)
            .map(|p| p.platform);
        participants.push(Participant {
            person: *person,
            primary,
        });
    }
    let found = destinations(sender, platform, &participants);
    for unreached in &found.unreached {
        let Unreached::NoPrimary(person) = unreached;
        tracing::info!(%person, conversation = %conversation.id, "relay: a participant has no primary platform yet; they get no copy");
    }
    let payload = Payload {
        body: Some(Body::from(&posted.body)),
        thread: posted.thread.map(|parent| parent.id),
        ..Payload::default()
    }
    .encode();
    // Platforms deliver events in no guaranteed order. A message written right after the
    // previous one of its chat waits a moment, so that an earlier one still on its way takes
    // its place first in the lane; a conversation at a human pace goes out at once.
    let previous = batch
        .last_written(connection, &posted.origin.chat)
        .or(stored_last);
    let due_at = previous
        .filter(|last| posted.order - last < super::millis(BURST) * 1000)
        .map(|_| later(state.clock.now(), REORDER_WAIT));
    let mut copies = Vec::new();
    for target in found.platforms {
        let Some(target_connection) = connection_on(state, target).await? else {
            tracing::warn!(
                platform = target.as_str(),
                "relay: no connection to deliver to"
            );
            continue;
        };
        copies.push(NewOutboxItem {
            conversation: conversation.id,
            platform: target,
            connection: target_connection,
            sender,
            origin: posted.origin.clone(),
            order: posted.order,
            action: OutboxAction::Post,
            payload: payload.clone(),
            due_at,
            received_micros: None,
        });
    }
    Ok(Decision {
        seen: Some(seen),
        copies,
        written: Some((connection, posted.origin.chat.clone(), posted.order)),
        backfill: backfill_from.map(|reader| Backfill {
            reader,
            chat: posted.origin.chat.clone(),
            before_micros: posted.order,
        }),
    })
}

/// A message written in a chat several portals share, as written in the portal of the
/// conversation it answers (see [`switchboard_core::answered`]), without the name that chose
/// it; `None` when no portal shares the chat, and the writer is told there is no one to
/// answer there.
async fn in_shared_chat(
    state: &AppState,
    context: &ConnectionContext,
    mut posted: Posted,
    batch: &Batch,
) -> Result<Option<Posted>, RouteError> {
    let store = &state.store;
    let connection = context.connection.id;
    let platform = context.connection.platform;
    let Some(AccountIdentity::Person(writer)) = state
        .directory
        .identity(store, connection, platform, posted.sender.as_str())
        .await?
    else {
        return Ok(None);
    };
    let portals = store
        .portals_in_shared_chat(connection, &posted.origin.chat)
        .await?;
    let mut names = Vec::with_capacity(portals.len());
    for (portal, _) in &portals {
        let mut others = Vec::new();
        if let Some(conversation) = state
            .directory
            .conversation(store, portal.conversation_id)
            .await?
        {
            for person in conversation.participants {
                if person != writer
                    && let Some(person) = state.directory.person(store, person).await?
                {
                    others.push(person.display_name);
                }
            }
        }
        names.push(others);
    }
    let candidates: Vec<SharedPortal<'_>> = portals
        .iter()
        .zip(&names)
        .map(|((portal, last), names)| SharedPortal {
            names: names.iter().map(String::as_str).collect(),
            last_written: batch
                .last_written(connection, &portal.external_chat_id)
                .max(*last),
        })
        .collect();
    let text = posted.body.to_plain_text();
    let Some((chosen, rest)) = answered(&text, &candidates) else {
        super::notice::nobody_to_answer(state, writer, platform);
        return Ok(None);
    };
    if rest.len() != text.len() {
        posted.body = RichText::plain(rest);
    }
    posted.origin.chat = portals[chosen].0.external_chat_id.clone();
    Ok(Some(posted))
}

/// The accounts in the chat a message was written in.
/// Who can read the chat, and the accounts in it.
async fn chat_members(
    state: &AppState,
    module: &dyn ChatPlatform,
    context: &ConnectionContext,
    posted: &Posted,
) -> Result<(Actor, Vec<ExternalUserId>), RouteError> {
    let platform = context.connection.platform;
    // Read as the account the platform addressed the event to, where it said which.
    let reader = match &posted.recipient {
        Some(recipient) => match state
            .directory
            .identity(
                &state.store,
                context.connection.id,
                platform,
                recipient.as_str(),
            )
            .await?
        {
            Some(AccountIdentity::Representation(person)) => {
                state
                    .directory
                    .actor(&state.store, person, platform)
                    .await?
            }
            _ => None,
        },
        None => None,
    };
    // A direct message to a representation is between its writer and that representation.
    if let (ChatKind::Direct, Some(recipient)) = (posted.chat_kind, &posted.recipient) {
        return Ok((
            reader.unwrap_or(Actor::Hub),
            vec![posted.sender.clone(), recipient.clone()],
        ));
    }
    match reader {
        Some(reader) => {
            let members = module
                .chat_members(context, &reader, &posted.origin.chat)
                .await?;
            Ok((reader, members))
        }
        None => Ok(switchboard_platform::members_of_new_chat(
            module,
            context,
            &posted.origin.chat,
            &posted.sender,
        )
        .await?),
    }
}

/// Makes a chat the hub had not seen a portal of its conversation, when a representation is
/// among its members; `None` when none is (a chat between people at home on the platform).
async fn adopt_chat(
    state: &AppState,
    connection: ConnectionId,
    platform: Platform,
    chat: &ExternalChatId,
    members: &[ExternalUserId],
) -> Result<Option<Conversation>, StoreError> {
    let store = &state.store;
    let mut people = BTreeSet::new();
    let mut represented = false;
    for member in members {
        match state
            .directory
            .identity(store, connection, platform, member.as_str())
            .await?
        {
            Some(AccountIdentity::Person(person)) => {
                people.insert(person);
            }
            Some(AccountIdentity::Representation(person)) => {
                represented = true;
                people.insert(person);
            }
            None => {}
        }
    }
    if !represented || people.len() < 2 {
        return Ok(None);
    }
    let conversation = if people.len() == 2 {
        let mut pair = people.into_iter();
        let (Some(a), Some(b)) = (pair.next(), pair.next()) else {
            return Ok(None);
        };
        store.direct_conversation(a, b).await?
    } else {
        store.create_group_conversation(people).await?
    };
    match store
        .create_portal(conversation.id, platform, connection, chat, None)
        .await
    {
        Ok(_) => {}
        // The conversation already has its portal here (another chat with the same people):
        // its messages are relayed all the same; replies go to the recorded portal.
        Err(StoreError::Conflict(what)) => {
            tracing::info!(%chat, conversation = %conversation.id, %what, "relay: a second chat for a conversation");
        }
        Err(error) => return Err(error),
    }
    Ok(Some(conversation))
}

/// An edit or deletion of a message, to follow to its copies.
struct Follow {
    origin: MessageKey,
    action: OutboxAction,
    payload: Payload,
}

async fn route_follow_up(
    state: &AppState,
    event_id: String,
    follow: Follow,
) -> Result<Decision, RouteError> {
    let store = &state.store;
    let order = now_micros(state);
    // The hub's own edits and deletions of copies come back as events too: never relayed.
    if store.relayed_copy(&follow.origin).await?.is_some() {
        return Ok(Decision::nothing(event_id));
    }
    let copies = store.copies_of(&follow.origin).await?;
    // A restricted person's edits would say something new where others read it; a deletion
    // still follows.
    if follow.action == OutboxAction::Edit
        && let Some(copy) = copies.first()
        && state.directory.is_restricted(store, copy.sender).await?
    {
        return Ok(Decision::nothing(event_id));
    }
    let payload = follow.payload.encode();
    Ok(Decision {
        seen: Some(event_id),
        written: None,
        backfill: None,
        copies: copies
            .into_iter()
            .map(|copy| NewOutboxItem {
                conversation: copy.conversation,
                platform: copy.copy.platform,
                connection: copy.copy_connection,
                sender: copy.sender,
                origin: follow.origin.clone(),
                order,
                action: follow.action,
                payload: payload.clone(),
                due_at: None,
                received_micros: None,
            })
            .collect(),
    })
}

/// A reaction added to or removed from a message.
struct Reaction {
    message: MessageKey,
    user: ExternalUserId,
    emoji: String,
    present: bool,
}

/// A reaction to a relayed message goes on its other copies, and a reaction to a copy on the
/// original and its other copies: everyone sees it where they read the message.
async fn route_reaction(
    state: &AppState,
    context: &ConnectionContext,
    event_id: String,
    reaction: Reaction,
) -> Result<Decision, RouteError> {
    let store = &state.store;
    let reactor = match state
        .directory
        .identity(
            store,
            context.connection.id,
            context.connection.platform,
            reaction.user.as_str(),
        )
        .await?
    {
        Some(AccountIdentity::Person(person)) => person,
        // The hub's own reactions, as a representation, come back as events: never relayed.
        Some(AccountIdentity::Representation(_)) | None => {
            return Ok(Decision::nothing(event_id));
        }
    };
    if state.directory.is_restricted(store, reactor).await? {
        return Ok(Decision::nothing(event_id));
    }
    let (origin, conversation, mut targets) = match store.relayed_copy(&reaction.message).await? {
        Some(relayed) => {
            let Some(connection) = connection_on(state, relayed.origin.platform).await? else {
                return Ok(Decision::nothing(event_id));
            };
            let original = (relayed.origin.clone(), connection);
            let others = store.copies_of(&relayed.origin).await?;
            let mut targets = vec![original];
            targets.extend(
                others
                    .into_iter()
                    .filter(|c| c.copy != reaction.message)
                    .map(|c| (c.copy, c.copy_connection)),
            );
            (relayed.origin, relayed.conversation, targets)
        }
        None => {
            let copies = store.copies_of(&reaction.message).await?;
            let Some(conversation) = copies.first().map(|c| c.conversation) else {
                return Ok(Decision::nothing(event_id));
            };
            let targets = copies
                .into_iter()
                .map(|c| (c.copy, c.copy_connection))
                .collect();
            (reaction.message.clone(), conversation, targets)
        }
    };
    targets.retain(|(target, _)| target.platform != context.connection.platform);
    let order = now_micros(state);
    let action = if reaction.present {
        OutboxAction::React
    } else {
        OutboxAction::Unreact
    };
    let copies = targets
        .into_iter()
        .map(|(target, connection)| NewOutboxItem {
            conversation,
            platform: target.platform,
            connection,
            sender: reactor,
            origin: origin.clone(),
            order,
            action,
            due_at: None,
            received_micros: None,
            payload: Payload {
                emoji: Some(reaction.emoji.clone()),
                target: Some(Target {
                    chat: target.chat.as_str().to_owned(),
                    message: target.message,
                }),
                ..Payload::default()
            }
            .encode(),
        })
        .collect();
    Ok(Decision {
        seen: Some(event_id),
        copies,
        written: None,
        backfill: None,
    })
}

/// A message's state as the platform reports it: an edit not seen before follows to the copies,
/// and each reaction added or removed since the state seen before follows too.
async fn message_state(
    state: &AppState,
    context: &ConnectionContext,
    message: MessageKey,
    edit: Option<(String, RichText)>,
    reactions: Vec<(ExternalUserId, String)>,
) -> Result<Decision, RouteError> {
    let store = &state.store;
    let platform = context.connection.platform;
    let mut decision = Decision::default();
    if let Some((version, body)) = edit {
        let seen = format!("edited/{}/{}/{version}", message.chat, message.message);
        if !store.seen_before(platform, &seen).await? {
            let follow = Follow {
                origin: message.clone(),
                action: OutboxAction::Edit,
                payload: Payload {
                    body: Some(Body::from(&body)),
                    ..Payload::default()
                },
            };
            decision = route_follow_up(state, seen, follow).await?;
        }
    }
    let now: BTreeSet<(String, String)> = reactions
        .into_iter()
        .map(|(user, emoji)| (user.as_str().to_owned(), emoji))
        .collect();
    let before: BTreeSet<(String, String)> =
        store.reactions_seen(&message).await?.into_iter().collect();
    if now == before {
        return Ok(decision);
    }
    store
        .replace_reactions_seen(&message, &now.iter().cloned().collect::<Vec<_>>())
        .await?;
    let changes = now
        .difference(&before)
        .map(|reaction| (reaction, true))
        .chain(before.difference(&now).map(|reaction| (reaction, false)));
    for ((user, emoji), present) in changes {
        let reaction = Reaction {
            message: message.clone(),
            user: ExternalUserId::new(user),
            emoji: emoji.clone(),
            present,
        };
        let reacted = route_reaction(state, context, String::new(), reaction).await?;
        decision.copies.extend(reacted.copies);
    }
    Ok(decision)
}

/// The connection the hub delivers to on a platform.
pub(super) async fn connection_on(
    state: &AppState,
    platform: Platform,
) -> Result<Option<ConnectionId>, StoreError> {
    Ok(state
        .directory
        .connection_on(&state.store, platform)
        .await?
        .map(|c| c.id))
}
