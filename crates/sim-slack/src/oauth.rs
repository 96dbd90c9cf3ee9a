//! OAuth v2: the consent page at `/slack/oauth/v2/authorize`, where a simulated person signs in,
//! reads what the app asks for and allows or cancels, and `oauth.v2.access`, which exchanges the
//! single-use code for the bot token and the person's user token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::SlackSim;
use crate::api::Params;
use crate::encoding::{parse_urlencoded, percent_encode};
use crate::state::{Failure, Grant, random_hex};
use crate::web::{SESSION_COOKIE, page, session_user};
use switchboard_sim_kit::html::escape;

/// Codes are good for ten minutes, as Slack's are.
const CODE_LIFETIME_SECS: u64 = 10 * 60;

/// The authorize request, as the app sent it.
struct Request {
    client_id: String,
    scope: Vec<String>,
    user_scope: Vec<String>,
    redirect_uri: Option<String>,
    state: String,
}

fn scopes(text: Option<&String>) -> Vec<String> {
    text.map(|t| {
        t.split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl Request {
    fn read(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .filter(|v| !v.is_empty())
        };
        Self {
            client_id: get("client_id").cloned().unwrap_or_default(),
            scope: scopes(get("scope")),
            user_scope: scopes(get("user_scope")),
            redirect_uri: get("redirect_uri").cloned(),
            state: get("state").cloned().unwrap_or_default(),
        }
    }

    fn hidden_fields(&self) -> String {
        let field = switchboard_sim_kit::html::hidden_field;
        [
            field("client_id", &self.client_id),
            field("scope", &self.scope.join(",")),
            field("user_scope", &self.user_scope.join(",")),
            field("redirect_uri", self.redirect_uri.as_deref().unwrap_or("")),
            field("state", &self.state),
        ]
        .concat()
    }
}

/// Why an authorize request cannot be shown: Slack's error code and an explanation.
type Refusal = (&'static str, &'static str);

/// What the consent page needs to know about the app, once the request is found valid.
struct Checked {
    app_id: String,
    app_name: String,
    redirect_uri: String,
}

fn error_page(code: &str, explanation: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(
            "Slack: something went wrong",
            &format!(
                "<h1>Something went wrong</h1><p><code>{}</code></p><p>{}</p>",
                escape(code),
                escape(explanation)
            ),
        ),
    )
        .into_response()
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    let query: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{n}={}", percent_encode(v)))
        .collect();
    format!("{uri}{separator}{}", query.join("&"))
}

/// Slack sends the browser back with a 302.
fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => error_page(
            "bad_redirect_uri",
            "The redirect_uri cannot be used in a redirect.",
        ),
    }
}

impl SlackSim {
    fn check_authorize(&self, request: &Request) -> Result<Checked, Refusal> {
        let state = self.read();
        let app = state
            .index
            .app_by_client_id
            .get(&request.client_id)
            .and_then(|id| state.apps.get(id))
            .filter(|app| !app.deleted)
            .ok_or((
                "invalid_client_id",
                "No app has this client_id; check the link you followed.",
            ))?;
        let redirect_uri = match &request.redirect_uri {
            Some(uri)
                if app
                    .facts
                    .redirect_urls
                    .iter()
                    .any(|configured| uri.starts_with(configured.as_str())) =>
            {
                uri.clone()
            }
            Some(_) => {
                return Err((
                    "bad_redirect_uri",
                    "The redirect_uri does not match any Redirect URL in the app's configuration.",
                ));
            }
            None => app.facts.redirect_urls.first().cloned().ok_or((
                "bad_redirect_uri",
                "The app has no Redirect URL configured and the request names none.",
            ))?,
        };
        if request.scope.is_empty() && request.user_scope.is_empty() {
            return Err((
                "invalid_scope",
                "The request asks for no permissions (scope or user_scope).",
            ));
        }
        Ok(Checked {
            app_id: app.id.clone(),
            app_name: app.facts.name.clone(),
            redirect_uri,
        })
    }

    fn consent_form(
        &self,
        request: &Request,
        checked: &Checked,
        email: &str,
        problem: Option<&str>,
    ) -> Response {
        let team = self.read().team.name.clone();
        let list = |items: &[String]| {
            items
                .iter()
                .map(|s| format!("<li><code>{}</code></li>", escape(s)))
                .collect::<String>()
        };
        let mut body = format!(
            "<h1>{app} is requesting permission to access the {team} Slack workspace</h1>",
            app = escape(&checked.app_name),
            team = escape(&team),
        );
        if let Some(problem) = problem {
            body.push_str(&format!(
                "<p class=\"problem\" role=\"alert\">{}</p>",
                escape(problem)
            ));
        }
        if !request.scope.is_empty() {
            body.push_str(&format!(
                "<h2>What will {} be able to do?</h2><ul>{}</ul>",
                escape(&checked.app_name),
                list(&request.scope)
            ));
        }
        if !request.user_scope.is_empty() {
            body.push_str(&format!(
                "<h2>On your behalf</h2><ul>{}</ul>",
                list(&request.user_scope)
            ));
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"/slack/oauth/v2/authorize\">{hidden}\
             <p><label>Signed in as (e-mail) <input type=\"email\" name=\"email\" value=\"{email}\" required></label></p>\
             <p><button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
             <button type=\"submit\" name=\"decision\" value=\"cancel\" formnovalidate>Cancel</button></p></form>",
            hidden = request.hidden_fields(),
            email = escape(email),
        ));
        page("Slack: authorize an app", &body).into_response()
    }

    fn decide(&self, request: &Request, email: &str, allow: bool) -> Response {
        let checked = match self.check_authorize(request) {
            Ok(checked) => checked,
            Err((code, explanation)) => return error_page(code, explanation),
        };
        if !allow {
            return found(&with_query(
                &checked.redirect_uri,
                &[("error", "access_denied"), ("state", &request.state)],
            ));
        }
        let now = self.now_micros() / 1_000_000;
        let mut state = self.write();
        let user = match state.user_by_email(email) {
            Some(user) if user.deleted => Err("This account has been deactivated."),
            Some(user) if !user.is_human() => Err("Apps cannot sign in."),
            Some(user) => Ok(user.clone()),
            None => Err("No one in this workspace has that e-mail address."),
        };
        let user = match user {
            Ok(user) => user,
            Err(problem) => {
                drop(state);
                return self.consent_form(request, &checked, email, Some(problem));
            }
        };
        if !request.scope.is_empty() && !user.is_admin {
            drop(state);
            return self.consent_form(
                request,
                &checked,
                email,
                Some("Installing an app in this workspace needs a workspace admin's approval. Sign in as an admin."),
            );
        }
        let code = format!("1.{}.{}", now, random_hex(40));
        state
            .grants
            .retain(|_, g| g.issued_at + CODE_LIFETIME_SECS > now);
        state.grants.insert(
            code.clone(),
            Grant {
                app_id: checked.app_id.clone(),
                user_id: user.id.clone(),
                bot_scopes: request.scope.clone(),
                user_scopes: request.user_scope.clone(),
                redirect_uri: request.redirect_uri.clone(),
                issued_at: now,
            },
        );
        let mut response = found(&with_query(
            &checked.redirect_uri,
            &[("code", &code), ("state", &request.state)],
        ));
        if let Ok(cookie) = format!("{SESSION_COOKIE}={}; Path=/slack; HttpOnly", user.id).parse() {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        response
    }

    /// `oauth.v2.access`: client credentials by HTTP Basic or as arguments, then the code.
    pub(crate) fn oauth_access(
        &self,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<Value, Failure> {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|pair| {
                pair.split_once(':')
                    .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
            });
        let (client_id, client_secret) = match basic {
            Some(pair) => pair,
            None => (
                params.get("client_id").unwrap_or_default().to_owned(),
                params.get("client_secret").unwrap_or_default().to_owned(),
            ),
        };
        if params
            .get("grant_type")
            .is_some_and(|g| g != "authorization_code")
        {
            return Err("invalid_grant_type".into());
        }
        let now = self.now_micros() / 1_000_000;
        let mut state = self.write();
        let app = state
            .index
            .app_by_client_id
            .get(&client_id)
            .and_then(|id| state.apps.get(id))
            .filter(|app| !app.deleted)
            .ok_or(Failure::Error("invalid_client_id"))?;
        if app.credentials.client_secret != client_secret {
            return Err("bad_client_secret".into());
        }
        let app_id = app.id.clone();
        let code = params.get("code").ok_or(Failure::Error("invalid_code"))?;
        let grant = state
            .grants
            .get(code)
            .filter(|g| g.app_id == app_id && g.issued_at + CODE_LIFETIME_SECS > now)
            .cloned()
            .ok_or(Failure::Error("invalid_code"))?;
        if grant.redirect_uri.as_deref() != params.get("redirect_uri")
            && (grant.redirect_uri.is_some() || params.get("redirect_uri").is_some())
        {
            return Err("bad_redirect_uri".into());
        }
        state.grants.remove(code);
        let (bot_token, user_token) = state.install(
            &app_id,
            &grant.user_id,
            &grant.bot_scopes,
            &grant.user_scopes,
        );
        let scopes_of = |token: &Option<String>| {
            token
                .as_ref()
                .and_then(|t| state.tokens.get(t))
                .map(|t| t.scopes.join(","))
                .unwrap_or_default()
        };
        let mut authed_user = json!({"id": grant.user_id});
        if let Some(token) = &user_token {
            authed_user["scope"] = json!(scopes_of(&user_token));
            authed_user["access_token"] = json!(token);
            authed_user["token_type"] = json!("user");
        }
        let mut answer = json!({
            "ok": true,
            "app_id": app_id,
            "authed_user": authed_user,
            "team": {"id": state.team.id, "name": state.team.name},
            "enterprise": null,
            "is_enterprise_install": false,
        });
        if let Some(token) = &bot_token {
            answer["scope"] = json!(scopes_of(&bot_token));
            answer["token_type"] = json!("bot");
            answer["access_token"] = json!(token);
            answer["bot_user_id"] =
                json!(state.apps.get(&app_id).and_then(|a| a.bot_user_id.clone()));
        }
        Ok(answer)
    }
}

pub async fn consent_page(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(pairs) = parse_urlencoded(query.as_deref().unwrap_or_default()) else {
        return error_page("invalid_request", "The link's query string cannot be read.");
    };
    let request = Request::read(&pairs);
    let checked = match sim.check_authorize(&request) {
        Ok(checked) => checked,
        Err((code, explanation)) => return error_page(code, explanation),
    };
    let email = session_user(&sim, &headers)
        .and_then(|id| sim.read().user(&id).and_then(|u| u.email.clone()))
        .unwrap_or_default();
    sim.consent_form(&request, &checked, &email, None)
}

pub async fn consent_decision(State(sim): State<Arc<SlackSim>>, body: Bytes) -> Response {
    let Some(pairs) = std::str::from_utf8(&body).ok().and_then(parse_urlencoded) else {
        return error_page("invalid_request", "The form could not be read.");
    };
    let request = Request::read(&pairs);
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    sim.decide(&request, field("email"), field("decision") == "allow")
}
