//! The account's Team Chat events, delivered by the server-to-server app's event subscription
//! to the hub's webhook URL: verified (signature over the raw body with the app's secret token,
//! a timestamp no older than five minutes), the URL validation answered, split into one item
//! per delivery and read from the event, which carries its message (only the mentions of a 1:1
//! message are fetched).
//!
//! The subscription is made by the account's admin on the App Marketplace (no API makes it),
//! so the module keeps none itself. What people write to the hub's chatbot (`bot_notification`)
//! reaches the same URL, signed with the chatbot's secret token: a message in the chat each
//! person shares with the chatbot, which the hub relays to whoever the chatbot relays for
//! there (see [`InboundKind::MessageToSharedChat`]).
//!
//! - Webhooks: <https://developers.zoom.us/docs/api/webhooks/>
//! - Team Chat events: <https://developers.zoom.us/docs/api/team-chat/events/>

use switchboard_core::{ExternalUserId, Platform};
use switchboard_platform::{
    AnnouncedPost, ChatKind, ConnectionContext, EventEnvelope, InboundEvent, InboundKind,
    MessageRef, PlatformError, WebhookRequest, WebhookVerdict,
};

use crate::chats::Chat;
use crate::client::segment;
use crate::wire::{AtItem, BotNotification, Challenge, ChatObject, ChatPayload, Delivery, Message};
use crate::{ZoomPlatform, markup, webhook};

const TIMESTAMP: &str = "x-zm-request-timestamp";
const SIGNATURE: &str = "x-zm-signature";
const URL_VALIDATION: &str = "endpoint.url_validation";
const BOT_NOTIFICATION: &str = "bot_notification";
/// How far a delivery's signed time may be from the hub's clock. Zoom names no window; five
/// minutes is the usual one for signed webhooks, and a delivery replayed later is refused.
const FRESHNESS_SECONDS: i64 = 300;

/// The Team Chat events the hub reads: messages and reactions, in 1:1 chats and channels.
const TEAM_CHAT_EVENTS: [&str; 10] = [
    "team_chat.dm_message_posted",
    "team_chat.dm_message_updated",
    "team_chat.dm_message_deleted",
    "team_chat.dm_reaction_added",
    "team_chat.dm_reaction_removed",
    "team_chat.channel_message_posted",
    "team_chat.channel_message_updated",
    "team_chat.channel_message_deleted",
    "team_chat.channel_reaction_added",
    "team_chat.channel_reaction_removed",
];

/// A new message's item id, the same whether it came in a delivery or was read back later, so
/// the hub relays it once.
pub(crate) fn posted_event_id(message: &str) -> String {
    format!("posted {message}")
}

fn header<'a>(request: &'a WebhookRequest, name: &str) -> Result<&'a str, PlatformError> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| PlatformError::BadWebhook(format!("no {name} header")))
}

fn delivery(body: &[u8]) -> Result<Delivery, PlatformError> {
    serde_json::from_slice(body)
        .map_err(|e| PlatformError::BadWebhook(format!("not a Zoom event: {e}")))
}

pub(crate) fn verify_webhook(
    platform: &ZoomPlatform,
    request: &WebhookRequest,
) -> Result<WebhookVerdict, PlatformError> {
    let timestamp = header(request, TIMESTAMP)?;
    let signature = header(request, SIGNATURE)?;
    let secret = platform
        .event_secrets
        .iter()
        .find(|secret| webhook::verify(secret, timestamp, &request.body, signature).is_ok())
        .ok_or_else(|| {
            PlatformError::BadWebhook(
                "the signature matches neither the server-to-server app's nor the chatbot's secret token".to_owned(),
            )
        })?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| PlatformError::BadWebhook(format!("{TIMESTAMP} is not a time")))?;
    let now = platform.now().unix_millis().div_euclid(1000);
    if (now - sent).abs() > FRESHNESS_SECONDS {
        return Err(PlatformError::BadWebhook(format!(
            "signed at {sent}, more than {FRESHNESS_SECONDS} s from now ({now}): a replay or a clock out of step"
        )));
    }
    let delivery = delivery(&request.body)?;
    if delivery.event.as_deref() == Some(URL_VALIDATION) {
        let challenge: Challenge = delivery
            .payload
            .and_then(|payload| serde_json::from_value(payload).ok())
            .ok_or_else(|| {
                PlatformError::BadWebhook("a URL validation without its payload".to_owned())
            })?;
        let plain = challenge
            .plain_token
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                PlatformError::BadWebhook("a URL validation without a plainToken".to_owned())
            })?;
        // Answered with the secret token that signed it: one URL serves both apps.
        return Ok(WebhookVerdict::Challenge(webhook::challenge_answer(
            secret, &plain,
        )));
    }
    Ok(WebhookVerdict::Events)
}

/// What a person wrote to the chatbot, from a delivery that is a `bot_notification`: its item
/// id, and the event; `None` for any other delivery.
fn written_to_chatbot(body: &[u8]) -> Result<Option<(String, InboundEvent)>, PlatformError> {
    let delivery = delivery(body)?;
    if delivery.event.as_deref() != Some(BOT_NOTIFICATION) {
        return Ok(None);
    }
    let incomplete =
        |what: &str| PlatformError::BadWebhook(format!("{BOT_NOTIFICATION} without its {what}"));
    let note: BotNotification = delivery
        .payload
        .and_then(|payload| serde_json::from_value(payload).ok())
        .ok_or_else(|| incomplete("payload"))?;
    let user = note
        .user_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| incomplete("userId"))?;
    let text = note.cmd.ok_or_else(|| incomplete("cmd"))?;
    let id = match note.trigger_id.filter(|id| !id.is_empty()) {
        Some(trigger) => trigger,
        None => format!(
            "{user}-{}",
            note.timestamp.ok_or_else(|| incomplete("timestamp"))?
        ),
    };
    let event = InboundEvent {
        event_id: format!("{BOT_NOTIFICATION} {id}"),
        platform: Platform::Zoom,
        kind: InboundKind::MessageToSharedChat {
            message: MessageRef {
                chat: Chat::Bot(user.clone()).id(),
                id,
            },
            sender: ExternalUserId::new(user),
            sent_at_micros: note.timestamp.map(|millis| millis.saturating_mul(1000)),
            body: markup::parse(&text, &[], &[], |_| None),
        },
    };
    Ok(Some((event.event_id.clone(), event)))
}

/// A stored delivery, read again.
struct Stored {
    event: String,
    operator: Option<String>,
    operator_email: Option<String>,
    object: ChatObject,
}

impl Stored {
    fn read(body: &[u8]) -> Result<Option<Self>, PlatformError> {
        let delivery = delivery(body)?;
        let Some(event) = delivery
            .event
            .filter(|event| TEAM_CHAT_EVENTS.contains(&event.as_str()))
        else {
            return Ok(None);
        };
        let payload: ChatPayload = delivery
            .payload
            .and_then(|payload| serde_json::from_value(payload).ok())
            .ok_or_else(|| PlatformError::BadWebhook(format!("{event} without its payload")))?;
        let object = payload
            .object
            .ok_or_else(|| PlatformError::BadWebhook(format!("{event} without its object")))?;
        Ok(Some(Self {
            event,
            operator: payload.operator_id.filter(|id| !id.is_empty()),
            operator_email: payload.operator,
            object,
        }))
    }

    fn message_id(&self) -> Option<&str> {
        self.object
            .message_id
            .as_deref()
            .or(self.object.msg_id.as_deref())
            .filter(|id| !id.is_empty())
    }

    fn is_direct(&self) -> bool {
        self.event.starts_with("team_chat.dm_")
    }

    /// The chat: a 1:1 chat by its two members (the operator and the contact), a channel by id.
    fn chat(&self) -> Option<Chat> {
        if self.is_direct() {
            Some(Chat::direct(
                self.operator.as_deref()?,
                self.object
                    .contact_id
                    .as_deref()
                    .filter(|id| !id.is_empty())?,
            ))
        } else {
            Some(Chat::Channel(
                self.object.channel_id.clone().filter(|id| !id.is_empty())?,
            ))
        }
    }

    fn message(&self) -> Option<MessageRef> {
        Some(MessageRef {
            chat: self.chat()?.id(),
            id: self.message_id()?.to_owned(),
        })
    }
}

/// One item per Team Chat event, kept as Zoom sent it (its signature is in the headers, which
/// are not kept); anything else (the chatbot's notifications) is no item.
pub(crate) fn split_webhook(request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
    let payload = || {
        String::from_utf8(request.body.clone())
            .map_err(|_| PlatformError::BadWebhook("a delivery that is not UTF-8".to_owned()))
    };
    if let Some((event_id, _)) = written_to_chatbot(&request.body)? {
        return Ok(vec![EventEnvelope {
            event_id,
            payload: payload()?,
        }]);
    }
    let Some(stored) = Stored::read(&request.body)? else {
        return Ok(Vec::new());
    };
    let message = stored.message_id().ok_or_else(|| {
        PlatformError::BadWebhook(format!("{} without its message's id", stored.event))
    })?;
    let event_id = if stored.event.ends_with("_message_posted") {
        posted_event_id(message)
    } else {
        // Each edit and reaction is its own event; a redelivery is the same body, with the
        // same time.
        let at = delivery(&request.body)?.event_ts.unwrap_or_default();
        format!("{} {message} {at}", stored.event)
    };
    Ok(vec![EventEnvelope {
        event_id,
        payload: payload()?,
    }])
}

pub(crate) fn announced_post(envelope: &EventEnvelope) -> Option<AnnouncedPost> {
    let stored = Stored::read(envelope.payload.as_bytes()).ok()??;
    if !stored.event.ends_with("_message_posted") {
        return None;
    }
    Some(AnnouncedPost {
        message: stored.message()?,
        author: stored.operator.clone().map(ExternalUserId::new),
    })
}

/// An emoji as Zoom's events write it (`U+1F44D`, space-separated code points), or as itself.
fn emoji(text: &str) -> Option<String> {
    let text = text.trim();
    if !text.to_ascii_uppercase().starts_with("U+") {
        return (!text.is_empty()).then(|| text.to_owned());
    }
    text.split([' ', ','])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let hex = part.get(2..)?;
            char::from_u32(u32::from_str_radix(hex, 16).ok()?)
        })
        .collect()
}

/// The mentions of a 1:1 message. Zoom's 1:1 events carry none (Rivet's types give them
/// no `at_items`), so a message that may mention someone (it holds an `@`) is fetched with the
/// server-to-server app; its mentions name people by address, and in a 1:1 chat they can only
/// be its two members, whom the event names with both. A message deleted meanwhile has none.
async fn direct_mentions(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    stored: &Stored,
) -> Result<Vec<AtItem>, PlatformError> {
    let (Some(operator), Some(contact), Some(message)) = (
        stored.operator.as_deref(),
        stored.object.contact_id.as_deref(),
        stored.message_id(),
    ) else {
        return Ok(Vec::new());
    };
    let url = platform.client.url(
        &format!(
            "chat/users/{}/messages/{}",
            segment(operator)?,
            segment(message)?
        ),
        &[("to_contact", contact)],
    )?;
    let fetched: Message = match platform
        .client
        .get(platform.account_token(connection)?, &url)
        .await
    {
        Ok(fetched) => fetched,
        Err(PlatformError::NotFound(_)) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let members = [
        (stored.operator_email.as_deref(), operator),
        (stored.object.contact_email.as_deref(), contact),
    ];
    Ok(fetched
        .at_items
        .into_iter()
        .map(|mut item| {
            item.at_contact_user_id = members
                .iter()
                .find(|(email, id)| {
                    item.at_contact.as_deref().is_some_and(|mentioned| {
                        mentioned == *id
                            || email.is_some_and(|email| email.eq_ignore_ascii_case(mentioned))
                    })
                })
                .map(|(_, id)| (*id).to_owned());
            item
        })
        .collect())
}

/// What an item says happened. The event carries the message, so nothing is fetched, except
/// the mentions of a 1:1 message (see [`direct_mentions`]).
pub(crate) async fn read_event(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    envelope: &EventEnvelope,
) -> Result<Option<InboundEvent>, PlatformError> {
    if let Some((_, event)) = written_to_chatbot(envelope.payload.as_bytes())? {
        return Ok(Some(event));
    }
    let Some(stored) = Stored::read(envelope.payload.as_bytes())? else {
        return Ok(None);
    };
    let text = stored.object.message.as_deref().unwrap_or_default();
    if stored.is_direct() && stored.object.at_items.is_empty() && text.contains('@') {
        let at_items = direct_mentions(platform, connection, &stored).await?;
        return read_stored(&stored, &envelope.event_id, &at_items);
    }
    read_stored(&stored, &envelope.event_id, &stored.object.at_items)
}

/// What a stored item says happened, with the mentions of its message.
fn read_stored(
    stored: &Stored,
    event_id: &str,
    at_items: &[AtItem],
) -> Result<Option<InboundEvent>, PlatformError> {
    let incomplete =
        || PlatformError::BadWebhook(format!("{} without its chat or message", stored.event));
    let message = stored.message().ok_or_else(incomplete)?;
    let text = stored.object.message.as_deref().unwrap_or_default();
    let body = || {
        markup::parse(text, &stored.object.rich_text, at_items, |item| {
            item.at_contact_user_id
                .clone()
                .filter(|id| !id.is_empty())
                .map(ExternalUserId::new)
        })
    };
    let operator = || {
        stored
            .operator
            .clone()
            .map(ExternalUserId::new)
            .ok_or_else(incomplete)
    };
    let verb = stored.event.rsplit('.').next().unwrap_or_default();
    let kind = match verb.split_once('_').map_or(verb, |(_, verb)| verb) {
        "message_posted" => InboundKind::MessagePosted {
            chat_kind: if stored.is_direct() {
                ChatKind::Direct
            } else {
                ChatKind::Group
            },
            sender: operator()?,
            recipient: None,
            sent_at_micros: stored
                .object
                .timestamp
                .map(|millis| millis.saturating_mul(1000)),
            body: body(),
            thread: stored
                .object
                .reply_main_message_id
                .clone()
                .filter(|id| !id.is_empty())
                .map(|id| MessageRef {
                    chat: message.chat.clone(),
                    id,
                }),
            message,
        },
        "message_updated" => InboundKind::MessageEdited {
            message,
            body: body(),
        },
        "message_deleted" => InboundKind::MessageDeleted { message },
        change @ ("reaction_added" | "reaction_removed") => InboundKind::ReactionChanged {
            user: operator()?,
            emoji: stored
                .object
                .emoji
                .as_deref()
                .and_then(emoji)
                .ok_or_else(|| {
                    PlatformError::BadWebhook("a reaction without its emoji".to_owned())
                })?,
            present: change == "reaction_added",
            message,
        },
        _ => return Ok(None),
    };
    Ok(Some(InboundEvent {
        event_id: event_id.to_owned(),
        platform: Platform::Zoom,
        kind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: serde_json::Value) -> WebhookRequest {
        WebhookRequest {
            headers: reqwest::header::HeaderMap::new(),
            query: None,
            body: serde_json::to_vec(&body).unwrap(),
            held_subscriptions: Vec::new(),
        }
    }

    fn dm(event: &str, object: serde_json::Value) -> serde_json::Value {
        json!({
            "event": event,
            "event_ts": 1_700_000_000_123_i64,
            "payload": {"account_id": "A", "operator": "ada@acme.example", "operator_id": "U1", "object": object},
        })
    }

    fn read(body: serde_json::Value) -> (Vec<EventEnvelope>, Option<InboundEvent>) {
        let envelopes = split_webhook(&request(body)).unwrap();
        let event = envelopes.first().and_then(|envelope| {
            let stored = Stored::read(envelope.payload.as_bytes()).unwrap()?;
            read_stored(&stored, &envelope.event_id, &stored.object.at_items).unwrap()
        });
        (envelopes, event)
    }

    #[test]
    fn a_direct_message_is_read_from_the_event_alone() {
        let (envelopes, event) = read(dm(
            "team_chat.dm_message_posted",
            json!({
                "message_id": "M1", "contact_id": "U2", "message": "Hi there", "timestamp": 1_700_000_000_000_i64,
                "rich_text": [{"start_position": 3, "end_position": 7, "format_type": "Bold"}],
                "reply_main_message_id": "M0",
            }),
        ));
        assert_eq!(envelopes[0].event_id, posted_event_id("M1"));
        let announced = announced_post(&envelopes[0]).unwrap();
        assert_eq!(announced.message.chat.as_str(), "dm:U1:U2");
        assert_eq!(announced.author, Some(ExternalUserId::new("U1")));
        let Some(InboundEvent {
            kind:
                InboundKind::MessagePosted {
                    message,
                    chat_kind,
                    sender,
                    sent_at_micros,
                    body,
                    thread,
                    ..
                },
            ..
        }) = event
        else {
            panic!("{event:?}")
        };
        assert_eq!(message.id, "M1");
        assert_eq!(chat_kind, ChatKind::Direct);
        assert_eq!(sender.as_str(), "U1");
        assert_eq!(sent_at_micros, Some(1_700_000_000_000_000));
        assert_eq!(body.to_plain_text(), "Hi there");
        assert_eq!(thread.map(|t| t.id), Some("M0".to_owned()));
    }

    #[test]
    fn channel_mentions_edits_deletions_and_reactions_are_read() {
        let (_, posted) = read(json!({
            "event": "team_chat.channel_message_posted", "event_ts": 1,
            "payload": {"operator_id": "U1", "object": {
                "message_id": "M2", "channel_id": "C1", "message": "@Bo hi",
                "at_items": [{"at_contact": "bo@acme.example", "at_contact_user_id": "U3", "at_type": 1, "start_position": 0, "end_position": 2}],
            }},
        }));
        let Some(InboundEvent {
            kind: InboundKind::MessagePosted {
                body, chat_kind, ..
            },
            ..
        }) = posted
        else {
            panic!("{posted:?}")
        };
        assert_eq!(chat_kind, ChatKind::Group);
        assert_eq!(
            body.mentions().map(|m| m.user.as_str()).collect::<Vec<_>>(),
            ["U3"]
        );

        let (edits, edited) = read(dm(
            "team_chat.dm_message_updated",
            json!({"message_id": "M1", "contact_id": "U2", "message": "new"}),
        ));
        assert!(
            edits[0]
                .event_id
                .starts_with("team_chat.dm_message_updated M1 ")
        );
        assert!(announced_post(&edits[0]).is_none());
        assert!(matches!(
            edited,
            Some(InboundEvent {
                kind: InboundKind::MessageEdited { .. },
                ..
            })
        ));
        let (_, deleted) = read(dm(
            "team_chat.dm_message_deleted",
            json!({"message_id": "M1", "contact_id": "U2"}),
        ));
        assert!(matches!(
            deleted,
            Some(InboundEvent {
                kind: InboundKind::MessageDeleted { .. },
                ..
            })
        ));
        let (_, reacted) = read(dm(
            "team_chat.dm_reaction_removed",
            json!({"msg_id": "M1", "contact_id": "U2", "emoji": "U+2764 U+FE0F"}),
        ));
        let Some(InboundEvent {
            kind:
                InboundKind::ReactionChanged {
                    emoji,
                    present,
                    user,
                    ..
                },
            ..
        }) = reacted
        else {
            panic!("{reacted:?}")
        };
        assert_eq!(
            (emoji.as_str(), present, user.as_str()),
            ("❤️", false, "U1")
        );
    }

    #[test]
    fn what_a_person_writes_to_the_chatbot_is_a_message_in_their_shared_chat() {
        let body = json!({"event": "bot_notification", "payload": {
            "accountId": "A1", "channelName": "Switchboard", "cmd": "see you at 3",
            "robotJid": "bot@xmpp.zoom.us", "timestamp": 1_700_000_000_123_i64,
            "toJid": "u1@xmpp.zoom.us", "triggerId": "T1", "userId": "U1",
            "userJid": "u1@xmpp.zoom.us", "userName": "Bo"}});
        let envelopes = split_webhook(&request(body)).unwrap();
        assert_eq!(envelopes.len(), 1);
        assert_eq!(envelopes[0].event_id, "bot_notification T1");
        assert_eq!(announced_post(&envelopes[0]), None);
        let (_, event) = written_to_chatbot(envelopes[0].payload.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(event.event_id, "bot_notification T1");
        match event.kind {
            InboundKind::MessageToSharedChat {
                message,
                sender,
                sent_at_micros,
                body,
            } => {
                assert_eq!(message.chat.as_str(), "bot:U1");
                assert_eq!(message.id, "T1");
                assert_eq!(sender.as_str(), "U1");
                assert_eq!(sent_at_micros, Some(1_700_000_000_123_000));
                assert_eq!(body.to_plain_text(), "see you at 3");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_events_are_no_items_and_incomplete_ones_are_refused() {
        let (none, _) = read(json!({"event": "meeting.started", "payload": {}}));
        assert!(none.is_empty());
        assert!(
            split_webhook(&request(
                json!({"event": "bot_notification", "payload": {"cmd": "hi"}})
            ))
            .is_err()
        );
        assert!(
            split_webhook(&request(dm(
                "team_chat.dm_message_posted",
                json!({"contact_id": "U2"})
            )))
            .is_err()
        );
        assert!(split_webhook(&request(json!({"event": "team_chat.dm_message_posted"}))).is_err());
        let mut garbage = request(json!({}));
        garbage.body = b"not json".to_vec();
        assert!(split_webhook(&garbage).is_err());
        assert_eq!(emoji("👍").as_deref(), Some("👍"));
        assert_eq!(emoji("U+1F44D").as_deref(), Some("👍"));
        assert_eq!(emoji("U+ZZ"), None);
    }
}
