//! The Admin SDK Reports API's admin activities at `/google/admin/reports/v1/…` (and
//! `/google/admin/reports_v1/channels/stop`): what an
//! administrator changed in the domain (group members added and removed, users suspended and
//! deleted), listed by `activities.list` and pushed to `activities.watch` notification
//! channels — the only push Google offers for group membership (the Directory API's own
//! `watch` covers users alone).
//!
//! - activities.list: <https://developers.google.com/workspace/admin/reports/reference/rest/v1/activities/list>
//! - activities.watch and push: <https://developers.google.com/workspace/admin/reports/v1/guides/push>

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_sim_kit::webhook::Delivery;

use crate::directory::{admin, page};
use crate::keys::random_id;
use crate::state::{CUSTOMER_ID, State};
use crate::wire::{
    Answer, GoogleError, form_value, http_date, now_micros, ok, parse_rfc3339, rfc3339,
};
use crate::{GoogleSim, KEY};

const REPORTS_READ: [&str; 1] = ["admin.reports.audit.readonly"];
/// Google's default lifetime of a Reports channel, and its longest.
const CHANNEL_LIFETIME_MS: u64 = 6 * 3600 * 1000;

/// One admin activity: an event the Admin console or the Directory API caused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    pub micros: u64,
    pub unique: String,
    pub actor: String,
    /// `GROUP_SETTINGS`, `USER_SETTINGS`.
    pub kind: String,
    /// `ADD_GROUP_MEMBER`, `REMOVE_GROUP_MEMBER`, `SUSPEND_USER`, `DELETE_USER`.
    pub name: String,
    pub parameters: Vec<(String, String)>,
}

/// A notification channel opened by `activities.watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub resource_id: String,
    pub address: String,
    pub token: Option<String>,
    pub expires_ms: u64,
    pub event_name: Option<String>,
    pub messages: u64,
}

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route(
            "/google/admin/reports/v1/activity/users/{user}/applications/{application}",
            get(list),
        )
        .route(
            "/google/admin/reports/v1/activity/users/{user}/applications/{application}/watch",
            post(watch),
        )
        // Google's discovery document puts it there, beside the versioned paths.
        .route("/google/admin/reports_v1/channels/stop", post(stop))
}

fn activity_json(activity: &Activity) -> Value {
    json!({
        "kind": "admin#reports#activity",
        "id": {
            "time": rfc3339(activity.micros),
            "uniqueQualifier": activity.unique,
            "applicationName": "admin",
            "customerId": CUSTOMER_ID,
        },
        "etag": format!("\"{}\"", activity.unique),
        "actor": {"callerType": "USER", "email": activity.actor},
        "events": [{
            "type": activity.kind,
            "name": activity.name,
            "parameters": activity.parameters.iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
        }],
    })
}

fn admin_application(application: &str) -> Result<(), GoogleError> {
    if application == "admin" {
        Ok(())
    } else {
        Err(GoogleError::invalid(format!(
            "Invalid value '{application}': only the admin application's activities are simulated"
        ))
        .reason("invalid"))
    }
}

/// `activities.list` for the admin application: newest first, filtered by `eventName` and
/// `startTime`, `maxResults` up to 1,000.
async fn list(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((_user, application)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    admin(&sim, &state, &headers, &REPORTS_READ)?;
    admin_application(&application)?;
    let since = match form_value(&params, "startTime") {
        Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
            GoogleError::invalid(format!("Invalid value '{text}' for startTime")).reason("invalid")
        })?),
        None => None,
    };
    let event_name = form_value(&params, "eventName");
    let items: Vec<Value> = state
        .activities
        .iter()
        .rev()
        .filter(|activity| since.is_none_or(|since| activity.micros >= since))
        .filter(|activity| event_name.is_none_or(|name| activity.name == name))
        .map(activity_json)
        .collect();
    let (items, next) = page(items, &params, 1000)?;
    let mut answer =
        json!({"kind": "admin#reports#activities", "etag": "\"activities\"", "items": items});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    ok(answer)
}

/// `activities.watch`: opens a channel that is sent a `sync` message now and every new
/// activity (of `eventName`, if given) until it expires or is stopped.
async fn watch(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((_user, application)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        GoogleError::invalid(format!("Invalid JSON payload received. {e}")).reason("parseError")
    })?;
    let channel = {
        let mut state = sim.lock();
        admin(&sim, &state, &headers, &REPORTS_READ)?;
        admin_application(&application)?;
        let text = |name: &str| request[name].as_str().map(str::to_owned);
        let (Some(id), Some(address)) = (text("id"), text("address")) else {
            return Err(
                GoogleError::invalid("A channel needs an id and an address.").reason("required"),
            );
        };
        if text("type").as_deref() != Some("web_hook") {
            return Err(
                GoogleError::invalid("The channel type must be web_hook.").reason("invalid")
            );
        }
        if !address.starts_with("https://") && !address.starts_with("http://") {
            return Err(
                GoogleError::invalid(format!("Invalid address {address}")).reason("invalid")
            );
        }
        if state.report_channels.iter().any(|channel| channel.id == id) {
            return Err(GoogleError::conflict(format!("Channel id {id} not unique"))
                .reason("channelIdNotUnique"));
        }
        let now_ms = now_micros() / 1000;
        let requested = text("expiration").and_then(|ms| ms.parse::<u64>().ok());
        let channel = Channel {
            id,
            resource_id: random_id(27),
            address,
            token: text("token"),
            expires_ms: requested
                .unwrap_or(u64::MAX)
                .min(now_ms + CHANNEL_LIFETIME_MS),
            event_name: form_value(&params, "eventName").map(str::to_owned),
            messages: 1,
        };
        state.report_channels.push(channel.clone());
        channel
    };
    push(&sim, &channel, "sync", None);
    ok(json!({
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": resource_uri(&sim, &application),
        "token": channel.token,
        "expiration": channel.expires_ms.to_string(),
    }))
}

fn resource_uri(sim: &GoogleSim, application: &str) -> String {
    format!(
        "{}/google/admin/reports/v1/activity/users/all/applications/{application}?alt=json",
        sim.base()
    )
}

/// `channels.stop`: the channel named by its id and resource id sends nothing more.
async fn stop(Shared(sim): Shared<Arc<GoogleSim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        GoogleError::invalid(format!("Invalid JSON payload received. {e}")).reason("parseError")
    })?;
    let mut state = sim.lock();
    admin(&sim, &state, &headers, &REPORTS_READ)?;
    let before = state.report_channels.len();
    state.report_channels.retain(|channel| {
        Some(channel.id.as_str()) != request["id"].as_str()
            || Some(channel.resource_id.as_str()) != request["resourceId"].as_str()
    });
    if state.report_channels.len() == before {
        return Err(GoogleError::not_found("Channel not found").reason("notFound"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Records an admin activity and pushes it to every live channel that wants it.
pub fn record(
    sim: &GoogleSim,
    state: &mut State,
    kind: &str,
    name: &str,
    parameters: Vec<(String, String)>,
) {
    let actor = state
        .users
        .iter()
        .find(|user| user.admin && !user.deleted)
        .map(|user| user.email.clone())
        .unwrap_or_default();
    let activity = Activity {
        micros: now_micros(),
        unique: format!("{}", rand::random::<u64>() >> 1),
        actor,
        kind: kind.to_owned(),
        name: name.to_owned(),
        parameters,
    };
    let now_ms = activity.micros / 1000;
    state
        .report_channels
        .retain(|channel| channel.expires_ms > now_ms);
    let mut sends = Vec::new();
    for channel in &mut state.report_channels {
        if channel
            .event_name
            .as_deref()
            .is_none_or(|wanted| wanted == name)
        {
            channel.messages += 1;
            sends.push(channel.clone());
        }
    }
    state.activities.push(activity.clone());
    for channel in sends {
        push(sim, &channel, name, Some(&activity));
    }
}

/// One push message, as Google sends them: the channel in `X-Goog-*` headers, the activity
/// as the body (none for `sync`).
fn push(sim: &GoogleSim, channel: &Channel, state: &str, activity: Option<&Activity>) {
    let mut headers = vec![
        ("x-goog-channel-id".to_owned(), channel.id.clone()),
        (
            "x-goog-channel-expiration".to_owned(),
            http_date(channel.expires_ms * 1000),
        ),
        ("x-goog-resource-id".to_owned(), channel.resource_id.clone()),
        ("x-goog-resource-uri".to_owned(), resource_uri(sim, "admin")),
        ("x-goog-resource-state".to_owned(), state.to_owned()),
        (
            "x-goog-message-number".to_owned(),
            channel.messages.to_string(),
        ),
    ];
    if let Some(token) = &channel.token {
        headers.push(("x-goog-channel-token".to_owned(), token.clone()));
    }
    let delivery = Delivery {
        platform: KEY,
        url: channel.address.clone(),
        content_type: "application/json; charset=UTF-8",
        body: activity
            .map(|activity| activity_json(activity).to_string().into_bytes())
            .unwrap_or_default(),
        headers: Box::new(move |_, _| headers.clone()),
        // Google retries a failed push with exponential backoff.
        retry_delays: vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4),
            Duration::from_secs(8),
        ],
        deadline: Duration::from_secs(10),
        no_retry_header: None,
    };
    let webhooks = sim.context.webhooks.clone();
    tokio::spawn(async move {
        webhooks.deliver(delivery).await;
    });
}
