//! Messages at `/webex/v1/messages`: posting to a room or to a person (which makes or reuses
//! their direct room), threads one level deep, mentions, listing newest first with paging by
//! a cursor naming the last message seen, 1:1 history by person, editing one's own messages and deleting.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};
use switchboard_sim_kit::html::escape;

use crate::WebexSim;
use crate::hooks::{Occurrence, fire};
use crate::markup::{self, Mention, MentionKind};
use crate::rooms::{direct_room, their_room};
use crate::state::{Message, Room, RoomType, State};
use crate::wire::{
    Answer, WebexError, cursor, encode_cursor, iso, items, json_body, max_param, new_id, next_url,
    no_content, now_millis, ok, param, parse_iso,
};

/// Webex refuses a `text`, `markdown` or `html` longer than this many bytes.
const MAX_CONTENT_BYTES: usize = 7439;

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route("/webex/v1/messages", get(list).post(create))
        .route("/webex/v1/messages/direct", get(list_direct))
        .route(
            "/webex/v1/messages/{id}",
            get(get_one).put(edit).delete(remove),
        )
}

pub fn message_json(state: &State, room: &Room, message: &Message) -> Value {
    let author = state.person(&message.author);
    let mut value = json!({
        "id": message.id,
        "roomId": room.id,
        "roomType": room.room_type.name(),
        "text": message.text,
        "personId": message.author,
        "personEmail": author.map(|p| p.email.clone()),
        "created": iso(message.created),
        "isVoiceClip": false,
    });
    if let Some(markdown) = &message.markdown {
        value["markdown"] = json!(markdown);
    }
    if let Some(html) = &message.html {
        value["html"] = json!(html);
    }
    if let Some(parent) = &message.parent {
        value["parentId"] = json!(parent);
    }
    if let Some((id, email)) = &message.to_person {
        value["toPersonId"] = json!(id);
        value["toPersonEmail"] = json!(email);
    }
    if !message.mentioned_people.is_empty() {
        value["mentionedPeople"] = json!(message.mentioned_people);
    }
    if !message.mentioned_groups.is_empty() {
        value["mentionedGroups"] = json!(message.mentioned_groups);
    }
    if let Some(updated) = message.updated {
        value["updated"] = json!(iso(updated));
    }
    value
}

/// What a message says, in the forms a client may send it.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Content {
    pub text: Option<String>,
    pub markdown: Option<String>,
    pub html: Option<String>,
}

/// The message's fields from what was sent: its plain text (derived from the markdown when
/// only markdown was sent), its HTML (rendered from the markdown) and whom it mentions.
struct Rendered {
    text: String,
    markdown: Option<String>,
    html: Option<String>,
    mentioned_people: Vec<String>,
    mentioned_groups: Vec<String>,
}

fn render(state: &State, room: &Room, content: Content) -> Result<Rendered, WebexError> {
    let present = |field: &Option<String>| field.as_deref().is_some_and(|s| !s.is_empty());
    if !present(&content.text) && !present(&content.markdown) && !present(&content.html) {
        return Err(WebexError::invalid(
            "One of text, markdown, html, files or attachments is required.",
        ));
    }
    for (name, field) in [
        ("text", &content.text),
        ("markdown", &content.markdown),
        ("html", &content.html),
    ] {
        if field.as_ref().is_some_and(|f| f.len() > MAX_CONTENT_BYTES) {
            return Err(WebexError::invalid(format!(
                "The {name} of a message may be at most {MAX_CONTENT_BYTES} bytes."
            )));
        }
    }
    let markdown = content.markdown.filter(|m| !m.is_empty());
    let resolve = |mention: &Mention| match mention.kind {
        MentionKind::All => None,
        MentionKind::PersonId => state.person(&mention.key).filter(|p| p.id == mention.key),
        MentionKind::PersonEmail => state
            .person(&mention.key)
            .filter(|p| p.email.eq_ignore_ascii_case(&mention.key)),
    };
    let label = |mention: &Mention| {
        mention.label.clone().unwrap_or_else(|| match mention.kind {
            MentionKind::All => "All".to_owned(),
            _ => resolve(mention).map_or_else(|| mention.key.clone(), |p| p.display_name.clone()),
        })
    };
    let mut mentioned_people = Vec::new();
    let mut mentioned_groups = Vec::new();
    for mention in markdown
        .as_deref()
        .map(markup::mentions)
        .unwrap_or_default()
    {
        match (mention.kind.clone(), resolve(&mention)) {
            (MentionKind::All, _)
                if room.room_type == RoomType::Group && mentioned_groups.is_empty() =>
            {
                mentioned_groups.push("all".to_owned());
            }
            (_, Some(person)) if !mentioned_people.contains(&person.id) => {
                mentioned_people.push(person.id.clone());
            }
            _ => {}
        }
    }
    let html = match &markdown {
        Some(markdown) => Some(markup::html(markdown, &|mention| match mention.kind {
            MentionKind::All => "<spark-mention data-object-type=\"groupMention\" \
                                 data-group-type=\"all\">All</spark-mention>"
                .to_owned(),
            _ => format!(
                "<spark-mention data-object-type=\"person\" data-object-id=\"{}\">{}</spark-mention>",
                escape(&resolve(mention).map_or_else(|| mention.key.clone(), |p| p.id.clone())),
                escape(&label(mention))
            ),
        })),
        None => content.html.filter(|h| !h.is_empty()),
    };
    let text = match (&content.text, &markdown) {
        (Some(text), _) if !text.is_empty() => text.clone(),
        (_, Some(markdown)) => markup::text(markdown, &label),
        _ => html.as_deref().map(strip_tags).unwrap_or_default(),
    };
    Ok(Rendered {
        text,
        markdown,
        html,
        mentioned_people,
        mentioned_groups,
    })
}

/// The text of HTML a client sent without text or markdown.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    switchboard_sim_kit::html::unescape(&out)
}

fn message_occurrence(
    state: &State,
    room: &Room,
    message: &Message,
    event: &'static str,
    actor: &str,
) -> Occurrence {
    let email = state
        .person(&message.author)
        .map(|p| p.email.clone())
        .unwrap_or_default();
    let mut data = json!({
        "id": message.id,
        "roomId": room.id,
        "roomType": room.room_type.name(),
        "personId": message.author,
        "personEmail": email,
        "created": iso(message.created),
    });
    if let Some(parent) = &message.parent {
        data["parentId"] = json!(parent);
    }
    if !message.mentioned_people.is_empty() {
        data["mentionedPeople"] = json!(message.mentioned_people);
    }
    let mut facts = vec![
        ("roomId", room.id.clone()),
        ("roomType", room.room_type.name().to_owned()),
        ("personId", message.author.clone()),
        ("personEmail", email),
        ("hasFiles", "false".to_owned()),
    ];
    facts.extend(
        message
            .mentioned_people
            .iter()
            .map(|id| ("mentionedPeople", id.clone())),
    );
    Occurrence {
        resource: "messages",
        event,
        audience: room.members.iter().map(|m| m.person.clone()).collect(),
        actor: actor.to_owned(),
        data,
        facts,
    }
}

/// Posts a message of `author` to a room of theirs, as a reply to `parent` if given, and tells
/// the webhooks; answers the message's id.
pub fn post(
    sim: &WebexSim,
    state: &mut State,
    author: &str,
    room_id: &str,
    to_person: Option<(String, String)>,
    content: Content,
    parent: Option<String>,
) -> Result<String, WebexError> {
    let room = their_room(state, author, room_id)?;
    if let Some(parent) = &parent {
        let parent = room
            .message(parent)
            .ok_or_else(|| WebexError::invalid("parentId is not a message of this room."))?;
        if parent.parent.is_some() {
            return Err(WebexError::invalid(
                "A reply cannot be replied to: reply to the thread's first message.",
            ));
        }
    }
    let rendered = render(state, room, content)?;
    let now = now_millis();
    let message = Message {
        id: new_id("MESSAGE"),
        author: author.to_owned(),
        parent,
        to_person,
        text: rendered.text,
        markdown: rendered.markdown,
        html: rendered.html,
        mentioned_people: rendered.mentioned_people,
        mentioned_groups: rendered.mentioned_groups,
        created: now,
        updated: None,
    };
    let id = message.id.clone();
    if let Some(room) = state.room_mut(room_id) {
        room.messages.push(message);
        room.last_activity = now;
    }
    state.message_rooms.insert(id.clone(), room_id.to_owned());
    if let Some((room, message)) = state.message(&id) {
        fire(
            sim,
            state,
            &message_occurrence(state, room, message, "created", author),
        );
    }
    Ok(id)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMessage {
    room_id: Option<String>,
    to_person_id: Option<String>,
    to_person_email: Option<String>,
    parent_id: Option<String>,
    files: Option<Value>,
    attachments: Option<Value>,
    #[serde(flatten)]
    content: Content,
}

async fn create(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let request: NewMessage = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:messages_write")?;
    if request.files.is_some() || request.attachments.is_some() {
        return Err(WebexError::invalid(
            "The simulated Webex does not take files or card attachments.",
        ));
    }
    let targets = [
        &request.room_id,
        &request.to_person_id,
        &request.to_person_email,
    ]
    .iter()
    .filter(|t| t.is_some())
    .count();
    if targets != 1 {
        return Err(WebexError::invalid(
            "Exactly one of roomId, toPersonId or toPersonEmail is required.",
        ));
    }
    let (room_id, to_person) = match (
        request.room_id,
        request.to_person_id,
        request.to_person_email,
    ) {
        (Some(room_id), _, _) => (room_id, None),
        (None, id, email) => {
            let key = id.clone().or(email.clone()).unwrap_or_default();
            let other = state
                .person(&key)
                .filter(|p| p.login_enabled)
                .filter(|p| id.as_ref().is_none_or(|id| &p.id == id))
                .ok_or_else(|| WebexError::not_found("Person not found."))?;
            if other.id == caller.person {
                return Err(WebexError::invalid(
                    "One cannot send a 1:1 message to oneself.",
                ));
            }
            let to_person = (other.id.clone(), other.email.clone());
            let room = direct_room(&sim, &mut state, &caller.person, &to_person.0);
            (room, Some(to_person))
        }
    };
    let id = post(
        &sim,
        &mut state,
        &caller.person,
        &room_id,
        to_person,
        request.content,
        request.parent_id,
    )?;
    let (room, message) = state
        .message(&id)
        .ok_or_else(|| WebexError::not_found("Message not found."))?;
    ok(message_json(&state, room, message))
}

/// The message with this id in a room of `person`'s.
fn their_message<'s>(
    state: &'s State,
    person: &str,
    id: &str,
) -> Result<(&'s Room, &'s Message), WebexError> {
    state
        .message(id)
        .filter(|(room, _)| room.has_member(person))
        .ok_or_else(|| WebexError::not_found("Could not find a message with the provided ID."))
}

async fn get_one(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:messages_read")?;
    let (room, message) = their_message(&state, &caller.person, &id)?;
    ok(message_json(&state, room, message))
}

/// A room's messages newest first, narrowed by `parentId`, `mentionedPeople`, `before` and
/// `beforeMessage`, one page of `max` with a link to the next.
fn messages_page(
    sim: &WebexSim,
    state: &State,
    room: &Room,
    me: &str,
    path: &str,
    params: &[(String, String)],
) -> Answer {
    let max = max_param(params, 50)?;
    let parent = param(params, "parentId");
    let mentioned: Option<Vec<String>> = param(params, "mentionedPeople").map(|list| {
        list.split(',')
            .map(|p| {
                let p = p.trim();
                let person = if p == "me" { me } else { p };
                person.to_owned()
            })
            .collect()
    });
    let before = match param(params, "before") {
        Some(text) => Some(
            parse_iso(text)
                .ok_or_else(|| WebexError::invalid("before must be an ISO 8601 time in UTC."))?,
        ),
        None => None,
    };
    // The next page's link says where it starts in its cursor, not in `beforeMessage`:
    // webexpythonsdk puts the first request's `beforeMessage` back into every next link.
    let start_before = match cursor(params)? {
        Some(position) => Some(
            position
                .strip_prefix("before:")
                .ok_or_else(|| WebexError::invalid("The cursor is not one this list gave."))?
                .to_owned(),
        ),
        None => param(params, "beforeMessage").map(str::to_owned),
    };
    let before_message = match start_before {
        Some(id) => Some(
            room.message(&id)
                .ok_or_else(|| WebexError::invalid("beforeMessage is not a message of this room."))?
                .id
                .clone(),
        ),
        None => None,
    };
    let newest_first = room.messages.iter().rev();
    let older = newest_first.skip_while(|m| before_message.as_ref().is_some_and(|id| &m.id != id));
    let skip = usize::from(before_message.is_some());
    let mut selected: Vec<&Message> = older
        .skip(skip)
        .filter(|m| before.is_none_or(|before| m.created < before))
        .filter(|m| parent.is_none_or(|parent| m.parent.as_deref() == Some(parent)))
        .filter(|m| {
            mentioned
                .as_ref()
                .is_none_or(|people| people.iter().any(|p| m.mentioned_people.contains(p)))
        })
        .take(max + 1)
        .collect();
    let more = selected.len() > max;
    selected.truncate(max);
    let next = more.then(|| selected.last()).flatten().map(|last| {
        let cursor = encode_cursor(&format!("before:{}", last.id));
        next_url(&sim.api_base(), path, params, &[("cursor", cursor)])
    });
    items(
        selected
            .into_iter()
            .map(|m| message_json(state, room, m))
            .collect(),
        next,
    )
}

async fn list(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:messages_read")?;
    let room_id =
        param(&params, "roomId").ok_or_else(|| WebexError::invalid("roomId is required."))?;
    let room = their_room(&state, &caller.person, room_id)?;
    messages_page(&sim, &state, room, &caller.person, "messages", &params)
}

/// The 1:1 messages with a person (`personId` or `personEmail`), newest first.
async fn list_direct(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:messages_read")?;
    let key = param(&params, "personId")
        .or_else(|| param(&params, "personEmail"))
        .ok_or_else(|| WebexError::invalid("personId or personEmail is required."))?;
    let other = state
        .person(key)
        .ok_or_else(|| WebexError::not_found("Person not found."))?;
    match state.direct_room(&caller.person, &other.id) {
        Some(room) => messages_page(
            &sim,
            &state,
            room,
            &caller.person,
            "messages/direct",
            &params,
        ),
        None => items(Vec::new(), None),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Edit {
    room_id: String,
    #[serde(flatten)]
    content: Content,
}

/// Edits one's own message: its room must be named, and its text or markdown given.
async fn edit(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let request: Edit = json_body(&body)?;
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:messages_write")?;
    let (room, message) = their_message(&state, &caller.person, &id)?;
    if message.author != caller.person {
        return Err(WebexError::forbidden(
            "Only the author of a message can edit it.",
        ));
    }
    if room.id != request.room_id {
        return Err(WebexError::invalid(
            "roomId is not the room of this message.",
        ));
    }
    if request.content.text.is_none() && request.content.markdown.is_none() {
        return Err(WebexError::invalid("text or markdown is required."));
    }
    let rendered = render(&state, room, request.content)?;
    let room_id = room.id.clone();
    if let Some(message) = state
        .room_mut(&room_id)
        .and_then(|room| room.messages.iter_mut().find(|m| m.id == id))
    {
        message.text = rendered.text;
        message.markdown = rendered.markdown;
        message.html = rendered.html;
        message.mentioned_people = rendered.mentioned_people;
        message.mentioned_groups = rendered.mentioned_groups;
        message.updated = Some(now_millis());
    }
    let (room, message) = their_message(&state, &caller.person, &id)?;
    fire(
        &sim,
        &state,
        &message_occurrence(&state, room, message, "updated", &caller.person),
    );
    ok(message_json(&state, room, message))
}

/// Deletes a message: one's own, or any as a moderator of its room. Answers 204.
async fn remove(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let mut state = sim.lock();
    let caller = sim.caller(&state, &headers)?;
    caller.require("spark:messages_write")?;
    let (room, message) = their_message(&state, &caller.person, &id)?;
    let moderator = room.member(&caller.person).is_some_and(|m| m.is_moderator);
    if message.author != caller.person && !moderator {
        return Err(WebexError::forbidden(
            "Only the author of a message or a moderator can delete it.",
        ));
    }
    let occurrence = message_occurrence(&state, room, message, "deleted", &caller.person);
    let room_id = room.id.clone();
    if let Some(room) = state.room_mut(&room_id) {
        room.messages.retain(|m| m.id != id);
    }
    state.message_rooms.remove(&id);
    fire(&sim, &state, &occurrence);
    no_content()
}
