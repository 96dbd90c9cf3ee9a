//! Chats and their messages, acting as a representation with its own token: 1:1 chats (named
//! by their two members, reached with `to_contact`), group chats as channels of type 4 ("new
//! chat"), posts with Zoom's formatting, thread replies (`reply_main_message_id`), edits,
//! deletions, reactions, what an interrupted post left, and what was written while the hub was
//! away. The hub itself writes only as its chatbot, in each person's chat with it, and so does
//! the chatbot relay for someone without a Zoom account: under their name, in the chat of
//! each person they write to, where it can edit and delete what it wrote and nothing more.
//!
//! - Chat messages: <https://developers.zoom.us/docs/api/team-chat/#tag/chat-messages>
//! - Chat channels: <https://developers.zoom.us/docs/api/team-chat/#tag/chat-channels>

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_core::{ExternalChatId, ExternalUserId, Platform, Timestamp};
use switchboard_platform::{
    Actor, ConnectionContext, InboundEvent, InboundKind, MessageRef, OutboundMessage,
    PlatformError, time,
};

use crate::chats::Chat;
use crate::client::segment;
use crate::wire::{Created, MemberList, Message, MessageList};
use crate::{ZoomPlatform, directory, events, markup, relay_label};

/// How far back a read of a chat's messages pages at most.
const MAX_PAGES: usize = 20;
/// Messages per page (Zoom's most).
const MESSAGES_PER_PAGE: &str = "50";
/// Members per page of a channel's members (Zoom's most).
const MEMBERS_PER_PAGE: &str = "100";
/// What a group chat the hub opens is called; the people in it see their own names.
const GROUP_NAME: &str = "Group chat";
/// Zoom's channel type of a group chat ("new chat" with several people).
const GROUP_CHAT_TYPE: u8 = 4;
/// Reads end this far past the hub's clock, which may lag Zoom's.
const CLOCK_MARGIN_MILLIS: i64 = 60_000;

pub(crate) async fn open_chat(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    members: &[ExternalUserId],
) -> Result<ExternalChatId, PlatformError> {
    if let Actor::Hub = actor {
        return match members {
            [person] => Ok(Chat::Bot(person.as_str().to_owned()).id()),
            _ => Err(PlatformError::Unsupported(
                "a group chat with the hub: Zoom's chatbot writes only in each person's chat with it",
            )),
        };
    }
    if let (Some(_), Actor::Representation { account, .. }) = (relay_label(actor), actor) {
        return match members {
            [person] => Ok(Chat::Relayed {
                person: person.as_str().to_owned(),
                via: account.as_str().to_owned(),
            }
            .id()),
            _ => Err(PlatformError::Unsupported(
                "a group chat for someone without a Zoom account: the chatbot relays for them only in each person's own chat with it",
            )),
        };
    }
    let (token, me) = platform.acting(actor)?;
    let others: Vec<&str> = members
        .iter()
        .map(ExternalUserId::as_str)
        .filter(|member| *member != me)
        .collect();
    match others.as_slice() {
        [] => Err(PlatformError::Rejected(
            "a chat needs someone besides the one who opens it".to_owned(),
        )),
        // Nothing to make or look up: a 1:1 chat exists with its first message.
        [person] => Ok(Chat::direct(me, person).id()),
        people => {
            // Channels take their members by address.
            let mut invited = Vec::new();
            for person in people {
                let user = directory::user(platform, connection, person).await?;
                let email = user.email.ok_or_else(|| {
                    PlatformError::Rejected(format!("Zoom gave no address for {person}"))
                })?;
                invited.push(json!({ "email": email }));
            }
            let url = platform.client.url("chat/users/me/channels", &[])?;
            let body = json!({"name": GROUP_NAME, "type": GROUP_CHAT_TYPE, "members": invited});
            let created: Created = platform
                .client
                .call(token, Method::POST, &url, Some(&body))
                .await?;
            let id = created.id.filter(|id| !id.is_empty()).ok_or_else(|| {
                PlatformError::Rejected("Zoom created a channel without an id".to_owned())
            })?;
            Ok(Chat::Channel(id).id())
        }
    }
}

/// Where `actor` reaches `chat`: its token, and `to_contact` or `to_channel` with its value.
fn reach<'a>(
    platform: &ZoomPlatform,
    actor: &'a Actor,
    chat: &ExternalChatId,
) -> Result<(&'a str, (&'static str, String)), PlatformError> {
    let (token, me) = platform.acting(actor)?;
    Ok((token, Chat::parse(chat)?.target(me)?))
}

fn message_url(platform: &ZoomPlatform, id: &str, tail: &str) -> Result<String, PlatformError> {
    platform.client.url(
        &format!("chat/users/me/messages/{}{tail}", segment(id)?),
        &[],
    )
}

pub(crate) async fn post_message(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
) -> Result<MessageRef, PlatformError> {
    if let (Actor::Hub, Chat::Bot(person)) = (actor, Chat::parse(chat)?) {
        let jid = jid_of(platform, connection, &person).await?;
        let content = json!({"body": [{"type": "message", "text": message.body.to_plain_text()}]});
        let id = directory::chatbot_message(platform, connection, &jid, content).await?;
        return Ok(MessageRef {
            chat: chat.clone(),
            id,
        });
    }
    if let Some(label) = relay_label(actor) {
        let person = relayed_chat(chat)?;
        let jid = jid_of(platform, connection, &person).await?;
        let content = relayed_content(label?, message);
        let id = directory::chatbot_message(platform, connection, &jid, content).await?;
        return Ok(MessageRef {
            chat: chat.clone(),
            id,
        });
    }
    let (token, (field, target)) = reach(platform, actor, chat)?;
    let mut body = markup::render(&message.body).fields();
    body.insert(field.to_owned(), target.into());
    if let Some(thread) = &message.thread {
        body.insert("reply_main_message_id".to_owned(), thread.id.clone().into());
    }
    let url = platform.client.url("chat/users/me/messages", &[])?;
    let created: Created = platform
        .client
        .call(token, Method::POST, &url, Some(&Value::Object(body)))
        .await?;
    let id = created.id.filter(|id| !id.is_empty()).ok_or_else(|| {
        PlatformError::Rejected("Zoom accepted a message without giving its id".to_owned())
    })?;
    Ok(MessageRef {
        chat: chat.clone(),
        id,
    })
}

/// The Team Chat address (jid) of a user, which the Chatbot API addresses.
async fn jid_of(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    person: &str,
) -> Result<String, PlatformError> {
    directory::user(platform, connection, person)
        .await?
        .jid
        .ok_or_else(|| PlatformError::Rejected(format!("Zoom gave no jid for {person}")))
}

/// The person whose chat with the chatbot a relayed portal is.
fn relayed_chat(chat: &ExternalChatId) -> Result<String, PlatformError> {
    match Chat::parse(chat)? {
        Chat::Relayed { person, .. } => Ok(person),
        _ => Err(PlatformError::Rejected(format!(
            "the chatbot relays only in a person's chat with it, not in {chat}"
        ))),
    }
}

/// A relayed message as a chatbot card: who it is from as its head, then its text. Plain
/// text, mentions as names: a card's text cannot mention anyone.
fn relayed_content(label: &str, message: &OutboundMessage) -> Value {
    json!({
        "head": {"text": label},
        "body": [{"type": "message", "text": message.body.to_plain_text()}],
    })
}

/// Zoom's `from`/`to` form: `yyyy-MM-ddTHH:mm:ssZ`, in whole seconds (rounded down).
fn zoom_time(millis: i64) -> String {
    time::format_micros(millis.div_euclid(1000) * 1_000_000).replace(".000000Z", "Z")
}

/// `reader`'s messages of a chat written from `from_millis` on (to the second), oldest first.
async fn listed(
    platform: &ZoomPlatform,
    token: &str,
    path_user: &str,
    (field, target): &(&'static str, String),
    from_millis: i64,
) -> Result<Vec<Message>, PlatformError> {
    let from = zoom_time(from_millis);
    let to = zoom_time(platform.now().unix_millis() + CLOCK_MARGIN_MILLIS);
    let mut messages = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![
            (*field, target.as_str()),
            ("from", from.as_str()),
            ("to", to.as_str()),
            ("page_size", MESSAGES_PER_PAGE),
        ];
        if let Some(page_token) = next.as_deref() {
            query.push(("next_page_token", page_token));
        }
        let url = platform.client.url(
            &format!("chat/users/{}/messages", segment(path_user)?),
            &query,
        )?;
        let page: MessageList = platform.client.get(token, &url).await?;
        messages.extend(page.messages);
        next = page
            .next_page_token
            .filter(|page_token| !page_token.is_empty());
        if next.is_none() {
            break;
        }
    }
    // Zoom lists newest first.
    messages.reverse();
    Ok(messages)
}

/// The representation's messages since `since` whose text is the copy's, as this module
/// renders it: Zoom keeps no metadata with a message, so the text is what identifies it.
pub(crate) async fn find_posted(
    platform: &ZoomPlatform,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
    since: Timestamp,
) -> Result<Vec<MessageRef>, PlatformError> {
    // The Chatbot API lists no messages, so a relayed post whose answer was lost cannot be
    // recognised: it is sent again, at least once rather than perhaps never.
    if relay_label(actor).is_some() {
        return Ok(Vec::new());
    }
    let (token, target) = reach(platform, actor, chat)?;
    // Lists name senders by address.
    let me = platform.me(token).await?;
    let address = me.email.unwrap_or_default();
    let text = markup::render(&message.body).message;
    Ok(listed(platform, token, "me", &target, since.unix_millis())
        .await?
        .into_iter()
        .filter(|posted| {
            posted
                .sender
                .as_deref()
                .is_some_and(|sender| sender.eq_ignore_ascii_case(&address))
                && posted.message.as_deref() == Some(text.as_str())
        })
        .filter_map(|posted| posted.id)
        .map(|id| MessageRef {
            chat: chat.clone(),
            id,
        })
        .collect())
}

pub(crate) async fn edit_message(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    replacement: &OutboundMessage,
) -> Result<(), PlatformError> {
    if let Some(label) = relay_label(actor) {
        let jid = jid_of(platform, connection, &relayed_chat(&message.chat)?).await?;
        let content = relayed_content(label?, replacement);
        return directory::edit_chatbot_message(platform, connection, &jid, &message.id, content)
            .await;
    }
    let (token, (field, target)) = reach(platform, actor, &message.chat)?;
    let mut body = markup::render(&replacement.body).fields();
    body.insert(field.to_owned(), target.into());
    let url = message_url(platform, &message.id, "")?;
    platform
        .client
        .send(token, Method::PUT, &url, Some(&Value::Object(body)))
        .await
}

pub(crate) async fn delete_message(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
) -> Result<(), PlatformError> {
    if relay_label(actor).is_some() {
        let jid = jid_of(platform, connection, &relayed_chat(&message.chat)?).await?;
        return directory::delete_chatbot_message(platform, connection, &jid, &message.id).await;
    }
    let (token, (field, target)) = reach(platform, actor, &message.chat)?;
    let mut url = reqwest::Url::parse(&message_url(platform, &message.id, "")?)
        .map_err(|e| PlatformError::Rejected(format!("bad message URL: {e}")))?;
    url.query_pairs_mut().append_pair(field, &target);
    platform
        .client
        .send(token, Method::DELETE, url.as_str(), None)
        .await
}

/// An emoji as Zoom's reaction requests write it: its code points, `U+1F44D`, space-separated.
pub(crate) fn code_points(emoji: &str) -> String {
    emoji
        .chars()
        .map(|c| format!("U+{:X}", u32::from(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) async fn set_reaction(
    platform: &ZoomPlatform,
    actor: &Actor,
    message: &MessageRef,
    emoji: &str,
    present: bool,
) -> Result<(), PlatformError> {
    let (token, (field, target)) = reach(platform, actor, &message.chat)?;
    let body = json!({
        "action": if present { "add" } else { "remove" },
        "emoji": code_points(emoji),
        field: target,
    });
    let url = message_url(platform, &message.id, "/emoji_reactions")?;
    platform
        .client
        .send(token, Method::PATCH, &url, Some(&body))
        .await
}

pub(crate) async fn chat_members(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
) -> Result<Vec<ExternalUserId>, PlatformError> {
    let channel = match Chat::parse(chat)? {
        Chat::Direct(one, other) => {
            return Ok(vec![ExternalUserId::new(one), ExternalUserId::new(other)]);
        }
        Chat::Bot(person) => {
            return Ok(vec![
                ExternalUserId::new(person),
                ExternalUserId::new(platform.robot_jid.clone()),
            ]);
        }
        Chat::Relayed { person, via } => {
            return Ok(vec![ExternalUserId::new(person), ExternalUserId::new(via)]);
        }
        Chat::Channel(channel) => channel,
    };
    let reader = platform.reading(connection, actor)?;
    let path = format!(
        "chat/users/{}/channels/{}/members",
        segment(reader.path_user)?,
        segment(&channel)?
    );
    let mut members = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("page_size", MEMBERS_PER_PAGE)];
        if let Some(page_token) = next.as_deref() {
            query.push(("next_page_token", page_token));
        }
        let url = platform.client.url(&path, &query)?;
        let page: MemberList = platform.client.get(reader.token, &url).await?;
        members.extend(
            page.members
                .into_iter()
                .filter_map(|member| member.id.filter(|id| !id.is_empty()))
                .map(ExternalUserId::new),
        );
        next = page
            .next_page_token
            .filter(|page_token| !page_token.is_empty());
        if next.is_none() {
            break;
        }
    }
    Ok(members)
}

/// What was written in `chat` after `after_micros`, oldest first. Lists name people by
/// address, so each address is looked up once (with the server-to-server app) for its id.
pub(crate) async fn messages_since(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    reader: &Actor,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<InboundEvent>, PlatformError> {
    if let Chat::Relayed { .. } = Chat::parse(chat)? {
        // Nothing to read back: what a person writes to the chatbot reaches the hub only as
        // a delivery (which Zoom retries), since the Chatbot API lists no messages.
        return Ok(Vec::new());
    }
    let reading = platform.reading(connection, reader)?;
    let target = Chat::parse(chat)?.target(reading.me)?;
    let kind = Chat::parse(chat)?.kind();
    let messages: Vec<Message> = listed(
        platform,
        reading.token,
        reading.path_user,
        &target,
        after_micros.div_euclid(1000),
    )
    .await?
    .into_iter()
    .filter(|message| {
        message
            .timestamp
            .is_some_and(|millis| millis.saturating_mul(1000) > after_micros)
    })
    .collect();
    let mut addresses: Vec<String> = Vec::new();
    for message in &messages {
        addresses.extend(message.sender.iter().cloned());
        addresses.extend(
            message
                .at_items
                .iter()
                .filter_map(|item| item.at_contact.clone()),
        );
    }
    let mut ids: HashMap<String, Option<String>> = HashMap::new();
    for address in addresses {
        if let Entry::Vacant(unknown) = ids.entry(address.to_lowercase()) {
            unknown.insert(
                match directory::user(platform, connection, &address).await {
                    Ok(user) => user.id,
                    Err(PlatformError::NotFound(_)) => None,
                    Err(error) => return Err(error),
                },
            );
        }
    }
    let id_of = |address: &str| ids.get(&address.to_lowercase()).cloned().flatten();
    let mut events = Vec::new();
    for message in messages {
        let (Some(id), Some(sender)) = (
            message.id.clone(),
            message.sender.as_deref().and_then(id_of),
        ) else {
            // Not a user of the account (the chatbot): nothing to relay.
            continue;
        };
        let body = markup::parse(
            message.message.as_deref().unwrap_or_default(),
            &message.rich_text,
            &message.at_items,
            |item| {
                item.at_contact
                    .as_deref()
                    .and_then(id_of)
                    .map(ExternalUserId::new)
            },
        );
        events.push(InboundEvent {
            event_id: events::posted_event_id(&id),
            platform: Platform::Zoom,
            kind: InboundKind::MessagePosted {
                message: MessageRef {
                    chat: chat.clone(),
                    id,
                },
                chat_kind: kind,
                sender: ExternalUserId::new(sender),
                recipient: None,
                sent_at_micros: message.timestamp.map(|millis| millis.saturating_mul(1000)),
                body,
                thread: message.reply_main_message_id.map(|id| MessageRef {
                    chat: chat.clone(),
                    id,
                }),
            },
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_sent_as_code_points() {
        assert_eq!(code_points("👍"), "U+1F44D");
        assert_eq!(code_points("❤️"), "U+2764 U+FE0F");
    }

    #[test]
    fn times_are_whole_seconds_in_zoom_form() {
        assert_eq!(zoom_time(784_111_777_999), "1994-11-06T08:49:37Z");
        assert_eq!(zoom_time(0), "1970-01-01T00:00:00Z");
    }
}
