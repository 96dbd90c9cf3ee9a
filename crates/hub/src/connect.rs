//! Connecting platforms: the admin starts through the API or the console, the browser walks the
//! platform's consent pages, and comes back to the callback (`crate::callback`) until the
//! platform says it is done.

use switchboard_core::{Platform, Timestamp};
use switchboard_platform::{
    ChatPlatform, ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep,
    PlatformError,
};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_store::{FlowPurpose, PendingFlow, StoreError};

use crate::AppState;

/// Why connecting did not go on; nothing was saved.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("this hub has no {0} module configured")]
    NotConfigured(&'static str),
    #[error("{platform} did not complete the authorisation: {error}")]
    Platform {
        platform: &'static str,
        error: PlatformError,
    },
    #[error("the platform finished a connect flow with an account authorisation")]
    UnexpectedOutcome,
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
    crate::tokens::generate()
}

pub async fn begin(
    state: &AppState,
    platform: Platform,
    inputs: Credentials,
    actor: &str,
) -> Result<Started, ConnectError> {
    let module = state
        .platforms
        .get(platform)
        .cloned()
        .ok_or(ConnectError::NotConfigured(platform.display_name()))?;
    let flow = FlowContext {
        callback_url: callback_url(state),
        state: new_state(),
    };
    let step = module
        .begin_connect(&inputs, &flow)
        .await
        .map_err(|error| ConnectError::Platform {
            platform: platform.display_name(),
            error,
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
) -> Result<Started, ConnectError> {
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
        FlowStep::Done(FlowOutcome::Authorized { .. }) => Err(ConnectError::UnexpectedOutcome),
    }
}

/// Continues connecting after the platform's consent page sent the browser back with
/// `callback` (its query parameters), for the flow `pending` saved.
pub async fn continue_connect(
    state: &AppState,
    pending: &PendingFlow,
    module: &dyn ChatPlatform,
    connection: Option<&ConnectionContext>,
    flow: &FlowContext,
    callback: &[(String, String)],
) -> Result<Started, ConnectError> {
    let step = module
        .continue_flow(
            connection,
            &FlowState(pending.platform_state.expose_secret().to_owned()),
            flow,
            callback,
        )
        .await
        .map_err(|error| ConnectError::Platform {
            platform: pending.platform.display_name(),
            error,
        })?;
    follow(state, pending.platform, flow, step, "admin:browser").await
}
