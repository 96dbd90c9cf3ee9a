//! The Web API at `/slack/api/{method}`: arguments read from the query string and from a form
//! or JSON body into one map, the token from `Authorization: Bearer` or the `token` argument,
//! token types and scopes checked, Slack's rate tiers applied, then the method.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use switchboard_sim_kit::{Limit, SimPlatform};

use crate::encoding::{format_ts, parse_multipart, parse_ts, parse_urlencoded};
use crate::state::{
    Actor, Conversation, ConversationKind, Failure, Message, NewMessage, State as Workspace,
    TokenKind, Upload,
};
use crate::{SlackSim, json_response};

const TIER_1: Limit = Limit::per_minute(1.0, 2.0);
const TIER_2: Limit = Limit::per_minute(20.0, 5.0);
const TIER_3: Limit = Limit::per_minute(50.0, 10.0);
const TIER_4: Limit = Limit::per_minute(100.0, 20.0);
/// `chat.postMessage`: about one message a second per channel, with a short burst.
const PER_CHANNEL: Limit = Limit {
    per_second: 1.0,
    burst: 3.0,
};
/// Slack's pagination caps `limit` at 1,000.
const MAX_PAGE: usize = 1000;

const WEB_TOKENS: &[TokenKind] = &[TokenKind::Bot, TokenKind::User];
const CONFIG_TOKENS: &[TokenKind] = &[TokenKind::Config];

/// The second step of Slack's upload (`files.getUploadURLExternal`): the file's bytes, posted
/// to the URL it gave, as the raw body or as a multipart form's file. Slack answers in plain text.
pub async fn receive_upload(
    State(sim): State<Arc<SlackSim>>,
    Path(file_id): Path<String>,
    body: Bytes,
) -> Response {
    let mut state = sim.write();
    let Some(upload) = state.uploads.get_mut(&file_id) else {
        return plain_text(StatusCode::NOT_FOUND, "file not found".to_owned());
    };
    if body.is_empty() {
        return plain_text(StatusCode::BAD_REQUEST, "no file".to_owned());
    }
    upload.received = true;
    plain_text(StatusCode::OK, format!("OK - {}", body.len()))
}

fn plain_text(status: StatusCode, text: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(text.into())
        .unwrap_or_default()
}

/// The methods that take a token: their rate tier and the token types they accept.
fn method_spec(method: &str) -> Option<(Limit, &'static [TokenKind])> {
    Some(match method {
        "auth.test"
        | "users.info"
        | "conversations.members"
        | "apps.uninstall"
        | "files.getUploadURLExternal"
        | "files.completeUploadExternal" => (TIER_4, WEB_TOKENS),
        "users.list" | "reactions.remove" => (TIER_2, WEB_TOKENS),
        "auth.revoke"
        | "users.lookupByEmail"
        | "conversations.open"
        | "conversations.info"
        | "conversations.history"
        | "conversations.replies"
        | "chat.update"
        | "chat.delete"
        | "reactions.add" => (TIER_3, WEB_TOKENS),
        "chat.postMessage" => (PER_CHANNEL, WEB_TOKENS),
        "apps.manifest.create" | "apps.manifest.update" | "apps.manifest.delete" => {
            (TIER_1, CONFIG_TOKENS)
        }
        "apps.manifest.validate" | "apps.manifest.export" => (TIER_3, CONFIG_TOKENS),
        _ => return None,
    })
}

/// A method's arguments, whichever way they came.
pub struct Params {
    values: HashMap<String, String>,
    /// A `token` argument from the query string or a form body.
    token_param: Option<String>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// `limit`: absent or 0 means the method's default.
    fn limit(&self, default: usize) -> Result<usize, Failure> {
        match self.get("limit") {
            None => Ok(default),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(0) => Ok(default),
                Ok(limit) => Ok(limit.min(MAX_PAGE)),
                Err(_) => Err("invalid_limit".into()),
            },
        }
    }
}

/// Reads the query string and the body. JSON bodies cannot carry the token (Slack wants it in
/// the header then), so a `token` there is ignored.
pub fn read_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Params, &'static str> {
    let mut values: HashMap<String, String> = HashMap::new();
    if let Some(query) = query {
        values.extend(parse_urlencoded(query).ok_or("invalid_arguments")?);
    }
    let mut token_param = values.get("token").cloned();
    if !body.is_empty() {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut attributes = content_type.split(';').map(str::trim);
        let media_type = attributes.next().unwrap_or_default().to_ascii_lowercase();
        let boundary = attributes
            .find_map(|a| a.strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_owned());
        match Some(media_type.as_str()).filter(|m| !m.is_empty()) {
            None => return Err("missing_post_type"),
            Some("application/x-www-form-urlencoded") => {
                let text = std::str::from_utf8(body).map_err(|_| "invalid_form_data")?;
                let pairs = parse_urlencoded(text).ok_or("invalid_form_data")?;
                for (name, value) in pairs {
                    if name == "token" {
                        token_param = Some(value.clone());
                    }
                    values.insert(name, value);
                }
            }
            Some("application/json") => {
                let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
                    return Err("invalid_json");
                };
                for (name, value) in object {
                    let text = match value {
                        Value::Null => continue,
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    if name != "token" {
                        values.insert(name, text);
                    }
                }
            }
            Some("multipart/form-data") => {
                let pairs = boundary
                    .and_then(|boundary| parse_multipart(body, &boundary))
                    .ok_or("invalid_form_data")?;
                for (name, value) in pairs {
                    if name == "token" {
                        token_param = Some(value.clone());
                    }
                    values.insert(name, value);
                }
            }
            Some(_) => return Err("invalid_post_type"),
        }
    }
    Ok(Params {
        values,
        token_param,
    })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn failure_body(failure: &Failure) -> Value {
    match failure {
        Failure::Error(code) => json!({"ok": false, "error": code}),
        Failure::MissingScope { needed, provided } => json!({
            "ok": false,
            "error": "missing_scope",
            "needed": needed,
            "provided": provided,
        }),
        Failure::InvalidManifest(problems) => json!({
            "ok": false,
            "error": "invalid_manifest",
            "errors": problems,
        }),
    }
}

/// What a method produced: JSON, or a body already rendered (large `users.list` pages).
enum Answer {
    Json(Value),
    Rendered(String),
}

enum Outcome {
    Answer(Answer),
    Failed(Failure),
    Throttled(Duration),
}

pub async fn handle(
    State(sim): State<Arc<SlackSim>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (outcome, scopes) = run(&sim, &method, &headers, query.as_deref(), &body).await;
    let mut response = match outcome {
        Outcome::Answer(Answer::Json(value)) => json_response(StatusCode::OK, value.to_string()),
        Outcome::Answer(Answer::Rendered(text)) => json_response(StatusCode::OK, text),
        Outcome::Failed(failure) => {
            let status = if failure == Failure::Error("unknown_method") {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            let mut body = failure_body(&failure);
            if status == StatusCode::NOT_FOUND {
                body["req_method"] = json!(method);
            }
            json_response(status, body.to_string())
        }
        Outcome::Throttled(wait) => sim.throttled(wait),
    };
    if let Some(scopes) = scopes.and_then(|s| HeaderValue::from_str(&s).ok()) {
        response.headers_mut().insert("x-oauth-scopes", scopes);
    }
    response
}

async fn run(
    sim: &SlackSim,
    method: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> (Outcome, Option<String>) {
    let params = match read_params(headers, query, body) {
        Ok(params) => params,
        Err(code) => return (Outcome::Failed(code.into()), None),
    };
    let answer = match method {
        "oauth.v2.access" => Some(sim.oauth_access(headers, &params)),
        "tooling.tokens.rotate" => Some(sim.rotate_config_token(params.get("refresh_token"))),
        _ => None,
    };
    if let Some(answer) = answer {
        let key = format!("slack:{method}:{}", params.get("client_id").unwrap_or("-"));
        if let Err(wait) = sim.context.limits.check(&key, TIER_4) {
            return (Outcome::Throttled(wait), None);
        }
        return (into_outcome(answer.map(Answer::Json)), None);
    }
    let Some((limit, kinds)) = method_spec(method) else {
        return (Outcome::Failed("unknown_method".into()), None);
    };
    let token = bearer(headers).or_else(|| params.token_param.clone());
    let actor = match sim.authenticate(token.as_deref(), kinds) {
        Ok(actor) => actor,
        Err(failure) => return (Outcome::Failed(failure), None),
    };
    let scopes = Some(actor.scopes.join(","));
    let app = actor
        .app_id
        .clone()
        .unwrap_or_else(|| format!("client-{}", actor.user_id));
    let key = if method == "chat.postMessage" {
        format!(
            "slack:chat.postMessage:{}",
            params.get("channel").unwrap_or("-")
        )
    } else {
        format!("slack:{method}:{app}:{}", crate::state::TEAM_ID)
    };
    if let Err(wait) = sim.context.limits.check(&key, limit) {
        return (Outcome::Throttled(wait), scopes);
    }
    let result = match method {
        "apps.manifest.create" => sim
            .manifest_create(&actor, params.get("manifest"))
            .await
            .map(Answer::Json),
        "apps.manifest.update" => sim
            .manifest_update(&actor, params.get("app_id"), params.get("manifest"))
            .await
            .map(Answer::Json),
        _ => sim.call(method, &actor, &params),
    };
    (into_outcome(result), scopes)
}

fn into_outcome(result: Result<Answer, Failure>) -> Outcome {
    match result {
        Ok(answer) => Outcome::Answer(answer),
        Err(failure) => Outcome::Failed(failure),
    }
}

fn ok(mut value: Value) -> Result<Answer, Failure> {
    value["ok"] = json!(true);
    Ok(Answer::Json(value))
}

fn cursor(kind: &str, position: impl std::fmt::Display) -> String {
    BASE64.encode(format!("{kind}:{position}"))
}

fn read_cursor(params: &Params, kind: &str) -> Result<Option<String>, Failure> {
    let Some(cursor) = params.get("cursor") else {
        return Ok(None);
    };
    let decoded = BASE64
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(Failure::Error("invalid_cursor"))?;
    decoded
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(|rest| Some(rest.to_owned()))
        .ok_or(Failure::Error("invalid_cursor"))
}

fn required_ts(params: &Params, name: &str, missing: &'static str) -> Result<u64, Failure> {
    params
        .get(name)
        .and_then(parse_ts)
        .ok_or(Failure::Error(missing))
}

fn blocks(params: &Params) -> Result<Option<Value>, Failure> {
    match params.get("blocks") {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(blocks)) if blocks.iter().all(Value::is_object) => {
                Ok(Some(Value::Array(blocks)))
            }
            _ => Err("invalid_blocks".into()),
        },
    }
}

/// `metadata`: an object with a string `event_type` and an object `event_payload` — a JSON
/// string in form posts, an object in JSON bodies (which `read_params` has already re-serialised).
fn metadata(params: &Params) -> Result<Option<Value>, Failure> {
    let Some(text) = params.get("metadata") else {
        return Ok(None);
    };
    let invalid = || Failure::Error("invalid_metadata_format");
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return Err(invalid());
    };
    let event_type = object
        .remove("event_type")
        .filter(|t| t.as_str().is_some_and(|t| !t.trim().is_empty()))
        .ok_or_else(invalid)?;
    let event_payload = object
        .remove("event_payload")
        .filter(Value::is_object)
        .ok_or_else(invalid)?;
    Ok(Some(
        json!({"event_type": event_type, "event_payload": event_payload}),
    ))
}

/// Slack leaves messages' metadata out of history unless `include_all_metadata` asks for it.
fn history_json(
    state: &Workspace,
    conversation: &Conversation,
    message: &Message,
    with_metadata: bool,
) -> Value {
    let mut value = state.message_json(conversation, message);
    if !with_metadata && let Some(object) = value.as_object_mut() {
        object.remove("metadata");
    }
    value
}

fn reaction_name(params: &Params) -> Result<String, Failure> {
    params
        .get("name")
        .and_then(crate::state::reaction_name)
        .ok_or(Failure::Error("invalid_name"))
}

impl SlackSim {
    fn authenticate(&self, token: Option<&str>, kinds: &[TokenKind]) -> Result<Actor, Failure> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(Failure::Error("not_authed"))?;
        let state = self.read();
        let record = state
            .tokens
            .get(token)
            .ok_or(Failure::Error("invalid_auth"))?;
        if record.revoked {
            return Err("token_revoked".into());
        }
        if record
            .expires_at
            .is_some_and(|at| at <= self.now_micros() / 1_000_000)
        {
            return Err("token_expired".into());
        }
        if !kinds.contains(&record.kind) {
            return Err("not_allowed_token_type".into());
        }
        let user = state
            .user(&record.user_id)
            .ok_or(Failure::Error("invalid_auth"))?;
        if user.deleted {
            return Err("account_inactive".into());
        }
        Ok(Actor {
            user_id: record.user_id.clone(),
            kind: record.kind,
            app_id: record.app_id.clone(),
            scopes: record.scopes.clone(),
        })
    }

    fn call(&self, method: &str, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        match method {
            "auth.test" => self.auth_test(actor),
            "auth.revoke" => self.auth_revoke(actor, params),
            "users.list" => self.users_list(actor, params),
            "users.info" => {
                actor.require("users:read")?;
                let id = params.get("user").ok_or(Failure::Error("user_not_found"))?;
                let user = self
                    .read()
                    .user_value(id, actor.has("users:read.email"))
                    .ok_or(Failure::Error("user_not_found"))?;
                ok(json!({"user": user}))
            }
            "users.lookupByEmail" => {
                actor.require("users:read.email")?;
                let email = params
                    .get("email")
                    .ok_or(Failure::Error("invalid_arguments"))?;
                let state = self.read();
                let user = state
                    .user_by_email(email)
                    .and_then(|u| state.user_value(&u.id, true))
                    .ok_or(Failure::Error("users_not_found"))?;
                ok(json!({"user": user}))
            }
            "conversations.open" => self.conversations_open(actor, params),
            "conversations.info" => {
                let state = self.read();
                let channel = params
                    .get("channel")
                    .ok_or(Failure::Error("channel_not_found"))?;
                let conversation = state.visible_conversation(&actor.user_id, channel)?;
                actor.require(conversation.kind.read_scope())?;
                ok(json!({"channel": state.conversation_json(conversation, &actor.user_id)}))
            }
            "conversations.members" => self.conversations_members(actor, params),
            "conversations.history" => self.conversations_history(actor, params),
            "conversations.replies" => self.conversations_replies(actor, params),
            "chat.postMessage" => self.chat_post_message(actor, params),
            "files.getUploadURLExternal" => self.files_get_upload_url(actor, params),
            "files.completeUploadExternal" => self.files_complete_upload(actor, params),
            "chat.update" => {
                actor.require("chat:write")?;
                let channel = params
                    .get("channel")
                    .ok_or(Failure::Error("channel_not_found"))?;
                let ts = required_ts(params, "ts", "message_not_found")?;
                let message =
                    self.edit(actor, channel, ts, params.owned("text"), blocks(params)?)?;
                ok(json!({
                    "channel": channel,
                    "ts": format_ts(ts),
                    "text": message["text"],
                    "message": message,
                }))
            }
            "chat.delete" => {
                actor.require("chat:write")?;
                let channel = params
                    .get("channel")
                    .ok_or(Failure::Error("channel_not_found"))?;
                let ts = required_ts(params, "ts", "message_not_found")?;
                self.delete(actor, channel, ts)?;
                ok(json!({"channel": channel, "ts": format_ts(ts)}))
            }
            "reactions.add" | "reactions.remove" => {
                actor.require("reactions:write")?;
                let channel = params
                    .get("channel")
                    .ok_or(Failure::Error("channel_not_found"))?;
                let ts = required_ts(params, "timestamp", "no_item_specified")?;
                let name = reaction_name(params)?;
                self.react(actor, channel, ts, &name, method == "reactions.add")?;
                ok(json!({}))
            }
            "apps.uninstall" => self.apps_uninstall(actor, params),
            "apps.manifest.delete" => self
                .manifest_delete(actor, params.get("app_id"))
                .map(Answer::Json),
            "apps.manifest.export" => self
                .manifest_export(actor, params.get("app_id"))
                .map(Answer::Json),
            "apps.manifest.validate" => self
                .manifest_validate(actor, params.get("app_id"), params.get("manifest"))
                .map(Answer::Json),
            _ => Err("unknown_method".into()),
        }
    }

    fn auth_test(&self, actor: &Actor) -> Result<Answer, Failure> {
        let state = self.read();
        let user = state
            .user(&actor.user_id)
            .ok_or(Failure::Error("invalid_auth"))?;
        let mut answer = json!({
            "url": format!("{}/slack/", self.context.base_url),
            "team": state.team.name,
            "user": user.name,
            "team_id": state.team.id,
            "user_id": user.id,
            "is_enterprise_install": false,
        });
        if let Some(bot) = &user.bot {
            answer["bot_id"] = json!(bot.bot_id);
        }
        ok(answer)
    }

    fn auth_revoke(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        if params.flag("test") {
            return ok(json!({"revoked": false}));
        }
        let mut state = self.write();
        let revoked: Vec<String> = state
            .tokens
            .iter()
            .filter(|(_, t)| {
                t.user_id == actor.user_id && t.app_id == actor.app_id && t.kind == actor.kind
            })
            .map(|(value, _)| value.clone())
            .collect();
        for value in revoked {
            if let Some(token) = state.tokens.get_mut(&value) {
                token.revoked = true;
            }
        }
        ok(json!({"revoked": true}))
    }

    fn users_list(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        actor.require("users:read")?;
        let with_email = actor.has("users:read.email");
        let state = self.read();
        let total = state.users.len();
        let limit = match params.limit(0)? {
            0 if total > MAX_PAGE => return Err("limit_required".into()),
            0 => MAX_PAGE,
            limit => limit,
        };
        let start = match read_cursor(params, "user")? {
            None => 0,
            Some(id) => *state
                .index
                .user_by_id
                .get(&id)
                .ok_or(Failure::Error("invalid_cursor"))?,
        };
        let end = (start + limit).min(total);
        let next_cursor = state
            .users
            .get(end)
            .map(|next| cursor("user", &next.id))
            .unwrap_or_default();
        let mut body = String::with_capacity((end - start) * 720 + 128);
        body.push_str("{\"ok\":true,\"members\":[");
        for (n, rendered) in state.index.rendered[start..end].iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            rendered.write(&mut body, with_email);
        }
        body.push_str(&format!(
            "],\"cache_ts\":{},\"response_metadata\":{{\"next_cursor\":\"{next_cursor}\"}}}}",
            self.now_micros() / 1_000_000
        ));
        Ok(Answer::Rendered(body))
    }

    fn conversations_open(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        let prevent_creation = params.flag("prevent_creation");
        let Some(users) = params.get("users") else {
            let channel = params
                .get("channel")
                .ok_or(Failure::Error("users_list_not_supplied"))?;
            let state = self.read();
            let conversation = state.visible_conversation(&actor.user_id, channel)?;
            actor.require(conversation.kind.write_scope())?;
            return ok(json!({
                "no_op": true,
                "already_open": true,
                "channel": state.conversation_json(conversation, &actor.user_id),
            }));
        };
        let mut others: Vec<String> = Vec::new();
        for id in users.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            if id != actor.user_id && !others.iter().any(|o| o == id) {
                others.push(id.to_owned());
            }
        }
        let mentions_self = users.split(',').any(|id| id.trim() == actor.user_id);
        if others.is_empty() && mentions_self {
            others.push(actor.user_id.clone());
        }
        let kind = if others.len() <= 1 {
            ConversationKind::Im
        } else {
            ConversationKind::Mpim
        };
        if !others.is_empty() && others.len() <= 8 {
            actor.require(kind.write_scope())?;
        }
        let (channel, existed) = self.open(&actor.user_id, &others, prevent_creation)?;
        let state = self.read();
        let conversation = state.visible_conversation(&actor.user_id, &channel)?;
        let channel_json = if kind == ConversationKind::Im && !params.flag("return_im") {
            json!({"id": channel})
        } else {
            state.conversation_json(conversation, &actor.user_id)
        };
        let mut answer = json!({"channel": channel_json});
        if existed {
            answer["no_op"] = json!(true);
            answer["already_open"] = json!(true);
        }
        ok(answer)
    }

    fn conversations_members(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        let state = self.read();
        let channel = params
            .get("channel")
            .ok_or(Failure::Error("channel_not_found"))?;
        let conversation = state.visible_conversation(&actor.user_id, channel)?;
        actor.require(conversation.kind.read_scope())?;
        let limit = params.limit(100)?;
        let start = match read_cursor(params, "user")? {
            None => 0,
            Some(id) => conversation
                .members
                .iter()
                .position(|m| *m == id)
                .ok_or(Failure::Error("invalid_cursor"))?,
        };
        let end = (start + limit).min(conversation.members.len());
        let next_cursor = conversation
            .members
            .get(end)
            .map(|id| cursor("user", id))
            .unwrap_or_default();
        ok(json!({
            "members": conversation.members[start..end],
            "response_metadata": {"next_cursor": next_cursor},
        }))
    }

    fn conversations_history(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        let state = self.read();
        let channel = params
            .get("channel")
            .ok_or(Failure::Error("channel_not_found"))?;
        let conversation = state.visible_conversation(&actor.user_id, channel)?;
        actor.require(conversation.kind.history_scope())?;
        let inclusive = params.flag("inclusive");
        let with_metadata = params.flag("include_all_metadata");
        let latest = match params.get("latest") {
            None => u64::MAX,
            Some(text) => parse_ts(text).ok_or(Failure::Error("invalid_ts_latest"))?,
        };
        let oldest = match params.get("oldest") {
            None => 0,
            Some(text) => parse_ts(text).ok_or(Failure::Error("invalid_ts_oldest"))?,
        };
        let limit = params.limit(100)?.min(999);
        let resume = match read_cursor(params, "next_ts")? {
            None => None,
            Some(ts) => Some(
                ts.parse::<u64>()
                    .map_err(|_| Failure::Error("invalid_cursor"))?,
            ),
        };
        let mut page = conversation
            .messages
            .iter()
            .rev()
            .filter(|m| m.thread_ts.is_none())
            .filter(|m| resume.is_none_or(|r| m.ts <= r))
            .filter(|m| {
                let below = if inclusive {
                    m.ts <= latest
                } else {
                    m.ts < latest
                };
                let above = if inclusive {
                    m.ts >= oldest
                } else {
                    m.ts > oldest
                };
                below && above
            })
            .take(limit + 1);
        let messages: Vec<Value> = page
            .by_ref()
            .take(limit)
            .map(|m| history_json(&state, conversation, m, with_metadata))
            .collect();
        let next = page.next();
        ok(json!({
            "messages": messages,
            "has_more": next.is_some(),
            "pin_count": 0,
            "channel_actions_ts": null,
            "channel_actions_count": 0,
            "response_metadata": {
                "next_cursor": next.map(|m| cursor("next_ts", m.ts)).unwrap_or_default(),
            },
        }))
    }

    fn conversations_replies(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        let state = self.read();
        let channel = params
            .get("channel")
            .ok_or(Failure::Error("channel_not_found"))?;
        let conversation = state.visible_conversation(&actor.user_id, channel)?;
        actor.require(conversation.kind.history_scope())?;
        let ts = required_ts(params, "ts", "thread_not_found")?;
        let asked = conversation
            .message(ts)
            .ok_or(Failure::Error("thread_not_found"))?;
        let parent = match asked.thread_ts {
            Some(parent) => conversation
                .message(parent)
                .ok_or(Failure::Error("thread_not_found"))?,
            None => asked,
        };
        let limit = params.limit(1000)?;
        let start = match read_cursor(params, "next_ts")? {
            None => None,
            Some(ts) => Some(
                ts.parse::<u64>()
                    .map_err(|_| Failure::Error("invalid_cursor"))?,
            ),
        };
        let thread: Vec<u64> = std::iter::once(parent.ts)
            .chain(parent.replies.iter().copied())
            .filter(|ts| start.is_none_or(|s| *ts >= s))
            .collect();
        let messages: Vec<Value> = thread
            .iter()
            .take(limit)
            .filter_map(|&ts| conversation.message(ts))
            .map(|m| history_json(&state, conversation, m, params.flag("include_all_metadata")))
            .collect();
        let next = thread.get(limit);
        ok(json!({
            "messages": messages,
            "has_more": next.is_some(),
            "response_metadata": {
                "next_cursor": next.map(|ts| cursor("next_ts", ts)).unwrap_or_default(),
            },
        }))
    }

    fn chat_post_message(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        actor.require("chat:write")?;
        let channel = params
            .get("channel")
            .ok_or(Failure::Error("channel_not_found"))?;
        let thread_ts = match params.get("thread_ts") {
            None => None,
            Some(text) => Some(parse_ts(text).ok_or(Failure::Error("thread_not_found"))?),
        };
        let message = NewMessage {
            text: params.owned("text"),
            blocks: blocks(params)?,
            thread_ts,
            username: params.owned("username"),
            icon_url: params.owned("icon_url"),
            icon_emoji: params.owned("icon_emoji"),
            metadata: metadata(params)?,
            files: Vec::new(),
        };
        let (channel, message) = self.post(actor, channel, message)?;
        ok(json!({
            "channel": channel,
            "ts": message["ts"],
            "message": message,
        }))
    }

    /// The first step of Slack's upload: a URL to send the file's bytes to, and its id.
    fn files_get_upload_url(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        actor.require("files:write")?;
        let filename = params
            .get("filename")
            .ok_or(Failure::Error("invalid_arguments"))?
            .to_owned();
        let length = params
            .get("length")
            .and_then(|length| length.parse::<u64>().ok())
            .filter(|length| *length > 0)
            .ok_or(Failure::Error("invalid_arguments"))?;
        let mut state = self.write();
        state.counters.next_file += 1;
        let file_id = format!("F{:08X}", state.counters.next_file);
        state.uploads.insert(
            file_id.clone(),
            Upload {
                user: actor.user_id.clone(),
                filename,
                length,
                received: false,
            },
        );
        ok(json!({
            "upload_url": format!("{}/slack/upload/{file_id}", self.context.base_url),
            "file_id": file_id,
        }))
    }

    /// The last step: the uploaded files shared in a channel as one message, the optional
    /// `initial_comment` its text.
    fn files_complete_upload(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        actor.require("files:write")?;
        let wanted: Vec<Value> = params
            .get("files")
            .and_then(|files| serde_json::from_str(files).ok())
            .filter(|files: &Vec<Value>| !files.is_empty())
            .ok_or(Failure::Error("invalid_arguments"))?;
        let now_secs = self.now_micros() / 1_000_000;
        let mut files = Vec::with_capacity(wanted.len());
        {
            let mut state = self.write();
            for file in &wanted {
                let id = file
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or(Failure::Error("invalid_arguments"))?;
                let upload = state
                    .uploads
                    .get(id)
                    .filter(|upload| upload.user == actor.user_id)
                    .ok_or(Failure::Error("file_not_found"))?;
                if !upload.received {
                    return Err("file_upload_not_complete".into());
                }
                let title = file
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(&upload.filename);
                files.push(json!({
                    "id": id,
                    "created": now_secs,
                    "timestamp": now_secs,
                    "name": upload.filename,
                    "title": title,
                    "mimetype": "application/octet-stream",
                    "user": upload.user,
                    "size": upload.length,
                    "mode": "hosted",
                    "is_external": false,
                    "is_public": false,
                }));
            }
            for file in &files {
                if let Some(id) = file["id"].as_str() {
                    state.uploads.remove(id);
                }
            }
        }
        let shared: Vec<Value> = files
            .iter()
            .map(|file| json!({"id": file["id"], "title": file["title"]}))
            .collect();
        if let Some(channel) = params.get("channel_id") {
            let thread_ts = match params.get("thread_ts") {
                None => None,
                Some(text) => Some(parse_ts(text).ok_or(Failure::Error("thread_not_found"))?),
            };
            let message = NewMessage {
                text: params.owned("initial_comment"),
                blocks: None,
                thread_ts,
                username: None,
                icon_url: None,
                icon_emoji: None,
                metadata: None,
                files,
            };
            self.post(actor, channel, message)?;
        }
        ok(json!({ "files": shared }))
    }

    fn apps_uninstall(&self, actor: &Actor, params: &Params) -> Result<Answer, Failure> {
        let mut state = self.write();
        let app_id = params
            .get("client_id")
            .and_then(|id| state.index.app_by_client_id.get(id))
            .cloned()
            .ok_or(Failure::Error("invalid_client_id"))?;
        let app = state
            .apps
            .get(&app_id)
            .ok_or(Failure::Error("invalid_client_id"))?;
        if params.get("client_secret") != Some(app.credentials.client_secret.as_str()) {
            return Err("bad_client_secret".into());
        }
        if actor.app_id.as_deref() != Some(app_id.as_str()) {
            return Err("invalid_client_id".into());
        }
        state.uninstall(&app_id);
        ok(json!({}))
    }
}
