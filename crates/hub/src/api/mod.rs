//! The REST API, `/api/v1`: JSON in and out, bearer API tokens (kept only as hashes), errors
//! with a stable code and a human message, every change written to the audit log.

pub(crate) mod connections;
pub(crate) mod directory;
pub mod openapi;
pub(crate) mod people;
pub(crate) mod relay;
pub(crate) mod sync;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_store::{StoreError, TokenPurpose};

use crate::admin::{Caller, Refused};
use crate::{AppState, tokens};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(connections::routes())
        .merge(directory::routes())
        .merge(people::routes())
        .merge(sync::routes())
        .merge(relay::routes())
        .route("/audit", axum::routing::get(audit_log))
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .layer(middleware::from_fn_with_state(state, authenticate))
        .layer(middleware::from_fn(json_errors))
}

/// The most of an error's plain text kept as its message.
const MAX_ERROR_TEXT: usize = 16 * 1024;

/// Every error of the API is JSON in [`ApiError`]'s shape, also those answered before an
/// endpoint runs, which axum answers in plain text or with no body: a method the path does not
/// take (`method_not_allowed`; axum adds `Allow` outside this layer), and whatever else no
/// endpoint gave its own code (`bad_request`, `internal_error`).
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|kind| kind.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), MAX_ERROR_TEXT)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let reason = status
        .canonical_reason()
        .unwrap_or("refused")
        .to_lowercase();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            format!("this endpoint does not take {method}; `Allow` lists the methods it takes"),
        ),
        _ if status.is_server_error() => {
            ApiError::new(status, "internal_error", text.unwrap_or(reason))
        }
        _ => ApiError::new(status, "bad_request", text.unwrap_or(reason)),
    };
    error.into_response()
}

/// A path's parameters, refused in the API's shape (`bad_id`) when one is not text (not
/// UTF-8 once percent-decoded), which axum's own `Path` answers in plain text.
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| ApiError::bad_request("bad_id", rejection.body_text()))
    }
}

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        ApiError::new(
            crate::http::status_of(refused.refusal),
            refused.code,
            refused.message,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Refused::from(error).into()
    }
}

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let presented = crate::http::bearer_token(request.headers());
    let Some(presented) = presented else {
        return unauthorised("send an API token as `Authorization: Bearer TOKEN`");
    };
    match state.store.use_api_token(&tokens::hash(presented)).await {
        Ok(Some(token)) if token.purpose != TokenPurpose::Api => unauthorised(
            "this is a SCIM token, which opens /scim/v2 only: create an API token with `switchboard token create`",
        ),
        Ok(Some(token)) => {
            let source = request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string());
            request.extensions_mut().insert(Caller {
                actor: format!("token:{}", token.name),
                source,
            });
            next.run(request).await
        }
        Ok(None) if tokens::is_prompt_link(presented) => unauthorised(
            "this is a prompt link's secret (sbp_…), not an API token (sbt_…): create a token with `switchboard token create` or in the console's settings",
        ),
        Ok(None) => unauthorised("the API token is unknown or revoked"),
        Err(error) => ApiError::from(error).into_response(),
    }
}

fn unauthorised(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorised", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn audit_log(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(query) =
        query.map_err(|rejection| ApiError::bad_request("bad_query", rejection.body_text()))?;
    let entries = state
        .store
        .audit_log(query.before, query.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({
        "entries": entries.iter().map(|e| json!({
            "id": e.id,
            "at": e.at.unix_millis(),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
            "source": e.source,
        })).collect::<Vec<_>>(),
    })))
}
