use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use switchboard_sim_kit::faults::{MAX_INSPECTED_BODY, channel_argument};
use switchboard_sim_kit::{FaultDecision, Faults, LogEntry, LogKind, RequestLog, SimPlatform};

/// The platform's routes behind the fault rules, answered in the platform's own error shapes.
pub fn with_faults(platform: Arc<dyn SimPlatform>, faults: Arc<Faults>) -> Router {
    platform
        .clone()
        .router()
        .layer(middleware::from_fn_with_state((platform, faults), inject))
}

async fn inject(
    State((platform, faults)): State<(Arc<dyn SimPlatform>, Arc<Faults>)>,
    request: Request,
    next: Next,
) -> Response {
    let (request, channel) = if faults.targets_channels() {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_INSPECTED_BODY).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let channel = channel_argument(parts.uri.query(), content_type, &bytes);
        (Request::from_parts(parts, Body::from(bytes)), channel)
    } else {
        (request, None)
    };
    let mut response = match faults.for_request(request.uri().path(), channel.as_deref()) {
        FaultDecision::Pass { delay } => {
            pause(delay).await;
            return next.run(request).await;
        }
        FaultDecision::Fail { delay, status } => {
            pause(delay).await;
            platform
                .failure(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
        }
        FaultDecision::Throttle { delay, retry_after } => {
            pause(delay).await;
            platform.throttled(retry_after)
        }
    };
    response.extensions_mut().insert(InjectedFault);
    response
}

/// Waits out injected latency. A zero delay must not reach the timer: Tokio's timer rounds up to
/// the next millisecond, which would cap every connection at about a thousand requests a second.
async fn pause(delay: std::time::Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Marks a response the fault rules produced, for the request log.
#[derive(Clone, Copy)]
struct InjectedFault;

/// Logs every request with its status and duration.
pub async fn record(State(log): State<Arc<RequestLog>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The path only: query strings may carry tokens (Slack accepts `token=`).
    let target = request.uri().path().to_owned();
    let response = next.run(request).await;
    let injected = response.extensions().get::<InjectedFault>().is_some();
    log.record(LogEntry {
        seq: 0,
        at_ms: 0,
        kind: LogKind::Request,
        method,
        target,
        status: response.status().as_u16(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        note: if injected {
            "injected fault".to_owned()
        } else {
            String::new()
        },
    });
    response
}
