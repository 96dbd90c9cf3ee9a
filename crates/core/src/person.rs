use std::collections::BTreeSet;

use crate::{Email, PersonId, Platform};

/// One human of the organisation, whatever platforms they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub display_name: String,
    pub email: Email,
    /// The platform the person chats from; `None` until chosen (see [`primary_choice`]).
    pub primary: Option<Platform>,
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
