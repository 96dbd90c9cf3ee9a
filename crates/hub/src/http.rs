use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use switchboard_platform::PlatformRegistry;
use switchboard_store::Store;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub platforms: PlatformRegistry,
    pub metrics: PrometheusHandle,
    /// The hub's address as browsers and platforms reach it, for callbacks and webhooks.
    pub public_url: String,
    pub clock: std::sync::Arc<dyn switchboard_core::Clock>,
    /// The representations being synced or reset right now.
    pub syncing: crate::sync::InFlight,
    /// Wakes the relay's loops; the copies it posted lately.
    pub relay: crate::relay::Relay,
    /// The admin console's sign-in rate limits.
    pub console: crate::console::ConsoleState,
    /// The directory as the relay reads it, cached between changes.
    pub directory: crate::directory::Directory,
    /// Each connection's webhooks accepted and refused, part of its health.
    pub webhook_health: crate::webhooks::WebhookHealth,
    /// Imports running, and the matches of accounts into people they ask for.
    pub matching: crate::import::Matching,
    /// Directory Sync's reconciliations, one at a time.
    pub scope: crate::scope::Reconciling,
}

/// The status that answers a use case's refusal, in the API and in the console alike.
pub(crate) fn status_of(refusal: crate::admin::Refusal) -> StatusCode {
    use crate::admin::Refusal;
    match refusal {
        Refusal::BadInput => StatusCode::BAD_REQUEST,
        Refusal::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::NotFound => StatusCode::NOT_FOUND,
        Refusal::Conflict => StatusCode::CONFLICT,
        Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Platform => StatusCode::BAD_GATEWAY,
        Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The token a request presents as `Authorization: Bearer TOKEN` (the REST API's, SCIM's).
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The hub's HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(render_metrics))
        .route(
            crate::connect::CALLBACK_PATH,
            get(crate::callback::callback),
        )
        .route(
            "/webhooks/{platform}",
            axum::routing::post(crate::webhooks::receive),
        )
        .merge(crate::link::routes())
        .route(crate::api::openapi::PATH, get(crate::api::openapi::serve))
        .nest("/api/v1", crate::api::router(state.clone()))
        .nest(crate::scim::PATH, crate::scim::router(state.clone()))
        .merge(crate::console::routes(state.clone()))
        .layer(middleware::from_fn(record_request))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The console's pages load only the hub's own script, stylesheet and images, and reach only
/// the hub. There is no `form-action`: Chromium applies it to the redirect that follows a form,
/// and connecting a platform posts a form that leads to the platform's consent page.
const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                              img-src 'self'; connect-src 'self'; base-uri 'none'; \
                              frame-ancestors 'none'";
/// The pages a person opens from a prompt load the hub's stylesheet and nothing else (no
/// form-action, as above: their form leads to the platform's sign-in).
const PERSON_POLICY: &str =
    "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Every response says `nosniff`, so that no browser runs an API answer, a webhook's reply or
/// an error as a script or a page. The console and the pages people open from a prompt may not
/// be framed (clickjacking) and run no inline script; a prompt's link carries its secret in
/// the URL, so those pages send no `Referer` at all, while the console sends one only to
/// itself.
async fn security_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let page = if path == "/console" || path.starts_with("/console/") {
        Some((CONSOLE_POLICY, "same-origin"))
    } else if path
        .strip_prefix(crate::sync::SYNC_LINK_PATH)
        .is_some_and(|rest| rest.starts_with('/'))
        || path == crate::connect::CALLBACK_PATH
    {
        Some((PERSON_POLICY, "no-referrer"))
    } else {
        None
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some((policy, referrer)) = page {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
    }
    response
}

/// Healthy when the database answers; a 503 tells a load balancer or orchestrator otherwise.
async fn health(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ok" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "unavailable",
                    "reason": "the database does not answer",
                })),
            )
                .into_response()
        }
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Counts and times every request by route template (never by raw path, which would let
/// arbitrary URLs create unbounded metric series).
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("switchboard_http_requests_total", &labels).increment(1);
    metrics::histogram!("switchboard_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
