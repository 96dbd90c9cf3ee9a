//! Sync actions, one person at a time and in bulk: sync on a platform, reset, re-prompt, remove;
//! the bots waiting for an admin's approval; and the sync settings. Every change is audited.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{PersonId, Platform};

use super::people::person_id;
use super::{ApiError, ApiPath};
use crate::AppState;
use crate::admin::people::remove_person;
use crate::admin::settings::{SettingsChange, change_settings};
use crate::admin::sync::{Acted, Action, act};
use crate::admin::{Caller, platform_named};
use crate::settings::SyncSettings;
use crate::sync::{self, SyncOutcome};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/people/{id}/sync/{platform}", post(sync_one))
        .route("/people/{id}/reset", post(reset_one))
        .route("/people/{id}/reprompt", post(reprompt_one))
        .route("/people/bulk/{action}", post(bulk))
        .route("/consents", get(consents))
        .route("/settings", get(settings).put(update_settings))
}

/// What a sync answers when it waits for the platform's pace in the background.
const QUEUED: &str = "queued";

/// The most people one bulk request may name.
const MAX_BULK: usize = 1_000;

/// What an action did, as the API answers it.
fn acted_json(id: PersonId, acted: &Acted) -> Value {
    match acted {
        Acted::Synced {
            platform,
            outcome: SyncOutcome::Queued { wait, pace },
            ..
        } => json!({
            "id": id.to_string(),
            "platform": platform.as_str(),
            "status": QUEUED,
            "estimated_wait_seconds": sync::seconds(*wait),
            "pace": pace,
        }),
        Acted::Synced {
            platform,
            outcome,
            prompted_on,
        } => json!({
            "id": id.to_string(),
            "platform": platform.as_str(),
            "status": outcome.status().as_str(),
            "consent_url": match outcome {
                SyncOutcome::AwaitingConsent { url } => Some(url.as_str()),
                _ => None,
            },
            "prompted": *outcome == SyncOutcome::Prompted,
            "prompted_on": prompted_on.map(Platform::as_str),
            "already_synced": *outcome == SyncOutcome::AlreadySynced,
        }),
        Acted::Reset { platforms } => json!({
            "id": id.to_string(),
            "reset": platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        }),
        Acted::Reprompted {
            platforms,
            prompted_on,
        } => json!({
            "id": id.to_string(),
            "reprompted": platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "prompted_on": prompted_on.map(Platform::as_str),
        }),
    }
}

async fn sync_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, target) = (person_id(&id)?, platform_named(&name)?);
    let acted = act(&state, &caller, id, Action::Sync(target)).await?;
    // Accepted, not done: the sync runs when the platform's pace allows.
    let status = if acted.queued().is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(acted_json(id, &acted))))
}

async fn reset_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = person_id(&id)?;
    let acted = act(&state, &caller, id, Action::Reset).await?;
    Ok(Json(acted_json(id, &acted)))
}

async fn reprompt_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = person_id(&id)?;
    let acted = act(&state, &caller, id, Action::Reprompt).await?;
    Ok(Json(acted_json(id, &acted)))
}

/// `DELETE /people/{id}`: breaks every sync, then deletes the person from the hub.
pub async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    remove_person(&state, &caller, person_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    ids: Vec<String>,
    platform: Option<String>,
}

/// `POST /people/bulk/{sync|reset|reprompt}`: the action for each person in turn, with each
/// person's result and how many came to each outcome; one person's failure does not stop the
/// others.
async fn bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    body: Result<Json<BulkRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    if request.ids.len() > MAX_BULK {
        return Err(ApiError::bad_request(
            "bad_body",
            format!("at most {MAX_BULK} people per request"),
        ));
    }
    let action = match (name.as_str(), request.platform.as_deref()) {
        ("sync", Some(target)) => Action::Sync(platform_named(target)?),
        ("sync", None) => {
            return Err(ApiError::bad_request(
                "bad_body",
                "name the platform to sync the people on",
            ));
        }
        ("reset", None) => Action::Reset,
        ("reprompt", None) => Action::Reprompt,
        ("reset" | "reprompt", Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_body",
                format!("{name} acts on every platform; it takes no platform"),
            ));
        }
        _ => {
            return Err(ApiError::not_found(
                "bulk actions are sync, reset and reprompt",
            ));
        }
    };
    let mut results = Vec::with_capacity(request.ids.len());
    let mut summary: serde_json::Map<String, Value> = action
        .outcomes()
        .iter()
        .map(|name| ((*name).to_owned(), json!(0)))
        .collect();
    for text in &request.ids {
        let outcome = match crate::admin::people::person_id(text) {
            Ok(id) => act(&state, &caller, id, action)
                .await
                .map(|acted| (id, acted)),
            Err(refused) => Err(refused),
        };
        let answer = outcome
            .as_ref()
            .map(|(_, acted)| acted.clone())
            .map_err(Clone::clone);
        let counted = &mut summary[action.outcome(&answer)];
        *counted = json!(counted.as_u64().unwrap_or(0) + 1);
        results.push(match outcome {
            Ok((id, acted)) => {
                let mut body = acted_json(id, &acted);
                body["ok"] = json!(true);
                body
            }
            Err(refused) => json!({
                "id": text,
                "ok": false,
                "error": { "code": refused.code, "message": refused.message },
            }),
        });
    }
    Ok(Json(json!({ "results": results, "summary": summary })))
}

/// The bots waiting for a workspace admin's approval, oldest first: the admin opens each `url`
/// in turn, signed in to the platform as an admin.
async fn consents(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut pending = Vec::new();
    for consent in state.store.pending_consents().await? {
        let name = state
            .store
            .person(consent.person_id)
            .await?
            .map(|p| p.display_name);
        pending.push(json!({
            "person_id": consent.person_id.to_string(),
            "display_name": name,
            "platform": consent.platform.as_str(),
            "url": consent.url,
            "expires_at": consent.expires_at.unix_millis(),
        }));
    }
    Ok(Json(json!({ "consents": pending })))
}

async fn settings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(SyncSettings::load(&state.store).await?.to_json()))
}

async fn update_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<SettingsChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(change) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let settings = change_settings(&state, &caller, change).await?;
    Ok(Json(settings.to_json()))
}
