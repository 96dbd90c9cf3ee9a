//! Change notifications: subscriptions with Graph's validation handshake and lifetime rules,
//! notifications on changes (with `clientState` echoed), delivered through the kit's webhook
//! sender with Graph's retry window, and lifecycle notifications.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use switchboard_sim_kit::{Delivery, DeliveryOutcome, Limit};

use crate::MicrosoftSim;
use crate::entra::{Caller, authenticate};
use crate::odata::{
    GraphError, GraphResult, encode_component, iso, json_response, no_content, now_ms, parse_body,
    parse_iso,
};
use crate::state::{Subscription, Watch};

const MINUTE_MS: u64 = 60_000;
/// Teams chat, message and membership resources.
const TEAMS_MAX_MINUTES: u64 = 4_320;
/// Users and groups.
const DIRECTORY_MAX_MINUTES: u64 = 41_760;
const NOTIFICATION_DEADLINE: Duration = Duration::from_secs(3);
const VALIDATION_DEADLINE: Duration = Duration::from_secs(10);
const GENEROUS: Limit = Limit {
    per_second: 13_000.0,
    burst: 130_000.0,
};

/// Graph retries an unacknowledged notification for up to four hours, backing off.
fn retry_schedule() -> Vec<Duration> {
    let mut delays: Vec<Duration> = [10, 30, 60, 120, 300, 600, 900, 1_800]
        .into_iter()
        .map(Duration::from_secs)
        .collect();
    delays.extend(std::iter::repeat_n(Duration::from_secs(1_800), 6));
    delays
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

impl LifecycleEvent {
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::ReauthorizationRequired,
            Self::SubscriptionRemoved,
            Self::Missed,
        ]
        .into_iter()
        .find(|event| event.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Self::ReauthorizationRequired => "reauthorizationRequired",
            Self::SubscriptionRemoved => "subscriptionRemoved",
            Self::Missed => "missed",
        }
    }
}

/// A change that subscriptions may be told about.
#[derive(Debug, Clone)]
pub struct Event {
    tenant_id: String,
    change_type: &'static str,
    subject: Subject,
}

#[derive(Debug, Clone)]
enum Subject {
    ChatMessage {
        chat_id: String,
        message_id: String,
        members: Vec<String>,
    },
    User(String),
    GroupMembers {
        group_id: String,
        user_id: String,
        added: bool,
    },
}

impl Event {
    pub fn user(tenant_id: &str, user_id: &str, change_type: &'static str) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            change_type,
            subject: Subject::User(user_id.to_owned()),
        }
    }

    pub fn message(
        tenant_id: &str,
        chat_id: &str,
        message_id: &str,
        members: Vec<String>,
        change_type: &'static str,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            change_type,
            subject: Subject::ChatMessage {
                chat_id: chat_id.to_owned(),
                message_id: message_id.to_owned(),
                members,
            },
        }
    }

    pub fn member_removed(tenant_id: &str, group_id: &str, user_id: &str) -> Self {
        Self::membership(tenant_id, group_id, user_id, false)
    }

    /// A member (a user, or a nested group) added to or removed from a group.
    pub fn membership(tenant_id: &str, group_id: &str, member_id: &str, added: bool) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            change_type: if added { "created" } else { "deleted" },
            subject: Subject::GroupMembers {
                group_id: group_id.to_owned(),
                user_id: member_id.to_owned(),
                added,
            },
        }
    }
}

/// What a subscription is told about an event, if it watches it.
fn notification(subscription: &Subscription, event: &Event) -> Option<Value> {
    let (change_type, resource, data) = match (&subscription.watch, &event.subject) {
        (
            Watch::AllChatMessages | Watch::UserChatMessages(_) | Watch::ChatMessages(_),
            Subject::ChatMessage {
                chat_id,
                message_id,
                members,
            },
        ) => {
            let watched = match &subscription.watch {
                Watch::UserChatMessages(user) => members.contains(user),
                Watch::ChatMessages(chat) => chat == chat_id,
                _ => true,
            };
            if !watched {
                return None;
            }
            let path = format!("chats('{chat_id}')/messages('{message_id}')");
            (
                event.change_type,
                path.clone(),
                json!({"id": message_id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": path}),
            )
        }
        (Watch::Users, Subject::User(user_id)) => {
            let path = format!("Users/{user_id}");
            (
                event.change_type,
                path.clone(),
                json!({"@odata.type": "#Microsoft.Graph.User", "@odata.id": path, "id": user_id, "organizationId": event.tenant_id}),
            )
        }
        (
            Watch::Group(_) | Watch::Groups,
            Subject::GroupMembers {
                group_id,
                user_id,
                added,
            },
        ) if matches!(&subscription.watch, Watch::Group(watched) if watched == group_id)
            || subscription.watch == Watch::Groups =>
        {
            let path = format!("Groups/{group_id}");
            let mut member = json!({"id": user_id});
            if !added {
                member["@removed"] = json!("deleted");
            }
            (
                "updated",
                path.clone(),
                json!({
                    "@odata.type": "#Microsoft.Graph.Group",
                    "@odata.id": path,
                    "id": group_id,
                    "organizationId": event.tenant_id,
                    "members@delta": [member],
                }),
            )
        }
        (
            Watch::TeamMembers(watched),
            Subject::GroupMembers {
                group_id, user_id, ..
            },
        ) if watched == group_id => {
            let member_id = crate::directory::membership_id(&event.tenant_id, group_id, user_id);
            let path = format!("teams('{group_id}')/members('{member_id}')");
            (
                event.change_type,
                path.clone(),
                json!({"id": member_id, "@odata.type": "#Microsoft.Graph.aadUserConversationMember", "@odata.id": path}),
            )
        }
        _ => return None,
    };
    if !subscription
        .change_types
        .iter()
        .any(|wanted| wanted == change_type)
    {
        return None;
    }
    Some(json!({
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": iso(subscription.expiration_ms),
        "changeType": change_type,
        "resource": resource,
        "resourceData": data,
        "clientState": subscription.client_state,
        "tenantId": subscription.tenant_id,
    }))
}

fn deliver(sim: &MicrosoftSim, url: String, body: &Value) {
    sim.context.webhooks.spawn(Delivery {
        platform: "teams",
        url,
        content_type: "application/json; charset=utf-8",
        body: body.to_string().into_bytes(),
        headers: Box::new(|_, _| Vec::new()),
        retry_delays: retry_schedule(),
        deadline: NOTIFICATION_DEADLINE,
        no_retry_header: None,
    });
}

/// Tells every live, authorised subscription that watches them about `events`. Subscriptions
/// with a lifecycle URL whose authorisation has run out miss them, and hear `missed` once
/// reauthorised; those without one could never learn of it, so they keep receiving.
pub fn publish(sim: &MicrosoftSim, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let now = now_ms();
    let mut outgoing = Vec::new();
    {
        let mut state = sim.lock();
        for subscription in state.subscriptions.values_mut() {
            if subscription.expiration_ms <= now {
                continue;
            }
            for event in events
                .iter()
                .filter(|event| event.tenant_id == subscription.tenant_id)
            {
                let Some(item) = notification(subscription, event) else {
                    continue;
                };
                if subscription.lifecycle_url.is_some() && subscription.auth_expires_ms <= now {
                    subscription.missed = true;
                } else {
                    outgoing.push((subscription.notification_url.clone(), item));
                }
            }
        }
    }
    for (url, item) in outgoing {
        deliver(sim, url, &json!({ "value": [item] }));
    }
}

fn lifecycle_body(subscription: &Subscription, event: LifecycleEvent) -> Value {
    json!({"value": [{
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": iso(subscription.expiration_ms),
        "tenantId": subscription.tenant_id,
        "clientState": subscription.client_state,
        "lifecycleEvent": event.name(),
    }]})
}

pub fn send_lifecycle(
    sim: &MicrosoftSim,
    subscription_id: &str,
    event: LifecycleEvent,
) -> Result<(), String> {
    let (url, body) = {
        let mut state = sim.lock();
        let subscription = state
            .subscriptions
            .get_mut(subscription_id)
            .ok_or_else(|| format!("no subscription {subscription_id}"))?;
        let url = subscription.lifecycle_url.clone().ok_or_else(|| {
            format!("subscription {subscription_id} has no lifecycleNotificationUrl")
        })?;
        let body = lifecycle_body(subscription, event);
        match event {
            LifecycleEvent::ReauthorizationRequired => subscription.reauthorization_sent = true,
            LifecycleEvent::Missed => subscription.missed = false,
            LifecycleEvent::SubscriptionRemoved => {
                state.subscriptions.remove(subscription_id);
            }
        }
        (url, body)
    };
    deliver(sim, url, &body);
    Ok(())
}

/// Drops subscriptions created with a user's delegated token when that user goes away.
pub fn remove_for_user(sim: &MicrosoftSim, tenant_id: &str, user_id: &str) {
    let ids: Vec<String> = sim
        .lock()
        .subscriptions
        .values()
        .filter(|s| s.tenant_id == tenant_id && s.creator_id.as_deref() == Some(user_id))
        .map(|s| s.id.clone())
        .collect();
    for id in ids {
        if send_lifecycle(sim, &id, LifecycleEvent::SubscriptionRemoved).is_err() {
            sim.lock().subscriptions.remove(&id);
        }
    }
}

/// Expired subscriptions disappear; those whose authorisation is about to run out are asked
/// to reauthorise.
pub fn sweep(sim: &MicrosoftSim) {
    let now = now_ms();
    let due: Vec<String> = {
        let mut state = sim.lock();
        state.subscriptions.retain(|_, s| s.expiration_ms > now);
        state
            .subscriptions
            .values()
            .filter(|s| {
                s.lifecycle_url.is_some()
                    && !s.reauthorization_sent
                    && s.auth_expires_ms <= now + 10 * MINUTE_MS
            })
            .map(|s| s.id.clone())
            .collect()
    };
    for id in due {
        let _ = send_lifecycle(sim, &id, LifecycleEvent::ReauthorizationRequired);
    }
}

fn subscription_json(sim: &MicrosoftSim, subscription: &Subscription, entity: bool) -> Value {
    let mut body = json!({
        "id": subscription.id,
        "resource": subscription.resource,
        "applicationId": subscription.app_id,
        "changeType": subscription.change_types.join(","),
        "clientState": subscription.client_state,
        "notificationUrl": subscription.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": subscription.lifecycle_url,
        "expirationDateTime": iso(subscription.expiration_ms),
        "creatorId": subscription.creator_id.clone().unwrap_or_else(|| subscription.app_id.clone()),
        "includeResourceData": subscription.include_resource_data,
        "latestSupportedTlsVersion": subscription.latest_tls,
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
    });
    if entity {
        body["@odata.context"] = json!(format!(
            "{}/$metadata#subscriptions/$entity",
            sim.graph_base()
        ));
    }
    body
}

fn is_teams(watch: &Watch) -> bool {
    matches!(
        watch,
        Watch::AllChatMessages
            | Watch::UserChatMessages(_)
            | Watch::ChatMessages(_)
            | Watch::TeamMembers(_)
    )
}

/// Resolves `resource` and checks the caller may watch it.
fn resolve(sim: &MicrosoftSim, caller: &Caller, resource: &str) -> Result<Watch, GraphError> {
    let path = resource.trim().trim_start_matches('/');
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let segments: Vec<&str> = path.split('/').collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let state = sim.lock();
    let tenant = state
        .tenant(&caller.tenant_id)
        .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))?;
    match lower.as_slice() {
        ["chats", "getallmessages"] => {
            if caller.user_id.is_some() {
                return Err(GraphError::forbidden(
                    "Requested API is not supported in delegated context",
                ));
            }
            caller.require(&[], &["Chat.Read.All", "Chat.ReadWrite.All"])?;
            Ok(Watch::AllChatMessages)
        }
        ["users", _, "chats", "getallmessages"] => {
            let user = tenant
                .user(segments[1])
                .ok_or_else(|| GraphError::directory_not_found(segments[1]))?;
            caller.require(
                &["Chat.Read", "Chat.ReadWrite"],
                &["Chat.Read.All", "Chat.ReadWrite.All"],
            )?;
            if caller.user_id.as_deref().is_some_and(|me| me != user.id) {
                return Err(GraphError::forbidden(
                    "A delegated subscription may only watch the signed-in user's own chats.",
                ));
            }
            Ok(Watch::UserChatMessages(user.id.clone()))
        }
        ["chats", _, "messages"] => {
            let chat = state
                .chat_index(segments[1])
                .map(|index| &state.chats[index])
                .filter(|chat| chat.tenant_id == caller.tenant_id)
                .ok_or_else(|| {
                    GraphError::not_found(format!("Chat '{}' was not found.", segments[1]))
                })?;
            caller.require(
                &["Chat.Read", "Chat.ReadWrite"],
                &["Chat.Read.All", "Chat.ReadWrite.All"],
            )?;
            if caller
                .user_id
                .as_deref()
                .is_some_and(|me| !chat.has_member(me))
            {
                return Err(GraphError::forbidden(
                    "The signed-in user is not a member of this chat.",
                ));
            }
            Ok(Watch::ChatMessages(chat.id.clone()))
        }
        ["users"] => {
            caller.require_directory(
                &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All"],
                &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All"],
            )?;
            Ok(Watch::Users)
        }
        ["groups"] => {
            caller.require_directory(
                &[
                    "Group.Read.All",
                    "Group.ReadWrite.All",
                    "Directory.Read.All",
                ],
                &[
                    "Group.Read.All",
                    "Group.ReadWrite.All",
                    "Directory.Read.All",
                ],
            )?;
            Ok(Watch::Groups)
        }
        ["groups", _] => {
            let group = tenant
                .group(segments[1])
                .ok_or_else(|| GraphError::directory_not_found(segments[1]))?;
            caller.require_directory(
                &[
                    "Group.Read.All",
                    "Group.ReadWrite.All",
                    "Directory.Read.All",
                ],
                &[
                    "Group.Read.All",
                    "Group.ReadWrite.All",
                    "Directory.Read.All",
                ],
            )?;
            Ok(Watch::Group(group.id.clone()))
        }
        ["teams", _, "members"] => {
            let group = tenant.group(segments[1]).ok_or_else(|| {
                GraphError::not_found(format!("Team '{}' was not found.", segments[1]))
            })?;
            caller.require(
                &["TeamMember.Read.All", "TeamMember.ReadWrite.All"],
                &["TeamMember.Read.All", "TeamMember.ReadWrite.All"],
            )?;
            Ok(Watch::TeamMembers(group.id.clone()))
        }
        _ => Err(GraphError::bad_request(format!(
            "Resource '{resource}' is not supported for change notifications."
        ))),
    }
}

fn check_expiration(watch: &Watch, expiration_ms: u64, lifecycle: bool) -> Result<(), GraphError> {
    let now = now_ms();
    if expiration_ms <= now {
        return Err(GraphError::bad_request(
            "Subscription expiration must be in the future.",
        ));
    }
    let max_minutes = if is_teams(watch) {
        TEAMS_MAX_MINUTES
    } else {
        DIRECTORY_MAX_MINUTES
    };
    if expiration_ms > now + max_minutes * MINUTE_MS {
        return Err(GraphError::bad_request(format!(
            "Subscription expiration can only be {max_minutes} minutes in the future."
        )));
    }
    if is_teams(watch) && !lifecycle && expiration_ms > now + 60 * MINUTE_MS {
        return Err(GraphError::bad_request(
            "lifecycleNotificationUrl is a required property for subscription creation on this resource when the expirationDateTime value is set to greater than 1 hour.",
        ));
    }
    Ok(())
}

fn validation_error(message: &str) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
}

/// Graph's handshake: POST `{url}?validationToken=…` and expect the token back, as text,
/// within ten seconds.
async fn validate_endpoint(sim: &MicrosoftSim, url: &str) -> Result<(), GraphError> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let separator = if url.contains('?') { '&' } else { '?' };
    let outcome = sim
        .context
        .webhooks
        .deliver(Delivery {
            platform: "teams",
            url: format!(
                "{url}{separator}validationToken={}",
                encode_component(&token)
            ),
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            headers: Box::new(|_, _| Vec::new()),
            retry_delays: Vec::new(),
            deadline: VALIDATION_DEADLINE,
            no_retry_header: None,
        })
        .await;
    match outcome {
        DeliveryOutcome::Delivered {
            status: 200, body, ..
        } if body == token => Ok(()),
        DeliveryOutcome::Delivered { status: 200, .. } => Err(validation_error(
            "Subscription validation request failed. Response must exactly match validationToken query parameter.",
        )),
        DeliveryOutcome::Failed { last_error, .. } if last_error == "http_timeout" => Err(
            validation_error("Subscription validation request timed out."),
        ),
        _ => Err(validation_error(
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
        )),
    }
}

fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}

fn is_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://")) && url.len() > 8
}

pub async fn create(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    sim.limit(&format!("graph:{}", caller.app_id), GENEROUS)?;
    let body = parse_body(&body)?;
    let missing = |name: &str| {
        GraphError::bad_request(format!(
            "Invalid request: the '{name}' property is required."
        ))
    };
    let change_type = text(&body, "changeType").ok_or_else(|| missing("changeType"))?;
    let notification_url =
        text(&body, "notificationUrl").ok_or_else(|| missing("notificationUrl"))?;
    let resource = text(&body, "resource").ok_or_else(|| missing("resource"))?;
    let expiration =
        text(&body, "expirationDateTime").ok_or_else(|| missing("expirationDateTime"))?;
    let lifecycle_url = text(&body, "lifecycleNotificationUrl").map(str::to_owned);
    let client_state = text(&body, "clientState").map(str::to_owned);
    if client_state
        .as_ref()
        .is_some_and(|state| state.chars().count() > 128)
    {
        return Err(GraphError::bad_request(
            "clientState must not exceed 128 characters.",
        ));
    }
    if !is_url(notification_url) || lifecycle_url.as_deref().is_some_and(|url| !is_url(url)) {
        return Err(GraphError::bad_request(
            "The notification URL must be an absolute URL.",
        ));
    }
    if body.get("includeResourceData").and_then(Value::as_bool) == Some(true) {
        return Err(GraphError::bad_request(
            "Rich notifications (includeResourceData) are not delivered by this service; subscribe without resource data.",
        ));
    }
    let watch = resolve(&sim, &caller, resource)?;
    let change_types = parse_change_types(change_type, &watch)?;
    let expiration_ms = parse_iso(expiration).ok_or_else(|| {
        GraphError::bad_request(format!("Invalid expirationDateTime '{expiration}'."))
    })?;
    check_expiration(&watch, expiration_ms, lifecycle_url.is_some())?;
    validate_endpoint(&sim, notification_url).await?;
    if let Some(url) = &lifecycle_url {
        validate_endpoint(&sim, url).await?;
    }
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: caller.tenant_id.clone(),
        app_id: caller.app_id.clone(),
        creator_id: caller.user_id.clone(),
        resource: resource.to_owned(),
        watch,
        change_types,
        notification_url: notification_url.to_owned(),
        lifecycle_url,
        client_state,
        expiration_ms,
        include_resource_data: false,
        latest_tls: text(&body, "latestSupportedTlsVersion")
            .unwrap_or("v1_2")
            .to_owned(),
        auth_expires_ms: caller.expires_ms,
        reauthorization_sent: false,
        missed: false,
    };
    let answer = subscription_json(&sim, &subscription, true);
    sim.lock()
        .subscriptions
        .insert(subscription.id.clone(), subscription);
    Ok(json_response(StatusCode::CREATED, &answer))
}

fn parse_change_types(text: &str, watch: &Watch) -> Result<Vec<String>, GraphError> {
    let mut types = Vec::new();
    for change in text.split(',').map(str::trim) {
        let allowed = match change {
            "created" => !matches!(watch, Watch::Users | Watch::Groups | Watch::Group(_)),
            "updated" | "deleted" => true,
            _ => false,
        };
        if !allowed {
            return Err(GraphError::bad_request(format!(
                "ChangeType '{change}' is not supported for this resource."
            )));
        }
        types.push(change.to_owned());
    }
    Ok(types)
}

/// The caller's view of a subscription: its own app's, and for a user only theirs.
fn owned(caller: &Caller, subscription: &Subscription) -> bool {
    subscription.tenant_id == caller.tenant_id
        && subscription.app_id == caller.app_id
        && (caller.user_id.is_none() || subscription.creator_id == caller.user_id)
}

fn not_found(id: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The subscription '{id}' was not found."),
    )
}

pub async fn list(Shared(sim): Shared<Arc<MicrosoftSim>>, headers: HeaderMap) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    let state = sim.lock();
    let value: Vec<Value> = state
        .subscriptions
        .values()
        .filter(|subscription| owned(&caller, subscription))
        .map(|subscription| subscription_json(&sim, subscription, false))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"@odata.context": format!("{}/$metadata#subscriptions", sim.graph_base()), "value": value}),
    ))
}

pub async fn get(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    let state = sim.lock();
    let subscription = state
        .subscriptions
        .get(&id)
        .filter(|subscription| owned(&caller, subscription))
        .ok_or_else(|| not_found(&id))?;
    Ok(json_response(
        StatusCode::OK,
        &subscription_json(&sim, subscription, true),
    ))
}

pub async fn renew(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    let body = parse_body(&body)?;
    let expiration = text(&body, "expirationDateTime").ok_or_else(|| {
        GraphError::bad_request("Invalid request: the 'expirationDateTime' property is required.")
    })?;
    let expiration_ms = parse_iso(expiration).ok_or_else(|| {
        GraphError::bad_request(format!("Invalid expirationDateTime '{expiration}'."))
    })?;
    let mut state = sim.lock();
    let subscription = state
        .subscriptions
        .get_mut(&id)
        .filter(|subscription| owned(&caller, subscription))
        .ok_or_else(|| not_found(&id))?;
    check_expiration(
        &subscription.watch,
        expiration_ms,
        subscription.lifecycle_url.is_some(),
    )?;
    subscription.expiration_ms = expiration_ms;
    subscription.auth_expires_ms = caller.expires_ms;
    subscription.reauthorization_sent = false;
    let missed = subscription.missed && subscription.lifecycle_url.is_some();
    let answer = subscription_json(&sim, subscription, true);
    drop(state);
    if missed {
        let _ = send_lifecycle(&sim, &id, LifecycleEvent::Missed);
    }
    Ok(json_response(StatusCode::OK, &answer))
}

pub async fn delete(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    let mut state = sim.lock();
    if !state
        .subscriptions
        .get(&id)
        .is_some_and(|s| owned(&caller, s))
    {
        return Err(not_found(&id));
    }
    state.subscriptions.remove(&id);
    Ok(no_content())
}

pub async fn reauthorize(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    let missed = {
        let mut state = sim.lock();
        let subscription = state
            .subscriptions
            .get_mut(&id)
            .filter(|subscription| owned(&caller, subscription))
            .ok_or_else(|| not_found(&id))?;
        subscription.auth_expires_ms = caller.expires_ms;
        subscription.reauthorization_sent = false;
        subscription.missed && subscription.lifecycle_url.is_some()
    };
    if missed {
        let _ = send_lifecycle(&sim, &id, LifecycleEvent::Missed);
    }
    Ok(no_content())
}
