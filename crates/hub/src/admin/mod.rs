//! The admin's use cases, each audited: connect a platform, choose teams, import, disconnect,
//! choose a primary platform, sync, reset, re-prompt and remove people, retry a dead letter,
//! change the sync settings. The REST API and the console both call these and nothing below
//! them, so that both do the same thing and audit it the same way; each answers in its own
//! terms (JSON and status codes, pages and flashes) what a use case returns or refuses.
//!
//! Nothing here knows HTTP: a refusal says what kind it is ([`Refusal`]), and the API and the
//! console each map that to their own answer.

pub mod connections;
pub mod directory;
pub mod people;
pub mod relay;
pub mod settings;
pub mod sync;

use switchboard_platform::PlatformError;
use switchboard_store::StoreError;

/// Who acts, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: String,
    /// Where the request came from: an address, or the console.
    pub source: String,
}

/// What kind of refusal a use case answered, so that each caller can say it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The input is malformed or out of range.
    BadInput,
    /// The input is well-formed but cannot be acted on (a person without an account there).
    Unprocessable,
    /// What it names does not exist.
    NotFound,
    /// The current state does not allow it; nothing changed.
    Conflict,
    /// A platform asked the hub to slow down.
    RateLimited,
    /// A platform refused or failed.
    Platform,
    /// The hub's database failed; the request was not completed.
    Unavailable,
}

/// A use case's refusal: its kind, a stable code (the API's `error.code`) and a message for
/// people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct Refused {
    pub refusal: Refusal,
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    pub fn new(refusal: Refusal, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            refusal,
            code,
            message: message.into(),
        }
    }

    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Refusal::BadInput, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Refusal::NotFound, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Refusal::Conflict, code, message)
    }

    pub fn platform(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Refusal::Platform, code, message)
    }
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Refused::not_found(error.to_string()),
            StoreError::Conflict(_) => Refused::conflict("conflict", error.to_string()),
            StoreError::IllegalTransition(_) => {
                Refused::conflict("illegal_transition", error.to_string())
            }
            StoreError::InvalidConversation(_) => Refused::bad_input("invalid", error.to_string()),
            other => {
                tracing::error!(error = %other, "store failure behind an admin's request");
                Refused::new(
                    Refusal::Unavailable,
                    "store_unavailable",
                    "the hub's database failed; the request was not completed",
                )
            }
        }
    }
}

impl From<crate::sync::SyncError> for Refused {
    fn from(error: crate::sync::SyncError) -> Self {
        use crate::sync::SyncError;
        let message = error.to_string();
        match error {
            SyncError::Store(store) => Refused::from(store),
            SyncError::NoPerson(_) => Refused::not_found(message),
            SyncError::NoPrimary => Refused::conflict("no_primary", message),
            SyncError::IsPrimary(_) => Refused::conflict("is_primary", message),
            SyncError::NotConfigured(_) => Refused::conflict("platform_not_configured", message),
            SyncError::NotConnected(_) => Refused::conflict("not_connected", message),
            SyncError::Unsupported(_) => Refused::conflict("unsupported", message),
            SyncError::NoPrimaryAccount(_) => Refused::conflict("no_primary_account", message),
            SyncError::NothingToReprompt => Refused::conflict("nothing_to_reprompt", message),
            SyncError::Busy(_) => Refused::conflict("sync_in_progress", message),
            SyncError::OutOfScope => Refused::conflict("out_of_scope", message),
            SyncError::Platform(PlatformError::RateLimited { .. }) => {
                Refused::new(Refusal::RateLimited, "rate_limited", message)
            }
            SyncError::Platform(_) => Refused::platform("platform_error", message),
        }
    }
}

/// A platform named as the API and the console spell it.
pub fn platform_named(text: &str) -> Result<switchboard_core::Platform, Refused> {
    text.parse()
        .map_err(|error: switchboard_core::UnknownPlatform| {
            Refused::bad_input("bad_platform", error.to_string())
        })
}
