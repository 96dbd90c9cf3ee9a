//! Directory Sync on Google: the domain's groups and their members (nested groups expanded by
//! `includeDerivedMembership`), read as the connection's admin; and the Reports API's admin
//! activities, which are the only push Google offers for group membership (the Directory
//! API's own `watch` covers users alone): a notification channel (`activities.watch`) sends
//! every admin activity to the hub, which reads the followed groups again.
//!
//! A channel cannot be renewed: once half its life (six hours at most) has passed, a new one is
//! opened and the old one stopped. Each channel carries a token only the hub can make (an
//! HMAC of its id keyed with the connection's service account key), which every push must
//! present.
//!
//! - Groups: <https://developers.google.com/workspace/admin/directory/reference/rest/v1/groups/list>
//! - Members: <https://developers.google.com/workspace/admin/directory/reference/rest/v1/members/list>
//! - activities.watch: <https://developers.google.com/workspace/admin/reports/reference/rest/v1/activities/watch>
//! - Push notifications: <https://developers.google.com/workspace/admin/reports/v1/guides/push>

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::{Email, ExternalUserId, Platform, Timestamp};
use switchboard_platform::wire::{items, lenient};
use switchboard_platform::{
    ConnectionContext, DirectoryGroup, EventEnvelope, EventSubscription, GroupMember, InboundEvent,
    InboundKind, PlatformError, WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::ExposeSecret;

use crate::{GoogleChatPlatform, auth, credential};

/// What the hub's channel watches, as its subscription's resource says.
pub(crate) const REPORTS_RESOURCE: &str = "reports/admin/activities";

/// Google's longest life of a Reports channel.
const CHANNEL_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// A stored push names itself with this field, beside the activity it carries.
const ACTIVITY_FIELD: &str = "adminActivity";

impl GoogleChatPlatform {
    /// The connection's admin, by delegation, for Directory Sync's reads.
    async fn directory_sync_token(
        &self,
        connection: &ConnectionContext,
    ) -> Result<String, PlatformError> {
        let key = Self::key(connection)?;
        let admin = Self::text(connection, credential::ADMIN_EMAIL)?;
        self.tokens
            .service_account(&self.client, &key, Some(admin), auth::DIRECTORY_SYNC_SCOPES)
            .await
            .map_err(|error| match error {
                PlatformError::Unauthorized(why) => PlatformError::Unauthorized(format!(
                    "Directory Sync needs the domain-wide delegation to grant {} ({why})",
                    auth::DIRECTORY_SYNC_SCOPES
                        .iter()
                        .map(|scope| auth::short(scope))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )),
                other => other,
            })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupList {
    #[serde(default, deserialize_with = "items")]
    groups: Vec<Group>,
    #[serde(default, deserialize_with = "lenient")]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Group {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberList {
    #[serde(default, deserialize_with = "items")]
    members: Vec<Member>,
    #[serde(default, deserialize_with = "lenient")]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Member {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    email: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    status: Option<String>,
}

/// Every page of a Directory list, `read` turning one page into its items and next token.
async fn every_page<P: serde::de::DeserializeOwned, T>(
    platform: &GoogleChatPlatform,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
    mut read: impl FnMut(P, &mut Vec<T>) -> Option<String>,
) -> Result<Vec<T>, PlatformError> {
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut query = query.to_vec();
        if let Some(page) = &next {
            query.push(("pageToken", page));
        }
        let url = platform.client.directory_url(path, &query)?;
        let page: P = platform.client.get(token, &url).await?;
        next = read(page, &mut found).filter(|page| !page.is_empty());
        if next.is_none() {
            return Ok(found);
        }
    }
}

pub(crate) async fn directory_groups(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
) -> Result<Vec<DirectoryGroup>, PlatformError> {
    let token = platform.directory_sync_token(connection).await?;
    let customer = GoogleChatPlatform::text(connection, credential::CUSTOMER)?;
    every_page(
        platform,
        &token,
        "groups",
        &[("customer", customer), ("maxResults", "200")],
        |page: GroupList, found| {
            found.extend(page.groups.into_iter().filter_map(|group| {
                let id = group.id?;
                Some(DirectoryGroup {
                    name: group
                        .name
                        .or(group.email.clone())
                        .unwrap_or_else(|| id.clone()),
                    kind: match group.email {
                        Some(email) => format!("Google group ({email})"),
                        None => "Google group".to_owned(),
                    },
                    id,
                })
            }));
            page.next_page_token
        },
    )
    .await
}

/// A group's users, nested groups expanded by Google; suspended and archived users left out.
pub(crate) async fn group_members(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    group: &str,
) -> Result<Vec<GroupMember>, PlatformError> {
    let token = platform.directory_sync_token(connection).await?;
    let path = format!("groups/{}/members", crate::client::resource_name(group)?);
    every_page(
        platform,
        &token,
        &path,
        &[("includeDerivedMembership", "true"), ("maxResults", "200")],
        |page: MemberList, found| {
            found.extend(page.members.into_iter().filter_map(|member| {
                if member.kind.as_deref() != Some("USER")
                    || member.status.as_deref().is_some_and(|s| s != "ACTIVE")
                {
                    return None;
                }
                Some(GroupMember {
                    account: ExternalUserId::new(member.id?),
                    emails: vec![Email::parse(member.email.as_deref()?).ok()?],
                    display_name: None,
                })
            }));
            page.next_page_token
        },
    )
    .await
}

/// The MAC behind a channel's token: only the holder of the service account key makes it.
fn channel_mac(
    connection: &ConnectionContext,
    channel: &str,
) -> Result<Hmac<Sha256>, PlatformError> {
    let key = connection
        .credentials
        .get(credential::SERVICE_ACCOUNT_KEY)?
        .expose_secret();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .map_err(|e| PlatformError::Rejected(format!("cannot key the channel token: {e}")))?;
    mac.update(b"reports-channel:");
    mac.update(channel.as_bytes());
    Ok(mac)
}

/// The token a channel's pushes present, in hex.
fn channel_token(connection: &ConnectionContext, channel: &str) -> Result<String, PlatformError> {
    Ok(channel_mac(connection, channel)?
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Whether `given` is the channel's token, compared in constant time.
fn presents_token(
    connection: &ConnectionContext,
    channel: &str,
    given: &str,
) -> Result<bool, PlatformError> {
    let bytes: Option<Vec<u8>> = given
        .len()
        .is_multiple_of(2)
        .then(|| {
            (0..given.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(given.get(at..at + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    Ok(bytes.is_some_and(|bytes| {
        channel_mac(connection, channel).is_ok_and(|mac| mac.verify_slice(&bytes).is_ok())
    }))
}

/// A held channel's subscription id: the channel's id and Google's resource id, which
/// stopping it needs.
fn subscription_id(channel: &str, resource: &str) -> String {
    format!("{channel} {resource}")
}

fn channel_of(subscription: &EventSubscription) -> Option<(&str, &str)> {
    subscription.id.split_once(' ')
}

/// Keeps the connection's Reports channel while `wanted`: opens one when there is none or the
/// one there is past half its life (stopping that one), stops it when not wanted.
pub(crate) async fn maintain_channel(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    events_url: &str,
    wanted: bool,
    current: Option<&EventSubscription>,
    now: Timestamp,
) -> Result<Option<EventSubscription>, PlatformError> {
    let half_life = CHANNEL_LIFETIME.as_millis() as i64 / 2;
    if let Some(current) = current
        && wanted
        && current.expires_at.unix_millis() - now.unix_millis() > half_life
    {
        return Ok(Some(current.clone()));
    }
    let opened = if wanted {
        Some(open_channel(platform, connection, events_url, now).await?)
    } else {
        None
    };
    if let Some(current) = current {
        stop_channel(platform, connection, current).await?;
    }
    Ok(opened)
}

async fn open_channel(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    events_url: &str,
    now: Timestamp,
) -> Result<EventSubscription, PlatformError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Channel {
        #[serde(default, deserialize_with = "lenient")]
        resource_id: Option<String>,
        #[serde(default, deserialize_with = "lenient")]
        expiration: Option<String>,
    }
    let token = platform.directory_sync_token(connection).await?;
    let channel = uuid::Uuid::new_v4().to_string();
    let asked = now.unix_millis() + CHANNEL_LIFETIME.as_millis() as i64;
    let url = platform.client.reports_url(
        "admin/reports/v1/activity/users/all/applications/admin/watch",
        &[],
    )?;
    let body = json!({
        "id": channel,
        "type": "web_hook",
        "address": events_url,
        "token": channel_token(connection, &channel)?,
        "expiration": asked.to_string(),
    });
    let opened: Channel = platform
        .client
        .call(&token, Method::POST, &url, Some(&body))
        .await?;
    let resource = opened.resource_id.ok_or_else(|| {
        PlatformError::Rejected("Google opened a channel without a resource id".to_owned())
    })?;
    let expires = opened
        .expiration
        .and_then(|ms| ms.parse::<i64>().ok())
        .unwrap_or(asked)
        .min(asked);
    Ok(EventSubscription {
        id: subscription_id(&channel, &resource),
        resource: REPORTS_RESOURCE.to_owned(),
        expires_at: Timestamp::from_unix_millis(expires),
    })
}

/// Stops a channel; one Google no longer has counts as stopped.
pub(crate) async fn stop_channel(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    subscription: &EventSubscription,
) -> Result<(), PlatformError> {
    let Some((channel, resource)) = channel_of(subscription) else {
        return Ok(());
    };
    let token = platform.directory_sync_token(connection).await?;
    let url = platform
        .client
        .reports_url("admin/reports_v1/channels/stop", &[])?;
    match platform
        .client
        .send(
            &token,
            Method::POST,
            &url,
            Some(&json!({"id": channel, "resourceId": resource})),
        )
        .await
    {
        Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

fn header<'a>(request: &'a WebhookRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// Whether a delivery is a Reports channel's push rather than Pub/Sub's.
pub(crate) fn is_channel_push(request: &WebhookRequest) -> bool {
    header(request, "x-goog-channel-id").is_some()
}

/// A push of a channel the hub holds, presenting that channel's token.
pub(crate) fn verify_push(
    connection: &ConnectionContext,
    request: &WebhookRequest,
) -> Result<WebhookVerdict, PlatformError> {
    let channel = header(request, "x-goog-channel-id").unwrap_or_default();
    let held = request.held_subscriptions.iter().any(|subscription| {
        subscription.resource == REPORTS_RESOURCE
            && channel_of(subscription).is_some_and(|(id, _)| id == channel)
    });
    if !held {
        return Err(PlatformError::BadWebhook(format!(
            "channel {channel:?} is not one the hub holds"
        )));
    }
    let given = header(request, "x-goog-channel-token").unwrap_or_default();
    if !presents_token(connection, channel, given)? {
        return Err(PlatformError::BadWebhook(
            "the channel token does not match".to_owned(),
        ));
    }
    Ok(WebhookVerdict::Events)
}

/// A channel's push as one item: none for its first message (`sync`), which announces nothing.
pub(crate) fn split_push(request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
    let state = header(request, "x-goog-resource-state").unwrap_or_default();
    if state == "sync" {
        return Ok(Vec::new());
    }
    let channel = header(request, "x-goog-channel-id").unwrap_or_default();
    let number = header(request, "x-goog-message-number").unwrap_or_default();
    let activity: Value = serde_json::from_slice(&request.body)
        .map_err(|e| PlatformError::BadWebhook(format!("not an admin activity: {e}")))?;
    Ok(vec![EventEnvelope {
        event_id: format!("reports/{channel}/{number}"),
        payload: json!({ ACTIVITY_FIELD: activity, "state": state }).to_string(),
    }])
}

/// What a stored push says: a change to a group's members, or to a user, that may change who
/// is in the groups Directory Sync follows; `None` when the item is not a push.
pub(crate) fn read_push(envelope: &EventEnvelope) -> Option<Option<InboundEvent>> {
    let stored: Value = serde_json::from_str(&envelope.payload).ok()?;
    let activity = stored.get(ACTIVITY_FIELD)?;
    let events = activity["events"].as_array().cloned().unwrap_or_default();
    let relevant = events.iter().any(|event| {
        matches!(
            event["name"].as_str(),
            Some(
                "ADD_GROUP_MEMBER"
                    | "REMOVE_GROUP_MEMBER"
                    | "SUSPEND_USER"
                    | "UNSUSPEND_USER"
                    | "DELETE_USER"
                    | "UNDELETE_USER"
                    | "ARCHIVE_USER"
                    | "DELETE_GROUP"
            )
        )
    });
    let group = events.iter().find_map(|event| {
        event["parameters"]
            .as_array()?
            .iter()
            .find_map(|parameter| {
                (parameter["name"] == "GROUP_EMAIL")
                    .then(|| parameter["value"].as_str().map(str::to_owned))
                    .flatten()
            })
    });
    Some(relevant.then(|| InboundEvent {
        event_id: envelope.event_id.clone(),
        platform: Platform::GoogleChat,
        kind: InboundKind::DirectoryChanged { group },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(name: &str) -> EventEnvelope {
        EventEnvelope {
            event_id: "reports/c/2".to_owned(),
            payload: json!({ACTIVITY_FIELD: {"events": [{"type": "GROUP_SETTINGS", "name": name,
                "parameters": [{"name": "USER_EMAIL", "value": "ann@acme.example"},
                               {"name": "GROUP_EMAIL", "value": "pilots@acme.example"}]}]},
                "state": name})
            .to_string(),
        }
    }

    #[test]
    fn membership_activities_are_directory_changes_and_others_are_not() {
        let read = read_push(&envelope("ADD_GROUP_MEMBER")).unwrap().unwrap();
        assert_eq!(
            read.kind,
            InboundKind::DirectoryChanged {
                group: Some("pilots@acme.example".to_owned())
            }
        );
        assert_eq!(read_push(&envelope("CHANGE_GROUP_NAME")), Some(None));
        let not_a_push = EventEnvelope {
            event_id: "e".to_owned(),
            payload: json!({"type": "google.workspace.chat.message.v1.created"}).to_string(),
        };
        assert_eq!(read_push(&not_a_push), None);
    }

    fn push(channel: &str, token: &str, held: &str) -> WebhookRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-goog-channel-id", channel.parse().unwrap());
        headers.insert("x-goog-channel-token", token.parse().unwrap());
        headers.insert("x-goog-resource-state", "ADD_GROUP_MEMBER".parse().unwrap());
        WebhookRequest {
            headers,
            query: None,
            body: b"{}".to_vec(),
            held_subscriptions: vec![EventSubscription {
                id: subscription_id(held, "r-1"),
                resource: REPORTS_RESOURCE.to_owned(),
                expires_at: Timestamp::from_unix_millis(0),
            }],
        }
    }

    /// The token with its last hex digit changed.
    fn flipped_last(token: &str) -> String {
        let (head, last) = token.split_at(token.len() - 1);
        format!("{head}{}", if last == "0" { "1" } else { "0" })
    }

    #[test]
    fn a_push_is_taken_only_from_a_held_channel_with_the_hubs_token() {
        let mut connection = crate::webhook::tests::connection();
        connection.credentials.insert(
            credential::SERVICE_ACCOUNT_KEY,
            switchboard_secrets::SecretString::from("the service account key"),
        );
        let token = channel_token(&connection, "c-1").unwrap();
        assert!(is_channel_push(&push("c-1", &token, "c-1")));
        assert_eq!(
            verify_push(&connection, &push("c-1", &token, "c-1")).unwrap(),
            WebhookVerdict::Events
        );
        let other = channel_token(&connection, "c-2").unwrap();
        for forged in [
            push("c-1", &other, "c-1"),
            push("c-1", "not-hex", "c-1"),
            push("c-1", &flipped_last(&token), "c-1"),
            push("c-1", &token, "c-9"),
        ] {
            assert!(matches!(
                verify_push(&connection, &forged),
                Err(PlatformError::BadWebhook(_))
            ));
        }
    }

    #[test]
    fn a_channel_subscription_names_the_channel_and_google_resource() {
        let subscription = EventSubscription {
            id: subscription_id("c-1", "r-9"),
            resource: REPORTS_RESOURCE.to_owned(),
            expires_at: Timestamp::from_unix_millis(0),
        };
        assert_eq!(channel_of(&subscription), Some(("c-1", "r-9")));
    }
}
