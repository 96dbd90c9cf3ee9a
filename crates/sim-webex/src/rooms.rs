//! Rooms and memberships at `/webex/v1/`: direct rooms (made implicitly by a 1:1 message)
//! and group rooms (made with a title, in a team or not), who is in them, and the webhooks
//! that joining and leaving fire.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

use crate::WebexSim;
use crate::hooks::{Occurrence, fire};
use crate::state::{Member, Room, RoomType, State};
use crate::wire::{
    Answer, WebexError, iso, json_body, new_id, no_content, now_millis, ok, paged, param,
};

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route("/webex/v1/rooms", get(list_rooms).post(create_room))
        .route("/webex/v1/rooms/{id}", get(get_room))
        .route(
            "/webex/v1/memberships",
            get(list_memberships).post(create_membership),
        )
        .route(
            "/webex/v1/memberships/{id}",
            get(get_membership).delete(delete_membership),
        )
}

/// A room as `viewer` sees it: a direct room is titled by the other person's name.
pub fn room_json(state: &State, room: &Room, viewer: &str) -> Value {
    let mut value = json!({
        "id": room.id,
        "title": room_title(state, room, viewer),
        "type": room.room_type.name(),
        "isLocked": false,
        "isReadOnly": false,
        "lastActivity": iso(room.last_activity),
        "creatorId": room.creator,
        "created": iso(room.created),
        "ownerId": state.org_id,
    });
    if let Some(team) = &room.team {
        value["teamId"] = json!(team);
    }
    value
}

pub fn room_title(state: &State, room: &Room, viewer: &str) -> String {
    match room.room_type {
        RoomType::Group => room.title.clone(),
        RoomType::Direct => room
            .members
            .iter()
            .find(|m| m.person != viewer)
            .and_then(|m| state.person(&m.person))
            .map_or_else(|| room.title.clone(), |p| p.display_name.clone()),
    }
}

pub fn membership_json(state: &State, room: &Room, member: &Member) -> Value {
    let person = state.person(&member.person);
    json!({
        "id": member.id,
        "roomId": room.id,
        "personId": member.person,
        "personEmail": person.map(|p| p.email.clone()),
        "personDisplayName": person.map(|p| p.display_name.clone()),
        "personOrgId": state.org_id,
        "isModerator": member.is_moderator,
        "isMonitor": false,
        "isRoomHidden": false,
        "roomType": room.room_type.name(),
        "created": iso(member.created),
    })
}

fn membership_occurrence(
    state: &State,
    room: &Room,
    member: &Member,
    event: &'static str,
    actor: &str,
    audience: Vec<String>,
) -> Occurrence {
    let email = state
        .person(&member.person)
        .map(|p| p.email.clone())
        .unwrap_or_default();
    Occurrence {
        resource: "memberships",
        event,
        audience,
        actor: actor.to_owned(),
        data: membership_json(state, room, member),
        facts: vec![
            ("roomId", room.id.clone()),
            ("personId", member.person.clone()),
            ("personEmail", email),
            ("isModerator", member.is_moderator.to_string()),
        ],
    }
}

fn members_of(room: &Room) -> Vec<String> {
    room.members.iter().map(|m| m.person.clone()).collect()
}

/// Fires what creating a room does: `rooms:created`, and `memberships:created` for each of
/// its first members.
pub fn room_created(sim: &WebexSim, state: &State, room_id: &str, actor: &str) {
    let Some(room) = state.room(room_id) else {
        return;
    };
    let audience = members_of(room);
    fire(
        sim,
        state,
        &Occurrence {
            resource: "rooms",
            event: "created",
            audience: audience.clone(),
            actor: actor.to_owned(),
            data: room_json(state, room, actor),
            facts: vec![
                ("type", room.room_type.name().to_owned()),
                ("isLocked", "false".to_owned()),
                ("roomId", room.id.clone()),
            ],
        },
    );
    for member in &room.members {
        fire(
            sim,
            state,
            &membership_occurrence(state, room, member, "created", actor, audience.clone()),
        );
    }
}

/// The direct room of two people, made (with its events) if they have none yet.
pub fn direct_room(sim: &WebexSim, state: &mut State, me: &str, other: &str) -> String {
    if let Some(room) = state.direct_room(me, other) {
        return room.id.clone();
    }
    let id = state
        .new_room(
            RoomType::Direct,
            String::new(),
            None,
            &[me.to_owned(), other.to_owned()],
        )
        .id
        .clone();
    room_created(sim, state, &id, me);
    id
}

/// The caller's room, or Webex's 404 (a room one is not in is not found).
pub fn their_room<'s>(state: &'s State, person: &str, id: &str) -> Result<&'s Room, WebexError> {
    state
        .room(id)
        .filter(|room| room.has_member(person))
        .ok_or_else(|| WebexError::not_found("Could not find a room with the provided ID."))
}

async fn list_rooms(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:rooms_read")?;
    let room_type = param(&params, "type");
    if let Some(kind) = room_type
        && kind != "direct"
        && kind != "group"
    {
        return Err(WebexError::invalid("type must be direct or group."));
    }
    let team = param(&params, "teamId");
    let mut rooms: Vec<&Room> = state
        .rooms
        .iter()
        .filter(|room| room.has_member(&caller.person))
        .filter(|room| room_type.is_none_or(|kind| room.room_type.name() == kind))
        .filter(|room| team.is_none_or(|team| room.team.as_deref() == Some(team)))
        .collect();
    rooms.sort_by_key(|room| std::cmp::Reverse(room.last_activity));
    let all = rooms
        .into_iter()
        .map(|room| room_json(&state, room, &caller.person))
        .collect();
    paged(&sim.api_base(), "rooms", &params, all, 100)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewRoom {
    title: String,
    team_id: Option<String>,
}

async fn create_room(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: NewRoom = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:rooms_write")?;
    let title = request.title.trim();
    if title.is_empty() {
        return Err(WebexError::invalid("title is required."));
    }
    if let Some(team) = &request.team_id {
        let member = state
            .team(team)
            .is_some_and(|t| t.members.iter().any(|m| m.person == caller.person));
        if !member {
            return Err(WebexError::not_found(
                "Could not find a team with the provided ID.",
            ));
        }
    }
    let id = state
        .new_room(
            RoomType::Group,
            title.to_owned(),
            request.team_id,
            std::slice::from_ref(&caller.person),
        )
        .id
        .clone();
    room_created(&sim, &state, &id, &caller.person);
    let room = their_room(&state, &caller.person, &id)?;
    ok(room_json(&state, room, &caller.person))
}

async fn get_room(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:rooms_read")?;
    let room = their_room(&state, &caller.person, &id)?;
    ok(room_json(&state, room, &caller.person))
}

/// A room's memberships (`roomId`, narrowed by `personId` or `personEmail`), or without
/// `roomId` the caller's own memberships.
async fn list_memberships(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:memberships_read")?;
    let person = match (param(&params, "personId"), param(&params, "personEmail")) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(email)) => Some(
            state
                .person(email)
                .map_or_else(|| email.to_owned(), |p| p.id.clone()),
        ),
        (None, None) => None,
    };
    let all: Vec<Value> = match param(&params, "roomId") {
        Some(room_id) => {
            let room = their_room(&state, &caller.person, room_id)?;
            room.members
                .iter()
                .filter(|m| person.as_ref().is_none_or(|p| &m.person == p))
                .map(|m| membership_json(&state, room, m))
                .collect()
        }
        None => {
            if person.as_ref().is_some_and(|p| p != &caller.person) {
                return Err(WebexError::invalid(
                    "personId and personEmail need a roomId, except for oneself.",
                ));
            }
            state
                .rooms
                .iter()
                .filter_map(|room| Some((room, room.member(&caller.person)?)))
                .map(|(room, m)| membership_json(&state, room, m))
                .collect()
        }
    };
    paged(&sim.api_base(), "memberships", &params, all, 100)
}

/// The room holding a membership the caller may see, and the membership.
fn find_membership<'s>(
    state: &'s State,
    caller: &str,
    id: &str,
) -> Result<(&'s Room, &'s Member), WebexError> {
    state
        .rooms
        .iter()
        .filter(|room| room.has_member(caller))
        .find_map(|room| Some((room, room.members.iter().find(|m| m.id == id)?)))
        .ok_or_else(|| WebexError::not_found("Could not find a membership with the provided ID."))
}

async fn get_membership(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:memberships_read")?;
    let (room, member) = find_membership(&state, &caller.person, &id)?;
    ok(membership_json(&state, room, member))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMembership {
    room_id: String,
    person_id: Option<String>,
    person_email: Option<String>,
    #[serde(default)]
    is_moderator: bool,
}

async fn create_membership(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: NewMembership = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:memberships_write")?;
    let room = their_room(&state, &caller.person, &request.room_id)?;
    if room.room_type == RoomType::Direct {
        return Err(WebexError::invalid(
            "A direct room has exactly two members; create a group room to add people.",
        ));
    }
    let person = match (&request.person_id, &request.person_email) {
        (Some(id), None) => state.person(id).filter(|p| &p.id == id),
        (None, Some(email)) => state
            .person(email)
            .filter(|p| p.email.eq_ignore_ascii_case(email)),
        _ => {
            return Err(WebexError::invalid(
                "Exactly one of personId and personEmail is required.",
            ));
        }
    }
    .filter(|p| p.login_enabled)
    .ok_or_else(|| WebexError::not_found("Person not found."))?;
    let person = person.id.clone();
    if room.has_member(&person) {
        return Err(WebexError::conflict(
            "The person is already a member of the room.",
        ));
    }
    let member = Member {
        id: new_id("MEMBERSHIP"),
        person,
        is_moderator: request.is_moderator,
        created: now_millis(),
    };
    let room_id = request.room_id;
    if let Some(room) = state.room_mut(&room_id) {
        room.members.push(member.clone());
        room.last_activity = member.created;
    }
    let room = their_room(&state, &caller.person, &room_id)?;
    fire(
        &sim,
        &state,
        &membership_occurrence(
            &state,
            room,
            &member,
            "created",
            &caller.person,
            members_of(room),
        ),
    );
    ok(membership_json(&state, room, &member))
}

async fn delete_membership(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:memberships_write")?;
    let (room, member) = find_membership(&state, &caller.person, &id)?;
    if room.room_type == RoomType::Direct {
        return Err(WebexError::invalid("One cannot leave a direct room."));
    }
    let occurrence = membership_occurrence(
        &state,
        room,
        member,
        "deleted",
        &caller.person,
        members_of(room),
    );
    let room_id = room.id.clone();
    if let Some(room) = state.room_mut(&room_id) {
        room.members.retain(|m| m.id != id);
    }
    fire(&sim, &state, &occurrence);
    no_content()
}
