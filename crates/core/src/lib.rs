//! The domain of Switchboard: people, their accounts on chat platforms, how each person is
//! represented on their secondary platforms, and the sync state machine that governs it.
//!
//! Invariant: this crate does no I/O, no async and no SQL. It takes time and identifiers as
//! inputs (see [`Clock`]), so every rule here is a pure function that tests can drive exhaustively.

mod account;
mod clock;
mod connection;
mod conversation;
mod email;
mod ids;
mod matching;
mod person;
mod platform;
mod representation;
pub mod rich_text;
mod routing;
mod rules;
mod scope;

pub use account::{Account, AccountKind};
pub use clock::{Clock, Timestamp};
pub use connection::Connection;
pub use conversation::{Conversation, ConversationKind, InvalidConversation, Portal};
pub use email::{Email, InvalidEmail};
pub use ids::{
    AccountId, ConnectionId, ConversationId, ExternalChatId, ExternalTenantId, ExternalUserId,
    InvalidId, PersonId, PortalId,
};
pub use matching::{
    Match, MatchCandidate, MatchedPerson, PersonRef, Reconciliation, match_accounts, reconcile,
};
pub use person::{ChosenBy, Person, Primary, PrimaryChoice, primary_choice};
pub use platform::{Platform, UnknownPlatform};
pub use representation::{
    IllegalTransition, Representation, RepresentationKind, SyncEvent, SyncStatus, SyncStatusCode,
    Transition, UnknownName,
};
pub use rich_text::{Block, Inline, Mention, RichText};
pub use routing::{Destinations, Participant, SharedPortal, Unreached, answered, destinations};
pub use rules::{
    Abilities, Authoriser, ImportScope, Noun, PlatformRules, PlatformWords, RepresentationRule,
};
pub use scope::{Scope, ScopedPerson, leavers};
