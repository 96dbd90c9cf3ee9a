//! Chat messages as a user at `/zoom/v2/chat/users/{userId}/messages`: sending to a contact
//! (by e-mail or user id) or to a channel, replies one level deep, mentions (`at_items`) and
//! formatting (`rich_text`), listing a conversation newest first by day or time range with
//! stable page tokens, getting one, editing and deleting one's own, and emoji reactions.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::{get, patch};
use serde_json::{Value, json};

use crate::events::{self, Change};
use crate::state::{AtItem, Message, Place, Reaction, RichText, State};
use crate::wire::{
    Answer, ZoomError, created, day, iso, json_body, message_id, no_content, now_millis, ok,
    page_position, page_size, page_token, param, parse_time,
};
use crate::{Category, ZoomSim};

/// Zoom refuses a message longer than this many characters.
const MAX_MESSAGE_CHARS: usize = 4096;
/// The formats `rich_text` may name.
const FORMAT_TYPES: [&str; 14] = [
    "Bold",
    "Italic",
    "Strikethrough",
    "BulletedList",
    "NumberedList",
    "Underline",
    "FontSize",
    "FontColor",
    "BackgroundColor",
    "LeftIndent",
    "Paragraph",
    "Quote",
    "AddLink",
    "CodeBlock",
];

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route(
            "/zoom/v2/chat/users/{user_id}/messages",
            get(list).post(send),
        )
        .route(
            "/zoom/v2/chat/users/{user_id}/messages/{message_id}",
            get(get_one).put(edit).delete(remove),
        )
        .route(
            "/zoom/v2/chat/users/{user_id}/messages/{message_id}/emoji_reactions",
            patch(react),
        )
}

/// The conversation `to_contact` or `to_channel` names, from `me`'s side: exactly one of
/// them, a contact who is an active user of the account, a channel `me` belongs to.
pub fn conversation(
    state: &State,
    me: &str,
    to_contact: Option<&str>,
    to_channel: Option<&str>,
) -> Result<Place, ZoomError> {
    match (to_contact, to_channel) {
        (Some(contact), None) => {
            let other = state
                .active_user(contact)
                .ok_or_else(ZoomError::no_contact)?;
            if other.id == me {
                return Err(ZoomError::invalid(
                    "Validation Failed. to_contact may not be the user themselves.",
                ));
            }
            Ok(Place::direct(me, &other.id))
        }
        (None, Some(channel)) => state
            .channel(channel)
            .filter(|c| c.has_member(me))
            .map(|c| Place::Channel(c.id.clone()))
            .ok_or_else(|| ZoomError::not_found(format!("Channel does not exist: {channel}."))),
        _ => Err(ZoomError::invalid(
            "Validation Failed. Exactly one of to_contact or to_channel is required.",
        )),
    }
}

/// A code point list as Zoom's reaction bodies write emoji: `U+1F44D`, several separated by
/// spaces. The emoji itself is accepted too; anything that is not an emoji is refused.
pub fn emoji_code(emoji: &str) -> Result<String, ZoomError> {
    let emoji = emoji.trim();
    let codes: Option<Vec<char>> = if emoji.to_uppercase().starts_with("U+") {
        emoji
            .split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(|part| {
                let hex = part
                    .strip_prefix("U+")
                    .or_else(|| part.strip_prefix("u+"))?;
                char::from_u32(u32::from_str_radix(hex, 16).ok()?)
            })
            .collect()
    } else {
        Some(emoji.chars().collect())
    };
    let text: String = codes.unwrap_or_default().into_iter().collect();
    // Clients send emoji with and without the variation selector U+FE0F.
    let known = emojis::get(&text).or_else(|| emojis::get(&text.replace('\u{FE0F}', "")));
    if text.is_empty() || known.is_none() {
        return Err(ZoomError::invalid(
            "Validation Failed. emoji must be a Unicode emoji, e.g. U+1F44D.",
        ));
    }
    Ok(text
        .chars()
        .map(|c| format!("U+{:X}", u32::from(c)))
        .collect::<Vec<_>>()
        .join(" "))
}

/// The emoji a code list stands for, for the web view.
pub fn emoji_text(code: &str) -> String {
    code.split(' ')
        .filter_map(|part| u32::from_str_radix(part.trim_start_matches("U+"), 16).ok())
        .filter_map(char::from_u32)
        .collect()
}

/// Which answer a message is written for: the list and the single message name the sender's
/// member id and the reactions' senders differently (Rivet's response types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Listed,
    Single,
}

/// A message of `conversation` as the API answers it.
fn message_json(state: &State, conversation: &[Message], message: &Message, shape: Shape) -> Value {
    let sender = state.user(&message.sender);
    let mut value = json!({
        "id": message.id,
        "message": message.text,
        "message_type": "plain_text_message",
        "sender": sender.map_or(message.sender.as_str(), |u| u.email.as_str()),
        "sender_display_name": sender.map_or(crate::state::ROBOT_NAME, |u| u.display_name.as_str()),
        "date_time": iso(message.created),
        "timestamp": message.created,
    });
    if let Some(user) = sender {
        value["sender_member_id"] = json!(user.member_id);
    }
    if let Some(main) = &message.reply_main {
        value["reply_main_message_id"] = json!(main);
        if let Some(main) = conversation.iter().find(|m| m.id == *main) {
            value["reply_main_message_timestamp"] = json!(main.created);
        }
    }
    if !message.at_items.is_empty() {
        value["at_items"] = json!(
            message
                .at_items
                .iter()
                .map(|item| {
                    let contact = item.at_contact.as_deref().and_then(|c| state.user(c));
                    json!({
                        "at_contact": contact.map_or("", |u| u.email.as_str()),
                        "at_contact_member_id": contact.map_or("", |u| u.member_id.as_str()),
                        "at_type": item.at_type,
                        "start_position": item.start_position,
                        "end_position": item.end_position,
                    })
                })
                .collect::<Vec<_>>()
        );
    }
    if !message.rich_text.is_empty() {
        value["rich_text"] = rich_text_json(&message.rich_text);
    }
    if !message.reactions.is_empty() {
        let member_id = |id: &String| state.user(id).map_or("", |u| u.member_id.as_str());
        value["reactions"] = json!(
            message
                .reactions
                .iter()
                .map(|reaction| match shape {
                    Shape::Listed => json!({
                        "emoji": reaction.emoji,
                        "total_count": reaction.senders.len(),
                        "senders": reaction.senders.iter().map(|id| json!({
                            "user_id": id,
                            "member_id": member_id(id),
                        })).collect::<Vec<_>>(),
                    }),
                    Shape::Single => json!({
                        "emoji": reaction.emoji,
                        "total_count": reaction.senders.len(),
                        "user_ids": reaction.senders,
                        "member_ids": reaction.senders.iter().map(member_id).collect::<Vec<_>>(),
                    }),
                })
                .collect::<Vec<_>>()
        );
    }
    if let Some(content) = &message.bot_content {
        value["bot_message"] = content.clone();
    }
    value
}

pub fn rich_text_json(rich_text: &[RichText]) -> Value {
    json!(
        rich_text
            .iter()
            .map(|format| {
                let mut value = json!({
                    "start_position": format.start_position,
                    "end_position": format.end_position,
                    "format_type": format.format_type,
                });
                if let Some(attr) = &format.format_attr {
                    value["format_attr"] = json!(attr);
                }
                value
            })
            .collect::<Vec<_>>()
    )
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AtItemBody {
    at_contact: Option<String>,
    at_type: u8,
    start_position: u32,
    end_position: u32,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RichTextBody {
    start_position: u32,
    end_position: u32,
    format_type: String,
    format_attr: Option<String>,
}

/// What a message says, as a send or an edit carries it.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Content {
    pub message: Option<String>,
    #[serde(default)]
    pub at_items: Vec<AtItemBody>,
    #[serde(default)]
    pub rich_text: Vec<RichTextBody>,
}

impl Content {
    pub fn text(message: String) -> Self {
        Self {
            message: Some(message),
            ..Self::default()
        }
    }
}

/// The checked text, mentions and formats of `content` in `place`.
fn checked(
    state: &State,
    place: &Place,
    content: Content,
) -> Result<(String, Vec<AtItem>, Vec<RichText>), ZoomError> {
    let text = content
        .message
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| ZoomError::invalid("Validation Failed. message is required."))?;
    let length = text.chars().count();
    if length > MAX_MESSAGE_CHARS {
        return Err(ZoomError::invalid(format!(
            "Validation Failed. A message may be at most {MAX_MESSAGE_CHARS} characters."
        )));
    }
    let in_text = |start: u32, end: u32| start <= end && (end as usize) < length;
    let mut at_items = Vec::new();
    for item in content.at_items {
        if !in_text(item.start_position, item.end_position) {
            return Err(ZoomError::invalid(
                "Validation Failed. An at_item's positions are outside the message.",
            ));
        }
        let at_contact = match item.at_type {
            1 => {
                let key = item.at_contact.unwrap_or_default();
                let user = state.active_user(&key).ok_or_else(ZoomError::no_contact)?;
                let present = match place {
                    Place::Direct(one, other) => *one == user.id || *other == user.id,
                    Place::Channel(id) => state.channel(id).is_some_and(|c| c.has_member(&user.id)),
                    Place::Bot(owner) => *owner == user.id,
                };
                if !present {
                    return Err(ZoomError::invalid(
                        "Validation Failed. at_contact is not in this conversation.",
                    ));
                }
                Some(user.id.clone())
            }
            2 if matches!(place, Place::Channel(_)) => None,
            _ => {
                return Err(ZoomError::invalid(
                    "Validation Failed. at_type is 1 (a contact) or, in a channel, 2 (all).",
                ));
            }
        };
        at_items.push(AtItem {
            at_contact,
            at_type: item.at_type,
            start_position: item.start_position,
            end_position: item.end_position,
        });
    }
    let mut rich_text = Vec::new();
    for format in content.rich_text {
        if !FORMAT_TYPES.contains(&format.format_type.as_str()) {
            return Err(ZoomError::invalid(format!(
                "Validation Failed. Unknown format_type {}.",
                format.format_type
            )));
        }
        if !in_text(format.start_position, format.end_position) {
            return Err(ZoomError::invalid(
                "Validation Failed. A rich_text's positions are outside the message.",
            ));
        }
        rich_text.push(RichText {
            start_position: format.start_position,
            end_position: format.end_position,
            format_type: format.format_type,
            format_attr: format.format_attr,
        });
    }
    Ok((text, at_items, rich_text))
}

/// Posts `sender`'s message to `place`, as a reply to `reply_main` if given, and tells the
/// subscribed apps; answers the message's id.
pub fn post(
    sim: &ZoomSim,
    state: &mut State,
    sender: &str,
    place: &Place,
    content: Content,
    reply_main: Option<String>,
) -> Result<String, ZoomError> {
    if let Some(main) = &reply_main {
        let main = state.message(place, main).ok_or_else(|| {
            ZoomError::not_found(format!("The main message does not exist: {main}."))
        })?;
        if main.reply_main.is_some() {
            return Err(ZoomError::invalid(
                "Validation Failed. A reply cannot be replied to: reply to its main message.",
            ));
        }
    }
    let (text, at_items, rich_text) = checked(state, place, content)?;
    let message = Message {
        id: message_id(),
        sender: sender.to_owned(),
        text,
        reply_main,
        at_items,
        rich_text,
        reactions: Vec::new(),
        bot_content: None,
        created: state.next_message_time(),
        updated: None,
    };
    let id = message.id.clone();
    state.messages_mut(place).push(message);
    if let Some(message) = state.message(place, &id) {
        events::message_changed(sim, state, place, message, sender, Change::Posted);
    }
    Ok(id)
}

#[derive(serde::Deserialize)]
struct NewMessage {
    to_contact: Option<String>,
    to_channel: Option<String>,
    reply_main_message_id: Option<String>,
    file_ids: Option<Value>,
    interactive_cards: Option<Value>,
    scheduled_time: Option<Value>,
    #[serde(flatten)]
    content: Content,
}

async fn send(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:write:user_message")?;
    let request: NewMessage = json_body(&body)?;
    if request.file_ids.is_some()
        || request.interactive_cards.is_some()
        || request.scheduled_time.is_some()
    {
        return Err(ZoomError::invalid(
            "The simulated Zoom takes no files, interactive cards or scheduled messages.",
        ));
    }
    let place = conversation(
        &state,
        &me,
        request.to_contact.as_deref(),
        request.to_channel.as_deref(),
    )?;
    let reply_main = request.reply_main_message_id.filter(|id| !id.is_empty());
    let id = post(&sim, &mut state, &me, &place, request.content, reply_main)?;
    created(json!({ "id": id }))
}

/// The conversation a request's query names.
fn queried(state: &State, me: &str, params: &[(String, String)]) -> Result<Place, ZoomError> {
    conversation(
        state,
        me,
        param(params, "to_contact"),
        param(params, "to_channel"),
    )
}

async fn list(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:read:list_user_messages")?;
    let place = queried(&state, &me, &params)?;
    let size = page_size(&params, 10, 50)?;
    let bad_time = |name: &str| {
        ZoomError::invalid(format!(
            "Validation Failed. {name} must be a date (yyyy-mm-dd) or a UTC time (yyyy-MM-ddTHH:mm:ssZ)."
        ))
    };
    let mut answer = json!({});
    let (from, to) = match param(&params, "from") {
        Some(from) => {
            let start = parse_time(from).ok_or_else(|| bad_time("from"))?;
            let end = match param(&params, "to") {
                Some(to) => parse_time(to).ok_or_else(|| bad_time("to"))?,
                // Until now, which includes every message: their unique times may run a few
                // milliseconds ahead of the clock.
                None => now_millis().max(state.last_message_time),
            };
            answer["from"] = json!(iso(start));
            answer["to"] = json!(iso(end));
            (start, end)
        }
        None => {
            let date = param(&params, "date").map_or_else(|| day(now_millis()), str::to_owned);
            let start = parse_time(&date)
                .filter(|_| date.len() == 10)
                .ok_or_else(|| bad_time("date"))?;
            answer["date"] = json!(date);
            (start, start + 86_400_000 - 1)
        }
    };
    let without_replies = param(&params, "exclude_child_message") == Some("true");
    let mut all: Vec<&Message> = state
        .messages(&place)
        .iter()
        .filter(|m| (from..=to).contains(&m.created))
        .filter(|m| !(without_replies && m.reply_main.is_some()))
        .collect();
    all.reverse();
    // The filters as the request gave them: `to` defaults to now, which moves between pages.
    let scope = format!(
        "messages:{}:{}:{}:{}:{without_replies}",
        place.key(),
        param(&params, "date").unwrap_or_default(),
        param(&params, "from").unwrap_or_default(),
        param(&params, "to").unwrap_or_default(),
    );
    let (messages, next) = messages_page(&all, &params, &scope, size)?;
    answer["page_size"] = json!(size);
    answer["next_page_token"] = json!(next);
    answer["messages"] = json!(
        messages
            .into_iter()
            .map(|m| message_json(&state, state.messages(&place), m, Shape::Listed))
            .collect::<Vec<_>>()
    );
    ok(answer)
}

/// One page of a conversation's messages (newest first) older than the message the request's
/// token names, by its time, which no other message shares: messages posted or deleted
/// meanwhile never make a page repeat or skip one.
fn messages_page<'m>(
    all: &[&'m Message],
    params: &[(String, String)],
    scope: &str,
    size: usize,
) -> Result<(Vec<&'m Message>, String), ZoomError> {
    let start = match page_position(params, scope)? {
        None => 0,
        Some(position) => {
            let before: u64 = position
                .parse()
                .map_err(|_| ZoomError::invalid("The next page token is invalid or expired."))?;
            all.iter()
                .position(|m| m.created < before)
                .unwrap_or(all.len())
        }
    };
    let page: Vec<&Message> = all.iter().skip(start).take(size).copied().collect();
    let next = match page.last() {
        Some(last) if start + page.len() < all.len() => {
            page_token(scope, &last.created.to_string())
        }
        _ => String::new(),
    };
    Ok((page, next))
}

/// A message that does not exist, or that the caller cannot see.
pub fn not_found(id: &str) -> ZoomError {
    ZoomError::not_found(format!("Message does not exist: {id}."))
}

async fn get_one(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, id)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Light)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:read:user_message")?;
    let place = queried(&state, &me, &params)?;
    let message = state.message(&place, &id).ok_or_else(|| not_found(&id))?;
    ok(message_json(
        &state,
        state.messages(&place),
        message,
        Shape::Single,
    ))
}

/// The message `id` of `me` in `place`: only its sender edits or deletes it.
fn own_message(state: &State, place: &Place, me: &str, id: &str) -> Result<(), ZoomError> {
    let message = state.message(place, id).ok_or_else(|| not_found(id))?;
    if message.sender == me {
        Ok(())
    } else {
        Err(ZoomError::forbidden(
            "Only the sender of a message can edit or delete it.",
        ))
    }
}

#[derive(serde::Deserialize)]
struct EditedMessage {
    to_contact: Option<String>,
    to_channel: Option<String>,
    #[serde(flatten)]
    content: Content,
}

/// Replaces the text (and its mentions and formats) of `me`'s message and tells the apps.
pub fn edit_message(
    sim: &ZoomSim,
    state: &mut State,
    me: &str,
    place: &Place,
    id: &str,
    content: Content,
) -> Result<(), ZoomError> {
    own_message(state, place, me, id)?;
    let (text, at_items, rich_text) = checked(state, place, content)?;
    if let Some(message) = state.message_mut(place, id) {
        message.text = text;
        message.at_items = at_items;
        message.rich_text = rich_text;
        message.updated = Some(now_millis());
    }
    if let Some(message) = state.message(place, id) {
        events::message_changed(sim, state, place, message, me, Change::Updated);
    }
    Ok(())
}

async fn edit(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:update:user_message")?;
    let request: EditedMessage = json_body(&body)?;
    let place = conversation(
        &state,
        &me,
        request.to_contact.as_deref(),
        request.to_channel.as_deref(),
    )?;
    edit_message(&sim, &mut state, &me, &place, &id, request.content)?;
    no_content()
}

/// Deletes `me`'s message and tells the apps. Its replies stay (docs/simulator-zoom.md).
pub fn delete_message(
    sim: &ZoomSim,
    state: &mut State,
    me: &str,
    place: &Place,
    id: &str,
) -> Result<(), ZoomError> {
    own_message(state, place, me, id)?;
    let messages = state.messages_mut(place);
    let Some(position) = messages.iter().position(|m| m.id == id) else {
        return Err(not_found(id));
    };
    let message = messages.remove(position);
    events::message_changed(sim, state, place, &message, me, Change::Deleted);
    Ok(())
}

async fn remove(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, id)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:delete:user_message")?;
    let place = queried(&state, &me, &params)?;
    delete_message(&sim, &mut state, &me, &place, &id)?;
    no_content()
}

/// Adds or removes `me`'s reaction `emoji` (a code list) on a message, telling the apps when
/// something changed.
pub fn set_reaction(
    sim: &ZoomSim,
    state: &mut State,
    me: &str,
    place: &Place,
    id: &str,
    emoji: &str,
    add: bool,
) -> Result<(), ZoomError> {
    let message = state.message_mut(place, id).ok_or_else(|| not_found(id))?;
    let position = message.reactions.iter().position(|r| r.emoji == emoji);
    let changed = match (add, position) {
        (true, Some(at)) if !message.reactions[at].senders.iter().any(|s| s == me) => {
            message.reactions[at].senders.push(me.to_owned());
            true
        }
        (true, None) => {
            message.reactions.push(Reaction {
                emoji: emoji.to_owned(),
                senders: vec![me.to_owned()],
            });
            true
        }
        (false, Some(at)) if message.reactions[at].senders.iter().any(|s| s == me) => {
            message.reactions[at].senders.retain(|s| s != me);
            if message.reactions[at].senders.is_empty() {
                message.reactions.remove(at);
            }
            true
        }
        _ => false,
    };
    if changed && let Some(message) = state.message(place, id) {
        events::reaction_changed(sim, state, place, message, me, emoji, add);
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct ReactionBody {
    action: String,
    emoji: String,
    to_contact: Option<String>,
    to_channel: Option<String>,
}

async fn react(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path((user_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    let me = caller.acting_for(&state, &user_id, "team_chat:update:message_emoji")?;
    let request: ReactionBody = json_body(&body)?;
    let add = match request.action.as_str() {
        "add" => true,
        "remove" => false,
        _ => {
            return Err(ZoomError::invalid(
                "Validation Failed. action must be add or remove.",
            ));
        }
    };
    let emoji = emoji_code(&request.emoji)?;
    let place = conversation(
        &state,
        &me,
        request.to_contact.as_deref(),
        request.to_channel.as_deref(),
    )?;
    set_reaction(&sim, &mut state, &me, &place, &id, &emoji, add)?;
    no_content()
}

#[cfg(test)]
mod tests {
    use super::{emoji_code, emoji_text};

    #[test]
    fn emoji_are_kept_as_code_points_whichever_form_was_sent() {
        assert_eq!(emoji_code("U+1F44D").unwrap(), "U+1F44D");
        assert_eq!(emoji_code("u+1f44d").unwrap(), "U+1F44D");
        assert_eq!(emoji_code("👍").unwrap(), "U+1F44D");
        assert_eq!(emoji_code("👍🏽").unwrap(), "U+1F44D U+1F3FD");
        assert_eq!(emoji_code("❤️").unwrap(), "U+2764 U+FE0F");
        assert_eq!(emoji_text("U+1F44D U+1F3FD"), "👍🏽");
        for refused in ["", "abc", "U+", "U+ZZZZ", "U+D800", "thumbsup"] {
            assert!(emoji_code(refused).is_err(), "{refused:?}");
        }
    }
}
