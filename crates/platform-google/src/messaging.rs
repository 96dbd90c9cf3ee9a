//! Chats and their messages, acted on as a representation (or, for prompts and the app's own
//! DMs, the hub's Chat app): opening direct messages and group chats, posting, finding what was
//! posted, editing, deleting, reacting, members and reading back what was missed.
//!
//! Writes are paced below Google's limits (60 writes a minute per space; per project, 3,000
//! message writes, 600 reaction writes and 60 space set-ups a minute), so a busy chat queues
//! instead of collecting 429s; a 429 (`RESOURCE_EXHAUSTED`) is still retried after its
//! `Retry-After`.
//!
//! - Set up a space: <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces/setup>
//! - Messages: <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages>
//! - Reactions: <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages.reactions>
//! - Limits: <https://developers.google.com/workspace/chat/limits>

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;
use switchboard_core::{ExternalChatId, ExternalUserId, Timestamp};
use switchboard_platform::wire::{items, lenient};
use switchboard_platform::{
    Actor, ChatKind, ConnectionContext, InboundEvent, MessageRef, OutboundMessage, PlatformError,
    Rate, TokenBucket,
};

use crate::chat::{self, ChatMessage, ChatUser, Space};
use crate::client::resource_name;
use crate::{GoogleChatPlatform, markup};
use switchboard_platform::time;

/// Per space: a burst of 10, then 50 a minute, so no 60 s window holds more than Google's 60.
const SPACE_WRITES: Rate = Rate {
    per_second: 50.0 / 60.0,
    burst: 10.0,
};

/// What a write is, for the project's budget it takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Posting, editing or deleting a message.
    Message,
    Reaction,
    /// Setting up a direct message or group chat.
    SpaceSetUp,
}

impl Write {
    /// The project's budget: a burst, then the rest of Google's limit spread over the minute.
    /// Google allows 3,000 message writes, 600 reaction writes and 60 space writes a minute.
    fn project_rate(self) -> Rate {
        let (burst, per_minute) = match self {
            Write::Message => (500.0, 2500.0),
            Write::Reaction => (100.0, 500.0),
            Write::SpaceSetUp => (10.0, 50.0),
        };
        Rate {
            per_second: per_minute / 60.0,
            burst,
        }
    }
}

/// How many pages of a chat's history one read-back goes through at most.
const MAX_PAGES: usize = 50;

/// Token buckets for writes, by space and by project (the service account).
pub(crate) struct Pacing {
    origin: Instant,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl Pacing {
    /// How long a write of `kind` by `project` (in `space`, unless it sets one up) waits for
    /// its turn.
    fn take(&self, project: &str, space: Option<&str>, kind: Write) -> Duration {
        let now = self.origin.elapsed();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut take = |key: String, rate: Rate| {
            buckets
                .entry(key)
                .or_insert_with(|| TokenBucket::new(rate, now))
                .take(now)
        };
        let space_wait = space.map_or(Duration::ZERO, |space| {
            take(format!("space {space}"), SPACE_WRITES)
        });
        let project_wait = take(format!("{kind:?} {project}"), kind.project_rate());
        space_wait.max(project_wait)
    }
}

impl GoogleChatPlatform {
    /// Waits for a write's turn (in `space`, unless it sets one up).
    async fn paced(
        &self,
        connection: &ConnectionContext,
        space: Option<&str>,
        kind: Write,
    ) -> Result<(), PlatformError> {
        let project = Self::key(connection)?.client_email;
        let wait = self.pacing.take(&project, space, kind);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageList {
    #[serde(default, deserialize_with = "items")]
    messages: Vec<ChatMessage>,
    #[serde(default, deserialize_with = "lenient")]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipList {
    #[serde(default, deserialize_with = "items")]
    memberships: Vec<Membership>,
    #[serde(default, deserialize_with = "lenient")]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Membership {
    #[serde(default, deserialize_with = "lenient")]
    member: Option<ChatUser>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReactionList {
    #[serde(default, deserialize_with = "items")]
    reactions: Vec<Reaction>,
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

/// The client-assigned message id of a copy: `client-` and what Google allows after it (up to
/// 56 lower-case letters, digits and hyphens); keys outside that are replaced by their digest.
pub(crate) fn client_message_id(idempotency_key: &str) -> String {
    let usable = !idempotency_key.is_empty()
        && idempotency_key.len() <= 56
        && idempotency_key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if usable {
        format!("client-{idempotency_key}")
    } else {
        let digest = crate::hex(&sha2::Sha256::digest(idempotency_key.as_bytes()));
        format!("client-{}", &digest[..56])
    }
}

fn actor_account(actor: &Actor) -> Option<&ExternalUserId> {
    match actor {
        Actor::Hub => None,
        Actor::Representation { account, .. } | Actor::Delegated { account } => Some(account),
    }
}

pub(crate) async fn open_chat(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    members: &[ExternalUserId],
) -> Result<ExternalChatId, PlatformError> {
    let others: Vec<&ExternalUserId> = members
        .iter()
        .filter(|member| Some(*member) != actor_account(actor))
        .collect();
    let token = platform.actor_token(connection, actor).await?;
    let space: Space = match (actor, others.as_slice()) {
        (_, []) => {
            return Err(PlatformError::Rejected(
                "a chat needs someone besides the one opening it".to_owned(),
            ));
        }
        // The app cannot set up spaces by itself; its DM with a person exists once the app
        // is installed for them.
        (Actor::Hub, [member]) => {
            let user = format!("users/{}", resource_name(member.as_str())?);
            let url = platform
                .client
                .chat_url("spaces:findDirectMessage", &[("name", &user)])?;
            platform.client.get(&token, &url).await?
        }
        (Actor::Hub, _) => return Err(PlatformError::Unsupported("group chats as the Chat app")),
        (Actor::Representation { .. } | Actor::Delegated { .. }, others) => {
            let space_type = if others.len() == 1 {
                "DIRECT_MESSAGE"
            } else {
                "GROUP_CHAT"
            };
            let memberships: Vec<Value> = others
                .iter()
                .map(|member| {
                    json!({"member": {"name": format!("users/{}", member.as_str()), "type": "HUMAN"}})
                })
                .collect();
            let body = json!({"space": {"spaceType": space_type}, "memberships": memberships});
            let url = platform.client.chat_url("spaces:setup", &[])?;
            platform.paced(connection, None, Write::SpaceSetUp).await?;
            platform
                .client
                .call(&token, Method::POST, &url, Some(&body))
                .await?
        }
    };
    space.name.map(ExternalChatId::new).ok_or_else(|| {
        PlatformError::Rejected("Google answered with a space without a name".to_owned())
    })
}

/// The thread a reply goes in: its parent's.
async fn thread_of(
    platform: &GoogleChatPlatform,
    token: &str,
    parent: &MessageRef,
) -> Result<Option<String>, PlatformError> {
    let url = platform.client.chat_url(resource_name(&parent.id)?, &[])?;
    let parent: ChatMessage = platform.client.get(token, &url).await?;
    Ok(parent.thread_name().map(str::to_owned))
}

pub(crate) async fn post_message(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
) -> Result<MessageRef, PlatformError> {
    let space = resource_name(chat.as_str())?;
    let token = platform.actor_token(connection, actor).await?;
    let mut body = json!({"text": markup::render(&message.body)});
    if let Some(parent) = &message.thread
        && let Some(thread) = thread_of(platform, &token, parent).await?
    {
        body["thread"] = json!({"name": thread});
    }
    let client_id = message.idempotency_key.as_deref().map(client_message_id);
    let mut query = vec![("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")];
    if let Some(client_id) = &client_id {
        query.push(("messageId", client_id));
    }
    let url = platform
        .client
        .chat_url(&format!("{space}/messages"), &query)?;
    platform
        .paced(connection, Some(space), Write::Message)
        .await?;
    let posted: ChatMessage = match platform
        .client
        .call(&token, Method::POST, &url, Some(&body))
        .await
    {
        Ok(posted) => posted,
        // A retry of a post that had succeeded: the message with this client id is the copy.
        Err(PlatformError::Rejected(why)) if why.starts_with("ALREADY_EXISTS") => {
            let Some(client_id) = &client_id else {
                return Err(PlatformError::Rejected(why));
            };
            let url = platform
                .client
                .chat_url(&format!("{space}/messages/{client_id}"), &[])?;
            platform.client.get(&token, &url).await?
        }
        Err(error) => return Err(error),
    };
    Ok(MessageRef {
        chat: chat.clone(),
        id: posted.name.ok_or_else(|| {
            PlatformError::Rejected("Google answered with a message without a name".to_owned())
        })?,
    })
}

pub(crate) async fn find_posted(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
    since: Timestamp,
) -> Result<Vec<MessageRef>, PlatformError> {
    let space = resource_name(chat.as_str())?;
    let token = platform.actor_token(connection, actor).await?;
    if let Some(key) = &message.idempotency_key {
        let url = platform
            .client
            .chat_url(&format!("{space}/messages/{}", client_message_id(key)), &[])?;
        return match platform.client.get::<ChatMessage>(&token, &url).await {
            Ok(found) => Ok(found
                .name
                .map(|id| MessageRef {
                    chat: chat.clone(),
                    id,
                })
                .into_iter()
                .collect()),
            Err(PlatformError::NotFound(_)) => Ok(Vec::new()),
            Err(error) => Err(error),
        };
    }
    let wanted = markup::parse(&markup::render(&message.body));
    let author = actor_account(actor);
    let found = list_messages(platform, &token, space, &time::format(since)).await?;
    Ok(found
        .iter()
        .filter(|posted| author.is_none() || posted.sender_id().as_ref() == author)
        .filter(|posted| posted.body() == wanted)
        .filter_map(ChatMessage::reference)
        .collect())
}

/// The messages of `space` created after `after` (RFC 3339), oldest first.
async fn list_messages(
    platform: &GoogleChatPlatform,
    token: &str,
    space: &str,
    after: &str,
) -> Result<Vec<ChatMessage>, PlatformError> {
    let filter = format!("createTime > \"{after}\"");
    let page_size = platform.page_size.to_string();
    let mut messages = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![
            ("filter", filter.as_str()),
            ("orderBy", "createTime ASC"),
            ("pageSize", page_size.as_str()),
        ];
        if let Some(page_token) = &page_token {
            query.push(("pageToken", page_token));
        }
        let url = platform
            .client
            .chat_url(&format!("{space}/messages"), &query)?;
        let page: MessageList = platform.client.get(token, &url).await?;
        messages.extend(page.messages);
        page_token = page.next_page_token.filter(|token| !token.is_empty());
        if page_token.is_none() {
            break;
        }
    }
    Ok(messages)
}

pub(crate) async fn edit_message(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    replacement: &OutboundMessage,
) -> Result<(), PlatformError> {
    let token = platform.actor_token(connection, actor).await?;
    let url = platform
        .client
        .chat_url(resource_name(&message.id)?, &[("updateMask", "text")])?;
    let body = json!({"text": markup::render(&replacement.body)});
    platform
        .paced(connection, Some(message.chat.as_str()), Write::Message)
        .await?;
    platform
        .client
        .send(&token, Method::PATCH, &url, Some(&body))
        .await
}

pub(crate) async fn delete_message(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
) -> Result<(), PlatformError> {
    let token = platform.actor_token(connection, actor).await?;
    let url = platform.client.chat_url(resource_name(&message.id)?, &[])?;
    platform
        .paced(connection, Some(message.chat.as_str()), Write::Message)
        .await?;
    match platform
        .client
        .send(&token, Method::DELETE, &url, None)
        .await
    {
        Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

pub(crate) async fn set_reaction(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    emoji: &str,
    present: bool,
) -> Result<(), PlatformError> {
    let Some(account) = actor_account(actor) else {
        return Err(PlatformError::Unsupported("reactions as the Chat app"));
    };
    let token = platform.actor_token(connection, actor).await?;
    let reactions = format!("{}/reactions", resource_name(&message.id)?);
    if present {
        let url = platform.client.chat_url(&reactions, &[])?;
        let body = json!({"emoji": {"unicode": emoji}});
        platform
            .paced(connection, Some(message.chat.as_str()), Write::Reaction)
            .await?;
        return match platform
            .client
            .send(&token, Method::POST, &url, Some(&body))
            .await
        {
            Err(PlatformError::Rejected(why)) if why.starts_with("ALREADY_EXISTS") => Ok(()),
            other => other,
        };
    }
    let user = format!("users/{}", account.as_str());
    let filter = format!("emoji.unicode = \"{emoji}\" AND user.name = \"{user}\"");
    let url = platform
        .client
        .chat_url(&reactions, &[("filter", &filter)])?;
    let listed: ReactionList = platform.client.get(&token, &url).await?;
    // The filter is Google's; the check here keeps a lenient server from costing another's
    // reaction.
    let own = listed.reactions.into_iter().filter(|reaction| {
        reaction.user.as_ref().and_then(ChatUser::id).as_ref() == Some(account)
            && reaction.emoji.as_ref().and_then(|e| e.unicode.as_deref()) == Some(emoji)
    });
    for reaction in own {
        let Some(name) = reaction.name else { continue };
        let url = platform.client.chat_url(resource_name(&name)?, &[])?;
        platform
            .paced(connection, Some(message.chat.as_str()), Write::Reaction)
            .await?;
        match platform
            .client
            .send(&token, Method::DELETE, &url, None)
            .await
        {
            Ok(()) | Err(PlatformError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

pub(crate) async fn chat_members(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
) -> Result<Vec<ExternalUserId>, PlatformError> {
    let space = resource_name(chat.as_str())?;
    let token = platform.actor_token(connection, actor).await?;
    let page_size = platform.page_size.to_string();
    let mut members = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("pageSize", page_size.as_str())];
        if let Some(page_token) = &page_token {
            query.push(("pageToken", page_token));
        }
        let url = platform
            .client
            .chat_url(&format!("{space}/members"), &query)?;
        let page: MembershipList = platform.client.get(&token, &url).await?;
        members.extend(
            page.memberships
                .iter()
                .filter_map(|membership| membership.member.as_ref())
                .filter(|member| !member.is_bot())
                .filter_map(ChatUser::id),
        );
        page_token = page.next_page_token.filter(|token| !token.is_empty());
        if page_token.is_none() {
            break;
        }
    }
    Ok(members)
}

/// The kind of a space, read as `token`'s user.
pub(crate) async fn space_kind(
    platform: &GoogleChatPlatform,
    token: &str,
    space: &str,
) -> Result<ChatKind, PlatformError> {
    let url = platform.client.chat_url(resource_name(space)?, &[])?;
    let space: Space = platform.client.get(token, &url).await?;
    Ok(space.kind().unwrap_or(ChatKind::Group))
}

/// The first message of a reply's thread, which the hub knows the reply's parent by.
pub(crate) async fn thread_root(
    platform: &GoogleChatPlatform,
    token: &str,
    message: &ChatMessage,
) -> Result<Option<MessageRef>, PlatformError> {
    let (Some(thread), Some(chat)) = (message.thread_name(), message.chat()) else {
        return Ok(None);
    };
    if !message.is_thread_reply() {
        return Ok(None);
    }
    let filter = format!("thread.name = {}", resource_name(thread)?);
    let url = platform.client.chat_url(
        &format!("{}/messages", resource_name(chat.as_str())?),
        &[
            ("filter", &filter),
            ("orderBy", "createTime ASC"),
            ("pageSize", "1"),
        ],
    )?;
    let page: MessageList = platform.client.get(token, &url).await?;
    Ok(page
        .messages
        .first()
        .and_then(ChatMessage::reference)
        .filter(|root| message.name.as_ref() != Some(&root.id)))
}

pub(crate) async fn messages_since(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    reader: &Actor,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<InboundEvent>, PlatformError> {
    let space = resource_name(chat.as_str())?;
    let token = platform.actor_token(connection, reader).await?;
    let kind = space_kind(platform, &token, space).await?;
    let messages =
        list_messages(platform, &token, space, &time::format_micros(after_micros)).await?;
    let mut events = Vec::with_capacity(messages.len());
    for message in &messages {
        let thread = thread_root(platform, &token, message).await?;
        events.extend(chat::posted(
            message,
            kind,
            actor_account(reader).cloned(),
            thread,
        ));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_message_ids_are_what_google_accepts() {
        assert_eq!(client_message_id("copy-42"), "client-copy-42");
        let uuid = "0193a5c4-7e4f-7b7e-9c1d-2f8e4a6b1c3d";
        assert_eq!(client_message_id(uuid), format!("client-{uuid}"));
        for odd in ["Copy_42", "a/b", "", &"x".repeat(57)] {
            let id = client_message_id(odd);
            assert_eq!(id.len(), 63, "{odd}");
            assert!(id[7..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(client_message_id("A"), client_message_id("B"));
    }

    #[test]
    fn writes_to_one_space_stay_under_sixty_a_minute() {
        let pacing = Pacing::default();
        let waits: Vec<Duration> = (0..70)
            .map(|_| pacing.take("hub@p", Some("spaces/A"), Write::Message))
            .collect();
        assert!(waits[..10].iter().all(Duration::is_zero));
        // Each write after the burst waits 1.2 s more than the one before: 10 at once and 49
        // more before the minute is out.
        let within_a_minute = waits
            .iter()
            .filter(|w| **w < Duration::from_millis(59_900))
            .count();
        assert_eq!(within_a_minute, 59);
        // Another space has its own budget.
        assert!(
            pacing
                .take("hub@p", Some("spaces/B"), Write::Message)
                .is_zero()
        );
    }

    #[test]
    fn reactions_and_space_set_ups_have_the_projects_budgets_of_their_own() {
        let pacing = Pacing::default();
        let set_ups: Vec<Duration> = (0..11)
            .map(|_| pacing.take("hub@p", None, Write::SpaceSetUp))
            .collect();
        assert!(set_ups[..10].iter().all(Duration::is_zero));
        assert!(
            set_ups[10] > Duration::from_millis(1100),
            "{:?}",
            set_ups[10]
        );
        for space in 0..100 {
            let wait = pacing.take("hub@p", Some(&format!("spaces/{space}")), Write::Reaction);
            assert!(wait.is_zero());
        }
        assert!(pacing.take("hub@p", Some("spaces/x"), Write::Reaction) > Duration::ZERO);
        assert!(
            pacing
                .take("hub@p", Some("spaces/y"), Write::Message)
                .is_zero()
        );
    }
}
