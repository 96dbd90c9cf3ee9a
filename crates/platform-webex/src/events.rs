//! Webhooks: each representation's own webhook (messages, every event) delivers what is
//! written in its rooms; each is created with a random secret of its own that the hub keeps
//! sealed, and every delivery is verified against the secret of the webhook's owner. A
//! delivery carries ids only: the message is fetched with its webhook owner's token. A
//! delivery names a room; a direct room is told to the hub as its chat, named by its two
//! members (see `chats`).
//!
//! - Webhooks guide: <https://developer.webex.com/docs/api/guides/webhooks>
//! - Creating a webhook: <https://developer.webex.com/docs/api/v1/webhooks/create-a-webhook>

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::{ExternalUserId, Platform, Timestamp};
use switchboard_platform::{
    Actor, AnnouncedPost, ConnectionContext, Credentials, EventEnvelope, EventSubscription,
    InboundEvent, InboundKind, MessageRef, PlatformError, WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::chats::{chat_of, known_chat};
use crate::client::id;
use crate::credential::{ACCESS_TOKEN, PERSON_ID, WEBHOOK_SECRET};
use crate::wire::{Created, Delivery, Message, Webhook};
use crate::{WebexPlatform, messaging, secret, webhook};

/// The name of the hub's webhooks, by which it finds its own among an account's.
pub(crate) const WEBHOOK_NAME: &str = "switchboard";
/// Webex's webhooks do not expire; the hub is told they last a year, and keeps them after.
const WEBHOOK_LIFETIME_MILLIS: i64 = 365 * 24 * 3600 * 1000;
/// A subscription's resource: the account whose webhook it is.
const WATCHED_PREFIX: &str = "people/";

const CREATED: &str = "created";
const UPDATED: &str = "updated";
const DELETED: &str = "deleted";

/// The name under which the hub keeps the secret of `person`'s webhook.
fn secret_name(person: &str) -> String {
    format!("webhook_secret:{person}")
}

/// The id of the event announcing message `message`: the same from every webhook that
/// delivers it, and from a read of the room's history.
pub(crate) fn posted_event_id(message: &str) -> String {
    format!("{CREATED} {message}")
}

pub(crate) fn webhook_secrets_of(representation: &Credentials) -> Vec<(String, SecretString)> {
    match (
        secret(representation, PERSON_ID),
        representation.get(WEBHOOK_SECRET),
    ) {
        (Ok(person), Ok(secret)) => vec![(secret_name(person), secret.clone())],
        _ => Vec::new(),
    }
}

fn delivery(request: &WebhookRequest) -> Result<Delivery, PlatformError> {
    serde_json::from_slice(&request.body)
        .map_err(|e| PlatformError::BadWebhook(format!("not a Webex webhook delivery: {e}")))
}

/// The secret of the webhook's owner, who the delivery says created it.
pub(crate) fn webhook_secret_name(request: &WebhookRequest) -> Option<String> {
    delivery(request)
        .ok()?
        .created_by
        .as_deref()
        .map(secret_name)
}

pub(crate) fn verify_webhook(
    connection: &ConnectionContext,
    request: &WebhookRequest,
) -> Result<WebhookVerdict, PlatformError> {
    let name = webhook_secret_name(request).ok_or_else(|| {
        PlatformError::BadWebhook("the delivery does not say whose webhook sent it".to_owned())
    })?;
    let secret = connection
        .credentials
        .iter()
        .find(|(stored, _)| *stored == name)
        .map(|(_, secret)| secret)
        .ok_or_else(|| {
            PlatformError::BadWebhook(
                "no secret is kept for this webhook's owner (not a representation of the hub's)"
                    .to_owned(),
            )
        })?;
    let signature = request
        .headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| PlatformError::BadWebhook("no X-Spark-Signature header".to_owned()))?;
    webhook::verify(secret, &request.body, signature)?;
    Ok(WebhookVerdict::Events)
}

/// What the hub stores of a delivery: ids, never content.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct StoredEvent {
    event: String,
    message: String,
    room: String,
    room_type: Option<String>,
    author: Option<String>,
    /// The account whose webhook delivered it, whose token reads the message.
    recipient: String,
}

pub(crate) fn split_webhook(request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
    let delivery = delivery(request)?;
    let event = delivery.event.unwrap_or_default();
    if delivery.resource.as_deref() != Some("messages")
        || ![CREATED, UPDATED, DELETED].contains(&event.as_str())
    {
        return Ok(Vec::new());
    }
    let (Some(data), Some(recipient)) = (delivery.data, delivery.created_by) else {
        return Err(PlatformError::BadWebhook(
            "a message delivery without its data or owner".to_owned(),
        ));
    };
    let (Some(message), Some(room)) = (data.id, data.room_id) else {
        return Err(PlatformError::BadWebhook(
            "a message delivery without the message's id or room".to_owned(),
        ));
    };
    let event_id = match event.as_str() {
        CREATED => posted_event_id(&message),
        // Each edit is its own event; Webex's `updated` time, where given, tells them apart.
        UPDATED => format!(
            "{UPDATED} {message} {}",
            data.updated.or(data.created).unwrap_or_default()
        ),
        _ => format!("{event} {message}"),
    };
    let stored = StoredEvent {
        event,
        message,
        room,
        room_type: data.room_type,
        author: data.person_id,
        recipient,
    };
    let payload = serde_json::to_string(&stored)
        .map_err(|e| PlatformError::BadWebhook(format!("cannot store the event: {e}")))?;
    Ok(vec![EventEnvelope { event_id, payload }])
}

fn stored(envelope: &EventEnvelope) -> Option<StoredEvent> {
    serde_json::from_str(&envelope.payload).ok()
}

/// A new post, in the chat the delivery names as far as it tells without calling Webex: a
/// representation's own post in a direct room whose other member the module has not learnt
/// (after a restart) is not announced, and is read instead.
pub(crate) fn announced_post(
    platform: &WebexPlatform,
    envelope: &EventEnvelope,
) -> Option<AnnouncedPost> {
    let event = stored(envelope)?;
    if event.event != CREATED {
        return None;
    }
    let chat = known_chat(
        platform,
        &event.room,
        event.room_type.as_deref(),
        event.author.as_deref(),
        &event.recipient,
    )?;
    Some(AnnouncedPost {
        message: MessageRef {
            chat,
            id: event.message,
        },
        author: event.author.map(ExternalUserId::new),
    })
}

/// The account whose webhook delivered the event, whose token alone may fetch the message (or,
/// for a deletion in a direct room not met before, read the room's members).
pub(crate) fn event_addressee(envelope: &EventEnvelope) -> Option<ExternalUserId> {
    stored(envelope).map(|event| ExternalUserId::new(event.recipient))
}

pub(crate) async fn read_event(
    platform: &WebexPlatform,
    envelope: &EventEnvelope,
    addressee: Option<&Actor>,
) -> Result<Option<InboundEvent>, PlatformError> {
    let Some(event) = stored(envelope) else {
        return Ok(None);
    };
    // Only the webhook's owner may fetch the message (or read its room's members). Without a
    // synced representation of it no one the hub acts as ever will: retrying cannot help, and
    // its webhook, which outlived the representation, is deleted when the hub next keeps the
    // subscriptions.
    let token = || match addressee {
        Some(Actor::Representation {
            account,
            credentials,
        }) if account.as_str() == event.recipient => secret(credentials, ACCESS_TOKEN),
        _ => Err(PlatformError::Rejected(format!(
            "message {} was delivered by the webhook of {}, and only that account's token can read it, but the hub handed no synced representation of it: the event cannot be read and is to be dropped",
            event.message, event.recipient
        ))),
    };
    if event.event == DELETED {
        let known = known_chat(
            platform,
            &event.room,
            event.room_type.as_deref(),
            event.author.as_deref(),
            &event.recipient,
        );
        let chat = match known {
            Some(chat) => chat,
            None => {
                chat_of(
                    platform,
                    token()?,
                    &event.room,
                    event.room_type.as_deref(),
                    event.author.as_deref(),
                    &event.recipient,
                )
                .await?
            }
        };
        return Ok(Some(InboundEvent {
            event_id: envelope.event_id.clone(),
            platform: Platform::Webex,
            kind: InboundKind::MessageDeleted {
                message: MessageRef {
                    chat,
                    id: event.message,
                },
            },
        }));
    }
    let token = token()?;
    let url = platform
        .client
        .url(&format!("messages/{}", id(&event.message)?), &[])?;
    let message: Message = match platform.client.get(token, &url).await {
        Ok(message) => message,
        // Deleted before it was read: its deletion follows.
        Err(PlatformError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let chat = chat_of(
        platform,
        token,
        message.room_id.as_deref().unwrap_or(&event.room),
        message.room_type.as_deref().or(event.room_type.as_deref()),
        message.person_id.as_deref().or(event.author.as_deref()),
        &event.recipient,
    )
    .await?;
    if event.event == CREATED {
        let recipient = ExternalUserId::new(event.recipient);
        return Ok(
            messaging::posted(&message, &chat, Some(recipient)).map(|mut posted| {
                posted.event_id = envelope.event_id.clone();
                posted
            }),
        );
    }
    Ok(Some(InboundEvent {
        event_id: envelope.event_id.clone(),
        platform: Platform::Webex,
        kind: InboundKind::MessageEdited {
            message: MessageRef {
                chat,
                id: event.message,
            },
            body: message.body(),
        },
    }))
}

fn watched_account(subscription: &EventSubscription) -> Option<&str> {
    subscription.resource.strip_prefix(WATCHED_PREFIX)
}

impl WebexPlatform {
    async fn delete_webhook(&self, token: &str, webhook: &str) -> Result<(), PlatformError> {
        let url = self
            .client
            .url(&format!("webhooks/{}", id(webhook)?), &[])?;
        match self.client.send(token, Method::DELETE, &url, None).await {
            Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// One webhook per watched representation, created with its own token, which the hub hands
/// with it; webhooks of accounts no longer watched are deleted where their token is still
/// known (see `tokens`: the hub hands no credentials of a representation it no longer holds).
pub(crate) async fn maintain_subscriptions(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    events_url: &str,
    watched: &[Actor],
    current: &[EventSubscription],
    now: Timestamp,
) -> Result<Vec<EventSubscription>, PlatformError> {
    let watched: Vec<(&ExternalUserId, &Credentials)> = watched
        .iter()
        .filter_map(|actor| match actor {
            Actor::Representation {
                account,
                credentials,
            } => Some((account, credentials)),
            Actor::Hub | Actor::Delegated { .. } => None,
        })
        .collect();
    for (account, credentials) in &watched {
        platform
            .known
            .remember(connection, account.as_str(), credentials);
    }
    let mut kept = Vec::with_capacity(watched.len());
    for subscription in current {
        let account = watched_account(subscription).unwrap_or_default();
        if let Some((_, credentials)) = watched.iter().find(|(w, _)| w.as_str() == account) {
            let renewing = subscription.expires_at.unix_millis() - now.unix_millis()
                < WEBHOOK_LIFETIME_MILLIS / 2;
            match secret(credentials, ACCESS_TOKEN) {
                // Webex's webhooks do not expire, but they can be deleted on Webex's side: one
                // that is half-way through the lifetime the hub was told is looked up, kept
                // for another lifetime when it is still there, and made anew when it is gone.
                Ok(token) if renewing => {
                    let url = platform
                        .client
                        .url(&format!("webhooks/{}", id(&subscription.id)?), &[])?;
                    match platform.client.get::<Webhook>(token, &url).await {
                        Ok(_) => kept.push(EventSubscription {
                            expires_at: Timestamp::from_unix_millis(
                                now.unix_millis() + WEBHOOK_LIFETIME_MILLIS,
                            ),
                            ..subscription.clone()
                        }),
                        Err(PlatformError::NotFound(_)) => {}
                        Err(error) => return Err(error),
                    }
                }
                _ => kept.push(subscription.clone()),
            }
        } else if let Some(token) = platform.known.get(connection, account) {
            platform
                .delete_webhook(token.expose_secret(), &subscription.id)
                .await?;
        }
    }
    for (account, credentials) in watched {
        if kept
            .iter()
            .any(|subscription| watched_account(subscription) == Some(account.as_str()))
        {
            continue;
        }
        let (Ok(token), Ok(webhook_secret)) = (
            secret(credentials, ACCESS_TOKEN),
            credentials.get(WEBHOOK_SECRET),
        ) else {
            tracing::debug!(
                account = account.as_str(),
                "webex: no webhook for a representation without a token or webhook secret"
            );
            continue;
        };
        let url = platform.client.url("webhooks", &[])?;
        let body = json!({
            "name": WEBHOOK_NAME,
            "targetUrl": events_url,
            "resource": "messages",
            "event": "all",
            "secret": webhook_secret.expose_secret(),
        });
        let created: Created = platform
            .client
            .call(token, Method::POST, &url, Some(&body))
            .await?;
        let webhook = created.id.ok_or_else(|| {
            PlatformError::Rejected("Webex created a webhook without an id".to_owned())
        })?;
        kept.push(EventSubscription {
            id: webhook,
            resource: format!("{WATCHED_PREFIX}{}", account.as_str()),
            expires_at: Timestamp::from_unix_millis(now.unix_millis() + WEBHOOK_LIFETIME_MILLIS),
        });
    }
    Ok(kept)
}

pub(crate) async fn remove_subscriptions(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    current: &[EventSubscription],
) -> Result<(), PlatformError> {
    for subscription in current {
        let account = watched_account(subscription).unwrap_or_default();
        if let Some(token) = platform.known.get(connection, account) {
            platform
                .delete_webhook(token.expose_secret(), &subscription.id)
                .await?;
        }
    }
    Ok(())
}

/// Deletes the hub's webhooks among those `token`'s account owns.
pub(crate) async fn delete_own_webhooks(
    platform: &WebexPlatform,
    token: &str,
) -> Result<(), PlatformError> {
    let url = platform.client.url("webhooks", &[])?;
    let webhooks: Vec<Webhook> = platform.client.all(token, &url, 10).await?;
    for hook in webhooks {
        if hook.name.as_deref() == Some(WEBHOOK_NAME)
            && let Some(hook) = hook.id
        {
            platform.delete_webhook(token, &hook).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> WebhookRequest {
        WebhookRequest {
            headers: Default::default(),
            query: None,
            body: body.to_string().into_bytes(),
            held_subscriptions: Vec::new(),
        }
    }

    #[test]
    fn each_edit_is_its_own_event_and_a_post_is_one_event_whoever_delivers_it() {
        let edit = |at: &str| {
            split_webhook(&request(json!({
                "resource": "messages", "event": "updated", "createdBy": "G1",
                "data": {"id": "M1", "roomId": "R1", "updated": at}
            })))
            .unwrap()
            .remove(0)
            .event_id
        };
        assert_ne!(
            edit("2024-01-01T00:00:01.000Z"),
            edit("2024-01-01T00:00:02.000Z")
        );
        let posted = |owner: &str| {
            split_webhook(&request(json!({
                "resource": "messages", "event": "created", "createdBy": owner,
                "data": {"id": "M1", "roomId": "R1"}
            })))
            .unwrap()
            .remove(0)
            .event_id
        };
        assert_eq!(posted("G1"), posted("G2"));
        assert_eq!(posted("G1"), posted_event_id("M1"));
    }

    #[test]
    fn a_message_delivery_without_its_ids_is_refused_and_other_resources_are_passed_over() {
        let missing = request(
            json!({"resource": "messages", "event": "created", "createdBy": "G1", "data": {"roomId": "R1"}}),
        );
        assert!(matches!(
            split_webhook(&missing),
            Err(PlatformError::BadWebhook(_))
        ));
        let ownerless = request(
            json!({"resource": "messages", "event": "created", "data": {"id": "M1", "roomId": "R1"}}),
        );
        assert!(split_webhook(&ownerless).is_err());
        assert_eq!(webhook_secret_name(&ownerless), None);
        let membership = request(
            json!({"resource": "memberships", "event": "created", "createdBy": "G1", "data": {}}),
        );
        assert!(split_webhook(&membership).unwrap().is_empty());
        let mut garbled = request(json!({}));
        garbled.body = b"{\"resource\": \"messages\"".to_vec();
        assert!(split_webhook(&garbled).is_err());
    }

    #[test]
    fn stored_items_keep_ids_and_never_content() {
        let envelope = split_webhook(&request(json!({
            "resource": "messages", "event": "created", "createdBy": "G1",
            "data": {"id": "M1", "roomId": "R1", "personId": "P1", "text": "secret words"}
        })))
        .unwrap()
        .remove(0);
        assert!(!envelope.payload.contains("secret words"));
        assert!(envelope.payload.contains("\"recipient\":\"G1\""));
    }
}
