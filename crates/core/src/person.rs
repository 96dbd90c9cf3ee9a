use std::collections::BTreeSet;

use crate::{Email, PersonId, Platform};

/// One human of the organisation, whatever platforms they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub display_name: String,
    pub email: Email,
    /// The platform the person chats from; `None` until chosen (see [`primary_choice`]).
    pub primary: Option<Primary>,
}

/// A person's primary platform and who chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Primary {
    pub platform: Platform,
    pub chosen_by: ChosenBy,
}

/// Who chose a primary platform. An automatic choice stands until someone confirms or changes
/// it: when a person turns up on a second platform they keep chatting from the first, and the
/// admin is asked to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChosenBy {
    /// The hub, because the person was on one platform only.
    Automatic,
    Admin,
    /// The person, in the prompt flow.
    Person,
}

impl ChosenBy {
    pub const ALL: [ChosenBy; 3] = [ChosenBy::Automatic, ChosenBy::Admin, ChosenBy::Person];

    pub const fn as_str(self) -> &'static str {
        match self {
            ChosenBy::Automatic => "automatic",
            ChosenBy::Admin => "admin",
            ChosenBy::Person => "person",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What the hub should do about a person's primary platform, given where they have accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryChoice {
    /// The person exists on one platform only: that is their primary, no one needs to choose.
    Automatic(Platform),
    /// The person exists on several platforms: the admin (or the person, in the prompt flow)
    /// chooses among these.
    ChooseAmong(BTreeSet<Platform>),
    /// The person has no active account anywhere: nothing to choose from.
    NoAccounts,
}

/// Decides how a person's primary platform is set from the platforms they have accounts on.
pub fn primary_choice(platforms: impl IntoIterator<Item = Platform>) -> PrimaryChoice {
    let platforms: BTreeSet<Platform> = platforms.into_iter().collect();
    let mut iter = platforms.iter();
    match (iter.next(), iter.next()) {
        (None, _) => PrimaryChoice::NoAccounts,
        (Some(&only), None) => PrimaryChoice::Automatic(only),
        (Some(_), Some(_)) => PrimaryChoice::ChooseAmong(platforms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_platform_is_chosen_automatically() {
        assert_eq!(
            primary_choice([Platform::Teams, Platform::Teams]),
            PrimaryChoice::Automatic(Platform::Teams)
        );
    }

    #[test]
    fn several_platforms_ask_for_a_choice() {
        assert_eq!(
            primary_choice([Platform::Teams, Platform::Slack]),
            PrimaryChoice::ChooseAmong(BTreeSet::from([Platform::Slack, Platform::Teams]))
        );
    }

    #[test]
    fn no_platform_means_nothing_to_choose() {
        assert_eq!(primary_choice([]), PrimaryChoice::NoAccounts);
    }
}
