//! Google's OAuth 2.0 at `/google/oauth2/…`: the consent page of the authorization-code flow,
//! the token endpoint (codes, refresh tokens, and service-account assertions with or without
//! domain-wide delegation), Google's published signing keys and `tokeninfo`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};
use switchboard_sim_kit::html::{Pick, escape, hidden_field, people_picker};

use crate::keys::random_id;
use crate::state::{
    CodeGrant, Grant, HUB_OAUTH_CLIENT_ID, HUB_OAUTH_CLIENT_SECRET, Principal, SCOPE_PREFIX, State,
};
use crate::wire::{form_decode, form_value, now_micros};
use crate::{GoogleSim, short_scopes};

/// Access tokens last an hour, as Google's do; `expires_in` says 3599.
const TOKEN_LIFETIME_MICROS: u64 = 3_599_000_000;
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's token URL, which assertions may name as their audience too.
const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route(
            "/google/oauth2/auth",
            get(consent_page).post(consent_decision),
        )
        .route("/google/oauth2/token", axum::routing::post(token))
        .route("/google/oauth2/v1/certs", get(certs_pem))
        .route("/google/oauth2/v3/certs", get(certs_jwks))
        .route("/google/oauth2/tokeninfo", get(token_info))
}

/// Issues an access token (and a refresh token when `offline`).
pub fn issue(
    state: &mut State,
    principal: Principal,
    scopes: Vec<String>,
    client_id: &str,
    key_id: Option<String>,
    offline: bool,
) -> (String, Option<String>) {
    let grant = Grant {
        principal,
        scopes,
        expires_at: now_micros() + TOKEN_LIFETIME_MICROS,
        key_id,
        client_id: client_id.to_owned(),
    };
    let access = format!("ya29.a0{}", random_id(80));
    let refresh = offline.then(|| {
        let refresh = format!("1//0{}", random_id(60));
        state.refresh_tokens.insert(refresh.clone(), grant.clone());
        refresh
    });
    state.access_tokens.insert(access.clone(), grant);
    (access, refresh)
}

fn full_scopes(scopes: &[String]) -> String {
    scopes
        .iter()
        .map(|scope| {
            if scope.starts_with("https://") || scope == "openid" || scope == "email" {
                scope.clone()
            } else {
                format!("{SCOPE_PREFIX}{scope}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Authorises `client_id` for domain-wide delegation of these comma-separated scopes (as the
/// admin console's field takes them), replacing what it had; answers the scopes kept.
pub fn delegate(sim: &GoogleSim, client_id: &str, scopes: &str) -> Vec<String> {
    let scopes: Vec<String> = short_scopes(scopes);
    sim.lock()
        .delegations
        .insert(client_id.trim().to_owned(), scopes.clone());
    scopes
}

/// Withdraws a client's domain-wide delegation: Workspace Events subscriptions it authorised
/// are suspended.
pub fn revoke_delegation(sim: &GoogleSim, client_id: &str) -> Result<(), String> {
    let mut state = sim.lock();
    if state.delegations.remove(client_id).is_none() {
        return Err(format!("{client_id} has no domain-wide delegation"));
    }
    crate::events::suspend_where(sim, &mut state, "USER_SCOPE_REVOKED", |sub| {
        sub.delegated_by.as_deref() == Some(client_id)
    });
    Ok(())
}

/// An OAuth error of the token endpoint: `{"error","error_description"}`.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn token_answer(access: String, refresh: Option<String>, scopes: &[String]) -> Response {
    let mut answer = json!({
        "access_token": access,
        "expires_in": 3599,
        "scope": full_scopes(scopes),
        "token_type": "Bearer",
    });
    if let Some(refresh) = refresh {
        answer["refresh_token"] = json!(refresh);
    }
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(answer)).into_response()
}

async fn token(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    match form_value(&params, "grant_type") {
        Some("authorization_code") => code_grant(&sim, &params),
        Some("refresh_token") => refresh_grant(&sim, &params),
        Some(JWT_BEARER) => assertion_grant(&sim, &params),
        Some(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type.",
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
    }
}

fn client_ok(params: &[(String, String)]) -> bool {
    form_value(params, "client_id") == Some(HUB_OAUTH_CLIENT_ID)
        && form_value(params, "client_secret") == Some(HUB_OAUTH_CLIENT_SECRET)
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "The OAuth client was not found.",
    )
}

fn code_grant(sim: &GoogleSim, params: &[(String, String)]) -> Response {
    if !client_ok(params) {
        return invalid_client();
    }
    let mut state = sim.lock();
    let code = form_value(params, "code").unwrap_or_default();
    let Some(grant) = state.codes.remove(code) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Malformed auth code.",
        );
    };
    if grant.expires_at < now_micros() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
    }
    if form_value(params, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        );
    }
    let (access, refresh) = issue(
        &mut state,
        Principal::User(grant.user_id),
        grant.scopes.clone(),
        HUB_OAUTH_CLIENT_ID,
        None,
        grant.offline,
    );
    token_answer(access, refresh, &grant.scopes)
}

fn refresh_grant(sim: &GoogleSim, params: &[(String, String)]) -> Response {
    if !client_ok(params) {
        return invalid_client();
    }
    let mut state = sim.lock();
    let refresh = form_value(params, "refresh_token").unwrap_or_default();
    let Some(grant) = state.refresh_tokens.get(refresh).cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        );
    };
    if let Principal::User(id) = &grant.principal
        && !state.user(id).is_some_and(crate::state::User::active)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        );
    }
    let (access, _) = issue(
        &mut state,
        grant.principal,
        grant.scopes.clone(),
        HUB_OAUTH_CLIENT_ID,
        None,
        false,
    );
    token_answer(access, None, &grant.scopes)
}

#[derive(serde::Deserialize)]
struct Assertion {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    iat: u64,
    exp: u64,
}

/// A service account's signed assertion (RFC 7523): a token for the account itself, or, with
/// `sub`, for that user when an admin authorised the account's client id for every scope asked.
fn assertion_grant(sim: &GoogleSim, params: &[(String, String)]) -> Response {
    let invalid_grant =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let assertion = form_value(params, "assertion").unwrap_or_default();
    let Some(key_id) = jsonwebtoken::decode_header(assertion)
        .ok()
        .and_then(|header| header.kid)
    else {
        return invalid_grant("Invalid JWT Signature.");
    };
    let mut state = sim.lock();
    let Some((account, key)) = state.key(&key_id) else {
        return invalid_grant("Invalid JWT Signature.");
    };
    let Some(decoding) = key.decoding_key() else {
        return invalid_grant("Invalid JWT Signature.");
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // google-auth signs for Google's token endpoint whatever the key file's token_uri says.
    validation.set_audience(&[sim.token_url().as_str(), GOOGLE_TOKEN_URL]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<Assertion>(assertion, &decoding, &validation) {
        Ok(data) => data.claims,
        Err(error) => {
            return match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    invalid_grant("Invalid JWT Signature.")
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    invalid_grant("Invalid JWT: Failed audience check.")
                }
                _ => invalid_grant(
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
                ),
            };
        }
    };
    if claims.exp > claims.iat + 3600 {
        return invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if !claims.iss.eq_ignore_ascii_case(&account.email) {
        return invalid_grant("Invalid JWT Signature.");
    }
    let scopes = short_scopes(claims.scope.as_deref().unwrap_or_default());
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    let client_id = account.unique_id.clone();
    let principal = match &claims.sub {
        None => Principal::ServiceAccount(account.email.clone()),
        Some(subject) => {
            let authorised = state
                .delegations
                .get(&client_id)
                .is_some_and(|granted| scopes.iter().all(|scope| granted.contains(scope)));
            if !authorised {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
                );
            }
            match state.user(subject) {
                Some(user) if user.active() => Principal::User(user.id.clone()),
                _ => return invalid_grant("Invalid email or User ID"),
            }
        }
    };
    let (access, _) = issue(
        &mut state,
        principal,
        scopes.clone(),
        &client_id,
        Some(key_id),
        false,
    );
    token_answer(access, None, &scopes)
}

/// Google's signing keys in the v1 form, `{kid: PEM}`. Google serves X.509 certificates here;
/// the simulator serves the public keys (PKCS#1 PEM), which google-auth reads alike.
async fn certs_pem(Shared(sim): Shared<Arc<GoogleSim>>) -> Response {
    let key = sim.lock().signing_key.clone();
    axum::Json(json!({ key.id.clone(): key.public_pem() })).into_response()
}

async fn certs_jwks(Shared(sim): Shared<Arc<GoogleSim>>) -> Response {
    let key = sim.lock().signing_key.clone();
    axum::Json(json!({ "keys": [key.jwk()] })).into_response()
}

async fn token_info(
    Shared(sim): Shared<Arc<GoogleSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let now = now_micros();
    let grant = form_value(&params, "access_token")
        .and_then(|token| state.access_tokens.get(token))
        .filter(|grant| grant.expires_at > now);
    let Some(grant) = grant else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value");
    };
    let mut info = json!({
        "azp": grant.client_id,
        "aud": grant.client_id,
        "scope": full_scopes(&grant.scopes),
        "exp": (grant.expires_at / 1_000_000).to_string(),
        "expires_in": ((grant.expires_at - now) / 1_000_000).to_string(),
        "access_type": "online",
    });
    match &grant.principal {
        Principal::User(id) => {
            if let Some(user) = state.user(id) {
                info["sub"] = json!(user.id);
                info["email"] = json!(user.email);
                info["email_verified"] = json!("true");
            }
        }
        Principal::ServiceAccount(email) => info["email"] = json!(email),
    }
    axum::Json(info).into_response()
}

/// The authorize request's parameters the consent form carries through.
const AUTHORIZE_FIELDS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "access_type",
    "prompt",
];

struct Checked {
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
    offline: bool,
}

fn check_authorize(params: &[(String, String)]) -> Result<Checked, Box<Response>> {
    let refuse = |title: &str, text: &str| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                crate::web::page(
                    "Access blocked",
                    &format!(
                        "<h1>Access blocked</h1><p>{}: {}</p>",
                        escape(title),
                        escape(text)
                    ),
                ),
            )
                .into_response(),
        )
    };
    if form_value(params, "client_id") != Some(HUB_OAUTH_CLIENT_ID) {
        return Err(refuse(
            "Error 401: invalid_client",
            "The OAuth client was not found.",
        ));
    }
    let redirect_uri = form_value(params, "redirect_uri").unwrap_or_default();
    if redirect_uri.is_empty() {
        return Err(refuse(
            "Error 400: invalid_request",
            "Missing required parameter: redirect_uri",
        ));
    }
    if form_value(params, "response_type") != Some("code") {
        return Err(refuse(
            "Error 400: unsupported_response_type",
            "Only response_type=code is supported.",
        ));
    }
    let scopes = short_scopes(form_value(params, "scope").unwrap_or_default());
    if scopes.is_empty() {
        return Err(refuse(
            "Error 400: invalid_request",
            "Missing required parameter: scope",
        ));
    }
    Ok(Checked {
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: form_value(params, "state").unwrap_or_default().to_owned(),
        offline: form_value(params, "access_type") == Some("offline"),
    })
}

fn consent_form(
    state: &State,
    checked: &Checked,
    params: &[(String, String)],
    problem: Option<&str>,
) -> Response {
    let login = form_value(params, "login")
        .or_else(|| form_value(params, "login_hint"))
        .unwrap_or_default();
    let hidden: String = AUTHORIZE_FIELDS
        .iter()
        .filter_map(|name| Some(hidden_field(name, form_value(params, name)?)))
        .collect();
    let picks: Vec<Pick> = state
        .users
        .iter()
        .filter(|user| user.active())
        .take(30)
        .map(|user| Pick {
            value: user.email.clone(),
            label: user.full_name(),
        })
        .collect();
    let scopes: String = checked
        .scopes
        .iter()
        .map(|scope| format!("<li><code>{}</code></li>", escape(scope)))
        .collect();
    let problem = problem.map_or_else(String::new, |problem| {
        format!("<p class=\"error\">{}</p>", escape(problem))
    });
    let body = format!(
        "<h1>Sign in with Google</h1>{problem}\
         <form method=\"post\" action=\"/google/oauth2/auth\">{hidden}{account}\
         <h2>Switchboard wants to access your Google Account</h2><ul>{scopes}</ul>\
         <p><button name=\"decision\" value=\"allow\">Allow</button> \
         <button name=\"decision\" value=\"deny\">Cancel</button></p></form>",
        account = people_picker("login", "Email", login, &picks),
    );
    crate::web::page("Sign in - Google Accounts", &body).into_response()
}

fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{separator}{query}")).into_response()
}

async fn consent_page(
    Shared(sim): Shared<Arc<GoogleSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    match check_authorize(&params) {
        Ok(checked) => consent_form(&sim.lock(), &checked, &params, None),
        Err(response) => *response,
    }
}

async fn consent_decision(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let checked = match check_authorize(&params) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if form_value(&params, "decision") != Some("allow") {
        return redirect_with(
            &checked.redirect_uri,
            &[("error", "access_denied"), ("state", &checked.state)],
        );
    }
    let mut state = sim.lock();
    let login = form_value(&params, "login").unwrap_or_default().trim();
    let Some(user) = state.user(login).filter(|user| user.active()) else {
        let problem = format!("Couldn't find your Google Account {login}.");
        return consent_form(&state, &checked, &params, Some(&problem));
    };
    let code = format!("4/0{}", random_id(70));
    let grant = CodeGrant {
        user_id: user.id.clone(),
        scopes: checked.scopes.clone(),
        redirect_uri: checked.redirect_uri.clone(),
        offline: checked.offline,
        expires_at: now_micros() + 600_000_000,
    };
    state.codes.insert(code.clone(), grant);
    let scope = full_scopes(&checked.scopes);
    redirect_with(
        &checked.redirect_uri,
        &[
            ("code", &code),
            ("scope", &scope),
            ("state", &checked.state),
        ],
    )
}

/// The claims of an OIDC token Google signs for a push subscription's service account.
pub fn push_token_claims(account_id: &str, email: &str, audience: &str) -> Value {
    let now = now_micros() / 1_000_000;
    json!({
        "aud": audience,
        "azp": account_id,
        "email": email,
        "email_verified": true,
        "exp": now + 3600,
        "iat": now,
        "iss": "https://accounts.google.com",
        "sub": account_id,
    })
}
