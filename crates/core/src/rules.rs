//! The per-platform rules of representation and import, as data.
//!
//! These follow the product's source documents: on Teams a person with an account is prompted
//! to authorise it and a person without one gets a guest account; on Slack a bot the hub
//! provisions represents everyone; on Webex an existing account is prompted for and a bot
//! stands in for the others; on Zoom everyone needs their own account. Google Chat is not yet
//! researched, so the hub makes no claim there: both cases are `Unsupported` until it is.

use crate::{Platform, RepresentationKind};

/// Which users an import brings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportScope {
    /// Every user of the connection.
    AllUsers,
    /// The members of the teams the admin selects.
    SelectedTeams,
}

/// How a platform represents people whose primary platform is elsewhere, and how it imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformRules {
    pub platform: Platform,
    /// The representation of a person who already has an account on this platform.
    pub with_account: RepresentationKind,
    /// The representation of a person who has no account on this platform.
    pub without_account: RepresentationKind,
    pub import: ImportScope,
}

impl PlatformRules {
    pub const fn representation(&self, has_account: bool) -> RepresentationKind {
        if has_account {
            self.with_account
        } else {
            self.without_account
        }
    }
}

pub const fn rules_for(platform: Platform) -> PlatformRules {
    use RepresentationKind::{Bot, ExistingAccount, GuestAccount, Unsupported};
    let (with_account, without_account, import) = match platform {
        Platform::Teams => (ExistingAccount, GuestAccount, ImportScope::SelectedTeams),
        Platform::Slack => (Bot, Bot, ImportScope::AllUsers),
        Platform::Webex => (ExistingAccount, Bot, ImportScope::SelectedTeams),
        Platform::Zoom => (ExistingAccount, Unsupported, ImportScope::AllUsers),
        Platform::GoogleChat => (Unsupported, Unsupported, ImportScope::AllUsers),
    };
    PlatformRules {
        platform,
        with_account,
        without_account,
        import,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RepresentationKind::*;

    #[test]
    fn the_rules_match_the_product_table() {
        let table = [
            (
                Platform::Teams,
                ExistingAccount,
                GuestAccount,
                ImportScope::SelectedTeams,
            ),
            (Platform::Slack, Bot, Bot, ImportScope::AllUsers),
            (
                Platform::Webex,
                ExistingAccount,
                Bot,
                ImportScope::SelectedTeams,
            ),
            (
                Platform::Zoom,
                ExistingAccount,
                Unsupported,
                ImportScope::AllUsers,
            ),
            (
                Platform::GoogleChat,
                Unsupported,
                Unsupported,
                ImportScope::AllUsers,
            ),
        ];
        for (platform, with, without, import) in table {
            let rules = rules_for(platform);
            assert_eq!(rules.representation(true), with, "{platform} with account");
            assert_eq!(
                rules.representation(false),
                without,
                "{platform} without account"
            );
            assert_eq!(rules.import, import, "{platform} import");
        }
    }
}
