//! Directory Sync reading the directory groups it follows where they live (a connection's
//! directory: Entra ID, Google): one loop reads every chosen group's members, nested groups
//! expanded, and stores them; members the hub has no account of yet (joiners) are stored and
//! matched into people at once; then the scope is reconciled — leavers reset and removed,
//! joiners synced by auto-sync. The loop is woken by a platform announcing a change
//! ([`read_now`], from the relay) and runs every [`Reconciling::every`] besides, so a lost
//! announcement costs at most one interval.
//!
//! [`Reconciling::every`]: crate::scope::Reconciling::every

use std::collections::HashMap;
use std::str::FromStr;

use switchboard_core::{ConnectionId, Email};
use switchboard_platform::{GroupMember, PlatformUser};
use switchboard_store::{ScopeGroup, StoreError};

use crate::AppState;
use crate::import::{connection_context, imported_account};
use crate::scope::SCIM_SOURCE;

/// How many joiners' addresses one audit entry names; the rest are counted.
const NAMED_IN_AUDIT: usize = 20;

/// Starts the loop that reads the followed groups; it runs until the process ends.
pub fn spawn(state: AppState) {
    tokio::spawn(run(state));
}

/// Asks for the followed groups to be read now: a platform announced that members changed (or
/// that a user changed, who may have left them). Announcements that arrive while a reading
/// runs are served by one more reading; with no group followed, a reading does nothing.
pub fn read_now(state: &AppState) {
    state.scope.read_now().notify_one();
}

async fn run(state: AppState) {
    let (mut cause, mut periodic) = ("the hub started", true);
    loop {
        match read_followed_groups(&state, cause).await {
            // Whatever the groups say, the scope is reconciled now and then: a leaver whose
            // removal failed, or someone represented by another path, is caught.
            Ok(()) if periodic => crate::scope::reconcile_in_background(&state, cause),
            Ok(()) => {}
            Err(error) => {
                tracing::error!(%error, cause, "directory sync could not read the groups it follows");
            }
        }
        (cause, periodic) = tokio::select! {
            () = state.scope.read_now().notified() => ("a change the directory announced", false),
            () = tokio::time::sleep(state.scope.reconcile_every()) => ("the periodic reconciliation", true),
        };
    }
}

/// The chosen groups that live in a connection's directory.
async fn followed(state: &AppState) -> Result<Vec<ScopeGroup>, StoreError> {
    Ok(state
        .store
        .directory_scope()
        .await?
        .into_iter()
        .filter(|group| group.source != SCIM_SOURCE)
        .collect())
}

/// Reads every followed group and acts on what changed; `cause` says why (for the audit log).
pub async fn read_followed_groups(state: &AppState, cause: &str) -> Result<(), StoreError> {
    let groups = followed(state).await?;
    if groups.is_empty() {
        return Ok(());
    }
    let mut changed = false;
    let mut members: HashMap<ConnectionId, Vec<GroupMember>> = HashMap::new();
    for group in &groups {
        match read_group(state, group).await {
            Ok((connection, read)) => {
                let rows: Vec<(String, String)> = read
                    .iter()
                    .flat_map(|member| {
                        member.emails.iter().map(|email| {
                            (
                                email.as_str().to_owned(),
                                member.account.as_str().to_owned(),
                            )
                        })
                    })
                    .collect();
                changed |= state
                    .store
                    .replace_directory_members(group, &rows, state.clock.now())
                    .await?;
                members.entry(connection).or_default().extend(read);
            }
            Err(reason) => {
                tracing::warn!(source = %group.source, group = %group.group_id, %reason, "directory sync could not read a group");
                state
                    .store
                    .record_directory_read_error(group, state.clock.now(), &reason)
                    .await?;
            }
        }
    }
    let mut unmatched = 0;
    for (connection, members) in members {
        unmatched += store_joiners(state, connection, members, cause).await?;
    }
    if unmatched > 0 {
        // A joiner's accounts, new or left unlinked when they last left, make a person again.
        state.matching.match_now(&state.store).await?;
    }
    if changed || unmatched > 0 {
        crate::scope::reconcile_in_background(state, cause);
    }
    Ok(())
}

/// One group's members as its connection's directory lists them now.
async fn read_group(
    state: &AppState,
    group: &ScopeGroup,
) -> Result<(ConnectionId, Vec<GroupMember>), String> {
    let connection = ConnectionId::from_str(&group.source)
        .map_err(|_| format!("'{}' names no connection", group.source))?;
    let context = connection_context(&state.store, connection)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("connection {connection} is not connected"))?;
    let module = state
        .platforms
        .get(context.connection.platform)
        .ok_or_else(|| {
            format!(
                "{} is not configured on this hub",
                context.connection.platform.display_name()
            )
        })?;
    let members = module
        .group_members(&context, &group.group_id)
        .await
        .map_err(|error| error.to_string())?;
    Ok((connection, members))
}

/// Stores the members the connection has no active account of, described by the group's
/// listing or else looked up by address, audited with `cause`; answers how many members are
/// not matched into a person (those stored, and those whose accounts were left unlinked when
/// they last left), for whom a match is needed.
async fn store_joiners(
    state: &AppState,
    connection: ConnectionId,
    members: Vec<GroupMember>,
    cause: &str,
) -> Result<usize, StoreError> {
    let known = state.store.account_states(connection).await?;
    let unlinked = members
        .iter()
        .filter(|member| {
            known
                .get(member.account.as_str())
                .is_some_and(|account| account.active && !account.linked)
        })
        .count();
    let mut joiners: Vec<GroupMember> = members
        .into_iter()
        .filter(|member| {
            !known
                .get(member.account.as_str())
                .is_some_and(|account| account.active)
        })
        .collect();
    joiners.sort_by(|a, b| a.account.as_str().cmp(b.account.as_str()));
    joiners.dedup_by(|a, b| a.account == b.account);
    if joiners.is_empty() {
        return Ok(unlinked);
    }
    let Some(context) = connection_context(&state.store, connection).await? else {
        return Ok(unlinked);
    };
    let Some(module) = state.platforms.get(context.connection.platform).cloned() else {
        return Ok(unlinked);
    };
    let mut users: Vec<PlatformUser> = Vec::with_capacity(joiners.len());
    for joiner in joiners {
        match joiner.display_name {
            Some(display_name) => users.push(PlatformUser {
                id: joiner.account,
                display_name,
                emails: joiner.emails,
                is_bot: false,
                is_guest: false,
                deactivated: false,
            }),
            None => {
                let Some(email) = joiner.emails.first() else {
                    continue;
                };
                match module.lookup_by_email(&context, email).await {
                    Ok(Some(user)) => users.push(user),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, email = email.as_str(), "directory sync could not look up a joiner");
                    }
                }
            }
        }
    }
    if users.is_empty() {
        return Ok(unlinked);
    }
    let accounts: Vec<_> = users.iter().map(imported_account).collect();
    state
        .store
        .record_accounts(connection, context.connection.platform, &accounts)
        .await?;
    let named: Vec<&str> = users
        .iter()
        .filter_map(|user| user.emails.first().map(Email::as_str))
        .take(NAMED_IN_AUDIT)
        .collect();
    let more = users.len().saturating_sub(named.len());
    state
        .store
        .audit(
            &format!("directory: {cause}"),
            "directory.join",
            &connection.to_string(),
            &format!(
                "{} joined the directory's groups: {}{}",
                users.len(),
                named.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            "directory",
        )
        .await?;
    Ok(unlinked + users.len())
}
