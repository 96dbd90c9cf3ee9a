//! What the module reads from Webex, as typed structs that tolerate what Webex may omit (every
//! field optional or defaulted, unknown fields ignored, unreadable ones passed over), and how
//! they read as the hub's types.
//!
//! - People: <https://developer.webex.com/docs/api/v1/people>
//! - Team memberships: <https://developer.webex.com/docs/api/v1/team-memberships>
//! - Messages: <https://developer.webex.com/docs/api/v1/messages>
//! - Guests: <https://developer.webex.com/docs/api/v1/guests-management>
//! - Webhooks: <https://developer.webex.com/docs/api/guides/webhooks>

use serde::Deserialize;
use switchboard_core::{Email, ExternalChatId, ExternalUserId, RichText};
use switchboard_platform::wire::{items, lenient};
use switchboard_platform::{ChatKind, MessageRef, PlatformUser};

use crate::markup;

/// The largest `max` Webex's lists take.
pub(crate) const MAX_PAGE_SIZE: u32 = 1000;

/// An answer of the token endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenGrant {
    pub access_token: String,
    #[serde(default, deserialize_with = "lenient")]
    pub expires_in: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub refresh_token: Option<String>,
}

/// A person (`GET /people/me`, `GET /people`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Person {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "items")]
    pub emails: Vec<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub org_id: Option<String>,
    /// `person`, `bot` or `appuser`.
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    pub kind: Option<String>,
    /// `false` for a deactivated account.
    #[serde(default, deserialize_with = "lenient")]
    pub login_enabled: Option<bool>,
}

impl Person {
    /// The person as the hub lists them; `None` without an id. `service_user` is listed as a
    /// bot, so that it is never matched to a person.
    pub fn platform_user(self, service_user: Option<&str>) -> Option<PlatformUser> {
        let id = self.id.filter(|id| !id.is_empty())?;
        let is_service_user = service_user == Some(id.as_str());
        let emails = self
            .emails
            .iter()
            .filter_map(|email| Email::parse(email).ok())
            .collect();
        Some(PlatformUser {
            display_name: self.display_name.unwrap_or_default(),
            emails,
            is_bot: is_service_user || matches!(self.kind.as_deref(), Some("bot" | "appuser")),
            is_guest: false,
            deactivated: self.login_enabled == Some(false),
            id: ExternalUserId::new(id),
        })
    }
}

/// A team (`GET /teams`).
#[derive(Debug, Deserialize)]
pub(crate) struct WireTeam {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
}

/// A team membership (`GET /team/memberships`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TeamMembership {
    #[serde(default, deserialize_with = "lenient")]
    pub person_id: Option<String>,
}

/// A room membership (`GET /memberships`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Membership {
    #[serde(default, deserialize_with = "lenient")]
    pub person_id: Option<String>,
}

/// Something created (a room, a webhook), by its id.
#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
}

/// A webhook (`GET /webhooks`).
#[derive(Debug, Deserialize)]
pub(crate) struct Webhook {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
}

/// A guest identity's token (`POST /guests/token`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GuestToken {
    pub access_token: String,
    /// Seconds.
    #[serde(default, deserialize_with = "lenient")]
    pub expires_in: Option<i64>,
    /// The guest's person id, where the answer gives it.
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
}

/// A message (`GET /messages/{id}`, `GET /messages`, `POST /messages`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub room_id: Option<String>,
    /// `direct` or `group`.
    #[serde(default, deserialize_with = "lenient")]
    pub room_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub person_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub parent_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub markdown: Option<String>,
    /// RFC 3339.
    #[serde(default, deserialize_with = "lenient")]
    pub created: Option<String>,
}

impl Message {
    /// The message as the hub names it, in `chat` (see `chats`: a direct room's id is not
    /// its chat's).
    pub fn in_chat(&self, chat: &ExternalChatId) -> Option<MessageRef> {
        Some(MessageRef {
            chat: chat.clone(),
            id: self.id.clone()?,
        })
    }

    /// What it says: its markdown where it was sent with some, else its plain text.
    pub fn body(&self) -> RichText {
        match (&self.markdown, &self.text) {
            (Some(markdown), _) if !markdown.is_empty() => markup::parse(markdown),
            (_, Some(text)) => RichText::plain(text),
            _ => RichText::default(),
        }
    }

    pub fn kind(&self) -> ChatKind {
        room_kind(self.room_type.as_deref())
    }

    /// The thread it replies in, in `chat`: its parent, which Webex keeps at the thread's root.
    pub fn thread(&self, chat: &ExternalChatId) -> Option<MessageRef> {
        Some(MessageRef {
            chat: chat.clone(),
            id: self.parent_id.clone()?,
        })
    }

    pub fn sender(&self) -> Option<ExternalUserId> {
        self.person_id.clone().map(ExternalUserId::new)
    }
}

/// `direct` rooms are between two people; anything else is a group.
pub(crate) fn room_kind(room_type: Option<&str>) -> ChatKind {
    if room_type == Some("direct") {
        ChatKind::Direct
    } else {
        ChatKind::Group
    }
}

/// A webhook delivery: ids only, never the message's text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Delivery {
    #[serde(default, deserialize_with = "lenient")]
    pub resource: Option<String>,
    /// `created`, `updated` or `deleted`.
    #[serde(default, deserialize_with = "lenient")]
    pub event: Option<String>,
    /// The person whose token created the webhook: whom the delivery is for.
    #[serde(default, deserialize_with = "lenient")]
    pub created_by: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data: Option<DeliveryData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryData {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub room_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub room_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub person_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub created: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub updated: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::rich_text::{Block, Inline};

    #[test]
    fn people_are_read_leniently() {
        let person: Person = serde_json::from_value(json!({
            "id": "P1", "emails": ["Ann@Example.com", 7, "not an address"],
            "displayName": "Ann", "orgId": "O1", "type": "person",
            "loginEnabled": null, "avatar": {"weird": true}, "status": "active"
        }))
        .unwrap();
        let user = person.platform_user(None).unwrap();
        assert_eq!(user.id.as_str(), "P1");
        assert_eq!(user.emails.len(), 1);
        assert_eq!(user.emails[0].as_str(), "ann@example.com");
        assert!(!user.is_bot && !user.deactivated && !user.is_guest);

        let bot: Person =
            serde_json::from_value(json!({"id": "B1", "type": "bot", "loginEnabled": false}))
                .unwrap();
        let bot = bot.platform_user(None).unwrap();
        assert!(bot.is_bot && bot.deactivated);
        assert_eq!(bot.display_name, "");

        let service: Person = serde_json::from_value(json!({"id": "S1"})).unwrap();
        assert!(service.platform_user(Some("S1")).unwrap().is_bot);
        let nameless: Person = serde_json::from_value(json!({"displayName": "x"})).unwrap();
        assert!(nameless.platform_user(None).is_none());
        let null_id: Person = serde_json::from_value(json!({"id": null, "emails": null})).unwrap();
        assert!(null_id.platform_user(None).is_none());
    }

    #[test]
    fn messages_read_their_markdown_else_their_text() {
        let message: Message = serde_json::from_value(json!({
            "id": "M1", "roomId": "R1", "roomType": "direct", "personId": "P1",
            "text": "hi there", "markdown": "**hi** there", "parentId": "M0",
            "created": "2024-01-01T00:00:00.000Z", "files": ["x"], "mentionedPeople": 3
        }))
        .unwrap();
        assert_eq!(message.kind(), ChatKind::Direct);
        assert_eq!(
            message.body().blocks,
            vec![Block::Paragraph(vec![
                Inline::Bold(vec![Inline::Text("hi".into())]),
                Inline::Text(" there".into())
            ])]
        );
        let chat = ExternalChatId::new("direct:P1:P2");
        assert_eq!(message.thread(&chat).unwrap().id, "M0");
        assert_eq!(message.in_chat(&chat).unwrap().chat, chat);

        let plain: Message =
            serde_json::from_value(json!({"id": "M2", "roomType": 5, "text": "a **b**"})).unwrap();
        assert_eq!(plain.kind(), ChatKind::Group);
        assert_eq!(plain.body(), RichText::plain("a **b**"));
        let chat = ExternalChatId::new("R1");
        assert_eq!(plain.in_chat(&chat).unwrap().id, "M2");
        assert!(plain.thread(&chat).is_none());
        let anonymous: Message = serde_json::from_value(json!({"roomId": "R1"})).unwrap();
        assert!(anonymous.in_chat(&chat).is_none(), "no id, no reference");
        let empty: Message = serde_json::from_value(json!({})).unwrap();
        assert_eq!(empty.body(), RichText::default());
    }

    #[test]
    fn deliveries_and_lists_tolerate_what_webex_may_omit() {
        let delivery: Delivery = serde_json::from_value(json!({
            "id": "wh1", "name": "switchboard", "resource": "messages", "event": "created",
            "createdBy": "P9", "ownedBy": "creator", "status": "active",
            "data": {"id": "m1", "roomId": "r1", "roomType": "group", "personId": "P1", "created": "2024-01-01T00:00:00.000Z"}
        }))
        .unwrap();
        let data = delivery.data.unwrap();
        assert_eq!(data.room_id.as_deref(), Some("r1"));
        assert_eq!(data.updated, None);
        assert_eq!(delivery.created_by.as_deref(), Some("P9"));
        let odd: Delivery =
            serde_json::from_value(json!({"data": "nonsense", "event": 3})).unwrap();
        assert!(odd.data.is_none() && odd.event.is_none());

        let grant: TokenGrant = serde_json::from_value(json!({
            "access_token": "a", "expires_in": 1209600, "refresh_token": "r",
            "refresh_token_expires_in": 7776000
        }))
        .unwrap();
        assert_eq!(grant.expires_in, Some(1_209_600));
        let guest: GuestToken = serde_json::from_value(json!({
            "accessToken": "g", "expiresIn": 64799, "subject": "s", "displayName": "Ann"
        }))
        .unwrap();
        assert_eq!((guest.expires_in, guest.id), (Some(64_799), None));
        assert!(serde_json::from_value::<GuestToken>(json!({"expiresIn": 1})).is_err());
    }
}
