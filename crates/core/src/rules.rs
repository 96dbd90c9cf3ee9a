//! What a platform declares about itself, and the pure decisions the hub takes over those
//! declarations.
//!
//! Each platform module declares its [`PlatformRules`]: which users an import brings in, how a
//! person is represented there with and without an account of their own, what each of those
//! representations can do, and the platform's own words for what the hub shows. Code outside a
//! platform's module reads these and never asks which platform it is talking to.

use crate::RepresentationKind;

/// Which users an import brings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportScope {
    /// Every user of the connection.
    AllUsers,
    /// The members of the teams the admin selects, with what the platform calls a team.
    SelectedTeams { team: Noun },
}

impl ImportScope {
    /// The stable name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            ImportScope::AllUsers => "all_users",
            ImportScope::SelectedTeams { .. } => "selected_teams",
        }
    }
}

/// A noun in a platform's own words, singular and plural ("workspace", "workspaces").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noun {
    pub one: &'static str,
    pub many: &'static str,
}

impl Noun {
    /// The singular or the plural, as `count` requires.
    pub const fn counted(&self, count: usize) -> &'static str {
        if count == 1 { self.one } else { self.many }
    }
}

/// What a platform calls the things the hub shows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformWords {
    /// One connected instance of the platform: "workspace", "tenant", "organisation", "account".
    pub connection: Noun,
}

/// What a representation can do when the relay acts as it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Abilities {
    /// Edit a message it posted.
    pub edit: bool,
    /// Delete a message it posted.
    pub delete: bool,
    /// Add and remove reactions.
    pub react: bool,
    /// Reply in a message's thread, natively (not as a quote of the parent).
    pub thread: bool,
    /// Mention people so that the platform notifies them.
    pub mention: bool,
    /// Post files.
    pub file: bool,
}

impl Abilities {
    pub const NONE: Abilities = Abilities {
        edit: false,
        delete: false,
        react: false,
        thread: false,
        mention: false,
        file: false,
    };

    /// The abilities' names with whether each is present, in a fixed order (for listings).
    pub const fn named(&self) -> [(&'static str, bool); 6] {
        [
            ("edit", self.edit),
            ("delete", self.delete),
            ("react", self.react),
            ("thread", self.thread),
            ("mention", self.mention),
            ("file", self.file),
        ]
    }
}

/// Who agrees that the hub acts as a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authoriser {
    /// The person, through a prompt and its "Sync now" link: their sync is pending until they
    /// authorise their own account.
    Owner,
    /// The admin, once for the whole connection (an installed app, a domain-wide delegation):
    /// the hub creates or takes over the representation at once, with no prompt.
    Admin,
}

impl Authoriser {
    /// The stable name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Authoriser::Owner => "owner",
            Authoriser::Admin => "admin",
        }
    }
}

/// How a person is represented on a platform in one case (with or without an account there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepresentationRule {
    pub kind: RepresentationKind,
    /// The sync type the console shows for it, in the platform's words ("bot", "guest account").
    pub called: Noun,
    /// What the relay can do acting as it.
    pub abilities: Abilities,
    /// Who must agree before the hub acts as it.
    pub authorised_by: Authoriser,
}

/// What a platform module declares about itself: how it imports, how it represents people
/// whose primary platform is elsewhere, and its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformRules {
    pub import: ImportScope,
    /// The representation of a person who already has an account on this platform.
    pub with_account: RepresentationRule,
    /// The representation of a person who has no account on this platform.
    pub without_account: RepresentationRule,
    /// How a person with no account here may still be reached where `without_account` cannot
    /// represent them, when the admin allows it: not natively, through something of the hub's
    /// that relays for many people under their names (Zoom's chatbot). `None` when the
    /// platform offers nothing of the kind.
    pub fallback: Option<RepresentationRule>,
    pub words: PlatformWords,
}

impl PlatformRules {
    /// The rule that applies to a person who has (or has not) an account on this platform.
    pub const fn rule(&self, has_account: bool) -> &RepresentationRule {
        if has_account {
            &self.with_account
        } else {
            &self.without_account
        }
    }

    /// The kind of representation a person gets, given whether they have an account here.
    pub const fn representation(&self, has_account: bool) -> RepresentationKind {
        self.rule(has_account).kind
    }

    /// The rule that applies to a person who has (or has not) an account here, when the admin
    /// does (or does not) allow the platform's fallback for people it cannot represent.
    pub const fn rule_allowing(&self, has_account: bool, fallback: bool) -> &RepresentationRule {
        match (&self.fallback, fallback) {
            (Some(rule), true)
                if !has_account
                    && matches!(self.without_account.kind, RepresentationKind::Unsupported) =>
            {
                rule
            }
            _ => self.rule(has_account),
        }
    }

    /// The kind of representation a person gets (see [`PlatformRules::rule_allowing`]).
    pub const fn representation_allowing(
        &self,
        has_account: bool,
        fallback: bool,
    ) -> RepresentationKind {
        self.rule_allowing(has_account, fallback).kind
    }

    /// Whether representations of `kind` here are the fallback: not native.
    pub fn is_fallback(&self, kind: RepresentationKind) -> bool {
        self.fallback.is_some_and(|rule| rule.kind == kind)
            && self.with_account.kind != kind
            && self.without_account.kind != kind
    }

    /// Whether a representation of `kind` here waits for its owner to authorise it through a
    /// prompt, rather than being synced at once.
    pub fn prompted(&self, kind: RepresentationKind) -> bool {
        kind == RepresentationKind::ExistingAccount
            && self
                .rule_of(kind)
                .is_some_and(|rule| rule.authorised_by == Authoriser::Owner)
    }

    /// The rule this platform declares for representations of `kind`, if any case uses it.
    pub fn rule_of(&self, kind: RepresentationKind) -> Option<&RepresentationRule> {
        [&self.with_account, &self.without_account]
            .into_iter()
            .chain(&self.fallback)
            .find(|rule| rule.kind == kind)
    }

    /// What the console calls a representation of `kind` here: the platform's own word when it
    /// declares the kind, else the kind's general name.
    pub fn called(&self, kind: RepresentationKind) -> Noun {
        self.rule_of(kind)
            .map_or_else(|| kind.general_name(), |rule| rule.called)
    }

    /// What the hub itself creates on this platform to represent people (guests, bots), in the
    /// platform's words; `None` when it creates nothing there (a fallback creates nothing: it
    /// is something of the hub's that relays for many).
    pub fn created_by_hub(&self) -> Option<Noun> {
        [&self.without_account, &self.with_account]
            .into_iter()
            .find(|rule| rule.kind.created_by_hub())
            .map(|rule| rule.called)
    }

    /// What a representation of `kind` can do here; nothing when the platform does not declare
    /// the kind.
    pub fn abilities(&self, kind: RepresentationKind) -> Abilities {
        self.rule_of(kind)
            .map_or(Abilities::NONE, |rule| rule.abilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RepresentationKind::*;

    const ALL: Abilities = Abilities {
        edit: true,
        delete: true,
        react: true,
        thread: true,
        mention: true,
        file: true,
    };

    fn rules(with: RepresentationKind, without: RepresentationKind) -> PlatformRules {
        let rule = |kind, one, many| RepresentationRule {
            kind,
            called: Noun { one, many },
            abilities: ALL,
            authorised_by: if kind == ExistingAccount {
                Authoriser::Owner
            } else {
                Authoriser::Admin
            },
        };
        PlatformRules {
            import: ImportScope::AllUsers,
            with_account: rule(with, "own account", "own accounts"),
            without_account: if without == Unsupported {
                RepresentationRule {
                    kind: Unsupported,
                    called: Unsupported.general_name(),
                    abilities: Abilities::NONE,
                    authorised_by: Authoriser::Admin,
                }
            } else {
                rule(without, "helper", "helpers")
            },
            fallback: None,
            words: PlatformWords {
                connection: Noun {
                    one: "site",
                    many: "sites",
                },
            },
        }
    }

    #[test]
    fn the_rule_follows_whether_the_person_has_an_account() {
        let declared = rules(ExistingAccount, GuestAccount);
        assert_eq!(declared.representation(true), ExistingAccount);
        assert_eq!(declared.representation(false), GuestAccount);
    }

    #[test]
    fn words_are_the_platforms_own_and_general_otherwise() {
        let declared = rules(ExistingAccount, Bot);
        assert_eq!(declared.called(Bot).one, "helper");
        assert_eq!(declared.called(GuestAccount), GuestAccount.general_name());
        assert_eq!(declared.created_by_hub().map(|n| n.many), Some("helpers"));
        assert_eq!(rules(ExistingAccount, Unsupported).created_by_hub(), None);
        assert_eq!(declared.words.connection.counted(1), "site");
        assert_eq!(declared.words.connection.counted(2), "sites");
    }

    #[test]
    fn only_an_own_account_its_owner_authorises_is_prompted() {
        let mut declared = rules(ExistingAccount, GuestAccount);
        assert!(declared.prompted(ExistingAccount));
        assert!(!declared.prompted(GuestAccount));
        declared.with_account.authorised_by = Authoriser::Admin;
        assert!(!declared.prompted(ExistingAccount));
    }

    #[test]
    fn the_fallback_applies_only_when_allowed_to_people_nothing_else_represents() {
        let mut declared = rules(ExistingAccount, Unsupported);
        assert_eq!(declared.representation_allowing(false, true), Unsupported);
        declared.fallback = Some(RepresentationRule {
            kind: Bot,
            called: Noun {
                one: "relay",
                many: "relays",
            },
            abilities: Abilities::NONE,
            authorised_by: Authoriser::Admin,
        });
        assert_eq!(declared.representation_allowing(false, false), Unsupported);
        assert_eq!(declared.representation_allowing(false, true), Bot);
        assert_eq!(
            declared.representation_allowing(true, true),
            ExistingAccount
        );
        assert!(declared.is_fallback(Bot));
        assert!(!declared.is_fallback(ExistingAccount));
        assert_eq!(declared.called(Bot).one, "relay");
        // A fallback makes nothing on the platform: it is the hub's own, relaying.
        assert_eq!(declared.created_by_hub(), None);

        let mut guests = rules(ExistingAccount, GuestAccount);
        guests.fallback = declared.fallback;
        assert_eq!(guests.representation_allowing(false, true), GuestAccount);
        assert!(guests.is_fallback(Bot));
    }

    #[test]
    fn an_undeclared_kind_can_do_nothing() {
        let declared = rules(ExistingAccount, Unsupported);
        assert_eq!(declared.abilities(ExistingAccount), ALL);
        assert_eq!(declared.abilities(Bot), Abilities::NONE);
        assert_eq!(declared.abilities(Unsupported), Abilities::NONE);
    }
}
