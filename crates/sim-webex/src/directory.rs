//! The organisation's directory at `/webex/v1/`: people (`me`, by e-mail, ids or display
//! name), teams and team memberships (which the hub imports from), and the guests a Service
//! App issues (`guests/token`, `guests/count`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::WebexSim;
use crate::state::{GUEST_SCOPES, Person, PersonKind, SERVICE_APP_CLIENT_ID, State, Team};
use crate::wire::{Answer, WebexError, iso, json_body, new_id, ok, paged, param};

/// A guest's token lasts 18 hours, as in Webex's example (`expiresIn` 64799).
const GUEST_TOKEN_SECONDS: u64 = 64_799;

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route("/webex/v1/people", get(list_people))
        .route("/webex/v1/people/me", get(me))
        .route("/webex/v1/people/{id}", get(get_person))
        .route("/webex/v1/teams", get(list_teams))
        .route("/webex/v1/teams/{id}", get(get_team))
        .route("/webex/v1/team/memberships", get(list_team_memberships))
        .route("/webex/v1/guests/token", post(guest_token))
        .route("/webex/v1/guests/count", get(guest_count))
}

pub fn person_json(state: &State, person: &Person) -> Value {
    json!({
        "id": person.id,
        "emails": [person.email],
        "phoneNumbers": [],
        "displayName": person.display_name,
        "nickName": person.first_name,
        "firstName": person.first_name,
        "lastName": person.last_name,
        "orgId": state.org_id,
        "created": iso(person.created),
        "lastModified": iso(person.created),
        "status": "unknown",
        "type": person.kind.webex_type(),
        "loginEnabled": person.login_enabled,
    })
}

async fn me(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:people_read")?;
    let person = state
        .person(&caller.person)
        .ok_or_else(|| WebexError::not_found("Person not found."))?;
    ok(person_json(&state, person))
}

async fn get_person(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:people_read")?;
    let person = state
        .person(&id)
        .filter(|p| p.id == id)
        .ok_or_else(|| WebexError::not_found("Person not found."))?;
    ok(person_json(&state, person))
}

/// People by `email`, `displayName` (a prefix, case-insensitive) or `id` (a comma-separated
/// list of up to 85). Without one of them only an admin may list everyone, as on Webex.
async fn list_people(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:people_read")?;
    let matching: Vec<&Person> = if let Some(email) = param(&params, "email") {
        state
            .person(email)
            .filter(|p| p.email.eq_ignore_ascii_case(email))
            .into_iter()
            .collect()
    } else if let Some(ids) = param(&params, "id") {
        let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
        if ids.len() > 85 {
            return Err(WebexError::invalid("At most 85 ids may be given."));
        }
        ids.iter()
            .filter_map(|id| state.person(id).filter(|p| p.id == *id))
            .collect()
    } else if let Some(name) = param(&params, "displayName") {
        let name = name.to_lowercase();
        state
            .people
            .iter()
            .filter(|p| p.display_name.to_lowercase().starts_with(&name))
            .collect()
    } else {
        let admin = state
            .person(&caller.person)
            .is_some_and(|p| p.kind == PersonKind::Admin);
        if !admin {
            return Err(WebexError::invalid(
                "Either email, displayName or id is required.",
            ));
        }
        state.people.iter().collect()
    };
    let all = matching
        .into_iter()
        .map(|person| person_json(&state, person))
        .collect();
    paged(&sim.api_base(), "people", &params, all, 100)
}

fn team_json(team: &Team) -> Value {
    json!({
        "id": team.id,
        "name": team.name,
        "creatorId": team.members.first().map(|m| m.person.clone()),
        "created": iso(team.created),
    })
}

fn team_member(team: &Team, person: &str) -> bool {
    team.members.iter().any(|m| m.person == person)
}

/// The teams the caller belongs to.
async fn list_teams(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:teams_read")?;
    let all = state
        .teams
        .iter()
        .filter(|team| team_member(team, &caller.person))
        .map(team_json)
        .collect();
    paged(&sim.api_base(), "teams", &params, all, 100)
}

async fn get_team(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:teams_read")?;
    let team = state
        .team(&id)
        .filter(|team| team_member(team, &caller.person))
        .ok_or_else(|| WebexError::not_found("Could not find a team with the provided ID."))?;
    ok(team_json(team))
}

/// The members of a team the caller belongs to.
async fn list_team_memberships(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:team_memberships_read")?;
    let team_id =
        param(&params, "teamId").ok_or_else(|| WebexError::invalid("teamId is required."))?;
    let team = state
        .team(team_id)
        .filter(|team| team_member(team, &caller.person))
        .ok_or_else(|| WebexError::not_found("Could not find a team with the provided ID."))?;
    let all = team
        .members
        .iter()
        .filter_map(|member| {
            let person = state.person(&member.person)?;
            Some(json!({
                "id": member.id,
                "teamId": team.id,
                "personId": person.id,
                "personEmail": person.email,
                "personDisplayName": person.display_name,
                "personOrgId": state.org_id,
                "isModerator": member.is_moderator,
                "created": iso(member.created),
            }))
        })
        .collect();
    paged(&sim.api_base(), "team/memberships", &params, all, 100)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestRequest {
    subject: String,
    display_name: String,
}

/// A token for the guest of `subject`, created at its first call. The same subject is always
/// the same guest; a new display name renames it. Earlier tokens stay valid.
async fn guest_token(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: GuestRequest = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("guest-issuer:write")?;
    let subject = request.subject.trim();
    let display_name = request.display_name.trim();
    if subject.is_empty() || display_name.is_empty() {
        return Err(WebexError::invalid("subject and displayName are required."));
    }
    let existing = state.guests.get(subject).cloned();
    let id = match existing {
        Some(id) => {
            if let Some(guest) = state.person_mut(&id) {
                guest.display_name = display_name.to_owned();
                guest.first_name = display_name.to_owned();
            }
            id
        }
        None => {
            let uuid = uuid::Uuid::new_v4().to_string();
            let guest = state.add_person(Person {
                id: new_id("PEOPLE"),
                email: format!("{uuid}@appid.ciscospark.com"),
                display_name: display_name.to_owned(),
                first_name: display_name.to_owned(),
                last_name: String::new(),
                kind: PersonKind::Guest,
                login_enabled: true,
                created: crate::wire::now_millis(),
            });
            let id = guest.id.clone();
            state.guests.insert(subject.to_owned(), id.clone());
            id
        }
    };
    let scopes = GUEST_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let issued = crate::oauth::issue(&mut state, &id, scopes, SERVICE_APP_CLIENT_ID);
    if let Some(grant) = state.access_tokens.get_mut(&issued.access_token) {
        grant.expires_at = crate::wire::now_millis() + GUEST_TOKEN_SECONDS * 1000;
    }
    // A guest's token is not refreshed: the Service App asks for a new one.
    state.refresh_tokens.remove(&issued.refresh_token);
    let guest = state
        .person(&id)
        .ok_or_else(|| WebexError::not_found("Person not found."))?;
    ok(json!({
        "id": guest.id,
        "subject": subject,
        "displayName": guest.display_name,
        "email": guest.email,
        "accessToken": issued.access_token,
        "expiresIn": GUEST_TOKEN_SECONDS,
    }))
}

async fn guest_count(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    if !caller.holds("guest-issuer:read") {
        caller.require("guest-issuer:write")?;
    }
    ok(json!({ "count": state.guests.len() }))
}
