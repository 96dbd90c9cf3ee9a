//! What the Chat API's objects say, as far as the hub reads them: messages, spaces, users,
//! reactions and memberships, and the events made of them.
//!
//! - Message: <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages>
//! - Space: <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces>

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::{ExternalChatId, ExternalUserId, Platform, RichText};
use switchboard_platform::wire::{items, lenient};
use switchboard_platform::{ChatKind, InboundEvent, InboundKind, MessageRef};

use crate::markup::{self, MentionSpan};
use switchboard_platform::time;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatMessage {
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub sender: Option<ChatUser>,
    #[serde(default, deserialize_with = "lenient")]
    pub create_time: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    text: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    formatted_text: Option<String>,
    #[serde(default, deserialize_with = "items")]
    annotations: Vec<Annotation>,
    #[serde(default, deserialize_with = "lenient")]
    pub thread: Option<Named>,
    #[serde(default, deserialize_with = "lenient")]
    pub thread_reply: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub space: Option<Space>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Named {
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChatUser {
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    /// `HUMAN` or `BOT` (or their numbers, 1 and 2).
    #[serde(default, rename = "type")]
    pub kind: Option<Value>,
}

impl ChatUser {
    /// The user's id (`users/123` → `123`).
    pub fn id(&self) -> Option<ExternalUserId> {
        user_id(self.name.as_deref()?)
    }

    pub fn is_bot(&self) -> bool {
        matches!(&self.kind, Some(Value::String(kind)) if kind == "BOT")
            || matches!(&self.kind, Some(Value::Number(kind)) if kind.as_u64() == Some(2))
    }
}

pub(crate) fn user_id(name: &str) -> Option<ExternalUserId> {
    name.strip_prefix("users/")
        .filter(|id| !id.is_empty())
        .map(ExternalUserId::new)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Space {
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    /// `DIRECT_MESSAGE`, `GROUP_CHAT`, `SPACE`, or their numbers (3, 2, 1).
    #[serde(default)]
    space_type: Option<Value>,
    /// The older field: `DM` or `ROOM`.
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    legacy_type: Option<String>,
}

impl Space {
    /// Whether the space is a direct message; `None` when it does not say.
    pub fn kind(&self) -> Option<ChatKind> {
        let direct = match (&self.space_type, &self.legacy_type) {
            (Some(Value::String(kind)), _) => kind == "DIRECT_MESSAGE",
            (Some(Value::Number(kind)), _) => kind.as_u64() == Some(3),
            (_, Some(kind)) => kind == "DM",
            _ => return None,
        };
        Some(if direct {
            ChatKind::Direct
        } else {
            ChatKind::Group
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Annotation {
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    start_index: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    length: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    user_mention: Option<UserMention>,
}

#[derive(Debug, Clone, Deserialize)]
struct UserMention {
    #[serde(default, deserialize_with = "lenient")]
    user: Option<ChatUser>,
}

impl ChatMessage {
    /// The message's space (`spaces/S/messages/M` → `spaces/S`).
    pub fn chat(&self) -> Option<ExternalChatId> {
        let name = self.name.as_deref()?;
        let (space, _) = name.split_once("/messages/")?;
        Some(ExternalChatId::new(space))
    }

    pub fn reference(&self) -> Option<MessageRef> {
        Some(MessageRef {
            chat: self.chat()?,
            id: self.name.clone()?,
        })
    }

    pub fn sender_id(&self) -> Option<ExternalUserId> {
        self.sender.as_ref()?.id()
    }

    /// What it says: `formattedText` where Google gives it (mentions as `<users/ID>`), else
    /// `text` with its annotated mentions.
    pub fn body(&self) -> RichText {
        if let Some(formatted) = &self.formatted_text {
            return markup::parse(formatted);
        }
        let text = self.text.as_deref().unwrap_or_default();
        let mentions: Vec<MentionSpan> = self
            .annotations
            .iter()
            .filter(|annotation| {
                matches!(&annotation.kind, Some(Value::String(kind)) if kind == "USER_MENTION")
                    || matches!(&annotation.kind, Some(Value::Number(kind)) if kind.as_u64() == Some(1))
            })
            .filter_map(|annotation| {
                Some(MentionSpan {
                    start: annotation.start_index?,
                    length: annotation.length?,
                    user: annotation.user_mention.as_ref()?.user.as_ref()?.id()?,
                })
            })
            .collect();
        markup::parse(&markup::with_mentions(text, &mentions))
    }

    pub fn created_micros(&self) -> Option<i64> {
        time::parse_micros(self.create_time.as_deref()?)
    }

    pub fn is_thread_reply(&self) -> bool {
        self.thread_reply.unwrap_or(false)
    }

    pub fn thread_name(&self) -> Option<&str> {
        self.thread.as_ref()?.name.as_deref()
    }
}

/// The id of what happened to a message or reaction, equal however many subscriptions deliver
/// it (each representation in a group chat has its own): the event's type and the resource's
/// name, and for an edit the time of that version.
pub(crate) fn event_id(event_type: &str, resource: &str, version: Option<&str>) -> String {
    let short = event_type
        .strip_prefix("google.workspace.chat.")
        .unwrap_or(event_type);
    match version {
        Some(version) => format!("{short} {resource} {version}"),
        None => format!("{short} {resource}"),
    }
}

pub(crate) const MESSAGE_CREATED: &str = "google.workspace.chat.message.v1.created";
pub(crate) const MESSAGE_UPDATED: &str = "google.workspace.chat.message.v1.updated";
pub(crate) const MESSAGE_DELETED: &str = "google.workspace.chat.message.v1.deleted";
pub(crate) const REACTION_CREATED: &str = "google.workspace.chat.reaction.v1.created";
pub(crate) const REACTION_DELETED: &str = "google.workspace.chat.reaction.v1.deleted";

/// A posted message as an event: `recipient` is the account it was read as, `thread` the
/// first message of its thread when it is a reply.
pub(crate) fn posted(
    message: &ChatMessage,
    chat_kind: ChatKind,
    recipient: Option<ExternalUserId>,
    thread: Option<MessageRef>,
) -> Option<InboundEvent> {
    let reference = message.reference()?;
    Some(InboundEvent {
        event_id: event_id(MESSAGE_CREATED, &reference.id, None),
        platform: Platform::GoogleChat,
        kind: InboundKind::MessagePosted {
            message: reference,
            chat_kind,
            sender: message.sender_id()?,
            recipient,
            sent_at_micros: message.created_micros(),
            body: message.body(),
            thread,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::rich_text::{Block, Inline, Mention};

    #[test]
    fn a_message_says_who_wrote_it_where_and_what() {
        let message: ChatMessage = serde_json::from_value(json!({
            "name": "spaces/AAA/messages/M1.M1",
            "sender": {"name": "users/7", "type": "HUMAN"},
            "createTime": "2024-05-01T12:00:00.000123Z",
            "text": "hi @Ana *you*",
            "annotations": [{"type": "USER_MENTION", "startIndex": 3, "length": 4,
                             "userMention": {"user": {"name": "users/9", "type": "HUMAN"}, "type": "MENTION"}}],
            "thread": {"name": "spaces/AAA/threads/T1"},
            "space": {"name": "spaces/AAA", "spaceType": "DIRECT_MESSAGE"}
        }))
        .unwrap();
        assert_eq!(message.chat().unwrap().as_str(), "spaces/AAA");
        assert_eq!(message.sender_id().unwrap().as_str(), "7");
        assert_eq!(
            message.space.as_ref().unwrap().kind(),
            Some(ChatKind::Direct)
        );
        assert_eq!(message.created_micros(), Some(1_714_564_800_000_123));
        assert!(!message.is_thread_reply());
        assert_eq!(
            message.body().blocks,
            vec![Block::Paragraph(vec![
                Inline::Text("hi ".to_owned()),
                Inline::Mention(Mention {
                    user: ExternalUserId::new("9"),
                    label: String::new()
                }),
                Inline::Text(" ".to_owned()),
                Inline::Bold(vec![Inline::Text("you".to_owned())]),
            ])]
        );
    }

    #[test]
    fn formatted_text_is_preferred_and_space_types_read_in_every_form() {
        let message: ChatMessage = serde_json::from_value(json!({
            "name": "spaces/B/messages/M", "text": "@Ana", "formattedText": "<users/9>"
        }))
        .unwrap();
        assert_eq!(message.body().mentions().count(), 1);
        let kind = |space: Value| serde_json::from_value::<Space>(space).unwrap().kind();
        assert_eq!(kind(json!({"spaceType": 3})), Some(ChatKind::Direct));
        assert_eq!(
            kind(json!({"spaceType": "GROUP_CHAT"})),
            Some(ChatKind::Group)
        );
        assert_eq!(kind(json!({"type": "DM"})), Some(ChatKind::Direct));
        assert_eq!(kind(json!({})), None);
    }

    #[test]
    fn event_ids_name_the_change_not_the_delivery() {
        assert_eq!(
            event_id(MESSAGE_CREATED, "spaces/A/messages/M", None),
            "message.v1.created spaces/A/messages/M"
        );
        assert_ne!(
            event_id(
                MESSAGE_UPDATED,
                "spaces/A/messages/M",
                Some("2024-01-01T00:00:00Z")
            ),
            event_id(
                MESSAGE_UPDATED,
                "spaces/A/messages/M",
                Some("2024-01-01T00:00:01Z")
            )
        );
    }
}
