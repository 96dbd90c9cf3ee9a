//! Sync actions on one person: sync on a platform, reset, re-prompt. Each is audited with its
//! outcome, a refusal too; a bulk action is these, one person after another.

use std::time::Duration;

use switchboard_core::{PersonId, Platform};

use super::{Caller, Refused};
use crate::AppState;
use crate::sync::{self, SyncOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sync(Platform),
    Reset,
    Reprompt,
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acted {
    /// Where the sync on `platform` got to: never [`SyncOutcome::Failed`], which is refused.
    Synced {
        platform: Platform,
        outcome: SyncOutcome,
        /// Where the person was prompted, when they were: their primary platform.
        prompted_on: Option<Platform>,
    },
    /// The platforms whose representation was reset.
    Reset { platforms: Vec<Platform> },
    /// The platforms the person was prompted for again, on their primary platform.
    Reprompted {
        platforms: Vec<Platform>,
        prompted_on: Option<Platform>,
    },
}

impl Acted {
    /// The sync's wait for the platform's pace, and the pace in the platform's words, when it
    /// was queued.
    pub fn queued(&self) -> Option<(Duration, &str)> {
        match self {
            Acted::Synced {
                outcome: SyncOutcome::Queued { wait, pace },
                ..
            } => Some((*wait, pace)),
            _ => None,
        }
    }
}

impl Action {
    const fn audit_name(self) -> &'static str {
        match self {
            Action::Sync(_) => "person.sync",
            Action::Reset => "person.reset",
            Action::Reprompt => "person.reprompt",
        }
    }

    /// What can become of one person in this action, in the order a summary counts them.
    pub const fn outcomes(self) -> &'static [&'static str] {
        match self {
            Action::Sync(_) => &[
                "synced",
                "already_synced",
                "prompted",
                "awaiting_consent",
                "queued",
                "failed",
            ],
            Action::Reset => &["reset", "failed"],
            Action::Reprompt => &["reprompted", "failed"],
        }
    }

    /// Which of [`Action::outcomes`] an answer of [`act`] is.
    pub fn outcome(self, answer: &Result<Acted, Refused>) -> &'static str {
        match answer {
            Err(_) => "failed",
            Ok(Acted::Synced { outcome, .. }) => match outcome {
                SyncOutcome::AlreadySynced => "already_synced",
                SyncOutcome::Prompted => "prompted",
                SyncOutcome::AwaitingConsent { .. } => "awaiting_consent",
                SyncOutcome::Queued { .. } => "queued",
                SyncOutcome::Synced | SyncOutcome::Failed { .. } => "synced",
            },
            Ok(Acted::Reset { .. }) => "reset",
            Ok(Acted::Reprompted { .. }) => "reprompted",
        }
    }
}

/// Runs one action on one person and audits its outcome, whatever it is (a refusal too).
pub async fn act(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
    action: Action,
) -> Result<Acted, Refused> {
    let (detail, answer) = match action {
        Action::Sync(platform) => {
            let pacing = sync::Pacing::Queue {
                source: caller.source.clone(),
            };
            let outcome = sync::sync(state, id, platform, &caller.actor, pacing).await;
            let detail = format!("{platform}: {}", sync::describe(&outcome));
            (detail, synced(state, id, platform, outcome).await)
        }
        Action::Reset => match sync::reset(state, id, &caller.actor).await {
            Ok(platforms) => (
                format!("reset: {}", names(&platforms)),
                Ok(Acted::Reset { platforms }),
            ),
            Err(error) => (format!("refused: {error}"), Err(error.into())),
        },
        Action::Reprompt => match sync::reprompt(state, id, &caller.actor).await {
            Ok(platforms) => {
                let detail = format!("prompted for: {}", names(&platforms));
                let answer = primary_of(state, id)
                    .await
                    .map(|prompted_on| Acted::Reprompted {
                        platforms,
                        prompted_on,
                    });
                (detail, answer)
            }
            Err(error) => (format!("refused: {error}"), Err(error.into())),
        },
    };
    state
        .store
        .audit(
            &caller.actor,
            action.audit_name(),
            &id.to_string(),
            &detail,
            &caller.source,
        )
        .await?;
    answer
}

fn names(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|platform| platform.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a sync got to, or why it failed (the platform refused).
async fn synced(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    outcome: Result<SyncOutcome, sync::SyncError>,
) -> Result<Acted, Refused> {
    let outcome = outcome?;
    if let SyncOutcome::Failed { reason } = outcome {
        return Err(Refused::platform(
            "sync_failed",
            format!("{}: {reason}", platform.display_name()),
        ));
    }
    let prompted_on = if outcome == SyncOutcome::Prompted {
        primary_of(state, id).await?
    } else {
        None
    };
    Ok(Acted::Synced {
        platform,
        outcome,
        prompted_on,
    })
}

/// Where a person's prompts go: their primary platform.
async fn primary_of(state: &AppState, id: PersonId) -> Result<Option<Platform>, Refused> {
    Ok(state
        .store
        .person(id)
        .await?
        .and_then(|person| person.primary)
        .map(|primary| primary.platform))
}
