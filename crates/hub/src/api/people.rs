//! People: the filtered list, one person in full, and choosing a primary platform.

use axum::extract::{Extension, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{
    ChosenBy, Person, PersonId, Platform, Representation, RepresentationKind, SyncStatusCode,
};
use switchboard_store::{PeopleQuery, PrimaryFilter};

use super::{ApiError, ApiPath};
use crate::AppState;
use crate::admin::people::{
    choose_primary, choose_primary_of_team, decode_cursor, encode_cursor, search,
};
use crate::admin::{Caller, platform_named};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/people", get(list))
        .route("/people/{id}", get(one).delete(super::sync::remove))
        .route("/people/{id}/primary", put(set_primary))
        .route("/people/primary", post(set_primary_by_rule))
}

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    primary: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    team: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub(super) fn person_id(text: &str) -> Result<PersonId, ApiError> {
    Ok(crate::admin::people::person_id(text)?)
}

fn platform(text: &str) -> Result<Platform, ApiError> {
    text.parse()
        .map_err(|e: switchboard_core::UnknownPlatform| {
            ApiError::bad_request("bad_filter", e.to_string())
        })
}

/// A platform the hub has a connection on: no one has another as their primary, so a filter
/// naming one is as wrong as one naming no platform at all.
async fn connected(state: &AppState, platform: Platform) -> Result<Platform, ApiError> {
    let mut names: Vec<&str> = vec!["unchosen"];
    for connection in state.store.connections().await? {
        if connection.platform == platform {
            return Ok(platform);
        }
        if !names.contains(&connection.platform.as_str()) {
            names.push(connection.platform.as_str());
        }
    }
    Err(ApiError::bad_request(
        "bad_filter",
        format!(
            "the hub has no {} connection (primary is one of: {})",
            platform.as_str(),
            names.join(", ")
        ),
    ))
}

fn representation_json(representation: &Representation) -> Value {
    json!({
        "platform": representation.platform.as_str(),
        "type": representation.kind.as_str(),
        "status": representation.status.code().as_str(),
        "failure_reason": representation.status.failure_reason(),
        "account_id": representation.account_id.map(|id| id.to_string()),
        "external_account": representation.external_account.as_ref().map(|a| a.as_str()),
    })
}

fn person_json(person: &Person) -> Value {
    json!({
        "id": person.id.to_string(),
        "display_name": person.display_name,
        "email": person.email.as_str(),
        "primary": person.primary.map(|p| p.platform.as_str()),
        "primary_chosen_by": person.primary.map(|p| p.chosen_by.as_str()),
    })
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::bad_request("bad_filter", r.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_filter",
            format!("limit is between 1 and {MAX_PAGE}"),
        ));
    }
    let filter = PeopleQuery {
        primary: match query.primary.as_deref() {
            None => None,
            Some("unchosen") => Some(PrimaryFilter::Unchosen),
            Some(name) => Some(PrimaryFilter::Is(connected(&state, platform(name)?).await?)),
        },
        status: query
            .status
            .as_deref()
            .map(SyncStatusCode::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("bad_filter", e.to_string()))?,
        kind: query
            .kind
            .as_deref()
            .map(RepresentationKind::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("bad_filter", e.to_string()))?,
        search: query.q.map(search).transpose()?,
        team: match query.team {
            Some(team) if team.trim().is_empty() => {
                return Err(ApiError::bad_request("bad_filter", "team is a team's id"));
            }
            team => team,
        },
        after: query.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let page = state.store.list_people(&filter).await?;
    Ok(Json(json!({
        "people": page.people.iter().map(|summary| {
            let mut person = person_json(&summary.person);
            person["platforms"] = json!(summary.platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>());
            person["choose_primary"] = json!(summary.platforms.len() > 1
                && summary.person.primary.is_none_or(|p| p.chosen_by == ChosenBy::Automatic));
            person["representations"] = json!(summary.representations.iter().map(representation_json).collect::<Vec<_>>());
            person
        }).collect::<Vec<_>>(),
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}

async fn one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = person_id(&id)?;
    let person = state
        .store
        .person(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no person with id {id}")))?;
    let accounts = state.store.accounts_of_person(id).await?;
    let mut representations = Vec::new();
    for representation in state.store.representations_of(id).await? {
        let history = state.store.transitions(id, representation.platform).await?;
        let mut body = representation_json(&representation);
        body["prompts_sent"] = json!(
            state
                .store
                .prompts_sent(id, representation.platform)
                .await?
        );
        body["history"] = json!(
            history
                .iter()
                .map(|t| json!({
                    "from": t.from.as_str(),
                    "to": t.to.code().as_str(),
                    "failure_reason": t.to.failure_reason(),
                    "cause": t.cause,
                    "at": t.at.unix_millis(),
                }))
                .collect::<Vec<_>>()
        );
        representations.push(body);
    }
    let mut body = person_json(&person);
    body["accounts"] = json!(
        accounts
            .iter()
            .map(|a| json!({
                "id": a.id.to_string(),
                "platform": a.platform.as_str(),
                "connection_id": a.connection_id.to_string(),
                "external_id": a.external_id.as_str(),
                "display_name": a.display_name,
                "email": a.email.as_ref().map(|e| e.as_str()),
                "kind": a.kind.as_str(),
                "active": a.active,
            }))
            .collect::<Vec<_>>()
    );
    body["representations"] = json!(representations);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrimaryChoice {
    platform: String,
}

async fn set_primary(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<PrimaryChoice>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(choice) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let person = choose_primary(
        &state,
        &caller,
        person_id(&id)?,
        platform(&choice.platform)?,
    )
    .await?;
    Ok(Json(person_json(&person)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrimaryRuleRequest {
    rule: PrimaryRule,
}

/// "Members of team X chat from platform P".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrimaryRule {
    team: String,
    platform: String,
}

/// Chooses the primary platform of a team's members in one go (see
/// [`switchboard_store::Store::set_primary_of_team_members`]); answers how many changed.
async fn set_primary_by_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<PrimaryRuleRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(PrimaryRuleRequest { rule }) =
        body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let chosen = platform_named(&rule.platform)?;
    let chosen_for_team = choose_primary_of_team(&state, &caller, &rule.team, chosen).await?;
    Ok(Json(json!({
        "team": rule.team,
        "platform": chosen.as_str(),
        "changed": chosen_for_team.changed,
    })))
}
