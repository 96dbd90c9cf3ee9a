//! A Zoom Team Chat-like web view at `/zoom/`: sign in as a user of the account, see your
//! chats (1:1, channels, the chatbot), open one, send, reply in a thread, react, edit and
//! delete your own messages, start a chat or a group chat. What is done here goes through the
//! same functions as the API, with the same events; writing to the chatbot notifies it.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_sim_kit::html::{Pick, escape, live_script, people_picker, version, with_policy};

use crate::ZoomSim;
use crate::messages::{
    Content, conversation, delete_message, edit_message, emoji_code, emoji_text,
    post as post_message, set_reaction,
};
use crate::state::{AppKind, Message, Place, ROBOT_NAME, State};
use crate::wire::{ZoomError, form_decode, iso, param};

const COOKIE: &str = "sb_zoom_user";
const STYLE: &str = "body{font-family:Lato,'Helvetica Neue',Arial,sans-serif;max-width:52rem;margin:0 auto;padding:0 1rem 1rem;color:#232333;background:#f7f9fa}\
     h1{font-size:1.3rem;color:#fff;background:#0b5cff;margin:0 -1rem 1rem;padding:.7rem 1rem}h2{font-size:1.05rem;color:#0b5cff}\
     a{color:#0b5cff}.meta{color:#747487;font-size:.85rem}.error{color:#e02828}\
     .message{background:#fff;border-radius:8px;margin:.4rem 0;padding:.5rem .7rem;box-shadow:0 1px 2px #0001}\
     .reply{margin-left:2.5rem;border-left:3px solid #0b5cff}.sender{font-weight:700}\
     .reaction{display:inline-block;border:1px solid #d0d7e1;border-radius:1rem;padding:0 .5rem;margin-right:.3rem}\
     form.inline{display:inline}button{background:#0b5cff;color:#fff;border:0;border-radius:6px;padding:.3rem .8rem}\
     button.quiet{background:#e8ecf2;color:#232333}";

pub fn page(title: &str, body: &str) -> Html<String> {
    switchboard_sim_kit::html::page(title, STYLE, "Switchboard simulator — not Zoom.", body)
}

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route("/zoom", get(|| async { Redirect::to("/zoom/") }))
        .route("/zoom/", get(home))
        .route("/zoom/signin", post(sign_in))
        .route("/zoom/group", post(new_group))
        .route("/zoom/chat", get(chat_page))
        .route("/zoom/chat/send", post(send))
        .route("/zoom/chat/edit", post(edit))
        .route("/zoom/chat/delete", post(delete))
        .route("/zoom/chat/react", post(react))
        .route("/zoom/chat/live", get(live))
        .route("/zoom/live.js", get(|| async { live_script() }))
}

fn signed_in(state: &State, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
    state.active_user(id).map(|u| u.id.clone())
}

fn name_of(state: &State, sender: &str) -> String {
    state
        .user(sender)
        .map_or_else(|| ROBOT_NAME.to_owned(), |u| u.display_name.clone())
}

fn problem(status: StatusCode, text: &str) -> Response {
    with_policy(
        (
            status,
            page(
                "Something went wrong",
                &format!(
                    "<h1>Zoom</h1><p class=\"error\">{}</p><p><a href=\"/zoom/\">Back</a></p>",
                    escape(text)
                ),
            ),
        )
            .into_response(),
    )
}

fn sign_in_form(state: &State, problem: Option<&str>) -> Response {
    let picks: Vec<Pick> = state
        .users
        .iter()
        .filter(|u| u.active())
        .take(40)
        .map(|u| Pick {
            value: u.email.clone(),
            label: u.display_name.clone(),
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let body = format!(
        "<h1>Zoom Team Chat (simulated)</h1>{problem}<form method=\"post\" action=\"/zoom/signin\">{}\
         <p><button>Sign in</button></p></form>",
        people_picker("email", "Email address", "", &picks)
    );
    with_policy(page("Zoom", &body).into_response())
}

async fn sign_in(Shared(sim): Shared<Arc<ZoomSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let email = param(&params, "email")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let state = sim.lock();
    let Some(user) = state.active_user(&email) else {
        return sign_in_form(&state, Some(&format!("No active Zoom account {email}.")));
    };
    let mut response = Redirect::to("/zoom/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/zoom; HttpOnly; SameSite=Lax",
        user.id
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The query naming a conversation of `me`: `contact=` an e-mail, `channel=` an id, `bot=1`.
fn chat_query(state: &State, me: &str, place: &Place) -> String {
    let (name, value) = match place {
        Place::Direct(one, other) => {
            let contact = if one == me { other } else { one };
            (
                "contact",
                state
                    .user(contact)
                    .map(|u| u.email.clone())
                    .unwrap_or_default(),
            )
        }
        Place::Channel(id) => ("channel", id.clone()),
        Place::Bot(_) => ("bot", "1".to_owned()),
    };
    form_urlencoded::Serializer::new(String::new())
        .append_pair(name, &value)
        .finish()
}

fn chat_title(state: &State, me: &str, place: &Place) -> String {
    match place {
        Place::Direct(one, other) => name_of(state, if one == me { other } else { one }),
        Place::Channel(id) => state
            .channel(id)
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        Place::Bot(_) => ROBOT_NAME.to_owned(),
    }
}

/// The conversation a page's or form's parameters name.
fn place_of(state: &State, me: &str, params: &[(String, String)]) -> Result<Place, ZoomError> {
    if param(params, "bot").is_some() {
        return if state.app(AppKind::Chatbot).is_some() {
            Ok(Place::Bot(me.to_owned()))
        } else {
            Err(ZoomError::not_found("The account has no chatbot."))
        };
    }
    conversation(
        state,
        me,
        param(params, "contact"),
        param(params, "channel"),
    )
}

async fn home(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return sign_in_form(&state, None);
    };
    let mut places: Vec<(u64, Place)> = state
        .conversations
        .iter()
        .filter_map(|(key, messages)| {
            let place = Place::from_key(key)?;
            let mine = match &place {
                Place::Direct(one, other) => *one == me || *other == me,
                Place::Channel(_) => false,
                Place::Bot(user) => *user == me,
            };
            mine.then(|| (messages.last().map_or(0, |m| m.created), place))
        })
        .collect();
    places.extend(
        state
            .channels
            .iter()
            .filter(|c| c.has_member(&me))
            .map(|c| {
                let place = Place::Channel(c.id.clone());
                let last = state
                    .messages(&place)
                    .last()
                    .map_or(c.created, |m| m.created);
                (last, place)
            }),
    );
    if state.app(AppKind::Chatbot).is_some()
        && !places.iter().any(|(_, p)| matches!(p, Place::Bot(_)))
    {
        places.push((0, Place::Bot(me.clone())));
    }
    places.sort_by_key(|(last, _)| std::cmp::Reverse(*last));
    let mut list = String::new();
    for (_, place) in &places {
        let kind = match place {
            Place::Direct(..) => "chat",
            Place::Channel(_) => "channel",
            Place::Bot(_) => "app",
        };
        let _ = write!(
            list,
            "<li><a href=\"/zoom/chat?{}\">{}</a> <span class=\"meta\">{kind}</span></li>",
            escape(&chat_query(&state, &me, place)),
            escape(&chat_title(&state, &me, place)),
        );
    }
    if list.is_empty() {
        list.push_str("<li class=\"meta\">No chats yet.</li>");
    }
    let body = format!(
        "<h1>Team Chat — {}</h1><ul>{list}</ul>\
         <h2>New chat</h2><form method=\"get\" action=\"/zoom/chat\">\
         <p><label>With (e-mail address)<br><input name=\"contact\" size=\"48\"></label> <button>Open</button></p></form>\
         <h2>New group chat</h2><form method=\"post\" action=\"/zoom/group\">\
         <p><label>Name<br><input name=\"name\" size=\"40\"></label></p>\
         <p><label>Members (e-mail addresses, comma-separated)<br><input name=\"members\" size=\"60\"></label></p>\
         <p><button>Create</button></p></form>",
        escape(&name_of(&state, &me))
    );
    with_policy(page("Zoom", &body).into_response())
}

async fn new_group(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form_decode(&body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/zoom/").into_response();
    };
    let mut others = Vec::new();
    for email in param(&params, "members")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match state.active_user(email) {
            Some(user) => others.push(user.id.clone()),
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!("No active Zoom account {email}."),
                );
            }
        }
    }
    let Some(name) = param(&params, "name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        return problem(StatusCode::BAD_REQUEST, "Name the group chat.");
    };
    let name = name.to_owned();
    let id = crate::channels::new_channel(&mut state, &me, &name, 4, &others);
    Redirect::to(&format!("/zoom/chat?channel={id}")).into_response()
}

/// A message's element and its version, by which the live script sees that it changed.
fn render_message(state: &State, me: &str, query: &str, message: &Message) -> (String, String) {
    let class = if message.reply_main.is_some() {
        "message reply"
    } else {
        "message"
    };
    let edited = if message.updated.is_some() {
        " · edited"
    } else {
        ""
    };
    let hidden = query_fields(query);
    let id = escape(&message.id);
    let mut reactions = String::new();
    for reaction in &message.reactions {
        let _ = write!(
            reactions,
            "<span class=\"reaction\">{} {}</span>",
            escape(&emoji_text(&reaction.emoji)),
            reaction.senders.len()
        );
    }
    let mut actions = format!(
        "<form class=\"inline\" method=\"post\" action=\"/zoom/chat/react\">{hidden}\
         <input type=\"hidden\" name=\"id\" value=\"{id}\"><input name=\"emoji\" size=\"4\" value=\"👍\" aria-label=\"Emoji\">\
         <button class=\"quiet\">React</button></form>"
    );
    if message.sender == me {
        let _ = write!(
            actions,
            " <form class=\"inline\" method=\"post\" action=\"/zoom/chat/edit\">{hidden}\
             <input type=\"hidden\" name=\"id\" value=\"{id}\"><input name=\"message\" size=\"30\" value=\"{text}\" aria-label=\"New text\">\
             <button class=\"quiet\">Edit</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/zoom/chat/delete\">{hidden}\
             <input type=\"hidden\" name=\"id\" value=\"{id}\"><button class=\"quiet\">Delete</button></form>",
            text = escape(&message.text),
        );
    }
    let html = format!(
        "<div class=\"{class}\" id=\"m{id}\" data-v=\"{{v}}\"><span class=\"sender\">{}</span> \
         <span class=\"meta\">{}{edited}</span><div>{}</div><div>{reactions}</div><div class=\"meta\">{actions}</div></div>",
        escape(&name_of(state, &message.sender)),
        &iso(message.created)[..16].replace('T', " "),
        escape(&message.text).replace('\n', "<br>"),
    );
    let v = version(&html);
    // The first "{v}" is the attribute's, before any text the message may hold.
    (v.clone(), html.replacen("{v}", &v, 1))
}

/// Hidden fields carrying a chat's query through a form.
fn query_fields(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| switchboard_sim_kit::html::hidden_field(&name, &value))
        .collect()
}

/// A conversation's messages in the app's order: each main message followed by its replies.
/// A reply whose main message was deleted stands on its own.
fn in_thread_order(messages: &[Message]) -> Vec<&Message> {
    let is_main = |message: &Message| {
        message
            .reply_main
            .as_deref()
            .is_none_or(|main| !messages.iter().any(|m| m.id == main))
    };
    let mut ordered = Vec::with_capacity(messages.len());
    for main in messages.iter().filter(|m| is_main(m)) {
        ordered.push(main);
        ordered.extend(
            messages
                .iter()
                .filter(|m| m.reply_main.as_deref() == Some(main.id.as_str())),
        );
    }
    ordered
}

async fn chat_page(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/zoom/").into_response();
    };
    let place = match place_of(&state, &me, &params) {
        Ok(place) => place,
        Err(error) => return problem(error.status, &error.message),
    };
    let query = chat_query(&state, &me, &place);
    let all = state.messages(&place);
    let mut messages: String = in_thread_order(all)
        .into_iter()
        .map(|m| render_message(&state, &me, &query, m).1)
        .collect();
    if messages.is_empty() {
        messages.push_str("<p class=\"meta empty\">No messages yet.</p>");
    }
    let threads: String = if matches!(place, Place::Bot(_)) {
        String::new()
    } else {
        let options: String = all
            .iter()
            .filter(|m| m.reply_main.is_none())
            .map(|m| {
                let preview: String = m.text.chars().take(40).collect();
                format!(
                    "<option value=\"{}\">{}: {}</option>",
                    escape(&m.id),
                    escape(&name_of(&state, &m.sender)),
                    escape(&preview)
                )
            })
            .collect();
        format!(
            "<p><label>Reply to <select name=\"reply\"><option value=\"\">(a new message)</option>{options}</select></label></p>"
        )
    };
    let title = chat_title(&state, &me, &place);
    let body = format!(
        "<h1>{}</h1><p><a href=\"/zoom/\">← All chats</a></p>\
         <div id=\"messages\" data-live=\"/zoom/chat/live?{live}\">{messages}</div>\
         <form method=\"post\" action=\"/zoom/chat/send\">{}\
         <p><textarea name=\"message\" rows=\"3\" cols=\"60\" aria-label=\"Message\" autofocus></textarea></p>{threads}\
         <p><button>Send</button></p></form><script src=\"/zoom/live.js\" defer></script>",
        escape(&title),
        query_fields(&query),
        live = escape(&query),
    );
    with_policy(page(&title, &body).into_response())
}

/// A conversation's messages as the live script polls them.
async fn live(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(place) = place_of(&state, &me, &params) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = chat_query(&state, &me, &place);
    let messages: Vec<serde_json::Value> = in_thread_order(state.messages(&place))
        .into_iter()
        .map(|m| {
            let (v, html) = render_message(&state, &me, &query, m);
            serde_json::json!({ "id": format!("m{}", m.id), "v": v, "html": html })
        })
        .collect();
    axum::Json(serde_json::json!({ "messages": messages })).into_response()
}

/// Runs a web view form's action on the conversation it names, then shows the conversation.
fn act(
    sim: &ZoomSim,
    headers: &HeaderMap,
    body: &[u8],
    action: impl FnOnce(
        &ZoomSim,
        &mut State,
        &str,
        &Place,
        &[(String, String)],
    ) -> Result<(), ZoomError>,
) -> Response {
    let params = form_decode(body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, headers) else {
        return Redirect::to("/zoom/").into_response();
    };
    let place = match place_of(&state, &me, &params) {
        Ok(place) => place,
        Err(error) => return problem(error.status, &error.message),
    };
    if let Err(error) = action(sim, &mut state, &me, &place, &params) {
        return problem(error.status, &error.message);
    }
    Redirect::to(&format!("/zoom/chat?{}", chat_query(&state, &me, &place))).into_response()
}

fn text_of(params: &[(String, String)], name: &str) -> String {
    param(params, name)
        .unwrap_or_default()
        .replace("\r\n", "\n")
}

async fn send(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Response {
    act(&sim, &headers, &body, |sim, state, me, place, params| {
        let text = text_of(params, "message");
        if matches!(place, Place::Bot(_)) {
            return crate::chatbot::write_to_bot(sim, state, me, &text);
        }
        let reply = param(params, "reply").map(str::to_owned);
        post_message(sim, state, me, place, Content::text(text), reply).map(drop)
    })
}

async fn edit(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Response {
    act(&sim, &headers, &body, |sim, state, me, place, params| {
        let id = param(params, "id").unwrap_or_default();
        edit_message(
            sim,
            state,
            me,
            place,
            id,
            Content::text(text_of(params, "message")),
        )
    })
}

async fn delete(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Response {
    act(&sim, &headers, &body, |sim, state, me, place, params| {
        delete_message(
            sim,
            state,
            me,
            place,
            param(params, "id").unwrap_or_default(),
        )
    })
}

/// Adds the emoji, or takes it back when the user had already reacted with it.
async fn react(Shared(sim): Shared<Arc<ZoomSim>>, headers: HeaderMap, body: Bytes) -> Response {
    act(&sim, &headers, &body, |sim, state, me, place, params| {
        let id = param(params, "id").unwrap_or_default();
        let emoji = emoji_code(param(params, "emoji").unwrap_or_default())?;
        let reacted = state.message(place, id).is_some_and(|m| {
            m.reactions
                .iter()
                .any(|r| r.emoji == emoji && r.senders.iter().any(|s| s == me))
        });
        set_reaction(sim, state, me, place, id, &emoji, !reacted)
    })
}
