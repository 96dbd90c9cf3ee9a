//! Signing in and out: argon2 password hashes, server-side sessions behind an HttpOnly,
//! SameSite=Strict cookie (Secure when the hub is served over https), the first owner's setup
//! link, and the sign-in rate limits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use switchboard_core::{Email, Timestamp};
use switchboard_store::{AdminRole, AdminSession, StoreError};

use super::layout::{self, bare_page};
use super::{ConsoleError, Fields, cookie};
use crate::AppState;
use crate::tokens;

/// The session cookie; its value is a random secret, stored only as its SHA-256.
pub const SESSION_COOKIE: &str = "sb_session";
/// The double-submit token of the sign-in and setup forms, which have no session yet.
const FORM_COOKIE: &str = "sb_form";
/// A session ends this long after sign-in, however active.
const SESSION_LIFETIME_MILLIS: i64 = 12 * 60 * 60 * 1000;
/// The window over which failed sign-ins are counted.
const WINDOW_MILLIS: i64 = 15 * 60 * 1000;
/// Failed sign-ins allowed per window from one address, for any accounts…
pub const FAILURES_PER_ADDRESS: usize = 20;
/// …for one account from one address…
pub const FAILURES_PER_ACCOUNT_AND_ADDRESS: usize = 5;
/// …and for one account from anywhere, past which only addresses that never failed for it may
/// still try: guessing from many addresses costs one guess per address, while the admin, from
/// an address with no failures, is never locked out by someone else's.
pub const FAILURES_PER_ACCOUNT: usize = 5;
/// How long the setup link printed at start works.
const SETUP_LINK_LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1000;
pub const SETUP_PATH: &str = "/console/setup";
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Hashes a password for storage (argon2id with a random salt, as a PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| format!("cannot hash the password: {error}"))
}

/// A hash no password matches, verified against when no admin has the address given.
static DECOY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_secret()).unwrap_or_default());

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Why a new admin's details were refused.
pub fn check_new_admin(email: &str, password: &str) -> Result<Email, String> {
    let email = Email::parse(email).map_err(|e| e.to_string())?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    Ok(email)
}

/// Failed sign-ins, per address and per account, in the last window.
#[derive(Debug, Clone, Default)]
pub struct SignInLimits(Arc<Mutex<HashMap<String, VecDeque<i64>>>>);

impl SignInLimits {
    fn recent(&self, key: &str, now: i64) -> usize {
        let mut failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = failures.get_mut(key) else {
            return 0;
        };
        while times.front().is_some_and(|&at| at <= now - WINDOW_MILLIS) {
            times.pop_front();
        }
        times.len()
    }

    fn record(&self, key: String, now: i64) {
        let mut failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Keys whose failures all lapsed are dropped, so that many addresses cannot grow the
        // map without end.
        failures.retain(|_, times| times.back().is_some_and(|&at| at > now - WINDOW_MILLIS));
        failures.entry(key).or_default().push_back(now);
    }

    fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// 32 random bytes, URL-safe: session ids, CSRF tokens, setup links.
fn random_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn secure(state: &AppState) -> bool {
    state.public_url.starts_with("https://")
}

/// A `Set-Cookie` value for the console: only sent to `/console`, HttpOnly, SameSite=Strict,
/// Secure behind https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure(state) { "; Secure" } else { "" }
    )
}

/// The address a request came from, for rate limits and the audit log.
pub fn source(connect: Option<&ConnectInfo<std::net::SocketAddr>>) -> String {
    connect.map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
}

/// The signed-in admin's session, as found from the cookie.
pub async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, AdminSession)>, StoreError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = tokens::hash(&secret);
    Ok(state.store.admin_session(&hash).await?.map(|s| (hash, s)))
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Where signing in leads: one of the console's own pages, never another site. It becomes a
/// `Location` header, which takes visible ASCII only, so anything else is refused rather than
/// failing after the session started. The people page by default.
fn next_page(next: Option<&str>) -> Result<&str, ConsoleError> {
    match next.filter(|next| !next.is_empty()) {
        None => Ok("/console/people"),
        Some(next)
            if next.starts_with("/console/")
                && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            Ok(next)
        }
        Some(_) => Err(ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "The page to open after signing in is not a page of this console. Open the \
             console's sign-in page again.",
        )),
    }
}

fn form_token_cookie(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, FORM_COOKIE) {
        Some(existing) => (existing, None),
        None => {
            let fresh = random_secret();
            let header = set_cookie(state, FORM_COOKIE, &fresh, 3600);
            (fresh, Some(header))
        }
    }
}

fn with_cookie(markup: Markup, status: StatusCode, set: Option<String>) -> Response {
    let mut response = (status, markup).into_response();
    if let Some(set) = set
        && let Ok(value) = header::HeaderValue::from_str(&set)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Result<Response, ConsoleError> {
    let next = next_page(query.next.as_deref())?;
    if session_of(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    let (token, set) = form_token_cookie(&state, &headers);
    let no_admin = state.store.admin_count().await? == 0;
    Ok(with_cookie(
        sign_in_form(&token, next, no_admin, None),
        StatusCode::OK,
        set,
    ))
}

fn sign_in_form(token: &str, next: &str, no_admin: bool, error: Option<&str>) -> Markup {
    bare_page(
        "Sign in",
        html! {
            h1 { "Sign in to Switchboard" }
            @if no_admin {
                div.notice role="status" {
                    p { "This hub has no admin yet. Create the owner with "
                        code { "switchboard admin create EMAIL" }
                        " on the hub's machine, or open the one-time setup link the hub printed in its log when it started." }
                }
            }
            @if let Some(error) = error {
                div.error role="alert" { p { (error) } }
            }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail address" }
                input #email type="email" name="email" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn form_token_matches(headers: &HeaderMap, fields: &Fields) -> bool {
    match (cookie(headers, FORM_COOKIE), fields.get("csrf")) {
        (Some(expected), Some(given)) => super::same_secret(&expected, given),
        _ => false,
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    let fields = Fields::parse(&body);
    if !form_token_matches(&headers, &fields) {
        return Err(ConsoleError::forbidden(
            "the form's security token did not match: reload the sign-in page and try again",
        ));
    }
    let next = next_page(fields.get("next"))?.to_owned();
    let address = source(connect.as_ref().map(|c| &c.0));
    let email_text = fields
        .get("email")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let password = fields.get("password").unwrap_or_default().to_owned();
    let token = fields.get("csrf").unwrap_or_default().to_owned();
    let now = state.clock.now().unix_millis();
    let address_key = format!("ip:{address}");
    let account_key = format!("account:{email_text}");
    let pair_key = format!("account:{email_text} ip:{address}");
    let limits = &state.console.sign_in_limits;
    let failed_here = limits.recent(&pair_key, now);
    if limits.recent(&address_key, now) >= FAILURES_PER_ADDRESS
        || failed_here >= FAILURES_PER_ACCOUNT_AND_ADDRESS
        || (failed_here > 0 && limits.recent(&account_key, now) >= FAILURES_PER_ACCOUNT)
    {
        tracing::warn!(source = %address, "sign-in refused: too many failed attempts");
        return Ok(with_cookie(
            sign_in_form(
                &token,
                &next,
                false,
                Some("Too many failed sign-ins. Wait 15 minutes and try again."),
            ),
            StatusCode::TOO_MANY_REQUESTS,
            None,
        ));
    }
    let found = match Email::parse(&email_text) {
        Ok(email) => state.store.admin_by_email(&email).await?,
        Err(_) => None,
    };
    // An unknown address costs the same hashing as a known one, so timing does not tell them
    // apart.
    let stored = found
        .as_ref()
        .map_or_else(|| DECOY_HASH.clone(), |(_, hash)| hash.clone());
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .unwrap_or(false);
    let admin = match found {
        Some((admin, _)) if verified => admin,
        _ => {
            limits.record(address_key, now);
            limits.record(account_key, now);
            limits.record(pair_key, now);
            tracing::info!(source = %address, "a sign-in failed");
            return Ok(with_cookie(
                sign_in_form(
                    &token,
                    &next,
                    false,
                    Some("That e-mail address and password do not match an admin."),
                ),
                StatusCode::UNAUTHORIZED,
                None,
            ));
        }
    };
    limits.forget(&pair_key);
    let set = start_session(&state, &admin.id).await?;
    state
        .store
        .audit(
            &format!("admin:{}", admin.email),
            "console.sign_in",
            &admin.email.to_string(),
            "",
            &address,
        )
        .await?;
    let mut response = Redirect::to(&next).into_response();
    append_cookie(&mut response, &set);
    Ok(response)
}

pub fn append_cookie(response: &mut Response, set: &str) {
    if let Ok(value) = header::HeaderValue::from_str(set) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Starts a session for the admin; answers the `Set-Cookie` value that carries it.
async fn start_session(state: &AppState, admin_id: &str) -> Result<String, StoreError> {
    let secret = random_secret();
    let expires =
        Timestamp::from_unix_millis(state.clock.now().unix_millis() + SESSION_LIFETIME_MILLIS);
    state
        .store
        .create_admin_session(&tokens::hash(&secret), admin_id, &random_secret(), expires)
        .await?;
    Ok(set_cookie(
        state,
        SESSION_COOKIE,
        &secret,
        SESSION_LIFETIME_MILLIS / 1000,
    ))
}

/// Signing out ends the session on the server, not only in the browser.
pub async fn sign_out(
    State(state): State<AppState>,
    axum::Extension(session): axum::Extension<super::Session>,
) -> Result<Response, ConsoleError> {
    state.store.end_admin_session(&session.id_hash).await?;
    state
        .store
        .audit(
            &session.actor(),
            "console.sign_out",
            &session.admin.email.to_string(),
            "",
            &session.source,
        )
        .await?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    append_cookie(&mut response, &set_cookie(&state, SESSION_COOKIE, "", 0));
    Ok(response)
}

/// Prints a one-time link that creates the first owner, when the hub has no admin. Its secret
/// is stored only as a hash; the link works for a day, once.
pub async fn announce_setup_link(state: &AppState) -> Result<Option<String>, StoreError> {
    if state.store.admin_count().await? > 0 {
        return Ok(None);
    }
    let secret = random_secret();
    let expires =
        Timestamp::from_unix_millis(state.clock.now().unix_millis() + SETUP_LINK_LIFETIME_MILLIS);
    state
        .store
        .put_setup_link(&tokens::hash(&secret), expires)
        .await?;
    Ok(Some(format!(
        "{}{SETUP_PATH}?token={secret}",
        state.public_url.trim_end_matches('/')
    )))
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

pub async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> Result<Response, ConsoleError> {
    let secret = query.token.unwrap_or_default();
    if !state
        .store
        .setup_link_is_live(&tokens::hash(&secret))
        .await?
    {
        return Err(spent_link());
    }
    let (token, set) = form_token_cookie(&state, &headers);
    Ok(with_cookie(
        setup_form(&token, &secret, None),
        StatusCode::OK,
        set,
    ))
}

fn spent_link() -> ConsoleError {
    ConsoleError::new(
        StatusCode::GONE,
        "This setup link is spent or expired, or the hub has an owner already. Sign in, or \
         create an admin with `switchboard admin create EMAIL`.",
    )
}

fn setup_form(token: &str, secret: &str, error: Option<&str>) -> Markup {
    bare_page(
        "Create the owner",
        html! {
            h1 { "Create this hub's owner" }
            p { "The owner signs in to this console and manages the other admins. Choose a password of at least "
                (MIN_PASSWORD_CHARS) " characters." }
            @if let Some(error) = error {
                div.error role="alert" { p { (error) } }
            }
            form method="post" action=(SETUP_PATH) {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="token" value=(secret);
                label for="email" { "E-mail address" }
                input #email type="email" name="email" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS) required;
                button type="submit" { "Create the owner and sign in" }
            }
        },
    )
}

pub async fn setup(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    let fields = Fields::parse(&body);
    if !form_token_matches(&headers, &fields) {
        return Err(ConsoleError::forbidden(
            "the form's security token did not match: open the setup link again",
        ));
    }
    let secret = fields.get("token").unwrap_or_default().to_owned();
    let token = fields.get("csrf").unwrap_or_default().to_owned();
    let password = fields.get("password").unwrap_or_default().to_owned();
    let email = match check_new_admin(fields.get("email").unwrap_or_default(), &password) {
        Ok(email) => email,
        Err(problem) => {
            return Ok(with_cookie(
                setup_form(&token, &secret, Some(&problem)),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            ));
        }
    };
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ConsoleError::internal())?
        .map_err(|_| ConsoleError::internal())?;
    if !state.store.use_setup_link(&tokens::hash(&secret)).await? {
        return Err(spent_link());
    }
    let admin = state
        .store
        .create_admin(&email, &hash, AdminRole::Owner)
        .await?;
    let address = source(connect.as_ref().map(|c| &c.0));
    state
        .store
        .audit(
            &format!("admin:{}", admin.email),
            "admin.create",
            &admin.email.to_string(),
            "owner, through the setup link",
            &address,
        )
        .await?;
    let set = start_session(&state, &admin.id).await?;
    let mut response = Redirect::to("/console/").into_response();
    append_cookie(&mut response, &set);
    layout::flash(&state, &mut response, "Welcome. You are this hub's owner.");
    Ok(response)
}
