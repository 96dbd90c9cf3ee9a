//! A Google Chat-like web view at `/google/`: sign in as a person of the domain, see your
//! direct messages and group chats, open one, start one and post with Chat's markup. Messages
//! posted here are the API's messages, with the same events.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_sim_kit::html::{Pick, escape, live_script, people_picker, version, with_policy};

use crate::GoogleSim;
use crate::state::{APP_MEMBER, Membership, Message, Space, SpaceType, State};
use crate::wire::{form_decode, form_value, now_micros, rfc3339};

const COOKIE: &str = "sb_google_user";
const STYLE: &str = "body{font-family:Roboto,Arial,sans-serif;max-width:52rem;margin:1.5rem auto;padding:0 1rem;color:#1f1f1f}\
     h1{font-size:1.4rem;color:#0b57d0}h2{font-size:1.1rem}.meta{color:#5f6368;font-size:.85rem}.error{color:#b3261e}\
     .message{border-bottom:1px solid #e0e0e0;padding:.4rem 0}.sender{font-weight:600}.mention{color:#0b57d0;font-weight:600}\
     pre{background:#f1f3f4;padding:.4rem;overflow:auto}code{background:#f1f3f4;padding:0 .2rem}\
     table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.3rem;text-align:left}";

pub fn page(title: &str, body: &str) -> Html<String> {
    switchboard_sim_kit::html::page(
        title,
        STYLE,
        "Switchboard simulator — not Google Chat.",
        body,
    )
}

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route("/google", get(|| async { Redirect::to("/google/") }))
        .route("/google/", get(home))
        .route("/google/signin", post(sign_in))
        .route("/google/new", post(new_chat))
        .route("/google/space", get(space_page))
        .route("/google/space/send", post(send))
        .route("/google/space/live", get(live))
        .route("/google/live.js", get(|| async { live_script() }))
}

fn signed_in(state: &State, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
    state.user(id).filter(|u| u.active()).map(|u| u.id.clone())
}

fn name_of(state: &State, member: &str) -> String {
    if member == APP_MEMBER {
        return state.chat_app.clone().unwrap_or_else(|| "App".to_owned());
    }
    state
        .users
        .iter()
        .find(|u| u.id == member)
        .map_or_else(|| member.to_owned(), |u| u.full_name())
}

fn title(state: &State, space: &Space, me: &str) -> String {
    if !space.display_name.is_empty() {
        return space.display_name.clone();
    }
    space
        .members
        .iter()
        .filter(|m| m.member != me)
        .map(|m| name_of(state, &m.member))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sign_in_form(state: &State, problem: Option<&str>) -> Response {
    let picks: Vec<Pick> = state
        .users
        .iter()
        .filter(|u| u.active())
        .take(40)
        .map(|u| Pick {
            value: u.email.clone(),
            label: u.full_name(),
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let body = format!(
        "<h1>Google Chat (simulated)</h1>{problem}<form method=\"post\" action=\"/google/signin\">{}\
         <p><button>Sign in</button></p></form>",
        people_picker("login", "Email", "", &picks)
    );
    page("Google Chat", &body).into_response()
}

async fn sign_in(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let login = form_value(&params, "login")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let state = sim.lock();
    match state.user(&login).filter(|u| u.active()) {
        Some(user) => {
            let mut response = Redirect::to("/google/").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&format!(
                "{COOKIE}={}; Path=/google; HttpOnly; SameSite=Lax",
                user.id
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        None => sign_in_form(
            &state,
            Some(&format!("No active account {login} in this domain.")),
        ),
    }
}

async fn home(Shared(sim): Shared<Arc<GoogleSim>>, headers: HeaderMap) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return sign_in_form(&state, None);
    };
    let mut spaces: Vec<&Space> = state.spaces.iter().filter(|s| s.has_member(&me)).collect();
    spaces.sort_by_key(|s| std::cmp::Reverse(s.updated));
    let mut list = String::new();
    for space in spaces {
        let _ = write!(
            list,
            "<li><a href=\"/google/space?id={}\">{}</a> <span class=\"meta\">{}</span></li>",
            escape(&space.id),
            escape(&title(&state, space, &me)),
            space.space_type.name()
        );
    }
    if list.is_empty() {
        list.push_str("<li class=\"meta\">No conversations yet.</li>");
    }
    let body = format!(
        "<h1>Chat of {}</h1><ul>{list}</ul><h2>New chat</h2><form method=\"post\" action=\"/google/new\">\
         <p><label>With (e-mail addresses, comma-separated)<br><input name=\"with\" size=\"60\"></label></p>\
         <p><button>Start chat</button></p></form>",
        escape(&name_of(&state, &me))
    );
    with_policy(page("Google Chat", &body).into_response())
}

fn problem(status: StatusCode, text: &str) -> Response {
    (
        status,
        page(
            "Something went wrong",
            &format!(
                "<p class=\"error\">{}</p><p><a href=\"/google/\">Back</a></p>",
                escape(text)
            ),
        ),
    )
        .into_response()
}

async fn new_chat(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form_decode(&body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/google/").into_response();
    };
    let mut others = Vec::new();
    for entry in form_value(&params, "with")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match state.user(entry).filter(|u| u.active()) {
            Some(user) if user.id != me && !others.contains(&user.id) => {
                others.push(user.id.clone())
            }
            Some(_) => {}
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!("No active account {entry} in this domain."),
                );
            }
        }
    }
    if others.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "Name at least one other person.");
    }
    let existing = (others.len() == 1)
        .then(|| {
            state.spaces.iter().find(|s| {
                s.space_type == SpaceType::DirectMessage
                    && !s.app_dm()
                    && s.has_member(&me)
                    && s.has_member(&others[0])
            })
        })
        .flatten()
        .map(|s| s.id.clone());
    let id = existing.unwrap_or_else(|| {
        let space_type = if others.len() == 1 {
            SpaceType::DirectMessage
        } else {
            SpaceType::GroupChat
        };
        let now = now_micros();
        let space = state.new_space(space_type, String::new());
        space
            .members
            .extend(std::iter::once(me).chain(others).map(|member| Membership {
                member,
                joined: true,
                created: now,
            }));
        space.id.clone()
    });
    Redirect::to(&format!("/google/space?id={id}")).into_response()
}

/// Chat's markup as HTML: `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ``` blocks,
/// `<url|text>` links and `<users/ID>` mentions.
pub fn markup_html(state: &State, text: &str) -> String {
    let mut out = String::new();
    for (index, block) in text.split("```").enumerate() {
        if index % 2 == 1 {
            let _ = write!(out, "<pre>{}</pre>", escape(block.trim_matches('\n')));
        } else {
            out.push_str(&inline_html(state, block).replace('\n', "<br>"));
        }
    }
    out
}

fn inline_html(state: &State, text: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let closing = |marker: char| {
            chars[i + 1..]
                .iter()
                .position(|&x| x == marker)
                .map(|p| p + i + 1)
        };
        match c {
            '*' | '_' | '~' | '`' => {
                if let Some(end) = closing(c).filter(|&end| end > i + 1) {
                    let inner: String = chars[i + 1..end].iter().collect();
                    let (open, close) = match c {
                        '*' => ("<strong>", "</strong>"),
                        '_' => ("<em>", "</em>"),
                        '~' => ("<s>", "</s>"),
                        _ => ("<code>", "</code>"),
                    };
                    let inner = if c == '`' {
                        escape(&inner)
                    } else {
                        inline_html(state, &inner)
                    };
                    let _ = write!(out, "{open}{inner}{close}");
                    i = end + 1;
                    continue;
                }
            }
            '<' => {
                if let Some(end) = closing('>') {
                    let inner: String = chars[i + 1..end].iter().collect();
                    if let Some(key) = inner.strip_prefix("users/") {
                        let name = if key == "all" {
                            "all".to_owned()
                        } else {
                            state
                                .user(key)
                                .map_or_else(|| key.to_owned(), |u| u.full_name())
                        };
                        let _ = write!(out, "<span class=\"mention\">@{}</span>", escape(&name));
                        i = end + 1;
                        continue;
                    }
                    let (url, label) = inner
                        .split_once('|')
                        .unwrap_or((inner.as_str(), inner.as_str()));
                    if url.starts_with("http://")
                        || url.starts_with("https://")
                        || url.starts_with("mailto:")
                    {
                        let _ = write!(out, "<a href=\"{}\">{}</a>", escape(url), escape(label));
                        i = end + 1;
                        continue;
                    }
                }
            }
            _ => {}
        }
        out.push_str(&escape(&c.to_string()));
        i += 1;
    }
    out
}

fn render_message(state: &State, message: &Message) -> (String, String) {
    let body = if message.deleted.is_some() {
        "<span class=\"meta\">Message deleted</span>".to_owned()
    } else {
        markup_html(state, &message.text)
    };
    let edited = if message.updated != message.created && message.deleted.is_none() {
        " · edited"
    } else {
        ""
    };
    let reactions: String = message
        .reactions
        .iter()
        .map(|r| escape(&r.emoji))
        .collect::<Vec<_>>()
        .join(" ");
    let html = format!(
        "<div class=\"message\" id=\"m{}\" data-v=\"{{v}}\"><span class=\"sender\">{}</span> <span class=\"meta\">{}{edited}</span><div>{body}</div><div>{reactions}</div></div>",
        escape(&message.id.replace('.', "-")),
        escape(&name_of(state, &message.sender)),
        &rfc3339(message.created)[..16].replace('T', " "),
    );
    let v = version(&html);
    (v.clone(), html.replace("{v}", &v))
}

fn their_space<'s>(state: &'s State, me: &str, params: &[(String, String)]) -> Option<&'s Space> {
    state
        .space(form_value(params, "id")?)
        .filter(|s| s.has_member(me))
}

async fn space_page(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/google/").into_response();
    };
    let Some(space) = their_space(&state, &me, &params) else {
        return problem(StatusCode::NOT_FOUND, "No such conversation of yours.");
    };
    let mut messages: String = space
        .messages
        .iter()
        .map(|m| render_message(&state, m).1)
        .collect();
    if messages.is_empty() {
        messages.push_str("<p class=\"meta empty\">No messages yet.</p>");
    }
    let name = title(&state, space, &me);
    let body = format!(
        "<p><a href=\"/google/\">← All conversations</a></p><h1>{}</h1>\
         <div id=\"messages\" data-live=\"/google/space/live?id={id}\">{messages}</div>\
         <form method=\"post\" action=\"/google/space/send\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <p><textarea name=\"text\" rows=\"3\" cols=\"60\" aria-label=\"Message\" autofocus></textarea></p>\
         <p class=\"meta\">Formatting: *bold*, _italic_, ~strike~, `code`, ```blocks```, &lt;https://…|text&gt; for a link.</p>\
         <p><button>Send</button></p></form><script src=\"/google/live.js\" defer></script>",
        escape(&name),
        id = escape(&space.id),
    );
    with_policy(page(&name, &body).into_response())
}

async fn live(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(space) = their_space(&state, &me, &params) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let messages: Vec<serde_json::Value> = space
        .messages
        .iter()
        .map(|m| {
            let (v, html) = render_message(&state, m);
            serde_json::json!({"id": format!("m{}", m.id.replace('.', "-")), "v": v, "html": html})
        })
        .collect();
    axum::Json(serde_json::json!({ "messages": messages })).into_response()
}

async fn send(Shared(sim): Shared<Arc<GoogleSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form_decode(&body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return Redirect::to("/google/").into_response();
    };
    let id = form_value(&params, "id").unwrap_or_default().to_owned();
    let text = form_value(&params, "text")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    if let Err(error) = crate::chat::post_as(&sim, &mut state, &id, &me, &text) {
        return problem(error.status, &error.message);
    }
    Redirect::to(&format!("/google/space?id={id}")).into_response()
}
