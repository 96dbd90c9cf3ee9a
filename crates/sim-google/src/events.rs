//! The Workspace Events API v1 at `/google/workspaceevents/v1/…`: subscriptions to Chat
//! events (created, renewed, deleted and reactivated through long-running operations that are
//! done at once), the CloudEvents they publish to Pub/Sub, and their lifecycle events
//! (expiration reminders, expiry, suspension).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

use crate::GoogleSim;
use crate::keys::{random_hex, random_id};
use crate::state::{EventState, EventSubscription, State};
use crate::wire::{
    Answer, GoogleError, form_value, now_micros, ok, parse_duration, parse_rfc3339, rfc3339,
};

const HOUR: u64 = 3600 * 1_000_000;
/// The longest a subscription lives: 4 hours with resources in its events, 7 days without.
const MAX_WITH_RESOURCE: u64 = 4 * HOUR;
const MAX_WITHOUT_RESOURCE: u64 = 7 * 24 * HOUR;
/// Expiration reminders go out this long before expiry.
const REMINDERS: [u64; 2] = [12 * HOUR, HOUR];
const CHAT_TARGET: &str = "//chat.googleapis.com/";
const SUBSCRIPTION_TYPE: &str =
    "type.googleapis.com/google.apps.events.subscriptions.v1.Subscription";

/// The Chat event types, and the scopes (any one) that let a user subscribe to them.
const EVENT_TYPES: [(&str, &[&str]); 4] = [
    (
        "google.workspace.chat.message.v1.",
        &["chat.messages", "chat.messages.readonly"],
    ),
    (
        "google.workspace.chat.reaction.v1.",
        &[
            "chat.messages.reactions",
            "chat.messages.reactions.readonly",
            "chat.messages",
            "chat.messages.readonly",
        ],
    ),
    (
        "google.workspace.chat.membership.v1.",
        &["chat.memberships", "chat.memberships.readonly"],
    ),
    (
        "google.workspace.chat.space.v1.",
        &["chat.spaces", "chat.spaces.readonly"],
    ),
];

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route(
            "/google/workspaceevents/v1/subscriptions",
            get(list).post(create),
        )
        .route(
            "/google/workspaceevents/v1/subscriptions/{id}",
            get(get_one)
                .patch(renew)
                .delete(delete_one)
                .post(reactivate),
        )
        .route("/google/workspaceevents/v1/operations/{id}", get(operation))
}

fn subscription_json(subscription: &EventSubscription) -> Value {
    let mut value = json!({
        "name": format!("subscriptions/{}", subscription.id),
        "uid": subscription.uid,
        "targetResource": subscription.target,
        "eventTypes": subscription.event_types,
        "notificationEndpoint": {"pubsubTopic": subscription.topic},
        "payloadOptions": {"includeResource": subscription.include_resource},
        "authority": format!("users/{}", subscription.authority),
        "state": match subscription.state {
            EventState::Active => "ACTIVE",
            EventState::Suspended => "SUSPENDED",
            EventState::Deleted => "DELETED",
        },
        "createTime": rfc3339(subscription.created),
        "updateTime": rfc3339(subscription.updated),
        "expireTime": rfc3339(subscription.expires),
        "reconciling": false,
        "etag": subscription.etag,
    });
    if let Some(reason) = &subscription.suspension_reason {
        value["suspensionReason"] = json!(reason);
    }
    value
}

/// A long-running operation, done at once, stored for `operations.get`.
fn done_operation(state: &mut State, response: Value) -> Value {
    let name = format!("operations/{}", random_id(24));
    let operation = json!({"name": name, "done": true, "response": response});
    state.operations.insert(name, operation.clone());
    operation
}

fn with_type(subscription: &EventSubscription) -> Value {
    let mut value = json!({"@type": SUBSCRIPTION_TYPE});
    if let (Some(target), Some(fields)) = (
        value.as_object_mut(),
        subscription_json(subscription).as_object(),
    ) {
        target.extend(fields.clone());
    }
    value
}

/// The expiry asked for by `ttl` or `expireTime` (neither, or a zero ttl: the longest allowed).
fn expiry(request: &Value, include_resource: bool, now: u64) -> Result<u64, GoogleError> {
    let max = if include_resource {
        MAX_WITH_RESOURCE
    } else {
        MAX_WITHOUT_RESOURCE
    };
    let expires = if let Some(ttl) = request["ttl"].as_str() {
        let ttl = parse_duration(ttl).ok_or_else(|| GoogleError::invalid("Invalid ttl."))?;
        let micros = u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            now + max
        } else {
            now.saturating_add(micros)
        }
    } else if let Some(time) = request["expireTime"].as_str() {
        parse_rfc3339(time).ok_or_else(|| GoogleError::invalid("Invalid expireTime."))?
    } else {
        now + max
    };
    if expires <= now {
        return Err(GoogleError::invalid(
            "The expiration time must be in the future.",
        ));
    }
    if expires > now + max {
        return Err(GoogleError::invalid(format!(
            "The expiration time can be at most {} after now{}.",
            if include_resource {
                "4 hours"
            } else {
                "7 days"
            },
            if include_resource {
                " for subscriptions that include resource data"
            } else {
                ""
            }
        )));
    }
    Ok(expires)
}

async fn create(Shared(sim): Shared<Arc<GoogleSim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    let authority = caller
        .user_id()
        .ok_or_else(|| {
            GoogleError::denied("Subscriptions to Chat events need user authentication.")
        })?
        .to_owned();
    let target = request["targetResource"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let space = target
        .strip_prefix(CHAT_TARGET)
        .and_then(|rest| rest.strip_prefix("spaces/"))
        .ok_or_else(|| GoogleError::invalid(format!("Invalid target resource '{target}'.")))?;
    if space != "-" && !state.space(space).is_some_and(|s| s.has_member(&authority)) {
        return Err(GoogleError::not_found(format!(
            "Target resource {target} not found or caller lacks access."
        )));
    }
    let event_types: Vec<String> = request["eventTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some(t.as_str()?.to_owned()))
        .collect();
    if event_types.is_empty() {
        return Err(GoogleError::invalid("eventTypes must not be empty."));
    }
    for event_type in &event_types {
        let (_, scopes) = EVENT_TYPES
            .iter()
            .find(|(prefix, _)| event_type.starts_with(prefix))
            .ok_or_else(|| GoogleError::invalid(format!("Unsupported event type {event_type}.")))?;
        caller.require(scopes)?;
    }
    let topic = request["notificationEndpoint"]["pubsubTopic"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !state.topics.contains_key(&topic) {
        return Err(GoogleError::invalid(format!(
            "Pub/Sub topic '{topic}' not found. Create it, and let Google Workspace publish to it, first."
        )));
    }
    let include_resource = request["payloadOptions"]["includeResource"]
        .as_bool()
        .unwrap_or(false);
    let now = now_micros();
    let expires = expiry(&request, include_resource, now)?;
    let duplicate = state.event_subscriptions.iter().any(|s| {
        s.target == target
            && s.authority == authority
            && s.event_types.iter().any(|t| event_types.contains(t))
    });
    if duplicate {
        return Err(GoogleError::conflict(
            "A subscription for this target resource, authority and event types already exists.",
        ));
    }
    let subscription = EventSubscription {
        id: format!("chat-spaces-{}", random_id(32)),
        uid: random_hex(32),
        target,
        event_types,
        topic,
        include_resource,
        authority,
        delegated_by: caller.delegated_by,
        state: EventState::Active,
        suspension_reason: None,
        created: now,
        updated: now,
        expires,
        reminded: Vec::new(),
        etag: random_hex(16),
    };
    let response = with_type(&subscription);
    state.event_subscriptions.push(subscription);
    ok(done_operation(&mut state, response))
}

/// A subscription the caller authorised.
fn theirs<'s>(
    sim: &GoogleSim,
    state: &'s State,
    headers: &HeaderMap,
    id: &str,
) -> Result<(usize, &'s EventSubscription), GoogleError> {
    let caller = sim.caller(state, headers)?;
    let me = caller.user_id().unwrap_or_default();
    state
        .event_subscriptions
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == id && s.authority == me)
        .ok_or_else(|| {
            GoogleError::not_found(format!("Subscription subscriptions/{id} not found."))
        })
}

async fn get_one(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    ok(subscription_json(theirs(&sim, &state, &headers, &id)?.1))
}

/// `filter` is required: `event_types:"…"` (OR-joined) and optionally `target_resource="…"`.
async fn list(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    let me = caller.user_id().unwrap_or_default();
    let filter = form_value(&params, "filter").unwrap_or_default();
    let quoted_after = |key: &str| -> Vec<String> {
        filter
            .match_indices(key)
            .filter_map(|(at, _)| {
                let rest = filter[at + key.len()..].trim_start().strip_prefix('"')?;
                Some(rest[..rest.find('"')?].to_owned())
            })
            .collect()
    };
    let types = quoted_after("event_types:");
    if types.is_empty() {
        return Err(GoogleError::invalid(
            "The filter must name at least one event type: event_types:\"…\".",
        ));
    }
    let targets = quoted_after("target_resource=");
    let subscriptions: Vec<Value> = state
        .event_subscriptions
        .iter()
        .filter(|s| s.authority == me)
        .filter(|s| s.event_types.iter().any(|t| types.contains(t)))
        .filter(|s| targets.is_empty() || targets.contains(&s.target))
        .map(subscription_json)
        .collect();
    ok(json!({ "subscriptions": subscriptions }))
}

async fn renew(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut state = sim.lock();
    let (index, subscription) = theirs(&sim, &state, &headers, &id)?;
    let mask = form_value(&params, "updateMask").unwrap_or_default();
    let renews = mask
        .split(',')
        .map(str::trim)
        .any(|f| matches!(f, "ttl" | "expire_time" | "expireTime"));
    if !renews {
        return Err(GoogleError::invalid(
            "updateMask must name ttl or expire_time.",
        ));
    }
    let now = now_micros();
    let expires = expiry(&request, subscription.include_resource, now)?;
    let subscription = &mut state.event_subscriptions[index];
    subscription.expires = expires;
    subscription.updated = now;
    subscription.reminded.clear();
    subscription.etag = random_hex(16);
    let response = with_type(subscription);
    ok(done_operation(&mut state, response))
}

async fn delete_one(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let mut state = sim.lock();
    let (index, _) = theirs(&sim, &state, &headers, &id)?;
    state.event_subscriptions.remove(index);
    ok(done_operation(
        &mut state,
        json!({"@type": "type.googleapis.com/google.protobuf.Empty"}),
    ))
}

async fn reactivate(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> Answer {
    let Some(id) = target.strip_suffix(":reactivate") else {
        return Err(GoogleError::not_found(format!(
            "Unknown method on subscriptions/{target}."
        )));
    };
    let mut state = sim.lock();
    let (index, subscription) = theirs(&sim, &state, &headers, id)?;
    if subscription.state != EventState::Suspended {
        return Err(GoogleError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "Only a suspended subscription can be reactivated.",
        ));
    }
    let subscription = &mut state.event_subscriptions[index];
    subscription.state = EventState::Active;
    subscription.suspension_reason = None;
    subscription.updated = now_micros();
    let response = with_type(subscription);
    ok(done_operation(&mut state, response))
}

async fn operation(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    sim.caller(&state, &headers)?;
    state
        .operations
        .get(&format!("operations/{id}"))
        .cloned()
        .map_or_else(|| Err(GoogleError::not_found("Operation not found.")), ok)
}

/// Publishes one CloudEvent to a subscription's topic.
fn send(
    sim: &GoogleSim,
    state: &mut State,
    subscription: &EventSubscription,
    event_type: &str,
    subject: &str,
    data: &Value,
) {
    let attributes = BTreeMap::from([
        ("ce-specversion".to_owned(), "1.0".to_owned()),
        ("ce-id".to_owned(), random_hex(32)),
        ("ce-type".to_owned(), event_type.to_owned()),
        (
            "ce-source".to_owned(),
            format!(
                "//workspaceevents.googleapis.com/subscriptions/{}",
                subscription.id
            ),
        ),
        ("ce-subject".to_owned(), subject.to_owned()),
        ("ce-time".to_owned(), rfc3339(now_micros())),
        (
            "ce-datacontenttype".to_owned(),
            "application/json".to_owned(),
        ),
    ]);
    let topic = subscription.topic.clone();
    crate::pubsub::publish(sim, state, &topic, data.to_string().as_bytes(), attributes);
}

/// Publishes a Chat event about `resource` (a message or reaction as the API answers it) to
/// every active subscription that covers the space and whose authority is a member of it.
pub fn chat_event(
    sim: &GoogleSim,
    state: &mut State,
    space_id: &str,
    event_type: &str,
    resource: &Value,
) {
    let Some(space) = state.space(space_id) else {
        return;
    };
    let resource_name = resource["name"].as_str().unwrap_or_default().to_owned();
    let members: Vec<String> = space.members.iter().map(|m| m.member.clone()).collect();
    let targets = [
        format!("{CHAT_TARGET}spaces/-"),
        format!("{CHAT_TARGET}spaces/{space_id}"),
    ];
    let matching: Vec<EventSubscription> = state
        .event_subscriptions
        .iter()
        .filter(|s| s.state == EventState::Active && s.event_types.iter().any(|t| t == event_type))
        .filter(|s| targets.contains(&s.target) && members.contains(&s.authority))
        .cloned()
        .collect();
    let (key, deleted) = if event_type.contains(".reaction.") {
        ("reaction", false)
    } else {
        ("message", event_type.ends_with(".deleted"))
    };
    for subscription in matching {
        let payload = if subscription.include_resource && !deleted {
            resource.clone()
        } else {
            json!({"name": resource_name})
        };
        let data = json!({ key: payload });
        send(
            sim,
            state,
            &subscription,
            event_type,
            &format!("//chat.googleapis.com/{resource_name}"),
            &data,
        );
    }
}

fn lifecycle(sim: &GoogleSim, state: &mut State, subscription: &EventSubscription, kind: &str) {
    let subject = format!(
        "//workspaceevents.googleapis.com/subscriptions/{}",
        subscription.id
    );
    let data = json!({ "subscription": subscription_json(subscription) });
    send(
        sim,
        state,
        subscription,
        &format!("google.workspace.events.subscription.v1.{kind}"),
        &subject,
        &data,
    );
}

/// Suspends the active subscriptions `which` selects, telling each with a lifecycle event.
pub fn suspend_where(
    sim: &GoogleSim,
    state: &mut State,
    reason: &str,
    which: impl Fn(&EventSubscription) -> bool,
) {
    let now = now_micros();
    let mut suspended = Vec::new();
    for subscription in state
        .event_subscriptions
        .iter_mut()
        .filter(|s| s.state == EventState::Active && which(s))
    {
        subscription.state = EventState::Suspended;
        subscription.suspension_reason = Some(reason.to_owned());
        subscription.updated = now;
        suspended.push(subscription.clone());
    }
    for subscription in suspended {
        lifecycle(sim, state, &subscription, "suspended");
    }
}

/// Sends due expiration reminders, and expires (deletes) subscriptions whose time is up.
pub fn sweep(sim: &GoogleSim) {
    let mut state = sim.lock();
    let now = now_micros();
    let mut reminders = Vec::new();
    for subscription in &mut state.event_subscriptions {
        for before in REMINDERS {
            let due = subscription.expires.saturating_sub(before);
            if now >= due
                && due > subscription.updated
                && now < subscription.expires
                && !subscription.reminded.contains(&before)
            {
                subscription.reminded.push(before);
                reminders.push(subscription.clone());
            }
        }
    }
    for subscription in reminders {
        lifecycle(sim, &mut state, &subscription, "expirationReminder");
    }
    let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.event_subscriptions)
        .into_iter()
        .partition(|s| s.expires <= now);
    state.event_subscriptions = kept;
    for mut subscription in expired {
        subscription.state = EventState::Deleted;
        lifecycle(sim, &mut state, &subscription, "expired");
    }
}

/// Expires a subscription now, as its time running out would.
pub fn expire_now(sim: &GoogleSim, name: &str) -> Result<(), String> {
    let id = name.trim_start_matches("subscriptions/");
    {
        let mut state = sim.lock();
        let subscription = state
            .event_subscriptions
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| format!("no subscription {name}"))?;
        subscription.expires = now_micros();
    }
    sweep(sim);
    Ok(())
}
