//! `/_sim/`: what the simulator offers that no vendor does — seeding an organisation, listing
//! simulated users, minting tokens, injecting faults, reading the request log, and settings.

use axum::extract::{Query, State, rejection::JsonRejection};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_sim_kit::{ControlError, FaultRule, LogKind, OrgSpec};

use crate::Simulator;

/// The largest organisation `/_sim/seed` will generate: large enough for every benchmark,
/// small enough that a typo cannot exhaust memory.
const MAX_PEOPLE: usize = 1_000_000;

pub fn router() -> Router<Simulator> {
    Router::new()
        .route("/platforms", get(platforms))
        .route("/seed", post(seed))
        .route("/users", get(users))
        .route("/groups", get(groups))
        .route("/token", post(token))
        .route("/faults", get(faults).put(set_faults).delete(clear_faults))
        .route("/log", get(log))
        .route("/settings", get(settings).put(set_settings))
        .route("/save", post(save))
        .route("/{platform}/{action}", post(platform_action))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn bad_json(rejection: JsonRejection) -> Response {
    error(StatusCode::BAD_REQUEST, rejection.body_text())
}

/// The keys of the platforms this simulator serves, so that a hub's demo connects those only.
async fn platforms(State(sim): State<Simulator>) -> Json<Vec<&'static str>> {
    Json(sim.platform_keys())
}

pub async fn index(State(sim): State<Simulator>) -> Html<String> {
    let keys = sim.platform_keys();
    let platforms: String = keys
        .iter()
        .map(|key| format!("<li><a href=\"/{key}/\">/{key}/</a>: sign in as a simulated user</li>"))
        .collect();
    let first = keys.first().copied().unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Switchboard platform simulator</title></head><body>\
         <h1>Switchboard platform simulator</h1><ul>{platforms}\
         <li><a href=\"/_sim/users?platform={first}\">/_sim/users</a>: simulated users</li>\
         <li><a href=\"/_sim/log\">/_sim/log</a>: requests and webhooks</li>\
         <li><a href=\"/healthz\">/healthz</a>: health</li></ul></body></html>"
    ))
}

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRequest {
    people: usize,
    seed: Option<u64>,
    domain: Option<String>,
}

async fn seed(
    State(sim): State<Simulator>,
    request: Result<Json<SeedRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return bad_json(rejection),
    };
    if request.people > MAX_PEOPLE {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("at most {MAX_PEOPLE} people"),
        );
    }
    let defaults = sim.org_spec();
    let spec = OrgSpec {
        people: request.people,
        seed: request.seed.unwrap_or(defaults.seed),
        domain: request.domain.unwrap_or(defaults.domain),
        ..defaults
    };
    let sim_for_seed = sim.clone();
    let organisation = match tokio::task::spawn_blocking(move || sim_for_seed.seed(&spec)).await {
        Ok(organisation) => organisation,
        Err(join) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("seeding failed: {join}"),
            );
        }
    };
    let per_platform: serde_json::Map<String, serde_json::Value> = sim
        .platforms
        .iter()
        .map(|p| (p.key().to_owned(), json!(p.users().len())))
        .collect();
    Json(json!({
        "people": organisation.people.len(),
        "teams": organisation.teams.values().map(Vec::len).sum::<usize>(),
        "users": per_platform,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct PlatformQuery {
    platform: Option<String>,
}

/// `answer` about the platform `?platform=` names, or the answer that says what to name.
fn about_queried_platform(
    sim: &Simulator,
    query: PlatformQuery,
    answer: impl FnOnce(&dyn switchboard_sim_kit::SimPlatform) -> Response,
) -> Response {
    let Some(key) = query.platform else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "say which platform: ?platform={}",
                sim.platform_keys().join("|")
            ),
        );
    };
    match sim.platform(&key) {
        Some(platform) => answer(platform.as_ref()),
        None => unknown_platform(sim, &key),
    }
}

async fn users(State(sim): State<Simulator>, Query(query): Query<PlatformQuery>) -> Response {
    about_queried_platform(&sim, query, |platform| {
        Json(platform.users()).into_response()
    })
}

async fn groups(State(sim): State<Simulator>, Query(query): Query<PlatformQuery>) -> Response {
    about_queried_platform(&sim, query, |platform| {
        Json(platform.groups()).into_response()
    })
}

fn unknown_platform(sim: &Simulator, key: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no simulated platform '{key}' (have: {})",
            sim.platform_keys().join(", ")
        ),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    platform: String,
    email: String,
}

async fn token(
    State(sim): State<Simulator>,
    request: Result<Json<TokenRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return bad_json(rejection),
    };
    let Some(platform) = sim.platform(&request.platform) else {
        return unknown_platform(&sim, &request.platform);
    };
    match platform.mint_token(&request.email) {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(reason) => error(StatusCode::NOT_FOUND, reason),
    }
}

async fn faults(State(sim): State<Simulator>) -> Json<Vec<FaultRule>> {
    Json(sim.context.faults.rules())
}

async fn set_faults(
    State(sim): State<Simulator>,
    rules: Result<Json<Vec<FaultRule>>, JsonRejection>,
) -> Response {
    let Json(rules) = match rules {
        Ok(rules) => rules,
        Err(rejection) => return bad_json(rejection),
    };
    for rule in &rules {
        if rule.route_prefix.is_none() && rule.channel.is_none() && rule.webhooks_of.is_none() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "each rule needs route_prefix, channel or webhooks_of",
            );
        }
        if rule
            .duration_secs
            .is_some_and(|secs| !secs.is_finite() || secs <= 0.0)
        {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "duration_secs must be a positive number of seconds",
            );
        }
        let rates = [rule.error_rate, rule.throttle_rate, rule.drop_rate];
        if rates.iter().any(|rate| !(0.0..=1.0).contains(rate)) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rates are shares between 0.0 and 1.0",
            );
        }
        if rule.error_status.is_some_and(|s| !(400..=599).contains(&s)) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "error_status must be an HTTP error status (400-599)",
            );
        }
    }
    sim.context.faults.set(rules);
    Json(sim.context.faults.rules()).into_response()
}

async fn clear_faults(State(sim): State<Simulator>) -> Json<Vec<FaultRule>> {
    sim.context.faults.set(Vec::new());
    Json(Vec::new())
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    since: u64,
    kind: Option<String>,
    limit: Option<usize>,
}

async fn log(State(sim): State<Simulator>, Query(query): Query<LogQuery>) -> Response {
    let kind = match query.kind.as_deref() {
        None => None,
        Some("request") => Some(LogKind::Request),
        Some("webhook") => Some(LogKind::Webhook),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("kind is request or webhook, not '{other}'"),
            );
        }
    };
    let limit = query.limit.unwrap_or(1_000).min(10_000);
    Json(sim.context.log.entries(query.since, kind, limit)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    rate_limits: Option<bool>,
    webhook_time_scale: Option<f64>,
}

fn current_settings(sim: &Simulator) -> serde_json::Value {
    json!({
        "rate_limits": sim.context.limits.enabled(),
        "webhook_time_scale": sim.context.webhooks.time_scale(),
    })
}

async fn settings(State(sim): State<Simulator>) -> Json<serde_json::Value> {
    Json(current_settings(&sim))
}

async fn set_settings(
    State(sim): State<Simulator>,
    changes: Result<Json<Settings>, JsonRejection>,
) -> Response {
    let Json(changes) = match changes {
        Ok(changes) => changes,
        Err(rejection) => return bad_json(rejection),
    };
    if let Some(scale) = changes.webhook_time_scale {
        if !(scale.is_finite() && scale >= 0.0) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "webhook_time_scale is a non-negative number (1 = the platforms' real pace)",
            );
        }
        sim.context.webhooks.set_time_scale(scale);
    }
    if let Some(enabled) = changes.rate_limits {
        sim.context.limits.set_enabled(enabled);
    }
    Json(current_settings(&sim)).into_response()
}

async fn save(State(sim): State<Simulator>) -> Response {
    if sim.state_file.is_none() {
        return error(
            StatusCode::CONFLICT,
            "the simulator was started without --state FILE",
        );
    }
    let sim_for_save = sim.clone();
    match tokio::task::spawn_blocking(move || sim_for_save.save()).await {
        Ok(Ok(())) => Json(json!({ "saved": true })).into_response(),
        Ok(Err(failure)) => error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string()),
        Err(join) => error(StatusCode::INTERNAL_SERVER_ERROR, join.to_string()),
    }
}

/// A platform's own simulator action, such as adding a Slack member (which fires `team_join`)
/// or sending a Graph lifecycle notification now.
async fn platform_action(
    State(sim): State<Simulator>,
    axum::extract::Path((key, action)): axum::extract::Path<(String, String)>,
    arguments: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let Json(arguments) = match arguments {
        Ok(arguments) => arguments,
        Err(rejection) => return bad_json(rejection),
    };
    let Some(platform) = sim.platform(&key) else {
        return unknown_platform(&sim, &key);
    };
    match platform.control(&action, arguments) {
        Ok(answer) => Json(answer).into_response(),
        Err(ControlError::UnknownAction(action)) => error(
            StatusCode::NOT_FOUND,
            format!(
                "{key} has no action '{action}' (has: {})",
                platform.control_actions().join(", ")
            ),
        ),
        Err(ControlError::Invalid(reason)) => error(StatusCode::UNPROCESSABLE_ENTITY, reason),
    }
}
