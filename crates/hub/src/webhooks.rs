//! Inbound webhooks, `/webhooks/{platform}`, verified as each platform signs them. Today they
//! answer the platforms' handshakes (Slack checks a bot app's Request URL while the app is being
//! created); relaying the events themselves arrives with the relay, so until then events are
//! refused with 503 rather than acknowledged and lost.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_core::Platform;
use switchboard_platform::{WebhookRequest, WebhookVerdict};

use crate::AppState;
use crate::connect::store_failure;

pub async fn receive(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(platform) = platform.parse::<Platform>() else {
        return (StatusCode::NOT_FOUND, "unknown platform").into_response();
    };
    let Some(module) = state.platforms.get(platform).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            "this hub has no module for that platform",
        )
            .into_response();
    };
    let connection = match state.store.connections().await {
        Ok(all) => all.into_iter().find(|c| c.platform == platform),
        Err(error) => return store_failure(error),
    };
    let Some(connection) = connection else {
        return (StatusCode::NOT_FOUND, "that platform is not connected").into_response();
    };
    let context = match crate::import::connection_context(&state.store, connection.id).await {
        Ok(Some(context)) => context,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, "that platform is not connected").into_response();
        }
        Err(error) => return store_failure(error),
    };
    let request = WebhookRequest {
        headers,
        query,
        body: body.to_vec(),
    };
    match module.verify_webhook(&context, &request) {
        Ok(WebhookVerdict::Challenge(challenge)) => (StatusCode::OK, challenge).into_response(),
        Ok(WebhookVerdict::Events) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this hub does not relay events yet",
        )
            .into_response(),
        Err(error) => {
            tracing::debug!(platform = platform.as_str(), %error, "refused a webhook");
            (StatusCode::UNAUTHORIZED, error.to_string()).into_response()
        }
    }
}
