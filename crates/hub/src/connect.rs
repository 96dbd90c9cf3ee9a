//! Connecting platforms: the admin starts through the API, the browser walks the platform's
//! consent pages, and comes back to `/connect/callback` until the platform says it is done.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use switchboard_core::{Platform, Timestamp};
use switchboard_platform::{Credentials, FlowContext, FlowOutcome, FlowState, FlowStep};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_store::{FlowPurpose, PendingFlow, StoreError};

use crate::AppState;
use crate::api::ApiError;
use crate::pages::{Outcome, message, store_failure};
use crate::sync::{FlowEnd, SyncError};

/// How long an admin or person has to finish a consent page.
const FLOW_LIFETIME_MILLIS: i64 = 30 * 60 * 1000;

pub const CALLBACK_PATH: &str = "/connect/callback";

/// How a connect attempt ended, or where the browser goes next.
pub enum Started {
    Redirect {
        url: String,
    },
    Connected {
        connection: switchboard_core::Connection,
    },
}

pub fn callback_url(state: &AppState) -> String {
    callback_url_for(&state.public_url)
}

/// The callback URL of a hub reached at `public_url`.
pub fn callback_url_for(public_url: &str) -> String {
    format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/'))
}

/// An unguessable value for a flow's `state` parameter.
fn new_state() -> String {
    crate::api::tokens::generate()
}

pub async fn begin(
    state: &AppState,
    platform: Platform,
    inputs: Credentials,
    actor: &str,
) -> Result<Started, ApiError> {
    let module = state.platforms.get(platform).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "platform_not_configured",
            format!(
                "this hub has no {} module configured",
                platform.display_name()
            ),
        )
    })?;
    let flow = FlowContext {
        callback_url: callback_url(state),
        state: new_state(),
    };
    let step = module
        .begin_connect(&inputs, &flow)
        .await
        .map_err(|error| {
            ApiError::new(StatusCode::BAD_GATEWAY, "platform_error", error.to_string())
        })?;
    follow(state, platform, &flow, step, actor).await
}

/// A new grant's credentials, but for those the platform keeps across reconnects (see
/// [`switchboard_platform::ChatPlatform::kept_on_reconnect`]) where the connection already has
/// them: its event subscriptions go on being verified with what they were made with.
async fn reconnected_secrets(
    state: &AppState,
    platform: Platform,
    connection: switchboard_core::ConnectionId,
    granted: &Credentials,
) -> Result<Vec<(String, SecretString)>, StoreError> {
    let kept = state
        .platforms
        .get(platform)
        .map_or(&[][..], |module| module.kept_on_reconnect());
    let mut secrets: Vec<(String, SecretString)> = granted
        .iter()
        .map(|(name, secret)| (name.to_owned(), secret.clone()))
        .collect();
    if kept.is_empty() {
        return Ok(secrets);
    }
    for (name, held) in state.store.secrets(connection).await? {
        if !kept.contains(&name.as_str()) {
            continue;
        }
        match secrets.iter_mut().find(|(granted, _)| *granted == name) {
            Some((_, secret)) => *secret = held,
            None => secrets.push((name, held)),
        }
    }
    Ok(secrets)
}

async fn follow(
    state: &AppState,
    platform: Platform,
    flow: &FlowContext,
    step: FlowStep,
    actor: &str,
) -> Result<Started, ApiError> {
    match step {
        FlowStep::Redirect {
            url,
            state: flow_state,
        } => {
            state
                .store
                .save_flow(&PendingFlow {
                    state: flow.state.clone(),
                    purpose: FlowPurpose::Connect,
                    platform,
                    connection_id: None,
                    person_id: None,
                    platform_state: SecretString::from(flow_state.0),
                    url: None,
                    expires_at: Timestamp::from_unix_millis(
                        state.clock.now().unix_millis() + FLOW_LIFETIME_MILLIS,
                    ),
                })
                .await?;
            Ok(Started::Redirect { url })
        }
        FlowStep::Done(FlowOutcome::Connected {
            tenant,
            display_name,
            credentials,
        }) => {
            let connection = match state.store.connection_by_tenant(platform, &tenant).await? {
                Some(existing) => existing,
                None => {
                    state
                        .store
                        .create_connection(platform, &tenant, &display_name)
                        .await?
                }
            };
            let secrets = reconnected_secrets(state, platform, connection.id, &credentials).await?;
            state
                .store
                .replace_secrets(connection.id, &secrets, credentials.expires_at())
                .await?;
            state.webhook_health.reset(connection.id);
            state.relay.connection_changed();
            state
                .store
                .audit(
                    actor,
                    "connection.connect",
                    &connection.id.to_string(),
                    &format!("{} {}", platform.as_str(), tenant),
                    "browser",
                )
                .await?;
            tracing::info!(platform = platform.as_str(), %tenant, "platform connected");
            Ok(Started::Connected { connection })
        }
        FlowStep::Done(FlowOutcome::Authorized { .. }) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "unexpected_flow_outcome",
            "the platform finished a connect flow with an account authorisation",
        )),
    }
}

/// Where every platform's consent pages send the browser back.
pub async fn callback(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let Some(flow_state) = params
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
    else {
        return message(
            StatusCode::BAD_REQUEST,
            Outcome::Refused,
            "Start again",
            "This page needs the state the platform sends back. Start again from your link or \
             from the console.",
        );
    };
    let pending = match state.store.take_flow(&flow_state).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return message(
                StatusCode::BAD_REQUEST,
                Outcome::Refused,
                "This sign-in has expired",
                "It took too long, or this page was already used. Start again from your link or \
                 from the console.",
            );
        }
        Err(error) => return store_failure(error),
    };
    let Some(module) = state.platforms.get(pending.platform).cloned() else {
        return message(
            StatusCode::CONFLICT,
            Outcome::Refused,
            "Not available",
            "This hub no longer has that platform's module configured.",
        );
    };
    let context = match pending.connection_id {
        Some(id) => match crate::import::connection_context(&state.store, id).await {
            Ok(context) => context,
            Err(error) => return store_failure(error),
        },
        None => None,
    };
    let flow = FlowContext {
        callback_url: callback_url(&state),
        state: flow_state,
    };
    match pending.purpose {
        FlowPurpose::Connect => {
            let step = module
                .continue_flow(
                    context.as_ref(),
                    &FlowState(pending.platform_state.expose_secret().to_owned()),
                    &flow,
                    &params,
                )
                .await;
            let step = match step {
                Ok(step) => step,
                Err(error) => {
                    return message(
                        StatusCode::BAD_GATEWAY,
                        Outcome::Refused,
                        "Not connected",
                        &format!(
                            "{} did not complete the authorisation: {error}",
                            pending.platform.display_name()
                        ),
                    );
                }
            };
            match follow(&state, pending.platform, &flow, step, "admin:browser").await {
                Ok(Started::Redirect { url }) => Redirect::to(&url).into_response(),
                Ok(Started::Connected { connection }) => message(
                    StatusCode::OK,
                    Outcome::Done,
                    "Connected",
                    &format!(
                        "Connected {} ({}). You can close this page.",
                        connection.display_name,
                        connection.platform.display_name()
                    ),
                ),
                Err(error) => error.into_response(),
            }
        }
        FlowPurpose::Consent | FlowPurpose::Authorize => {
            let end = crate::sync::finish_flow(
                &state,
                &pending,
                &flow,
                module.as_ref(),
                context.as_ref(),
                &params,
            )
            .await;
            match end {
                Ok(FlowEnd::Redirect(url)) => Redirect::to(&url).into_response(),
                Ok(FlowEnd::Synced(platform)) => message(
                    StatusCode::OK,
                    Outcome::Done,
                    "Synced",
                    &format!(
                        "{} is now linked. You can close this page.",
                        platform.display_name()
                    ),
                ),
                Ok(FlowEnd::AlreadyLinked(platform)) => message(
                    StatusCode::CONFLICT,
                    Outcome::Done,
                    "Already linked",
                    &format!(
                        "Your {} account is already linked: there is nothing left to do. You \
                         can close this page.",
                        platform.display_name()
                    ),
                ),
                Ok(FlowEnd::Busy(platform)) => message(
                    StatusCode::CONFLICT,
                    Outcome::Refused,
                    "Being linked",
                    &format!(
                        "Your {} account is being linked right now. Follow your link again in \
                         a moment.",
                        platform.display_name()
                    ),
                ),
                Ok(FlowEnd::Failed(reason)) => message(
                    StatusCode::BAD_GATEWAY,
                    Outcome::Refused,
                    "Not linked",
                    &format!(
                        "{} did not complete the authorisation: {reason}",
                        pending.platform.display_name()
                    ),
                ),
                Err(SyncError::Store(error)) => store_failure(error),
                Err(error) => message(
                    StatusCode::BAD_GATEWAY,
                    Outcome::Refused,
                    "Not linked",
                    &error.to_string(),
                ),
            }
        }
    }
}
