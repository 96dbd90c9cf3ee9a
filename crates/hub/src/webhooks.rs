//! Inbound webhooks, `/webhooks/{platform}`, verified as each platform signs them: handshakes
//! are answered (Slack checks a bot app's Request URL while the app is being created; Graph
//! validates a subscription's URL), and events are stored in the relay's inbox before the
//! delivery is acknowledged — the relay reads them afterwards, so the platform's deadline
//! (Slack: 3 s) is never spent on its work. A delivery that cannot be stored is answered 503,
//! and the platform delivers it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_core::{ConnectionId, Platform, Timestamp};
use switchboard_platform::{WebhookRequest, WebhookVerdict};

use crate::AppState;
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
    let held_subscriptions = match state
        .directory
        .subscriptions(&state.store, connection.id)
        .await
    {
        Ok(held) => held,
        Err(error) => return store_failure(error),
    };
    let request = WebhookRequest {
        headers,
        query,
        body: body.to_vec(),
        held_subscriptions,
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
                    let reason = error.to_string();
                    state
                        .webhook_health
                        .refused(&connection, state.clock.now(), &reason);
                    return (StatusCode::BAD_REQUEST, reason).into_response();
                }
            };
            state.webhook_health.accepted(connection.id);
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
            let reason = error.to_string();
            state
                .webhook_health
                .refused(&connection, state.clock.now(), &reason);
            (StatusCode::UNAUTHORIZED, reason).into_response()
        }
    }
}

/// A 503, which the platform retries later, when the database answers again.
fn store_failure(error: switchboard_store::StoreError) -> Response {
    tracing::error!(%error, "store failure receiving a webhook");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the hub's database failed; try again in a moment\n",
    )
        .into_response()
}

/// How long the hub stays quiet about a connection's refused webhooks after warning of them.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// What the hub saw of each connection's webhooks since it started. A platform whose
/// deliveries are refused loses every event it sends (a secret out of step after a
/// reconnect, a subscription the hub no longer holds), so refusals are as much the
/// connection's health as its tokens are: while the latest deliveries are refused, the
/// connection is failing. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct WebhookHealth {
    tallies: Arc<Mutex<HashMap<ConnectionId, WebhookTally>>>,
}

/// One connection's webhooks since the hub started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookTally {
    pub accepted: u64,
    pub refused: u64,
    /// Refused since the last one accepted: while above zero, deliveries are being lost.
    pub refused_since_accepted: u64,
    pub last_refused_at: Option<Timestamp>,
    pub last_refusal: Option<String>,
    warned_at: Option<Instant>,
    refused_since_warning: u64,
}

impl WebhookTally {
    pub fn failing(&self) -> bool {
        self.refused_since_accepted > 0
    }
}

impl WebhookHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, WebhookTally>> {
        // Plain counters stay consistent whatever panicked while holding them.
        self.tallies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn accepted(&self, connection: ConnectionId) {
        let mut tallies = self.lock();
        let tally = tallies.entry(connection).or_default();
        tally.accepted += 1;
        tally.refused_since_accepted = 0;
    }

    /// Counts a refused delivery, warning at most once a minute per connection.
    pub fn refused(&self, connection: &switchboard_core::Connection, at: Timestamp, reason: &str) {
        let mut tallies = self.lock();
        let tally = tallies.entry(connection.id).or_default();
        tally.refused += 1;
        tally.refused_since_accepted += 1;
        tally.refused_since_warning += 1;
        tally.last_refused_at = Some(at);
        tally.last_refusal = Some(reason.to_owned());
        metrics::counter!("switchboard_webhooks_refused_total", "platform" => connection.platform.as_str())
            .increment(1);
        if tally
            .warned_at
            .is_none_or(|warned| warned.elapsed() >= WARNING_INTERVAL)
        {
            tracing::warn!(
                connection = %connection.id,
                platform = connection.platform.as_str(),
                refused = tally.refused_since_warning,
                %reason,
                "webhooks refused: the platform's events for this connection are not arriving"
            );
            tally.warned_at = Some(Instant::now());
            tally.refused_since_warning = 0;
        }
    }

    /// A connection's tally; the default (nothing seen) when no webhook came for it yet.
    pub fn tally(&self, connection: ConnectionId) -> WebhookTally {
        self.lock().get(&connection).cloned().unwrap_or_default()
    }

    /// Forgets a connection's refusals once its credentials were replaced.
    pub fn reset(&self, connection: ConnectionId) {
        self.lock().remove(&connection);
    }
}
