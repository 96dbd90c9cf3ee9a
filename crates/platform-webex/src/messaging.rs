//! Rooms and their messages, acting as a representation: direct rooms (Webex creates a
//! person's 1:1 room with the first message to them), group rooms with their memberships,
//! posts in Webex markdown, thread replies, edits and deletions, what an interrupted post left,
//! and what was written while the hub was away.
//!
//! A direct chat is named by its two members (see `chats`), whether or not its room exists:
//! it is posted to with `toPersonId` (Webex creates the room with the first message) and read
//! through `messages/direct`.
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

use crate::chats::{Chat, direct_chat, other_member};
use crate::client::id;
use crate::wire::{Created, Membership, Message};
use crate::{WebexPlatform, events, markup};

/// How far back a read of a room's recent messages pages at most.
const MAX_PAGES: usize = 20;
/// Messages per page of those reads.
const MESSAGES_PER_PAGE: &str = "100";
/// What a group room the hub opens is called; the people in it see their own names.
const GROUP_TITLE: &str = "Group chat";

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
        // The name is the pair's whether or not their room exists, so nothing is looked up
        // or made: the first post makes the room, and reads find it by the other member.
        [person] => Ok(direct_chat(id(&me)?, id(person)?)),
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
    let (token, me) = platform.acting(connection, actor)?;
    let (markdown, text) = content(message);
    let mut body = json!({"markdown": markdown, "text": text});
    // A direct chat's other member, whom it is posted to; a room is posted to by its id.
    let direct_with = match Chat::of(chat)? {
        Chat::Room(room) => {
            body["roomId"] = json!(room);
            None
        }
        Chat::Direct(members) => Some(other_member(members, &me)?),
    };
    let mut parent_room = None;
    if let Some(parent) = &message.thread {
        let read = read_message(platform, &token, &parent.id).await?;
        // Webex threads are one level deep: a reply to a reply goes to the reply's parent.
        body["parentId"] = json!(read.parent_id.as_deref().unwrap_or(&parent.id));
        parent_room = read.room_id;
    }
    match (direct_with, parent_room) {
        (None, _) => {}
        // A reply in a direct chat names its parent's room, which the parent shows exists:
        // Webex documents `parentId` with `roomId`.
        (Some(_), Some(room)) => body["roomId"] = json!(room),
        // Webex makes the room with the first message to the other member.
        (Some(person), None) => body["toPersonId"] = json!(person),
    }
    let url = platform.client.url("messages", &[])?;
    let posted: Message = platform
        .client
        .call(&token, Method::POST, &url, Some(&body))
        .await?;
    if let (Some(_), Some(room)) = (direct_with, &posted.room_id) {
        // Its delivery names the room only; remembered, the hub's own post is recognised.
        platform.rooms.remember(room, chat);
    }
    posted
        .in_chat(chat)
        .ok_or_else(|| PlatformError::Rejected("Webex answered a post without its id".to_owned()))
}

/// A message, read back (`GET messages/{id}`).
async fn read_message(
    platform: &WebexPlatform,
    token: &str,
    message: &str,
) -> Result<Message, PlatformError> {
    let url = platform
        .client
        .url(&format!("messages/{}", id(message)?), &[])?;
    platform.client.get(token, &url).await
}

/// The messages of `chat` written after `after_micros`, oldest first: Webex lists newest
/// first, so pages are read until one reaches that time.
async fn messages_after(
    platform: &WebexPlatform,
    token: &str,
    me: &str,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<Message>, PlatformError> {
    let target = Chat::of(chat)?;
    let direct = matches!(target, Chat::Direct(_));
    let mut url = match target {
        Chat::Room(room) => platform
            .client
            .url("messages", &[("roomId", room), ("max", MESSAGES_PER_PAGE)])?,
        Chat::Direct(members) => platform.client.url(
            "messages/direct",
            &[
                ("personId", other_member(members, me)?),
                ("max", MESSAGES_PER_PAGE),
            ],
        )?,
    };
    let mut found = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = match platform.client.page::<Message>(token, &url).await {
            Ok(page) => page,
            // A direct room nobody wrote in yet does not exist: Webex lists no messages for
            // it, and an answer that it is not found says the same.
            Err(PlatformError::NotFound(_)) if direct => break,
            Err(error) => return Err(error),
        };
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
    let written = messages_after(platform, &token, &me, chat, after).await?;
    Ok(written
        .iter()
        .filter(|posted| posted.person_id.as_deref() == Some(me.as_str()))
        .filter(|posted| posted.body() == wanted)
        .filter_map(|posted| posted.in_chat(chat))
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
    let room = match Chat::of(&message.chat)? {
        Chat::Room(room) => room.to_owned(),
        // Webex wants the message's room, which a direct chat's name does not give.
        Chat::Direct(_) => read_message(platform, &token, &message.id)
            .await?
            .room_id
            .ok_or_else(|| {
                PlatformError::Rejected(format!("Webex gave message {} no room", message.id))
            })?,
    };
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
    match Chat::of(chat)? {
        // Its name says who is in it, whether or not the room exists yet.
        Chat::Direct(members) => {
            let other = other_member(members, &me)?;
            Ok(vec![ExternalUserId::new(me), ExternalUserId::new(other)])
        }
        Chat::Room(room) => {
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
    let written = messages_after(platform, &token, &me, chat, after_micros).await?;
    Ok(written
        .iter()
        .filter_map(|message| posted(message, chat, Some(ExternalUserId::new(me.as_str()))))
        .collect())
}

/// A message of `chat` as the hub's [`InboundKind::MessagePosted`]; `None` without an id or
/// sender.
pub(crate) fn posted(
    message: &Message,
    chat: &ExternalChatId,
    recipient: Option<ExternalUserId>,
) -> Option<InboundEvent> {
    let reference = message.in_chat(chat)?;
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
            thread: message.thread(chat),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_id_or_sender_is_no_post() {
        let message: Message = serde_json::from_value(serde_json::json!({
            "id": "M1", "roomId": "R1", "roomType": "group", "personId": "P1",
            "markdown": "hi", "created": "2024-01-01T00:00:00.5Z"
        }))
        .unwrap();
        let chat = ExternalChatId::new("R1");
        let event = posted(&message, &chat, None).unwrap();
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
        assert!(posted(&anonymous, &chat, None).is_none());
    }
}
