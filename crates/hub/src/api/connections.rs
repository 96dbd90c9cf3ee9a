//! Connections: list them, choose teams to import, start imports and follow their progress.

use axum::extract::Query;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ImportScope, Noun, PlatformRules, RepresentationRule, Timestamp};
use switchboard_platform::Removal;
use switchboard_store::{ConnectionHealth, ImportRun, ImportStatus};

use super::{ApiError, ApiPath};
use crate::AppState;
use crate::admin::connections::{
    begin_connect, choose_teams, connection_id, context_and_platform, disconnect as disconnected,
    import,
};
use crate::admin::{Caller, platform_named};
use crate::disconnect::Outcome;
use crate::webhooks::WebhookTally;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/platforms", get(platforms))
        .route("/connections", get(list).post(connect))
        .route("/connections/{id}", delete(disconnect))
        .route("/connections/{id}/teams", get(teams).put(select_teams))
        .route("/connections/{id}/import", post(start_import))
        .route("/connections/{id}/imports", get(imports))
        .route("/imports/{id}", get(import_run))
}

pub fn run_json(run: &ImportRun) -> Value {
    json!({
        "id": run.id,
        "connection_id": run.connection_id.to_string(),
        "status": run.status.as_str(),
        "pages": run.pages,
        "seen": run.seen,
        "added": run.added,
        "updated": run.updated,
        "deactivated": run.deactivated,
        "skipped": run.skipped,
        "error": run.error,
        "started_at": run.started_at.unix_millis(),
        "finished_at": run.finished_at.map(|t| t.unix_millis()),
    })
}

/// What the token refresher last saw of a connection's credentials, and what the hub saw of
/// its webhooks since it started. `ok` is false while the latest webhooks are refused, with
/// the refusal as `last_error`; otherwise the credentials' check, null until the first check
/// after they were stored.
fn health_json(
    health: Option<&ConnectionHealth>,
    expires_at: Option<Timestamp>,
    webhooks: &WebhookTally,
) -> Value {
    let (ok, last_error) = if webhooks.failing() {
        (
            Some(false),
            webhooks
                .last_refusal
                .as_ref()
                .map(|reason| format!("webhooks refused: {reason}")),
        )
    } else {
        (
            health.map(|h| h.ok),
            health.and_then(|h| h.last_error.clone()),
        )
    };
    json!({
        "ok": ok,
        "identity": health.and_then(|h| h.identity.clone()),
        "scopes": health.map(|h| h.scopes.clone()).unwrap_or_default(),
        "expires_at": expires_at.map(Timestamp::unix_millis),
        "last_checked_at": health.map(|h| h.last_checked_at.unix_millis()),
        "last_error": last_error,
        "webhooks": {
            "accepted": webhooks.accepted,
            "refused": webhooks.refused,
            "refused_since_accepted": webhooks.refused_since_accepted,
            "last_refused_at": webhooks.last_refused_at.map(Timestamp::unix_millis),
            "last_refusal": webhooks.last_refusal,
        },
    })
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut connections = Vec::new();
    for (connection, disconnected_at) in state.store.disconnected_connections().await? {
        connections.push(json!({
            "id": connection.id.to_string(),
            "platform": connection.platform.as_str(),
            "tenant": connection.tenant.as_str(),
            "display_name": connection.display_name,
            "status": "disconnected",
            "disconnected_at": disconnected_at.unix_millis(),
        }));
    }
    for connection in state.store.connections().await? {
        let latest = state.store.import_runs(connection.id, 1).await?;
        let platform = state.platforms.get(connection.platform);
        connections.push(json!({
            "id": connection.id.to_string(),
            "platform": connection.platform.as_str(),
            "tenant": connection.tenant.as_str(),
            "display_name": connection.display_name,
            "status": "connected",
            "module_configured": platform.is_some(),
            "import_scope": platform.map(|p| p.rules().import.as_str()),
            "selected_teams": state.store.selected_teams(connection.id).await?
                .into_iter()
                .map(|(id, name)| json!({ "id": id, "name": name }))
                .collect::<Vec<_>>(),
            "last_import": latest.first().map(run_json),
            "health": health_json(
                state.store.connection_health(connection.id).await?.as_ref(),
                state.store.credentials_expire_at(connection.id).await?,
                &state.webhook_health.tally(connection.id),
            ),
        }));
    }
    Ok(Json(json!({ "connections": connections })))
}

/// What a module declares about its platform, as `listPlatforms` shows it.
fn rules_json(rules: &PlatformRules, pace: Option<&str>, removal: Removal) -> Value {
    let noun = |noun: Noun| json!({ "one": noun.one, "many": noun.many });
    let representation = |rule: &RepresentationRule| {
        json!({
            "kind": rule.kind.as_str(),
            "called": noun(rule.called),
            "authorised_by": rule.authorised_by.as_str(),
            "abilities": rule.abilities.named().into_iter()
                .map(|(name, able)| (name.to_owned(), Value::Bool(able)))
                .collect::<serde_json::Map<_, _>>(),
        })
    };
    json!({
        "import_scope": rules.import.as_str(),
        "team": match rules.import {
            ImportScope::SelectedTeams { team } => noun(team),
            ImportScope::AllUsers => Value::Null,
        },
        "connection": noun(rules.words.connection),
        "with_account": representation(&rules.with_account),
        "without_account": representation(&rules.without_account),
        "fallback": rules.fallback.as_ref().map_or(Value::Null, representation),
        "provisioning_pace": pace,
        "removal": removal.as_str(),
    })
}

async fn platforms(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "platforms": state.platforms.platforms().filter_map(|platform| {
            let module = state.platforms.get(platform)?;
            Some(json!({
                "platform": platform.as_str(),
                "name": platform.display_name(),
                "connect_fields": module.connect_fields().iter().map(|field| json!({
                    "name": field.name,
                    "label": field.label,
                    "help": field.help,
                    "secret": field.secret,
                })).collect::<Vec<_>>(),
                "rules": rules_json(
                    &module.rules(),
                    module.provisioning_rate().map(|rate| rate.allows),
                    module.removal(),
                ),
            }))
        }).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectRequest {
    platform: String,
    #[serde(default)]
    inputs: std::collections::BTreeMap<String, String>,
}

/// Starts connecting a platform: answers where to send the admin's browser, or the connection
/// when the platform needed no browser step.
async fn connect(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<ConnectRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(request) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let platform = platform_named(&request.platform)?;
    match begin_connect(&state, &caller, platform, request.inputs).await? {
        crate::connect::Started::Redirect { url } => {
            Ok((StatusCode::ACCEPTED, Json(json!({ "authorize_url": url }))))
        }
        crate::connect::Started::Connected { connection } => Ok((
            StatusCode::CREATED,
            Json(json!({ "connection_id": connection.id.to_string() })),
        )),
    }
}

async fn teams(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (context, platform) = context_and_platform(&state, connection_id(&id)?).await?;
    let teams = platform.list_teams(&context).await.map_err(|error| {
        ApiError::new(StatusCode::BAD_GATEWAY, "platform_error", error.to_string())
    })?;
    let selected = state.store.selected_teams(context.connection.id).await?;
    Ok(Json(json!({
        "teams": teams.iter().map(|team| json!({
            "id": team.id,
            "name": team.name,
            "member_count": team.member_count,
            "selected": selected.iter().any(|(id, _)| id == &team.id),
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamSelection {
    teams: Vec<String>,
}

async fn select_teams(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<TeamSelection>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(selection) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let chosen = choose_teams(&state, &caller, connection_id(&id)?, &selection.teams).await?;
    Ok(Json(json!({
        "selected": chosen.teams.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect::<Vec<_>>(),
    })))
}

async fn start_import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run = import(&state, &caller, connection_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(run_json(&run))))
}

async fn imports(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = connection_id(&id)?;
    if state.store.connection(id).await?.is_none() {
        return Err(ApiError::not_found(format!("no connection with id {id}")));
    }
    let runs = state.store.import_runs(id, 20).await?;
    Ok(Json(
        json!({ "imports": runs.iter().map(run_json).collect::<Vec<_>>() }),
    ))
}

async fn import_run(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state
        .store
        .import_run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no import with id {id}")))?;
    let mut body = run_json(&run);
    body["running"] = json!(run.status == ImportStatus::Running);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectQuery {
    #[serde(default)]
    remove_representations: bool,
}

async fn disconnect(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    query: Result<Query<DisconnectQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::bad_request("bad_query", r.body_text()))?;
    let outcome = disconnected(
        &state,
        &caller,
        connection_id(&id)?,
        query.remove_representations,
    )
    .await?;
    Ok(Json(outcome_json(&outcome)))
}

pub(crate) fn outcome_json(outcome: &Outcome) -> Value {
    json!({
        "removed": outcome.removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "not_removed": outcome.not_removed.iter().map(|(person, error)| json!({
            "person_id": person.to_string(),
            "error": error,
        })).collect::<Vec<_>>(),
        "unsubscribe_error": outcome.unsubscribe_error,
        "dead_lettered": outcome.dead_lettered,
        "representations_failed": outcome.failed,
    })
}
