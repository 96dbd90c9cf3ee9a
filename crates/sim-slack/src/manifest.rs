//! The App Manifest API: apps created, updated, exported and deleted from a manifest with an
//! app configuration token, the Request URL verified with a `url_verification` challenge before
//! a manifest that sets one is accepted, and configuration tokens rotated.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::SlackSim;
use crate::encoding::percent_encode;
use crate::events;
use crate::state::{Actor, CONFIG_TOKEN_LIFETIME_SECS, Failure, ManifestProblem, State, TokenKind};

/// What the simulator acts on in a manifest; the manifest itself is kept as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestFacts {
    pub name: String,
    pub bot_display_name: Option<String>,
    pub bot_scopes: Vec<String>,
    pub user_scopes: Vec<String>,
    pub redirect_urls: Vec<String>,
    pub request_url: Option<String>,
    pub bot_events: Vec<String>,
}

const KNOWN_SCOPES: &[&str] = &[
    "app_mentions:read",
    "channels:history",
    "channels:join",
    "channels:manage",
    "channels:read",
    "chat:write",
    "chat:write.customize",
    "chat:write.public",
    "commands",
    "emoji:read",
    "files:read",
    "files:write",
    "groups:history",
    "groups:read",
    "groups:write",
    "im:history",
    "im:read",
    "im:write",
    "links:read",
    "links:write",
    "mpim:history",
    "mpim:read",
    "mpim:write",
    "pins:read",
    "pins:write",
    "reactions:read",
    "reactions:write",
    "team:read",
    "usergroups:read",
    "usergroups:write",
    "users.profile:read",
    "users.profile:write",
    "users:read",
    "users:read.email",
    "users:write",
];

/// Bot events the simulator knows, with the scope Slack requires for each subscription.
const KNOWN_EVENTS: &[(&str, Option<&str>)] = &[
    ("message.im", Some("im:history")),
    ("message.mpim", Some("mpim:history")),
    ("message.channels", Some("channels:history")),
    ("message.groups", Some("groups:history")),
    ("reaction_added", Some("reactions:read")),
    ("reaction_removed", Some("reactions:read")),
    ("team_join", Some("users:read")),
    ("user_change", Some("users:read")),
    ("app_mention", Some("app_mentions:read")),
    ("member_joined_channel", Some("channels:read")),
    ("im_created", Some("im:read")),
    ("app_uninstalled", None),
    ("tokens_revoked", None),
];

fn problem(message: impl Into<String>, pointer: impl Into<String>) -> ManifestProblem {
    ManifestProblem {
        message: message.into(),
        pointer: pointer.into(),
    }
}

fn strings(
    value: Option<&Value>,
    pointer: &str,
    problems: &mut Vec<ManifestProblem>,
) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.as_str() {
                Some(text) => Some(text.to_owned()),
                None => {
                    problems.push(problem("Must be a string", format!("{pointer}/{i}")));
                    None
                }
            })
            .collect(),
        Some(_) => {
            problems.push(problem("Must be an array of strings", pointer));
            Vec::new()
        }
    }
}

fn is_web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

impl ManifestFacts {
    /// Reads and checks a manifest the way Slack's schema does, for the parts the simulator
    /// understands; anything else in the manifest is kept and ignored.
    pub fn read(manifest: &Value) -> Result<Self, Vec<ManifestProblem>> {
        let mut problems = Vec::new();
        if !manifest.is_object() {
            return Err(vec![problem("Manifest must be a JSON object", "/")]);
        }
        let name = match manifest.pointer("/display_information/name") {
            Some(Value::String(name)) if (1..=35).contains(&name.chars().count()) => name.clone(),
            Some(Value::String(_)) => {
                problems.push(problem(
                    "Must be between 1 and 35 characters",
                    "/display_information/name",
                ));
                String::new()
            }
            _ => {
                problems.push(problem("Field is required", "/display_information/name"));
                String::new()
            }
        };
        let bot_display_name = match manifest.pointer("/features/bot_user") {
            None | Some(Value::Null) => None,
            Some(bot) => match bot.get("display_name") {
                Some(Value::String(display)) if (1..=80).contains(&display.chars().count()) => {
                    Some(display.clone())
                }
                _ => {
                    problems.push(problem(
                        "Field is required and must be between 1 and 80 characters",
                        "/features/bot_user/display_name",
                    ));
                    None
                }
            },
        };
        let bot_scopes = strings(
            manifest.pointer("/oauth_config/scopes/bot"),
            "/oauth_config/scopes/bot",
            &mut problems,
        );
        let user_scopes = strings(
            manifest.pointer("/oauth_config/scopes/user"),
            "/oauth_config/scopes/user",
            &mut problems,
        );
        for (kind, scopes) in [("bot", &bot_scopes), ("user", &user_scopes)] {
            for (i, scope) in scopes.iter().enumerate() {
                if !KNOWN_SCOPES.contains(&scope.as_str()) {
                    problems.push(problem(
                        format!("Invalid scope: {scope}"),
                        format!("/oauth_config/scopes/{kind}/{i}"),
                    ));
                }
            }
        }
        if !bot_scopes.is_empty() && bot_display_name.is_none() {
            problems.push(problem(
                "Bot scopes need a bot user: add features.bot_user",
                "/oauth_config/scopes/bot",
            ));
        }
        let redirect_urls = strings(
            manifest.pointer("/oauth_config/redirect_urls"),
            "/oauth_config/redirect_urls",
            &mut problems,
        );
        for (i, url) in redirect_urls.iter().enumerate() {
            if !is_web_url(url) {
                problems.push(problem(
                    "Must be a valid URL",
                    format!("/oauth_config/redirect_urls/{i}"),
                ));
            }
        }
        let mut request_url = None;
        let mut bot_events = Vec::new();
        if let Some(subscriptions) = manifest
            .pointer("/settings/event_subscriptions")
            .filter(|v| !v.is_null())
        {
            let socket_mode = manifest
                .pointer("/settings/socket_mode_enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match subscriptions.get("request_url") {
                Some(Value::String(url)) if is_web_url(url) => request_url = Some(url.clone()),
                Some(Value::String(_)) => problems.push(problem(
                    "Must be a valid URL",
                    "/settings/event_subscriptions/request_url",
                )),
                _ if socket_mode => {}
                _ => problems.push(problem(
                    "Event Subscription requires either Request URL or Socket Mode Enabled",
                    "/settings/event_subscriptions",
                )),
            }
            bot_events = strings(
                subscriptions.get("bot_events"),
                "/settings/event_subscriptions/bot_events",
                &mut problems,
            );
            for (i, event) in bot_events.iter().enumerate() {
                let pointer = format!("/settings/event_subscriptions/bot_events/{i}");
                match KNOWN_EVENTS.iter().find(|(name, _)| name == event) {
                    None => problems.push(problem(format!("Invalid event: {event}"), pointer)),
                    Some((_, Some(scope))) if !bot_scopes.iter().any(|s| s == scope) => problems
                        .push(problem(
                            format!("The `{event}` event requires the `{scope}` scope"),
                            pointer,
                        )),
                    Some(_) => {}
                }
            }
        }
        if problems.is_empty() {
            Ok(Self {
                name,
                bot_display_name,
                bot_scopes,
                user_scopes,
                redirect_urls,
                request_url,
                bot_events,
            })
        } else {
            Err(problems)
        }
    }

    pub fn authorize_url(&self, base_url: &str, client_id: &str) -> String {
        format!(
            "{base_url}/slack/oauth/v2/authorize?client_id={}&scope={}&user_scope={}",
            percent_encode(client_id),
            percent_encode(&self.bot_scopes.join(",")),
            percent_encode(&self.user_scopes.join(",")),
        )
    }
}

fn parse_manifest(text: Option<&str>) -> Result<(Value, ManifestFacts), Failure> {
    let text = text.ok_or(Failure::Error("invalid_arguments"))?;
    let manifest: Value = serde_json::from_str(text).map_err(|error| {
        Failure::InvalidManifest(vec![problem(
            format!("Manifest is not valid JSON: {error}"),
            "/",
        )])
    })?;
    let facts = ManifestFacts::read(&manifest).map_err(Failure::InvalidManifest)?;
    Ok((manifest, facts))
}

fn owned_app<'s>(
    state: &'s State,
    actor: &Actor,
    app_id: Option<&str>,
) -> Result<&'s crate::state::App, Failure> {
    state
        .apps
        .get(app_id.ok_or(Failure::Error("invalid_arguments"))?)
        .filter(|app| !app.deleted && app.creator == actor.user_id)
        .ok_or(Failure::Error("invalid_app_id"))
}

fn unverified(reason: &str) -> Failure {
    Failure::InvalidManifest(vec![problem(
        format!("Couldn't verify the Request URL: {reason}"),
        "/settings/event_subscriptions/request_url",
    )])
}

impl SlackSim {
    pub(crate) async fn manifest_create(
        &self,
        actor: &Actor,
        manifest: Option<&str>,
    ) -> Result<Value, Failure> {
        let (manifest, facts) = parse_manifest(manifest)?;
        let verification_token = crate::state::random_token(24);
        let signing_secret = crate::state::random_hex(32);
        if let Some(url) = &facts.request_url {
            events::verify_request_url(&self.context, url, &verification_token, &signing_secret)
                .await
                .map_err(|reason| unverified(&reason))?;
        }
        let now = self.now_micros();
        let mut state = self.write();
        let app_id = state.create_app(&actor.user_id, manifest, facts, now);
        let Some(app) = state.apps.get_mut(&app_id) else {
            return Err("internal_error".into());
        };
        app.credentials.verification_token = verification_token;
        app.credentials.signing_secret = signing_secret;
        Ok(json!({
            "ok": true,
            "app_id": app.id,
            "credentials": {
                "client_id": app.credentials.client_id,
                "client_secret": app.credentials.client_secret,
                "verification_token": app.credentials.verification_token,
                "signing_secret": app.credentials.signing_secret,
            },
            "oauth_authorize_url": app.facts.authorize_url(&self.context.base_url, &app.credentials.client_id),
            "team_id": state.team.id,
            "team_domain": state.team.domain,
        }))
    }

    pub(crate) async fn manifest_update(
        &self,
        actor: &Actor,
        app_id: Option<&str>,
        manifest: Option<&str>,
    ) -> Result<Value, Failure> {
        let (current_url, verification_token, signing_secret) = {
            let state = self.read();
            let app = owned_app(&state, actor, app_id)?;
            (
                app.facts.request_url.clone(),
                app.credentials.verification_token.clone(),
                app.credentials.signing_secret.clone(),
            )
        };
        let (manifest, facts) = parse_manifest(manifest)?;
        if let Some(url) = facts
            .request_url
            .as_ref()
            .filter(|u| Some(*u) != current_url.as_ref())
        {
            events::verify_request_url(&self.context, url, &verification_token, &signing_secret)
                .await
                .map_err(|reason| unverified(&reason))?;
        }
        let now = self.now_micros();
        let mut state = self.write();
        let app = owned_app(&state, actor, app_id)?;
        let app_id = app.id.clone();
        let permissions_updated =
            app.facts.bot_scopes != facts.bot_scopes || app.facts.user_scopes != facts.user_scopes;
        let bot_user = app.bot_user_id.clone();
        if let (Some(bot_user), Some(display)) = (&bot_user, &facts.bot_display_name)
            && let Some(mut user) = state.user(bot_user).cloned()
        {
            user.real_name.clone_from(display);
            user.display_name.clone_from(display);
            user.updated = now / 1_000_000;
            state.put_user(user);
        }
        if bot_user.is_none()
            && let Some(display) = facts.bot_display_name.clone()
        {
            let new_bot = state.create_bot_user(&app_id, display, now);
            if let Some(app) = state.apps.get_mut(&app_id) {
                app.bot_user_id = Some(new_bot);
            }
        }
        if let Some(app) = state.apps.get_mut(&app_id) {
            app.manifest = manifest;
            app.facts = facts;
        }
        Ok(json!({"ok": true, "app_id": app_id, "permissions_updated": permissions_updated}))
    }

    pub(crate) fn manifest_delete(
        &self,
        actor: &Actor,
        app_id: Option<&str>,
    ) -> Result<Value, Failure> {
        let now = self.now_micros();
        let mut state = self.write();
        let app_id = owned_app(&state, actor, app_id)?.id.clone();
        state.uninstall(&app_id);
        let bot_user = state.apps.get(&app_id).and_then(|a| a.bot_user_id.clone());
        if let Some(mut user) = bot_user.and_then(|id| state.user(&id).cloned()) {
            user.deleted = true;
            user.updated = now / 1_000_000;
            state.put_user(user);
        }
        if let Some(app) = state.apps.get_mut(&app_id) {
            app.deleted = true;
        }
        Ok(json!({"ok": true}))
    }

    pub(crate) fn manifest_export(
        &self,
        actor: &Actor,
        app_id: Option<&str>,
    ) -> Result<Value, Failure> {
        let state = self.read();
        let app = owned_app(&state, actor, app_id)?;
        Ok(json!({"ok": true, "manifest": app.manifest}))
    }

    pub(crate) fn manifest_validate(
        &self,
        actor: &Actor,
        app_id: Option<&str>,
        manifest: Option<&str>,
    ) -> Result<Value, Failure> {
        if app_id.is_some() {
            owned_app(&self.read(), actor, app_id)?;
        }
        parse_manifest(manifest)?;
        Ok(json!({"ok": true}))
    }

    /// A fresh configuration token and its refresh token for `user_id`, as the app settings
    /// page hands them out.
    pub(crate) fn issue_config_tokens(&self, user_id: &str) -> Value {
        let issued_at = self.now_micros() / 1_000_000;
        let expires_at = issued_at + CONFIG_TOKEN_LIFETIME_SECS;
        let mut state = self.write();
        let token = state.issue_token(
            TokenKind::Config,
            user_id,
            None,
            Vec::new(),
            Some(expires_at),
        );
        let refresh_token = state.issue_token(TokenKind::Refresh, user_id, None, Vec::new(), None);
        json!({
            "ok": true,
            "token": token,
            "refresh_token": refresh_token,
            "team_id": state.team.id,
            "user_id": user_id,
            "iat": issued_at,
            "exp": expires_at,
        })
    }

    /// `tooling.tokens.rotate`: a refresh token is good for one rotation.
    pub(crate) fn rotate_config_token(
        &self,
        refresh_token: Option<&str>,
    ) -> Result<Value, Failure> {
        let user_id = {
            let mut state = self.write();
            let token = refresh_token
                .and_then(|t| state.tokens.get_mut(t))
                .filter(|t| t.kind == TokenKind::Refresh && !t.revoked)
                .ok_or(Failure::Error("invalid_refresh_token"))?;
            token.revoked = true;
            token.user_id.clone()
        };
        Ok(self.issue_config_tokens(&user_id))
    }
}
