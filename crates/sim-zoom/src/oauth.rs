//! Zoom OAuth at `/zoom/oauth/`: the consent page of the user-managed app (`authorize`, where
//! the simulated user says who they are and allows the app) and the token endpoint, which
//! takes the client's id and secret by HTTP Basic and grants `authorization_code`,
//! `refresh_token`, `account_credentials` (the server-to-server app, for the whole account) and
//! `client_credentials` (the chatbot).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use switchboard_sim_kit::html::{Pick, escape, hidden_field, people_picker};

use crate::ZoomSim;
use crate::state::{ACCOUNT_ID, AppKind, CodeGrant, Grant, State, USER_CLIENT_ID};
use crate::wire::{form_decode, now_millis, param, random_text};

/// Every access token lives an hour; Zoom's token responses say 3599 seconds.
pub const ACCESS_TOKEN_SECONDS: u64 = 3599;
/// Zoom does not publish one lifetime for refresh tokens (docs/simulator-zoom.md): 90 days here.
pub const REFRESH_TOKEN_SECONDS: u64 = 90 * 86_400;
/// An authorization code is good for ten minutes.
const CODE_MILLIS: u64 = 600_000;

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route(
            "/zoom/oauth/authorize",
            get(consent_page).post(consent_decision),
        )
        .route("/zoom/oauth/token", post(token))
}

fn new_token() -> String {
    // Zoom's tokens are JWTs; clients treat them as opaque, so these only look the part.
    format!(
        "eyJzdiI6IjAwMDAwMiIsImFsZyI6IkhTNTEyIn0.{}",
        random_text(120)
    )
}

/// An access token for `grant`.
fn issue_access(state: &mut State, grant: Grant) -> String {
    let token = new_token();
    state.access_tokens.insert(
        token.clone(),
        Grant {
            expires_at: now_millis() + ACCESS_TOKEN_SECONDS * 1000,
            ..grant
        },
    );
    token
}

/// An access token and a refresh token for `user` through the user-level client `client_id`,
/// with every user scope: `(access, refresh)`.
pub fn issue_user_tokens(state: &mut State, user: &str, client_id: &str) -> (String, String) {
    let grant = Grant {
        user: user.to_owned(),
        scopes: crate::state::user_scopes(),
        client_id: client_id.to_owned(),
        expires_at: 0,
    };
    let refresh = new_token();
    state.refresh_tokens.insert(
        refresh.clone(),
        Grant {
            expires_at: now_millis() + REFRESH_TOKEN_SECONDS * 1000,
            ..grant.clone()
        },
    );
    (issue_access(state, grant), refresh)
}

/// An OAuth error as Zoom's token endpoint answers it: `{"reason", "error"}`.
fn oauth_error(status: StatusCode, error: &str, reason: &str) -> Response {
    (
        status,
        axum::Json(json!({ "reason": reason, "error": error })),
    )
        .into_response()
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Invalid client_id or client_secret",
    )
}

fn token_answer(access: &str, refresh: Option<&str>, scopes: &[String], api_url: &str) -> Response {
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": scopes.join(" "),
        "api_url": api_url,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// The app whose id and secret the request's HTTP Basic credentials carry, if it exists.
fn basic_client(state: &State, headers: &HeaderMap) -> Option<AppKind> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    AppKind::ALL
        .into_iter()
        .find(|kind| kind.client_id() == id && kind.client_secret() == secret)
        .filter(|kind| state.app(*kind).is_some())
}

/// The token endpoint. Zoom's docs put `grant_type` and `account_id` in the query string for
/// server-to-server apps and in the form body otherwise; both are read here.
async fn token(
    Shared(sim): Shared<Arc<ZoomSim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = form_decode(query.unwrap_or_default().as_bytes());
    params.extend(form_decode(&body));
    let api_url = format!("{}/zoom", sim.context.base_url);
    let mut state = sim.lock();
    let Some(app) = basic_client(&state, &headers) else {
        return invalid_client();
    };
    match (param(&params, "grant_type"), app) {
        (Some("authorization_code"), AppKind::UserManaged) => {
            let code = param(&params, "code").unwrap_or_default();
            let Some(grant) = state
                .codes
                .remove(code)
                .filter(|grant| grant.expires_at > now_millis())
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Invalid authorization code {code}"),
                );
            };
            if param(&params, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Redirect URI mismatch.",
                );
            }
            let (access, refresh) = issue_user_tokens(&mut state, &grant.user, USER_CLIENT_ID);
            token_answer(
                &access,
                Some(&refresh),
                &crate::state::user_scopes(),
                &api_url,
            )
        }
        // A refresh token is good once: the answer carries its successor.
        (Some("refresh_token"), AppKind::UserManaged) => {
            let presented = param(&params, "refresh_token").unwrap_or_default();
            let Some(grant) = state.refresh_tokens.remove(presented).filter(|grant| {
                grant.expires_at > now_millis() && grant.client_id == USER_CLIENT_ID
            }) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid Token!");
            };
            if !state
                .user(&grant.user)
                .is_some_and(crate::state::User::active)
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid Token!");
            }
            let (access, refresh) = issue_user_tokens(&mut state, &grant.user, USER_CLIENT_ID);
            token_answer(&access, Some(&refresh), &grant.scopes, &api_url)
        }
        (Some("account_credentials"), AppKind::ServerToServer) => {
            if param(&params, "account_id") != Some(ACCOUNT_ID) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid account_id",
                );
            }
            app_token(&mut state, app, &api_url)
        }
        (Some("client_credentials"), AppKind::Chatbot) => app_token(&mut state, app, &api_url),
        (Some(other), _) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Unsupported grant type {other} for this app"),
        ),
        (None, _) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing grant_type",
        ),
    }
}

/// The token of an app acting on its own (the server-to-server app, the chatbot): its scopes,
/// an hour, no refresh token; "me" is the admin who created it.
fn app_token(state: &mut State, app: AppKind, api_url: &str) -> Response {
    let Some(creator) = state.app(app).map(|a| a.creator.clone()) else {
        return invalid_client();
    };
    let scopes = app.scopes();
    let access = issue_access(
        state,
        Grant {
            user: creator,
            scopes: scopes.clone(),
            client_id: app.client_id().to_owned(),
            expires_at: 0,
        },
    );
    token_answer(&access, None, &scopes, api_url)
}

/// The authorize request's parameters the consent form carries through.
const AUTHORIZE_FIELDS: [&str; 4] = ["client_id", "response_type", "redirect_uri", "state"];

struct Checked {
    redirect_uri: String,
    state: String,
}

fn refuse(text: &str) -> Box<Response> {
    Box::new(
        (
            StatusCode::BAD_REQUEST,
            crate::web::page(
                "Zoom",
                &format!(
                    "<h1>Something went wrong</h1><p class=\"error\">{}</p>",
                    escape(text)
                ),
            ),
        )
            .into_response(),
    )
}

fn check_authorize(state: &State, params: &[(String, String)]) -> Result<Checked, Box<Response>> {
    if param(params, "client_id") != Some(USER_CLIENT_ID)
        || state.app(AppKind::UserManaged).is_none()
    {
        return Err(refuse("Invalid client_id: no app of this account has it."));
    }
    if param(params, "response_type") != Some("code") {
        return Err(refuse("Unsupported response type: it must be code."));
    }
    let redirect_uri = param(params, "redirect_uri").unwrap_or_default();
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return Err(refuse(
            "Invalid redirect: redirect_uri must be an http(s) URL.",
        ));
    }
    Ok(Checked {
        redirect_uri: redirect_uri.to_owned(),
        state: param(params, "state").unwrap_or_default().to_owned(),
    })
}

fn consent_form(state: &State, params: &[(String, String)], problem: Option<&str>) -> Response {
    let hidden: String = AUTHORIZE_FIELDS
        .iter()
        .filter_map(|name| Some(hidden_field(name, param(params, name)?)))
        .collect();
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
    let scopes: String = crate::state::USER_SCOPES
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let email = param(params, "email").unwrap_or_default();
    let body = format!(
        "<h1>Sign in to Zoom</h1>{problem}<form method=\"post\" action=\"/zoom/oauth/authorize\">{hidden}{picker}\
         <h2>Switchboard is requesting access to your Zoom account</h2><ul>{scopes}</ul>\
         <p><button name=\"decision\" value=\"allow\">Allow</button> \
         <button name=\"decision\" value=\"decline\">Decline</button></p></form>",
        picker = people_picker("email", "Email address", email, &picks),
    );
    crate::web::page("Zoom", &body).into_response()
}

fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{separator}{query}")).into_response()
}

async fn consent_page(
    Shared(sim): Shared<Arc<ZoomSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    match check_authorize(&state, &params) {
        Ok(_) => consent_form(&state, &params, None),
        Err(response) => *response,
    }
}

async fn consent_decision(Shared(sim): Shared<Arc<ZoomSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let mut state = sim.lock();
    let checked = match check_authorize(&state, &params) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if param(&params, "decision") != Some("allow") {
        return redirect_with(
            &checked.redirect_uri,
            &[("error", "access_denied"), ("state", &checked.state)],
        );
    }
    let email = param(&params, "email")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let Some(user) = state.active_user(&email).map(|u| u.id.clone()) else {
        let problem = format!("No active Zoom account {email}.");
        return consent_form(&state, &params, Some(&problem));
    };
    let code = random_text(32);
    state.codes.insert(
        code.clone(),
        CodeGrant {
            user,
            redirect_uri: checked.redirect_uri.clone(),
            expires_at: now_millis() + CODE_MILLIS,
        },
    );
    redirect_with(
        &checked.redirect_uri,
        &[("code", &code), ("state", &checked.state)],
    )
}
