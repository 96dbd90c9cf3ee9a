//! Graph change notifications: the validation handshake, `clientState` verification, and
//! reading what changed.
//!
//! Graph signs basic notifications with nothing but the `clientState` the subscriber chose;
//! the hub generates one per connection at connect time (credential `client_state`) and
//! gives it to every subscription it creates, so a notification whose items do not all carry
//! it is refused. Basic notifications carry only ids (`resource`, `resourceData.id`), never
//! content: a new or edited message must be fetched before it can be relayed (see
//! [`crate::TeamsPlatform::fetch_change`]).
//!
//! - Change notifications: <https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks>
//! - Lifecycle notifications: <https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events>

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use switchboard_core::{ExternalChatId, ExternalUserId};
use switchboard_platform::{
    AnnouncedPost, EventEnvelope, MessageRef, PlatformError, WebhookRequest, WebhookVerdict,
};

use switchboard_platform::wire;

/// What a notification's `changeType` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

/// One item of a change or lifecycle notification, as far as its ids tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeNotice {
    /// A chat message was posted (`Created`), edited, reacted to or undeleted (`Updated`), or
    /// soft-deleted (`Deleted`).
    ChatMessage {
        event_id: String,
        subscription_id: String,
        change: ChangeType,
        message: MessageRef,
    },
    /// A user was created, invited, redeemed an invitation or changed (`Updated`), or deleted.
    User {
        event_id: String,
        subscription_id: String,
        change: ChangeType,
        user: ExternalUserId,
    },
    /// A group's members changed (Directory Sync's `/groups` subscription).
    Group {
        event_id: String,
        subscription_id: String,
        group: String,
    },
    /// Another resource (team membership) changed.
    Other {
        event_id: String,
        subscription_id: String,
        change: ChangeType,
        resource: String,
    },
    /// Graph's lifecycle signal for a subscription: `reauthorizationRequired` (reauthorize or
    /// renew it), `subscriptionRemoved` (create it again) or `missed` (resync with delta).
    Lifecycle {
        event_id: String,
        subscription_id: String,
        event: String,
    },
}

#[derive(Debug, Deserialize)]
struct Notifications {
    value: Vec<Notification>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Notification {
    subscription_id: String,
    subscription_expiration_date_time: String,
    client_state: Option<String>,
    change_type: Option<String>,
    resource: String,
    /// Passed over when unreadable: the `resource` path names the same ids.
    #[serde(deserialize_with = "wire::lenient")]
    resource_data: Option<ResourceData>,
    lifecycle_event: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ResourceData {
    #[serde(default, deserialize_with = "wire::lenient")]
    id: Option<String>,
}

/// Handshake or verified events; `expected` is the connection's `client_state`.
pub(crate) fn verify(
    request: &WebhookRequest,
    expected: &str,
) -> Result<WebhookVerdict, PlatformError> {
    if let Some(token) = validation_token(request.query.as_deref()) {
        return Ok(WebhookVerdict::Challenge(token));
    }
    let notifications = read(&request.body)?;
    if notifications.value.is_empty() {
        return Err(PlatformError::BadWebhook(
            "a notification without items".to_owned(),
        ));
    }
    for item in &notifications.value {
        let given = item.client_state.as_deref().unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(PlatformError::BadWebhook(format!(
                "clientState of subscription {} does not match the connection's",
                item.subscription_id
            )));
        }
        if !request
            .held_subscriptions
            .iter()
            .any(|held| held.id == item.subscription_id)
        {
            return Err(PlatformError::BadWebhook(format!(
                "subscription {} is not one this connection holds",
                item.subscription_id
            )));
        }
    }
    Ok(WebhookVerdict::Events)
}

/// Graph's handshake: `validationToken` in the query, answered with its decoded text.
fn validation_token(query: Option<&str>) -> Option<String> {
    let url = Url::parse(&format!("http://notification.invalid/?{}", query?)).ok()?;
    url.query_pairs()
        .find(|(name, _)| name == "validationToken")
        .map(|(_, value)| value.into_owned())
}

fn read(body: &[u8]) -> Result<Notifications, PlatformError> {
    serde_json::from_slice(body)
        .map_err(|e| PlatformError::BadWebhook(format!("not a change notification: {e}")))
}

/// Compares without stopping at the first difference, so timing reveals nothing of the secret.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        difference |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    difference == 0
}

/// Every item of a (verified) notification.
pub(crate) fn notices(body: &[u8]) -> Result<Vec<ChangeNotice>, PlatformError> {
    let notifications = read(body)?;
    notifications.value.into_iter().map(notice).collect()
}

/// Every item of a (verified) notification, each kept as Graph sent it but for its
/// `clientState` (the secret that verified it, needed no more and not to be stored), to be read
/// with [`stored_notice`] once stored.
///
/// An `updated` message notice has no id that tells one edit from the next (see [`notice`]),
/// so its envelope gets a unique one: storing it never drops a later edit, and the relay drops
/// redeliveries by the event id of what it reads (which includes `lastModifiedDateTime`).
pub(crate) fn envelopes(body: &[u8]) -> Result<Vec<EventEnvelope>, PlatformError> {
    #[derive(Deserialize)]
    struct Items {
        value: Vec<Value>,
    }
    let items: Items = serde_json::from_slice(body)
        .map_err(|e| PlatformError::BadWebhook(format!("not a change notification: {e}")))?;
    items
        .value
        .into_iter()
        .map(|mut item| {
            if let Some(fields) = item.as_object_mut() {
                fields.remove("clientState");
            }
            let payload = item.to_string();
            let notice = stored_notice(&payload)?;
            let event_id = match &notice {
                ChangeNotice::ChatMessage {
                    event_id,
                    change: ChangeType::Updated,
                    ..
                } => format!("{event_id}#{:016x}", rand::random::<u64>()),
                // Every change to a group's members is announced with the same resource; each
                // is read afresh, so none may be dropped as a redelivery of another.
                ChangeNotice::Group { event_id, .. } => {
                    format!("{event_id}#{:016x}", rand::random::<u64>())
                }
                ChangeNotice::ChatMessage { event_id, .. }
                | ChangeNotice::User { event_id, .. }
                | ChangeNotice::Other { event_id, .. }
                | ChangeNotice::Lifecycle { event_id, .. } => event_id.clone(),
            };
            Ok(EventEnvelope { event_id, payload })
        })
        .collect()
}

/// The message a stored item announces: a `created` chat message notification names it (its
/// content and author are fetched later).
pub(crate) fn announced_post(payload: &str) -> Option<AnnouncedPost> {
    match stored_notice(payload).ok()? {
        ChangeNotice::ChatMessage {
            change: ChangeType::Created,
            message,
            ..
        } => Some(AnnouncedPost {
            message,
            author: None,
        }),
        _ => None,
    }
}

/// One stored item of a notification.
pub(crate) fn stored_notice(payload: &str) -> Result<ChangeNotice, PlatformError> {
    let item: Notification = serde_json::from_str(payload)
        .map_err(|e| PlatformError::BadWebhook(format!("not a change notification item: {e}")))?;
    notice(item)
}

fn notice(item: Notification) -> Result<ChangeNotice, PlatformError> {
    if let Some(event) = item.lifecycle_event {
        return Ok(ChangeNotice::Lifecycle {
            event_id: format!(
                "{}/{event}/{}",
                item.subscription_id, item.subscription_expiration_date_time
            ),
            subscription_id: item.subscription_id,
            event,
        });
    }
    let change_type = item.change_type.as_deref().unwrap_or_default();
    let change = match change_type {
        "created" => ChangeType::Created,
        "updated" => ChangeType::Updated,
        "deleted" => ChangeType::Deleted,
        other => {
            return Err(PlatformError::BadWebhook(format!(
                "unknown changeType '{other}'"
            )));
        }
    };
    // Graph sends no delivery id; a resource changes state once per `created` and `deleted`,
    // so these identify a change. `updated` repeats for every edit and reaction: its event id
    // is only good for dropping redeliveries that arrive close together (see `fetch_change`,
    // which adds the message's `lastModifiedDateTime`).
    let event_id = format!("{}/{change_type}/{}", item.subscription_id, item.resource);
    let data_id = item.resource_data.and_then(|data| data.id);
    let segments = segments(&item.resource);
    let lowered: Vec<String> = segments
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    let names: Vec<&str> = lowered.iter().map(String::as_str).collect();
    match names.as_slice() {
        [.., "chats", "messages"] => {
            let chat = segments[segments.len() - 2].1.clone();
            let message = segments[segments.len() - 1].1.clone().or(data_id);
            match (chat, message) {
                (Some(chat), Some(id)) => Ok(ChangeNotice::ChatMessage {
                    event_id,
                    subscription_id: item.subscription_id,
                    change,
                    message: MessageRef {
                        chat: ExternalChatId::new(chat),
                        id,
                    },
                }),
                _ => Err(PlatformError::BadWebhook(format!(
                    "a chat message notification without ids: {}",
                    item.resource
                ))),
            }
        }
        ["users"] => match segments[0].1.clone().or(data_id) {
            Some(user) => Ok(ChangeNotice::User {
                event_id,
                subscription_id: item.subscription_id,
                change,
                user: ExternalUserId::new(user),
            }),
            None => Err(PlatformError::BadWebhook(format!(
                "a user notification without an id: {}",
                item.resource
            ))),
        },
        ["groups"] => match segments[0].1.clone().or(data_id) {
            Some(group) => Ok(ChangeNotice::Group {
                event_id,
                subscription_id: item.subscription_id,
                group,
            }),
            None => Err(PlatformError::BadWebhook(format!(
                "a group notification without an id: {}",
                item.resource
            ))),
        },
        _ => Ok(ChangeNotice::Other {
            event_id,
            subscription_id: item.subscription_id,
            change,
            resource: item.resource,
        }),
    }
}

/// `chats('19:a@thread.v2')/messages('17')` or `chats/19:a@thread.v2/messages/17` as
/// `[("chats", Some(chat)), ("messages", Some(id))]`.
fn segments(resource: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for part in resource.trim_matches('/').split('/') {
        if let Some((name, rest)) = part.split_once("('") {
            out.push((
                name.to_owned(),
                Some(rest.trim_end_matches("')").to_owned()),
            ));
        } else if let Some(last) = out.last_mut()
            && last.1.is_none()
            && is_collection(&last.0)
        {
            last.1 = Some(part.to_owned());
        } else {
            out.push((part.to_owned(), None));
        }
    }
    out
}

fn is_collection(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "chats" | "messages" | "users" | "teams" | "groups" | "members"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: Option<&str>, body: &str) -> WebhookRequest {
        WebhookRequest {
            headers: http_headers(),
            query: query.map(str::to_owned),
            body: body.as_bytes().to_vec(),
            held_subscriptions: vec![held("s1")],
        }
    }

    fn held(id: &str) -> crate::EventSubscription {
        crate::EventSubscription {
            id: id.to_owned(),
            resource: "/chats/getAllMessages".to_owned(),
            expires_at: switchboard_core::Timestamp::from_unix_millis(0),
        }
    }

    fn http_headers() -> reqwest::header::HeaderMap {
        reqwest::header::HeaderMap::new()
    }

    #[test]
    fn the_handshake_answers_the_decoded_token() {
        let verdict = verify(
            &request(Some("validationToken=Validation%3A+Testing+client+app"), ""),
            "s",
        );
        assert_eq!(
            verdict,
            Ok(WebhookVerdict::Challenge(
                "Validation: Testing client app".to_owned()
            ))
        );
    }

    #[test]
    fn every_item_must_carry_the_client_state_of_a_subscription_the_connection_holds() {
        let body = |a: &str, b: &str| {
            format!(
                r#"{{"value":[{{"subscriptionId":"s1","clientState":"{a}","changeType":"deleted","resource":"chats('19:x@thread.v2')/messages('1')"}},
                {{"subscriptionId":"s1","clientState":"{b}","changeType":"created","resource":"chats('19:x@thread.v2')/messages('2')"}}]}}"#
            )
        };
        assert_eq!(
            verify(&request(None, &body("secret", "secret")), "secret"),
            Ok(WebhookVerdict::Events)
        );
        assert!(verify(&request(None, &body("secret", "secreT")), "secret").is_err());
        assert!(verify(&request(None, &body("secret", "")), "secret").is_err());
        assert!(verify(&request(None, "{}"), "secret").is_err());
        let mut elsewhere = request(None, &body("secret", "secret"));
        elsewhere.held_subscriptions = vec![held("s2")];
        assert_eq!(
            verify(&elsewhere, "secret"),
            Err(PlatformError::BadWebhook(
                "subscription s1 is not one this connection holds".to_owned()
            ))
        );
        let envelopes = envelopes(body("secret", "secret").as_bytes()).unwrap();
        assert_eq!(envelopes.len(), 2);
        // Verified, the secret is not handed on to be stored with the items.
        assert!(
            envelopes
                .iter()
                .all(|e| !e.payload.contains("clientState") && !e.payload.contains("secret")),
            "{envelopes:?}"
        );
        assert_eq!(
            envelopes[0].event_id,
            "s1/deleted/chats('19:x@thread.v2')/messages('1')"
        );
        assert!(matches!(
            stored_notice(&envelopes[0].payload).unwrap(),
            ChangeNotice::ChatMessage { change: ChangeType::Deleted, message, .. }
                if message == MessageRef {
                    chat: ExternalChatId::new("19:x@thread.v2"),
                    id: "1".to_owned()
                }
        ));
    }

    #[test]
    fn each_edit_is_stored_but_a_redelivered_post_is_not() {
        let body = r#"{"value":[
          {"subscriptionId":"s","changeType":"updated","resource":"chats('19:x@thread.v2')/messages('1')"},
          {"subscriptionId":"s","changeType":"updated","resource":"chats('19:x@thread.v2')/messages('1')"},
          {"subscriptionId":"s","changeType":"created","resource":"chats('19:x@thread.v2')/messages('2')"}]}"#;
        let first = envelopes(body.as_bytes()).unwrap();
        let again = envelopes(body.as_bytes()).unwrap();
        assert_ne!(first[0].event_id, first[1].event_id);
        assert_ne!(first[0].event_id, again[0].event_id);
        assert_eq!(first[2].event_id, again[2].event_id);
    }

    #[test]
    fn only_created_messages_are_announced() {
        let body = r#"{"value":[
          {"subscriptionId":"s","changeType":"created","resource":"chats('19:x@thread.v2')/messages('2')"},
          {"subscriptionId":"s","changeType":"updated","resource":"chats('19:x@thread.v2')/messages('2')"},
          {"subscriptionId":"s","changeType":"deleted","resource":"chats('19:x@thread.v2')/messages('2')"},
          {"subscriptionId":"s","changeType":"created","resource":"Users/u-1","resourceData":{"id":"u-1"}}]}"#;
        let announced: Vec<_> = envelopes(body.as_bytes())
            .unwrap()
            .iter()
            .map(|envelope| announced_post(&envelope.payload))
            .collect();
        assert_eq!(
            announced,
            [
                Some(AnnouncedPost {
                    message: MessageRef {
                        chat: ExternalChatId::new("19:x@thread.v2"),
                        id: "2".to_owned()
                    },
                    author: None
                }),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn resources_are_read_in_both_forms_and_lifecycle_items_too() {
        let body = r#"{"value":[
          {"subscriptionId":"s","changeType":"updated","resource":"chats/19:a_b@unq.gbl.spaces/messages/17"},
          {"subscriptionId":"s","changeType":"updated","resource":"Users/u-1","resourceData":{"id":"u-1"}},
          {"subscriptionId":"s","changeType":"updated","resource":"teams('t')/members"},
          {"subscriptionId":"s","subscriptionExpirationDateTime":"x","lifecycleEvent":"missed"}]}"#;
        let notices = notices(body.as_bytes()).unwrap();
        assert!(
            matches!(&notices[0], ChangeNotice::ChatMessage { message, change: ChangeType::Updated, .. }
            if message.chat.as_str() == "19:a_b@unq.gbl.spaces" && message.id == "17")
        );
        assert!(matches!(&notices[1], ChangeNotice::User { user, .. } if user.as_str() == "u-1"));
        assert!(matches!(&notices[2], ChangeNotice::Other { .. }));
        assert!(matches!(&notices[3], ChangeNotice::Lifecycle { event, .. } if event == "missed"));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn resource_data_that_cannot_be_read_leaves_the_resource_path() {
        let user = |item: &str| match stored_notice(item) {
            Ok(ChangeNotice::User { user, .. }) => Some(user.as_str().to_owned()),
            _ => None,
        };
        let item = |resource: &str, data: &str| {
            format!(
                r#"{{"subscriptionId":"s","changeType":"updated","resource":"{resource}","resourceData":{data},"extra":[1]}}"#
            )
        };
        assert_eq!(user(&item("Users/u-1", r#""x""#)).as_deref(), Some("u-1"));
        assert_eq!(user(&item("Users/u-1", "null")).as_deref(), Some("u-1"));
        assert_eq!(
            user(&item("Users", r#"{"id":"u-2"}"#)).as_deref(),
            Some("u-2")
        );
        assert_eq!(user(&item("Users", r#"{"id":7}"#)), None);
        assert_eq!(user(&item("Users", "[]")), None);
    }
}
