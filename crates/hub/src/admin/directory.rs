//! Directory Sync's scope as the admin chooses it: which groups' members are the hub's people.

use std::str::FromStr;

use switchboard_core::ConnectionId;
use switchboard_platform::PlatformError;
use switchboard_store::ScopeGroup;

use super::{Caller, Refused};
use crate::AppState;
use crate::import::connection_context;
use crate::scope::{self, Preview, SCIM_SOURCE};

/// A group an admin may choose, where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choosable {
    pub group: ScopeGroup,
    pub name: String,
    /// In the words of where it lives ("security group", "SCIM group", …).
    pub kind: String,
    /// The platform whose directory holds it; `None` for a group provisioned through SCIM.
    pub platform: Option<String>,
}

/// Every group an admin may choose: those provisioned through SCIM, and those of every
/// connection whose platform has a directory. A connection whose groups cannot be read now is
/// named in the answer's second part, with why.
pub async fn choosable(state: &AppState) -> Result<(Vec<Choosable>, Vec<String>), Refused> {
    let mut found: Vec<Choosable> = state
        .store
        .scim_group_names()
        .await?
        .into_iter()
        .map(|(id, name)| Choosable {
            group: ScopeGroup {
                source: SCIM_SOURCE.to_owned(),
                group_id: id,
            },
            name,
            kind: "SCIM group".to_owned(),
            platform: None,
        })
        .collect();
    let mut unreadable = Vec::new();
    for connection in state.store.connections().await? {
        let Some(module) = state.platforms.get(connection.platform).cloned() else {
            continue;
        };
        let Some(context) = connection_context(&state.store, connection.id).await? else {
            continue;
        };
        match module.directory_groups(&context).await {
            Ok(groups) => found.extend(groups.into_iter().map(|group| Choosable {
                group: ScopeGroup {
                    source: connection.id.to_string(),
                    group_id: group.id,
                },
                name: group.name,
                kind: group.kind,
                platform: Some(connection.platform.display_name().to_owned()),
            })),
            Err(PlatformError::Unsupported(_)) => {}
            Err(error) => unreadable.push(format!(
                "{} ({}): {error}",
                connection.platform.display_name(),
                connection.id
            )),
        }
    }
    Ok((found, unreadable))
}

/// Checks that every group exists where it says it lives: through SCIM, or in the directory
/// of the connection its source names.
async fn known(state: &AppState, groups: &[ScopeGroup]) -> Result<(), Refused> {
    for group in groups {
        if group.source == SCIM_SOURCE {
            if state.store.scim_group(&group.group_id).await?.is_none() {
                return Err(Refused::bad_input(
                    "unknown_group",
                    format!("no SCIM group {}", group.group_id),
                ));
            }
            continue;
        }
        let unknown_source = || {
            Refused::bad_input(
                "unknown_source",
                format!(
                    "groups come from '{SCIM_SOURCE}' (groups provisioned through SCIM) or a connection's id, not '{}'",
                    group.source
                ),
            )
        };
        let connection = ConnectionId::from_str(&group.source).map_err(|_| unknown_source())?;
        let context = connection_context(&state.store, connection)
            .await?
            .ok_or_else(unknown_source)?;
        let platform = context.connection.platform.display_name();
        let module = state
            .platforms
            .get(context.connection.platform)
            .ok_or_else(|| {
                Refused::bad_input(
                    "unknown_source",
                    format!("{platform} is not configured on this hub"),
                )
            })?;
        let groups = match module.directory_groups(&context).await {
            Ok(groups) => groups,
            Err(PlatformError::Unsupported(_)) => {
                return Err(Refused::bad_input(
                    "no_directory_groups",
                    format!("{platform} has no directory groups to follow"),
                ));
            }
            Err(error) => {
                return Err(Refused::platform(
                    "directory_unreadable",
                    format!("cannot read {platform}'s groups: {error}"),
                ));
            }
        };
        if !groups.iter().any(|known| known.id == group.group_id) {
            return Err(Refused::bad_input(
                "unknown_group",
                format!("{platform} has no group {}", group.group_id),
            ));
        }
    }
    Ok(())
}

/// What choosing `groups` would do.
pub async fn preview(state: &AppState, groups: &[ScopeGroup]) -> Result<Preview, Refused> {
    known(state, groups).await?;
    Ok(scope::preview(&state.store, groups).await?)
}

/// Chooses the groups whose members are the hub's people (none: everyone), audited; the people
/// who leave are reset and removed in the background. Answers what the choice does.
pub async fn choose(
    state: &AppState,
    caller: &Caller,
    groups: Vec<ScopeGroup>,
) -> Result<Preview, Refused> {
    known(state, &groups).await?;
    let preview = scope::preview(&state.store, &groups).await?;
    state.store.set_directory_scope(&groups).await?;
    let named: Vec<String> = groups
        .iter()
        .map(|group| format!("{}:{}", group.source, group.group_id))
        .collect();
    state
        .store
        .audit(
            &caller.actor,
            "directory.update",
            "directory",
            &format!(
                "groups: {}; leaving: {}",
                if named.is_empty() {
                    "none (everyone)".to_owned()
                } else {
                    named.join(", ")
                },
                preview.leaving.len()
            ),
            &caller.source,
        )
        .await?;
    scope::reconcile_in_background(state, &format!("{} chose the groups", caller.actor));
    // The chosen directory groups are read, and their changes subscribed to, at once.
    crate::groups::read_now(state);
    state.relay.connection_changed();
    Ok(preview)
}
