//! Entra ID: the authorize endpoint with its sign-in and consent page, the token endpoint
//! (authorization code with PKCE, refresh token, client credentials, resource-owner password),
//! tenant-wide admin consent, and the access tokens Graph checks on every request.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::MicrosoftSim;
use crate::odata::{GraphError, encode_component, form_decode, form_value, iso_seconds, now_ms};
use crate::state::{
    ADMIN_ONLY_DELEGATED, AccessGrant, AuthCode, RefreshGrant, ServicePrincipal, State,
};
use crate::web::{escape, page};
use switchboard_sim_kit::html::{Pick, hidden_field, people_picker};

const GRAPH_RESOURCE: &str = "https://graph.microsoft.com/";
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
const REFRESH_LIFETIME_MS: u64 = 90 * 86_400_000;
const CODE_LIFETIME_MS: u64 = 10 * 60_000;

/// Graph permissions the simulator knows by name; others are refused as Entra refuses
/// scopes that do not exist.
const KNOWN_PERMISSIONS: [&str; 34] = [
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "User.Invite.All",
    "User.DeleteRestore.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "Chat.Create",
    "Chat.ReadBasic",
    "Chat.Read",
    "Chat.ReadWrite",
    "Chat.ReadBasic.All",
    "Chat.Read.All",
    "Chat.ReadWrite.All",
    "ChatMessage.Send",
    "ChatMessage.Read",
    "ChatMember.Read",
    "ChatMember.ReadWrite",
    "ChatMember.Read.All",
    "ChatMember.ReadWrite.All",
    "Team.ReadBasic.All",
    "TeamMember.Read.All",
    "TeamMember.ReadWrite.All",
    "TeamSettings.Read.All",
    "Teamwork.Migrate.All",
    "openid",
    "profile",
    "email",
    "offline_access",
];

pub fn routes() -> Router<Arc<MicrosoftSim>> {
    Router::new()
        .route(
            "/login/{tenant}/oauth2/v2.0/authorize",
            get(authorize_page).post(authorize_decision),
        )
        .route(
            "/login/{tenant}/oauth2/v2.0/token",
            axum::routing::post(token),
        )
        .route(
            "/login/{tenant}/v2.0/adminconsent",
            get(admin_consent_page).post(admin_consent_decision),
        )
}

/// Who is calling Graph, from their access token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub app_id: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub expires_ms: u64,
}

fn holds(granted: &[String], wanted: &[&str]) -> bool {
    wanted
        .iter()
        .any(|wanted| granted.iter().any(|have| have.eq_ignore_ascii_case(wanted)))
}

impl Caller {
    pub fn has(&self, delegated: &[&str], application: &[&str]) -> bool {
        match self.user_id {
            Some(_) => holds(&self.scopes, delegated),
            None => holds(&self.roles, application),
        }
    }

    /// Teams APIs refuse a missing scope with `Forbidden` and name what was needed.
    pub fn require(&self, delegated: &[&str], application: &[&str]) -> Result<(), GraphError> {
        if self.has(delegated, application) {
            return Ok(());
        }
        let (needed, present) = match self.user_id {
            Some(_) => (delegated, &self.scopes),
            None => (application, &self.roles),
        };
        if needed.is_empty() {
            return Err(GraphError::forbidden(
                "Requested API is not supported in application-only context",
            ));
        }
        Err(GraphError::forbidden(format!(
            "Missing scope permissions on the request. API requires one of '{}'. Scopes on the request '{}'",
            needed.join(", "),
            present.join(", ")
        )))
    }

    /// Directory APIs refuse in Entra's own words.
    pub fn require_directory(
        &self,
        delegated: &[&str],
        application: &[&str],
    ) -> Result<(), GraphError> {
        if self.has(delegated, application) {
            Ok(())
        } else {
            Err(GraphError::insufficient_privileges())
        }
    }

    pub fn user(&self) -> Result<&str, GraphError> {
        self.user_id.as_deref().ok_or_else(|| {
            GraphError::bad_request("/me request is only valid with delegated authentication flow.")
        })
    }
}

/// Checks the bearer token of a Graph request.
pub fn authenticate(sim: &MicrosoftSim, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .and_then(|value| {
            value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| GraphError::invalid_token("Access token is empty."))?;
    if token.matches('.').count() != 2 {
        return Err(GraphError::invalid_token(
            "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE Compact Serialization Format. (JWS): 'EncodedHeader.EndcodedPayload.EncodedSignature'. (JWE): 'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'.",
        ));
    }
    let state = sim.lock();
    let grant = state.access_tokens.get(token).ok_or_else(|| {
        GraphError::invalid_token("Access token validation failure. Invalid signature.")
    })?;
    if grant.expires_ms <= now_ms() {
        return Err(GraphError::invalid_token(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if let Some(user_id) = &grant.user_id {
        let live = state
            .tenant(&grant.tenant_id)
            .and_then(|tenant| tenant.user(user_id))
            .is_some_and(|user| user.account_enabled);
        if !live {
            return Err(GraphError::invalid_token(
                "Access token validation failure. The user account is disabled or deleted.",
            ));
        }
    }
    Ok(Caller {
        tenant_id: grant.tenant_id.clone(),
        user_id: grant.user_id.clone(),
        app_id: grant.app_id.clone(),
        scopes: grant.scopes.clone(),
        roles: grant.roles.clone(),
        expires_ms: grant.expires_ms,
    })
}

fn random_text(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    rand::rng().fill(buffer.as_mut_slice());
    URL_SAFE_NO_PAD.encode(buffer)
}

/// Issues an access token: a JWT-shaped string whose claims say what it grants (clients may
/// read `tid`, `oid`, `scp`, `roles`, `exp`); the simulator itself looks it up, never parses it.
pub fn issue_access(
    state: &mut State,
    tenant_id: &str,
    user_id: Option<&str>,
    app_id: &str,
    scopes: Vec<String>,
    roles: Vec<String>,
) -> (String, u64) {
    let now = now_ms();
    let lifetime = state.token_lifetime_secs;
    let expires_ms = now + lifetime * 1000;
    let mut claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "iat": now / 1000,
        "nbf": now / 1000,
        "exp": expires_ms / 1000,
        "appid": app_id,
        "tid": tenant_id,
        "uti": random_text(12),
        "ver": "1.0",
    });
    if let Some(user_id) = user_id {
        claims["oid"] = json!(user_id);
        claims["sub"] = json!(user_id);
        claims["scp"] = json!(scopes.join(" "));
        if let Some(upn) = state
            .tenant(tenant_id)
            .and_then(|tenant| tenant.users.iter().find(|user| user.id == user_id))
            .map(|user| user.upn.clone())
        {
            claims["upn"] = json!(upn);
        }
    } else {
        claims["oid"] = json!(app_id);
        claims["roles"] = json!(roles);
    }
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256","kid":"switchboard-sim"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        random_text(32)
    );
    if state.access_tokens.len() % 1024 == 1023 {
        state.prune(now);
    }
    state.access_tokens.insert(
        token.clone(),
        AccessGrant {
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            app_id: app_id.to_owned(),
            scopes,
            roles,
            expires_ms,
        },
    );
    (token, lifetime)
}

/// Entra's error: `{error, error_description, error_codes, timestamp, trace_id, correlation_id}`.
#[derive(Debug)]
struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl EntraError {
    fn new(error: &'static str, code: u32, description: impl Into<String>) -> Self {
        Self {
            status: if error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            error,
            code,
            description: description.into(),
        }
    }

    fn missing(parameter: &str) -> Self {
        Self::new(
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = iso_seconds(now_ms()).replace('T', " ");
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        token_json(self.status, &body)
    }
}

fn token_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

/// `/login/{tenant}`: a tenant id or domain, or a multi-tenant alias resolved at sign-in.
enum TenantRef {
    One(String),
    Any,
}

fn tenant_ref(state: &State, key: &str) -> Result<TenantRef, String> {
    if key.eq_ignore_ascii_case("common") || key.eq_ignore_ascii_case("organizations") {
        return Ok(TenantRef::Any);
    }
    state
        .tenant(key)
        .map(|tenant| TenantRef::One(tenant.id.clone()))
        .ok_or_else(|| {
            format!(
                "Tenant '{key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            )
        })
}

/// Finds who signs in as `login`: in the named tenant (guests included), or in their home
/// tenant for `common`.
fn resolve_login(state: &State, tenant: &TenantRef, login: &str) -> Option<(String, usize)> {
    match tenant {
        TenantRef::One(id) => state.sign_in(id, login).map(|index| (id.clone(), index)),
        TenantRef::Any => state.tenants.iter().find_map(|tenant| {
            tenant
                .users
                .iter()
                .position(|user| user.active() && !user.is_guest() && user.answers_to(login))
                .map(|index| (tenant.id.clone(), index))
        }),
    }
}

/// Splits a scope parameter into Graph permission names; `.default` is the app's static list.
fn parse_scopes(scope: &str, static_list: &[String]) -> Result<Vec<String>, String> {
    let mut scopes: Vec<String> = Vec::new();
    for raw in scope.split_whitespace() {
        let name = raw
            .get(..GRAPH_RESOURCE.len())
            .filter(|head| head.eq_ignore_ascii_case(GRAPH_RESOURCE))
            .map_or(raw, |_| &raw[GRAPH_RESOURCE.len()..]);
        if name == ".default" {
            scopes.extend(static_list.iter().cloned());
            continue;
        }
        let known = KNOWN_PERMISSIONS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope '{raw}' does not exist."
                )
            })?;
        scopes.push((*known).to_owned());
    }
    scopes.sort_unstable();
    scopes.dedup();
    Ok(scopes)
}

fn graph_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|scope| !OIDC_SCOPES.contains(&scope.as_str()))
        .cloned()
        .collect()
}

fn redirect_allowed(allowed: &[String], uri: &str) -> bool {
    if allowed.is_empty() {
        uri.starts_with("http://") || uri.starts_with("https://")
    } else {
        allowed.iter().any(|allowed| allowed == uri)
    }
}

fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut target = uri.to_owned();
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in pairs {
        let _ = write!(target, "{separator}{name}={}", encode_component(value));
        separator = '&';
    }
    match HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => error_page(
            "Sign in",
            "AADSTS50011: The redirect URI is not a valid URL.",
        ),
    }
}

fn error_box(title: &str, message: &str) -> Box<Response> {
    Box::new(error_page(title, message))
}

fn error_page(title: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(
            title,
            &format!(
                "<h1>{}</h1><p class=\"error\">{}</p>",
                escape(title),
                escape(message)
            ),
        ),
    )
        .into_response()
}

/// The authorize request's parameters, carried through the consent form as hidden fields.
const AUTHORIZE_FIELDS: [&str; 10] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "prompt",
    "response_mode",
];

struct Checked {
    tenant: TenantRef,
    app_id: String,
    app_name: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
}

/// Validates an authorize request: problems with the app or redirect URI are shown on a page
/// (redirecting would hand an attacker the answer); the rest go back to the app.
fn check_authorize(
    state: &State,
    tenant_key: &str,
    params: &[(String, String)],
) -> Result<Checked, Box<Response>> {
    let tenant = tenant_ref(state, tenant_key)
        .map_err(|message| error_box("Sign in", &format!("AADSTS90002: {message}")))?;
    let client_id = form_value(params, "client_id").ok_or_else(|| {
        error_box(
            "Sign in",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        )
    })?;
    let app = state.app(client_id).ok_or_else(|| {
        error_box(
            "Sign in",
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
            ),
        )
    })?;
    let redirect_uri = form_value(params, "redirect_uri").unwrap_or_default();
    if !redirect_allowed(&app.redirect_uris, redirect_uri) {
        return Err(error_box(
            "Sign in",
            &format!(
                "AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
        ));
    }
    let state_param = form_value(params, "state").unwrap_or_default().to_owned();
    let back = |error: &str, description: &str| {
        Box::new(redirect_with(
            redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &state_param),
            ],
        ))
    };
    if form_value(params, "response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "AADSTS700054: response_type 'code' is the only one this application may use.",
        ));
    }
    let scope = form_value(params, "scope").ok_or_else(|| {
        back(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        )
    })?;
    let scopes = parse_scopes(scope, &app.delegated)
        .map_err(|message| back("invalid_scope", &format!("AADSTS70011: {message}")))?;
    if let Some(method) = form_value(params, "code_challenge_method")
        && method != "S256"
        && method != "plain"
    {
        return Err(back(
            "invalid_request",
            "AADSTS501491: Invalid code_challenge_method: only S256 and plain are supported.",
        ));
    }
    if form_value(params, "response_mode").is_some_and(|mode| mode != "query") {
        return Err(back(
            "invalid_request",
            "AADSTS900144: The simulator returns authorization codes with response_mode=query only.",
        ));
    }
    Ok(Checked {
        tenant,
        app_id: app.client_id.clone(),
        app_name: app.display_name.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state_param,
    })
}

fn hidden_fields(params: &[(String, String)], names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|name| Some(hidden_field(name, form_value(params, name)?)))
        .collect()
}

/// A handful of accounts to pick from; anyone else can be typed in.
fn account_choices(state: &State, tenant: &TenantRef) -> Vec<Pick> {
    let tenants: Vec<&crate::state::Tenant> = match tenant {
        TenantRef::One(id) => state.tenant(id).into_iter().collect(),
        TenantRef::Any => state.tenants.iter().collect(),
    };
    let mut picks = Vec::new();
    for tenant in tenants {
        let admins = tenant.users.iter().filter(|user| user.admin);
        let guests = tenant.users.iter().filter(|user| user.is_guest()).take(10);
        let members = tenant
            .users
            .iter()
            .filter(|user| !user.admin && !user.is_guest())
            .take(20);
        for user in admins
            .chain(members)
            .chain(guests)
            .filter(|user| user.active())
        {
            let login = match &user.home {
                Some((home_tenant, home_id)) => state
                    .tenant(home_tenant)
                    .and_then(|home| home.user(home_id))
                    .map_or_else(|| user.upn.clone(), |home| home.upn.clone()),
                None => user.upn.clone(),
            };
            picks.push(Pick {
                value: login,
                label: user.display_name.clone(),
            });
        }
    }
    picks
}

fn consent_page(
    state: &State,
    tenant_key: &str,
    checked: &Checked,
    params: &[(String, String)],
    problem: Option<&str>,
) -> Response {
    let tenant_name = match &checked.tenant {
        TenantRef::One(id) => state
            .tenant(id)
            .map_or_else(String::new, |tenant| tenant.display_name.clone()),
        TenantRef::Any => "your organisation".to_owned(),
    };
    let mut scopes = String::new();
    for scope in &checked.scopes {
        let _ = write!(scopes, "<li><code>{}</code></li>", escape(scope));
    }
    let login = form_value(params, "login")
        .or_else(|| form_value(params, "login_hint"))
        .unwrap_or_default();
    let problem = problem.map_or_else(String::new, |problem| {
        format!("<p class=\"error\">{}</p>", escape(problem))
    });
    let body = format!(
        "<h1>Sign in to {tenant}</h1>{problem}\
         <form method=\"post\" action=\"/login/{path}/oauth2/v2.0/authorize\">{hidden}\
         {account}\
         <h2>Permissions requested</h2><p><strong>{app}</strong> would like to:</p><ul>{scopes}</ul>\
         <p><button name=\"decision\" value=\"accept\">Accept</button> \
         <button name=\"decision\" value=\"cancel\">Cancel</button></p></form>",
        tenant = escape(&tenant_name),
        path = escape(tenant_key),
        hidden = hidden_fields(params, &AUTHORIZE_FIELDS),
        account = people_picker(
            "login",
            "Account (e-mail or user principal name)",
            login,
            &account_choices(state, &checked.tenant)
        ),
        app = escape(&checked.app_name),
    );
    page("Sign in to your account", &body).into_response()
}

/// The redirect that tells the app the person declined to consent.
fn declined(redirect_uri: &str, state: &str) -> Response {
    redirect_with(
        redirect_uri,
        &[
            ("error", "access_denied"),
            (
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            ),
            ("state", state),
        ],
    )
}

/// The account the person typed or picked on a consent page.
fn submitted_login(params: &[(String, String)]) -> String {
    form_value(params, "login")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

async fn authorize_page(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    Path(tenant_key): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    match check_authorize(&state, &tenant_key, &params) {
        Ok(checked) => consent_page(&state, &tenant_key, &checked, &params, None),
        Err(response) => *response,
    }
}

async fn authorize_decision(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    Path(tenant_key): Path<String>,
    body: Bytes,
) -> Response {
    let params = form_decode(&String::from_utf8_lossy(&body));
    let mut state = sim.lock();
    let checked = match check_authorize(&state, &tenant_key, &params) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if form_value(&params, "decision") != Some("accept") {
        return declined(&checked.redirect_uri, &checked.state);
    }
    let login = submitted_login(&params);
    let Some((tenant_id, index)) = resolve_login(&state, &checked.tenant, &login) else {
        let problem = format!(
            "AADSTS50034: The user account {login} does not exist in this directory. To sign into this application, the account must be added to the directory."
        );
        return consent_page(&state, &tenant_key, &checked, &params, Some(&problem));
    };
    let Some(user) = state
        .tenant(&tenant_id)
        .map(|tenant| tenant.users[index].clone())
    else {
        return error_page("Sign in", "AADSTS90002: Tenant not found.");
    };
    if !user.account_enabled {
        return consent_page(
            &state,
            &tenant_key,
            &checked,
            &params,
            Some("AADSTS50057: The user account is disabled."),
        );
    }
    let consented = state
        .tenant(&tenant_id)
        .map(|tenant| tenant.consented(&checked.app_id, &user.id))
        .unwrap_or_default();
    let needs_admin: Vec<&String> = checked
        .scopes
        .iter()
        .filter(|scope| {
            ADMIN_ONLY_DELEGATED.contains(&scope.as_str()) && !consented.contains(scope)
        })
        .collect();
    if !needs_admin.is_empty() && !user.admin {
        let back = format!(
            "{}{}error=access_denied&error_description={}&state={}",
            checked.redirect_uri,
            if checked.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            },
            encode_component("AADSTS90094: An administrator must grant permission to this app."),
            encode_component(&checked.state)
        );
        let body = format!(
            "<h1>Need admin approval</h1><p class=\"error\">AADSTS90094: {app} needs permission to access resources in your organization that only an admin can grant ({scopes}). Please ask an admin to grant permission to this app before you can use it.</p><p><a href=\"{back}\">Return to the application without granting consent</a></p>",
            app = escape(&checked.app_name),
            scopes = escape(
                &needs_admin
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            back = escape(&back),
        );
        return (StatusCode::FORBIDDEN, page("Need admin approval", &body)).into_response();
    }
    let redeemed = state.redeem(&tenant_id, index);
    if let Some(tenant) = state.tenant_mut(&tenant_id) {
        let own = tenant
            .user_consents
            .entry(checked.app_id.clone())
            .or_default()
            .entry(user.id.clone())
            .or_default();
        own.extend(checked.scopes.iter().cloned());
        own.sort_unstable();
        own.dedup();
    }
    let code = random_text(48);
    state.codes.insert(
        code.clone(),
        AuthCode {
            tenant_id: tenant_id.clone(),
            user_id: user.id.clone(),
            app_id: checked.app_id.clone(),
            scopes: checked.scopes.clone(),
            redirect_uri: checked.redirect_uri.clone(),
            code_challenge: form_value(&params, "code_challenge").map(str::to_owned),
            code_challenge_method: form_value(&params, "code_challenge_method").map(str::to_owned),
            expires_ms: now_ms() + CODE_LIFETIME_MS,
            redeemed: false,
        },
    );
    drop(state);
    if redeemed {
        crate::subscriptions::publish(
            &sim,
            vec![crate::subscriptions::Event::user(
                &tenant_id, &user.id, "updated",
            )],
        );
    }
    let session_state = uuid::Uuid::new_v4().to_string();
    redirect_with(
        &checked.redirect_uri,
        &[
            ("code", &code),
            ("state", &checked.state),
            ("session_state", &session_state),
        ],
    )
}

/// The client's credentials, from the form or HTTP Basic authentication.
fn client_credentials(
    headers: &HeaderMap,
    params: &[(String, String)],
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':').map(|(id, secret)| {
                let decoded = form_decode(&format!("id={id}&secret={secret}"));
                (
                    form_value(&decoded, "id").map(str::to_owned),
                    form_value(&decoded, "secret").map(str::to_owned),
                )
            })
        });
    match basic {
        Some((id, secret)) => (id, secret),
        None => (
            form_value(params, "client_id").map(str::to_owned),
            form_value(params, "client_secret").map(str::to_owned),
        ),
    }
}

/// Confidential clients must prove themselves; public clients have nothing to prove.
fn authenticate_client(
    state: &State,
    client_id: &str,
    secret: Option<&str>,
) -> Result<(), EntraError> {
    let app = state.app(client_id).ok_or_else(|| {
        EntraError::new(
            "unauthorized_client",
            700_016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        )
    })?;
    match (&app.secret, secret) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(EntraError::new(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Some(expected), Some(given)) if expected == given => Ok(()),
        (Some(_), Some(_)) => Err(EntraError::new(
            "invalid_client",
            7_000_215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
        )),
    }
}

struct Issued {
    tenant_id: String,
    user_id: Option<String>,
    app_id: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    refresh: bool,
}

fn issue(state: &mut State, issued: Issued) -> Response {
    let graph = graph_scopes(&issued.scopes);
    let (access_token, expires_in) = issue_access(
        state,
        &issued.tenant_id,
        issued.user_id.as_deref(),
        &issued.app_id,
        graph.clone(),
        issued.roles,
    );
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    });
    if let Some(user_id) = &issued.user_id {
        let shown: Vec<String> = issued
            .scopes
            .iter()
            .filter(|scope| scope.as_str() != "offline_access")
            .cloned()
            .collect();
        body["scope"] = json!(shown.join(" "));
        if issued.refresh {
            let refresh_token = format!("1.{}", random_text(96));
            state.refresh_tokens.insert(
                refresh_token.clone(),
                RefreshGrant {
                    tenant_id: issued.tenant_id.clone(),
                    user_id: user_id.clone(),
                    app_id: issued.app_id.clone(),
                    scopes: issued.scopes.clone(),
                    expires_ms: now_ms() + REFRESH_LIFETIME_MS,
                },
            );
            body["refresh_token"] = json!(refresh_token);
        }
    }
    token_json(StatusCode::OK, &body)
}

async fn token(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    Path(tenant_key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form_decode(&String::from_utf8_lossy(&body));
    let outcome = {
        let mut state = sim.lock();
        token_grant(&mut state, &tenant_key, &headers, &params)
    };
    match outcome {
        Ok((response, redeemed)) => {
            if let Some((tenant_id, user_id)) = redeemed {
                crate::subscriptions::publish(
                    &sim,
                    vec![crate::subscriptions::Event::user(
                        &tenant_id, &user_id, "updated",
                    )],
                );
            }
            response
        }
        Err(error) => error.into_response(),
    }
}

type Granted = (Response, Option<(String, String)>);

fn token_grant(
    state: &mut State,
    tenant_key: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Granted, EntraError> {
    let tenant = tenant_ref(state, tenant_key)
        .map_err(|message| EntraError::new("invalid_request", 90_002, message))?;
    let grant_type =
        form_value(params, "grant_type").ok_or_else(|| EntraError::missing("grant_type"))?;
    let (client_id, secret) = client_credentials(headers, params);
    let client_id = client_id.ok_or_else(|| EntraError::missing("client_id"))?;
    match grant_type {
        "authorization_code" => {
            let code = form_value(params, "code").ok_or_else(|| EntraError::missing("code"))?;
            let grant = state.codes.get(code).cloned().ok_or_else(|| {
                EntraError::new(
                    "invalid_grant",
                    9_002_313,
                    "Invalid request. Request is malformed or invalid.",
                )
            })?;
            if grant.redeemed {
                return Err(EntraError::new(
                    "invalid_grant",
                    54_005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                ));
            }
            if grant.expires_ms <= now_ms() {
                return Err(EntraError::new(
                    "invalid_grant",
                    70_008,
                    "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
                ));
            }
            if grant.app_id != client_id
                || matches!(&tenant, TenantRef::One(id) if *id != grant.tenant_id)
            {
                return Err(EntraError::new(
                    "invalid_grant",
                    70_000,
                    "Provided grant is invalid or malformed.",
                ));
            }
            authenticate_client(state, &client_id, secret.as_deref())?;
            let redirect_uri = form_value(params, "redirect_uri").unwrap_or_default();
            if redirect_uri != grant.redirect_uri {
                return Err(EntraError::new(
                    "invalid_grant",
                    500_112,
                    format!(
                        "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                        grant.redirect_uri
                    ),
                ));
            }
            if let Some(challenge) = &grant.code_challenge {
                let verifier = form_value(params, "code_verifier")
                    .ok_or_else(|| EntraError::missing("code_verifier"))?;
                let computed = if grant.code_challenge_method.as_deref() == Some("S256") {
                    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
                } else {
                    verifier.to_owned()
                };
                if computed != *challenge {
                    return Err(EntraError::new(
                        "invalid_grant",
                        501_481,
                        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    ));
                }
            }
            if let Some(stored) = state.codes.get_mut(code) {
                stored.redeemed = true;
            }
            let refresh = grant.scopes.iter().any(|scope| scope == "offline_access");
            Ok((
                issue(
                    state,
                    Issued {
                        tenant_id: grant.tenant_id,
                        user_id: Some(grant.user_id),
                        app_id: grant.app_id,
                        scopes: grant.scopes,
                        roles: Vec::new(),
                        refresh,
                    },
                ),
                None,
            ))
        }
        "refresh_token" => {
            let token = form_value(params, "refresh_token")
                .ok_or_else(|| EntraError::missing("refresh_token"))?;
            let grant = state.refresh_tokens.get(token).cloned().ok_or_else(|| {
                EntraError::new(
                    "invalid_grant",
                    9_002_313,
                    "Invalid request. Request is malformed or invalid.",
                )
            })?;
            if grant.expires_ms <= now_ms() {
                return Err(EntraError::new(
                    "invalid_grant",
                    700_082,
                    "The refresh token has expired due to inactivity.",
                ));
            }
            if grant.app_id != client_id {
                return Err(EntraError::new(
                    "invalid_grant",
                    70_000,
                    "Provided grant is invalid or malformed.",
                ));
            }
            authenticate_client(state, &client_id, secret.as_deref())?;
            let enabled = state
                .tenant(&grant.tenant_id)
                .and_then(|tenant| tenant.user(&grant.user_id))
                .map(|user| user.account_enabled);
            match enabled {
                None => {
                    return Err(EntraError::new(
                        "invalid_grant",
                        50_173,
                        "The provided grant has expired due to it being revoked.",
                    ));
                }
                Some(false) => {
                    return Err(EntraError::new(
                        "invalid_grant",
                        50_057,
                        "The user account is disabled.",
                    ));
                }
                Some(true) => {}
            }
            let app_static = state
                .app(&client_id)
                .map(|app| app.delegated.clone())
                .unwrap_or_default();
            let scopes = match form_value(params, "scope") {
                Some(scope) => {
                    let wanted = parse_scopes(scope, &app_static)
                        .map_err(|message| EntraError::new("invalid_scope", 70_011, message))?;
                    let consented = state
                        .tenant(&grant.tenant_id)
                        .map(|tenant| tenant.consented(&client_id, &grant.user_id))
                        .unwrap_or_default();
                    let missing = graph_scopes(&wanted)
                        .iter()
                        .any(|scope| !consented.contains(scope) && !grant.scopes.contains(scope));
                    if missing {
                        return Err(not_consented(&client_id));
                    }
                    let mut wanted = wanted;
                    if grant.scopes.iter().any(|scope| scope == "offline_access") {
                        wanted.push("offline_access".to_owned());
                        wanted.sort_unstable();
                        wanted.dedup();
                    }
                    wanted
                }
                None => grant.scopes.clone(),
            };
            Ok((
                issue(
                    state,
                    Issued {
                        tenant_id: grant.tenant_id,
                        user_id: Some(grant.user_id),
                        app_id: grant.app_id,
                        scopes,
                        roles: Vec::new(),
                        refresh: true,
                    },
                ),
                None,
            ))
        }
        "client_credentials" => {
            let TenantRef::One(tenant_id) = tenant else {
                return Err(EntraError::new(
                    "invalid_request",
                    90_009,
                    "Application is requesting a token for itself. This scenario is supported only if resource is specified using the GUID based App Identifier: use a tenant-specific endpoint.",
                ));
            };
            let scope = form_value(params, "scope").ok_or_else(|| EntraError::missing("scope"))?;
            let resource_default = scope
                .split_whitespace()
                .all(|scope| scope.eq_ignore_ascii_case("https://graph.microsoft.com/.default"));
            if !resource_default {
                return Err(EntraError::new(
                    "invalid_scope",
                    1_002_012,
                    format!(
                        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                ));
            }
            authenticate_client(state, &client_id, secret.as_deref())?;
            if state
                .app(&client_id)
                .is_some_and(|app| app.secret.is_none())
            {
                return Err(EntraError::new(
                    "invalid_client",
                    7_000_218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                ));
            }
            let roles = state
                .tenant(&tenant_id)
                .and_then(|tenant| tenant.service_principals.get(&client_id))
                .map(|sp: &ServicePrincipal| sp.app_roles.clone())
                .ok_or_else(|| {
                    EntraError::new(
                        "unauthorized_client",
                        700_016,
                        format!(
                            "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
                        ),
                    )
                })?;
            Ok((
                issue(
                    state,
                    Issued {
                        tenant_id,
                        user_id: None,
                        app_id: client_id,
                        scopes: Vec::new(),
                        roles,
                        refresh: false,
                    },
                ),
                None,
            ))
        }
        "password" => {
            let username =
                form_value(params, "username").ok_or_else(|| EntraError::missing("username"))?;
            let password =
                form_value(params, "password").ok_or_else(|| EntraError::missing("password"))?;
            let scope = form_value(params, "scope").ok_or_else(|| EntraError::missing("scope"))?;
            authenticate_client(state, &client_id, secret.as_deref())?;
            let app_static = state
                .app(&client_id)
                .map(|app| app.delegated.clone())
                .unwrap_or_default();
            let scopes = parse_scopes(scope, &app_static)
                .map_err(|message| EntraError::new("invalid_scope", 70_011, message))?;
            let (tenant_id, index) = resolve_login(state, &tenant, username).ok_or_else(|| {
                EntraError::new(
                    "invalid_grant",
                    50_034,
                    format!("The user account {username} does not exist in the directory."),
                )
            })?;
            if state.password_of(&tenant_id, index).as_deref() != Some(password) {
                return Err(EntraError::new(
                    "invalid_grant",
                    50_126,
                    "Error validating credentials due to invalid username or password.",
                ));
            }
            let user =
                state.tenants[state.tenant_index(&tenant_id).unwrap_or(0)].users[index].clone();
            if !user.account_enabled {
                return Err(EntraError::new(
                    "invalid_grant",
                    50_057,
                    "The user account is disabled.",
                ));
            }
            let consented = state
                .tenant(&tenant_id)
                .map(|tenant| tenant.consented(&client_id, &user.id))
                .unwrap_or_default();
            if graph_scopes(&scopes)
                .iter()
                .any(|scope| !consented.contains(scope))
            {
                return Err(not_consented(&client_id));
            }
            let redeemed = state.redeem(&tenant_id, index);
            let refresh = scopes.iter().any(|scope| scope == "offline_access");
            let response = issue(
                state,
                Issued {
                    tenant_id: tenant_id.clone(),
                    user_id: Some(user.id.clone()),
                    app_id: client_id,
                    scopes,
                    roles: Vec::new(),
                    refresh,
                },
            );
            Ok((response, redeemed.then_some((tenant_id, user.id))))
        }
        other => Err(EntraError::new(
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn not_consented(client_id: &str) -> EntraError {
    EntraError::new(
        "invalid_grant",
        65_001,
        format!(
            "The user or administrator has not consented to use the application with ID '{client_id}'. Send an interactive authorization request for this user and resource."
        ),
    )
}

const ADMIN_CONSENT_FIELDS: [&str; 4] = ["client_id", "scope", "redirect_uri", "state"];

struct AdminChecked {
    tenant: TenantRef,
    app_id: String,
    app_name: String,
    application: Vec<String>,
    delegated: Vec<String>,
    redirect_uri: String,
    state: String,
}

fn check_admin_consent(
    state: &State,
    tenant_key: &str,
    params: &[(String, String)],
) -> Result<AdminChecked, Box<Response>> {
    let tenant = tenant_ref(state, tenant_key)
        .map_err(|message| error_box("Admin consent", &format!("AADSTS90002: {message}")))?;
    let client_id = form_value(params, "client_id").ok_or_else(|| {
        error_box(
            "Admin consent",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        )
    })?;
    let app = state.app(client_id).ok_or_else(|| {
        error_box(
            "Admin consent",
            &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory."),
        )
    })?;
    let redirect_uri = form_value(params, "redirect_uri").unwrap_or_default();
    if !redirect_allowed(&app.redirect_uris, redirect_uri) {
        return Err(error_box(
            "Admin consent",
            &format!(
                "AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
        ));
    }
    if form_value(params, "scope").is_none() {
        return Err(error_box(
            "Admin consent",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        ));
    }
    Ok(AdminChecked {
        tenant,
        app_id: app.client_id.clone(),
        app_name: app.display_name.clone(),
        application: app.application.clone(),
        delegated: app.delegated.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: form_value(params, "state").unwrap_or_default().to_owned(),
    })
}

fn admin_consent_form(
    state: &State,
    tenant_key: &str,
    checked: &AdminChecked,
    params: &[(String, String)],
    problem: Option<&str>,
) -> Response {
    let list = |items: &[String]| {
        items.iter().fold(String::new(), |mut html, item| {
            let _ = write!(html, "<li><code>{}</code></li>", escape(item));
            html
        })
    };
    let problem = problem.map_or_else(String::new, |problem| {
        format!("<p class=\"error\">{}</p>", escape(problem))
    });
    let body = format!(
        "<h1>Permissions requested — accept for your organisation</h1>{problem}\
         <p><strong>{app}</strong> asks an administrator to grant it, for everyone in the organisation:</p>\
         <h2>Application permissions</h2><ul>{application}</ul>\
         <h2>Delegated permissions</h2><ul>{delegated}</ul>\
         <form method=\"post\" action=\"/login/{path}/v2.0/adminconsent\">{hidden}\
         {account}\
         <p><button name=\"decision\" value=\"accept\">Accept</button> \
         <button name=\"decision\" value=\"cancel\">Cancel</button></p></form>",
        app = escape(&checked.app_name),
        application = list(&checked.application),
        delegated = list(&checked.delegated),
        path = escape(tenant_key),
        hidden = hidden_fields(params, &ADMIN_CONSENT_FIELDS),
        account = people_picker(
            "login",
            "Administrator account",
            "",
            &account_choices(state, &checked.tenant)
        ),
    );
    page("Admin consent", &body).into_response()
}

async fn admin_consent_page(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    Path(tenant_key): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    match check_admin_consent(&state, &tenant_key, &params) {
        Ok(checked) => admin_consent_form(&state, &tenant_key, &checked, &params, None),
        Err(response) => *response,
    }
}

async fn admin_consent_decision(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    Path(tenant_key): Path<String>,
    body: Bytes,
) -> Response {
    let params = form_decode(&String::from_utf8_lossy(&body));
    let mut state = sim.lock();
    let checked = match check_admin_consent(&state, &tenant_key, &params) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if form_value(&params, "decision") != Some("accept") {
        return declined(&checked.redirect_uri, &checked.state);
    }
    let login = submitted_login(&params);
    let admin = resolve_login(&state, &checked.tenant, &login).and_then(|(tenant_id, index)| {
        let user = state.tenant(&tenant_id)?.users.get(index)?;
        (user.admin && user.account_enabled && !user.is_guest()).then_some(tenant_id)
    });
    let Some(tenant_id) = admin else {
        return admin_consent_form(
            &state,
            &tenant_key,
            &checked,
            &params,
            Some(&format!(
                "AADSTS90094: {login} is not an administrator of this organisation. Only an administrator can grant these permissions."
            )),
        );
    };
    if let Some(tenant) = state.tenant_mut(&tenant_id) {
        tenant.service_principals.insert(
            checked.app_id.clone(),
            ServicePrincipal {
                app_roles: checked.application.clone(),
                admin_scopes: checked.delegated.clone(),
            },
        );
    }
    let scope = form_value(&params, "scope").unwrap_or_default().to_owned();
    redirect_with(
        &checked.redirect_uri,
        &[
            ("admin_consent", "True"),
            ("tenant", &tenant_id),
            ("scope", &scope),
            ("state", &checked.state),
        ],
    )
}
