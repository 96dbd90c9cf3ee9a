//! Where a message goes: the relay's routing decisions, as pure functions.
//!
//! A message written on one platform (its *origin*) reaches every other participant of the
//! conversation on their primary platform. Participants whose primary platform is the origin
//! read it there already; everyone else gets a copy in the conversation's portal on their
//! primary platform, posted as the sender's representation there. One copy per platform serves
//! every participant on it.

use std::collections::BTreeSet;

use crate::{PersonId, Platform};

/// A participant of a conversation, as routing sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    pub person: PersonId,
    /// `None` while nobody chose a primary platform for a person on several platforms.
    pub primary: Option<Platform>,
}

/// Why a participant gets no copy of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreached {
    /// The person is on several platforms and has no primary platform yet.
    NoPrimary(PersonId),
}

/// The platforms that need a copy of a message `sender` wrote on `origin`, and the
/// participants the message cannot reach yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Destinations {
    pub platforms: BTreeSet<Platform>,
    pub unreached: Vec<Unreached>,
}

impl Destinations {
    /// Whether the conversation is one the hub has nothing to do for: everybody reads it
    /// where it was written.
    pub fn is_native(&self) -> bool {
        self.platforms.is_empty() && self.unreached.is_empty()
    }
}

/// See the module documentation. The sender gets no copy of their own message, wherever their
/// primary platform is: they wrote it where they chose to.
pub fn destinations(
    sender: PersonId,
    origin: Platform,
    participants: &[Participant],
) -> Destinations {
    let mut found = Destinations::default();
    for participant in participants.iter().filter(|p| p.person != sender) {
        match participant.primary {
            Some(platform) if platform == origin => {}
            Some(platform) => {
                found.platforms.insert(platform);
            }
            None => found
                .unreached
                .push(Unreached::NoPrimary(participant.person)),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(n: u128) -> PersonId {
        PersonId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn on(n: u128, primary: Option<Platform>) -> Participant {
        Participant {
            person: person(n),
            primary,
        }
    }

    #[test]
    fn a_direct_message_across_platforms_gets_one_copy() {
        let found = destinations(
            person(1),
            Platform::Slack,
            &[on(1, Some(Platform::Slack)), on(2, Some(Platform::Teams))],
        );
        assert_eq!(found.platforms, BTreeSet::from([Platform::Teams]));
        assert!(found.unreached.is_empty());
    }

    #[test]
    fn a_chat_where_everyone_is_at_home_is_native() {
        let found = destinations(
            person(1),
            Platform::Teams,
            &[on(1, Some(Platform::Slack)), on(2, Some(Platform::Teams))],
        );
        assert!(
            found.is_native(),
            "the sender's own primary does not matter: {found:?}"
        );
    }

    #[test]
    fn a_mixed_group_gets_one_copy_per_other_platform() {
        let found = destinations(
            person(1),
            Platform::Slack,
            &[
                on(1, Some(Platform::Slack)),
                on(2, Some(Platform::Slack)),
                on(3, Some(Platform::Teams)),
                on(4, Some(Platform::Teams)),
                on(5, Some(Platform::Webex)),
                on(6, None),
            ],
        );
        assert_eq!(
            found.platforms,
            BTreeSet::from([Platform::Teams, Platform::Webex])
        );
        assert_eq!(found.unreached, vec![Unreached::NoPrimary(person(6))]);
        assert!(!found.is_native());
    }
}
