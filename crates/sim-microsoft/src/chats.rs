//! Teams chats: creating one-on-one and group chats, members, messages (post, list, get,
//! edit, soft delete and undo), mentions and reactions. The operations are shared with the
//! web view so that everything a person does there notifies subscribers as Graph would.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use switchboard_sim_kit::Limit;

use crate::MicrosoftSim;
use crate::directory::conversation_member;
use crate::entra::{Caller, authenticate};
use crate::odata::{
    GraphError, GraphResult, QueryOptions, decode_token, encode_token, iso, json_response,
    no_content, parse_body,
};
use crate::state::{Chat, ChatMember, Message, Reaction, State, iso_opt};
use crate::subscriptions::{Event, publish};

/// Teams limits per app per tenant: posting chat messages, reading them, other reads, the rest.
const POST_LIMIT: Limit = Limit {
    per_second: 20.0,
    burst: 20.0,
};
const GET_MESSAGE_LIMIT: Limit = Limit {
    per_second: 20.0,
    burst: 20.0,
};
const OTHER_GET_LIMIT: Limit = Limit {
    per_second: 30.0,
    burst: 30.0,
};
const OTHER_LIMIT: Limit = Limit {
    per_second: 30.0,
    burst: 30.0,
};

const READ_MESSAGES_DELEGATED: [&str; 2] = ["Chat.Read", "Chat.ReadWrite"];
const READ_MESSAGES_APP: [&str; 2] = ["Chat.Read.All", "Chat.ReadWrite.All"];
const READ_CHAT_DELEGATED: [&str; 3] = ["Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite"];
const READ_CHAT_APP: [&str; 3] = ["Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All"];
const SEND_DELEGATED: [&str; 3] = ["ChatMessage.Send", "Chat.ReadWrite", "Group.ReadWrite.All"];
const MAX_MESSAGE_BYTES: usize = 28 * 1024;

fn limited(
    sim: &MicrosoftSim,
    caller: &Caller,
    bucket: &str,
    limit: Limit,
) -> Result<(), GraphError> {
    sim.limit(
        &format!("teams-{bucket}:{}:{}", caller.app_id, caller.tenant_id),
        limit,
    )
}

fn chat_not_found(id: &str) -> GraphError {
    GraphError::not_found(format!("Chat '{id}' was not found."))
}

fn message_not_found(id: &str) -> GraphError {
    GraphError::not_found(format!("Message '{id}' was not found."))
}

/// The chat, if it is in the caller's tenant and (for a user) one they belong to.
fn visible_chat(state: &State, caller: &Caller, id: &str) -> Result<usize, GraphError> {
    let index = state
        .chat_index(id)
        .filter(|index| state.chats[*index].tenant_id == caller.tenant_id)
        .ok_or_else(|| chat_not_found(id))?;
    if let Some(user) = &caller.user_id
        && !state.chats[index].has_member(user)
    {
        return Err(GraphError::forbidden(format!(
            "The signed-in user is not a member of chat '{id}'."
        )));
    }
    Ok(index)
}

pub fn chat_object(chat: &Chat) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".to_owned(), json!(chat.id));
    object.insert("topic".to_owned(), json!(chat.topic));
    object.insert("createdDateTime".to_owned(), json!(iso(chat.created_ms)));
    object.insert(
        "lastUpdatedDateTime".to_owned(),
        json!(iso(chat.updated_ms)),
    );
    object.insert("chatType".to_owned(), json!(chat.chat_type));
    object.insert(
        "webUrl".to_owned(),
        json!(format!(
            "https://teams.microsoft.com/l/chat/{}/0?tenantId={}",
            crate::odata::encode_component(&chat.id),
            chat.tenant_id
        )),
    );
    object.insert("tenantId".to_owned(), json!(chat.tenant_id));
    object.insert("isHiddenForAllMembers".to_owned(), json!(false));
    object.insert("onlineMeetingInfo".to_owned(), Value::Null);
    object.insert("viewpoint".to_owned(), Value::Null);
    object
}

fn user_identity(state: &State, tenant_id: &str, user_id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.teamworkUserIdentity",
        "id": user_id,
        "displayName": state.display_name(tenant_id, user_id),
        "userIdentityType": "aadUser",
        "tenantId": tenant_id,
    })
}

fn reaction_name(reaction: &str) -> Value {
    let name = match reaction {
        "👍" | "like" => "Like",
        "❤️" | "heart" => "Heart",
        "😆" | "laugh" => "Laugh",
        "😮" | "surprised" => "Surprised",
        "😢" | "sad" => "Sad",
        "😡" | "angry" => "Angry",
        _ => return Value::Null,
    };
    json!(name)
}

pub fn message_json(state: &State, chat: &Chat, message: &Message) -> Value {
    let deleted = message.deleted_ms.is_some();
    let reactions: Vec<Value> = message
        .reactions
        .iter()
        .map(|reaction| {
            json!({
                "reactionType": reaction.reaction_type,
                "displayName": reaction_name(&reaction.reaction_type),
                "reactionContentUrl": null,
                "createdDateTime": iso(reaction.created_ms),
                "user": {"application": null, "device": null, "user": user_identity(state, &chat.tenant_id, &reaction.user_id)},
            })
        })
        .collect();
    json!({
        "id": message.id,
        "replyToId": null,
        "etag": message.modified_ms.to_string(),
        "messageType": "message",
        "createdDateTime": iso(message.created_ms),
        "lastModifiedDateTime": iso(message.modified_ms),
        "lastEditedDateTime": iso_opt(message.edited_ms),
        "deletedDateTime": iso_opt(message.deleted_ms),
        "subject": null,
        "summary": null,
        "chatId": chat.id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": null,
        "channelIdentity": null,
        "policyViolation": null,
        "eventDetail": null,
        "from": {"application": null, "device": null, "user": user_identity(state, &chat.tenant_id, &message.from)},
        "body": {
            "contentType": message.content_type,
            "content": if deleted { String::new() } else { message.content.clone() },
        },
        "attachments": if deleted { Vec::new() } else { message.attachments.clone() },
        "mentions": if deleted { Vec::new() } else { message.mentions.clone() },
        "reactions": if deleted { Vec::new() } else { reactions },
        "messageHistory": [],
    })
}

fn member_view(state: &State, chat: &Chat, member: &ChatMember) -> Value {
    state.tenant(&chat.tenant_id).map_or(Value::Null, |tenant| {
        conversation_member(
            tenant,
            &chat.id,
            &member.user_id,
            &member.roles,
            Some(member.added_ms),
        )
    })
}

/// Creates a chat, or finds the one-on-one chat the pair already has.
pub fn create_chat_op(
    state: &mut State,
    tenant_id: &str,
    creator: Option<&str>,
    chat_type: &str,
    topic: Option<String>,
    members: Vec<(String, Vec<String>)>,
) -> Result<(usize, bool), GraphError> {
    let tenant = state
        .tenant(tenant_id)
        .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))?;
    let mut seen = BTreeSet::new();
    let mut resolved = Vec::with_capacity(members.len());
    for (key, roles) in members {
        let user = tenant
            .user(&key)
            .ok_or_else(|| GraphError::not_found(format!("User '{key}' was not found.")))?;
        if !user.account_enabled {
            return Err(GraphError::bad_request(format!(
                "User '{key}' is disabled and cannot be added to a chat."
            )));
        }
        if user.is_guest() && !roles.iter().any(|role| role == "guest") {
            return Err(GraphError::bad_request(format!(
                "In-tenant guest user '{}' must be assigned the guest role.",
                user.id
            )));
        }
        if !seen.insert(user.id.clone()) {
            return Err(GraphError::bad_request(format!(
                "User '{}' is listed more than once.",
                user.id
            )));
        }
        resolved.push((user.id.clone(), roles));
    }
    if let Some(creator) = creator
        && !seen.contains(creator)
    {
        return Err(GraphError::bad_request(
            "Every participant, including the user creating the chat, must be listed in members.",
        ));
    }
    match chat_type {
        "oneOnOne" => {
            if resolved.len() != 2 {
                return Err(GraphError::bad_request(
                    "A oneOnOne chat must have exactly two members.",
                ));
            }
            if topic.is_some() {
                return Err(GraphError::bad_request(
                    "The topic can be set only for group chats.",
                ));
            }
            if let Some(index) = state.chats.iter().position(|chat| {
                chat.tenant_id == tenant_id
                    && chat.chat_type == "oneOnOne"
                    && resolved.iter().all(|(id, _)| chat.has_member(id))
            }) {
                return Ok((index, false));
            }
        }
        "group" => {
            if resolved.len() < 2 {
                return Err(GraphError::bad_request(
                    "A group chat must have at least two members.",
                ));
            }
        }
        other => {
            return Err(GraphError::bad_request(format!(
                "Invalid value '{other}' for chatType: expected 'oneOnOne' or 'group'."
            )));
        }
    }
    let now = state.next_message_ms();
    let id = if chat_type == "oneOnOne" {
        let mut pair: Vec<&str> = resolved.iter().map(|(id, _)| id.as_str()).collect();
        pair.sort_unstable();
        format!("19:{}_{}@unq.gbl.spaces", pair[0], pair[1])
    } else {
        format!("19:{}@thread.v2", uuid::Uuid::new_v4().simple())
    };
    let chat = Chat {
        id,
        tenant_id: tenant_id.to_owned(),
        chat_type: chat_type.to_owned(),
        topic,
        created_ms: now,
        updated_ms: now,
        members: resolved
            .into_iter()
            .map(|(user_id, roles)| ChatMember {
                user_id,
                roles,
                added_ms: now,
            })
            .collect(),
        messages: Vec::new(),
    };
    Ok((state.add_chat(chat), true))
}

/// Every `<at id="N">` in a message must have its `mentions` entry and vice versa.
fn mention_ids(content: &str) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let lower = content.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find("<at ") {
        rest = &rest[start + 4..];
        let end = rest.find('>').unwrap_or(rest.len());
        let attributes = &rest[..end];
        if let Some(position) = attributes.find("id=") {
            let value = attributes[position + 3..]
                .trim_start_matches(['"', '\''])
                .split(['"', '\'', ' '])
                .next()
                .unwrap_or_default();
            if let Ok(id) = value.parse() {
                ids.insert(id);
            }
        }
    }
    ids
}

fn normalise_mentions(
    state: &State,
    tenant_id: &str,
    content: &str,
    mentions: &[Value],
) -> Result<Vec<Value>, GraphError> {
    let mut normalised = Vec::with_capacity(mentions.len());
    let mut ids = BTreeSet::new();
    for mention in mentions {
        let id = mention
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| GraphError::bad_request("Each mention needs an integer id."))?;
        let text = mention
            .get("mentionText")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let user_id = mention
            .pointer("/mentioned/user/id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                GraphError::bad_request(format!("Mention {id} names no mentioned.user.id."))
            })?;
        let user = state
            .tenant(tenant_id)
            .and_then(|tenant| tenant.user(user_id))
            .ok_or_else(|| {
                GraphError::bad_request(format!("Mentioned user '{user_id}' was not found."))
            })?;
        ids.insert(id);
        normalised.push(json!({
            "id": id,
            "mentionText": text,
            "mentioned": {
                "application": null,
                "device": null,
                "conversation": null,
                "tag": null,
                "user": user_identity(state, tenant_id, &user.id),
            },
        }));
    }
    let in_body = mention_ids(content);
    if ids != in_body {
        return Err(GraphError::bad_request(
            "Mentions must match the <at id=\"…\"> tags of the message body one to one.",
        ));
    }
    Ok(normalised)
}

fn check_body(content_type: &str, content: &str) -> Result<String, GraphError> {
    if content.len() > MAX_MESSAGE_BYTES {
        return Err(GraphError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The message is larger than the allowed size of 28 KB.",
        ));
    }
    match content_type.to_ascii_lowercase().as_str() {
        "html" => Ok("html".to_owned()),
        "text" => Ok("text".to_owned()),
        other => Err(GraphError::bad_request(format!(
            "Invalid value '{other}' for body.contentType: expected 'text' or 'html'."
        ))),
    }
}

fn member_ids(chat: &Chat) -> Vec<String> {
    chat.members
        .iter()
        .map(|member| member.user_id.clone())
        .collect()
}

pub fn post_message_op(
    state: &mut State,
    chat_index: usize,
    sender: &str,
    content_type: &str,
    content: &str,
    mentions: &[Value],
    attachments: &[Value],
) -> Result<(String, Event), GraphError> {
    let content_type = check_body(content_type, content)?;
    let tenant_id = state.chats[chat_index].tenant_id.clone();
    let mentions = normalise_mentions(state, &tenant_id, content, mentions)?;
    let attachments = check_attachments(attachments)?;
    let now = state.next_message_ms();
    let chat = &mut state.chats[chat_index];
    let id = now.to_string();
    chat.messages.push(Message {
        id: id.clone(),
        from: sender.to_owned(),
        content_type,
        content: content.to_owned(),
        mentions,
        attachments,
        reactions: Vec::new(),
        created_ms: now,
        modified_ms: now,
        edited_ms: None,
        deleted_ms: None,
    });
    chat.updated_ms = now;
    let event = Event::message(&tenant_id, &chat.id, &id, member_ids(chat), "created");
    Ok((id, event))
}

/// A message's attachments as Graph shows them (`chatMessageAttachment`): each needs an `id`
/// and a `contentType`; the other properties are null when not given.
fn check_attachments(attachments: &[Value]) -> Result<Vec<Value>, GraphError> {
    attachments
        .iter()
        .map(|attachment| {
            let (Some(id), Some(content_type)) = (
                attachment.get("id").and_then(Value::as_str),
                attachment.get("contentType").and_then(Value::as_str),
            ) else {
                return Err(GraphError::bad_request(
                    "Each attachment needs an id and a contentType.",
                ));
            };
            let property = |name: &str| attachment.get(name).cloned().unwrap_or(Value::Null);
            Ok(json!({
                "id": id,
                "contentType": content_type,
                "contentUrl": property("contentUrl"),
                "content": property("content"),
                "name": property("name"),
                "thumbnailUrl": property("thumbnailUrl"),
                "teamsAppId": property("teamsAppId"),
            }))
        })
        .collect()
}

fn message_position(chat: &Chat, message_id: &str) -> Result<usize, GraphError> {
    chat.messages
        .iter()
        .position(|message| message.id == message_id)
        .ok_or_else(|| message_not_found(message_id))
}

pub fn edit_message_op(
    state: &mut State,
    chat_index: usize,
    message_id: &str,
    editor: &str,
    content_type: &str,
    content: &str,
    mentions: &[Value],
) -> Result<Event, GraphError> {
    let content_type = check_body(content_type, content)?;
    let tenant_id = state.chats[chat_index].tenant_id.clone();
    let position = message_position(&state.chats[chat_index], message_id)?;
    {
        let message = &state.chats[chat_index].messages[position];
        if message.from != editor {
            return Err(GraphError::forbidden(
                "Only the sender of a message can edit it.",
            ));
        }
        if message.deleted_ms.is_some() {
            return Err(GraphError::bad_request(
                "A deleted message cannot be edited.",
            ));
        }
    }
    let mentions = normalise_mentions(state, &tenant_id, content, mentions)?;
    let now = state.next_message_ms();
    let chat = &mut state.chats[chat_index];
    let message = &mut chat.messages[position];
    message.content_type = content_type;
    message.content = content.to_owned();
    message.mentions = mentions;
    message.edited_ms = Some(now);
    message.modified_ms = now;
    chat.updated_ms = now;
    Ok(Event::message(
        &tenant_id,
        &chat.id,
        message_id,
        member_ids(chat),
        "updated",
    ))
}

pub fn soft_delete_op(
    state: &mut State,
    chat_index: usize,
    message_id: &str,
    user: &str,
    undo: bool,
) -> Result<Event, GraphError> {
    let position = message_position(&state.chats[chat_index], message_id)?;
    if state.chats[chat_index].messages[position].from != user {
        return Err(GraphError::forbidden(
            "Only the sender of a message can delete it.",
        ));
    }
    let now = state.next_message_ms();
    let chat = &mut state.chats[chat_index];
    let message = &mut chat.messages[position];
    message.deleted_ms = if undo { None } else { Some(now) };
    message.modified_ms = now;
    let change = if undo { "updated" } else { "deleted" };
    Ok(Event::message(
        &chat.tenant_id,
        &chat.id,
        message_id,
        member_ids(chat),
        change,
    ))
}

pub fn reaction_op(
    state: &mut State,
    chat_index: usize,
    message_id: &str,
    user: &str,
    reaction: &str,
    set: bool,
) -> Result<Event, GraphError> {
    let reaction = reaction.trim();
    if reaction.is_empty() {
        return Err(GraphError::bad_request("reactionType must not be empty."));
    }
    let position = message_position(&state.chats[chat_index], message_id)?;
    if state.chats[chat_index].messages[position]
        .deleted_ms
        .is_some()
    {
        return Err(message_not_found(message_id));
    }
    let now = state.next_message_ms();
    let chat = &mut state.chats[chat_index];
    let message = &mut chat.messages[position];
    let existing = message
        .reactions
        .iter()
        .position(|r| r.user_id == user && r.reaction_type == reaction);
    match (set, existing) {
        (true, None) => message.reactions.push(Reaction {
            reaction_type: reaction.to_owned(),
            user_id: user.to_owned(),
            created_ms: now,
        }),
        (false, Some(index)) => {
            message.reactions.remove(index);
        }
        _ => {}
    }
    message.modified_ms = now;
    Ok(Event::message(
        &chat.tenant_id,
        &chat.id,
        message_id,
        member_ids(chat),
        "updated",
    ))
}

fn text<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

fn bound_user(member: &Value) -> Option<String> {
    let bind = member
        .get("user@odata.bind")
        .and_then(Value::as_str)
        .or_else(|| member.get("userId").and_then(Value::as_str))?;
    if let Some(start) = bind.find("users('") {
        let rest = &bind[start + 7..];
        return rest.find("')").map(|end| rest[..end].to_owned());
    }
    Some(bind.rsplit('/').next().unwrap_or(bind).to_owned())
}

pub async fn create_chat(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.require(
        &["Chat.Create", "Chat.ReadWrite"],
        &["Chat.Create", "Teamwork.Migrate.All"],
    )?;
    limited(&sim, &caller, "other", OTHER_LIMIT)?;
    let body = parse_body(&body)?;
    let chat_type = text(&body, "/chatType")
        .ok_or_else(|| GraphError::bad_request("The chatType property is required."))?;
    let topic = text(&body, "/topic")
        .filter(|topic| !topic.trim().is_empty())
        .map(str::to_owned);
    let list = body
        .get("members")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::bad_request("The members property is required."))?;
    let mut members = Vec::with_capacity(list.len());
    for member in list {
        let kind = member
            .get("@odata.type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !kind.eq_ignore_ascii_case("#microsoft.graph.aadUserConversationMember") {
            return Err(GraphError::bad_request(
                "Each member must be a #microsoft.graph.aadUserConversationMember.",
            ));
        }
        let user = bound_user(member).ok_or_else(|| {
            GraphError::bad_request("Each member needs a user@odata.bind reference.")
        })?;
        let roles: Vec<String> = member
            .get("roles")
            .and_then(Value::as_array)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(role) = roles
            .iter()
            .find(|role| *role != "owner" && *role != "guest")
        {
            return Err(GraphError::bad_request(format!(
                "Invalid role '{role}': members are 'owner' or 'guest'."
            )));
        }
        members.push((user, roles));
    }
    let answer = {
        let mut state = sim.lock();
        let (index, _) = create_chat_op(
            &mut state,
            &caller.tenant_id,
            caller.user_id.as_deref(),
            chat_type,
            topic,
            members,
        )?;
        let mut object = chat_object(&state.chats[index]);
        object.insert(
            "@odata.context".to_owned(),
            json!(format!("{}/$metadata#chats/$entity", sim.graph_base())),
        );
        Value::Object(object)
    };
    Ok(json_response(StatusCode::CREATED, &answer))
}

fn chats_of(
    sim: &MicrosoftSim,
    caller: &Caller,
    user_key: Option<&str>,
    pairs: &[(String, String)],
) -> GraphResult {
    caller.require(&READ_CHAT_DELEGATED, &READ_CHAT_APP)?;
    limited(sim, caller, "get", OTHER_GET_LIMIT)?;
    let options = QueryOptions::parse(pairs)?;
    let size = options.page_size(50, 50)?;
    let start = position(&options)?;
    let state = sim.lock();
    let tenant = state
        .tenant(&caller.tenant_id)
        .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))?;
    let user_id = match (user_key, &caller.user_id) {
        (Some(key), _) => tenant
            .user(key)
            .map(|user| user.id.clone())
            .ok_or_else(|| GraphError::directory_not_found(key))?,
        (None, Some(me)) => me.clone(),
        (None, None) => {
            return Err(GraphError::forbidden(
                "Requested API is not supported in application-only context",
            ));
        }
    };
    if caller.user_id.as_ref().is_some_and(|me| *me != user_id) {
        return Err(GraphError::forbidden(
            "A user may only list their own chats.",
        ));
    }
    let mut chats: Vec<&Chat> = state
        .chats
        .iter()
        .filter(|chat| chat.tenant_id == caller.tenant_id && chat.has_member(&user_id))
        .collect();
    chats.sort_by(|a, b| {
        b.updated_ms
            .cmp(&a.updated_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
    let value: Vec<Value> = chats
        .iter()
        .skip(start)
        .take(size)
        .map(|chat| Value::Object(chat_object(chat)))
        .collect();
    let mut body = json!({"@odata.context": format!("{}/$metadata#chats", sim.graph_base())});
    if chats.len() > start + size {
        let base = match user_key {
            Some(key) => format!("{}/users/{key}/chats", sim.graph_base()),
            None => format!("{}/me/chats", sim.graph_base()),
        };
        body["@odata.nextLink"] =
            json!(options.next_link(&base, &encode_token(&format!("p:{}", start + size))));
    }
    body["value"] = json!(value);
    Ok(json_response(StatusCode::OK, &body))
}

fn position(options: &QueryOptions) -> Result<usize, GraphError> {
    match &options.skiptoken {
        None => Ok(0),
        Some(token) => decode_token(token)
            .and_then(|text| text.strip_prefix("p:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| GraphError::bad_request("Invalid $skiptoken value.")),
    }
}

pub async fn list_chats(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    chats_of(&sim, &caller, None, &pairs)
}

pub async fn my_chats(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.user()?;
    chats_of(&sim, &caller, None, &pairs)
}

pub async fn user_chats(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    chats_of(&sim, &caller, Some(&key), &pairs)
}

pub async fn get_chat(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.require(&READ_CHAT_DELEGATED, &READ_CHAT_APP)?;
    limited(&sim, &caller, "get", OTHER_GET_LIMIT)?;
    let state = sim.lock();
    let index = visible_chat(&state, &caller, &id)?;
    let mut object = chat_object(&state.chats[index]);
    object.insert(
        "@odata.context".to_owned(),
        json!(format!("{}/$metadata#chats/$entity", sim.graph_base())),
    );
    Ok(json_response(StatusCode::OK, &Value::Object(object)))
}

pub async fn chat_members(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.require(
        &[
            "ChatMember.Read",
            "ChatMember.ReadWrite",
            "Chat.ReadBasic",
            "Chat.Read",
            "Chat.ReadWrite",
        ],
        &[
            "ChatMember.Read.All",
            "ChatMember.ReadWrite.All",
            "Chat.ReadBasic.All",
            "Chat.Read.All",
            "Chat.ReadWrite.All",
        ],
    )?;
    limited(&sim, &caller, "get", OTHER_GET_LIMIT)?;
    let state = sim.lock();
    let index = visible_chat(&state, &caller, &id)?;
    let chat = &state.chats[index];
    let value: Vec<Value> = chat
        .members
        .iter()
        .map(|member| member_view(&state, chat, member))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{}/$metadata#chats('{}')/members", sim.graph_base(), chat.id),
            "@odata.count": value.len(),
            "value": value,
        }),
    ))
}

/// The two orders "List messages in a chat" offers, both newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageOrder {
    LastModified,
    Created,
}

impl MessageOrder {
    fn property(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("lastModifiedDateTime") {
            Some(Self::LastModified)
        } else if name.eq_ignore_ascii_case("createdDateTime") {
            Some(Self::Created)
        } else {
            None
        }
    }

    fn key(self, message: &Message) -> u64 {
        match self {
            Self::LastModified => message.modified_ms,
            Self::Created => message.created_ms,
        }
    }
}

/// A chat's messages as `$orderby` and `$filter` select them. Graph documents `$orderby` on
/// `lastModifiedDateTime` (the default) or `createdDateTime`, descending only, and a `$filter`
/// range on the same property: `gt` and `lt` for `lastModifiedDateTime`, `lt` only for
/// `createdDateTime`. A `$filter` without an `$orderby` on its property is ignored, as documented.
#[derive(Debug, PartialEq, Eq)]
struct MessageQuery {
    order: MessageOrder,
    after: Option<u64>,
    before: Option<u64>,
}

impl MessageQuery {
    fn parse(options: &QueryOptions) -> Result<Self, GraphError> {
        let orderby = options
            .rest
            .iter()
            .find(|(name, _)| name.trim_start_matches('$').eq_ignore_ascii_case("orderby"))
            .map(|(_, value)| value.as_str());
        let order = match orderby {
            None => None,
            Some(text) => {
                let mut words = text.split_whitespace();
                let property = words.next().unwrap_or_default();
                let order = MessageOrder::property(property).ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "$orderby is supported only on lastModifiedDateTime and createdDateTime, not '{property}'."
                    ))
                })?;
                match (words.next(), words.next()) {
                    (Some(direction), None) if direction.eq_ignore_ascii_case("desc") => {}
                    _ => {
                        return Err(GraphError::bad_request(format!(
                            "$orderby '{text}' is not supported: only descending order is."
                        )));
                    }
                }
                Some(order)
            }
        };
        let mut query = Self {
            order: order.unwrap_or(MessageOrder::LastModified),
            after: None,
            before: None,
        };
        let Some(filter) = options.filter.as_deref() else {
            return Ok(query);
        };
        let terms = filter_terms(filter)?;
        if order.is_none()
            || terms
                .iter()
                .any(|(property, _, _)| Some(*property) != order)
        {
            return Ok(query);
        }
        for (property, operator, at) in terms {
            match operator {
                "lt" => query.before = Some(query.before.map_or(at, |b| b.min(at))),
                "gt" if property == MessageOrder::LastModified => {
                    query.after = Some(query.after.map_or(at, |a| a.max(at)));
                }
                _ => {
                    return Err(GraphError::bad_request(format!(
                        "$filter operator '{operator}' is not supported on this property: lastModifiedDateTime supports gt and lt, createdDateTime lt."
                    )));
                }
            }
        }
        Ok(query)
    }

    fn selects(&self, message: &Message) -> bool {
        let key = self.order.key(message);
        self.after.is_none_or(|after| key > after) && self.before.is_none_or(|before| key < before)
    }
}

/// `property op timestamp` terms joined by `and`; the operator is lower-cased.
fn filter_terms(filter: &str) -> Result<Vec<(MessageOrder, &'static str, u64)>, GraphError> {
    let invalid = || {
        GraphError::bad_request(format!(
            "Invalid $filter '{filter}': expected a date range on lastModifiedDateTime or createdDateTime."
        ))
    };
    let words: Vec<&str> = filter.split_whitespace().collect();
    let mut terms = Vec::new();
    for term in words.split(|w| w.eq_ignore_ascii_case("and")) {
        let [property, operator, value] = term else {
            return Err(invalid());
        };
        let property = MessageOrder::property(property).ok_or_else(invalid)?;
        let operator = ["gt", "lt", "ge", "le", "eq", "ne"]
            .into_iter()
            .find(|known| operator.eq_ignore_ascii_case(known))
            .ok_or_else(invalid)?;
        let at = crate::odata::parse_iso(value).ok_or_else(invalid)?;
        terms.push((property, operator, at));
    }
    Ok(terms)
}

pub async fn list_messages(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.require(&READ_MESSAGES_DELEGATED, &READ_MESSAGES_APP)?;
    limited(&sim, &caller, "get-message", GET_MESSAGE_LIMIT)?;
    let options = QueryOptions::parse(&pairs)?;
    let size = match options.top {
        None => 20,
        Some(top) if (1..=50).contains(&top) => top,
        Some(top) => {
            return Err(GraphError::bad_request(format!(
                "Invalid page size {top}: $top must be between 1 and 50 for chat messages."
            )));
        }
    };
    let query = MessageQuery::parse(&options)?;
    let start = position(&options)?;
    let state = sim.lock();
    let index = visible_chat(&state, &caller, &id)?;
    let chat = &state.chats[index];
    let mut selected: Vec<&Message> = chat
        .messages
        .iter()
        .rev()
        .filter(|message| query.selects(message))
        .collect();
    // Stable, so messages modified in the same millisecond stay newest-created first.
    selected.sort_by_key(|message| std::cmp::Reverse(query.order.key(message)));
    let value: Vec<Value> = selected
        .iter()
        .skip(start)
        .take(size)
        .map(|message| message_json(&state, chat, message))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#chats('{}')/messages", sim.graph_base(), chat.id),
        "@odata.count": value.len(),
    });
    if selected.len() > start + size {
        let base = format!(
            "{}/chats/{}/messages",
            sim.graph_base(),
            crate::odata::encode_component(&chat.id)
        );
        body["@odata.nextLink"] =
            json!(options.next_link(&base, &encode_token(&format!("p:{}", start + size))));
    }
    body["value"] = json!(value);
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn get_message(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path((id, message_id)): Path<(String, String)>,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.require(&READ_MESSAGES_DELEGATED, &READ_MESSAGES_APP)?;
    limited(&sim, &caller, "get-message", GET_MESSAGE_LIMIT)?;
    let state = sim.lock();
    let index = visible_chat(&state, &caller, &id)?;
    let chat = &state.chats[index];
    let position = message_position(chat, &message_id)?;
    let mut body = message_json(&state, chat, &chat.messages[position]);
    body["@odata.context"] = json!(format!(
        "{}/$metadata#chats('{}')/messages/$entity",
        sim.graph_base(),
        chat.id
    ));
    Ok(json_response(StatusCode::OK, &body))
}

const APP_ONLY_POST: &str = "Message POST is allowed in application-only context only for import purposes. Refer to https://docs.microsoft.com/microsoftteams/platform/graph-api/import-messages/import-external-messages-to-teams for more details.";

fn mentions_of(body: &Value) -> Vec<Value> {
    body.get("mentions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn attachments_of(body: &Value) -> Vec<Value> {
    body.get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub async fn post_message(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    let Some(sender) = caller.user_id.clone() else {
        return Err(GraphError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            APP_ONLY_POST,
        ));
    };
    caller.require(&SEND_DELEGATED, &[])?;
    limited(&sim, &caller, "post", POST_LIMIT)?;
    let body = parse_body(&body)?;
    let content = text(&body, "/body/content")
        .ok_or_else(|| GraphError::bad_request("The message body content is required."))?;
    let content_type = text(&body, "/body/contentType").unwrap_or("text");
    let (answer, event) = {
        let mut state = sim.lock();
        let index = visible_chat(&state, &caller, &id)?;
        let (message_id, event) = post_message_op(
            &mut state,
            index,
            &sender,
            content_type,
            content,
            &mentions_of(&body),
            &attachments_of(&body),
        )?;
        let chat = &state.chats[index];
        let position = message_position(chat, &message_id)?;
        let mut answer = message_json(&state, chat, &chat.messages[position]);
        answer["@odata.context"] = json!(format!(
            "{}/$metadata#chats('{}')/messages/$entity",
            sim.graph_base(),
            chat.id
        ));
        (answer, event)
    };
    publish(&sim, vec![event]);
    Ok(json_response(StatusCode::CREATED, &answer))
}

pub async fn update_message(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path((id, message_id)): Path<(String, String)>,
    body: Bytes,
) -> GraphResult {
    let caller = authenticate(&sim, &headers)?;
    caller.require(&["Chat.ReadWrite"], &[])?;
    let editor = caller.user()?.to_owned();
    limited(&sim, &caller, "other", OTHER_LIMIT)?;
    let body = parse_body(&body)?;
    let content = text(&body, "/body/content")
        .ok_or_else(|| GraphError::bad_request("The message body content is required."))?;
    let content_type = text(&body, "/body/contentType").unwrap_or("text");
    let event = {
        let mut state = sim.lock();
        let index = visible_chat(&state, &caller, &id)?;
        edit_message_op(
            &mut state,
            index,
            &message_id,
            &editor,
            content_type,
            content,
            &mentions_of(&body),
        )?
    };
    publish(&sim, vec![event]);
    Ok(no_content())
}

fn delete_or_restore(
    sim: &MicrosoftSim,
    headers: &HeaderMap,
    (user_key, id, message_id): (String, String, String),
    undo: bool,
) -> GraphResult {
    let caller = authenticate(sim, headers)?;
    caller.require(&["Chat.ReadWrite"], &[])?;
    let me = caller.user()?.to_owned();
    limited(sim, &caller, "other", OTHER_LIMIT)?;
    let event = {
        let mut state = sim.lock();
        let user_id = state
            .tenant(&caller.tenant_id)
            .and_then(|tenant| tenant.user(&user_key))
            .map(|user| user.id.clone())
            .ok_or_else(|| GraphError::directory_not_found(&user_key))?;
        if user_id != me {
            return Err(GraphError::forbidden(
                "Messages can only be deleted on behalf of the signed-in user.",
            ));
        }
        let index = visible_chat(&state, &caller, &id)?;
        soft_delete_op(&mut state, index, &message_id, &me, undo)?
    };
    publish(sim, vec![event]);
    Ok(no_content())
}

pub async fn soft_delete(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
) -> GraphResult {
    delete_or_restore(&sim, &headers, path, false)
}

pub async fn undo_soft_delete(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
) -> GraphResult {
    delete_or_restore(&sim, &headers, path, true)
}

fn react(
    sim: &MicrosoftSim,
    headers: &HeaderMap,
    (id, message_id): (String, String),
    body: &[u8],
    set: bool,
) -> GraphResult {
    let caller = authenticate(sim, headers)?;
    caller.require(&["ChatMessage.Send", "Chat.ReadWrite"], &[])?;
    let me = caller.user()?.to_owned();
    limited(sim, &caller, "other", OTHER_LIMIT)?;
    let body = parse_body(body)?;
    let reaction = text(&body, "/reactionType")
        .ok_or_else(|| GraphError::bad_request("The reactionType property is required."))?;
    let event = {
        let mut state = sim.lock();
        let index = visible_chat(&state, &caller, &id)?;
        reaction_op(&mut state, index, &message_id, &me, reaction, set)?
    };
    publish(sim, vec![event]);
    Ok(no_content())
}

pub async fn set_reaction(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> GraphResult {
    react(&sim, &headers, path, &body, true)
}

pub async fn unset_reaction(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> GraphResult {
    react(&sim, &headers, path, &body, false)
}

/// Chats have no reply threads: replies exist for channel messages only.
pub async fn replies(Shared(sim): Shared<Arc<MicrosoftSim>>, headers: HeaderMap) -> GraphResult {
    authenticate(&sim, &headers)?;
    Err(GraphError::bad_request(
        "Replies are supported only for channel messages; chat messages have no replies.",
    ))
}
