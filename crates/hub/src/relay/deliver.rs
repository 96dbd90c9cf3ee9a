//! Delivering the outbox: each copy posted (edited, deleted) as the sender's representation,
//! one at a time per conversation and platform, many lanes at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use switchboard_core::{
    Block, ExternalChatId, ExternalUserId, Inline, Mention, PersonId, Platform, RichText,
};
use switchboard_platform::{Actor, MessageRef, OutboundMessage, PlatformError};
use switchboard_store::{MessageKey, OutboxAction, OutboxItem, StoreError};
use tokio::sync::Semaphore;

use super::payload::{Body, Payload};
use super::{IDLE_POLL, UnsyncedSenders, later};
use crate::AppState;

/// The latency the hub adds to a copy: from the delivery of the event it was decided from to
/// the destination platform accepting it (retries, holds and restarts included; recording
/// the copy in the map afterwards is not).
pub const ADDED_LATENCY: &str = "switchboard_relay_added_latency_seconds";
/// Lanes delivered at once: one slow or rate-limited chat holds one of them, not the others.
const IN_FLIGHT: usize = 256;
/// Lanes one destination platform may hold at once. A module that paces its writes (Google
/// Chat's quota per project) keeps a copy in flight while it waits for its turn; without a
/// share, a backlog for that platform would hold every lane and starve the others.
const IN_FLIGHT_PER_PLATFORM: usize = IN_FLIGHT / 2;
/// While a platform is busy, how often the outbox is looked at for copies to the others that
/// came due (a retry's time): new copies and ended deliveries wake the loop at once anyway.
const BUSY_POLL_MILLIS: i64 = 50;
/// How often the outbox is read whole to find any copy its index in memory missed (none is
/// expected: this is a safety net, and a find is logged).
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// Attempts before a copy is given up and dead-lettered.
const ATTEMPTS: i64 = 10;
/// How often a copy held for a sender's representation is tried again.
const HOLD_RETRY: Duration = Duration::from_secs(15);
/// How long a copy is held for a sender's representation before it is given up.
const HOLD_ATTEMPTS: i64 = 24 * 60 * 4;
/// How long a copy may stay queued while its platform throttles it before it is given up.
const THROTTLED_FOR: Duration = Duration::from_secs(24 * 3600);
/// The wait after a 429 that does not say how long (with jitter, up to twice as long).
const THROTTLED_WAIT: Duration = Duration::from_secs(5);

/// Copies a stopped hub was sending are free again, and checked before they are sent.
pub(super) async fn recover(state: &AppState) {
    match state.store.recover_outbox().await {
        Ok(0) => {}
        Ok(recovered) => {
            tracing::info!(
                recovered,
                "relay: copies in flight when the hub stopped are sent again once checked"
            );
        }
        Err(error) => tracing::warn!(%error, "relay: cannot recover the copies in flight"),
    }
}

pub(super) async fn run(state: AppState, senders: Arc<dyn UnsyncedSenders>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let per_platform = Arc::new(InFlight::default());
    let mut reconciled = tokio::time::Instant::now();
    loop {
        if reconciled.elapsed() >= RECONCILE_EVERY {
            reconciled = tokio::time::Instant::now();
            match state.store.reconcile_outbox().await {
                Ok(0) => {}
                Ok(missing) => {
                    tracing::warn!(
                        missing,
                        "relay: queued copies were missing from the outbox index; added"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "relay: cannot read the outbox to check its index")
                }
            }
        }
        let free = slots.available_permits();
        if free == 0 {
            let _ = tokio::time::timeout(IDLE_POLL, state.relay.outbox.notified()).await;
            continue;
        }
        let busy = per_platform.busy();
        match state.store.lease_outbox(free as i64, &busy).await {
            Ok(items) if items.is_empty() => {
                // Until the next copy is due (a retry, a held copy), or more are queued, or a
                // delivery ends. The next due copy may be one to a busy platform, due already:
                // a delivery ending wakes this loop for it, so it is not polled for.
                let soonest = if busy.is_empty() { 1 } else { BUSY_POLL_MILLIS };
                let until_due = state.store.next_outbox_due().map_or(IDLE_POLL, |due| {
                    let wait = due
                        .saturating_sub(state.clock.now().unix_millis())
                        .max(soonest);
                    Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX))
                });
                let _ =
                    tokio::time::timeout(until_due.min(IDLE_POLL), state.relay.outbox.notified())
                        .await;
            }
            Ok(items) => {
                for item in items {
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let (state, senders) = (state.clone(), senders.clone());
                    let share = per_platform.clone().enter(item.platform);
                    tokio::spawn(async move {
                        if let Err(error) = deliver(&state, senders.as_ref(), &item).await {
                            tracing::warn!(item = item.id, %error, "relay: recording a delivery failed");
                        }
                        drop((slot, share));
                        // The lane's next copy may be taken now.
                        state.relay.outbox_filled();
                    });
                }
            }
            Err(error) => {
                tracing::warn!(%error, "relay: reading the outbox failed");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// The copies in flight to each destination platform.
#[derive(Default)]
struct InFlight(std::sync::Mutex<HashMap<Platform, usize>>);

impl InFlight {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Platform, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The platforms whose copies hold their whole share of the lanes.
    fn busy(&self) -> Vec<Platform> {
        self.counts()
            .iter()
            .filter(|(_, count)| **count >= IN_FLIGHT_PER_PLATFORM)
            .map(|(platform, _)| *platform)
            .collect()
    }

    /// Counts a copy to `platform` in flight until the returned guard is dropped.
    fn enter(self: Arc<Self>, platform: Platform) -> InFlightCopy {
        *self.counts().entry(platform).or_default() += 1;
        InFlightCopy {
            in_flight: self,
            platform,
        }
    }
}

struct InFlightCopy {
    in_flight: Arc<InFlight>,
    platform: Platform,
}

impl Drop for InFlightCopy {
    fn drop(&mut self) {
        if let Some(count) = self.in_flight.counts().get_mut(&self.platform) {
            *count = count.saturating_sub(1);
        }
    }
}

/// Why a copy was not delivered this time.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// Waiting for something the hub expects to happen (a participant's sync).
    #[error("{0}")]
    Held(String),
    /// Waiting for the sender's representation on the destination platform.
    #[error("{0}")]
    SenderNotSynced(String),
    /// Never going to work as it is.
    #[error("{0}")]
    Impossible(String),
}

async fn deliver(
    state: &AppState,
    senders: &dyn UnsyncedSenders,
    item: &OutboxItem,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let attempt_started = state.clock.now();
    // Since when the next attempt looks for a copy already posted: an earlier attempt's start
    // if one may have reached the platform, else this one's if it may have.
    let sent_since = |may_have_applied: bool| {
        item.maybe_sent_since
            .or(may_have_applied.then_some(attempt_started))
    };
    let attempted = attempt(state, item).await;
    let accepted_micros = crate::clock::wall_clock_micros();
    match attempted {
        Ok(copy) => {
            state.store.outbox_delivered(item, copy.as_ref()).await?;
            metrics::counter!("switchboard_relay_delivered_total", "platform" => item.platform.as_str(), "action" => item.action.as_str()).increment(1);
            metrics::histogram!("switchboard_relay_delivery_seconds", "platform" => item.platform.as_str())
                .record(started.elapsed().as_secs_f64());
            if let Some(received) = item.received_micros {
                let added = accepted_micros.saturating_sub(received);
                metrics::histogram!(ADDED_LATENCY, "platform" => item.platform.as_str())
                    .record(added as f64 / 1e6);
            }
            Ok(())
        }
        Err(Failure::Store(error)) => {
            state
                .store
                .outbox_failed(
                    item.id,
                    &error.to_string(),
                    Some(retry_at(state, item, None)),
                    sent_since(false),
                )
                .await?;
            Err(error)
        }
        Err(Failure::SenderNotSynced(reason)) if item.attempts + 1 < HOLD_ATTEMPTS => {
            tracing::debug!(item = item.id, %reason, "relay: copy held for its sender's sync");
            let prompted = match senders.prompt(item.sender, item.platform).await {
                Ok(prompted) => prompted,
                Err(error) => {
                    tracing::warn!(person = %item.sender, %error, "relay: auto-prompt failed");
                    false
                }
            };
            if item.attempts == 0 && item.action == OutboxAction::Post {
                let next = if prompted {
                    "We have just sent you a link to sync; it will be delivered as soon as you do."
                } else {
                    "It will be delivered as soon as you are synced."
                };
                tell_sender(
                    state,
                    item,
                    &format!("Your message is waiting: {reason}. {next}"),
                )
                .await;
            }
            state
                .store
                .outbox_failed(
                    item.id,
                    &reason,
                    Some(later(state.clock.now(), HOLD_RETRY)),
                    sent_since(false),
                )
                .await
        }
        Err(Failure::Held(reason)) if item.attempts + 1 < HOLD_ATTEMPTS => {
            tracing::debug!(item = item.id, %reason, "relay: copy held");
            state
                .store
                .outbox_failed(
                    item.id,
                    &reason,
                    Some(later(state.clock.now(), HOLD_RETRY)),
                    sent_since(false),
                )
                .await
        }
        // A platform that throttles says when to come back: that is its pace, not a failure,
        // so a chat held at 429 for hours keeps its copies (as long as one held for a sync),
        // and the attempt does not count towards the copy's failures.
        Err(Failure::Platform(error @ PlatformError::RateLimited { .. }))
            if state.clock.now().unix_millis() - item.created_at.unix_millis()
                < super::millis(THROTTLED_FOR) =>
        {
            tracing::debug!(item = item.id, %error, "relay: delivery throttled; retrying when asked");
            let wait = error
                .retry_after()
                .unwrap_or_else(|| THROTTLED_WAIT.mul_f64(rand::rng().random_range(1.0..=2.0)));
            state
                .store
                .outbox_throttled(
                    item.id,
                    &error.to_string(),
                    later(state.clock.now(), wait),
                    sent_since(false),
                )
                .await
        }
        Err(Failure::Platform(error)) if error.is_retryable() && item.attempts + 1 < ATTEMPTS => {
            tracing::debug!(item = item.id, %error, "relay: delivery failed; retrying");
            state
                .store
                .outbox_failed(
                    item.id,
                    &error.to_string(),
                    Some(retry_at(state, item, error.retry_after())),
                    sent_since(error.may_have_applied()),
                )
                .await
        }
        Err(failure) => {
            tracing::warn!(item = item.id, platform = item.platform.as_str(), %failure, "relay: copy dead-lettered");
            metrics::counter!("switchboard_relay_dead_letters_total", "platform" => item.platform.as_str()).increment(1);
            if item.action == OutboxAction::Post {
                tell_sender(
                    state,
                    item,
                    &format!(
                        "Your message could not be delivered to {}: {failure}.",
                        item.platform.display_name()
                    ),
                )
                .await;
            }
            let maybe_sent =
                matches!(&failure, Failure::Platform(error) if error.may_have_applied());
            state
                .store
                .outbox_failed(item.id, &failure.to_string(), None, sent_since(maybe_sent))
                .await
        }
    }
}

/// What a late copy says under its text: a platform retried its origin's event after newer
/// messages had gone out, so the copy sits below them; readers are told rather than misled.
fn late_note(sent_micros: i64) -> Block {
    let minutes = sent_micros.div_euclid(60_000_000).rem_euclid(24 * 60);
    Block::Paragraph(vec![Inline::Italic(vec![Inline::Text(format!(
        "(Sent at {:02}:{:02} UTC, before the messages above: it reached Switchboard late.)",
        minutes / 60,
        minutes % 60
    ))])])
}

/// When to try again: when the platform asked, or after an exponential backoff (1 s, 2 s, 4 s…
/// up to five minutes) with full jitter, so that lanes failing together do not retry together.
fn retry_at(
    state: &AppState,
    item: &OutboxItem,
    asked: Option<Duration>,
) -> switchboard_core::Timestamp {
    let wait = asked.unwrap_or_else(|| {
        let ceiling = Duration::from_secs(1u64 << item.attempts.clamp(0, 8) as u32)
            .min(Duration::from_secs(300));
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    });
    later(state.clock.now(), wait)
}

/// One attempt; returns the copy made, for the map.
async fn attempt(state: &AppState, item: &OutboxItem) -> Result<Option<MessageKey>, Failure> {
    let store = &state.store;
    let payload = Payload::decode(&item.payload).map_err(Failure::Impossible)?;
    let context = state
        .directory
        .context(store, item.connection)
        .await?
        .ok_or_else(|| Failure::Impossible("the destination connection was removed".into()))?;
    let module = state.platforms.get(item.platform).cloned().ok_or_else(|| {
        Failure::Impossible(format!("this hub has no {} module", item.platform.as_str()))
    })?;
    let Some(actor) = state
        .directory
        .actor(store, item.sender, item.platform)
        .await?
    else {
        let name = state
            .directory
            .person(store, item.sender)
            .await?
            .map_or_else(|| "the sender".to_owned(), |p| p.display_name);
        return Err(Failure::SenderNotSynced(format!(
            "{name} is not synced to {} yet",
            item.platform.display_name()
        )));
    };
    match item.action {
        OutboxAction::Post => {
            let chat = match state
                .directory
                .portal(store, item.conversation, item.platform)
                .await?
            {
                Some(portal) => portal.external_chat_id,
                None => {
                    let members = destination_members(state, item).await?;
                    let chat = module.open_chat(&context, &actor, &members).await?;
                    store
                        .create_portal(
                            item.conversation,
                            item.platform,
                            item.connection,
                            &chat,
                            module.shared_chat(&chat).as_ref(),
                        )
                        .await?;
                    chat
                }
            };
            let thread = match &payload.thread {
                Some(parent) => {
                    thread_on(
                        store,
                        item.platform,
                        &MessageKey {
                            message: parent.clone(),
                            ..item.origin.clone()
                        },
                    )
                    .await?
                }
                None => None,
            };
            let mut body = translated(state, item, payload.body.as_ref()).await?;
            if item.is_late() {
                body.blocks.push(late_note(item.order));
            }
            let message = OutboundMessage {
                body,
                thread,
                idempotency_key: Some(format!("switchboard-{}", item.id)),
            };
            if let Some(since) = item.maybe_sent_since
                && let Some(copy) = sent_before(
                    state,
                    module.as_ref(),
                    &context,
                    &actor,
                    &chat,
                    &message,
                    since,
                )
                .await?
            {
                tracing::info!(
                    item = item.id,
                    "relay: a copy sent before a stop or an unclear failure was recognised, not sent again"
                );
                return Ok(Some(copy));
            }
            let sent = module
                .post_message(&context, &actor, &chat, &message)
                .await?;
            state.relay.copies.posted(item.platform, &sent);
            Ok(Some(MessageKey {
                platform: item.platform,
                chat: sent.chat,
                message: sent.id,
            }))
        }
        OutboxAction::Edit | OutboxAction::Delete => {
            let Some(copy) = copy_on(store, item).await? else {
                // The copy was never made (its post was dead-lettered): nothing to change.
                return Ok(None);
            };
            if item.action == OutboxAction::Edit {
                let replacement = OutboundMessage {
                    body: translated(state, item, payload.body.as_ref()).await?,
                    thread: None,
                    idempotency_key: None,
                };
                module
                    .edit_message(&context, &actor, &copy, &replacement)
                    .await?;
            } else {
                match module.delete_message(&context, &actor, &copy).await {
                    Ok(()) | Err(PlatformError::NotFound(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Ok(None)
        }
        OutboxAction::React | OutboxAction::Unreact => {
            let target = match &payload.target {
                Some(target) => Some(MessageRef {
                    chat: ExternalChatId::new(target.chat.clone()),
                    id: target.message.clone(),
                }),
                None => copy_on(store, item).await?,
            };
            let (Some(target), Some(emoji)) = (target, payload.emoji.as_deref()) else {
                return Ok(None);
            };
            module
                .set_reaction(
                    &context,
                    &actor,
                    &target,
                    emoji,
                    item.action == OutboxAction::React,
                )
                .await?;
            Ok(None)
        }
    }
}

/// How far back to look for a copy an earlier attempt may have posted: its start, less the
/// skew between the hub's clock and the platform's.
const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The copy an earlier attempt posted, if the platform has one the map does not know yet.
async fn sent_before(
    state: &AppState,
    module: &dyn switchboard_platform::ChatPlatform,
    context: &switchboard_platform::ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
    since: switchboard_core::Timestamp,
) -> Result<Option<MessageKey>, Failure> {
    let since = switchboard_core::Timestamp::from_unix_millis(
        since.unix_millis() - super::millis(CLOCK_SKEW),
    );
    for candidate in module
        .find_posted(context, actor, chat, message, since)
        .await?
    {
        let key = MessageKey {
            platform: context.connection.platform,
            chat: candidate.chat,
            message: candidate.id,
        };
        if state.store.relayed_copy(&key).await?.is_none() {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// A message's text for the item's platform: each mention of an account on the origin
/// platform becomes a mention of that person's identity on the destination — their own
/// account where it is their primary platform, else their representation — or, where they
/// have none there, their name as plain text.
async fn translated(
    state: &AppState,
    item: &OutboxItem,
    body: Option<&Body>,
) -> Result<RichText, StoreError> {
    let Some(body) = body else {
        return Ok(RichText::default());
    };
    let text = body.to_rich_text();
    let store = &state.store;
    let origin_connection = super::route::connection_on(state, item.origin.platform).await?;
    let mut names: HashMap<ExternalUserId, String> = HashMap::new();
    let mut targets: HashMap<ExternalUserId, ExternalUserId> = HashMap::new();
    for mention in text.mentions() {
        if names.contains_key(&mention.user) {
            continue;
        }
        let Some(connection) = origin_connection else {
            break;
        };
        let Some(identity) = state
            .directory
            .identity(
                store,
                connection,
                item.origin.platform,
                mention.user.as_str(),
            )
            .await?
        else {
            continue;
        };
        let person = identity.person();
        let Some(found) = state.directory.person(store, person).await? else {
            continue;
        };
        names.insert(mention.user.clone(), found.display_name.clone());
        let account = if found.primary.map(|p| p.platform) == Some(item.platform) {
            state
                .directory
                .own_account(store, person, item.platform)
                .await?
                .map(ExternalUserId::new)
        } else {
            match state.directory.actor(store, person, item.platform).await? {
                Some(Actor::Representation { account, .. }) => Some(account),
                _ => None,
            }
        };
        if let Some(account) = account {
            targets.insert(mention.user.clone(), account);
        }
    }
    // Slack names no one in `<@U…>`: the label is the person's name wherever it is missing,
    // so that a mention that cannot be translated still reads as who was meant.
    let labelled = text.map_mentions(|mention| {
        Some(Mention {
            user: mention.user.clone(),
            label: match names.get(&mention.user) {
                Some(name) if mention.label.is_empty() => name.clone(),
                _ => mention.label.clone(),
            },
        })
    });
    Ok(labelled.map_mentions(|mention| {
        targets.get(&mention.user).map(|user| Mention {
            user: user.clone(),
            label: mention.label.clone(),
        })
    }))
}

/// The copy of the item's origin message on the item's platform.
async fn copy_on(
    store: &switchboard_store::Store,
    item: &OutboxItem,
) -> Result<Option<MessageRef>, StoreError> {
    Ok(store
        .copies_of(&item.origin)
        .await?
        .into_iter()
        .find(|c| c.copy.platform == item.platform)
        .map(|c| MessageRef {
            chat: c.copy.chat,
            id: c.copy.message,
        }))
}

/// Where a reply to `parent` (a message on the origin platform) goes on `platform`: the copy
/// of the parent there, or — the parent being itself a copy of a message from `platform` —
/// that message.
async fn thread_on(
    store: &switchboard_store::Store,
    platform: Platform,
    parent: &MessageKey,
) -> Result<Option<MessageRef>, StoreError> {
    if let Some(copy) = store
        .copies_of(parent)
        .await?
        .into_iter()
        .find(|c| c.copy.platform == platform)
    {
        return Ok(Some(MessageRef {
            chat: copy.copy.chat,
            id: copy.copy.message,
        }));
    }
    Ok(store
        .relayed_copy(parent)
        .await?
        .filter(|relayed| relayed.origin.platform == platform)
        .map(|relayed| MessageRef {
            chat: relayed.origin.chat,
            id: relayed.origin.message,
        }))
}

/// Who the portal on the item's platform is opened with: every other participant, as their
/// own account where that platform is their primary, or as their representation there.
async fn destination_members(
    state: &AppState,
    item: &OutboxItem,
) -> Result<Vec<ExternalUserId>, Failure> {
    let store = &state.store;
    let conversation = state
        .directory
        .conversation(store, item.conversation)
        .await?
        .ok_or_else(|| Failure::Impossible("the conversation was removed".into()))?;
    let mut members = Vec::new();
    for person in conversation
        .participants
        .iter()
        .filter(|p| **p != item.sender)
    {
        let primary = state
            .directory
            .person(store, *person)
            .await?
            .and_then(|p| p.primary)
            .map(|p| p.platform);
        let account = if primary == Some(item.platform) {
            state
                .directory
                .own_account(store, *person, item.platform)
                .await?
                .map(ExternalUserId::new)
        } else {
            match state.directory.actor(store, *person, item.platform).await? {
                Some(Actor::Representation { account, .. }) => Some(account),
                _ => None,
            }
        };
        match account {
            Some(account) => members.push(account),
            None => {
                tracing::info!(%person, platform = item.platform.as_str(), "relay: a participant is not on the portal's platform yet")
            }
        }
    }
    if members.is_empty() {
        return Err(Failure::Held(format!(
            "nobody to open a {} chat with yet",
            item.platform.display_name()
        )));
    }
    Ok(members)
}

/// Tells the sender of a copy, from the hub on the platform they wrote on, what became of it.
/// Best effort: a notice that cannot be sent is logged, never retried in a loop.
async fn tell_sender(state: &AppState, item: &OutboxItem, text: &str) {
    if let Err(error) = try_tell_sender(state, item, text).await {
        tracing::warn!(person = %item.sender, %error, "relay: cannot tell the sender about their message");
    }
}

async fn try_tell_sender(state: &AppState, item: &OutboxItem, text: &str) -> Result<(), Failure> {
    tell(state, item.sender, item.origin.platform, text).await
}

/// Tells a person, from the hub on `platform`, in a direct message to their own account there.
pub(super) async fn tell(
    state: &AppState,
    person: PersonId,
    platform: Platform,
    text: &str,
) -> Result<(), Failure> {
    let store = &state.store;
    let (Some(connection), Some(module)) = (
        super::route::connection_on(state, platform).await?,
        state.platforms.get(platform).cloned(),
    ) else {
        return Ok(());
    };
    let Some(context) = state.directory.context(store, connection).await? else {
        return Ok(());
    };
    let Some(account) = state.directory.own_account(store, person, platform).await? else {
        return Ok(());
    };
    let chat = module
        .open_chat(&context, &Actor::Hub, &[ExternalUserId::new(account)])
        .await?;
    module
        .post_message(
            &context,
            &Actor::Hub,
            &chat,
            &OutboundMessage {
                body: RichText::plain(text),
                thread: None,
                idempotency_key: None,
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note_text(sent_micros: i64) -> String {
        match late_note(sent_micros) {
            Block::Paragraph(inlines) => match inlines.as_slice() {
                [Inline::Italic(inner)] => match inner.as_slice() {
                    [Inline::Text(text)] => text.clone(),
                    other => panic!("not one text: {other:?}"),
                },
                other => panic!("not one italic run: {other:?}"),
            },
            other => panic!("not a paragraph: {other:?}"),
        }
    }

    #[test]
    fn a_late_note_gives_the_time_of_day_it_was_sent_in_utc() {
        // 2023-11-14 22:13:20.5 UTC
        assert_eq!(
            note_text(1_700_000_000_500_000),
            "(Sent at 22:13 UTC, before the messages above: it reached Switchboard late.)"
        );
        assert!(note_text(0).starts_with("(Sent at 00:00 UTC"));
        assert!(note_text(-60_000_000).starts_with("(Sent at 23:59 UTC"));
    }
}
