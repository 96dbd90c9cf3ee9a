//! Rooms and their messages, acting as a representation: direct rooms (Webex creates a
//! person's 1:1 room with the first message to them), group rooms with their memberships,
//! posts in Webex markdown, thread replies, edits and deletions, what an interrupted post left,
//! and what was written while the hub was away.
//!
//! A direct room that does not exist yet has no id to open: until its first message it is
//! named `direct:PERSON_ID`, posted to with `toPersonId`, and read through `messages/direct`.
//!
//! - Messages: <https://developer.webex.com/docs/api/v1/messages>
//! - Rooms and memberships: <https://developer.webex.com/docs/api/v1/rooms>,
//!   <https://developer.webex.com/docs/api/v1/memberships>

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_core::{ExternalChatId, ExternalUserId, Platform, Timestamp};
use switchboard_platform::time;
use switchboard_platform::{
    Actor, ConnectionContext, InboundEvent, InboundKind, MessageRef, OutboundMessage, PlatformError,
};

use crate::client::id;
use crate::wire::{Created, Membership, Message};
use crate::{WebexPlatform, events, markup};

/// The name of a direct room before its first message.
const DIRECT_PREFIX: &str = "direct:";
/// How far back a read of a room's recent messages pages at most.
const MAX_PAGES: usize = 20;
/// Messages per page of those reads.
const MESSAGES_PER_PAGE: &str = "100";
/// What a group room the hub opens is called; the people in it see their own names.
const GROUP_TITLE: &str = "Group chat";

/// Where a chat's messages go and are read from.
enum Room<'a> {
    Id(&'a str),
    /// A direct room with this person that may not exist yet.
    DirectWith(&'a str),
}

fn room(chat: &ExternalChatId) -> Result<Room<'_>, PlatformError> {
    match chat.as_str().strip_prefix(DIRECT_PREFIX) {
        Some(person) => id(person).map(Room::DirectWith),
        None => id(chat.as_str()).map(Room::Id),
    }
}

pub(crate) async fn open_chat(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    members: &[ExternalUserId],
) -> Result<ExternalChatId, PlatformError> {
    let (token, me) = platform.acting(connection, actor)?;
    let others: Vec<&str> = members
        .iter()
        .map(ExternalUserId::as_str)
        .filter(|member| *member != me)
        .collect();
    match others.as_slice() {
        [] => Err(PlatformError::Rejected(
            "a chat needs someone besides the one who opens it".to_owned(),
        )),
        [person] => {
            let person = id(person)?;
            let url = platform
                .client
                .url("messages/direct", &[("personId", person), ("max", "1")])?;
            let existing = match platform.client.page::<Message>(&token, &url).await {
                Ok(page) => page.items.into_iter().find_map(|message| message.room_id),
                Err(PlatformError::NotFound(_)) => None,
                Err(error) => return Err(error),
            };
            Ok(ExternalChatId::new(
                existing.unwrap_or_else(|| format!("{DIRECT_PREFIX}{person}")),
            ))
        }
        people => {
            let url = platform.client.url("rooms", &[])?;
            let created: Created = platform
                .client
                .call(
                    &token,
                    Method::POST,
                    &url,
                    Some(&json!({"title": GROUP_TITLE})),
                )
                .await?;
            let room = created.id.ok_or_else(|| {
                PlatformError::Rejected("Webex created a room without an id".to_owned())
            })?;
            let url = platform.client.url("memberships", &[])?;
            for person in people {
                let membership = json!({"roomId": room, "personId": person});
                platform
                    .client
                    .send(&token, Method::POST, &url, Some(&membership))
                    .await?;
            }
            Ok(ExternalChatId::new(room))
        }
    }
}

/// The markdown and its plain-text rendering, which Webex shows where markdown is not shown.
fn content(message: &OutboundMessage) -> (String, String) {
    (markup::render(&message.body), message.body.to_plain_text())
}

pub(crate) async fn post_message(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
) -> Result<MessageRef, PlatformError> {
    let (token, _) = platform.acting(connection, actor)?;
    let (markdown, text) = content(message);
    let mut body = json!({"markdown": markdown, "text": text});
    match room(chat)? {
        Room::Id(room) => body["roomId"] = json!(room),
        Room::DirectWith(person) => body["toPersonId"] = json!(person),
    }
    if let Some(parent) = &message.thread {
        body["parentId"] = json!(thread_root(platform, &token, parent).await?);
    }
    let url = platform.client.url("messages", &[])?;
    let posted: Message = platform
        .client
        .call(&token, Method::POST, &url, Some(&body))
        .await?;
    posted.reference().ok_or_else(|| {
        PlatformError::Rejected("Webex answered a post without its id or room".to_owned())
    })
}

/// The root of the thread `parent` is in: Webex threads are one level deep, so a reply to a
/// reply goes to the reply's parent.
async fn thread_root(
    platform: &WebexPlatform,
    token: &str,
    parent: &MessageRef,
) -> Result<String, PlatformError> {
    let url = platform
        .client
        .url(&format!("messages/{}", id(&parent.id)?), &[])?;
    let message: Message = platform.client.get(token, &url).await?;
    Ok(message.parent_id.unwrap_or_else(|| parent.id.clone()))
}

/// The messages of `chat` written after `after_micros`, oldest first: Webex lists newest
/// first, so pages are read until one reaches that time.
async fn messages_after(
    platform: &WebexPlatform,
    token: &str,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<Message>, PlatformError> {
    let mut url = match room(chat)? {
        Room::Id(room) => platform
            .client
            .url("messages", &[("roomId", room), ("max", MESSAGES_PER_PAGE)])?,
        Room::DirectWith(person) => platform.client.url(
            "messages/direct",
            &[("personId", person), ("max", MESSAGES_PER_PAGE)],
        )?,
    };
    let mut found = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = platform.client.page::<Message>(token, &url).await?;
        let mut reached = false;
        for message in page.items {
            let written = message.created.as_deref().and_then(time::parse_micros);
            if written.is_some_and(|written| written <= after_micros) {
                reached = true;
                break;
            }
            found.push(message);
        }
        match page.next {
            Some(next) if !reached => url = next,
            _ => break,
        }
    }
    found.reverse();
    Ok(found)
}

pub(crate) async fn find_posted(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
    since: Timestamp,
) -> Result<Vec<MessageRef>, PlatformError> {
    let (token, me) = platform.acting(connection, actor)?;
    // Webex keeps no metadata on a message: a copy is recognised by its author and text.
    let wanted = markup::parse(&markup::render(&message.body));
    let after = since.unix_millis().saturating_mul(1000).saturating_sub(1);
    let written = messages_after(platform, &token, chat, after).await?;
    Ok(written
        .iter()
        .filter(|posted| posted.person_id.as_deref() == Some(me.as_str()))
        .filter(|posted| posted.body() == wanted)
        .filter_map(Message::reference)
        .collect())
}

pub(crate) async fn edit_message(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    replacement: &OutboundMessage,
) -> Result<(), PlatformError> {
    let (token, _) = platform.acting(connection, actor)?;
    let (markdown, text) = content(replacement);
    let room = id(message.chat.as_str())?;
    let url = platform
        .client
        .url(&format!("messages/{}", id(&message.id)?), &[])?;
    let body = json!({"roomId": room, "markdown": markdown, "text": text});
    platform
        .client
        .call::<Value>(&token, Method::PUT, &url, Some(&body))
        .await
        .map(drop)
}

pub(crate) async fn delete_message(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
) -> Result<(), PlatformError> {
    let (token, _) = platform.acting(connection, actor)?;
    let url = platform
        .client
        .url(&format!("messages/{}", id(&message.id)?), &[])?;
    platform
        .client
        .send(&token, Method::DELETE, &url, None)
        .await
}

pub(crate) async fn chat_members(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
) -> Result<Vec<ExternalUserId>, PlatformError> {
    let (token, me) = platform.acting(connection, actor)?;
    match room(chat)? {
        Room::DirectWith(person) => Ok(vec![ExternalUserId::new(me), ExternalUserId::new(person)]),
        Room::Id(room) => {
            let max = platform.page_size.to_string();
            let url = platform
                .client
                .url("memberships", &[("roomId", room), ("max", &max)])?;
            let members: Vec<Membership> = platform.client.all(&token, &url, MAX_PAGES).await?;
            Ok(members
                .into_iter()
                .filter_map(|membership| membership.person_id.map(ExternalUserId::new))
                .collect())
        }
    }
}

pub(crate) async fn messages_since(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    reader: &Actor,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<InboundEvent>, PlatformError> {
    let (token, me) = platform.acting(connection, reader)?;
    let written = messages_after(platform, &token, chat, after_micros).await?;
    Ok(written
        .iter()
        .filter_map(|message| posted(message, Some(ExternalUserId::new(me.as_str()))))
        .collect())
}

/// A message as the hub's [`InboundKind::MessagePosted`]; `None` without an id, room or sender.
pub(crate) fn posted(message: &Message, recipient: Option<ExternalUserId>) -> Option<InboundEvent> {
    let reference = message.reference()?;
    Some(InboundEvent {
        event_id: events::posted_event_id(&reference.id),
        platform: Platform::Webex,
        kind: InboundKind::MessagePosted {
            message: reference,
            chat_kind: message.kind(),
            sender: message.sender()?,
            recipient,
            sent_at_micros: message.created.as_deref().and_then(time::parse_micros),
            body: message.body(),
            thread: message.thread(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_room_not_made_yet_is_named_by_the_person() {
        assert!(matches!(
            room(&ExternalChatId::new("direct:P1")),
            Ok(Room::DirectWith("P1"))
        ));
        assert!(matches!(
            room(&ExternalChatId::new("R1")),
            Ok(Room::Id("R1"))
        ));
        assert!(room(&ExternalChatId::new("direct:../x")).is_err());
        assert!(room(&ExternalChatId::new("R1/../x")).is_err());
    }

    #[test]
    fn a_message_without_id_room_or_sender_is_no_post() {
        let message: Message = serde_json::from_value(serde_json::json!({
            "id": "M1", "roomId": "R1", "roomType": "group", "personId": "P1",
            "markdown": "hi", "created": "2024-01-01T00:00:00.5Z"
        }))
        .unwrap();
        let event = posted(&message, None).unwrap();
        assert_eq!(event.event_id, "created M1");
        let InboundKind::MessagePosted {
            sent_at_micros,
            chat_kind,
            ..
        } = event.kind
        else {
            panic!("not a post");
        };
        assert_eq!(sent_at_micros, Some(1_704_067_200_500_000));
        assert_eq!(chat_kind, switchboard_platform::ChatKind::Group);
        let anonymous: Message =
            serde_json::from_value(serde_json::json!({"id": "M1", "roomId": "R1"})).unwrap();
        assert!(posted(&anonymous, None).is_none());
    }
}
