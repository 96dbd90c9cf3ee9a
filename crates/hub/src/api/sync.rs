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
use super::{ApiError, ApiPath, Caller};
use crate::AppState;
use crate::settings::{MAX_PROMPT_THROTTLE_HOURS, RestrictionError, SyncSettings};
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

fn platform(text: &str) -> Result<Platform, ApiError> {
    text.parse()
        .map_err(|e: switchboard_core::UnknownPlatform| {
            ApiError::bad_request("bad_platform", e.to_string())
        })
}

/// What a sync answers when it waits for the platform's pace in the background.
pub(crate) const QUEUED: &str = "queued";

/// The most people one bulk request may name.
const MAX_BULK: usize = 1_000;

#[derive(Clone, Copy)]
pub(crate) enum Action {
    Sync(Platform),
    Reset,
    Reprompt,
}

impl Action {
    const fn audit_name(self) -> &'static str {
        match self {
            Action::Sync(_) => "person.sync",
            Action::Reset => "person.reset",
            Action::Reprompt => "person.reprompt",
        }
    }

    /// What can become of one person in this action, in the order a summary counts them.
    pub(crate) const fn outcomes(self) -> &'static [&'static str] {
        match self {
            Action::Sync(_) => &[
                "synced",
                "already_synced",
                "prompted",
                "awaiting_consent",
                "queued",
                "failed",
            ],
            Action::Reset => &["reset", "failed"],
            Action::Reprompt => &["reprompted", "failed"],
        }
    }

    /// Which of [`Action::outcomes`] an answer of [`act`] is.
    pub(crate) fn outcome(self, answer: &Result<Value, ApiError>) -> &'static str {
        let Ok(body) = answer else { return "failed" };
        match self {
            Action::Sync(_) if body["already_synced"] == true => "already_synced",
            Action::Sync(_) if body["prompted"] == true => "prompted",
            Action::Sync(_) if body["consent_url"].is_string() => "awaiting_consent",
            Action::Sync(_) if body["status"] == QUEUED => "queued",
            Action::Sync(_) => "synced",
            Action::Reset => "reset",
            Action::Reprompt => "reprompted",
        }
    }
}

/// Runs one action on one person and audits its outcome, whatever it is (a refusal too);
/// answers what the action did. The console's actions come through here too.
pub(crate) async fn act(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
    action: Action,
) -> Result<Value, ApiError> {
    let (detail, answer) = match action {
        Action::Sync(platform) => {
            let pacing = sync::Pacing::Queue {
                source: caller.source.clone(),
            };
            let outcome = sync::sync(state, id, platform, &caller.actor, pacing).await;
            let detail = format!("{platform}: {}", sync::describe(&outcome));
            (detail, sync_answer(state, id, platform, outcome).await)
        }
        Action::Reset => match sync::reset(state, id, &caller.actor).await {
            Ok(reset) => {
                let names: Vec<&str> = reset.iter().map(|p| p.as_str()).collect();
                (
                    format!("reset: {}", names.join(", ")),
                    Ok(json!({ "id": id.to_string(), "reset": names })),
                )
            }
            Err(error) => (format!("refused: {error}"), Err(error.into())),
        },
        Action::Reprompt => match sync::reprompt(state, id, &caller.actor).await {
            Ok(prompted) => {
                let names: Vec<&str> = prompted.iter().map(|p| p.as_str()).collect();
                let answer = primary_of(state, id).await.map(|prompted_on| {
                    json!({
                        "id": id.to_string(),
                        "reprompted": names,
                        "prompted_on": prompted_on,
                    })
                });
                (format!("prompted for: {}", names.join(", ")), answer)
            }
            Err(error) => (format!("refused: {error}"), Err(error.into())),
        },
    };
    audit(state, caller, id, action, &detail).await?;
    answer
}

/// What a sync answers: where it got to, or why it failed (the platform refused).
async fn sync_answer(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    outcome: Result<SyncOutcome, sync::SyncError>,
) -> Result<Value, ApiError> {
    let outcome = outcome?;
    if let SyncOutcome::Failed { reason } = outcome {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "sync_failed",
            format!("{}: {reason}", platform.display_name()),
        ));
    }
    if let SyncOutcome::Queued { wait, pace } = &outcome {
        return Ok(json!({
            "id": id.to_string(),
            "platform": platform.as_str(),
            "status": QUEUED,
            "estimated_wait_seconds": sync::seconds(*wait),
            "pace": pace,
        }));
    }
    Ok(json!({
        "id": id.to_string(),
        "platform": platform.as_str(),
        "status": outcome.status().as_str(),
        "consent_url": match &outcome {
            SyncOutcome::AwaitingConsent { url } => Some(url.as_str()),
            _ => None,
        },
        "prompted": outcome == SyncOutcome::Prompted,
        "prompted_on": if outcome == SyncOutcome::Prompted {
            primary_of(state, id).await?
        } else {
            None
        },
        "already_synced": outcome == SyncOutcome::AlreadySynced,
    }))
}

/// Where a person's prompts go: their primary platform.
async fn primary_of(state: &AppState, id: PersonId) -> Result<Option<&'static str>, ApiError> {
    Ok(state
        .store
        .person(id)
        .await?
        .and_then(|person| person.primary)
        .map(|primary| primary.platform.as_str()))
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
    action: Action,
    detail: &str,
) -> Result<(), ApiError> {
    state
        .store
        .audit(
            &caller.actor,
            action.audit_name(),
            &id.to_string(),
            detail,
            &caller.source,
        )
        .await?;
    Ok(())
}

async fn sync_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, target) = (person_id(&id)?, platform(&name)?);
    let body = act(&state, &caller, id, Action::Sync(target)).await?;
    // Accepted, not done: the sync runs when the platform's pace allows.
    let status = if body["status"] == QUEUED {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)))
}

async fn reset_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, person_id(&id)?, Action::Reset)
        .await
        .map(Json)
}

async fn reprompt_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, person_id(&id)?, Action::Reprompt)
        .await
        .map(Json)
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

/// Removes a person and audits it (for the API and the console).
pub(crate) async fn remove_person(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
) -> Result<(), ApiError> {
    sync::remove(state, id, &caller.actor).await?;
    state
        .store
        .audit(
            &caller.actor,
            "person.remove",
            &id.to_string(),
            "reset and deleted",
            &caller.source,
        )
        .await?;
    Ok(())
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
        ("sync", Some(target)) => Action::Sync(platform(target)?),
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
        let outcome = match person_id(text) {
            Ok(id) => act(&state, &caller, id, action).await,
            Err(error) => Err(error),
        };
        let counted = &mut summary[action.outcome(&outcome)];
        *counted = json!(counted.as_u64().unwrap_or(0) + 1);
        results.push(match outcome {
            Ok(mut body) => {
                body["ok"] = json!(true);
                body
            }
            Err(error) => json!({
                "id": text,
                "ok": false,
                "error": { "code": error.code, "message": error.message },
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

fn settings_json(settings: &SyncSettings) -> Value {
    json!({
        "auto_sync": settings.auto_sync,
        "auto_prompt": settings.auto_prompt,
        "prompt_throttle_hours": settings.prompt_throttle_hours,
        "prompt_text": settings.prompt_text,
        "restricted_users": settings.restricted_users,
    })
}

async fn settings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(settings_json(
        &SyncSettings::load(&state.store).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsChange {
    pub(crate) auto_sync: Option<bool>,
    pub(crate) auto_prompt: Option<bool>,
    pub(crate) prompt_throttle_hours: Option<i64>,
    pub(crate) prompt_text: Option<String>,
    /// Replaces the list of restricted people, by e-mail address.
    pub(crate) restricted_users: Option<Vec<String>>,
}

async fn update_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<SettingsChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(change) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let settings = change_settings(&state, &caller, change).await?;
    Ok(Json(settings_json(&settings)))
}

/// Checks and saves a change of the sync settings; audited (for the API and the console).
pub(crate) async fn change_settings(
    state: &AppState,
    caller: &Caller,
    change: SettingsChange,
) -> Result<SyncSettings, ApiError> {
    let mut settings = SyncSettings::load(&state.store).await?;
    if let Some(hours) = change.prompt_throttle_hours {
        if !(1..=MAX_PROMPT_THROTTLE_HOURS).contains(&hours) {
            return Err(ApiError::bad_request(
                "bad_setting",
                format!("prompt_throttle_hours is between 1 and {MAX_PROMPT_THROTTLE_HOURS}"),
            ));
        }
        settings.prompt_throttle_hours = hours;
    }
    if let Some(text) = change.prompt_text {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 1_000 {
            return Err(ApiError::bad_request(
                "bad_setting",
                "prompt_text is between 1 and 1,000 characters",
            ));
        }
        settings.prompt_text = text.to_owned();
    }
    let restricted = match &change.restricted_users {
        Some(emails) => Some(
            crate::settings::people_by_email(&state.store, emails)
                .await
                .map_err(|error| match error {
                    RestrictionError::Store(error) => ApiError::from(error),
                    other => ApiError::bad_request("bad_setting", other.to_string()),
                })?,
        ),
        None => None,
    };
    settings.auto_sync = change.auto_sync.unwrap_or(settings.auto_sync);
    settings.auto_prompt = change.auto_prompt.unwrap_or(settings.auto_prompt);
    settings.save(&state.store).await?;
    if let Some(people) = restricted {
        let ids: Vec<PersonId> = people.iter().map(|(id, _)| *id).collect();
        state.store.set_restricted_people(&ids).await?;
        settings.restricted_users = people.into_iter().map(|(_, email)| email).collect();
    }
    let body = settings_json(&settings);
    state
        .store
        .audit(
            &caller.actor,
            "settings.update",
            "sync",
            &body.to_string(),
            &caller.source,
        )
        .await?;
    Ok(settings)
}
