//! Inbound webhooks, `/webhooks/{platform}`, verified as each platform signs them: handshakes
//! are answered (Slack checks a bot app's Request URL while the app is being created; Graph
//! validates a subscription's URL), and events are stored in the relay's inbox before the
//! delivery is acknowledged — the relay reads them afterwards, so the platform's deadline
//! (Slack: 3 s) is never spent on its work. A delivery that cannot be stored is answered 503,
//! and the platform delivers it again.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_core::Platform;
use switchboard_platform::{WebhookRequest, WebhookVerdict};

use crate::AppState;
use crate::connect::store_failure;
use crate::relay::{Door, is_own_post};

pub async fn receive(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_micros = crate::clock::wall_clock_micros();
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
    let connection = match state.directory.connection_on(&state.store, platform).await {
        Ok(connection) => connection,
        Err(error) => return store_failure(error),
    };
    let Some(connection) = connection else {
        return (StatusCode::NOT_FOUND, "that platform is not connected").into_response();
    };
    let mut context = match state.directory.context(&state.store, connection.id).await {
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
    if let Some(name) = module.webhook_secret_name(&request) {
        match state
            .directory
            .webhook_secret(&state.store, connection.id, &name)
            .await
        {
            Ok(Some(secret)) => context.credentials.insert(name, secret),
            Ok(None) => {}
            Err(error) => return store_failure(error),
        }
    }
    match module.verify_webhook(&context, &request) {
        Ok(WebhookVerdict::Challenge(challenge)) => (StatusCode::OK, challenge).into_response(),
        Ok(WebhookVerdict::Events) => {
            let envelopes = match module.split_webhook(&request) {
                Ok(envelopes) => envelopes,
                Err(error) => {
                    tracing::debug!(platform = platform.as_str(), %error, "refused a webhook");
                    return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
                }
            };
            if let Some(span) = module.redelivery_span(&request) {
                let span = i64::try_from(span.as_micros()).unwrap_or(i64::MAX);
                state
                    .relay
                    .redelivered(connection.id, received_micros.saturating_sub(span));
            }
            // The hub's own posts coming back are acknowledged without being stored.
            let mut items: Vec<(&str, &str)> = Vec::with_capacity(envelopes.len());
            for envelope in &envelopes {
                match is_own_post(
                    &state,
                    module.as_ref(),
                    connection.id,
                    envelope,
                    Door::Webhook,
                )
                .await
                {
                    Ok(true) => {}
                    Ok(false) => items.push((&envelope.event_id, &envelope.payload)),
                    Err(error) => return store_failure(error),
                }
            }
            if items.is_empty() {
                return StatusCode::OK.into_response();
            }
            match state
                .store
                .store_inbound(connection.id, &items, received_micros)
                .await
            {
                Ok(stored) => {
                    metrics::counter!("switchboard_relay_events_received_total", "platform" => platform.as_str())
                        .increment(stored as u64);
                    if stored > 0 {
                        state.relay.inbox_filled();
                    }
                    StatusCode::OK.into_response()
                }
                Err(error) => {
                    tracing::warn!(platform = platform.as_str(), %error, "cannot store a webhook's events");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "cannot store the events now",
                    )
                        .into_response()
                }
            }
        }
        Err(error) => {
            tracing::debug!(platform = platform.as_str(), %error, "refused a webhook");
            (StatusCode::UNAUTHORIZED, error.to_string()).into_response()
        }
    }
}
