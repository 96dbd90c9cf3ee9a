//! A small Teams-like web view at `/teams/`: sign in as any simulated user of the customer
//! tenant, list their chats, open one, send, edit, delete and react. It calls the same
//! operations as Graph, so every action notifies subscribers exactly as a Graph call would.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
pub use switchboard_sim_kit::html::escape;

use crate::MicrosoftSim;
use crate::chats::{create_chat_op, edit_message_op, post_message_op, reaction_op, soft_delete_op};
use crate::odata::{GraphError, encode_component, form_decode, form_value};
use crate::state::{CUSTOMER_TENANT_ID, State};
use crate::subscriptions::{Event, publish};

const COOKIE: &str = "sb_teams_user";
const REACTIONS: [&str; 6] = ["👍", "❤️", "😆", "😮", "😢", "😡"];

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
}

pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#242424}}\
         h1{{color:#464775}}.error{{color:#a4262c;font-weight:bold}}.message{{border:1px solid #ddd;border-radius:6px;padding:.5rem .75rem;margin:.5rem 0}}\
         .mine{{background:#e8ebfa}}.meta{{color:#616161;font-size:.85rem}}form.inline{{display:inline}}\
         button{{background:#5b5fc7;color:#fff;border:0;border-radius:4px;padding:.3rem .7rem;cursor:pointer}}\
         button.plain{{background:#f0f0f0;color:#242424}}input,textarea{{font:inherit}}</style></head>\
         <body>{body}<p class=\"meta\">Switchboard simulator — not Microsoft Teams.</p></body></html>",
        escape(title)
    ))
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

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
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
    let mut options = String::new();
    for user in state
        .customer()
        .users
        .iter()
        .filter(|user| user.active() && user.account_enabled)
        .take(40)
    {
        let _ = write!(
            options,
            "<option value=\"{}\">{}</option>",
            escape(&user.upn),
            escape(&user.display_name)
        );
    }
    format!(
        "<h1>Teams (simulated)</h1>{}<form method=\"post\" action=\"/teams/signin\">\
         <p><label>Sign in as (e-mail)<br><input name=\"login\" list=\"people\" size=\"48\" autofocus></label>\
         <datalist id=\"people\">{options}</datalist> <button>Sign in</button></p></form>",
        message.map_or_else(String::new, |message| format!(
            "<p class=\"error\">{}</p>",
            escape(message)
        ))
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
            .map(|message| strip_tags(&message.content))
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
         <ul>{list}</ul><h2>New chat</h2><form method=\"post\" action=\"/teams/new\">\
         <p><label>With (e-mail addresses, comma-separated)<br><input name=\"with\" size=\"60\"></label></p>\
         <p><label>Topic (group chats only, optional)<br><input name=\"topic\" size=\"40\"></label></p>\
         <p><button>Start chat</button></p></form>",
        name = escape(&name),
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
    let mut members = vec![(me.clone(), vec!["owner".to_owned()])];
    for address in form_value(&params, "with")
        .unwrap_or_default()
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|address| !address.is_empty())
    {
        let Some(index) = state.sign_in(CUSTOMER_TENANT_ID, address) else {
            return problem(&GraphError::not_found(format!(
                "No account {address} in this organisation."
            )));
        };
        let user = &state.customer().users[index];
        let role = if user.is_guest() { "guest" } else { "owner" };
        if user.id != me {
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

async fn chat_page(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(me) = signed_in(&state, &headers) else {
        return unauthenticated();
    };
    let id = form_value(&params, "id").unwrap_or_default();
    let Some(chat) = state
        .chat_index(id)
        .map(|index| &state.chats[index])
        .filter(|chat| chat.has_member(&me))
    else {
        return problem(&GraphError::not_found(format!(
            "Chat '{id}' was not found."
        )));
    };
    let tenant_id = &chat.tenant_id;
    let members = chat
        .members
        .iter()
        .filter_map(|member| state.display_name(tenant_id, &member.user_id))
        .collect::<Vec<_>>()
        .join(", ");
    let hidden = format!(
        "<input type=\"hidden\" name=\"id\" value=\"{}\">",
        escape(&chat.id)
    );
    let mut messages = String::new();
    for message in &chat.messages {
        let mine = message.from == me;
        let sender = state
            .display_name(tenant_id, &message.from)
            .unwrap_or_default();
        let hidden_message = format!(
            "{hidden}<input type=\"hidden\" name=\"message\" value=\"{}\">",
            escape(&message.id)
        );
        let _ = write!(
            messages,
            "<div class=\"message{}\"><div class=\"meta\">{} · {}{}</div>",
            if mine { " mine" } else { "" },
            escape(&sender),
            crate::odata::iso(message.created_ms),
            if message.edited_ms.is_some() {
                " · edited"
            } else {
                ""
            }
        );
        if message.deleted_ms.is_some() {
            messages.push_str("<p class=\"meta\">This message has been deleted.</p>");
            if mine {
                let _ = write!(
                    messages,
                    "<form class=\"inline\" method=\"post\" action=\"/teams/chat/restore\">{hidden_message}<button class=\"plain\">Undo delete</button></form>"
                );
            }
            messages.push_str("</div>");
            continue;
        }
        let _ = write!(
            messages,
            "<p>{}</p><div>",
            escape(&strip_tags(&message.content))
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
                messages,
                "<form class=\"inline\" method=\"post\" action=\"/teams/chat/react\">{hidden_message}\
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
        messages.push_str("</div>");
        if mine {
            let _ = write!(
                messages,
                "<form method=\"post\" action=\"/teams/chat/edit\">{hidden_message}\
                 <input name=\"content\" size=\"50\" value=\"{}\"> <button class=\"plain\">Save edit</button></form>\
                 <form class=\"inline\" method=\"post\" action=\"/teams/chat/delete\">{hidden_message}<button class=\"plain\">Delete</button></form>",
                escape(&strip_tags(&message.content))
            );
        }
        messages.push_str("</div>");
    }
    if messages.is_empty() {
        messages.push_str("<p class=\"meta\">No messages yet.</p>");
    }
    let title = chat.topic.clone().unwrap_or_else(|| members.clone());
    let body = format!(
        "<p><a href=\"/teams/\">← All chats</a></p><h1>{}</h1><p class=\"meta\">{} chat · {}</p>{messages}\
         <form method=\"post\" action=\"/teams/chat/send\">{hidden}\
         <p><textarea name=\"content\" rows=\"3\" cols=\"60\" autofocus></textarea></p><p><button>Send</button></p></form>",
        escape(&title),
        escape(&chat.chat_type),
        escape(&members),
    );
    page(&title, &body).into_response()
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
        post_message_op(state, index, me, "text", &content, &[], &[]).map(|(_, event)| event)
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
        edit_message_op(state, index, &message_of(params), me, "text", &content, &[])
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
    fn markup_is_escaped_and_stripped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            strip_tags("<p>Hi <at id=\"0\">Ada</at> &amp; co</p>"),
            "Hi Ada & co"
        );
    }
}
