//! Connections: connect a platform, choose the teams an import reads, import, disconnect.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_core::{ConnectionId, ImportScope, Noun, Platform};
use switchboard_platform::{ChatPlatform, ConnectionContext, Credentials};
use switchboard_secrets::SecretString;
use switchboard_store::ImportRun;

use super::{Caller, Refused};
use crate::AppState;
use crate::connect::{ConnectError, Started};
use crate::disconnect::{DisconnectError, Outcome};
use crate::import::{self, ImportError};

impl From<ConnectError> for Refused {
    fn from(error: ConnectError) -> Self {
        let message = error.to_string();
        match error {
            ConnectError::NotConfigured(_) => Refused::conflict("platform_not_configured", message),
            ConnectError::Platform { .. } => Refused::platform("platform_error", message),
            ConnectError::UnexpectedOutcome => {
                Refused::platform("unexpected_flow_outcome", message)
            }
            ConnectError::Store(error) => Refused::from(error),
        }
    }
}

impl From<ImportError> for Refused {
    fn from(error: ImportError) -> Self {
        let message = error.to_string();
        match error {
            ImportError::UnknownConnection(_) => Refused::not_found(message),
            ImportError::Disconnected(_) => Refused::conflict("disconnected", message),
            ImportError::PlatformNotConfigured(_) => {
                Refused::conflict("platform_not_configured", message)
            }
            ImportError::NoTeamsSelected { .. } => Refused::conflict("no_teams_selected", message),
            ImportError::Store(store) => Refused::from(store),
        }
    }
}

impl From<DisconnectError> for Refused {
    fn from(error: DisconnectError) -> Self {
        let message = error.to_string();
        match error {
            DisconnectError::Unknown(_) => Refused::not_found(message),
            DisconnectError::AlreadyDisconnected(_) => Refused::conflict("disconnected", message),
            DisconnectError::Store(store) => Refused::from(store),
        }
    }
}

/// A connection's id as the API and the console spell it.
pub fn connection_id(text: &str) -> Result<ConnectionId, Refused> {
    text.parse().map_err(|error: switchboard_core::InvalidId| {
        Refused::bad_input("bad_id", error.to_string())
    })
}

/// Checks the inputs a platform's connection takes and starts connecting it: where to send the
/// admin's browser, or the connection when the platform needed no browser step. Audited once
/// connected.
pub async fn begin_connect(
    state: &AppState,
    caller: &Caller,
    platform: Platform,
    given: BTreeMap<String, String>,
) -> Result<Started, Refused> {
    let module = module(state, platform)?;
    let fields = module.connect_fields();
    let mut inputs = Credentials::default();
    for (name, value) in given {
        if !fields.iter().any(|field| field.name == name) {
            return Err(Refused::bad_input(
                "unknown_input",
                format!(
                    "{} takes no input '{name}' (it takes: {})",
                    platform.display_name(),
                    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        inputs.insert(name, SecretString::from(value));
    }
    Ok(crate::connect::begin(state, platform, inputs, &caller.actor).await?)
}

fn module(state: &AppState, platform: Platform) -> Result<Arc<dyn ChatPlatform>, Refused> {
    state.platforms.get(platform).cloned().ok_or_else(|| {
        Refused::conflict(
            "platform_not_configured",
            format!(
                "this hub has no {} module configured",
                platform.display_name()
            ),
        )
    })
}

/// A connection with its credentials, and its platform's module.
pub async fn context_and_platform(
    state: &AppState,
    id: ConnectionId,
) -> Result<(ConnectionContext, Arc<dyn ChatPlatform>), Refused> {
    let context = import::connection_context(&state.store, id)
        .await?
        .ok_or_else(|| Refused::not_found(format!("no connection with id {id}")))?;
    let module = module(state, context.connection.platform)?;
    Ok((context, module))
}

/// The teams chosen for a connection's imports, with what its platform calls a team.
pub struct ChosenTeams {
    pub team: Noun,
    pub teams: Vec<(String, String)>,
}

/// Records which of a connection's teams are imported. Audited.
pub async fn choose_teams(
    state: &AppState,
    caller: &Caller,
    id: ConnectionId,
    teams: &[String],
) -> Result<ChosenTeams, Refused> {
    let (context, platform) = context_and_platform(state, id).await?;
    let ImportScope::SelectedTeams { team: word } = platform.rules().import else {
        return Err(Refused::bad_input(
            "imports_all_users",
            format!(
                "{} imports all users; it has no teams to select",
                context.connection.platform.display_name()
            ),
        ));
    };
    let available = platform
        .list_teams(&context)
        .await
        .map_err(|error| Refused::platform("platform_error", error.to_string()))?;
    let mut chosen = Vec::new();
    for team_id in teams {
        let team = available.iter().find(|t| &t.id == team_id).ok_or_else(|| {
            Refused::bad_input(
                "unknown_team",
                format!("the connection has no {} {team_id}", word.one),
            )
        })?;
        chosen.push((team.id.clone(), team.name.clone()));
    }
    state
        .store
        .select_teams(context.connection.id, &chosen)
        .await?;
    state
        .store
        .audit(
            &caller.actor,
            "connection.select_teams",
            &context.connection.id.to_string(),
            &format!("{} {}", chosen.len(), word.counted(chosen.len())),
            &caller.source,
        )
        .await?;
    Ok(ChosenTeams {
        team: word,
        teams: chosen,
    })
}

/// Starts importing a connection's users in the background. Audited.
pub async fn import(
    state: &AppState,
    caller: &Caller,
    id: ConnectionId,
) -> Result<ImportRun, Refused> {
    let run = import::start_import(state, id).await?;
    state
        .store
        .audit(
            &caller.actor,
            "connection.import",
            &id.to_string(),
            &run.id,
            &caller.source,
        )
        .await?;
    Ok(run)
}

/// Disconnects a connection (see [`crate::disconnect`]), with each guest or bot the hub created
/// there removed first when asked. Audited, with each removal.
pub async fn disconnect(
    state: &AppState,
    caller: &Caller,
    id: ConnectionId,
    remove_representations: bool,
) -> Result<Outcome, Refused> {
    let outcome =
        crate::disconnect::disconnect(state, id, remove_representations, &caller.actor).await?;
    for person in &outcome.removed {
        state
            .store
            .audit(
                &caller.actor,
                "person.reset",
                &person.to_string(),
                "representation removed before disconnecting its platform",
                &caller.source,
            )
            .await?;
    }
    let mut detail = format!(
        "{} guests or bots removed, {} not removed; {} copies dead-lettered; {} representations failed",
        outcome.removed.len(),
        outcome.not_removed.len(),
        outcome.dead_lettered,
        outcome.failed,
    );
    if let Some(error) = &outcome.unsubscribe_error {
        detail.push_str(&format!("; subscriptions not removed: {error}"));
    }
    state
        .store
        .audit(
            &caller.actor,
            "connection.disconnect",
            &id.to_string(),
            &detail,
            &caller.source,
        )
        .await?;
    Ok(outcome)
}
