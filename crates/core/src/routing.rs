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

/// One of the conversations a chat shared between several portals may answer (see
/// [`answered`]): who is on the other side, and when the portal was last written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPortal<'a> {
    /// The display names of the conversation's participants other than the writer.
    pub names: Vec<&'a str>,
    /// When its portal was last written in, by either side (microseconds); `None` if never.
    pub last_written: Option<i64>,
}

/// Which of the conversations sharing one chat a message written there answers, and its text
/// without the name that chose it: the one whose participant the text begins by naming —
/// `@Ann Lee: …`, `Ann, …`, the full name or the first name, in any case — else the one last
/// written in. A name that fits several conversations chooses none of them. `None` when there
/// are no conversations.
pub fn answered<'t>(text: &'t str, portals: &[SharedPortal<'_>]) -> Option<(usize, &'t str)> {
    let mut named: Option<(usize, usize, &'t str)> = None;
    let mut tied = false;
    for (index, portal) in portals.iter().enumerate() {
        for name in &portal.names {
            let full = name.trim();
            let first = full.split_whitespace().next().unwrap_or_default();
            for candidate in [full, first] {
                let Some(rest) = after_name(text, candidate) else {
                    continue;
                };
                let length = candidate.len();
                match named {
                    Some((_, longest, _)) if length < longest => {}
                    Some((chosen, longest, _)) if length == longest => {
                        tied |= chosen != index;
                    }
                    _ => {
                        named = Some((index, length, rest));
                        tied = false;
                    }
                }
                // The full name, when it fits, is the longest this name can give.
                break;
            }
        }
    }
    match named {
        Some((index, _, rest)) if !tied => Some((index, rest)),
        _ => portals
            .iter()
            .enumerate()
            .max_by_key(|(index, portal)| (portal.last_written, std::cmp::Reverse(*index)))
            .map(|(index, _)| (index, text)),
    }
}

/// The text after `name` when it begins with it (after an optional `@`), the name ending
/// there as a word, with the separators after it.
fn after_name<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    if name.is_empty() {
        return None;
    }
    let text = text.trim_start();
    let text = text.strip_prefix('@').unwrap_or(text);
    let head = text.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) && head.to_lowercase() != name.to_lowercase() {
        return None;
    }
    let rest = &text[name.len()..];
    if !rest.is_empty() && !rest.starts_with([':', ',', ' ', '\n', '\t']) {
        return None;
    }
    Some(rest.trim_start_matches([':', ',', ' ', '\n', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(names: &[&'static str], last_written: Option<i64>) -> SharedPortal<'static> {
        SharedPortal {
            names: names.to_vec(),
            last_written,
        }
    }

    #[test]
    fn a_message_in_a_shared_chat_answers_the_last_conversation_unless_it_names_another() {
        let portals = [
            portal(&["Ann Lee"], Some(10)),
            portal(&["Bob Stone"], Some(30)),
            portal(&["Cleo Park"], None),
        ];
        assert_eq!(answered("thanks!", &portals), Some((1, "thanks!")));
        assert_eq!(
            answered("@Ann Lee: on my way", &portals),
            Some((0, "on my way"))
        );
        assert_eq!(answered("ann, on my way", &portals), Some((0, "on my way")));
        assert_eq!(answered("Cleo hello", &portals), Some((2, "hello")));
        assert_eq!(answered("@cleo", &portals), Some((2, "")));
        // A word that only begins like a name names nobody.
        assert_eq!(
            answered("Annual report?", &portals),
            Some((1, "Annual report?"))
        );
        assert_eq!(answered("anything", &[]), None);
    }

    #[test]
    fn a_name_several_conversations_share_names_none_of_them_unless_in_full() {
        let portals = [
            portal(&["Ann Lee"], Some(10)),
            portal(&["Ann Park"], Some(5)),
            portal(&["Bob Stone"], Some(30)),
        ];
        assert_eq!(answered("Ann: hi", &portals), Some((2, "Ann: hi")));
        assert_eq!(answered("Ann Park: hi", &portals), Some((1, "hi")));
        // Never written in: the first of the ties.
        let fresh = [portal(&["Ann Lee"], None), portal(&["Bob Stone"], None)];
        assert_eq!(answered("hi", &fresh), Some((0, "hi")));
    }

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
