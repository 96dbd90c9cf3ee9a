//! A small Teams-like web view at `/teams/`: sign in as any simulated user of the customer
//! tenant, find people (guests included) in the directory, list their chats, open one, send,
//! edit, delete and react. It calls the same operations as Graph, so every action notifies
//! subscribers exactly as a Graph call would. Bodies are shown through [`crate::body`]'s
//! allow-list, the composer's markdown-like input is sent as HTML, and an open chat stays
//! current through a small script that polls its JSON (the pages work without it).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
pub use switchboard_sim_kit::html::escape;
use switchboard_sim_kit::html::{Pick, live_script, people_picker, version, with_policy};

use crate::MicrosoftSim;
use crate::body;
use crate::chats::{create_chat_op, edit_message_op, post_message_op, reaction_op, soft_delete_op};
use crate::odata::{GraphError, encode_component, form_decode, form_value};
use crate::state::{CUSTOMER_TENANT_ID, Chat, Message, State, User};
use crate::subscriptions::{Event, publish};

const COOKIE: &str = "sb_teams_user";
const REACTIONS: [&str; 6] = ["👍", "❤️", "😆", "😮", "😢", "😡"];
/// The directory shows this many people at once; a search finds anyone else.
const DIRECTORY_PAGE: usize = 50;

pub fn routes() -> Router<Arc<MicrosoftSim>> {
    Router::new()
        .route("/teams", get(|| async { Redirect::to("/teams/") }))
        .route("/teams/", get(home))
        .route("/teams/signin", post(sign_in))
        .route("/teams/signout", post(sign_out))
        .route("/teams/new", post(new_chat))
        .route("/teams/chat", get(chat_page))
        .route("/teams/chat/send", post(send))
        .route("/teams/chat/edit", post(edit))
        .route("/teams/chat/delete", post(delete))
        .route("/teams/chat/restore", post(restore))
        .route("/teams/chat/react", post(react))
        .route("/teams/chat/live", get(live))
        .route("/teams/people", get(people))
        .route("/teams/live.js", get(|| async { live_script() }))
        .layer(axum::middleware::map_response(|response: Response| async {
            with_policy(response)
        }))
}

/// The look of the simulated Microsoft pages.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#242424}\
     h1{color:#464775}.error{color:#a4262c;font-weight:bold}.message{border:1px solid #ddd;border-radius:6px;padding:.5rem .75rem;margin:.5rem 0}\
     .mine{background:#e8ebfa}.meta{color:#616161;font-size:.85rem}form.inline{display:inline}\
     button{background:#5b5fc7;color:#fff;border:0;border-radius:4px;padding:.3rem .7rem;cursor:pointer}\
     button.plain{background:#f0f0f0;color:#242424}input,textarea{font:inherit}\
     pre{background:#f5f5f5;border-radius:4px;padding:.5rem;white-space:pre-wrap}blockquote{border-left:3px solid #ccc;margin:.2rem 0;padding-left:.6rem}\
     .mention{color:#5b5fc7;font-weight:600}.tag{font-size:.75rem;background:#eee;border-radius:3px;padding:0 .3rem;margin-left:.3rem;color:#616161}\
     table.people{border-collapse:collapse;width:100%}table.people td{border-top:1px solid #ddd;padding:.35rem .3rem}\
     table.people td:first-child{width:2rem}table.people td:last-child{text-align:right}\
     .body p{margin:.3rem 0}";

pub fn page(title: &str, body: &str) -> Html<String> {
    switchboard_sim_kit::html::page(
        title,
        STYLE,
        "Switchboard simulator — not Microsoft Teams.",
        body,
    )
}

/// The signed-in user's id, from the view's cookie.
fn signed_in(state: &State, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let user_id = cookies.split(';').find_map(|cookie| {
        cookie
            .trim()
            .strip_prefix(COOKIE)
            .and_then(|rest| rest.strip_prefix('='))
    })?;
    state
        .customer()
        .user(user_id)
        .filter(|user| user.account_enabled)
        .map(|user| user.id.clone())
}

/// A message's body as safe HTML for the page.
fn body_html(message: &Message) -> String {
    if message.content_type == "html" {
        body::sanitise(&message.content)
    } else {
        body::text_html(&message.content)
    }
}

/// A message's body as text, for previews and the edit field.
fn body_text(message: &Message) -> String {
    if message.content_type == "html" {
        body::plain_text(&message.content)
    } else {
        message.content.clone()
    }
}

fn back_to(chat_id: &str) -> Response {
    Redirect::to(&format!("/teams/chat?id={}", encode_component(chat_id))).into_response()
}

fn problem(error: &GraphError) -> Response {
    (
        error.status,
        page(
            "Something went wrong",
            &format!(
                "<h1>That did not work</h1><p class=\"error\">{}: {}</p><p><a href=\"/teams/\">Back</a></p>",
                escape(error.code),
                escape(&error.message)
            ),
        ),
    )
        .into_response()
}

fn sign_in_form(state: &State, message: Option<&str>) -> String {
    let picks: Vec<Pick> = state
        .customer()
        .users
        .iter()
        .filter(|user| user.active() && user.account_enabled)
        .take(40)
        .map(|user| Pick {
            value: user.upn.clone(),
            label: user.display_name.clone(),
        })
        .collect();
    format!(
        "<h1>Teams (simulated)</h1>{}<form method=\"post\" action=\"/teams/signin\">\
         {} <p><button>Sign in</button></p></form>",
        message.map_or_else(String::new, |message| format!(
            "<p class=\"error\">{}</p>",
            escape(message)
        )),
        people_picker("login", "Sign in as (e-mail)", "", &picks)
    )
}

async fn home(Shared(sim): Shared<Arc<MicrosoftSim>>, headers: HeaderMap) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return page("Teams (simulated)", &sign_in_form(&state, None)).into_response();
    };
    let tenant = state.customer();
    let name = state
        .display_name(CUSTOMER_TENANT_ID, &me)
        .unwrap_or_default();
    let mut chats: Vec<_> = state
        .chats
        .iter()
        .filter(|chat| chat.tenant_id == tenant.id && chat.has_member(&me))
        .collect();
    chats.sort_by_key(|chat| std::cmp::Reverse(chat.updated_ms));
    let mut list = String::new();
    for chat in &chats {
        let title = chat.topic.clone().unwrap_or_else(|| {
            chat.members
                .iter()
                .filter(|member| member.user_id != me)
                .filter_map(|member| state.display_name(&tenant.id, &member.user_id))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let last = chat
            .messages
            .iter()
            .rev()
            .find(|message| message.deleted_ms.is_none())
            .map(body_text)
            .unwrap_or_default();
        let _ = write!(
            list,
            "<li><a href=\"/teams/chat?id={}\">{}</a> <span class=\"meta\">({}) {}</span></li>",
            encode_component(&chat.id),
            escape(&title),
            escape(&chat.chat_type),
            escape(&last.chars().take(60).collect::<String>())
        );
    }
    if list.is_empty() {
        list.push_str("<li class=\"meta\">No chats yet.</li>");
    }
    let body = format!(
        "<h1>Chats of {name}</h1>\
         <form method=\"post\" action=\"/teams/signout\"><button class=\"plain\">Sign out</button></form>\
         <ul>{list}</ul><h2>New chat</h2>{search}<form method=\"post\" action=\"/teams/new\">\
         <p><label>With (names or e-mail addresses, comma-separated)<br><input name=\"with\" size=\"60\"></label></p>\
         <p><label>Topic (group chats only, optional)<br><input name=\"topic\" size=\"40\"></label></p>\
         <p><button>Start chat</button></p></form>",
        name = escape(&name),
        search = search_form(""),
    );
    page("Chats", &body).into_response()
}

fn form(body: &Bytes) -> Vec<(String, String)> {
    form_decode(&String::from_utf8_lossy(body))
}

async fn sign_in(Shared(sim): Shared<Arc<MicrosoftSim>>, body: Bytes) -> Response {
    let params = form(&body);
    let login = form_value(&params, "login")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let state = sim.lock();
    let user = state
        .sign_in(CUSTOMER_TENANT_ID, &login)
        .map(|index| &state.customer().users[index]);
    match user {
        Some(user) if user.account_enabled => {
            let mut response = Redirect::to("/teams/").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&format!(
                "{COOKIE}={}; Path=/teams; HttpOnly; SameSite=Lax",
                user.id
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Some(_) => page(
            "Teams (simulated)",
            &sign_in_form(&state, Some("That account is disabled.")),
        )
        .into_response(),
        None => page(
            "Teams (simulated)",
            &sign_in_form(
                &state,
                Some(&format!("No account {login} in this organisation.")),
            ),
        )
        .into_response(),
    }
}

async fn sign_out() -> Response {
    let mut response = Redirect::to("/teams/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sb_teams_user=; Path=/teams; Max-Age=0"),
    );
    response
}

fn unauthenticated() -> Response {
    Redirect::to("/teams/").into_response()
}

fn search_form(query: &str) -> String {
    format!(
        "<form method=\"get\" action=\"/teams/people\" role=\"search\"><p>\
         <label>Search people<br><input type=\"search\" name=\"q\" value=\"{}\" size=\"40\" \
         placeholder=\"Name or e-mail\"></label> <button>Search</button></p></form>",
        escape(query)
    )
}

/// Whether `user` is someone the signed-in user can chat with in the directory.
fn listed(user: &User, me: &str) -> bool {
    user.active() && user.account_enabled && user.id != me
}

/// Whether `user` is found by `query` (lower case): part of their name or an address.
fn matches(user: &User, query: &str) -> bool {
    query.is_empty()
        || [
            Some(&user.display_name),
            Some(&user.upn),
            user.mail.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(&user.other_mails)
        .any(|field| field.to_lowercase().contains(query))
}

/// The user an entry of "With" names: an address one signs in with, an object id, or a
/// display name no one else in the tenant has.
fn resolve(state: &State, entry: &str) -> Result<usize, GraphError> {
    if let Some(index) = state.sign_in(CUSTOMER_TENANT_ID, entry) {
        return Ok(index);
    }
    let named: Vec<usize> = state
        .customer()
        .users
        .iter()
        .enumerate()
        .filter(|(_, user)| user.active() && user.display_name.eq_ignore_ascii_case(entry))
        .map(|(index, _)| index)
        .collect();
    match named.as_slice() {
        [index] => Ok(*index),
        [] => Err(GraphError::not_found(format!(
            "No one called {entry} in this organisation."
        ))),
        _ => Err(GraphError::bad_request(format!(
            "{} people are called {entry}: use an e-mail address.",
            named.len()
        ))),
    }
}

/// The tenant's directory, as Teams' people search: members and B2B guests by name, each a
/// "Chat" away, or several ticked for a group chat.
async fn people(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return unauthenticated();
    };
    let query = form_value(&params, "q").unwrap_or_default().trim();
    let needle = query.to_lowercase();
    let mut found: Vec<&User> = state
        .customer()
        .users
        .iter()
        .filter(|user| listed(user, &me) && matches(user, &needle))
        .collect();
    found.sort_by_cached_key(|user| user.display_name.to_lowercase());
    let mut rows = String::new();
    for user in found.iter().take(DIRECTORY_PAGE) {
        let _ = write!(
            rows,
            "<tr><td><input type=\"checkbox\" name=\"pick\" value=\"{id}\" aria-label=\"Select {name}\"></td>\
             <td><strong>{name}</strong>{tag}<div class=\"meta\">{address}</div></td>\
             <td><button name=\"to\" value=\"{id}\" aria-label=\"Chat with {name}\">Chat</button></td></tr>",
            id = escape(&user.id),
            name = escape(&user.display_name),
            tag = if user.is_guest() {
                "<span class=\"tag\">guest</span>"
            } else {
                ""
            },
            address = escape(user.mail.as_deref().unwrap_or(&user.upn)),
        );
    }
    let summary = match found.len() {
        0 => "No one matches.".to_owned(),
        n if n > DIRECTORY_PAGE => {
            format!("{n} people match; the first {DIRECTORY_PAGE} are shown. Search to narrow.")
        }
        1 => "1 person matches.".to_owned(),
        n => format!("{n} people match."),
    };
    let body = format!(
        "<p><a href=\"/teams/\">← All chats</a></p><h1>People in {tenant}</h1>{search}\
         <p class=\"meta\">{summary}</p><form method=\"post\" action=\"/teams/new\">\
         <table class=\"people\">{rows}</table>\
         <p><label>Topic (group chats only, optional)<br><input name=\"topic\" size=\"40\"></label></p>\
         <p><button>Start a group chat with the selected people</button></p></form>",
        tenant = escape(&state.customer().display_name),
        search = search_form(query),
    );
    page("People", &body).into_response()
}

async fn new_chat(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let mut state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return unauthenticated();
    };
    let values = |name: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split([',', ';']))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect()
    };
    // A directory row's "Chat" names one person; otherwise the ticked rows and the typed names.
    let mut entries = values("to");
    if entries.is_empty() {
        entries = values("pick");
        entries.extend(values("with"));
    }
    let mut members = vec![(me.clone(), vec!["owner".to_owned()])];
    for entry in entries {
        let index = match resolve(&state, entry) {
            Ok(index) => index,
            Err(error) => return problem(&error),
        };
        let user = &state.customer().users[index];
        let role = if user.is_guest() { "guest" } else { "owner" };
        if user.id != me && !members.iter().any(|(id, _)| *id == user.id) {
            members.push((user.id.clone(), vec![role.to_owned()]));
        }
    }
    let topic = form_value(&params, "topic")
        .map(|topic| topic.trim().to_owned())
        .filter(|t| !t.is_empty());
    let chat_type = if members.len() == 2 && topic.is_none() {
        "oneOnOne"
    } else {
        "group"
    };
    match create_chat_op(
        &mut state,
        CUSTOMER_TENANT_ID,
        Some(&me),
        chat_type,
        topic,
        members,
    ) {
        Ok((index, _)) => back_to(&state.chats[index].id),
        Err(error) => problem(&error),
    }
}

/// One message as the chat page shows it, and its version.
fn render_message(state: &State, chat: &Chat, message: &Message, me: &str) -> (String, String) {
    let mine = message.from == me;
    let sender = state
        .display_name(&chat.tenant_id, &message.from)
        .unwrap_or_default();
    let hidden = format!(
        "<input type=\"hidden\" name=\"id\" value=\"{}\"><input type=\"hidden\" name=\"message\" value=\"{}\">",
        escape(&chat.id),
        escape(&message.id)
    );
    let mut inner = format!(
        "<div class=\"meta\">{} · {}{}</div>",
        escape(&sender),
        crate::odata::iso(message.created_ms),
        if message.edited_ms.is_some() {
            " · edited"
        } else {
            ""
        }
    );
    if message.deleted_ms.is_some() {
        inner.push_str("<p class=\"meta\">This message has been deleted.</p>");
        if mine {
            let _ = write!(
                inner,
                "<form class=\"inline\" method=\"post\" action=\"/teams/chat/restore\">{hidden}<button class=\"plain\">Undo delete</button></form>"
            );
        }
    } else {
        let _ = write!(
            inner,
            "<div class=\"body\">{}</div><div>",
            body_html(message)
        );
        for reaction in REACTIONS {
            let count = message
                .reactions
                .iter()
                .filter(|r| r.reaction_type == reaction)
                .count();
            let reacted = message
                .reactions
                .iter()
                .any(|r| r.reaction_type == reaction && r.user_id == me);
            let _ = write!(
                inner,
                "<form class=\"inline\" method=\"post\" action=\"/teams/chat/react\">{hidden}\
                 <input type=\"hidden\" name=\"reaction\" value=\"{reaction}\"><input type=\"hidden\" name=\"set\" value=\"{}\">\
                 <button class=\"plain\" title=\"{}\">{reaction}{}</button></form> ",
                if reacted { "0" } else { "1" },
                if reacted { "Remove reaction" } else { "React" },
                if count > 0 {
                    format!(" {count}")
                } else {
                    String::new()
                }
            );
        }
        inner.push_str("</div>");
        if mine {
            let _ = write!(
                inner,
                "<form method=\"post\" action=\"/teams/chat/edit\">{hidden}\
                 <input name=\"content\" size=\"50\" value=\"{}\" aria-label=\"Edit message\"> <button class=\"plain\">Save edit</button></form>\
                 <form class=\"inline\" method=\"post\" action=\"/teams/chat/delete\">{hidden}<button class=\"plain\">Delete</button></form>",
                escape(&body_text(message))
            );
        }
    }
    // The version lets the live script see that a message changed.
    let v = version(&inner);
    let html = format!(
        "<div class=\"message{}\" id=\"m{}\" data-v=\"{v}\">{inner}</div>",
        if mine { " mine" } else { "" },
        escape(&message.id),
    );
    (v, html)
}

/// The chat the signed-in user asked for by `id`, if they are in it.
fn their_chat<'s>(
    state: &'s State,
    me: &str,
    params: &[(String, String)],
) -> Result<&'s Chat, GraphError> {
    let id = form_value(params, "id").unwrap_or_default();
    state
        .chat_index(id)
        .map(|index| &state.chats[index])
        .filter(|chat| chat.has_member(me))
        .ok_or_else(|| GraphError::not_found(format!("Chat '{id}' was not found.")))
}

async fn chat_page(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return unauthenticated();
    };
    let chat = match their_chat(&state, &me, &params) {
        Ok(chat) => chat,
        Err(error) => return problem(&error),
    };
    let members = chat
        .members
        .iter()
        .filter_map(|member| state.display_name(&chat.tenant_id, &member.user_id))
        .collect::<Vec<_>>()
        .join(", ");
    let mut messages: String = chat
        .messages
        .iter()
        .map(|message| render_message(&state, chat, message, &me).1)
        .collect();
    if messages.is_empty() {
        messages.push_str("<p class=\"meta empty\">No messages yet.</p>");
    }
    let title = chat.topic.clone().unwrap_or_else(|| {
        chat.members
            .iter()
            .filter(|member| member.user_id != me)
            .filter_map(|member| state.display_name(&chat.tenant_id, &member.user_id))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let body = format!(
        "<p><a href=\"/teams/\">← All chats</a></p><h1>{}</h1><p class=\"meta\">{} chat · {}</p>\
         <div id=\"messages\" data-live=\"/teams/chat/live?id={}\">{messages}</div>\
         <form method=\"post\" action=\"/teams/chat/send\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
         <p><textarea name=\"content\" rows=\"3\" cols=\"60\" aria-label=\"Message\" autofocus></textarea></p>\
         <p class=\"meta\">Formatting: **bold**, *italic* or _italic_, ~~strike~~, `code`, \
         [text](https://…) for a link; web addresses become links. It is sent as HTML.</p>\
         <p><button>Send</button></p></form><script src=\"/teams/live.js\" defer></script>",
        escape(&title),
        escape(&chat.chat_type),
        escape(&members),
        escape(&encode_component(&chat.id)),
        escape(&chat.id),
    );
    page(&title, &body).into_response()
}

/// The chat's messages for the live script: each as its element id, version and HTML.
async fn live(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(chat) = their_chat(&state, &me, &params) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let messages: Vec<serde_json::Value> = chat
        .messages
        .iter()
        .map(|message| {
            let (v, html) = render_message(&state, chat, message, &me);
            serde_json::json!({"id": format!("m{}", message.id), "v": v, "html": html})
        })
        .collect();
    axum::Json(serde_json::json!({ "messages": messages })).into_response()
}

/// Runs a chat operation as the signed-in user and tells subscribers.
fn act(
    sim: &MicrosoftSim,
    headers: &HeaderMap,
    body: &Bytes,
    operation: impl FnOnce(&mut State, usize, &str, &[(String, String)]) -> Result<Event, GraphError>,
) -> Response {
    let params = form(body);
    let id = form_value(&params, "id").unwrap_or_default().to_owned();
    let outcome = {
        let mut state = sim.lock();
        let Some(me) = signed_in(&state, headers) else {
            return unauthenticated();
        };
        match state
            .chat_index(&id)
            .filter(|index| state.chats[*index].has_member(&me))
        {
            Some(index) => operation(&mut state, index, &me, &params),
            None => Err(GraphError::not_found(format!("Chat '{id}' was not found."))),
        }
    };
    match outcome {
        Ok(event) => {
            publish(sim, vec![event]);
            back_to(&id)
        }
        Err(error) => problem(&error),
    }
}

fn message_of(params: &[(String, String)]) -> String {
    form_value(params, "message").unwrap_or_default().to_owned()
}

async fn send(Shared(sim): Shared<Arc<MicrosoftSim>>, headers: HeaderMap, body: Bytes) -> Response {
    act(&sim, &headers, &body, |state, index, me, params| {
        let content = form_value(params, "content")
            .unwrap_or_default()
            .trim()
            .to_owned();
        if content.is_empty() {
            return Err(GraphError::bad_request("Type a message first."));
        }
        post_message_op(state, index, me, "html", &body::compose(&content), &[], &[])
            .map(|(_, event)| event)
    })
}

async fn edit(Shared(sim): Shared<Arc<MicrosoftSim>>, headers: HeaderMap, body: Bytes) -> Response {
    act(&sim, &headers, &body, |state, index, me, params| {
        let content = form_value(params, "content")
            .unwrap_or_default()
            .trim()
            .to_owned();
        if content.is_empty() {
            return Err(GraphError::bad_request(
                "A message cannot be edited to nothing.",
            ));
        }
        edit_message_op(
            state,
            index,
            &message_of(params),
            me,
            "html",
            &body::compose(&content),
            &[],
        )
    })
}

async fn delete(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(&sim, &headers, &body, |state, index, me, params| {
        soft_delete_op(state, index, &message_of(params), me, false)
    })
}

async fn restore(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(&sim, &headers, &body, |state, index, me, params| {
        soft_delete_op(state, index, &message_of(params), me, true)
    })
}

async fn react(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(&sim, &headers, &body, |state, index, me, params| {
        let reaction = form_value(params, "reaction")
            .unwrap_or_default()
            .to_owned();
        let set = form_value(params, "set") != Some("0");
        reaction_op(state, index, &message_of(params), me, &reaction, set)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
