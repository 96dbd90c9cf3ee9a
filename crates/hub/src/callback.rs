//! Where every platform's consent pages send the browser back (`/connect/callback`): the
//! admin's walk to connect a platform, an admin's approval of a bot, a person's authorisation
//! of their own account. The pages answer in words, for the person who sees them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use switchboard_platform::FlowContext;
use switchboard_store::FlowPurpose;

use crate::AppState;
use crate::connect::{self, ConnectError, Started};
use crate::pages::{Outcome, message, store_failure};
use crate::sync::{FlowEnd, SyncError};

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
        callback_url: connect::callback_url(&state),
        state: flow_state,
    };
    match pending.purpose {
        FlowPurpose::Connect => {
            let connected = connect::continue_connect(
                &state,
                &pending,
                module.as_ref(),
                context.as_ref(),
                &flow,
                &params,
            )
            .await;
            match connected {
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
                Err(ConnectError::Store(error)) => store_failure(error),
                Err(error) => message(
                    StatusCode::BAD_GATEWAY,
                    Outcome::Refused,
                    "Not connected",
                    &error.to_string(),
                ),
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
