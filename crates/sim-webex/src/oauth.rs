//! OAuth for integrations at `/webex/v1/authorize` (the consent page, where the simulated
//! person says who they are) and `/webex/v1/access_token` (authorization codes and refresh
//! tokens), and the Service App's token once an admin has authorised it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;
use switchboard_sim_kit::html::{Pick, escape, hidden_field, people_picker};

use crate::WebexSim;
use crate::state::{
    CodeGrant, Grant, INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, INTEGRATION_SCOPES,
    PersonKind, SERVICE_APP_CLIENT_ID, SERVICE_APP_CLIENT_SECRET, SERVICE_APP_SCOPES, State,
};
use crate::wire::{WebexError, form_decode, now_millis, param, random_text};

/// Access tokens last 14 days and refresh tokens 90, as Webex's samples show.
pub const ACCESS_TOKEN_SECONDS: u64 = 1_209_600;
pub const REFRESH_TOKEN_SECONDS: u64 = 7_776_000;
/// An authorization code is good for ten minutes.
const CODE_MILLIS: u64 = 600_000;

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route(
            "/webex/v1/authorize",
            get(consent_page).post(consent_decision),
        )
        .route("/webex/v1/access_token", post(access_token))
}

/// A token pair as the token endpoint hands it out.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub refresh_expires_at: u64,
}

/// Issues an access token and a refresh token for `person` with `scopes` through `client_id`.
pub fn issue(state: &mut State, person: &str, scopes: Vec<String>, client_id: &str) -> Issued {
    let now = now_millis();
    let org = crate::wire::id_uuid(&state.org_id).unwrap_or_default();
    let grant = Grant {
        person: person.to_owned(),
        scopes,
        client_id: client_id.to_owned(),
        expires_at: now + ACCESS_TOKEN_SECONDS * 1000,
    };
    // Webex's tokens end with the cluster and the organisation's UUID.
    let access_token = format!("{}_PF84_{org}", random_text(64));
    let refresh_token = format!("{}_PF84_{org}", random_text(64));
    let refresh_expires_at = now + REFRESH_TOKEN_SECONDS * 1000;
    state.refresh_tokens.insert(
        refresh_token.clone(),
        Grant {
            expires_at: refresh_expires_at,
            ..grant.clone()
        },
    );
    state.access_tokens.insert(access_token.clone(), grant);
    Issued {
        access_token,
        refresh_token,
        refresh_expires_at,
    }
}

fn token_answer(issued: &Issued, scopes: &[String]) -> Response {
    let refresh_left = issued.refresh_expires_at.saturating_sub(now_millis()) / 1000;
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": issued.access_token,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_token": issued.refresh_token,
            "refresh_token_expires_in": refresh_left,
            "token_type": "Bearer",
            "scope": scopes.join(" "),
        })),
    )
        .into_response()
}

async fn access_token(Shared(sim): Shared<Arc<WebexSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let answer = match param(&params, "grant_type") {
        Some("authorization_code") => code_grant(&sim, &params),
        Some("refresh_token") => refresh_grant(&sim, &params),
        Some("client_credentials") => service_app_grant(&sim, &params),
        Some(other) => Err(WebexError::invalid(format!(
            "Unsupported grant_type {other}."
        ))),
        None => Err(WebexError::invalid("grant_type is required.")),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

fn client_is(params: &[(String, String)], id: &str, secret: &str) -> bool {
    param(params, "client_id") == Some(id) && param(params, "client_secret") == Some(secret)
}

fn invalid_client() -> WebexError {
    WebexError::new(
        StatusCode::UNAUTHORIZED,
        "Invalid client_id or client_secret.",
    )
}

fn code_grant(sim: &WebexSim, params: &[(String, String)]) -> Result<Response, WebexError> {
    if !client_is(params, INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET) {
        return Err(invalid_client());
    }
    let mut state = sim.lock();
    let code = param(params, "code").unwrap_or_default();
    let grant = state
        .codes
        .remove(code)
        .filter(|grant| grant.expires_at > now_millis())
        .ok_or_else(|| WebexError::invalid("Invalid or expired authorization code."))?;
    if param(params, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(WebexError::invalid(
            "redirect_uri does not match the one of the authorization request.",
        ));
    }
    let issued = issue(
        &mut state,
        &grant.person,
        grant.scopes.clone(),
        INTEGRATION_CLIENT_ID,
    );
    Ok(token_answer(&issued, &grant.scopes))
}

/// A new access token for a refresh token; the refresh token stays what it was, with its
/// own expiry running, as Webex does.
fn refresh_grant(sim: &WebexSim, params: &[(String, String)]) -> Result<Response, WebexError> {
    let mut state = sim.lock();
    let refresh_token = param(params, "refresh_token")
        .unwrap_or_default()
        .to_owned();
    let grant = state
        .refresh_tokens
        .get(&refresh_token)
        .filter(|grant| grant.expires_at > now_millis())
        .cloned()
        .ok_or_else(|| WebexError::invalid("Invalid or expired refresh token."))?;
    let secret = match grant.client_id.as_str() {
        INTEGRATION_CLIENT_ID => INTEGRATION_CLIENT_SECRET,
        SERVICE_APP_CLIENT_ID => SERVICE_APP_CLIENT_SECRET,
        _ => return Err(invalid_client()),
    };
    if !client_is(params, &grant.client_id, secret) {
        return Err(invalid_client());
    }
    if !state.person(&grant.person).is_some_and(|p| p.login_enabled) {
        return Err(WebexError::invalid("Invalid or expired refresh token."));
    }
    let access_token = format!(
        "{}_PF84_{}",
        random_text(64),
        crate::wire::id_uuid(&state.org_id).unwrap_or_default()
    );
    state.access_tokens.insert(
        access_token.clone(),
        Grant {
            expires_at: now_millis() + ACCESS_TOKEN_SECONDS * 1000,
            ..grant.clone()
        },
    );
    let issued = Issued {
        access_token,
        refresh_token,
        refresh_expires_at: grant.expires_at,
    };
    Ok(token_answer(&issued, &grant.scopes))
}

/// The Service App's own token, with its client id and secret, once an admin of the
/// organisation authorised it (the simulator's stand-in for copying the token from the
/// developer portal; see docs/simulator-webex.md).
fn service_app_grant(sim: &WebexSim, params: &[(String, String)]) -> Result<Response, WebexError> {
    if !client_is(params, SERVICE_APP_CLIENT_ID, SERVICE_APP_CLIENT_SECRET) {
        return Err(invalid_client());
    }
    let mut state = sim.lock();
    if !state.service_app_authorised {
        return Err(WebexError::forbidden(
            "The Service App is not authorised in this organisation: an admin must authorise it first.",
        ));
    }
    let app = state
        .service_app()
        .map(|p| p.id.clone())
        .ok_or_else(|| WebexError::not_found("The Service App has no machine account."))?;
    let scopes: Vec<String> = SERVICE_APP_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let issued = issue(&mut state, &app, scopes.clone(), SERVICE_APP_CLIENT_ID);
    Ok(token_answer(&issued, &scopes))
}

/// The authorize request's parameters the consent form carries through.
const AUTHORIZE_FIELDS: [&str; 5] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
];

struct Checked {
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
}

fn check_authorize(params: &[(String, String)]) -> Result<Checked, Box<Response>> {
    let refuse = |text: &str| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                crate::web::page(
                    "Webex",
                    &format!(
                        "<h1>Something went wrong</h1><p class=\"error\">{}</p>",
                        escape(text)
                    ),
                ),
            )
                .into_response(),
        )
    };
    if param(params, "client_id") != Some(INTEGRATION_CLIENT_ID) {
        return Err(refuse(
            "The client_id is not that of a registered integration.",
        ));
    }
    if param(params, "response_type") != Some("code") {
        return Err(refuse("response_type must be code."));
    }
    let redirect_uri = param(params, "redirect_uri").unwrap_or_default();
    if redirect_uri.is_empty() {
        return Err(refuse("redirect_uri is required."));
    }
    let scopes: Vec<String> = param(params, "scope")
        .unwrap_or_default()
        .split([' ', '+'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(refuse("scope is required."));
    }
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !INTEGRATION_SCOPES.contains(&s.as_str()))
    {
        return Err(refuse(&format!(
            "The integration may not ask for the scope {unknown}."
        )));
    }
    Ok(Checked {
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: param(params, "state").unwrap_or_default().to_owned(),
    })
}

fn consent_form(
    state: &State,
    checked: &Checked,
    params: &[(String, String)],
    problem: Option<&str>,
) -> Response {
    let hidden: String = AUTHORIZE_FIELDS
        .iter()
        .filter_map(|name| Some(hidden_field(name, param(params, name)?)))
        .collect();
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
    let scopes: String = checked
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let email = param(params, "email").unwrap_or_default();
    let body = format!(
        "<h1>Sign in to Webex</h1>{problem}<form method=\"post\" action=\"/webex/v1/authorize\">{hidden}{picker}\
         <h2>Switchboard would like to</h2><ul>{scopes}</ul>\
         <p><button name=\"decision\" value=\"accept\">Accept</button> \
         <button name=\"decision\" value=\"decline\">Decline</button></p></form>",
        picker = people_picker("email", "Email address", email, &picks),
    );
    crate::web::page("Webex", &body).into_response()
}

fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{separator}{query}")).into_response()
}

async fn consent_page(
    Shared(sim): Shared<Arc<WebexSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    match check_authorize(&params) {
        Ok(checked) => consent_form(&sim.lock(), &checked, &params, None),
        Err(response) => *response,
    }
}

async fn consent_decision(Shared(sim): Shared<Arc<WebexSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let checked = match check_authorize(&params) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if param(&params, "decision") != Some("accept") {
        return redirect_with(
            &checked.redirect_uri,
            &[("error", "access_denied"), ("state", &checked.state)],
        );
    }
    let mut state = sim.lock();
    let email = param(&params, "email")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let Some(person) = state
        .person(&email)
        .filter(|p| p.login_enabled && p.kind != PersonKind::ServiceApp)
    else {
        let problem = format!("No active Webex account {email}.");
        return consent_form(&state, &checked, &params, Some(&problem));
    };
    let code = random_text(64);
    let grant = CodeGrant {
        person: person.id.clone(),
        scopes: checked.scopes.clone(),
        redirect_uri: checked.redirect_uri.clone(),
        expires_at: now_millis() + CODE_MILLIS,
    };
    state.codes.insert(code.clone(), grant);
    redirect_with(
        &checked.redirect_uri,
        &[("code", &code), ("state", &checked.state)],
    )
}
