//! The Chatbot API at `/zoom/v2/im/chat/messages`: the chatbot, with its client-credentials
//! token, sends a message (`content` with a head and body items) to a user's chat with it; a
//! user writing to the chatbot (in the web view) notifies the chatbot's endpoint with a
//! `bot_notification`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::events;
use crate::messages::Content;
use crate::state::{
    ACCOUNT_ID, AppKind, CHATBOT_CLIENT_ID, CHATBOT_SCOPE, Message, Place, ROBOT_JID, ROBOT_NAME,
    State,
};
use crate::wire::{
    Answer, ZoomError, created, iso, json_body, message_id, now_millis, random_text,
};
use crate::{Category, ZoomSim};

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new().route("/zoom/v2/im/chat/messages", post(send))
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

async fn send(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    if caller.client_id != CHATBOT_CLIENT_ID || !caller.holds(CHATBOT_SCOPE) {
        return Err(ZoomError::missing_scopes(&[CHATBOT_SCOPE.to_owned()]));
    }
    let request: BotMessage = json_body(&body)?;
    if request.robot_jid != ROBOT_JID {
        return Err(ZoomError::invalid(
            "Validation Failed. robot_jid is not this chatbot's.",
        ));
    }
    if request
        .account_id
        .as_deref()
        .is_some_and(|account| account != ACCOUNT_ID)
    {
        return Err(ZoomError::invalid(
            "Validation Failed. account_id is not the account that installed the chatbot.",
        ));
    }
    let user = state
        .active_user(&request.to_jid)
        .filter(|u| u.jid == request.to_jid)
        .ok_or_else(|| {
            ZoomError::invalid(
                "Validation Failed. to_jid must be the JID of a user of the account (the simulated chatbot is in no channel).",
            )
        })?
        .clone();
    if state.active_user(&request.user_jid).is_none() {
        return Err(ZoomError::invalid(
            "Validation Failed. user_jid is not a user of the account.",
        ));
    }
    let content: BotContent = serde_json::from_value(request.content.clone())
        .map_err(|error| ZoomError::invalid(format!("Validation Failed. content: {error}")))?;
    let text = content_text(&content);
    if text.is_empty() {
        return Err(ZoomError::invalid(
            "Validation Failed. content needs a head or a message item.",
        ));
    }
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
