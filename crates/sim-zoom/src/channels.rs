//! Chat channels (group chats among them) at `/zoom/v2/chat/users/{userId}/channels` and
//! `/zoom/v2/chat/channels/{channelId}`: creating one with its members, listing a user's,
//! getting one, and listing, adding and removing members.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::{delete, get};
use serde_json::{Value, json};

use crate::state::{Channel, ChannelMember, Role, State};
use crate::wire::{
    Answer, ZoomError, created, iso, json_body, no_content, now_millis, ok, page, page_size,
};
use crate::{Category, ZoomSim};

/// Members a create or an add may name at once.
const MAX_CREATE_MEMBERS: usize = 20;
const MAX_ADD_MEMBERS: usize = 5;

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route(
            "/zoom/v2/chat/users/{user_id}/channels",
            get(list).post(create),
        )
        .route("/zoom/v2/chat/channels/{channel_id}", get(get_mine))
        .route(
            "/zoom/v2/chat/users/{user_id}/channels/{channel_id}",
            get(get_one),
        )
        .route(
            "/zoom/v2/chat/channels/{channel_id}/members",
            get(members_mine).post(add_mine),
        )
        .route(
            "/zoom/v2/chat/users/{user_id}/channels/{channel_id}/members",
            get(members).post(add),
        )
        .route(
            "/zoom/v2/chat/channels/{channel_id}/members/{member}",
            delete(remove_mine),
        )
        .route(
            "/zoom/v2/chat/users/{user_id}/channels/{channel_id}/members/{member}",
            delete(remove),
        )
}

fn channel_json(channel: &Channel) -> Value {
    json!({
        "id": channel.id,
        "jid": channel.jid,
        "name": channel.name,
        "type": channel.channel_type,
    })
}

/// Creates a channel of `owner` with `others`; its id.
pub fn new_channel(
    state: &mut State,
    owner: &str,
    name: &str,
    channel_type: u8,
    others: &[String],
) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let members = std::iter::once(ChannelMember {
        user: owner.to_owned(),
        role: Role::Owner,
    })
    .chain(
        others
            .iter()
            .filter(|u| *u != owner)
            .map(|user| ChannelMember {
                user: user.clone(),
                role: Role::Member,
            }),
    )
    .collect();
    state.channels.push(Channel {
        jid: format!("{id}@conference.xmpp.zoom.us"),
        id: id.clone(),
        name: name.to_owned(),
        channel_type,
        members,
        created: now_millis(),
    });
    id
}

#[derive(serde::Deserialize)]
struct MemberBody {
    email: String,
}

#[derive(serde::Deserialize)]
struct NewChannel {
    name: String,
    #[serde(rename = "type")]
    channel_type: u8,
    #[serde(default)]
    members: Vec<MemberBody>,
}

/// The active users an add or a create names, by e-mail.
fn named_users(
    state: &State,
    members: &[MemberBody],
    max: usize,
) -> Result<Vec<String>, ZoomError> {
    if members.len() > max {
        return Err(ZoomError::invalid(format!(
            "Validation Failed. At most {max} members at once."
        )));
    }
    members
        .iter()
        .map(|m| {
            state
                .active_user(&m.email)
                .map(|u| u.id.clone())
                .ok_or_else(ZoomError::no_contact)
        })
        .collect()
}

async fn create(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:write:user_channel")?;
    let request: NewChannel = json_body(&body)?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ZoomError::invalid(
            "Validation Failed. name is 1 to 128 characters.",
        ));
    }
    if !(1..=4).contains(&request.channel_type) {
        return Err(ZoomError::invalid(
            "Validation Failed. type is 1 (private), 2 (private, account members only), 3 (public) or 4 (group chat).",
        ));
    }
    let others = named_users(&state, &request.members, MAX_CREATE_MEMBERS)?;
    let id = new_channel(&mut state, &me, name, request.channel_type, &others);
    let channel = state
        .channel(&id)
        .ok_or_else(|| ZoomError::not_found("Channel does not exist."))?;
    created(channel_json(channel))
}

async fn list(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:read:list_user_channels")?;
    let size = page_size(&params, 10, 50)?;
    let all: Vec<&Channel> = state
        .channels
        .iter()
        .filter(|c| c.has_member(&me))
        .collect();
    let total = all.len();
    let (channels, next) = page(all, &params, &format!("channels:{me}"), size)?;
    ok(json!({
        "total_records": total,
        "page_size": size,
        "next_page_token": next,
        "channels": channels.into_iter().map(channel_json).collect::<Vec<_>>(),
    }))
}

/// The channel `channel_id` of the user `user_id` names, with the scope to act for them.
fn their_channel<'s>(
    sim: &ZoomSim,
    state: &'s State,
    headers: &HeaderMap,
    user_id: &str,
    channel_id: &str,
    scope: &str,
    category: Category,
) -> Result<(String, &'s Channel), ZoomError> {
    let caller = sim.caller(state, headers, category)?;
    let me = caller.acting_for(state, user_id, scope)?;
    let channel = state
        .channel(channel_id)
        .filter(|c| c.has_member(&me))
        .ok_or_else(|| ZoomError::not_found(format!("Channel does not exist: {channel_id}.")))?;
    Ok((me, channel))
}

async fn get_mine(
    sim: Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Answer {
    get_one(sim, headers, Path(("me".to_owned(), channel_id))).await
}

async fn get_one(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, channel_id)): Path<(String, String)>,
) -> Answer {
    let state = sim.lock();
    let (_, channel) = their_channel(
        &sim,
        &state,
        &headers,
        &user_id,
        &channel_id,
        "team_chat:read:channel",
        Category::Light,
    )?;
    ok(channel_json(channel))
}

async fn members_mine(
    sim: Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> Answer {
    members(sim, headers, Path(("me".to_owned(), channel_id)), query).await
}

async fn members(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, channel_id)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let (_, channel) = their_channel(
        &sim,
        &state,
        &headers,
        &user_id,
        &channel_id,
        "team_chat:read:list_members",
        Category::Medium,
    )?;
    let size = page_size(&params, 30, 100)?;
    let total = channel.members.len();
    let (page_members, next) = page(
        channel.members.iter().collect(),
        &params,
        &format!("members:{channel_id}"),
        size,
    )?;
    let members: Vec<Value> = page_members
        .into_iter()
        .filter_map(|member| {
            let user = state.user(&member.user)?;
            Some(json!({
                "id": user.id,
                "member_id": user.member_id,
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "name": user.display_name,
                "role": member.role.name(),
                "is_external": false,
            }))
        })
        .collect();
    ok(json!({
        "members": members,
        "next_page_token": next,
        "page_size": size,
        "total_records": total,
    }))
}

#[derive(serde::Deserialize)]
struct AddedMembers {
    members: Vec<MemberBody>,
}

async fn add_mine(
    sim: Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> Answer {
    add(sim, headers, Path(("me".to_owned(), channel_id)), body).await
}

/// Any member adds members (docs/simulator-zoom.md).
async fn add(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, channel_id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let mut state = sim.lock();
    their_channel(
        &sim,
        &state,
        &headers,
        &user_id,
        &channel_id,
        "team_chat:write:members",
        Category::Medium,
    )?;
    let request: AddedMembers = json_body(&body)?;
    let added = named_users(&state, &request.members, MAX_ADD_MEMBERS)?;
    if let Some(channel) = state.channel_mut(&channel_id) {
        for user in &added {
            if !channel.has_member(user) {
                channel.members.push(ChannelMember {
                    user: user.clone(),
                    role: Role::Member,
                });
            }
        }
    }
    let member_ids: Vec<&str> = added
        .iter()
        .filter_map(|id| state.user(id).map(|u| u.member_id.as_str()))
        .collect();
    created(json!({
        "ids": added.join(","),
        "member_ids": member_ids.join(","),
        "added_at": iso(now_millis()),
    }))
}

async fn remove_mine(
    sim: Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((channel_id, member)): Path<(String, String)>,
) -> Answer {
    remove(sim, headers, Path(("me".to_owned(), channel_id, member))).await
}

/// The channel's owner or admins remove anyone but the owner; a member removes themselves.
async fn remove(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, channel_id, member)): Path<(String, String, String)>,
) -> Answer {
    let mut state = sim.lock();
    let (me, channel) = their_channel(
        &sim,
        &state,
        &headers,
        &user_id,
        &channel_id,
        "team_chat:delete:member",
        Category::Medium,
    )?;
    let removed = state
        .user(&member)
        .or_else(|| state.users.iter().find(|u| u.member_id == member))
        .map(|u| u.id.clone())
        .filter(|id| channel.has_member(id))
        .ok_or_else(|| ZoomError::not_found(format!("Member does not exist: {member}.")))?;
    let role_of = |user: &str| {
        channel
            .members
            .iter()
            .find(|m| m.user == user)
            .map(|m| m.role)
    };
    let allowed = if removed == me {
        role_of(&me) != Some(Role::Owner)
    } else {
        matches!(role_of(&me), Some(Role::Owner | Role::Admin))
            && role_of(&removed) != Some(Role::Owner)
    };
    if !allowed {
        return Err(ZoomError::forbidden(
            "Only the channel's owner or admins remove members, and the owner cannot be removed.",
        ));
    }
    if let Some(channel) = state.channel_mut(&channel_id) {
        channel.members.retain(|m| m.user != removed);
    }
    no_content()
}
