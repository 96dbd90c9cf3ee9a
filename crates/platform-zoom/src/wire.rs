//! What the module reads from Zoom, as typed structs that tolerate what Zoom may omit (every
//! field optional or defaulted, unknown fields ignored, unreadable ones passed over), written
//! from Zoom's API reference and Rivet's typed responses, and how they read as the hub's types.
//!
//! - Users: <https://developers.zoom.us/docs/api/users/#tag/users/GET/users>
//! - Team Chat messages and channels: <https://developers.zoom.us/docs/api/team-chat/>
//! - Team Chat events: <https://developers.zoom.us/docs/api/team-chat/events/>
//! - OAuth: <https://developers.zoom.us/docs/integrations/oauth/>

use serde::Deserialize;
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::PlatformUser;
use switchboard_platform::wire::{items, lenient};

/// The largest `page_size` of `GET /users`.
pub(crate) const MAX_USERS_PAGE_SIZE: u32 = 300;

/// An answer of the token endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenGrant {
    pub access_token: String,
    #[serde(default, deserialize_with = "lenient")]
    pub expires_in: Option<i64>,
    /// Only for the user-managed app's grants; Zoom issues a new one with each refresh.
    #[serde(default, deserialize_with = "lenient")]
    pub refresh_token: Option<String>,
}

/// A user (`GET /users`, `GET /users/{userId}`).
#[derive(Debug, Deserialize)]
pub(crate) struct User {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub last_name: Option<String>,
    /// `active`, `inactive` (deactivated) or `pending`.
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub account_id: Option<String>,
    /// The Team Chat address, which the Chatbot API sends to.
    #[serde(default, deserialize_with = "lenient")]
    pub jid: Option<String>,
}

impl User {
    /// The user as the hub lists them; `None` without an id.
    pub fn platform_user(self) -> Option<PlatformUser> {
        let id = self.id.filter(|id| !id.is_empty())?;
        let emails: Vec<Email> = self
            .email
            .as_deref()
            .and_then(|email| Email::parse(email).ok())
            .into_iter()
            .collect();
        let named = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let display_name = self
            .display_name
            .filter(|name| !name.is_empty())
            .or_else(|| (!named.is_empty()).then_some(named))
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| id.clone());
        Some(PlatformUser {
            id: ExternalUserId::new(id),
            display_name,
            emails,
            // Zoom lists people only: its chatbots are apps, not users of the account, and
            // users from other accounts are never listed among the account's own.
            is_bot: false,
            is_guest: false,
            deactivated: self.status.as_deref() == Some("inactive"),
        })
    }
}

/// A page of `GET /users`.
#[derive(Debug, Deserialize)]
pub(crate) struct UserList {
    #[serde(default, deserialize_with = "items")]
    pub users: Vec<User>,
    /// Empty on the last page.
    #[serde(default, deserialize_with = "lenient")]
    pub next_page_token: Option<String>,
}

/// A mention: `at_type` 1 a contact, 2 everyone in a channel; positions count characters of
/// `message`, both ends included.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AtItem {
    /// The e-mail address in lists of messages (Zoom leaves its form open).
    #[serde(default, deserialize_with = "lenient")]
    pub at_contact: Option<String>,
    /// The user id, which events carry beside the address.
    #[serde(default, deserialize_with = "lenient")]
    pub at_contact_user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub at_type: Option<u8>,
    #[serde(default, deserialize_with = "lenient")]
    pub start_position: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    pub end_position: Option<usize>,
}

/// A formatted range of `message`: `Bold`, `Italic`, `Strikethrough`, `AddLink` (its URL in
/// `format_attr`), `CodeBlock`, `Quote`, `BulletedList`, `NumberedList`…; positions count
/// characters, both ends included.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Format {
    #[serde(default, deserialize_with = "lenient")]
    pub start_position: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    pub end_position: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    pub format_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub format_attr: Option<String>,
}

/// A message of `GET /chat/users/{userId}/messages`.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    /// The sender's e-mail address.
    #[serde(default, deserialize_with = "lenient")]
    pub sender: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default, deserialize_with = "lenient")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub reply_main_message_id: Option<String>,
    #[serde(default, deserialize_with = "items")]
    pub at_items: Vec<AtItem>,
    #[serde(default, deserialize_with = "items")]
    pub rich_text: Vec<Format>,
}

/// A page of messages, newest first.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageList {
    #[serde(default, deserialize_with = "items")]
    pub messages: Vec<Message>,
    #[serde(default, deserialize_with = "lenient")]
    pub next_page_token: Option<String>,
}

/// What a send answers (`{"id"}`), and a new channel (`{"id", "jid", "name"}`).
#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
}

/// What the Chatbot API answers a message with.
#[derive(Debug, Deserialize)]
pub(crate) struct BotSent {
    #[serde(default, deserialize_with = "lenient")]
    pub message_id: Option<String>,
}

/// A channel member.
#[derive(Debug, Deserialize)]
pub(crate) struct Member {
    /// Blank for users of other accounts since 2023 (their `member_id` stays).
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
}

/// A page of a channel's members.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberList {
    #[serde(default, deserialize_with = "items")]
    pub members: Vec<Member>,
    #[serde(default, deserialize_with = "lenient")]
    pub next_page_token: Option<String>,
}

/// An event delivery: `{"event", "event_ts", "payload"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Delivery {
    #[serde(default, deserialize_with = "lenient")]
    pub event: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub event_ts: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub payload: Option<serde_json::Value>,
}

/// The URL validation's payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Challenge {
    #[serde(default, deserialize_with = "lenient")]
    pub plain_token: Option<String>,
}

/// A Team Chat event's payload (`team_chat.dm_*`, `team_chat.channel_*`).
#[derive(Debug, Deserialize)]
pub(crate) struct ChatPayload {
    /// The operator's e-mail address.
    #[serde(default, deserialize_with = "lenient")]
    pub operator: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub operator_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub object: Option<ChatObject>,
}

/// The object of a Team Chat event: a message's (`message_id`…) or a reaction's (`msg_id`,
/// `emoji`…), in a 1:1 chat (`contact_id`) or a channel (`channel_id`).
#[derive(Debug, Deserialize)]
pub(crate) struct ChatObject {
    #[serde(default, deserialize_with = "lenient")]
    pub message_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub msg_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub contact_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub contact_email: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub channel_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub reply_main_message_id: Option<String>,
    #[serde(default, deserialize_with = "items")]
    pub at_items: Vec<AtItem>,
    #[serde(default, deserialize_with = "items")]
    pub rich_text: Vec<Format>,
    /// `U+1F44D`, several code points space-separated; or, possibly, the emoji itself.
    #[serde(default, deserialize_with = "lenient")]
    pub emoji: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_read_leniently_with_their_status() {
        let user: User = serde_json::from_value(json!({
            "id": "U1", "email": "Ada@Example.com", "first_name": "Ada", "last_name": "L",
            "status": "inactive", "type": 2, "role_id": "2"
        }))
        .unwrap();
        let listed = user.platform_user().unwrap();
        assert_eq!(listed.display_name, "Ada L");
        assert_eq!(listed.emails[0].as_str(), "ada@example.com");
        assert!(listed.deactivated && !listed.is_bot && !listed.is_guest);
        let list: UserList = serde_json::from_value(
            json!({"users": [{"id": "U2"}, 7, {"email": "x"}], "next_page_token": ""}),
        )
        .unwrap();
        assert_eq!(list.users.len(), 2);
        assert!(
            list.users
                .into_iter()
                .filter_map(User::platform_user)
                .count()
                == 1
        );
    }
}

/// What a person wrote to the chatbot (`bot_notification`'s payload).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BotNotification {
    #[serde(default, deserialize_with = "lenient")]
    pub user_id: Option<String>,
    /// The text they wrote.
    #[serde(default, deserialize_with = "lenient")]
    pub cmd: Option<String>,
    /// When, in milliseconds since the epoch.
    #[serde(default, deserialize_with = "lenient")]
    pub timestamp: Option<i64>,
    /// Unique to the notification.
    #[serde(default, deserialize_with = "lenient")]
    pub trigger_id: Option<String>,
}
