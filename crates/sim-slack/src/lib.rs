//! The simulator's Slack: the Web API at `/slack/api/{method}`, OAuth v2 with a consent page,
//! the App Manifest API, the Events API with signed deliveries and Slack's retries, its rate
//! tiers, and a small web client at `/slack/` through which simulated people chat.
//!
//! It is an independent reading of Slack's documentation and shares no code with the hub's
//! Slack client; `slack_sdk` and the vendor's signature test vector arbitrate between them.

mod api;
mod demo;
mod encoding;
mod events;
mod manifest;
mod mrkdwn;
mod oauth;
mod state;
mod web;

pub use demo::SlackDemo;

#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use switchboard_sim_kit::clock::since_epoch;
use switchboard_sim_kit::ratelimit::retry_after_seconds;
use switchboard_sim_kit::{
    ControlError, OrgPlatform, Organisation, SimContext, SimPlatform, SimUser,
};

use crate::encoding::format_ts;
use crate::events::Outgoing;
use crate::state::{Actor, Failure, NewMessage, State, User};

/// The version of [`SimPlatform::save`]'s output; other versions are refused on restore.
const SAVE_VERSION: u64 = 1;

pub struct SlackSim {
    context: SimContext,
    state: RwLock<State>,
}

impl SlackSim {
    pub fn new(context: SimContext) -> Arc<Self> {
        Arc::new(Self {
            context,
            state: RwLock::new(State::empty()),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(since_epoch().as_micros()).unwrap_or(u64::MAX)
    }

    fn dispatch(&self, outgoing: Vec<Outgoing>) {
        for envelope in outgoing {
            self.context.webhooks.spawn(events::delivery(envelope));
        }
    }

    /// Posts a message and tells subscribed apps; returns the channel and the message.
    pub(crate) fn post(
        &self,
        actor: &Actor,
        channel: &str,
        message: NewMessage,
    ) -> Result<(String, Value), Failure> {
        let now = self.now_micros();
        let (channel, posted, outgoing) = {
            let mut state = self.write();
            let (channel, ts) = state.post_message(actor, channel, message, now)?;
            let Some(conversation) = state.conversations.get(&channel) else {
                return Err("channel_not_found".into());
            };
            let Some(message) = conversation.message(ts) else {
                return Err("message_not_found".into());
            };
            let posted = state.message_json(conversation, message);
            let mut event = posted.clone();
            event["channel"] = json!(channel);
            event["event_ts"] = json!(format_ts(ts));
            event["channel_type"] = json!(conversation.kind.channel_type());
            let outgoing = events::message_event(&mut state, &channel, event);
            (channel, posted, outgoing)
        };
        self.dispatch(outgoing);
        Ok((channel, posted))
    }

    /// Edits a message (`message_changed` to subscribers); returns it as it now is.
    pub(crate) fn edit(
        &self,
        actor: &Actor,
        channel: &str,
        ts: u64,
        text: Option<String>,
        blocks: Option<Value>,
    ) -> Result<Value, Failure> {
        let now = self.now_micros();
        let (edited, outgoing) = {
            let mut state = self.write();
            let (previous, event_ts) =
                state.update_message(actor, channel, ts, text, blocks, now)?;
            let Some(conversation) = state.conversations.get(channel) else {
                return Err("channel_not_found".into());
            };
            let Some(message) = conversation.message(ts) else {
                return Err("message_not_found".into());
            };
            let edited = state.message_json(conversation, message);
            let event = json!({
                "type": "message",
                "subtype": "message_changed",
                "hidden": true,
                "message": edited,
                "previous_message": state.message_json(conversation, &previous),
                "channel": channel,
                "ts": format_ts(event_ts),
                "event_ts": format_ts(event_ts),
                "channel_type": conversation.kind.channel_type(),
            });
            let outgoing = events::message_event(&mut state, channel, event);
            (edited, outgoing)
        };
        self.dispatch(outgoing);
        Ok(edited)
    }

    /// Deletes a message (`message_deleted` to subscribers).
    pub(crate) fn delete(&self, actor: &Actor, channel: &str, ts: u64) -> Result<(), Failure> {
        let now = self.now_micros();
        let outgoing = {
            let mut state = self.write();
            let (removed, event_ts) = state.delete_message(actor, channel, ts, now)?;
            let Some(conversation) = state.conversations.get(channel) else {
                return Err("channel_not_found".into());
            };
            let event = json!({
                "type": "message",
                "subtype": "message_deleted",
                "hidden": true,
                "deleted_ts": format_ts(ts),
                "previous_message": state.message_json(conversation, &removed),
                "channel": channel,
                "ts": format_ts(event_ts),
                "event_ts": format_ts(event_ts),
                "channel_type": conversation.kind.channel_type(),
            });
            events::message_event(&mut state, channel, event)
        };
        self.dispatch(outgoing);
        Ok(())
    }

    /// Adds or removes a reaction (`reaction_added` / `reaction_removed` to subscribers).
    pub(crate) fn react(
        &self,
        actor: &Actor,
        channel: &str,
        ts: u64,
        name: &str,
        add: bool,
    ) -> Result<(), Failure> {
        let now = self.now_micros();
        let outgoing = {
            let mut state = self.write();
            let item_user = state.react(actor, channel, ts, name, add)?;
            let kind = if add {
                "reaction_added"
            } else {
                "reaction_removed"
            };
            let event_ts = state.next_ts(now);
            let event = json!({
                "type": kind,
                "user": actor.user_id,
                "reaction": name,
                "item_user": item_user,
                "item": {"type": "message", "channel": channel, "ts": format_ts(ts)},
                "event_ts": format_ts(event_ts),
            });
            events::reaction_event(&mut state, channel, kind, event)
        };
        self.dispatch(outgoing);
        Ok(())
    }

    pub(crate) fn open(
        &self,
        caller: &str,
        others: &[String],
        prevent_creation: bool,
    ) -> Result<(String, bool), Failure> {
        let now = self.now_micros();
        self.write()
            .open_conversation(caller, others, prevent_creation, now)
    }

    /// A new person joins the workspace (`team_join` to subscribers); returns their id.
    pub fn add_member(&self, email: &str, real_name: &str) -> Result<String, String> {
        let email = email.trim().to_lowercase();
        if !email.contains('@') {
            return Err(format!("{email} is not an e-mail address"));
        }
        let now = self.now_micros();
        let (id, outgoing) = {
            let mut state = self.write();
            if state.user_by_email(&email).is_some() {
                return Err(format!("{email} is already a member"));
            }
            let id = state.next_user_id();
            let (first, last) = real_name.split_once(' ').unwrap_or((real_name, ""));
            state.put_user(User {
                id: id.clone(),
                name: email.split('@').next().unwrap_or(&email).to_owned(),
                real_name: real_name.to_owned(),
                display_name: real_name.to_owned(),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                email: Some(email.clone()),
                deleted: false,
                is_admin: false,
                is_owner: false,
                is_primary_owner: false,
                is_restricted: false,
                bot: None,
                updated: now / 1_000_000,
            });
            let outgoing = events::user_event(&mut state, "team_join", &id);
            (id, outgoing)
        };
        self.dispatch(outgoing);
        Ok(id)
    }

    /// An admin deactivates a member: Slack keeps the user, listed with `deleted: true`,
    /// revokes every token they hold and tells subscribers with `user_change`.
    pub fn deactivate_member(&self, user_id: &str) -> Result<(), String> {
        let now = self.now_micros();
        let outgoing = {
            let mut state = self.write();
            let Some(mut user) = state.user(user_id).cloned() else {
                return Err(format!("no user {user_id}"));
            };
            if user.bot.is_some() {
                return Err(format!(
                    "{user_id} is an app's bot user: uninstall or delete the app instead"
                ));
            }
            if user.is_primary_owner {
                return Err(format!(
                    "{user_id} is the workspace's primary owner, whom Slack never deactivates"
                ));
            }
            user.deleted = true;
            user.updated = now / 1_000_000;
            state.put_user(user);
            for token in state.tokens.values_mut() {
                if token.user_id == user_id {
                    token.revoked = true;
                }
            }
            events::user_event(&mut state, "user_change", user_id)
        };
        self.dispatch(outgoing);
        Ok(())
    }

    /// An admin removes an app from the workspace (as on the app's settings page, or
    /// `apps.uninstall`): every token of its installation is revoked. `app` is the app's id or
    /// its exact name. Answers the app's id.
    pub fn uninstall_app(&self, app: &str) -> Result<String, String> {
        let mut state = self.write();
        let matching: Vec<String> = state
            .apps
            .values()
            .filter(|a| {
                !a.deleted
                    && (a.id == app
                        || a.manifest
                            .pointer("/display_information/name")
                            .and_then(Value::as_str)
                            == Some(app))
            })
            .map(|a| a.id.clone())
            .collect();
        let app_id = match matching.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("no app {app}")),
            _ => return Err(format!("several apps are named {app}: name one by its id")),
        };
        if state
            .apps
            .get(&app_id)
            .is_some_and(|a| a.installation.is_none())
        {
            return Err(format!("{app} is not installed"));
        }
        state.uninstall(&app_id);
        Ok(app_id)
    }

    /// A person changes their display name (`user_change` to subscribers).
    pub fn change_display_name(&self, user_id: &str, display_name: &str) -> Result<(), String> {
        let now = self.now_micros();
        let outgoing = {
            let mut state = self.write();
            let Some(mut user) = state.user(user_id).cloned() else {
                return Err(format!("no user {user_id}"));
            };
            user.display_name = display_name.trim().to_owned();
            user.updated = now / 1_000_000;
            state.put_user(user);
            events::user_event(&mut state, "user_change", user_id)
        };
        self.dispatch(outgoing);
        Ok(())
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn user_kind(user: &User) -> &'static str {
    if user.deleted {
        "deactivated"
    } else if user.bot.is_some() {
        "bot"
    } else if user.is_primary_owner {
        "primary_owner"
    } else if user.is_owner {
        "owner"
    } else if user.is_admin {
        "admin"
    } else if user.is_restricted {
        "guest"
    } else {
        "member"
    }
}

/// The simulated Slack's key in the simulator and its organisation.
pub(crate) const KEY: &str = "slack";

impl SimPlatform for SlackSim {
    fn key(&self) -> &'static str {
        KEY
    }

    /// Its first two people are admins, the first of them the workspace's primary owner.
    fn org_platform(&self) -> OrgPlatform {
        OrgPlatform {
            admins: 2,
            ..OrgPlatform::new(KEY)
        }
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/slack/api/{method}", any(api::handle))
            .route("/slack/upload/{file_id}", post(api::receive_upload))
            .route(
                "/slack/oauth/v2/authorize",
                get(oauth::consent_page).post(oauth::consent_decision),
            )
            .merge(web::routes())
            .with_state(self)
    }

    fn seed(&self, organisation: &Organisation) {
        let seeded = State::seeded(organisation, self.now_micros());
        *self.write() = seeded;
    }

    fn users(&self) -> Vec<SimUser> {
        self.read()
            .users
            .iter()
            .map(|user| SimUser {
                id: user.id.clone(),
                email: user.email.clone(),
                display_name: user.real_name.clone(),
                kind: user_kind(user).to_owned(),
            })
            .collect()
    }

    fn mint_token(&self, email: &str) -> Result<String, String> {
        let mut state = self.write();
        let user = state
            .user_by_email(email)
            .ok_or_else(|| format!("no Slack user has the e-mail address {email}"))?;
        if user.deleted {
            return Err(format!("the Slack user {email} is deactivated"));
        }
        let user_id = user.id.clone();
        let live = state
            .client_tokens
            .get(&user_id)
            .filter(|t| state.tokens.get(*t).is_some_and(|t| !t.revoked))
            .cloned();
        if let Some(token) = live {
            return Ok(token);
        }
        let scopes = state::CLIENT_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let token = state.issue_token(state::TokenKind::User, &user_id, None, scopes, None);
        state.client_tokens.insert(user_id, token.clone());
        Ok(token)
    }

    fn throttled(&self, retry_after: Duration) -> Response {
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "ratelimited"}).to_string(),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_seconds(retry_after).max(1)),
        );
        response
    }

    fn failure(&self, status: StatusCode) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            status.canonical_reason().unwrap_or("Error").to_owned(),
        )
            .into_response()
    }

    fn save(&self) -> Value {
        let state = self.read();
        json!({
            "version": SAVE_VERSION,
            "state": serde_json::to_value(&*state).unwrap_or(Value::Null),
        })
    }

    fn restore(&self, saved: Value) -> Result<(), String> {
        let version = saved.get("version").and_then(Value::as_u64);
        if version != Some(SAVE_VERSION) {
            return Err(format!(
                "the saved Slack state is version {version:?}, this simulator reads version {SAVE_VERSION}"
            ));
        }
        let mut restored: State = serde_json::from_value(saved["state"].clone())
            .map_err(|e| format!("the saved Slack state cannot be read: {e}"))?;
        restored.reindex();
        *self.write() = restored;
        Ok(())
    }

    fn control_actions(&self) -> &'static [&'static str] {
        &["members", "display-name", "deactivate", "uninstall"]
    }

    fn control(&self, action: &str, arguments: Value) -> Result<Value, ControlError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewMember {
            email: String,
            real_name: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct DisplayName {
            user: String,
            display_name: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Deactivate {
            user: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Uninstall {
            app: String,
        }
        let invalid = |e: serde_json::Error| ControlError::Invalid(e.to_string());
        match action {
            "deactivate" => {
                let request: Deactivate = serde_json::from_value(arguments).map_err(invalid)?;
                self.deactivate_member(&request.user)
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "user": request.user, "deleted": true }))
            }
            "uninstall" => {
                let request: Uninstall = serde_json::from_value(arguments).map_err(invalid)?;
                let app_id = self
                    .uninstall_app(&request.app)
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "app_id": app_id }))
            }
            "members" => {
                let member: NewMember = serde_json::from_value(arguments).map_err(invalid)?;
                let id = self
                    .add_member(&member.email, &member.real_name)
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "id": id }))
            }
            "display-name" => {
                let change: DisplayName = serde_json::from_value(arguments).map_err(invalid)?;
                self.change_display_name(&change.user, &change.display_name)
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "user": change.user }))
            }
            other => Err(ControlError::UnknownAction(other.to_owned())),
        }
    }
}
