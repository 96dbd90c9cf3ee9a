//! Webhooks at `/webex/v1/webhooks` and their deliveries: a webhook fires for what happens in
//! the rooms its owner is a member of, when its resource, event and filter match; the body
//! carries ids only (the receiver fetches the message), signed with `X-Spark-Signature`, the
//! lowercase hex HMAC-SHA1 of the raw body under the webhook's secret.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::get;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use switchboard_sim_kit::Delivery;

use crate::state::{State, Webhook};
use crate::wire::{
    Answer, WebexError, iso, json_body, new_id, no_content, now_millis, ok, paged, webex_id,
};
use crate::{Caller, KEY, WebexSim};

/// Webex does not publish its retry schedule. Assumed: three retries, after 10 s, a minute and
/// five minutes, each attempt given 10 s to answer (docs/simulator-webex.md).
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
];
const DEADLINE: Duration = Duration::from_secs(10);

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route("/webex/v1/webhooks", get(list).post(create))
        .route(
            "/webex/v1/webhooks/{id}",
            get(get_one).put(update).delete(remove),
        )
}

/// The lowercase hex HMAC-SHA1 of `body` under `secret`: Webex's `X-Spark-Signature`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

const RESOURCES: [&str; 4] = ["messages", "memberships", "rooms", "all"];
const EVENTS: [&str; 4] = ["created", "updated", "deleted", "all"];

/// The filter keys each resource's webhooks may use.
fn filter_keys(resource: &str) -> &'static [&'static str] {
    match resource {
        "messages" => &[
            "roomId",
            "roomType",
            "personId",
            "personEmail",
            "mentionedPeople",
            "hasFiles",
        ],
        "memberships" => &["roomId", "personId", "personEmail", "isModerator"],
        "rooms" => &["type", "isLocked"],
        _ => &["roomId"],
    }
}

/// The scope a token needs to be told of a resource's events.
fn read_scopes(resource: &str) -> &'static [&'static str] {
    match resource {
        "messages" => &["spark:messages_read"],
        "memberships" => &["spark:memberships_read"],
        "rooms" => &["spark:rooms_read"],
        _ => &[
            "spark:messages_read",
            "spark:memberships_read",
            "spark:rooms_read",
        ],
    }
}

fn filter_pairs(filter: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(filter.as_bytes())
        .into_owned()
        .collect()
}

fn check_filter(resource: &str, filter: &str) -> Result<(), WebexError> {
    for (key, value) in filter_pairs(filter) {
        if !filter_keys(resource).contains(&key.as_str()) || value.is_empty() {
            return Err(WebexError::invalid(format!(
                "The filter {key}={value} is not supported for the resource {resource}."
            )));
        }
    }
    Ok(())
}

fn webhook_json(state: &State, webhook: &Webhook) -> Value {
    let mut value = json!({
        "id": webhook.id,
        "name": webhook.name,
        "targetUrl": webhook.target_url,
        "resource": webhook.resource,
        "event": webhook.event,
        "orgId": state.org_id,
        "createdBy": webhook.owner,
        "appId": webex_id("APPLICATION", &webhook.client_id),
        "ownedBy": "creator",
        "status": webhook.status,
        "created": iso(webhook.created),
    });
    if let Some(filter) = &webhook.filter {
        value["filter"] = json!(filter);
    }
    if let Some(secret) = &webhook.secret {
        value["secret"] = json!(secret);
    }
    value
}

fn own<'s>(state: &'s State, caller: &Caller, id: &str) -> Result<&'s Webhook, WebexError> {
    state
        .webhooks
        .iter()
        .find(|w| w.id == id && w.owner == caller.person && w.client_id == caller.client_id)
        .ok_or_else(|| WebexError::not_found("Could not find a webhook with the provided ID."))
}

fn check_target(url: &str) -> Result<(), WebexError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(WebexError::invalid(
            "targetUrl must be an http or https URL.",
        ))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewWebhook {
    name: String,
    target_url: String,
    resource: String,
    event: String,
    filter: Option<String>,
    secret: Option<String>,
}

async fn create(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let request: NewWebhook = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    if !RESOURCES.contains(&request.resource.as_str()) {
        return Err(WebexError::invalid(format!(
            "Unknown resource {}.",
            request.resource
        )));
    }
    if !EVENTS.contains(&request.event.as_str()) {
        return Err(WebexError::invalid(format!(
            "Unknown event {}.",
            request.event
        )));
    }
    for scope in read_scopes(&request.resource) {
        caller.require(scope)?;
    }
    check_target(&request.target_url)?;
    let filter = request.filter.filter(|f| !f.is_empty());
    if let Some(filter) = &filter {
        check_filter(&request.resource, filter)?;
    }
    let webhook = Webhook {
        id: new_id("WEBHOOK"),
        name: request.name,
        target_url: request.target_url,
        resource: request.resource,
        event: request.event,
        filter,
        secret: request.secret.filter(|s| !s.is_empty()),
        status: "active".to_owned(),
        owner: caller.person,
        client_id: caller.client_id,
        created: now_millis(),
    };
    let answer = webhook_json(&state, &webhook);
    state.webhooks.push(webhook);
    ok(answer)
}

async fn list(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    let all = state
        .webhooks
        .iter()
        .filter(|w| w.owner == caller.person && w.client_id == caller.client_id)
        .map(|w| webhook_json(&state, w))
        .collect();
    paged(&sim.api_base(), "webhooks", &params, all, 100)
}

async fn get_one(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    ok(webhook_json(&state, own(&state, &caller, &id)?))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookUpdate {
    name: String,
    target_url: String,
    secret: Option<String>,
    status: Option<String>,
}

async fn update(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let request: WebhookUpdate = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    own(&state, &caller, &id)?;
    check_target(&request.target_url)?;
    if let Some(status) = &request.status
        && status != "active"
        && status != "inactive"
    {
        return Err(WebexError::invalid("status must be active or inactive."));
    }
    let webhook = state
        .webhooks
        .iter_mut()
        .find(|w| w.id == id)
        .ok_or_else(|| WebexError::not_found("Could not find a webhook with the provided ID."))?;
    webhook.name = request.name;
    webhook.target_url = request.target_url;
    if let Some(secret) = request.secret {
        webhook.secret = Some(secret).filter(|s| !s.is_empty());
    }
    if let Some(status) = request.status {
        webhook.status = status;
    }
    let webhook = webhook.clone();
    ok(webhook_json(&state, &webhook))
}

async fn remove(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    own(&state, &caller, &id)?;
    state.webhooks.retain(|w| w.id != id);
    no_content()
}

/// Something that happened in a room, as webhooks are told of it.
pub struct Occurrence {
    pub resource: &'static str,
    pub event: &'static str,
    /// Who may be told: the room's members (before a removal, the removed one included).
    pub audience: Vec<String>,
    pub actor: String,
    /// The delivery's `data`: ids, never content.
    pub data: Value,
    /// What filters are matched against (`roomId`, `personEmail`, `mentionedPeople`…); a key
    /// may come several times.
    pub facts: Vec<(&'static str, String)>,
}

/// Whether every `key=value` of a webhook's filter holds. `me` in a person filter is the
/// webhook's owner.
fn filter_holds(webhook: &Webhook, occurrence: &Occurrence) -> bool {
    let Some(filter) = &webhook.filter else {
        return true;
    };
    filter_pairs(filter).iter().all(|(key, value)| {
        let value = if value == "me" { &webhook.owner } else { value };
        occurrence
            .facts
            .iter()
            .any(|(fact, held)| fact == key && held.eq_ignore_ascii_case(value))
    })
}

/// Sends `occurrence` to every active webhook it concerns, in the background.
pub fn fire(sim: &WebexSim, state: &State, occurrence: &Occurrence) {
    for webhook in &state.webhooks {
        let concerned = webhook.status == "active"
            && (webhook.resource == occurrence.resource || webhook.resource == "all")
            && (webhook.event == occurrence.event || webhook.event == "all")
            && occurrence.audience.contains(&webhook.owner)
            && filter_holds(webhook, occurrence);
        if !concerned {
            continue;
        }
        let mut body = webhook_json(state, webhook);
        if let Some(object) = body.as_object_mut() {
            object.remove("secret");
            object.insert("resource".to_owned(), json!(occurrence.resource));
            object.insert("event".to_owned(), json!(occurrence.event));
            object.insert("actorId".to_owned(), json!(occurrence.actor));
            object.insert("data".to_owned(), occurrence.data.clone());
        }
        let body = body.to_string().into_bytes();
        let signed = webhook
            .secret
            .as_deref()
            .map(|secret| signature(secret, &body));
        sim.context.webhooks.spawn(Delivery {
            platform: KEY,
            url: webhook.target_url.clone(),
            content_type: "application/json",
            body,
            headers: Box::new(move |_, _| {
                signed
                    .iter()
                    .map(|s| ("x-spark-signature".to_owned(), s.clone()))
                    .collect()
            }),
            retry_delays: RETRY_DELAYS.to_vec(),
            deadline: DEADLINE,
            no_retry_header: None,
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_matches_the_reference_vector() {
        let body = br#"{"id":"wh1","resource":"messages","event":"created","data":{"id":"m1","roomId":"r1"}}"#;
        assert_eq!(
            super::signature("somesupersecretphrase", body),
            "31d81b4abde07607fb2d0eb5600620fbbfa126be"
        );
    }

    #[test]
    fn the_signature_matches_the_sdk_notes_vector() {
        let body = br#"{"id":"Y2lzY29zcGFyazovL3VzL1dFQkhPT0svdGVzdA","name":"switchboard","resource":"messages","event":"created","data":{"id":"Y2lzY29zcGFyazovL3VzL01FU1NBR0UvdGVzdA","roomId":"Y2lzY29zcGFyazovL3VzL1JPT00vdGVzdA","roomType":"direct","personId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS90ZXN0","personEmail":"alice@example.com","created":"2024-01-01T00:00:00.000Z"}}"#;
        assert_eq!(
            super::signature("somesupersecretphrase", body),
            "b08175c05a7bc92b619077f28d1d2abf3956a10c"
        );
    }
}
