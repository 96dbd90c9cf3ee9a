//! Directory Sync's scope as the admin chooses it: which groups' members are the hub's people.

use switchboard_store::ScopeGroup;

use super::{Caller, Refused};
use crate::AppState;
use crate::scope::{self, Preview, SCIM_SOURCE};

/// Checks that every group exists where it says it lives.
async fn known(state: &AppState, groups: &[ScopeGroup]) -> Result<(), Refused> {
    for group in groups {
        if group.source != SCIM_SOURCE {
            return Err(Refused::bad_input(
                "unknown_source",
                format!(
                    "groups come from '{SCIM_SOURCE}' (groups provisioned through SCIM), not '{}'",
                    group.source
                ),
            ));
        }
        if state.store.scim_group(&group.group_id).await?.is_none() {
            return Err(Refused::bad_input(
                "unknown_group",
                format!("no SCIM group {}", group.group_id),
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
    Ok(preview)
}
