//! A Webex-like web view at `/webex/`: sign in as a person of the organisation (guests
//! included), see your direct and group rooms, open one, start one and post markdown, reply in
//! a thread. Messages posted here are the API's messages, with the same webhooks.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_sim_kit::html::{Pick, escape, live_script, people_picker, version, with_policy};

use crate::WebexSim;
use crate::markup::{self, MentionKind};
use crate::messages::{Content, post as post_message};
use crate::rooms::{direct_room, room_title};
use crate::state::{Message, PersonKind, Room, RoomType, State};
use crate::wire::{form_decode, iso, param};

const COOKIE: &str = "sb_webex_person";
const STYLE: &str = "body{font-family:Inter,'Helvetica Neue',Arial,sans-serif;max-width:52rem;margin:1.5rem auto;padding:0 1rem;color:#121212}\
     h1{font-size:1.4rem;color:#07c}h2{font-size:1.1rem}.meta{color:#6a6a6a;font-size:.85rem}.error{color:#d4371c}\
     .message{border-bottom:1px solid #e6e6e6;padding:.4rem 0}.reply{margin-left:2rem;border-left:3px solid #cde;padding-left:.6rem}\
     .sender{font-weight:600}.mention{color:#07c;font-weight:600}\
     pre{background:#f3f3f3;padding:.4rem;overflow:auto}code{background:#f3f3f3;padding:0 .2rem}";

pub fn page(title: &str, body: &str) -> Html<String> {
    switchboard_sim_kit::html::page(title, STYLE, "Switchboard simulator — not Webex.", body)
}

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route("/webex", get(|| async { Redirect::to("/webex/") }))
        .route("/webex/", get(home))
        .route("/webex/signin", post(sign_in))
        .route("/webex/new", post(new_room))
        .route("/webex/room", get(room_page))
        .route("/webex/room/send", post(send))
        .route("/webex/room/live", get(live))
        .route("/webex/live.js", get(|| async { live_script() }))
}

fn signed_in(state: &State, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
    state
        .person(id)
        .filter(|p| p.login_enabled && p.kind != PersonKind::ServiceApp)
        .map(|p| p.id.clone())
}

fn name_of(state: &State, person: &str) -> String {
    state
        .person(person)
        .map_or_else(|| person.to_owned(), |p| p.display_name.clone())
}

fn problem(status: StatusCode, text: &str) -> Response {
    (
        status,
        page(
            "Something went wrong",
            &format!(
                "<p class=\"error\">{}</p><p><a href=\"/webex/\">Back</a></p>",
                escape(text)
            ),
        ),
    )
        .into_response()
}

fn sign_in_form(state: &State, problem: Option<&str>) -> Response {
    let picks: Vec<Pick> = state
        .people
        .iter()
        .filter(|p| p.login_enabled && p.kind != PersonKind::ServiceApp)
        .take(40)
        .map(|p| Pick {
            value: p.email.clone(),
            label: p.display_name.clone(),
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let body = format!(
        "<h1>Webex (simulated)</h1>{problem}<form method=\"post\" action=\"/webex/signin\">{}\
         <p><button>Sign in</button></p></form>",
        people_picker("email", "Email address", "", &picks)
    );
    with_policy(page("Webex", &body).into_response())
}

async fn sign_in(Shared(sim): Shared<Arc<WebexSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let email = param(&params, "email")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let state = sim.lock();
    match state
        .person(&email)
        .filter(|p| p.login_enabled && p.kind != PersonKind::ServiceApp)
    {
        Some(person) => {
            let mut response = Redirect::to("/webex/").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&format!(
                "{COOKIE}={}; Path=/webex; HttpOnly; SameSite=Lax",
                person.id
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        None => sign_in_form(&state, Some(&format!("No active Webex account {email}."))),
    }
}

async fn home(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return sign_in_form(&state, None);
    };
    let mut rooms: Vec<&Room> = state.rooms.iter().filter(|r| r.has_member(&me)).collect();
    rooms.sort_by_key(|r| std::cmp::Reverse(r.last_activity));
    let mut list = String::new();
    for room in rooms {
        let _ = write!(
            list,
            "<li><a href=\"/webex/room?id={}\">{}</a> <span class=\"meta\">{}</span></li>",
            escape(&room.id),
            escape(&room_title(&state, room, &me)),
            room.room_type.name()
        );
    }
    if list.is_empty() {
        list.push_str("<li class=\"meta\">No spaces yet.</li>");
    }
    let body = format!(
        "<h1>Webex of {}</h1><ul>{list}</ul><h2>New message or space</h2>\
         <form method=\"post\" action=\"/webex/new\">\
         <p><label>With (e-mail addresses, comma-separated: one for a 1:1, several for a space)<br>\
         <input name=\"with\" size=\"60\"></label></p>\
         <p><label>Space title (for several people)<br><input name=\"title\" size=\"40\"></label></p>\
         <p><button>Start</button></p></form>",
        escape(&name_of(&state, &me))
    );
    with_policy(page("Webex", &body).into_response())
}

async fn new_room(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form_decode(&body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/webex/").into_response();
    };
    let mut others = Vec::new();
    for entry in param(&params, "with")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match state.person(entry).filter(|p| p.login_enabled) {
            Some(person) if person.id != me && !others.contains(&person.id) => {
                others.push(person.id.clone());
            }
            Some(_) => {}
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!("No active Webex account {entry}."),
                );
            }
        }
    }
    let id = match others.as_slice() {
        [] => return problem(StatusCode::BAD_REQUEST, "Name at least one other person."),
        [other] => direct_room(&sim, &mut state, &me, other),
        _ => {
            let title = param(&params, "title").map_or_else(
                || {
                    others
                        .iter()
                        .map(|p| name_of(&state, p))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                str::to_owned,
            );
            let members: Vec<String> = std::iter::once(me.clone())
                .chain(others.iter().cloned())
                .collect();
            let id = state
                .new_room(RoomType::Group, title, None, &members)
                .id
                .clone();
            crate::rooms::room_created(&sim, &state, &id, &me);
            id
        }
    };
    Redirect::to(&format!("/webex/room?id={id}")).into_response()
}

/// A message's markdown as the app shows it (mentions highlighted), else its text.
fn message_body(state: &State, message: &Message) -> String {
    match &message.markdown {
        Some(markdown) => markup::html(markdown, &|mention| {
            let name = mention.label.clone().unwrap_or_else(|| match mention.kind {
                MentionKind::All => "All".to_owned(),
                _ => name_of(state, &mention.key),
            });
            format!("<span class=\"mention\">@{}</span>", escape(&name))
        }),
        None => escape(&message.text).replace('\n', "<br>"),
    }
}

fn element_id(message: &Message) -> String {
    format!("m{}", message.id)
}

fn render_message(state: &State, message: &Message) -> (String, String) {
    let class = if message.parent.is_some() {
        "message reply"
    } else {
        "message"
    };
    let edited = if message.updated.is_some() {
        " · edited"
    } else {
        ""
    };
    let html = format!(
        "<div class=\"{class}\" id=\"{}\" data-v=\"{{v}}\"><span class=\"sender\">{}</span> \
         <span class=\"meta\">{}{edited}</span><div>{}</div></div>",
        escape(&element_id(message)),
        escape(&name_of(state, &message.author)),
        &iso(message.created)[..16].replace('T', " "),
        message_body(state, message),
    );
    let v = version(&html);
    (v.clone(), html.replace("{v}", &v))
}

/// A room's messages in the app's order: each thread's first message followed by its replies.
fn in_thread_order(room: &Room) -> Vec<&Message> {
    let mut ordered = Vec::with_capacity(room.messages.len());
    for message in room.messages.iter().filter(|m| m.parent.is_none()) {
        ordered.push(message);
        ordered.extend(
            room.messages
                .iter()
                .filter(|m| m.parent.as_deref() == Some(message.id.as_str())),
        );
    }
    ordered
}

fn their_room<'s>(state: &'s State, me: &str, params: &[(String, String)]) -> Option<&'s Room> {
    state
        .room(param(params, "id")?)
        .filter(|r| r.has_member(me))
}

async fn room_page(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/webex/").into_response();
    };
    let Some(room) = their_room(&state, &me, &params) else {
        return problem(StatusCode::NOT_FOUND, "No such space of yours.");
    };
    let mut messages: String = in_thread_order(room)
        .into_iter()
        .map(|m| render_message(&state, m).1)
        .collect();
    if messages.is_empty() {
        messages.push_str("<p class=\"meta empty\">No messages yet.</p>");
    }
    let threads: String = room
        .messages
        .iter()
        .filter(|m| m.parent.is_none())
        .map(|m| {
            let preview: String = m.text.chars().take(40).collect();
            format!(
                "<option value=\"{}\">{}: {}</option>",
                escape(&m.id),
                escape(&name_of(&state, &m.author)),
                escape(&preview)
            )
        })
        .collect();
    let name = room_title(&state, room, &me);
    let body = format!(
        "<p><a href=\"/webex/\">← All spaces</a></p><h1>{}</h1>\
         <div id=\"messages\" data-live=\"/webex/room/live?id={id}\">{messages}</div>\
         <form method=\"post\" action=\"/webex/room/send\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <p><textarea name=\"markdown\" rows=\"3\" cols=\"60\" aria-label=\"Message\" autofocus></textarea></p>\
         <p><label>Reply in the thread of <select name=\"parent\"><option value=\"\">(a new message)</option>{threads}</select></label></p>\
         <p class=\"meta\">Markdown: **bold**, *italic*, `code`, ```blocks```, [text](https://…), \
         &lt;@personEmail:address|Name&gt; to mention.</p>\
         <p><button>Send</button></p></form><script src=\"/webex/live.js\" defer></script>",
        escape(&name),
        id = escape(&room.id),
    );
    with_policy(page(&name, &body).into_response())
}

async fn live(
    Shared(sim): Shared<Arc<WebexSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(room) = their_room(&state, &me, &params) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let messages: Vec<serde_json::Value> = in_thread_order(room)
        .into_iter()
        .map(|m| {
            let (v, html) = render_message(&state, m);
            serde_json::json!({"id": element_id(m), "v": v, "html": html})
        })
        .collect();
    axum::Json(serde_json::json!({ "messages": messages })).into_response()
}

async fn send(Shared(sim): Shared<Arc<WebexSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form_decode(&body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/webex/").into_response();
    };
    let id = param(&params, "id").unwrap_or_default().to_owned();
    let markdown = param(&params, "markdown")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let content = Content {
        markdown: Some(markdown),
        ..Content::default()
    };
    let parent = param(&params, "parent").map(str::to_owned);
    if let Err(error) = post_message(&sim, &mut state, &me, &id, None, content, parent) {
        return problem(error.status, &error.message);
    }
    Redirect::to(&format!("/webex/room?id={id}")).into_response()
}
