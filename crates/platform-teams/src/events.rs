//! What the hub hears from Teams: Graph change notifications, verified by their `clientState`
//! and split into items (see [`crate::webhook`]), each completed into an event by reading what
//! changed; and the change-notification subscriptions that make Graph send them.
//!
//! - Subscriptions: <https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions>
//! - Chat message notifications: <https://learn.microsoft.com/en-us/graph/teams-changenotifications-chatmessage>

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use switchboard_core::{ExternalUserId, Platform, Timestamp};
use switchboard_platform::{
    Actor, AnnouncedPost, ConnectionContext, EventEnvelope, EventSubscription, InboundEvent,
    InboundKind, PlatformError, PlatformUser, SubscriptionChange, WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::ExposeSecret;

use crate::chat;
use crate::client::{Created, path};
use crate::credential::CLIENT_STATE;
use crate::directory::service_user;
use crate::mapping::{DirectoryObject, USER_SELECT, platform_user};
use crate::messaging::chat_kind;
use crate::webhook::{self, ChangeNotice, ChangeType};
use crate::{TeamsPlatform, time};
use switchboard_platform::wire::Lenient;

/// What the relay watches: every chat message of the tenant. A protected, metered API that
/// Microsoft must enable for the app (see docs/platforms/teams.md).
const ALL_CHAT_MESSAGES: &str = "/chats/getAllMessages";

/// How long a subscription is asked to live: Graph's most for Teams resources, three days,
/// less an hour so that clock skew never makes Graph refuse it.
const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600 - 3600);

/// What Directory Sync watches: every group of the tenant (members added and removed), and
/// every user (disabled, deleted).
const ALL_GROUPS: &str = "/groups";
const ALL_USERS: &str = "/users";

/// Graph's most for directory resources is 41,760 minutes (29 days); a day less.
const DIRECTORY_SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(28 * 24 * 3600);

impl TeamsPlatform {
    /// Creates a change-notification subscription carrying the connection's `clientState`,
    /// as `actor` (delegated) or, with `None`, as the hub app. Graph validates both URLs with
    /// its handshake before answering. Returns the subscription id.
    ///
    /// Resources the hub uses: `/users/{id}/chats/getAllMessages` (every chat of a person or
    /// guest, with their token), `/chats/getAllMessages` (the whole tenant, app-only, metered),
    /// `/users` (directory changes, app-only). Teams subscriptions live at most three days and
    /// need a `lifecycle_url` beyond one hour.
    #[allow(clippy::too_many_arguments)]
    pub async fn subscribe(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
        resource: &str,
        change_type: &str,
        notification_url: &str,
        lifecycle_url: Option<&str>,
        expires_at: Timestamp,
    ) -> Result<String, PlatformError> {
        let token = self.token_for(connection, actor).await?;
        let client_state = connection.credentials.get(CLIENT_STATE)?.expose_secret();
        let mut body = json!({
            "changeType": change_type,
            "notificationUrl": notification_url,
            "resource": resource,
            "expirationDateTime": time::iso8601(expires_at),
            "clientState": client_state,
        });
        if let Some(url) = lifecycle_url {
            body["lifecycleNotificationUrl"] = json!(url);
        }
        let url = self.client.graph_url("/subscriptions", &[])?;
        let created: Created = self
            .client
            .graph(&token, Method::POST, &url, Some(&body), &[])
            .await?;
        created.id.ok_or_else(|| {
            PlatformError::Rejected("Graph created a subscription without an id".to_owned())
        })
    }

    /// Extends a subscription (also renews its authorisation, answering
    /// `reauthorizationRequired`).
    pub async fn renew_subscription(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
        subscription_id: &str,
        expires_at: Timestamp,
    ) -> Result<(), PlatformError> {
        let token = self.token_for(connection, actor).await?;
        let url = self
            .client
            .graph_url(&format!("/subscriptions/{}", path(subscription_id)), &[])?;
        self.client
            .send(
                &token,
                Method::PATCH,
                &url,
                Some(&json!({"expirationDateTime": time::iso8601(expires_at)})),
            )
            .await
    }

    pub async fn delete_subscription(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
        subscription_id: &str,
    ) -> Result<(), PlatformError> {
        let token = self.token_for(connection, actor).await?;
        let url = self
            .client
            .graph_url(&format!("/subscriptions/{}", path(subscription_id)), &[])?;
        match self.client.send(&token, Method::DELETE, &url, None).await {
            Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every item of a verified notification, lifecycle signals included.
    pub fn notices(&self, request: &WebhookRequest) -> Result<Vec<ChangeNotice>, PlatformError> {
        webhook::notices(&request.body)
    }

    /// Completes a notice into an event by fetching what changed: Graph's basic notifications
    /// carry ids only. `reader` must be able to read the chat (the subscription's owner: the
    /// service user, a person or a guest), or `None` for the app's token; users are read with
    /// the app's token.
    ///
    /// - a new message → `MessagePosted`; an updated one → `MessageState` (its edit version and
    ///   text, its reactions), with an event id that includes `lastModifiedDateTime` so that
    ///   successive updates are not dropped as redeliveries; a soft-deleted one →
    ///   `MessageDeleted`;
    /// - a user → `UserChanged` (a deleted user, who can no longer be read, as deactivated);
    /// - lifecycle and other notices → `None`: the caller renews or resyncs.
    pub async fn fetch_change(
        &self,
        connection: &ConnectionContext,
        reader: Option<&Actor>,
        notice: &ChangeNotice,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        let event = |event_id: String, kind| {
            Some(InboundEvent {
                event_id,
                platform: Platform::Teams,
                kind,
            })
        };
        match notice {
            ChangeNotice::ChatMessage {
                event_id,
                change,
                message,
                ..
            } => {
                if *change == ChangeType::Deleted {
                    return Ok(event(
                        event_id.clone(),
                        InboundKind::MessageDeleted {
                            message: message.clone(),
                        },
                    ));
                }
                let token = self.token_for(connection, reader).await?;
                let found = self.message(&token, message).await?;
                if found.deleted_date_time.is_some() {
                    return Ok(event(
                        event_id.clone(),
                        InboundKind::MessageDeleted {
                            message: message.clone(),
                        },
                    ));
                }
                let body = chat::read_body(&found);
                if *change == ChangeType::Updated {
                    // Graph reports edits, reactions and undeletes alike as `updated`; only
                    // `lastEditedDateTime` tells an edit, and each edit has its own.
                    let edit = found.last_edited_date_time.map(|at| (at, body));
                    let reactions = found
                        .reactions
                        .iter()
                        .filter_map(|reaction| {
                            let user = reaction.user.as_ref()?.user_id()?;
                            Some((ExternalUserId::new(user), reaction.reaction_type.clone()))
                        })
                        .collect();
                    let modified = found.last_modified_date_time.unwrap_or_default();
                    return Ok(event(
                        format!("{event_id}@{modified}"),
                        InboundKind::MessageState {
                            message: message.clone(),
                            edit,
                            reactions,
                        },
                    ));
                }
                // System events and app posts have no user sender: nothing to relay.
                let Some(sender) = found.sender() else {
                    return Ok(None);
                };
                Ok(event(
                    event_id.clone(),
                    InboundKind::MessagePosted {
                        message: message.clone(),
                        chat_kind: chat_kind(message.chat.as_str()),
                        sender: ExternalUserId::new(sender),
                        recipient: None,
                        sent_at_micros: found
                            .created_date_time
                            .as_deref()
                            .and_then(time::parse_iso8601)
                            .map(|at| at.unix_millis() * 1000),
                        body,
                        thread: None,
                    },
                ))
            }
            ChangeNotice::User {
                event_id,
                change,
                user,
                ..
            } => {
                let service = service_user(connection);
                if *change == ChangeType::Deleted {
                    return Ok(event(
                        event_id.clone(),
                        InboundKind::UserChanged {
                            user: PlatformUser {
                                id: user.clone(),
                                display_name: user.as_str().to_owned(),
                                emails: Vec::new(),
                                is_bot: false,
                                is_guest: false,
                                deactivated: true,
                            },
                        },
                    ));
                }
                let token = self.tenant_app_token(connection).await?;
                let url = self.client.graph_url(
                    &format!("/users/{}", path(user.as_str())),
                    &[("$select", USER_SELECT)],
                )?;
                let found: Lenient<DirectoryObject> = self.client.get(&token, &url).await?;
                Ok(found
                    .0
                    .and_then(|found| platform_user(found, service.as_deref()))
                    .and_then(|user| event(event_id.clone(), InboundKind::UserChanged { user })))
            }
            ChangeNotice::Lifecycle {
                event_id,
                subscription_id,
                event: lifecycle,
            } => {
                let change = match lifecycle.as_str() {
                    "missed" => SubscriptionChange::Missed,
                    "subscriptionRemoved" => SubscriptionChange::Removed,
                    "reauthorizationRequired" => SubscriptionChange::RenewalRequired,
                    _ => return Ok(None),
                };
                Ok(event(
                    event_id.clone(),
                    InboundKind::SubscriptionChanged {
                        subscription: subscription_id.clone(),
                        change,
                    },
                ))
            }
            ChangeNotice::Group {
                event_id, group, ..
            } => Ok(event(
                event_id.clone(),
                InboundKind::DirectoryChanged {
                    group: Some(group.clone()),
                },
            )),
            ChangeNotice::Other { .. } => Ok(None),
        }
    }
}

pub(crate) fn verify_webhook(
    connection: &ConnectionContext,
    request: &WebhookRequest,
) -> Result<WebhookVerdict, PlatformError> {
    let expected = connection.credentials.get(CLIENT_STATE)?.expose_secret();
    webhook::verify(request, expected)
}

pub(crate) fn split_webhook(request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
    webhook::envelopes(&request.body)
}

pub(crate) fn announced_post(envelope: &EventEnvelope) -> Option<AnnouncedPost> {
    webhook::announced_post(&envelope.payload)
}

/// Graph's notifications carry ids, not content: what changed is read with the app's
/// token, which can read every chat of the tenant (`Chat.Read.All`).
pub(crate) async fn read_event(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    envelope: &EventEnvelope,
) -> Result<Option<InboundEvent>, PlatformError> {
    let notice = webhook::stored_notice(&envelope.payload)?;
    teams.fetch_change(connection, None, &notice).await
}

/// A subscription the connection keeps.
struct Wanted {
    resource: &'static str,
    change_type: &'static str,
    lifetime: Duration,
    /// Teams resources need a lifecycle URL to live longer than an hour; directory ones take
    /// none.
    lifecycle: bool,
}

/// The subscriptions a connection keeps: one tenant-wide to every chat message
/// (`/chats/getAllMessages`, app-only), and, while Directory Sync follows groups of the
/// tenant, one to every group's changes (`/groups`: Graph announces direct members added and
/// removed, so a change to a nested group arrives as its own group's) and one to every user's
/// (`/users`: a disabled or deleted member). Each is created when
/// missing and renewed once half its life has passed; any other is deleted. Lifecycle
/// signals go to the same URL.
pub(crate) async fn maintain_subscriptions(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    events_url: &str,
    groups: &[String],
    current: &[EventSubscription],
    now: Timestamp,
) -> Result<Vec<EventSubscription>, PlatformError> {
    let mut wanted = vec![Wanted {
        resource: ALL_CHAT_MESSAGES,
        change_type: "created,updated,deleted",
        lifetime: SUBSCRIPTION_LIFETIME,
        lifecycle: true,
    }];
    if !groups.is_empty() {
        // A member disabled or deleted leaves the followed groups without any group changing.
        for resource in [ALL_GROUPS, ALL_USERS] {
            wanted.push(Wanted {
                resource,
                change_type: "updated,deleted",
                lifetime: DIRECTORY_SUBSCRIPTION_LIFETIME,
                lifecycle: false,
            });
        }
    }
    let mut kept: Vec<EventSubscription> = Vec::new();
    for subscription in current {
        let Some(want) = wanted.iter().find(|w| w.resource == subscription.resource) else {
            teams
                .delete_subscription(connection, None, &subscription.id)
                .await?;
            continue;
        };
        if kept.iter().any(|k| k.resource == subscription.resource) {
            teams
                .delete_subscription(connection, None, &subscription.id)
                .await?;
            continue;
        }
        let half_life = want.lifetime.as_millis() as i64 / 2;
        if subscription.expires_at.unix_millis() - now.unix_millis() > half_life {
            kept.push(subscription.clone());
            continue;
        }
        let expires_at = later(now, want.lifetime);
        match teams
            .renew_subscription(connection, None, &subscription.id, expires_at)
            .await
        {
            Ok(()) => kept.push(EventSubscription {
                expires_at,
                ..subscription.clone()
            }),
            // Expired or removed by Graph: created again below.
            Err(PlatformError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    for want in &wanted {
        if kept.iter().any(|k| k.resource == want.resource) {
            continue;
        }
        let expires_at = later(now, want.lifetime);
        let id = teams
            .subscribe(
                connection,
                None,
                want.resource,
                want.change_type,
                events_url,
                want.lifecycle.then_some(events_url),
                expires_at,
            )
            .await?;
        kept.push(EventSubscription {
            id,
            resource: want.resource.to_owned(),
            expires_at,
        });
    }
    Ok(kept)
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis() + by.as_millis() as i64)
}

pub(crate) async fn remove_subscriptions(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    current: &[EventSubscription],
) -> Result<(), PlatformError> {
    for subscription in current {
        teams
            .delete_subscription(connection, None, &subscription.id)
            .await?;
    }
    Ok(())
}
