//! A small Slack client at `/slack/`: sign in as any simulated person, read and write their DMs
//! and group DMs, edit, delete, react, change one's display name, and (as an admin) add people.
//! Every action goes through the same operations as the Web API, so apps get their events.
//! A directory lists the workspace's members, bot users included, to start a conversation with;
//! messages are shown as the Slack app shows `mrkdwn` (see [`crate::mrkdwn`]), and an open
//! conversation stays current through a small script that polls its JSON (the pages work
//! without it). It also hands out app configuration tokens, as Slack's app settings pages do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::SlackSim;
use crate::encoding::{format_ts, parse_ts, parse_urlencoded};
use crate::mrkdwn;
use crate::state::{
    Actor, Conversation, ConversationKind, Failure, NewMessage, State as Workspace, User,
};
use switchboard_sim_kit::html::{Pick, escape, live_script, people_picker, version, with_policy};

pub const SESSION_COOKIE: &str = "slack_sim_user";
/// The sign-in page lists this many people; anyone else signs in by e-mail.
const SIGN_IN_CHOICES: usize = 500;
/// The directory shows this many people at once; a search finds anyone else.
const DIRECTORY_PAGE: usize = 50;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#1d1c1d}\
a{color:#1264a3}.msg{border-top:1px solid #ddd;padding:.4rem 0}.reply{margin-left:2rem}\
.meta{color:#616061;font-size:.85rem}.problem{background:#fde;padding:.5rem;border-radius:4px}\
form.inline{display:inline}input[type=text],input[type=search]{min-width:16rem}code{background:#f4f4f4;padding:0 .2rem}\
pre{background:#f8f8f8;border:1px solid #ddd;border-radius:4px;padding:.5rem;white-space:pre-wrap}\
blockquote{border-left:4px solid #ddd;margin:.2rem 0;padding-left:.6rem}\
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 .15rem}\
.tag{font-size:.75rem;background:#eee;border-radius:3px;padding:0 .3rem;margin-left:.3rem;color:#616061}\
table.people{border-collapse:collapse;width:100%}table.people td{border-top:1px solid #ddd;padding:.35rem .3rem}\
table.people td:first-child{width:2rem}table.people td:last-child{text-align:right}\
.help{color:#616061;font-size:.85rem}";

pub fn page(title: &str, body: &str) -> Html<String> {
    switchboard_sim_kit::html::page(title, STYLE, "Switchboard simulator — not Slack.", body)
}

pub fn routes() -> Router<Arc<SlackSim>> {
    Router::new()
        .route("/slack/", get(home))
        .route("/slack/signin", post(sign_in))
        .route("/slack/signout", post(sign_out))
        .route("/slack/open", post(open))
        .route("/slack/profile", post(profile))
        .route("/slack/admin/members", post(add_member))
        .route("/slack/apps/tokens", get(tokens_page).post(generate_tokens))
        .route("/slack/c/{channel}", get(conversation))
        .route("/slack/c/{channel}/post", post(send))
        .route("/slack/c/{channel}/edit", post(edit))
        .route("/slack/c/{channel}/delete", post(delete))
        .route("/slack/c/{channel}/react", post(react))
        .route("/slack/c/{channel}/live", get(live))
        .route("/slack/people", get(people))
        .route("/slack/live.js", get(|| async { live_script() }))
        .layer(axum::middleware::map_response(|response: Response| async {
            with_policy(response)
        }))
}

/// The signed-in person, if the session cookie names someone who may still sign in.
pub fn session_user(sim: &SlackSim, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies.split(';').find_map(|cookie| {
        let (name, value) = cookie.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| value.to_owned())
    })?;
    let state = sim.read();
    state
        .user(&id)
        .filter(|u| u.is_human() && !u.deleted)
        .map(|u| u.id.clone())
}

fn form(body: &Bytes) -> HashMap<String, String> {
    std::str::from_utf8(body)
        .ok()
        .and_then(parse_urlencoded)
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

fn field<'f>(form: &'f HashMap<String, String>, name: &str) -> Option<&'f str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn with_session(mut response: Response, user_id: Option<&str>) -> Response {
    let cookie = match user_id {
        Some(id) => format!("{SESSION_COOKIE}={id}; Path=/slack; HttpOnly; SameSite=Lax"),
        None => format!("{SESSION_COOKIE}=; Path=/slack; Max-Age=0"),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn problem_page(message: &str, back: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(
            "Slack",
            &format!(
                "<p class=\"problem\" role=\"alert\">{}</p><p><a href=\"{}\">Back</a></p>",
                escape(message),
                escape(back)
            ),
        ),
    )
        .into_response()
}

fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Error(code) => format!("Slack said: {code}"),
        Failure::MissingScope { needed, .. } => format!("Slack said: missing_scope ({needed})"),
        Failure::InvalidManifest(_) => "Slack said: invalid_manifest".to_owned(),
    }
}

/// The name Slack shows for a user: their display name, else their full name.
fn shown_name(user: &User) -> &str {
    if user.display_name.is_empty() {
        &user.real_name
    } else {
        &user.display_name
    }
}

fn display_name(state: &Workspace, id: &str) -> String {
    state
        .user(id)
        .map_or_else(|| id.to_owned(), |u| shown_name(u).to_owned())
}

fn conversation_title(state: &Workspace, conversation: &Conversation, viewer: &str) -> String {
    let others: Vec<String> = conversation
        .members
        .iter()
        .filter(|m| *m != viewer)
        .map(|m| display_name(state, m))
        .collect();
    if others.is_empty() {
        format!("{} (you)", display_name(state, viewer))
    } else {
        others.join(", ")
    }
}

fn clock(ts: u64) -> String {
    let seconds = ts / 1_000_000 % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn sign_in_page(sim: &SlackSim) -> Response {
    let state = sim.read();
    let picks: Vec<Pick> = state
        .users
        .iter()
        .filter(|u| u.is_human() && !u.deleted)
        .take(SIGN_IN_CHOICES)
        .filter_map(|u| {
            u.email.as_ref().map(|email| Pick {
                value: email.clone(),
                label: format!(
                    "{}{}",
                    u.real_name,
                    if u.is_admin { " (admin)" } else { "" }
                ),
            })
        })
        .collect();
    page(
        &format!("Sign in to {}", state.team.name),
        &format!(
            "<h1>Sign in to {team}</h1>\
             <form method=\"post\" action=\"/slack/signin\">{person}\
             <p><button type=\"submit\">Sign in</button></p></form>",
            team = escape(&state.team.name),
            person = people_picker("email", "Person (e-mail)", "", &picks),
        ),
    )
    .into_response()
}

async fn home(State(sim): State<Arc<SlackSim>>, headers: HeaderMap) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return sign_in_page(&sim);
    };
    let state = sim.read();
    let Some(user) = state.user(&me) else {
        drop(state);
        return sign_in_page(&sim);
    };
    let mut conversations: Vec<&Conversation> = state
        .index
        .conversations_of
        .get(&me)
        .into_iter()
        .flatten()
        .filter_map(|id| state.conversations.get(id))
        .collect();
    conversations.sort_by_key(|c| {
        std::cmp::Reverse(c.messages.last().map_or(c.created * 1_000_000, |m| m.ts))
    });
    let list: String = conversations
        .iter()
        .map(|c| {
            let preview = c
                .messages
                .iter()
                .rev()
                .find(|m| m.thread_ts.is_none())
                .map(|m| {
                    let text = mrkdwn::as_typed(&m.text);
                    format!("{}: {text}", display_name(&state, &m.user))
                })
                .unwrap_or_default();
            let kind = match c.kind {
                ConversationKind::Im => "DM",
                ConversationKind::Mpim => "Group",
            };
            format!(
                "<li><a href=\"/slack/c/{id}\">{title}</a> <span class=\"meta\">{kind} · {preview}</span></li>",
                id = escape(&c.id),
                title = escape(&conversation_title(&state, c, &me)),
                preview = escape(&preview.chars().take(80).collect::<String>()),
            )
        })
        .collect();
    let admin = if user.is_admin {
        "<h2>Add a person to the workspace</h2>\
         <form method=\"post\" action=\"/slack/admin/members\">\
         <label>E-mail <input type=\"email\" name=\"email\" required></label> \
         <label>Full name <input type=\"text\" name=\"real_name\" required></label> \
         <button type=\"submit\">Add</button></form>"
    } else {
        ""
    };
    page(
        &format!("{} · Slack", state.team.name),
        &format!(
            "<p class=\"meta\">Signed in to {team} as <strong>{name}</strong> ({email}){role} · \
             <a href=\"/slack/apps/tokens\">App configuration tokens</a> · \
             <form class=\"inline\" method=\"post\" action=\"/slack/signout\"><button type=\"submit\">Sign out</button></form></p>\
             <h1>Direct messages</h1><ul>{list}</ul>\
             <h2>New message</h2>{search}\
             <form method=\"post\" action=\"/slack/open\"><p>\
             <label>To (names, e-mail addresses or user ids, comma-separated, up to 8) \
             <input type=\"text\" name=\"to\" required></label> <button type=\"submit\">Open</button></p></form>\
             <h2>Your profile</h2><form method=\"post\" action=\"/slack/profile\">\
             <label>Display name <input type=\"text\" name=\"display_name\" value=\"{display}\"></label> \
             <button type=\"submit\">Save</button></form>{admin}",
            team = escape(&state.team.name),
            name = escape(&user.real_name),
            email = escape(user.email.as_deref().unwrap_or("")),
            role = if user.is_admin { ", workspace admin" } else { "" },
            display = escape(&user.display_name),
            search = search_form(""),
        ),
    )
    .into_response()
}

async fn sign_in(State(sim): State<Arc<SlackSim>>, body: Bytes) -> Response {
    let form = form(&body);
    let email = field(&form, "email");
    let user = email.and_then(|email| {
        sim.read()
            .user_by_email(email)
            .filter(|u| u.is_human() && !u.deleted)
            .map(|u| u.id.clone())
    });
    match user {
        Some(id) => with_session(Redirect::to("/slack/").into_response(), Some(&id)),
        None => problem_page(
            "No active person in this workspace has that e-mail address.",
            "/slack/",
        ),
    }
}

async fn sign_out() -> Response {
    with_session(Redirect::to("/slack/").into_response(), None)
}

fn search_form(query: &str) -> String {
    format!(
        "<form method=\"get\" action=\"/slack/people\" role=\"search\"><p>\
         <label>Search people <input type=\"search\" name=\"q\" value=\"{}\" \
         placeholder=\"Name or e-mail\"></label> <button type=\"submit\">Search</button></p></form>",
        escape(query)
    )
}

/// Whether `user` is found by `query` (lower case): a part of their names or e-mail address.
fn matches(user: &User, query: &str) -> bool {
    query.is_empty()
        || [&user.display_name, &user.real_name, &user.name]
            .into_iter()
            .chain(&user.email)
            .any(|field| field.to_lowercase().contains(query))
}

/// The workspace's directory, as Slack's "People" browser: members and bot users by name,
/// each a "Message" away, or several ticked for a group message.
async fn people(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return Redirect::to("/slack/").into_response();
    };
    let query = params.get("q").map_or("", |q| q.trim());
    let needle = query.to_lowercase();
    let state = sim.read();
    let mut found: Vec<&User> = state
        .users
        .iter()
        .filter(|u| !u.deleted && u.id != me && matches(u, &needle))
        .collect();
    found.sort_by_cached_key(|u| shown_name(u).to_lowercase());
    let rows: String = found
        .iter()
        .take(DIRECTORY_PAGE)
        .map(|u| {
            let name = escape(shown_name(u));
            let tag = match (&u.bot, u.is_restricted) {
                (Some(_), _) => "<span class=\"tag\">bot</span>",
                (None, true) => "<span class=\"tag\">guest</span>",
                (None, false) => "",
            };
            let details: Vec<String> = [
                (u.real_name != shown_name(u)).then(|| escape(&u.real_name)),
                u.email.as_deref().map(escape),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!(
                "<tr><td><input type=\"checkbox\" name=\"with\" value=\"{id}\" aria-label=\"Select {name}\"></td>\
                 <td><strong>{name}</strong>{tag}<div class=\"meta\">{details}</div></td>\
                 <td><button type=\"submit\" name=\"to\" value=\"{id}\" aria-label=\"Message {name}\">Message</button></td></tr>",
                id = escape(&u.id),
                details = details.join(" · "),
            )
        })
        .collect();
    let summary = match found.len() {
        0 => "No one matches.".to_owned(),
        n if n > DIRECTORY_PAGE => {
            format!("{n} people match; the first {DIRECTORY_PAGE} are shown. Search to narrow.")
        }
        1 => "1 person matches.".to_owned(),
        n => format!("{n} people match."),
    };
    page(
        &format!("People · {}", state.team.name),
        &format!(
            "<p><a href=\"/slack/\">← Direct messages</a></p><h1>People in {team}</h1>{search}\
             <p class=\"meta\">{summary}</p>\
             <form method=\"post\" action=\"/slack/open\"><table class=\"people\">{rows}</table>\
             <p><button type=\"submit\">Message the selected people together</button></p></form>",
            team = escape(&state.team.name),
            search = search_form(query),
        ),
    )
    .into_response()
}

/// The user an entry of "To" names: an e-mail address, a user id, or a name no one else has.
fn resolve(state: &Workspace, entry: &str) -> Result<String, String> {
    if let Some(user) = state.user_by_email(entry).or_else(|| state.user(entry)) {
        return Ok(user.id.clone());
    }
    let named: Vec<&User> = state
        .users
        .iter()
        .filter(|u| {
            !u.deleted
                && (shown_name(u).eq_ignore_ascii_case(entry)
                    || u.real_name.eq_ignore_ascii_case(entry))
        })
        .collect();
    match named.as_slice() {
        [user] => Ok(user.id.clone()),
        [] => Err(format!("No one is called {entry} here.")),
        _ => Err(format!(
            "{} people are called {entry}: use an e-mail address.",
            named.len()
        )),
    }
}

async fn open(State(sim): State<Arc<SlackSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return Redirect::to("/slack/").into_response();
    };
    let pairs = std::str::from_utf8(&body)
        .ok()
        .and_then(parse_urlencoded)
        .unwrap_or_default();
    let values = |name: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // A row's "Message" names one person; the ticked boxes count only for the group button.
    let mut entries = values("to");
    if entries.is_empty() {
        entries = values("with");
    }
    if entries.is_empty() {
        return problem_page("Choose someone to message.", "/slack/people");
    }
    let mut others = Vec::new();
    for entry in &entries {
        match resolve(&sim.read(), entry) {
            Ok(id) if id != me => others.push(id),
            Ok(_) => {}
            Err(problem) => return problem_page(&problem, "/slack/"),
        }
    }
    if others.is_empty() {
        others.push(me.clone());
    }
    match sim.open(&me, &others, false) {
        Ok((channel, _)) => Redirect::to(&format!("/slack/c/{channel}")).into_response(),
        Err(failure) => problem_page(&failure_text(&failure), "/slack/"),
    }
}

async fn profile(State(sim): State<Arc<SlackSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return Redirect::to("/slack/").into_response();
    };
    let form = form(&body);
    match sim.change_display_name(&me, field(&form, "display_name").unwrap_or_default()) {
        Ok(()) => Redirect::to("/slack/").into_response(),
        Err(problem) => problem_page(&problem, "/slack/"),
    }
}

async fn add_member(State(sim): State<Arc<SlackSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return Redirect::to("/slack/").into_response();
    };
    if !sim.read().user(&me).is_some_and(|u| u.is_admin) {
        return problem_page("Only workspace admins may add people.", "/slack/");
    }
    let form = form(&body);
    let (Some(email), Some(name)) = (field(&form, "email"), field(&form, "real_name")) else {
        return problem_page("An e-mail address and a name are needed.", "/slack/");
    };
    match sim.add_member(email, name) {
        Ok(_) => Redirect::to("/slack/").into_response(),
        Err(problem) => problem_page(&problem, "/slack/"),
    }
}

async fn tokens_page(State(sim): State<Arc<SlackSim>>, headers: HeaderMap) -> Response {
    if session_user(&sim, &headers).is_none() {
        return Redirect::to("/slack/").into_response();
    }
    page(
        "App configuration tokens",
        "<h1>Your app configuration tokens</h1>\
         <p>Configuration tokens call the App Manifest API; each lasts 12 hours and comes with a \
         refresh token for <code>tooling.tokens.rotate</code>.</p>\
         <form method=\"post\" action=\"/slack/apps/tokens\"><button type=\"submit\">Generate token</button></form>\
         <p><a href=\"/slack/\">Back</a></p>",
    )
    .into_response()
}

async fn generate_tokens(State(sim): State<Arc<SlackSim>>, headers: HeaderMap) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return Redirect::to("/slack/").into_response();
    };
    let issued = sim.issue_config_tokens(&me);
    let value = |name: &str| {
        escape(
            issued
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
        )
    };
    page(
        "App configuration tokens",
        &format!(
            "<h1>Your new tokens</h1>\
             <p>Access token: <code id=\"access-token\">{}</code></p>\
             <p>Refresh token: <code id=\"refresh-token\">{}</code></p>\
             <p><a href=\"/slack/\">Back</a></p>",
            value("token"),
            value("refresh_token"),
        ),
    )
    .into_response()
}

/// A message (with its thread unless it is a reply) as HTML, and its version.
fn render_message(
    state: &Workspace,
    conversation: &Conversation,
    ts: u64,
    me: &str,
    reply: bool,
) -> (String, String) {
    let Some(message) = conversation.message(ts) else {
        return (String::new(), String::new());
    };
    let channel = escape(&conversation.id);
    let ts_text = format_ts(message.ts);
    let author = message
        .username
        .clone()
        .unwrap_or_else(|| display_name(state, &message.user));
    let reactions: String = message
        .reactions
        .iter()
        .map(|r| {
            let mine = r.users.iter().any(|u| u == me);
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/slack/c/{channel}/react\">\
                 <input type=\"hidden\" name=\"ts\" value=\"{ts_text}\">\
                 <input type=\"hidden\" name=\"name\" value=\"{name}\">\
                 <input type=\"hidden\" name=\"remove\" value=\"{mine}\">\
                 <button type=\"submit\" title=\"{who}\">:{name}: {count}{mark}</button></form> ",
                name = escape(&r.name),
                who = escape(
                    &r.users
                        .iter()
                        .map(|u| display_name(state, u))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                count = r.users.len(),
                mark = if mine { " ✓" } else { "" },
            )
        })
        .collect();
    let own = if message.user == me {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/slack/c/{channel}/edit\">\
             <input type=\"hidden\" name=\"ts\" value=\"{ts_text}\">\
             <input type=\"text\" name=\"text\" value=\"{text}\" aria-label=\"Edit message\"> \
             <button type=\"submit\">Edit</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/slack/c/{channel}/delete\">\
             <input type=\"hidden\" name=\"ts\" value=\"{ts_text}\">\
             <button type=\"submit\">Delete</button></form>",
            text = escape(&mrkdwn::as_typed(&message.text)),
        )
    } else {
        String::new()
    };
    let thread = if reply {
        String::new()
    } else {
        let replies: String = message
            .replies
            .iter()
            .map(|&r| render_message(state, conversation, r, me, true).1)
            .collect();
        format!(
            "{replies}<form class=\"reply\" method=\"post\" action=\"/slack/c/{channel}/post\">\
             <input type=\"hidden\" name=\"thread_ts\" value=\"{ts_text}\">\
             <input type=\"text\" name=\"text\" aria-label=\"Reply in thread\" placeholder=\"Reply…\"> \
             <button type=\"submit\">Reply</button></form>"
        )
    };
    let name_of = |id: &str| state.user(id).map(|u| shown_name(u).to_owned());
    let inner = format!(
        "<div class=\"meta\"><strong>{author}</strong> {time}{edited}</div>\
         <div class=\"text\">{text}</div><div>{reactions}\
         <form class=\"inline\" method=\"post\" action=\"/slack/c/{channel}/react\">\
         <input type=\"hidden\" name=\"ts\" value=\"{ts_text}\">\
         <input type=\"text\" name=\"name\" size=\"10\" placeholder=\"thumbsup\" aria-label=\"Reaction\"> \
         <button type=\"submit\">React</button></form> {own}</div>{thread}",
        author = escape(&author),
        time = clock(message.ts),
        edited = if message.edited.is_some() {
            " (edited)"
        } else {
            ""
        },
        text = mrkdwn::to_html(&message.text, &name_of),
    );
    // The version lets the live script see that a message, or its thread, changed.
    let v = version(&inner);
    let html = format!(
        "<div class=\"msg{class}\" id=\"m{ts_text}\" data-v=\"{v}\">{inner}</div>",
        class = if reply { " reply" } else { "" },
    );
    (v, html)
}

async fn conversation(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return Redirect::to("/slack/").into_response();
    };
    let state = sim.read();
    let Ok(conversation) = state.visible_conversation(&me, &channel) else {
        return problem_page("You are not in that conversation.", "/slack/");
    };
    let messages: String = conversation
        .messages
        .iter()
        .filter(|m| m.thread_ts.is_none())
        .map(|m| render_message(&state, conversation, m.ts, &me, false).1)
        .collect();
    let title = conversation_title(&state, conversation, &me);
    page(
        &format!("{title} · Slack"),
        &format!(
            "<p><a href=\"/slack/\">← Direct messages</a></p><h1>{title}</h1>\
             <div id=\"messages\" data-live=\"/slack/c/{channel}/live\">{messages}</div>\
             <form method=\"post\" action=\"/slack/c/{channel}/post\">\
             <p><textarea name=\"text\" rows=\"3\" cols=\"60\" aria-label=\"Message\" required></textarea></p>\
             <p class=\"help\">Write as in Slack: *bold*, _italic_, ~strike~, `code`, ```code block```, \
             &gt; quote; web addresses become links, and a link with a label is written \
             &lt;https://…|label&gt;.</p>\
             <p><button type=\"submit\">Send</button></p></form><script src=\"/slack/live.js\" defer></script>",
            title = escape(&title),
            channel = escape(&conversation.id),
        ),
    )
    .into_response()
}

/// The conversation's messages for the live script: each top-level message (its thread
/// included) as its element id, version and HTML.
async fn live(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Response {
    let Some(me) = session_user(&sim, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let state = sim.read();
    let Ok(conversation) = state.visible_conversation(&me, &channel) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let messages: Vec<serde_json::Value> = conversation
        .messages
        .iter()
        .filter(|m| m.thread_ts.is_none())
        .map(|m| {
            let (v, html) = render_message(&state, conversation, m.ts, &me, false);
            serde_json::json!({"id": format!("m{}", format_ts(m.ts)), "v": v, "html": html})
        })
        .collect();
    axum::Json(serde_json::json!({ "messages": messages })).into_response()
}

/// Runs one action as the signed-in person and returns to the conversation.
fn act(
    sim: &SlackSim,
    headers: &HeaderMap,
    channel: &str,
    action: impl FnOnce(&Actor) -> Result<(), Failure>,
) -> Response {
    let Some(me) = session_user(sim, headers) else {
        return Redirect::to("/slack/").into_response();
    };
    let back = format!("/slack/c/{channel}");
    match action(&Actor::client(&me)) {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(failure) => problem_page(&failure_text(&failure), &back),
    }
}

fn form_ts(form: &HashMap<String, String>) -> Result<u64, Failure> {
    field(form, "ts")
        .and_then(parse_ts)
        .ok_or(Failure::Error("message_not_found"))
}

async fn send(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let form = form(&body);
    act(&sim, &headers, &channel, |actor| {
        let thread_ts = match field(&form, "thread_ts") {
            None => None,
            Some(ts) => Some(parse_ts(ts).ok_or(Failure::Error("thread_not_found"))?),
        };
        let message = NewMessage {
            text: field(&form, "text").map(mrkdwn::compose),
            blocks: None,
            thread_ts,
            username: None,
            icon_url: None,
            icon_emoji: None,
            metadata: None,
            files: Vec::new(),
        };
        sim.post(actor, &channel, message).map(|_| ())
    })
}

async fn edit(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let form = form(&body);
    act(&sim, &headers, &channel, |actor| {
        let text = field(&form, "text").map(mrkdwn::compose);
        sim.edit(actor, &channel, form_ts(&form)?, text, None)
            .map(|_| ())
    })
}

async fn delete(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let form = form(&body);
    act(&sim, &headers, &channel, |actor| {
        sim.delete(actor, &channel, form_ts(&form)?)
    })
}

async fn react(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let form = form(&body);
    act(&sim, &headers, &channel, |actor| {
        let name = field(&form, "name")
            .and_then(crate::state::reaction_name)
            .ok_or(Failure::Error("invalid_name"))?;
        let add = field(&form, "remove") != Some("true");
        sim.react(actor, &channel, form_ts(&form)?, &name, add)
    })
}
