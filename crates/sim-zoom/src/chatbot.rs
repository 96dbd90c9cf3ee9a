//! The Chatbot API at `/zoom/v2/im/chat/messages`: the chatbot, with its client-credentials
//! token, sends a message (`content` with a head and body items) to a user's chat with it, and
//! edits (`PUT …/{message_id}`, a new `content`) or deletes (`DELETE …/{message_id}`) its own
//! messages, each answered with the message's ids and time; none of this sends an event, as
//! chats with the chatbot have no Team Chat events. A user writing to the chatbot (in the web
//! view) notifies the chatbot's endpoint with a `bot_notification`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::{post, put};
use serde_json::{Value, json};

use crate::events;
use crate::messages::{Content, not_found};
use crate::state::{
    ACCOUNT_ID, AppKind, CHATBOT_CLIENT_ID, CHATBOT_SCOPE, Message, Place, ROBOT_JID, ROBOT_NAME,
    State,
};
use crate::wire::{
    Answer, ZoomError, created, iso, json_body, message_id, now_millis, ok, param, random_text,
};
use crate::{Category, ZoomSim};

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route("/zoom/v2/im/chat/messages", post(send))
        .route(
            "/zoom/v2/im/chat/messages/{message_id}",
            put(edit).delete(remove),
        )
}

#[derive(serde::Deserialize)]
struct Head {
    text: String,
}

#[derive(serde::Deserialize)]
struct BodyItem {
    #[serde(rename = "type")]
    item_type: String,
    text: Option<String>,
}

#[derive(serde::Deserialize)]
struct BotContent {
    head: Option<Head>,
    #[serde(default)]
    body: Vec<BodyItem>,
}

#[derive(serde::Deserialize)]
struct BotMessage {
    robot_jid: String,
    to_jid: String,
    account_id: Option<String>,
    user_jid: String,
    content: Value,
}

/// The text a chat shows of the chatbot's `content`: its head, then its message items.
fn content_text(content: &BotContent) -> String {
    content
        .head
        .iter()
        .map(|head| head.text.clone())
        .chain(
            content
                .body
                .iter()
                .filter(|item| item.item_type == "message")
                .filter_map(|item| item.text.clone()),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// Refuses a token that is not the chatbot's client-credentials token (`imchat:bot`), after the
/// account's Medium budget.
fn chatbot_caller(sim: &ZoomSim, state: &State, headers: &HeaderMap) -> Result<(), ZoomError> {
    let caller = sim.caller(state, headers, Category::Medium)?;
    if caller.client_id != CHATBOT_CLIENT_ID || !caller.holds(CHATBOT_SCOPE) {
        return Err(ZoomError::missing_scopes(&[CHATBOT_SCOPE.to_owned()]));
    }
    Ok(())
}

/// Refuses a `robot_jid` that is not this chatbot's and an `account_id`, when given, that is not
/// the account that installed it.
fn check_bot(robot_jid: &str, account_id: Option<&str>) -> Result<(), ZoomError> {
    if robot_jid != ROBOT_JID {
        return Err(ZoomError::invalid(
            "Validation Failed. robot_jid is not this chatbot's.",
        ));
    }
    if account_id.is_some_and(|account| account != ACCOUNT_ID) {
        return Err(ZoomError::invalid(
            "Validation Failed. account_id is not the account that installed the chatbot.",
        ));
    }
    Ok(())
}

/// Refuses a `user_jid` that names no active user (a JID, or a user id as Rivet's `say()` sends).
fn check_user_jid(state: &State, user_jid: &str) -> Result<(), ZoomError> {
    if state.active_user(user_jid).is_none() {
        return Err(ZoomError::invalid(
            "Validation Failed. user_jid is not a user of the account.",
        ));
    }
    Ok(())
}

/// The text a chat shows of a `content` card; refused when it has neither a head nor a message
/// item.
fn card_text(content: &Value) -> Result<String, ZoomError> {
    let content: BotContent = serde_json::from_value(content.clone())
        .map_err(|error| ZoomError::invalid(format!("Validation Failed. content: {error}")))?;
    let text = content_text(&content);
    if text.is_empty() {
        return Err(ZoomError::invalid(
            "Validation Failed. content needs a head or a message item.",
        ));
    }
    Ok(text)
}

async fn send(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let mut state = sim.lock();
    chatbot_caller(&sim, &state, &headers)?;
    let request: BotMessage = json_body(&body)?;
    check_bot(&request.robot_jid, request.account_id.as_deref())?;
    let user = state
        .active_user(&request.to_jid)
        .filter(|u| u.jid == request.to_jid)
        .ok_or_else(|| {
            ZoomError::invalid(
                "Validation Failed. to_jid must be the JID of a user of the account (the simulated chatbot is in no channel).",
            )
        })?
        .clone();
    check_user_jid(&state, &request.user_jid)?;
    let text = card_text(&request.content)?;
    let now = state.next_message_time();
    let id = message_id();
    state
        .messages_mut(&Place::Bot(user.id.clone()))
        .push(Message {
            id: id.clone(),
            sender: ROBOT_JID.to_owned(),
            text,
            reply_main: None,
            at_items: Vec::new(),
            rich_text: Vec::new(),
            reactions: Vec::new(),
            bot_content: Some(request.content),
            created: now,
            updated: None,
        });
    created(json!({
        "message_id": id,
        "robot_jid": ROBOT_JID,
        "sent_time": iso(now),
        "to_jid": user.jid,
        "user_jid": request.user_jid,
    }))
}

/// The chat with the chatbot that holds the chatbot's message `id`. A message the chatbot cannot
/// see (in no chat with it) does not exist for it; one a user wrote to it is not its own.
fn own_message(state: &State, id: &str) -> Result<Place, ZoomError> {
    let (place, message) = state
        .conversations
        .iter()
        .filter_map(|(key, messages)| {
            Place::from_key(key)
                .filter(|place| matches!(place, Place::Bot(_)))
                .map(|place| (place, messages))
        })
        .find_map(|(place, messages)| {
            messages
                .iter()
                .find(|m| m.id == id)
                .map(|message| (place, message))
        })
        .ok_or_else(|| not_found(id))?;
    if message.sender == ROBOT_JID {
        Ok(place)
    } else {
        Err(ZoomError::forbidden(
            "Only the chatbot's own messages can be edited or deleted with its token.",
        ))
    }
}

/// The JID of the user whose chat with the chatbot `place` is: its messages' `to_jid`.
fn chat_user_jid(state: &State, place: &Place) -> String {
    match place {
        Place::Bot(user) => state.user(user).map(|u| u.jid.clone()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// `PUT im/chat/messages/{message_id}`: the body of Rivet's `EditChatbotMessageRequestBody`.
#[derive(serde::Deserialize)]
struct EditedBotMessage {
    robot_jid: String,
    account_id: Option<String>,
    user_jid: String,
    content: Value,
}

async fn edit(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let mut state = sim.lock();
    chatbot_caller(&sim, &state, &headers)?;
    let request: EditedBotMessage = json_body(&body)?;
    check_bot(&request.robot_jid, request.account_id.as_deref())?;
    check_user_jid(&state, &request.user_jid)?;
    let place = own_message(&state, &id)?;
    let text = card_text(&request.content)?;
    let to_jid = chat_user_jid(&state, &place);
    let message = state
        .message_mut(&place, &id)
        .ok_or_else(|| not_found(&id))?;
    message.text = text;
    message.bot_content = Some(request.content);
    message.updated = Some(now_millis());
    ok(json!({
        "message_id": id,
        "robot_jid": ROBOT_JID,
        "sent_time": iso(message.created),
        "to_jid": to_jid,
        "user_jid": request.user_jid,
    }))
}

/// `DELETE im/chat/messages/{message_id}?robot_jid&account_id&user_jid` (Rivet's
/// `DeleteChatbotMessageQueryParams`).
async fn remove(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let mut state = sim.lock();
    chatbot_caller(&sim, &state, &headers)?;
    let required = |name: &str| {
        param(&params, name)
            .ok_or_else(|| ZoomError::invalid(format!("Validation Failed. {name} is required.")))
    };
    let robot_jid = required("robot_jid")?;
    let user_jid = required("user_jid")?;
    check_bot(robot_jid, param(&params, "account_id"))?;
    check_user_jid(&state, user_jid)?;
    let place = own_message(&state, &id)?;
    let to_jid = chat_user_jid(&state, &place);
    state.messages_mut(&place).retain(|m| m.id != id);
    ok(json!({
        "message_id": id,
        "robot_jid": ROBOT_JID,
        "sent_time": iso(now_millis()),
        "to_jid": to_jid,
        "user_jid": user_jid,
    }))
}

/// `user` writes `text` to the chatbot: it is kept in their chat with it, and the chatbot's
/// endpoint is notified.
pub fn write_to_bot(
    sim: &ZoomSim,
    state: &mut State,
    user: &str,
    text: &str,
) -> Result<(), ZoomError> {
    let content = Content::text(text.to_owned());
    let place = Place::Bot(user.to_owned());
    crate::messages::post(sim, state, user, &place, content, None)?;
    let (Some(app), Some(sender)) = (state.app(AppKind::Chatbot), state.user(user)) else {
        return Ok(());
    };
    let payload = json!({
        "accountId": ACCOUNT_ID,
        "channelName": ROBOT_NAME,
        "cmd": text,
        "robotJid": ROBOT_JID,
        "timestamp": now_millis(),
        "toJid": sender.jid,
        "triggerId": random_text(22),
        "userId": sender.id,
        "userJid": sender.jid,
        "userName": sender.display_name,
    });
    events::send(sim, app, "bot_notification", payload);
    Ok(())
}
