//! The admin console, `/console/`: server-rendered pages (maud, escaped by default) with a
//! little progressive JavaScript, for people signed in with a password (see `auth`).
//!
//! Every request past sign-in goes through [`guard`]: it finds the session, and on a POST
//! checks the session's synchronizer token (CSRF) and refuses viewers. Actions call the same
//! application functions as the REST API and are audited as `admin:EMAIL` from the client's
//! address.

mod activity;
mod audit;
pub mod auth;
mod connections;
mod directory;
mod imports;
pub(crate) mod layout;
mod people;
mod person;
mod settings;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_store::{Admin, AdminRole, StoreError};

use crate::AppState;
use crate::admin::{Caller, Refused};

pub use auth::SignInLimits;

/// What the console keeps in memory.
#[derive(Debug, Clone, Default)]
pub struct ConsoleState {
    pub sign_in_limits: SignInLimits,
    /// The latest bulk actions and their outcomes.
    pub bulk_runs: people::BulkRuns,
}

/// The largest form the console accepts.
const MAX_FORM_BYTES: usize = 256 * 1024;

pub fn routes(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/people") }),
        )
        .route("/console/sign-out", post(auth::sign_out))
        .merge(people::routes())
        .merge(connections::routes())
        .merge(imports::routes())
        .merge(person::routes())
        .merge(activity::routes())
        .merge(directory::routes())
        .merge(settings::routes())
        .merge(audit::routes())
        .route("/console/{*unknown}", get(unknown_page))
        .layer(middleware::from_fn_with_state(state, guard));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/sign-in",
            get(auth::sign_in_page).post(auth::sign_in),
        )
        .route(auth::SETUP_PATH, get(auth::setup_page).post(auth::setup))
        .route("/console/assets/{name}", get(layout::asset))
        .merge(signed_in)
        .layer(middleware::map_response(never_cached))
}

/// Any other console address, for a signed-in admin (others are sent to sign in first, as for
/// any console page, so that the answer does not say which pages exist).
async fn unknown_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    layout::not_found_page(&state, &headers, &session, uri.path())
}

/// Console pages hold personal data and per-session tokens: never cached by the way (the hub's
/// router forbids framing them, see `http.rs`). The embedded assets are public and may be
/// cached a while.
async fn never_cached(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    response
}

/// A signed-in admin, for handlers.
#[derive(Debug, Clone)]
pub struct Session {
    pub admin: Admin,
    pub csrf: String,
    /// The hash the session is stored under.
    pub id_hash: String,
    /// Where the request came from.
    pub source: String,
}

impl Session {
    pub fn actor(&self) -> String {
        format!("admin:{}", self.admin.email)
    }

    pub fn caller(&self) -> Caller {
        Caller {
            actor: self.actor(),
            source: self.source.clone(),
        }
    }

    pub fn can_change(&self) -> bool {
        self.admin.role >= AdminRole::Admin
    }
}

/// A form's fields in order; a name may repeat (the people a bulk action selects).
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// Compares secrets in time independent of where they first differ.
pub fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Finds the session; on a POST, checks the CSRF token and the role before the handler runs.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let (id_hash, session) = match auth::session_of(&state, &parts.headers).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return if parts.method == Method::GET {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/console/", |p| p.as_str());
                let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("/console/sign-in?next={encoded}")).into_response()
            } else {
                ConsoleError::new(
                    StatusCode::UNAUTHORIZED,
                    "Your session ended. Sign in again.",
                )
                .into_response()
            };
        }
        Err(error) => return ConsoleError::from(error).into_response(),
    };
    let source = auth::source(parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>());
    let session = Session {
        admin: session.admin,
        csrf: session.csrf_token,
        id_hash,
        source,
    };
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return ConsoleError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
                .into_response();
        };
        let fields = Fields::parse(&bytes);
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|value| value.to_str().ok())
            .or_else(|| fields.get("csrf"));
        if !presented.is_some_and(|token| same_secret(&session.csrf, token)) {
            tracing::warn!(source = %session.source, path = %parts.uri.path(), "a console form without its session's CSRF token was refused");
            return ConsoleError::forbidden(
                "This form's security token is missing or wrong, so nothing was changed. Reload the page and try again.",
            )
            .into_response();
        }
        let signing_out = parts.uri.path() == "/console/sign-out";
        if !session.can_change() && !signing_out {
            return ConsoleError::forbidden(
                "Viewers cannot change anything. Ask an owner for the admin role.",
            )
            .into_response();
        }
        parts.extensions.insert(fields);
        Body::from(bytes)
    };
    parts.extensions.insert(session);
    next.run(Request::from_parts(parts, body)).await
}

/// An error page, or for scripts (`Accept: application/json`) the message as JSON.
#[derive(Debug)]
pub struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The hub failed to complete this; nothing was changed. Try again, and see the hub's log if it keeps failing.",
        )
    }
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Self::not_found(error.to_string()),
            StoreError::Conflict(_) | StoreError::LastOwner | StoreError::IllegalTransition(_) => {
                Self::new(StatusCode::CONFLICT, error.to_string())
            }
            other => {
                tracing::error!(error = %other, "store failure behind a console page");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The hub's database failed; nothing was changed. Try again shortly.",
                )
            }
        }
    }
}

impl From<Refused> for ConsoleError {
    fn from(refused: Refused) -> Self {
        Self::new(crate::http::status_of(refused.refusal), refused.message)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        layout::error_page(self.status, &self.message)
    }
}
