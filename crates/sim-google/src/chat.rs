//! The Chat API v1 at `/google/chat/v1/…`: spaces (set-up, direct-message lookup, listing),
//! memberships, messages with threads and reactions. Enums are read as names or as the numbers
//! the official clients send (`$alt=json;enum-encoding=int`) and written as names.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use switchboard_sim_kit::Limit;

use crate::keys::random_id;
use crate::state::{APP_MEMBER, Membership, Message, Reaction, Space, SpaceType, State};
use crate::wire::{Answer, GoogleError, enum_name, form_value, now_micros, ok, rfc3339};
use crate::{Caller, GoogleSim};

/// Per space, shared by everyone writing to it.
const SPACE_WRITES: Limit = Limit::per_minute(60.0, 60.0);
/// Per project: message creates, updates and deletes.
const PROJECT_MESSAGE_WRITES: Limit = Limit::per_minute(3000.0, 3000.0);
/// Per project: space set-ups.
const SPACE_SETUPS: Limit = Limit::per_minute(60.0, 60.0);

const SPACE_TYPES: [&str; 4] = [
    "SPACE_TYPE_UNSPECIFIED",
    "SPACE",
    "GROUP_CHAT",
    "DIRECT_MESSAGE",
];
const REPLY_OPTIONS: [&str; 3] = [
    "MESSAGE_REPLY_OPTION_UNSPECIFIED",
    "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
    "REPLY_MESSAGE_OR_FAIL",
];
const MEMBER_TYPES: [&str; 3] = ["TYPE_UNSPECIFIED", "HUMAN", "BOT"];

type Params = Query<Vec<(String, String)>>;

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route("/google/chat/v1/spaces", get(list_spaces))
        .route("/google/chat/v1/spaces:setup", post(set_up_space))
        .route(
            "/google/chat/v1/spaces:findDirectMessage",
            get(find_direct_message),
        )
        .route("/google/chat/v1/spaces/{space}", get(get_space))
        .route("/google/chat/v1/spaces/{space}/members", get(list_members))
        .route(
            "/google/chat/v1/spaces/{space}/messages",
            get(list_messages).post(create_message),
        )
        .route(
            "/google/chat/v1/spaces/{space}/messages/{message}",
            get(get_message)
                .put(update_message)
                .patch(update_message)
                .delete(delete_message),
        )
        .route(
            "/google/chat/v1/spaces/{space}/messages/{message}/reactions",
            get(list_reactions).post(create_reaction),
        )
        .route(
            "/google/chat/v1/spaces/{space}/messages/{message}/reactions/{reaction}",
            delete(delete_reaction),
        )
}

/// The caller's member key in spaces: their user id, or the Chat app's.
fn member_key(caller: &Caller) -> Result<String, GoogleError> {
    if caller.is_app() {
        return Ok(APP_MEMBER.to_owned());
    }
    caller.user_id().map(str::to_owned).ok_or_else(|| {
        GoogleError::denied("This method doesn't support service account authentication without the chat.bot scope.")
    })
}

/// A user named as `users/{id}` or, with user authentication, `users/{email}`.
fn resolve_user<'s>(state: &'s State, name: &str) -> Option<&'s crate::state::User> {
    state
        .user(name.strip_prefix("users/")?)
        .filter(|user| user.active())
}

/// The space `id` as `me` sees it: only its members see it.
fn visible<'s>(state: &'s State, id: &str, me: &str) -> Result<&'s Space, GoogleError> {
    state
        .space(id)
        .filter(|space| space.has_member(me))
        .ok_or_else(|| GoogleError::not_found("Space not found or caller is not a member."))
}

fn space_json(space: &Space) -> Value {
    let mut value = json!({
        "name": space.name(),
        "type": if space.space_type == SpaceType::Space { "ROOM" } else { "DM" },
        "spaceType": space.space_type.name(),
        "singleUserBotDm": space.app_dm(),
        "threaded": false,
        "spaceThreadingState": if space.space_type == SpaceType::Space { "THREADED_MESSAGES" } else { "UNTHREADED_MESSAGES" },
        "spaceHistoryState": "HISTORY_ON",
        "createTime": rfc3339(space.created),
        "lastActiveTime": rfc3339(space.updated),
        "membershipCount": {"joinedDirectHumanUserCount": space.members.iter().filter(|m| m.member != APP_MEMBER && m.joined).count()},
    });
    if !space.display_name.is_empty() {
        value["displayName"] = json!(space.display_name);
    }
    value
}

fn member_json(member: &str) -> Value {
    if member == APP_MEMBER {
        json!({"name": "users/app", "type": "BOT"})
    } else {
        json!({"name": format!("users/{member}"), "type": "HUMAN"})
    }
}

fn offset_page<T>(
    items: Vec<T>,
    params: &[(String, String)],
    default: usize,
    max: usize,
) -> Result<(Vec<T>, Option<String>), GoogleError> {
    let size = match form_value(params, "pageSize") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| GoogleError::invalid("Invalid page size."))?,
        None => 0,
    };
    let size = if size == 0 { default } else { size.min(max) };
    let start = match form_value(params, "pageToken").filter(|t| !t.is_empty()) {
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| GoogleError::invalid("Invalid page token."))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| (start + size).to_string());
    Ok((page, next))
}

fn with_next(mut value: Value, next: Option<String>) -> Value {
    if let Some(next) = next {
        value["nextPageToken"] = json!(next);
    }
    value
}

async fn list_spaces(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.spaces", "chat.spaces.readonly", "chat.bot"])?;
    let me = member_key(&caller)?;
    let filter = form_value(&params, "filter").unwrap_or_default();
    let wanted: Vec<&str> = SPACE_TYPES[1..]
        .iter()
        .copied()
        .filter(|name| filter.contains(name))
        .collect();
    let spaces: Vec<Value> = state
        .spaces
        .iter()
        .filter(|space| space.has_member(&me))
        // Group chats and direct messages are listed once they have a first message.
        .filter(|space| space.space_type == SpaceType::Space || !space.messages.is_empty())
        .filter(|space| wanted.is_empty() || wanted.contains(&space.space_type.name()))
        .map(space_json)
        .collect();
    let (page, next) = offset_page(spaces, &params, 100, 1000)?;
    ok(with_next(json!({ "spaces": page }), next))
}

async fn get_space(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(space): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.spaces", "chat.spaces.readonly", "chat.bot"])?;
    let me = member_key(&caller)?;
    ok(space_json(visible(&state, &space, &me)?))
}

async fn set_up_space(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.spaces", "chat.spaces.create"])?;
    let me = caller
        .user_id()
        .ok_or_else(|| GoogleError::denied("This method doesn't support app authentication with a service account. Authenticate with a user account."))?
        .to_owned();
    sim.limit("google_chat:space-setups", SPACE_SETUPS)?;
    let space_type = match enum_name(&request["space"]["spaceType"], &SPACE_TYPES) {
        Some("SPACE") => SpaceType::Space,
        Some("GROUP_CHAT") => SpaceType::GroupChat,
        Some("DIRECT_MESSAGE") => SpaceType::DirectMessage,
        _ => {
            return Err(GoogleError::invalid(
                "Invalid space type: space.space_type must be SPACE, GROUP_CHAT or DIRECT_MESSAGE.",
            ));
        }
    };
    let mut others: Vec<String> = Vec::new();
    for membership in request["memberships"].as_array().into_iter().flatten() {
        let member = &membership["member"];
        if let Some(kind) = enum_name(&member["type"], &MEMBER_TYPES)
            && kind != "HUMAN"
        {
            return Err(GoogleError::invalid(
                "Only human users can be added with spaces.setup.",
            ));
        }
        let name = member["name"].as_str().unwrap_or_default();
        let user = resolve_user(&state, name).ok_or_else(|| {
            GoogleError::invalid(format!(
                "Invalid user {name}: members must be active users of the domain."
            ))
        })?;
        if user.id != me && !others.contains(&user.id) {
            others.push(user.id.clone());
        }
    }
    let display_name = request["space"]["displayName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match space_type {
        SpaceType::DirectMessage if others.len() != 1 => {
            return Err(GoogleError::invalid(
                "A direct message has exactly one other member.",
            ));
        }
        SpaceType::DirectMessage => {
            if let Some(existing) = human_dm(&state, &me, &others[0]) {
                return ok(space_json(existing));
            }
        }
        SpaceType::GroupChat if others.is_empty() => {
            return Err(GoogleError::invalid(
                "A group chat needs members besides the caller.",
            ));
        }
        SpaceType::Space if display_name.trim().is_empty() => {
            return Err(GoogleError::invalid("A space needs a displayName."));
        }
        _ => {}
    }
    let accepted = space_type == SpaceType::DirectMessage || state.auto_accept_invitations;
    let now = now_micros();
    let space = state.new_space(
        space_type,
        if space_type == SpaceType::Space {
            display_name
        } else {
            String::new()
        },
    );
    space.members.push(Membership {
        member: me,
        joined: true,
        created: now,
    });
    space
        .members
        .extend(others.into_iter().map(|member| Membership {
            member,
            joined: accepted,
            created: now,
        }));
    ok(space_json(space))
}

/// The direct message between two people (not one with the app).
fn human_dm<'s>(state: &'s State, one: &str, other: &str) -> Option<&'s Space> {
    state.spaces.iter().find(|space| {
        space.space_type == SpaceType::DirectMessage
            && !space.app_dm()
            && space.has_member(one)
            && space.has_member(other)
            && (one != other || space.members.len() == 1)
    })
}

async fn find_direct_message(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.spaces", "chat.spaces.readonly", "chat.bot"])?;
    let name = form_value(&params, "name").unwrap_or_default();
    let not_found = || GoogleError::not_found("Direct message space not found.");
    let other = resolve_user(&state, name).ok_or_else(not_found)?.id.clone();
    if caller.is_app() {
        // The Chat app is installed for everyone of the domain once an admin configured it:
        // its direct message with a person exists from then on.
        if state.chat_app.is_none() {
            return Err(GoogleError::not_found(
                "Chat app not found. Configure the Chat app in the Admin console.",
            ));
        }
        if let Some(space) = state
            .spaces
            .iter()
            .find(|s| s.app_dm() && s.has_member(&other))
        {
            return ok(space_json(space));
        }
        let now = now_micros();
        let space = state.new_space(SpaceType::DirectMessage, String::new());
        space.members.push(Membership {
            member: other,
            joined: true,
            created: now,
        });
        space.members.push(Membership {
            member: APP_MEMBER.to_owned(),
            joined: true,
            created: now,
        });
        return ok(space_json(space));
    }
    let me = member_key(&caller)?;
    human_dm(&state, &me, &other)
        .map(space_json)
        .map_or_else(|| Err(not_found()), ok)
}

async fn list_members(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(space): Path<String>,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.memberships", "chat.memberships.readonly", "chat.bot"])?;
    let me = member_key(&caller)?;
    let space = visible(&state, &space, &me)?;
    let memberships: Vec<Value> = space
        .members
        .iter()
        .filter(|m| m.member != APP_MEMBER)
        .enumerate()
        .map(|(rank, m)| {
            json!({
                "name": format!("{}/members/{}", space.name(), m.member),
                "state": if m.joined { "JOINED" } else { "INVITED" },
                "role": if rank == 0 && space.space_type == SpaceType::Space { "ROLE_MANAGER" } else { "ROLE_MEMBER" },
                "member": member_json(&m.member),
                "createTime": rfc3339(m.created),
            })
        })
        .collect();
    let (page, next) = offset_page(memberships, &params, 100, 1000)?;
    ok(with_next(json!({ "memberships": page }), next))
}

/// The text as people read it (mentions as `@Name`), and the annotations that point into it.
fn rendered(state: &State, text: &str) -> (String, Vec<Value>) {
    let mut out = String::new();
    let mut annotations = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<users/") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let key = &rest[start + 7..start + end];
        let (label, user) = if key == "all" {
            (
                "@all".to_owned(),
                json!({"name": "users/all", "type": "HUMAN"}),
            )
        } else if let Some(user) = state.user(key) {
            (
                format!("@{}", user.full_name()),
                json!({"name": format!("users/{}", user.id), "type": "HUMAN"}),
            )
        } else {
            out.push_str(&rest[start..=start + end]);
            rest = &rest[start + end + 1..];
            continue;
        };
        annotations.push(json!({
            "type": "USER_MENTION",
            "startIndex": out.encode_utf16().count(),
            "length": label.encode_utf16().count(),
            "userMention": {"user": user, "type": "MENTION"},
        }));
        out.push_str(&label);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    (out, annotations)
}

pub fn message_json(state: &State, space: &Space, message: &Message) -> Value {
    let name = format!("{}/messages/{}", space.name(), message.id);
    let mut value = json!({
        "name": name,
        "sender": member_json(&message.sender),
        "createTime": rfc3339(message.created),
        "thread": {"name": format!("{}/threads/{}", space.name(), message.thread)},
        "threadReply": message.thread_reply,
        "space": {"name": space.name(), "type": if space.space_type == SpaceType::Space { "ROOM" } else { "DM" }, "spaceType": space.space_type.name()},
    });
    if let Some(key) = space
        .thread_keys
        .iter()
        .find(|(_, t)| **t == message.thread)
        .map(|(k, _)| k)
    {
        value["thread"]["threadKey"] = json!(key);
    }
    if let Some(client_id) = &message.client_id {
        value["clientAssignedMessageId"] = json!(client_id);
    }
    if let Some(deleted) = message.deleted {
        value["deleteTime"] = json!(rfc3339(deleted));
        value["deletionMetadata"] = json!({"deletionType": "CREATOR"});
        return value;
    }
    if message.updated != message.created {
        value["lastUpdateTime"] = json!(rfc3339(message.updated));
    }
    let (text, annotations) = rendered(state, &message.text);
    value["argumentText"] = json!(text.trim_start_matches("@Switchboard").trim_start());
    value["text"] = json!(text);
    value["formattedText"] = json!(message.text);
    if !annotations.is_empty() {
        value["annotations"] = json!(annotations);
    }
    let mut summaries: Vec<(String, usize)> = Vec::new();
    for reaction in &message.reactions {
        match summaries
            .iter_mut()
            .find(|(emoji, _)| *emoji == reaction.emoji)
        {
            Some((_, count)) => *count += 1,
            None => summaries.push((reaction.emoji.clone(), 1)),
        }
    }
    if !summaries.is_empty() {
        value["emojiReactionSummaries"] = summaries
            .into_iter()
            .map(|(emoji, count)| json!({"emoji": {"unicode": emoji}, "reactionCount": count}))
            .collect();
    }
    value
}

/// Takes the write quotas of a space (and, for messages, of the project).
fn write_quota(sim: &GoogleSim, space: &str, message: bool) -> Result<(), GoogleError> {
    sim.limit(&format!("google_chat:space:{space}"), SPACE_WRITES)?;
    if message {
        sim.limit("google_chat:message-writes", PROJECT_MESSAGE_WRITES)?;
    }
    Ok(())
}

async fn create_message(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(space_id): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    if caller.is_app() {
        caller.require(&["chat.bot"])?;
    } else {
        caller.require(&["chat.messages", "chat.messages.create"])?;
    }
    let me = member_key(&caller)?;
    let space = visible(&state, &space_id, &me)?;
    let request_id = form_value(&params, "requestId").filter(|r| !r.is_empty());
    if let Some(request_id) = request_id
        && let Some(existing) = space
            .messages
            .iter()
            .find(|m| m.sender == me && m.request_id.as_deref() == Some(request_id))
    {
        return ok(message_json(&state, space, existing));
    }
    let client_id = form_value(&params, "messageId").filter(|m| !m.is_empty());
    if let Some(client_id) = client_id {
        if !client_id.starts_with("client-") || client_id.len() > 63 {
            return Err(GoogleError::invalid(
                "The custom message ID must start with client- and be at most 63 characters.",
            ));
        }
        if space.message(client_id).is_some() {
            return Err(GoogleError::conflict(format!(
                "A message with the ID {client_id} already exists."
            )));
        }
    }
    let text = request["text"].as_str().unwrap_or_default().to_owned();
    if text.trim().is_empty() {
        return Err(GoogleError::invalid(
            "Message cannot be empty. Discarded message must have at least one of text, cards, or attachment.",
        ));
    }
    let option = form_value(&params, "messageReplyOption")
        .map(|text| {
            enum_name(&json!(text), &REPLY_OPTIONS)
                .ok_or_else(|| GoogleError::invalid("Invalid messageReplyOption."))
        })
        .transpose()?
        .unwrap_or(REPLY_OPTIONS[0]);
    let thread_name = request["thread"]["name"].as_str();
    let thread_key = request["thread"]["threadKey"]
        .as_str()
        .or_else(|| form_value(&params, "threadKey"));
    let existing_thread = match (thread_name, thread_key) {
        (Some(name), _) => name
            .rsplit_once("/threads/")
            .map(|(_, id)| id)
            .filter(|id| space.messages.iter().any(|m| m.thread == *id))
            .map(str::to_owned),
        (None, Some(key)) => space.thread_keys.get(key).cloned(),
        (None, None) => None,
    };
    let reply_to = match option {
        "REPLY_MESSAGE_OR_FAIL" => {
            Some(existing_thread.ok_or_else(|| GoogleError::not_found("Thread not found."))?)
        }
        "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD" => existing_thread,
        _ => None,
    };
    write_quota(&sim, &space_id, true)?;
    let id = random_id(11);
    let now = now_micros();
    let thread_reply = reply_to.is_some();
    let thread = reply_to.unwrap_or_else(|| id.clone());
    let message = Message {
        id: format!("{id}.{id}"),
        client_id: client_id.map(str::to_owned),
        request_id: request_id.map(str::to_owned),
        sender: me,
        text,
        thread: thread.clone(),
        thread_reply,
        created: now,
        updated: now,
        deleted: None,
        reactions: Vec::new(),
    };
    let space = state.space_mut(&space_id).expect("checked visible");
    if !thread_reply
        && option != REPLY_OPTIONS[0]
        && let Some(key) = thread_key
    {
        space.thread_keys.insert(key.to_owned(), thread);
    }
    space.updated = now;
    space.messages.push(message);
    let space = state.space(&space_id).expect("checked visible");
    let value = message_json(&state, space, space.messages.last().expect("just pushed"));
    crate::events::chat_event(
        &sim,
        &mut state,
        &space_id,
        "google.workspace.chat.message.v1.created",
        &value,
    );
    ok(value)
}

/// The message `id` of a space the caller sees, as (space, message) positions.
fn locate(
    state: &State,
    space_id: &str,
    id: &str,
    me: &str,
    show_deleted: bool,
) -> Result<(usize, usize), GoogleError> {
    visible(state, space_id, me)?;
    let space_index = state
        .spaces
        .iter()
        .position(|s| s.id == space_id)
        .expect("visible");
    let space = &state.spaces[space_index];
    space
        .messages
        .iter()
        .position(|m| {
            (m.id == id || m.client_id.as_deref() == Some(id))
                && (show_deleted || m.deleted.is_none())
        })
        .map(|message| (space_index, message))
        .ok_or_else(|| GoogleError::not_found("Message not found."))
}

async fn get_message(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((space_id, id)): Path<(String, String)>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.messages", "chat.messages.readonly", "chat.bot"])?;
    let me = member_key(&caller)?;
    let (s, m) = locate(&state, &space_id, &id, &me, false)?;
    let space = &state.spaces[s];
    ok(message_json(&state, space, &space.messages[m]))
}

/// The conditions of a `filter`: `createTime >|>=|<|<= "RFC 3339"` and `thread.name = …`,
/// joined by AND.
fn message_filter(filter: &str) -> Result<Vec<(String, String, String)>, GoogleError> {
    let mut conditions = Vec::new();
    for part in filter
        .split(" AND ")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let operator = [">=", "<=", ">", "<", "="]
            .into_iter()
            .find(|op| part.contains(op))
            .ok_or_else(|| GoogleError::invalid(format!("Invalid filter: {part}")))?;
        let (field, value) = part.split_once(operator).expect("found");
        let field = field.trim().replace('_', "").to_lowercase();
        let value = value.trim().trim_matches('"').to_owned();
        if field != "createtime" && field != "thread.name" {
            return Err(GoogleError::invalid(format!(
                "Invalid filter field: {field}"
            )));
        }
        conditions.push((field, operator.to_owned(), value));
    }
    Ok(conditions)
}

async fn list_messages(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(space_id): Path<String>,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.messages", "chat.messages.readonly"])?;
    let me = member_key(&caller)?;
    let space = visible(&state, &space_id, &me)?;
    let show_deleted = form_value(&params, "showDeleted") == Some("true");
    let conditions = message_filter(form_value(&params, "filter").unwrap_or_default())?;
    let mut selected: Vec<&Message> = Vec::new();
    'messages: for message in &space.messages {
        if message.deleted.is_some() && !show_deleted {
            continue;
        }
        for (field, operator, value) in &conditions {
            let keep = if field == "createtime" {
                let bound = crate::wire::parse_rfc3339(value)
                    .ok_or_else(|| GoogleError::invalid(format!("Invalid timestamp {value}")))?;
                match operator.as_str() {
                    ">" => message.created > bound,
                    ">=" => message.created >= bound,
                    "<" => message.created < bound,
                    "<=" => message.created <= bound,
                    _ => message.created == bound,
                }
            } else {
                value
                    .rsplit_once("/threads/")
                    .is_some_and(|(_, thread)| thread == message.thread)
            };
            if !keep {
                continue 'messages;
            }
        }
        selected.push(message);
    }
    let order = form_value(&params, "orderBy")
        .unwrap_or("createTime ASC")
        .to_lowercase();
    if order.ends_with("desc") {
        selected.reverse();
    }
    let values: Vec<Value> = selected
        .into_iter()
        .map(|m| message_json(&state, space, m))
        .collect();
    let (page, next) = offset_page(values, &params, 25, 1000)?;
    ok(with_next(json!({ "messages": page }), next))
}

async fn update_message(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((space_id, id)): Path<(String, String)>,
    Query(params): Params,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.messages", "chat.bot"])?;
    let me = member_key(&caller)?;
    let mask = form_value(&params, "updateMask").unwrap_or_default();
    if mask.is_empty() {
        return Err(GoogleError::invalid("updateMask is required."));
    }
    let (s, m) = locate(&state, &space_id, &id, &me, false)?;
    if state.spaces[s].messages[m].sender != me {
        return Err(GoogleError::denied("Only the sender can update a message."));
    }
    let updates_text = mask
        .split(',')
        .any(|field| matches!(field.trim(), "text" | "*"));
    if updates_text {
        let text = request["text"].as_str().unwrap_or_default();
        if text.trim().is_empty() {
            return Err(GoogleError::invalid("Message cannot be empty."));
        }
        write_quota(&sim, &space_id, true)?;
        let message = &mut state.spaces[s].messages[m];
        message.text = text.to_owned();
        message.updated = now_micros();
    }
    let space = &state.spaces[s];
    let value = message_json(&state, space, &space.messages[m]);
    if updates_text {
        crate::events::chat_event(
            &sim,
            &mut state,
            &space_id,
            "google.workspace.chat.message.v1.updated",
            &value,
        );
    }
    ok(value)
}

async fn delete_message(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((space_id, id)): Path<(String, String)>,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.messages", "chat.bot"])?;
    let me = member_key(&caller)?;
    let (s, m) = locate(&state, &space_id, &id, &me, false)?;
    if state.spaces[s].messages[m].sender != me {
        return Err(GoogleError::denied("Only the sender can delete a message."));
    }
    write_quota(&sim, &space_id, true)?;
    state.spaces[s].messages[m].deleted = Some(now_micros());
    let name = format!(
        "spaces/{space_id}/messages/{}",
        state.spaces[s].messages[m].id
    );
    crate::events::chat_event(
        &sim,
        &mut state,
        &space_id,
        "google.workspace.chat.message.v1.deleted",
        &json!({"name": name}),
    );
    ok(json!({}))
}

fn reaction_json(message_name: &str, reaction: &Reaction) -> Value {
    json!({
        "name": format!("{message_name}/reactions/{}", reaction.id),
        "user": member_json(&reaction.user),
        "emoji": {"unicode": reaction.emoji},
    })
}

/// Reactions are people's: the app cannot react.
fn reacting_user(caller: &Caller) -> Result<String, GoogleError> {
    caller.user_id().map(str::to_owned).ok_or_else(|| GoogleError::denied("This method doesn't support app authentication with a service account. Authenticate with a user account."))
}

async fn create_reaction(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((space_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&[
        "chat.messages.reactions",
        "chat.messages.reactions.create",
        "chat.messages",
    ])?;
    let me = reacting_user(&caller)?;
    let emoji = request["emoji"]["unicode"]
        .as_str()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| GoogleError::invalid("emoji.unicode is required."))?
        .to_owned();
    let (s, m) = locate(&state, &space_id, &id, &me, false)?;
    if state.spaces[s].messages[m]
        .reactions
        .iter()
        .any(|r| r.user == me && r.emoji == emoji)
    {
        return Err(GoogleError::conflict("The reaction already exists."));
    }
    write_quota(&sim, &space_id, false)?;
    let reaction = Reaction {
        id: random_id(11),
        user: me,
        emoji,
    };
    state.spaces[s].messages[m].reactions.push(reaction.clone());
    let message_name = format!(
        "spaces/{space_id}/messages/{}",
        state.spaces[s].messages[m].id
    );
    let value = reaction_json(&message_name, &reaction);
    crate::events::chat_event(
        &sim,
        &mut state,
        &space_id,
        "google.workspace.chat.reaction.v1.created",
        &value,
    );
    ok(value)
}

async fn list_reactions(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((space_id, id)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&[
        "chat.messages.reactions",
        "chat.messages.reactions.readonly",
        "chat.messages",
        "chat.messages.readonly",
    ])?;
    let me = member_key(&caller)?;
    let (s, m) = locate(&state, &space_id, &id, &me, false)?;
    let message = &state.spaces[s].messages[m];
    let message_name = format!("spaces/{space_id}/messages/{}", message.id);
    let values: Vec<Value> = message
        .reactions
        .iter()
        .map(|r| reaction_json(&message_name, r))
        .collect();
    let (page, next) = offset_page(values, &params, 25, 200)?;
    ok(with_next(json!({ "reactions": page }), next))
}

async fn delete_reaction(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path((space_id, id, reaction)): Path<(String, String, String)>,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require(&["chat.messages.reactions", "chat.messages"])?;
    let me = reacting_user(&caller)?;
    let (s, m) = locate(&state, &space_id, &id, &me, false)?;
    let reactions = &mut state.spaces[s].messages[m].reactions;
    let position = reactions
        .iter()
        .position(|r| r.id == reaction)
        .ok_or_else(|| GoogleError::not_found("Reaction not found."))?;
    if reactions[position].user != me {
        return Err(GoogleError::denied(
            "Only the reacting user can delete a reaction.",
        ));
    }
    write_quota(&sim, &space_id, false)?;
    let removed = reactions.remove(position);
    let message_name = format!(
        "spaces/{space_id}/messages/{}",
        state.spaces[s].messages[m].id
    );
    let value = reaction_json(&message_name, &removed);
    crate::events::chat_event(
        &sim,
        &mut state,
        &space_id,
        "google.workspace.chat.reaction.v1.deleted",
        &value,
    );
    ok(json!({}))
}

/// Posts as a person, for the web view: the same rules as the API's create.
pub fn post_as(
    sim: &GoogleSim,
    state: &mut State,
    space_id: &str,
    user_id: &str,
    text: &str,
) -> Result<(), GoogleError> {
    visible(state, space_id, user_id)?;
    if text.trim().is_empty() {
        return Err(GoogleError::invalid("Message cannot be empty."));
    }
    write_quota(sim, space_id, true)?;
    let id = random_id(11);
    let now = now_micros();
    let space = state.space_mut(space_id).expect("visible");
    space.updated = now;
    space.messages.push(Message {
        id: format!("{id}.{id}"),
        client_id: None,
        request_id: None,
        sender: user_id.to_owned(),
        text: text.to_owned(),
        thread: id,
        thread_reply: false,
        created: now,
        updated: now,
        deleted: None,
        reactions: Vec::new(),
    });
    let space = state.space(space_id).expect("visible");
    let value = message_json(state, space, space.messages.last().expect("just pushed"));
    crate::events::chat_event(
        sim,
        state,
        space_id,
        "google.workspace.chat.message.v1.created",
        &value,
    );
    Ok(())
}
