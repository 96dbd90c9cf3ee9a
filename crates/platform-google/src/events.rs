//! Receiving: one Workspace Events subscription per watched account (a representation the hub
//! acts as), made as that account, to all of its Chat spaces (`spaces/-`), publishing to the
//! connection's Pub/Sub topic, whose push subscription delivers to the hub. And reading what
//! a stored event says.
//!
//! Subscriptions that include the resource live at most 4 hours: those expiring within
//! [`RENEW_WITHIN`] are renewed to the longest time Google allows (`ttl` 0), those Google no
//! longer has are made again, those of accounts no longer watched are deleted. Google's
//! lifecycle events (an expiration reminder, a suspension, an expiry) reach the hub like any
//! other event.
//!
//! - Subscriptions: <https://developers.google.com/workspace/events/api/reference/rest/v1/subscriptions>
//! - Chat events: <https://developers.google.com/workspace/events/guides/events-chat>
//! - Lifecycle: <https://developers.google.com/workspace/events/guides/events-lifecycle>

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ExternalUserId, Platform, Timestamp};
use switchboard_platform::wire::{items, lenient};
use switchboard_platform::{
    AnnouncedPost, ChatKind, ConnectionContext, Credentials, EventEnvelope, EventSubscription,
    InboundEvent, InboundKind, MessageRef, PlatformError, SubscriptionChange,
};

use crate::chat::{self, ChatMessage, ChatUser};
use crate::client::resource_name;
use crate::webhook::StoredEvent;
use crate::{GoogleChatPlatform, credential, messaging};
use switchboard_platform::time;

/// Subscriptions expiring sooner than this are renewed.
const RENEW_WITHIN: Duration = Duration::from_secs(30 * 60);

/// Every space of the subscribing user.
const ALL_SPACES: &str = "//chat.googleapis.com/spaces/-";

const EVENT_TYPES: [&str; 5] = [
    chat::MESSAGE_CREATED,
    chat::MESSAGE_UPDATED,
    chat::MESSAGE_DELETED,
    chat::REACTION_CREATED,
    chat::REACTION_DELETED,
];

const EXPIRATION_REMINDER: &str = "google.workspace.events.subscription.v1.expirationReminder";
const SUSPENDED: &str = "google.workspace.events.subscription.v1.suspended";
const EXPIRED: &str = "google.workspace.events.subscription.v1.expired";

/// How often, and how long apart, an unfinished operation is looked at again.
const OPERATION_POLLS: u32 = 10;
const OPERATION_POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    expire_time: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    target_resource: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionList {
    #[serde(default, deserialize_with = "items")]
    subscriptions: Vec<Subscription>,
}

/// A long-running operation.
#[derive(Debug, Deserialize)]
struct Operation {
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    done: Option<bool>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

impl GoogleChatPlatform {
    /// The subscription an operation created or updated, waiting for it to finish.
    async fn finished(
        &self,
        token: &str,
        mut operation: Operation,
    ) -> Result<Subscription, PlatformError> {
        for _ in 0..OPERATION_POLLS {
            if let Some(error) = &operation.error {
                return Err(PlatformError::Rejected(format!(
                    "Workspace Events refused the subscription: {error}"
                )));
            }
            if operation.done == Some(true) {
                let response = operation.response.unwrap_or(Value::Null);
                return serde_json::from_value(response)
                    .map_err(|e| PlatformError::Rejected(format!("unreadable subscription: {e}")));
            }
            let name = operation.name.as_deref().ok_or_else(|| {
                PlatformError::Rejected("an unfinished operation without a name".to_owned())
            })?;
            tokio::time::sleep(OPERATION_POLL_INTERVAL).await;
            let url = self.client.events_url(resource_name(name)?, &[])?;
            operation = self.client.get(token, &url).await?;
        }
        Err(PlatformError::Unavailable(
            "the subscription's operation did not finish in time".to_owned(),
        ))
    }

    async fn create_subscription(
        &self,
        connection: &ConnectionContext,
        token: &str,
    ) -> Result<Subscription, PlatformError> {
        let topic = Self::text(connection, credential::PUBSUB_TOPIC)?;
        let body = json!({
            "targetResource": ALL_SPACES,
            "eventTypes": EVENT_TYPES,
            "notificationEndpoint": {"pubsubTopic": topic},
            "payloadOptions": {"includeResource": true},
        });
        let url = self.client.events_url("subscriptions", &[])?;
        match self
            .client
            .call::<Operation>(token, Method::POST, &url, Some(&body))
            .await
        {
            Ok(operation) => self.finished(token, operation).await,
            // The user's subscription exists already (made before a crash): take it over.
            Err(PlatformError::Rejected(why)) if why.starts_with("ALREADY_EXISTS") => self
                .existing_subscription(token)
                .await?
                .ok_or(PlatformError::Rejected(why)),
            Err(error) => Err(error),
        }
    }

    async fn existing_subscription(
        &self,
        token: &str,
    ) -> Result<Option<Subscription>, PlatformError> {
        let filter = format!(
            "event_types:\"{}\" AND target_resource=\"{ALL_SPACES}\"",
            chat::MESSAGE_CREATED
        );
        let url = self
            .client
            .events_url("subscriptions", &[("filter", &filter)])?;
        let listed: SubscriptionList = self.client.get(token, &url).await?;
        Ok(listed
            .subscriptions
            .into_iter()
            .find(|subscription| subscription.target_resource.as_deref() == Some(ALL_SPACES)))
    }

    async fn renew_subscription(
        &self,
        token: &str,
        name: &str,
    ) -> Result<Subscription, PlatformError> {
        let url = self
            .client
            .events_url(resource_name(name)?, &[("updateMask", "ttl")])?;
        // A `ttl` of 0 asks for the longest time Google allows.
        let body = json!({"ttl": "0s"});
        let operation: Operation = self
            .client
            .call(token, Method::PATCH, &url, Some(&body))
            .await?;
        self.finished(token, operation).await
    }

    /// Keeps `account`'s subscription alive: renewed when it expires soon, made again when
    /// Google no longer has it, made when there is none.
    async fn maintain_one(
        &self,
        connection: &ConnectionContext,
        account: &ExternalUserId,
        current: Option<&EventSubscription>,
        now: Timestamp,
    ) -> Result<EventSubscription, PlatformError> {
        let renew_before = now.unix_millis() + RENEW_WITHIN.as_millis() as i64;
        if let Some(current) = current
            && current.expires_at.unix_millis() > renew_before
        {
            return Ok(current.clone());
        }
        let token = self
            .user_token(connection, account, &Credentials::default())
            .await?;
        let subscription = match current {
            Some(current) => match self.renew_subscription(&token, &current.id).await {
                Err(PlatformError::NotFound(_)) => {
                    self.create_subscription(connection, &token).await?
                }
                // A suspended subscription cannot be renewed: it is made again.
                Err(PlatformError::Rejected(why)) if why.starts_with("FAILED_PRECONDITION") => {
                    self.delete_subscription(&token, &current.id).await?;
                    self.create_subscription(connection, &token).await?
                }
                other => other?,
            },
            None => self.create_subscription(connection, &token).await?,
        };
        let id = subscription.name.ok_or_else(|| {
            PlatformError::Rejected(
                "Workspace Events answered without a subscription name".to_owned(),
            )
        })?;
        let expires_at = subscription
            .expire_time
            .as_deref()
            .and_then(time::parse)
            .unwrap_or(now);
        Ok(EventSubscription {
            id,
            resource: format!("users/{}", account.as_str()),
            expires_at,
        })
    }

    async fn delete_subscription(&self, token: &str, name: &str) -> Result<(), PlatformError> {
        let url = self.client.events_url(resource_name(name)?, &[])?;
        match self.client.send(token, Method::DELETE, &url, None).await {
            Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Deletes a subscription as the account it watches; a subscription of an account that
    /// is gone, or no longer delegated, is gone with it.
    async fn remove_one(
        &self,
        connection: &ConnectionContext,
        subscription: &EventSubscription,
    ) -> Result<(), PlatformError> {
        let Some(account) = watched_account(subscription) else {
            return Ok(());
        };
        let token = match self
            .user_token(connection, &account, &Credentials::default())
            .await
        {
            Ok(token) => token,
            Err(PlatformError::NotFound(_) | PlatformError::Unauthorized(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        self.delete_subscription(&token, &subscription.id).await
    }
}

fn watched_account(subscription: &EventSubscription) -> Option<ExternalUserId> {
    chat::user_id(&subscription.resource)
}

pub(crate) async fn maintain_subscriptions(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    watched: &[ExternalUserId],
    current: &[EventSubscription],
    now: Timestamp,
) -> Result<Vec<EventSubscription>, PlatformError> {
    // The keys that verify deliveries are kept fresh on the same schedule.
    if let Err(error) = platform.signing_keys.refresh().await {
        tracing::warn!(%error, "cannot fetch Google's signing keys");
    }
    let mut kept = Vec::new();
    let mut first_error = None;
    for subscription in current {
        let still_watched =
            watched_account(subscription).is_some_and(|account| watched.contains(&account));
        if still_watched {
            continue;
        }
        if let Err(error) = platform.remove_one(connection, subscription).await {
            tracing::warn!(%error, subscription = %subscription.id, "cannot delete a subscription");
            kept.push(subscription.clone());
            first_error.get_or_insert(error);
        }
    }
    for account in watched {
        let existing = current
            .iter()
            .find(|subscription| watched_account(subscription).as_ref() == Some(account));
        match platform
            .maintain_one(connection, account, existing, now)
            .await
        {
            Ok(subscription) => kept.push(subscription),
            Err(error) => {
                tracing::warn!(%error, account = account.as_str(), "cannot keep a subscription");
                kept.extend(existing.cloned());
                first_error.get_or_insert(error);
            }
        }
    }
    // One account's failure does not cost the others theirs; only when nothing could be done
    // is the failure reported.
    match first_error {
        Some(error) if kept.is_empty() && !watched.is_empty() => Err(error),
        _ => Ok(kept),
    }
}

pub(crate) async fn remove_subscriptions(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    current: &[EventSubscription],
) -> Result<(), PlatformError> {
    for subscription in current {
        platform.remove_one(connection, subscription).await?;
    }
    Ok(())
}

fn stored(envelope: &EventEnvelope) -> Option<StoredEvent> {
    serde_json::from_str(&envelope.payload).ok()
}

fn message_of(event: &StoredEvent) -> Option<ChatMessage> {
    serde_json::from_value(event.data.get("message")?.clone()).ok()
}

pub(crate) fn announced_post(envelope: &EventEnvelope) -> Option<AnnouncedPost> {
    let event = stored(envelope)?;
    if event.event_type != chat::MESSAGE_CREATED {
        return None;
    }
    let message = message_of(&event)?;
    Some(AnnouncedPost {
        message: message.reference()?,
        author: message.sender_id(),
    })
}

#[derive(Debug, Deserialize)]
struct Reaction {
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    user: Option<ChatUser>,
    #[serde(default, deserialize_with = "lenient")]
    emoji: Option<Emoji>,
}

#[derive(Debug, Deserialize)]
struct Emoji {
    #[serde(default, deserialize_with = "lenient")]
    unicode: Option<String>,
}

pub(crate) async fn read_event(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    envelope: &EventEnvelope,
) -> Result<Option<InboundEvent>, PlatformError> {
    let Some(event) = stored(envelope) else {
        return Ok(None);
    };
    let event_of = |kind| {
        Some(InboundEvent {
            event_id: envelope.event_id.clone(),
            platform: Platform::GoogleChat,
            kind,
        })
    };
    let recipient = ExternalUserId::new(event.recipient.as_str());
    let kind = match event.event_type.as_str() {
        chat::MESSAGE_CREATED => {
            let Some(message) = message_of(&event) else {
                return Ok(None);
            };
            let token = platform
                .user_token(connection, &recipient, &Credentials::default())
                .await?;
            let chat_kind = match message.space.as_ref().and_then(chat::Space::kind) {
                Some(kind) => kind,
                None => match message.chat() {
                    Some(space) => messaging::space_kind(platform, &token, space.as_str()).await?,
                    None => ChatKind::Group,
                },
            };
            let thread = messaging::thread_root(platform, &token, &message).await?;
            return Ok(
                chat::posted(&message, chat_kind, Some(recipient), thread).map(|mut posted| {
                    posted.event_id = envelope.event_id.clone();
                    posted
                }),
            );
        }
        chat::MESSAGE_UPDATED => {
            let Some(message) = message_of(&event) else {
                return Ok(None);
            };
            let Some(reference) = message.reference() else {
                return Ok(None);
            };
            InboundKind::MessageEdited {
                message: reference,
                body: message.body(),
            }
        }
        chat::MESSAGE_DELETED => {
            let Some(reference) = message_of(&event).and_then(|m| m.reference()) else {
                return Ok(None);
            };
            InboundKind::MessageDeleted { message: reference }
        }
        chat::REACTION_CREATED | chat::REACTION_DELETED => {
            let Some(reaction) = event
                .data
                .get("reaction")
                .and_then(|r| serde_json::from_value::<Reaction>(r.clone()).ok())
            else {
                return Ok(None);
            };
            let (Some(name), Some(user), Some(emoji)) = (
                reaction.name,
                reaction.user.as_ref().and_then(ChatUser::id),
                reaction.emoji.and_then(|e| e.unicode),
            ) else {
                return Ok(None);
            };
            let Some((message, _)) = name.split_once("/reactions/") else {
                return Ok(None);
            };
            let Some((space, _)) = message.split_once("/messages/") else {
                return Ok(None);
            };
            InboundKind::ReactionChanged {
                message: MessageRef {
                    chat: switchboard_core::ExternalChatId::new(space),
                    id: message.to_owned(),
                },
                user,
                emoji,
                present: event.event_type == chat::REACTION_CREATED,
            }
        }
        EXPIRATION_REMINDER => InboundKind::SubscriptionChanged {
            subscription: event.subscription.clone(),
            change: SubscriptionChange::RenewalRequired,
        },
        SUSPENDED | EXPIRED => InboundKind::SubscriptionChanged {
            subscription: event.subscription.clone(),
            change: SubscriptionChange::Removed,
        },
        _ => return Ok(None),
    };
    Ok(event_of(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::split;
    use crate::webhook::tests::{connection, platform, push, request, subscription};

    /// The stored item of one push from subscription `s-ana`, which watches account 1.
    fn stored_push(event_type: &str, data: Value) -> EventEnvelope {
        let held = vec![subscription("s-ana", "1")];
        split(&request(None, push(event_type, "s-ana", data, true), held))
            .unwrap()
            .remove(0)
    }

    async fn read(event_type: &str, data: Value) -> Option<InboundKind> {
        read_event(&platform(), &connection(), &stored_push(event_type, data))
            .await
            .unwrap()
            .map(|event| event.kind)
    }

    #[test]
    fn a_new_message_is_announced_with_its_author() {
        let envelope = stored_push(
            chat::MESSAGE_CREATED,
            json!({"message": {"name": "spaces/D/messages/M", "sender": {"name": "users/7"}}}),
        );
        let announced = announced_post(&envelope).unwrap();
        assert_eq!(announced.message.chat.as_str(), "spaces/D");
        assert_eq!(announced.message.id, "spaces/D/messages/M");
        assert_eq!(announced.author, Some(ExternalUserId::new("7")));
        let edit = stored_push(
            chat::MESSAGE_UPDATED,
            json!({"message": {"name": "spaces/D/messages/M"}}),
        );
        assert_eq!(announced_post(&edit), None);
    }

    #[tokio::test]
    async fn edits_deletions_and_reactions_are_read_from_the_item() {
        let message = MessageRef {
            chat: switchboard_core::ExternalChatId::new("spaces/D"),
            id: "spaces/D/messages/M".to_owned(),
        };
        let edited = read(
            chat::MESSAGE_UPDATED,
            json!({"message": {"name": "spaces/D/messages/M", "formattedText": "*now*",
                               "lastUpdateTime": "2024-05-01T12:00:00Z"}}),
        )
        .await;
        assert!(
            matches!(&edited, Some(InboundKind::MessageEdited { message: m, body }) if *m == message && body.to_plain_text() == "now"),
            "{edited:?}"
        );
        let deleted = read(
            chat::MESSAGE_DELETED,
            json!({"message": {"name": "spaces/D/messages/M"}}),
        )
        .await;
        assert_eq!(
            deleted,
            Some(InboundKind::MessageDeleted {
                message: message.clone()
            })
        );
        let reacted = read(
            chat::REACTION_CREATED,
            json!({"reaction": {"name": "spaces/D/messages/M/reactions/R",
                                "user": {"name": "users/7"}, "emoji": {"unicode": "👍"}}}),
        )
        .await;
        assert_eq!(
            reacted,
            Some(InboundKind::ReactionChanged {
                message,
                user: ExternalUserId::new("7"),
                emoji: "👍".to_owned(),
                present: true,
            })
        );
        let nameless = read(
            chat::REACTION_DELETED,
            json!({"reaction": {"name": "spaces/D/messages/M/reactions/R"}}),
        )
        .await;
        assert_eq!(
            nameless, None,
            "a removal that does not say what was removed"
        );
    }

    #[tokio::test]
    async fn lifecycle_events_say_what_became_of_the_subscription() {
        let data = json!({"subscription": {"name": "subscriptions/s-ana"}});
        for (event_type, change) in [
            (EXPIRATION_REMINDER, SubscriptionChange::RenewalRequired),
            (SUSPENDED, SubscriptionChange::Removed),
            (EXPIRED, SubscriptionChange::Removed),
        ] {
            assert_eq!(
                read(event_type, data.clone()).await,
                Some(InboundKind::SubscriptionChanged {
                    subscription: "subscriptions/s-ana".to_owned(),
                    change,
                })
            );
        }
        assert_eq!(
            read("google.workspace.chat.membership.v1.created", json!({})).await,
            None
        );
    }
}
