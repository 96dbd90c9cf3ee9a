//! Chats as people and guests use them: opening one-on-one and group chats, posting (a reply
//! as a quote of what it answers: chats have no threads in Graph), finding a post again,
//! editing, soft-deleting, reacting, listing a chat's members and reading what was posted
//! since a time.
//!
//! - Chats: <https://learn.microsoft.com/en-us/graph/api/chat-post>
//! - Messages: <https://learn.microsoft.com/en-us/graph/api/chat-post-messages>,
//!   <https://learn.microsoft.com/en-us/graph/api/chat-list-messages>
//! - Soft delete: <https://learn.microsoft.com/en-us/graph/api/chatmessage-softdelete>
//! - Reactions: <https://learn.microsoft.com/en-us/graph/api/chatmessage-setreaction>

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ExternalChatId, ExternalUserId, Platform, Timestamp};
use switchboard_platform::{
    Actor, ChatKind, ConnectionContext, InboundEvent, InboundKind, MessageRef, OutboundMessage,
    PlatformError,
};

use crate::chat::{self, ChatMessage};
use crate::client::{Created, Page, path};
use crate::{TeamsPlatform, markup, time};

/// A member of a chat (`GET /chats/{id}/members`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatMember {
    user_id: String,
}

impl TeamsPlatform {
    /// Opens (or finds) a chat between `actor_id` and `members`, acting with `token`.
    pub(crate) async fn create_chat(
        &self,
        connection: &ConnectionContext,
        token: &str,
        actor_id: &str,
        members: &[ExternalUserId],
    ) -> Result<ExternalChatId, PlatformError> {
        let mut ids = vec![actor_id.to_owned()];
        for member in members {
            if !ids
                .iter()
                .any(|id| id.eq_ignore_ascii_case(member.as_str()))
            {
                ids.push(member.as_str().to_owned());
            }
        }
        if ids.len() < 2 {
            return Err(PlatformError::Rejected(
                "a chat needs someone besides the actor".to_owned(),
            ));
        }
        let app = self.tenant_app_token(connection).await?;
        let types = self.user_types(&app, &ids).await?;
        let graph = self.client.graph_base();
        let members: Vec<Value> = ids
            .iter()
            .map(|id| {
                // In-tenant guests must join chats with the `guest` role; members as owners.
                let guest = types
                    .get(&id.to_ascii_lowercase())
                    .is_some_and(|t| t.eq_ignore_ascii_case("guest"));
                json!({
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": [if guest { "guest" } else { "owner" }],
                    "user@odata.bind": format!("{graph}/users('{id}')"),
                })
            })
            .collect();
        let chat_type = if ids.len() == 2 { "oneOnOne" } else { "group" };
        let url = self.client.graph_url("/chats", &[])?;
        let chat: Created = self
            .client
            .graph(
                token,
                Method::POST,
                &url,
                Some(&json!({"chatType": chat_type, "members": members})),
                &[],
            )
            .await?;
        chat.id
            .map(ExternalChatId::new)
            .ok_or_else(|| PlatformError::Rejected("Graph created a chat without an id".to_owned()))
    }

    pub(crate) async fn post(
        &self,
        token: &str,
        chat: &ExternalChatId,
        body: &Value,
    ) -> Result<MessageRef, PlatformError> {
        let url = self
            .client
            .graph_url(&format!("/chats/{}/messages", path(chat.as_str())), &[])?;
        let message: Created = self
            .client
            .graph(token, Method::POST, &url, Some(body), &[])
            .await?;
        let id = message.id.ok_or_else(|| {
            PlatformError::Rejected("Graph posted a message without an id".to_owned())
        })?;
        Ok(MessageRef {
            chat: chat.clone(),
            id,
        })
    }

    /// One message of a chat.
    pub(crate) async fn message(
        &self,
        token: &str,
        message: &MessageRef,
    ) -> Result<ChatMessage, PlatformError> {
        let url = message_url(self, message, "")?;
        self.client.get(token, &url).await
    }
}

/// `/chats/{chat}/messages/{id}{action}`.
fn message_url(
    teams: &TeamsPlatform,
    message: &MessageRef,
    action: &str,
) -> Result<String, PlatformError> {
    teams.client.graph_url(
        &format!(
            "/chats/{}/messages/{}{action}",
            path(message.chat.as_str()),
            path(&message.id)
        ),
        &[],
    )
}

/// Teams' chat ids tell their kind: one-on-one chats end in `@unq.gbl.spaces`, group chats
/// (and meeting chats) in `@thread.v2`.
pub(crate) fn chat_kind(chat: &str) -> ChatKind {
    if chat.ends_with("@unq.gbl.spaces") {
        ChatKind::Direct
    } else {
        ChatKind::Group
    }
}

pub(crate) async fn open_chat(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    members: &[ExternalUserId],
) -> Result<ExternalChatId, PlatformError> {
    let (token, actor_id) = TeamsPlatform::acting(connection, actor)?;
    teams
        .create_chat(connection, token, &actor_id, members)
        .await
}

pub(crate) async fn post_message(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
) -> Result<MessageRef, PlatformError> {
    // Chats have no reply threads in Graph (channel messages do): a reply is posted as a
    // message in the chat that opens with a quote of the start of what it answers.
    let (token, _) = TeamsPlatform::acting(connection, actor)?;
    let Some(parent) = &message.thread else {
        return teams.post(token, chat, &chat::message_body(message)).await;
    };
    let quoted = match teams.message(token, parent).await {
        Ok(found) => chat::read_body(&found).to_plain_text(),
        // A parent gone (deleted) still leaves a visible trace that this is a reply.
        Err(PlatformError::NotFound(_)) => String::new(),
        Err(error) => return Err(error),
    };
    let reply = OutboundMessage {
        body: chat::as_reply(&quoted, &message.body),
        thread: None,
        idempotency_key: message.idempotency_key.clone(),
    };
    teams.post(token, chat, &chat::message_body(&reply)).await
}

/// Read with the app's token (`Chat.Read.All`), newest change first as Graph lists them
/// with a filter on `lastModifiedDateTime` (the one filter it allows with `gt`).
pub(crate) async fn messages_since(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Result<Vec<InboundEvent>, PlatformError> {
    let token = teams.tenant_app_token(connection).await?;
    let after = Timestamp::from_unix_millis(after_micros.div_euclid(1000));
    let filter = format!("lastModifiedDateTime gt {}", time::iso8601(after));
    let url = teams.client.graph_url(
        &format!("/chats/{}/messages", path(chat.as_str())),
        &[
            ("$top", "50"),
            ("$orderby", "lastModifiedDateTime desc"),
            ("$filter", &filter),
        ],
    )?;
    let listed: Vec<ChatMessage> = teams.client.get_all(&token, &url, 100_000).await?;
    let mut found: Vec<InboundEvent> = listed
        .iter()
        .filter(|m| m.message_type.as_deref() == Some("message"))
        .filter(|m| m.deleted_date_time.is_none())
        .filter_map(|m| {
            let sent = m
                .created_date_time
                .as_deref()
                .and_then(time::parse_iso8601)?;
            let sent_micros = sent.unix_millis() * 1000;
            if sent_micros <= after_micros {
                return None;
            }
            let id = m.id.as_deref()?;
            let sender = m.sender()?;
            Some(InboundEvent {
                event_id: format!("history/{chat}/{id}"),
                platform: Platform::Teams,
                kind: InboundKind::MessagePosted {
                    message: MessageRef {
                        chat: chat.clone(),
                        id: id.to_owned(),
                    },
                    chat_kind: chat_kind(chat.as_str()),
                    sender: ExternalUserId::new(sender),
                    recipient: None,
                    sent_at_micros: Some(sent_micros),
                    body: chat::read_body(m),
                    thread: None,
                },
            })
        })
        .collect();
    found.sort_by_key(|event| match &event.kind {
        InboundKind::MessagePosted { sent_at_micros, .. } => *sent_at_micros,
        _ => None,
    });
    Ok(found)
}

/// Graph keeps no metadata of the sender's with a chat message: a copy is recognised by
/// its author, its time and its content as this module renders it.
pub(crate) async fn find_posted(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
    message: &OutboundMessage,
    since: Timestamp,
) -> Result<Vec<MessageRef>, PlatformError> {
    let (token, own) = TeamsPlatform::acting(connection, actor)?;
    let url = teams.client.graph_url(
        &format!("/chats/{}/messages", path(chat.as_str())),
        &[("$top", "50")],
    )?;
    let listed: Page<ChatMessage> = teams.client.get(token, &url).await?;
    let expected = markup::render(&message.body).content;
    let mut found: Vec<(Timestamp, MessageRef)> = listed
        .items()
        .into_iter()
        .filter(|m| m.sender() == Some(own.as_str()))
        .filter(|m| {
            m.content().is_some_and(|content| {
                // A reply was posted after a quote of what it answers.
                content == expected || (message.thread.is_some() && content.ends_with(&expected))
            })
        })
        .filter_map(|m| {
            let at = m
                .created_date_time
                .as_deref()
                .and_then(time::parse_iso8601)?;
            let id = m.id?;
            (at >= since).then(|| {
                (
                    at,
                    MessageRef {
                        chat: chat.clone(),
                        id,
                    },
                )
            })
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    Ok(found.into_iter().map(|(_, message)| message).collect())
}

pub(crate) async fn edit_message(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    replacement: &OutboundMessage,
) -> Result<(), PlatformError> {
    let (token, _) = TeamsPlatform::acting(connection, actor)?;
    let url = message_url(teams, message, "")?;
    teams
        .client
        .send(
            token,
            Method::PATCH,
            &url,
            Some(&chat::message_body(replacement)),
        )
        .await
}

pub(crate) async fn delete_message(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
) -> Result<(), PlatformError> {
    let (token, actor_id) = TeamsPlatform::acting(connection, actor)?;
    let url = teams.client.graph_url(
        &format!(
            "/users/{}/chats/{}/messages/{}/softDelete",
            path(&actor_id),
            path(message.chat.as_str()),
            path(&message.id)
        ),
        &[],
    )?;
    teams
        .client
        .send(token, Method::POST, &url, Some(&json!({})))
        .await
}

pub(crate) async fn set_reaction(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    message: &MessageRef,
    emoji: &str,
    present: bool,
) -> Result<(), PlatformError> {
    let (token, _) = TeamsPlatform::acting(connection, actor)?;
    let action = if present {
        "/setReaction"
    } else {
        "/unsetReaction"
    };
    let url = message_url(teams, message, action)?;
    teams
        .client
        .send(
            token,
            Method::POST,
            &url,
            Some(&json!({"reactionType": emoji})),
        )
        .await
}

/// Read with the app's token for [`Actor::Hub`] (the service user is in no chat it did not
/// start), and as the representation otherwise.
pub(crate) async fn chat_members(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    actor: &Actor,
    chat: &ExternalChatId,
) -> Result<Vec<ExternalUserId>, PlatformError> {
    let reader = match actor {
        Actor::Hub => None,
        other => Some(other),
    };
    let token = teams.token_for(connection, reader).await?;
    let url = teams
        .client
        .graph_url(&format!("/chats/{}/members", path(chat.as_str())), &[])?;
    let found: Page<ChatMember> = teams.client.get(&token, &url).await?;
    let members = found.value.ok_or_else(|| {
        PlatformError::Rejected("Graph listed a chat's members without a value".to_owned())
    })?;
    Ok(members
        .into_iter()
        .map(|member| ExternalUserId::new(member.user_id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_kinds_follow_teams_ids() {
        assert_eq!(chat_kind("19:a_b@unq.gbl.spaces"), ChatKind::Direct);
        assert_eq!(chat_kind("19:abc@thread.v2"), ChatKind::Group);
    }
}
