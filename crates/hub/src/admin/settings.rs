//! The sync settings as an admin changes them.

use serde::Deserialize;
use switchboard_core::PersonId;

use super::{Caller, Refused};
use crate::AppState;
use crate::settings::{MAX_PROMPT_THROTTLE_HOURS, RestrictionError, SyncSettings};

/// A change of the sync settings: what is given changes, the rest stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub auto_sync: Option<bool>,
    pub auto_prompt: Option<bool>,
    pub prompt_throttle_hours: Option<i64>,
    pub prompt_text: Option<String>,
    pub prompt_own_accounts: Option<bool>,
    pub fallback_representations: Option<bool>,
    /// Replaces the list of restricted people, by e-mail address.
    pub restricted_users: Option<Vec<String>>,
}

/// Checks and saves a change of the sync settings. Audited, with the settings it leaves.
pub async fn change_settings(
    state: &AppState,
    caller: &Caller,
    change: SettingsChange,
) -> Result<SyncSettings, Refused> {
    let mut settings = SyncSettings::load(&state.store).await?;
    if let Some(hours) = change.prompt_throttle_hours {
        if !(1..=MAX_PROMPT_THROTTLE_HOURS).contains(&hours) {
            return Err(Refused::bad_input(
                "bad_setting",
                format!("prompt_throttle_hours is between 1 and {MAX_PROMPT_THROTTLE_HOURS}"),
            ));
        }
        settings.prompt_throttle_hours = hours;
    }
    if let Some(text) = change.prompt_text {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 1_000 {
            return Err(Refused::bad_input(
                "bad_setting",
                "prompt_text is between 1 and 1,000 characters",
            ));
        }
        settings.prompt_text = text.to_owned();
    }
    let restricted = match &change.restricted_users {
        Some(emails) => Some(
            crate::settings::people_by_email(&state.store, emails)
                .await
                .map_err(|error| match error {
                    RestrictionError::Store(error) => Refused::from(error),
                    other => Refused::bad_input("bad_setting", other.to_string()),
                })?,
        ),
        None => None,
    };
    settings.auto_sync = change.auto_sync.unwrap_or(settings.auto_sync);
    settings.auto_prompt = change.auto_prompt.unwrap_or(settings.auto_prompt);
    settings.prompt_own_accounts = change
        .prompt_own_accounts
        .unwrap_or(settings.prompt_own_accounts);
    let fallback_was = settings.fallback_representations;
    settings.fallback_representations = change
        .fallback_representations
        .unwrap_or(settings.fallback_representations);
    settings.save(&state.store).await?;
    if let Some(people) = restricted {
        let ids: Vec<PersonId> = people.iter().map(|(id, _)| *id).collect();
        state.store.set_restricted_people(&ids).await?;
        settings.restricted_users = people.into_iter().map(|(_, email)| email).collect();
    }
    state
        .store
        .audit(
            &caller.actor,
            "settings.update",
            "sync",
            &settings.to_json().to_string(),
            &caller.source,
        )
        .await?;
    match (fallback_was, settings.fallback_representations) {
        // Allowed now: with auto-sync on, the people it lets the hub reach are synced.
        (false, true) => crate::sync::auto_sync_if_enabled(state),
        // No longer allowed: nobody stays reached through it.
        (true, false) => {
            let (state, actor) = (state.clone(), caller.actor.clone());
            tokio::spawn(async move {
                let cause = format!("{actor}: fallback turned off");
                match crate::sync::reset_fallbacks(&state, &cause).await {
                    Ok(count) => tracing::info!(count, "fallback representations reset"),
                    Err(error) => {
                        tracing::error!(%error, "fallback representations could not be reset");
                    }
                }
            });
        }
        _ => {}
    }
    Ok(settings)
}
