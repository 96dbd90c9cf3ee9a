//! Cloud Pub/Sub v1 at `/google/pubsub/v1/…`: topics, pull and push subscriptions, publishing,
//! and push delivery with an OIDC token signed by the simulator's key, redelivered with
//! exponential backoff until the receiver accepts or the retention period ends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchboard_sim_kit::{Delivery, DeliveryOutcome};

use crate::keys::random_id;
use crate::state::{
    Pending, Principal, PubsubMessage, PubsubSubscription, PushConfig, State, Topic,
};
use crate::wire::{Answer, GoogleError, now_micros, ok, rfc3339};
use crate::{GoogleSim, KEY};

/// Messages are kept (and push deliveries retried) for seven days, Pub/Sub's default.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Push backoff: from 100 ms doubling up to 60 s, as Pub/Sub's push backoff does.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route(
            "/google/pubsub/v1/projects/{project}/topics",
            get(list_topics),
        )
        .route(
            "/google/pubsub/v1/projects/{project}/topics/{topic}",
            get(get_topic)
                .put(create_topic)
                .delete(delete_topic)
                .post(topic_action),
        )
        .route(
            "/google/pubsub/v1/projects/{project}/subscriptions",
            get(list_subscriptions),
        )
        .route(
            "/google/pubsub/v1/projects/{project}/subscriptions/{subscription}",
            get(get_subscription)
                .put(create_subscription)
                .delete(delete_subscription)
                .post(subscription_action),
        )
}

/// Pub/Sub calls are the project's: a domain admin's token or one of the project's service
/// accounts, with a Cloud scope.
fn authorised(sim: &GoogleSim, state: &State, headers: &HeaderMap) -> Result<(), GoogleError> {
    let caller = sim.caller(state, headers)?;
    caller.require(&["pubsub", "cloud-platform"])?;
    match &caller.principal {
        Principal::User(id) if state.user(id).is_some_and(|user| user.admin) => Ok(()),
        Principal::ServiceAccount(_) => Ok(()),
        Principal::User(_) => Err(GoogleError::denied(
            "User not authorized to perform this action.",
        )),
    }
}

fn body_json(body: &Bytes) -> Result<Value, GoogleError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))
}

fn missing(name: &str) -> GoogleError {
    GoogleError::not_found(format!("Resource not found (resource={name})."))
}

async fn list_topics(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Answer {
    let state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let prefix = format!("projects/{project}/topics/");
    let topics: Vec<Value> = state
        .topics
        .keys()
        .filter(|n| n.starts_with(&prefix))
        .map(|n| json!({"name": n}))
        .collect();
    ok(json!({ "topics": topics }))
}

async fn get_topic(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, topic)): Path<(String, String)>,
) -> Answer {
    let state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/topics/{topic}");
    state.topics.get(&name).ok_or_else(|| missing(&name))?;
    ok(json!({ "name": name }))
}

async fn create_topic(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, topic)): Path<(String, String)>,
) -> Answer {
    let mut state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/topics/{topic}");
    if state.topics.contains_key(&name) {
        return Err(GoogleError::conflict(
            "Resource already exists in the project (resource=".to_owned() + &topic + ").",
        ));
    }
    state
        .topics
        .insert(name.clone(), Topic { name: name.clone() });
    ok(json!({ "name": name }))
}

async fn delete_topic(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, topic)): Path<(String, String)>,
) -> Answer {
    let mut state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/topics/{topic}");
    state.topics.remove(&name).ok_or_else(|| missing(&name))?;
    // Subscriptions of a deleted topic stay, detached, as in Pub/Sub.
    for subscription in state
        .pubsub_subscriptions
        .values_mut()
        .filter(|s| s.topic == name)
    {
        subscription.topic = "_deleted-topic_".to_owned();
    }
    ok(json!({}))
}

async fn topic_action(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, target)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (topic, action) = target.split_once(':').unwrap_or((target.as_str(), ""));
    if action != "publish" {
        return Err(GoogleError::not_found(format!("Unknown method {action}.")));
    }
    let request = body_json(&body)?;
    let mut state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/topics/{topic}");
    if !state.topics.contains_key(&name) {
        return Err(missing(&name));
    }
    let messages = request["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| GoogleError::invalid("No messages to publish."))?;
    let mut ids = Vec::new();
    for message in messages {
        let data = message["data"].as_str().unwrap_or_default();
        let data = STANDARD
            .decode(data)
            .map_err(|_| GoogleError::invalid("Invalid data: not base64."))?;
        let attributes: BTreeMap<String, String> = message["attributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        if data.is_empty() && attributes.is_empty() {
            return Err(GoogleError::invalid("A message needs data or attributes."));
        }
        ids.push(publish(&sim, &mut state, &name, &data, attributes));
    }
    ok(json!({ "messageIds": ids }))
}

/// Publishes to a topic: queued on its pull subscriptions, pushed on its push subscriptions.
/// Answers the message id.
pub fn publish(
    sim: &GoogleSim,
    state: &mut State,
    topic: &str,
    data: &[u8],
    attributes: BTreeMap<String, String>,
) -> String {
    let message = PubsubMessage {
        id: format!(
            "{}",
            10_000_000_000_000_000 + u64::from(rand::random::<u32>()) * 1000 + now_micros() % 1000
        ),
        data: STANDARD.encode(data),
        attributes,
        published: now_micros(),
    };
    for subscription in state
        .pubsub_subscriptions
        .values_mut()
        .filter(|s| s.topic == topic)
    {
        match &subscription.push {
            Some(push) => spawn_push(
                sim,
                subscription.name.clone(),
                push.clone(),
                subscription.ack_deadline_seconds,
                message.clone(),
            ),
            None => subscription.pending.push_back(Pending {
                ack_id: random_id(40),
                message: message.clone(),
                leased_until: 0,
            }),
        }
    }
    message.id
}

fn message_json(message: &PubsubMessage) -> Value {
    let published = rfc3339(message.published);
    json!({
        "data": message.data,
        "attributes": message.attributes,
        "messageId": message.id,
        "message_id": message.id,
        "publishTime": published,
        "publish_time": published,
    })
}

/// Delivers one message to a push endpoint until it is accepted, the subscription is gone or
/// retention ends. Each attempt carries a fresh OIDC token when the subscription has one.
fn spawn_push(
    sim: &GoogleSim,
    subscription: String,
    push: PushConfig,
    deadline_seconds: u64,
    message: PubsubMessage,
) {
    let weak = sim.me.clone();
    let envelope =
        json!({"message": message_json(&message), "subscription": subscription}).to_string();
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        let mut waited = Duration::ZERO;
        loop {
            let Some(sim) = weak.upgrade() else { return };
            let authorization = {
                let state = sim.lock();
                let Some(current) = state.pubsub_subscriptions.get(&subscription) else {
                    return;
                };
                // The subscription's current push configuration (it may have been modified).
                let Some(current_push) = current.push.clone() else {
                    return;
                };
                if current_push.endpoint != push.endpoint {
                    return;
                }
                current_push.oidc.as_ref().map(|(email, audience)| {
                    let account_id = state.service_account(email).map_or_else(
                        || "100000000000000000000".to_owned(),
                        |sa| sa.unique_id.clone(),
                    );
                    let audience = audience
                        .clone()
                        .unwrap_or_else(|| current_push.endpoint.clone());
                    format!(
                        "Bearer {}",
                        state.signing_key.sign(&crate::oauth::push_token_claims(
                            &account_id,
                            email,
                            &audience
                        ))
                    )
                })
            };
            let delivery = Delivery {
                platform: KEY,
                url: push.endpoint.clone(),
                content_type: "application/json",
                body: envelope.clone().into_bytes(),
                headers: Box::new(move |_, _| {
                    authorization
                        .iter()
                        .map(|value| ("authorization".to_owned(), value.clone()))
                        .collect()
                }),
                retry_delays: Vec::new(),
                deadline: Duration::from_secs(deadline_seconds.max(1)),
                no_retry_header: None,
            };
            let webhooks = sim.context.webhooks.clone();
            drop(sim);
            if let DeliveryOutcome::Delivered { .. } = webhooks.deliver(delivery).await {
                return;
            }
            waited += backoff;
            if waited > RETENTION {
                return;
            }
            tokio::time::sleep(backoff.mul_f64(webhooks.time_scale())).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

fn subscription_json(subscription: &PubsubSubscription) -> Value {
    let mut value = json!({
        "name": subscription.name,
        "topic": subscription.topic,
        "ackDeadlineSeconds": subscription.ack_deadline_seconds,
        "messageRetentionDuration": format!("{}s", RETENTION.as_secs()),
        "state": "ACTIVE",
        "pushConfig": {},
    });
    if let Some(push) = &subscription.push {
        value["pushConfig"] = json!({"pushEndpoint": push.endpoint});
        if let Some((email, audience)) = &push.oidc {
            value["pushConfig"]["oidcToken"] = json!({"serviceAccountEmail": email, "audience": audience.clone().unwrap_or_default()});
        }
    }
    value
}

fn push_config(value: &Value) -> Result<Option<PushConfig>, GoogleError> {
    let Some(endpoint) = value["pushEndpoint"].as_str().filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
        return Err(GoogleError::invalid("Invalid push endpoint given."));
    }
    let oidc = value["oidcToken"]["serviceAccountEmail"]
        .as_str()
        .filter(|e| !e.is_empty())
        .map(|email| {
            let audience = value["oidcToken"]["audience"]
                .as_str()
                .filter(|a| !a.is_empty())
                .map(str::to_owned);
            (email.to_owned(), audience)
        });
    Ok(Some(PushConfig {
        endpoint: endpoint.to_owned(),
        oidc,
    }))
}

async fn list_subscriptions(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Answer {
    let state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let prefix = format!("projects/{project}/subscriptions/");
    let subscriptions: Vec<Value> = state
        .pubsub_subscriptions
        .values()
        .filter(|s| s.name.starts_with(&prefix))
        .map(subscription_json)
        .collect();
    ok(json!({ "subscriptions": subscriptions }))
}

async fn get_subscription(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, subscription)): Path<(String, String)>,
) -> Answer {
    let state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/subscriptions/{subscription}");
    ok(subscription_json(
        state
            .pubsub_subscriptions
            .get(&name)
            .ok_or_else(|| missing(&name))?,
    ))
}

async fn create_subscription(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, subscription)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let request = body_json(&body)?;
    let mut state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/subscriptions/{subscription}");
    let topic = request["topic"].as_str().unwrap_or_default().to_owned();
    if !state.topics.contains_key(&topic) {
        return Err(missing(&topic));
    }
    if state.pubsub_subscriptions.contains_key(&name) {
        return Err(GoogleError::conflict(format!(
            "Resource already exists in the project (resource={subscription})."
        )));
    }
    let ack_deadline_seconds = request["ackDeadlineSeconds"]
        .as_u64()
        .filter(|s| *s > 0)
        .unwrap_or(10);
    if !(10..=600).contains(&ack_deadline_seconds) {
        return Err(GoogleError::invalid(
            "The ack deadline must be between 10 and 600 seconds.",
        ));
    }
    let created = PubsubSubscription {
        name: name.clone(),
        topic,
        push: push_config(&request["pushConfig"])?,
        ack_deadline_seconds,
        pending: VecDeque::new(),
    };
    let value = subscription_json(&created);
    state.pubsub_subscriptions.insert(name, created);
    ok(value)
}

async fn delete_subscription(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, subscription)): Path<(String, String)>,
) -> Answer {
    let mut state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/subscriptions/{subscription}");
    state
        .pubsub_subscriptions
        .remove(&name)
        .ok_or_else(|| missing(&name))?;
    ok(json!({}))
}

async fn subscription_action(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((project, target)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (subscription, action) = target.split_once(':').unwrap_or((target.as_str(), ""));
    let request = body_json(&body)?;
    let mut state = sim.lock();
    authorised(&sim, &state, &headers)?;
    let name = format!("projects/{project}/subscriptions/{subscription}");
    let found = state
        .pubsub_subscriptions
        .get_mut(&name)
        .ok_or_else(|| missing(&name))?;
    let now = now_micros();
    let ack_ids = || -> Vec<String> {
        request["ackIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| Some(id.as_str()?.to_owned()))
            .collect()
    };
    match action {
        "pull" => {
            let max = request["maxMessages"]
                .as_u64()
                .filter(|m| *m > 0)
                .ok_or_else(|| GoogleError::invalid("maxMessages must be positive."))?;
            let retention = u64::try_from(RETENTION.as_micros()).unwrap_or(u64::MAX);
            found
                .pending
                .retain(|p| p.message.published + retention > now);
            let lease = now + found.ack_deadline_seconds * 1_000_000;
            let received: Vec<Value> = found
                .pending
                .iter_mut()
                .filter(|p| p.leased_until <= now)
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .map(|pending| {
                    pending.leased_until = lease;
                    json!({"ackId": pending.ack_id, "message": message_json(&pending.message)})
                })
                .collect();
            ok(json!({ "receivedMessages": received }))
        }
        "acknowledge" => {
            let ids = ack_ids();
            found.pending.retain(|p| !ids.contains(&p.ack_id));
            ok(json!({}))
        }
        "modifyAckDeadline" => {
            let ids = ack_ids();
            let seconds = request["ackDeadlineSeconds"].as_u64().unwrap_or(0);
            for pending in found.pending.iter_mut().filter(|p| ids.contains(&p.ack_id)) {
                pending.leased_until = now + seconds * 1_000_000;
            }
            ok(json!({}))
        }
        "modifyPushConfig" => {
            found.push = push_config(&request["pushConfig"])?;
            ok(json!({}))
        }
        other => Err(GoogleError::not_found(format!("Unknown method {other}."))),
    }
}
