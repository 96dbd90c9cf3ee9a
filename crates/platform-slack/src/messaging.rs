//! DMs and group DMs as the hub's app and people's bots use them: opening one, posting
//! (with the copy's idempotency key as message metadata), finding a copy again, editing,
//! deleting, reacting, listing members and reading the history since a time.
//!
//! - `conversations.open`: <https://api.slack.com/methods/conversations.open>
//! - `chat.postMessage`: <https://api.slack.com/methods/chat.postMessage>
//! - Message metadata: <https://api.slack.com/metadata/using>
//! - `conversations.history`: <https://api.slack.com/methods/conversations.history>
//! - Pagination: <https://api.slack.com/apis/pagination>

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_core::{ExternalChatId, ExternalUserId, Platform, Timestamp};
use switchboard_platform::wire;
use switchboard_platform::{
    Actor, ConnectionContext, InboundEvent, InboundKind, MessageRef, OutboundMessage, PlatformError,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::client::{Auth, Body, required};
use crate::mapping::reaction_name;
use crate::webhook::{self, MessageEvent};
use crate::{SlackPlatform, credential, markup};

/// The `event_type` of the metadata the hub stores with each copy it posts: its idempotency
/// key, to recognise the copy after a crash.
const COPY_EVENT_TYPE: &str = "switchboard_copy";

/// `chat.postMessage`'s answer.
#[derive(Debug, Deserialize)]
struct Posted {
    channel: Option<String>,
    ts: Option<String>,
}

/// `conversations.open`'s answer.
#[derive(Debug, Deserialize)]
struct Opened {
    channel: Option<Channel>,
}

#[derive(Debug, Deserialize)]
struct Channel {
    id: Option<String>,
}

/// A page of a cursor-paginated method: its readable items, listed as `messages`
/// (`conversations.history`) or `members` (`conversations.members`), and where the next page
/// starts.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Page<T> {
    #[serde(
        rename = "members",
        alias = "messages",
        default,
        deserialize_with = "wire::listed"
    )]
    items: Option<Vec<T>>,
    #[serde(default, deserialize_with = "wire::lenient")]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResponseMetadata {
    #[serde(default, deserialize_with = "wire::lenient")]
    pub next_cursor: Option<String>,
}

/// A message as `conversations.history` lists it, read to recognise a copy the hub posted.
#[derive(Debug, Deserialize)]
struct Listed {
    user: Option<String>,
    text: Option<String>,
    ts: Option<String>,
    /// Another app's metadata may be shaped otherwise: then the text is compared.
    #[serde(default, deserialize_with = "wire::lenient")]
    metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    event_payload: Option<CopyPayload>,
}

#[derive(Debug, Deserialize)]
struct CopyPayload {
    key: Option<String>,
}

impl Listed {
    fn copy_key(&self) -> Option<&str> {
        self.metadata
            .as_ref()?
            .event_payload
            .as_ref()?
            .key
            .as_deref()
    }
}

impl SlackPlatform {
    /// The bot token an actor acts with.
    pub(crate) fn token<'a>(
        connection: &'a ConnectionContext,
        actor: &'a Actor,
    ) -> Result<&'a SecretString, PlatformError> {
        match actor {
            Actor::Hub => connection.credentials.get(credential::BOT_TOKEN),
            Actor::Representation { credentials, .. } => credentials.get(credential::BOT_TOKEN),
            Actor::Delegated { .. } => Err(PlatformError::Unsupported(
                "acting for any account: a Slack workspace grants the hub its bots only",
            )),
        }
    }

    /// `chat.postMessage` as JSON.
    pub(crate) async fn post(
        &self,
        token: &SecretString,
        body: Value,
    ) -> Result<MessageRef, PlatformError> {
        const METHOD: &str = "chat.postMessage";
        let posted: Posted = self
            .call(METHOD, Auth::Bearer(token), Body::Json(body))
            .await?
            .read(METHOD)?;
        Ok(MessageRef {
            chat: ExternalChatId::new(required(posted.channel, METHOD, "/channel")?),
            id: required(posted.ts, METHOD, "/ts")?,
        })
    }

    pub(crate) async fn open(
        &self,
        token: &SecretString,
        users: &[&str],
    ) -> Result<ExternalChatId, PlatformError> {
        const METHOD: &str = "conversations.open";
        let opened: Opened = self
            .call(
                METHOD,
                Auth::Bearer(token),
                Body::Form(vec![("users", users.join(","))]),
            )
            .await?
            .read(METHOD)?;
        let id = opened.channel.and_then(|channel| channel.id);
        Ok(ExternalChatId::new(required(id, METHOD, "/channel/id")?))
    }

    /// Every readable item of `field` across the pages of a cursor-paginated method, 200 a
    /// page.
    async fn list_all<T: DeserializeOwned>(
        &self,
        method: &str,
        token: &SecretString,
        arguments: Vec<(&'static str, String)>,
        field: &str,
    ) -> Result<Vec<T>, PlatformError> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut form = arguments.clone();
            form.push(("limit", "200".to_owned()));
            if !cursor.is_empty() {
                form.push(("cursor", cursor.clone()));
            }
            let page: Page<T> = self
                .call(method, Auth::Bearer(token), Body::Form(form))
                .await?
                .read(method)?;
            let listed = page.items.ok_or_else(|| {
                PlatformError::Rejected(format!("{method} answered without {field}"))
            })?;
            items.extend(listed);
            cursor = page
                .response_metadata
                .and_then(|metadata| metadata.next_cursor)
                .unwrap_or_default();
            if cursor.is_empty() {
                return Ok(items);
            }
        }
    }
}

pub(crate) async fn open_chat(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    members: &[ExternalUserId],
) -> Result<ExternalChatId, PlatformError> {
    let token = SlackPlatform::token(connection, actor)?;
    let own_id = match actor {
        Actor::Hub => connection
            .credentials
            .get(credential::BOT_USER_ID)
            .ok()
            .map(|id| id.expose_secret().to_owned()),
        Actor::Representation { account, .. } | Actor::Delegated { account } => {
            Some(account.as_str().to_owned())
        }
    };
    // Slack adds the caller itself; it must not be listed.
    let mut users: Vec<&str> = Vec::new();
    for member in members {
        if Some(member.as_str()) != own_id.as_deref() && !users.contains(&member.as_str()) {
            users.push(member.as_str());
        }
    }
    if users.is_empty() {
        return Err(PlatformError::Rejected(
            "a chat needs at least one other member".into(),
        ));
    }
    if users.len() > 8 {
        return Err(PlatformError::Rejected(format!(
            "a Slack group DM holds at most 8 others besides the caller, not {}",
            users.len()
        )));
    }
    slack.open(token, &users).await
}

pub(crate) async fn post_message(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
) -> Result<MessageRef, PlatformError> {
    let token = SlackPlatform::token(connection, actor)?;
    let mut body = json!({"channel": chat.as_str(), "text": markup::render(&message.body)});
    if let Some(thread) = &message.thread {
        body["thread_ts"] = json!(thread.id);
    }
    if let Some(key) = &message.idempotency_key {
        body["metadata"] = json!({
            "event_type": COPY_EVENT_TYPE,
            "event_payload": {"key": key},
        });
    }
    slack.post(token, body).await
}

pub(crate) async fn messages_since(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    reader: &Actor,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<InboundEvent>, PlatformError> {
    let token = SlackPlatform::token(connection, reader)?;
    let after = after_micros.max(0);
    let oldest = format!("{}.{:06}", after / 1_000_000, after % 1_000_000);
    let listed: Vec<MessageEvent> = slack
        .list_all(
            "conversations.history",
            token,
            vec![("channel", chat.as_str().to_owned()), ("oldest", oldest)],
            "messages",
        )
        .await?;
    let mut found: Vec<InboundEvent> = listed
        .into_iter()
        .filter_map(|message| {
            let event_id = format!("history/{chat}/{}", message.ts()?);
            let kind = webhook::history_message(chat.as_str(), message)?;
            Some(InboundEvent {
                event_id,
                platform: Platform::Slack,
                kind,
            })
        })
        .collect();
    found.sort_by_key(|event| match &event.kind {
        InboundKind::MessagePosted { sent_at_micros, .. } => *sent_at_micros,
        _ => None,
    });
    Ok(found)
}

pub(crate) async fn find_posted(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
    since: Timestamp,
) -> Result<Vec<MessageRef>, PlatformError> {
    const METHOD: &str = "conversations.history";
    let token = SlackPlatform::token(connection, actor)?;
    let own = match actor {
        Actor::Hub => connection
            .credentials
            .get(credential::BOT_USER_ID)?
            .expose_secret()
            .to_owned(),
        Actor::Representation { account, .. } | Actor::Delegated { account } => {
            account.as_str().to_owned()
        }
    };
    let millis = since.unix_millis().max(0);
    let oldest = format!("{}.{:03}000", millis / 1000, millis % 1000);
    let rendered = markup::render(&message.body);
    let page: Page<Listed> = slack
        .call(
            METHOD,
            Auth::Bearer(token),
            Body::Form(vec![
                ("channel", chat.as_str().to_owned()),
                ("oldest", oldest),
                ("limit", "200".to_owned()),
                ("include_all_metadata", "true".to_owned()),
            ]),
        )
        .await?
        .read(METHOD)?;
    let listed = page
        .items
        .ok_or_else(|| PlatformError::Rejected(format!("{METHOD} answered without messages")))?;
    let mut found: Vec<(String, MessageRef)> = listed
        .into_iter()
        .filter(|m| m.user.as_deref() == Some(own.as_str()))
        .filter(|m| {
            match (m.copy_key(), &message.idempotency_key) {
                (Some(stored), Some(wanted)) => stored == wanted,
                // Without metadata, the text as posted is all there is to compare.
                _ => m.text.as_deref() == Some(rendered.as_str()),
            }
        })
        .filter_map(|m| {
            let ts = m.ts?;
            Some((
                ts.clone(),
                MessageRef {
                    chat: chat.clone(),
                    id: ts,
                },
            ))
        })
        .collect();
    found.sort_by_key(|(ts, _)| webhook::ts_micros(ts));
    Ok(found.into_iter().map(|(_, message)| message).collect())
}

pub(crate) async fn edit_message(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    replacement: &OutboundMessage,
) -> Result<(), PlatformError> {
    let token = SlackPlatform::token(connection, actor)?;
    slack
        .call(
            "chat.update",
            Auth::Bearer(token),
            Body::Json(json!({
                "channel": message.chat.as_str(),
                "ts": message.id,
                "text": markup::render(&replacement.body),
            })),
        )
        .await
        .map(drop)
}

pub(crate) async fn delete_message(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
) -> Result<(), PlatformError> {
    let token = SlackPlatform::token(connection, actor)?;
    slack
        .call(
            "chat.delete",
            Auth::Bearer(token),
            Body::Form(vec![
                ("channel", message.chat.as_str().to_owned()),
                ("ts", message.id.clone()),
            ]),
        )
        .await
        .map(drop)
}

pub(crate) async fn set_reaction(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    emoji: &str,
    present: bool,
) -> Result<(), PlatformError> {
    let token = SlackPlatform::token(connection, actor)?;
    let name = reaction_name(emoji).ok_or_else(|| {
        PlatformError::Rejected(format!("no Slack name is known for the emoji {emoji}"))
    })?;
    let method = if present {
        "reactions.add"
    } else {
        "reactions.remove"
    };
    let result = slack
        .call(
            method,
            Auth::Bearer(token),
            Body::Form(vec![
                ("channel", message.chat.as_str().to_owned()),
                ("timestamp", message.id.clone()),
                ("name", name),
            ]),
        )
        .await;
    match result {
        // Already as asked: reacting is idempotent for the hub.
        Err(PlatformError::Rejected(m))
            if m.ends_with("already_reacted") || m.ends_with("no_reaction") =>
        {
            Ok(())
        }
        other => other.map(drop),
    }
}

pub(crate) async fn chat_members(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
) -> Result<Vec<ExternalUserId>, PlatformError> {
    let token = SlackPlatform::token(connection, actor)?;
    let members: Vec<String> = slack
        .list_all(
            "conversations.members",
            token,
            vec![("channel", chat.as_str().to_owned())],
            "members",
        )
        .await?;
    Ok(members.into_iter().map(ExternalUserId::new).collect())
}
