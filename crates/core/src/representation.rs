//! How a person appears on a secondary platform, and the sync state machine of that appearance.

use std::fmt;

use crate::{AccountId, ExternalUserId, PersonId, Platform};

/// How a person is represented on a secondary platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepresentationKind {
    /// The person's own account on that platform, used once they authorise the hub.
    ExistingAccount,
    /// A guest account the hub creates in the platform's directory (Teams).
    GuestAccount,
    /// A bot the hub provisions with the person's name and avatar (Slack, Webex).
    Bot,
    /// The platform offers no way to represent this person (Zoom without an account).
    Unsupported,
}

/// A stored name that is not one of the enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}'")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

impl RepresentationKind {
    pub const ALL: [RepresentationKind; 4] = [
        RepresentationKind::ExistingAccount,
        RepresentationKind::GuestAccount,
        RepresentationKind::Bot,
        RepresentationKind::Unsupported,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RepresentationKind::ExistingAccount => "existing_account",
            RepresentationKind::GuestAccount => "guest_account",
            RepresentationKind::Bot => "bot",
            RepresentationKind::Unsupported => "unsupported",
        }
    }

    /// What the kind is called where a platform has no word of its own for it.
    pub const fn general_name(self) -> crate::Noun {
        let (one, many) = match self {
            RepresentationKind::ExistingAccount => ("own account", "own accounts"),
            RepresentationKind::GuestAccount => ("guest account", "guest accounts"),
            RepresentationKind::Bot => ("bot", "bots"),
            RepresentationKind::Unsupported => ("not represented", "not represented"),
        };
        crate::Noun { one, many }
    }

    pub fn parse(name: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| UnknownName {
                kind: "representation kind",
                value: name.to_owned(),
            })
    }

    /// Whether a sync of this kind may wait for somebody's consent: the person authorising
    /// their own account, or a workspace admin approving a bot's installation.
    const fn may_await_consent(self) -> bool {
        matches!(
            self,
            RepresentationKind::ExistingAccount | RepresentationKind::Bot
        )
    }

    /// Whether the hub itself creates what represents the person (and so may remove it again):
    /// guests and bots are the hub's; a person's own account never is.
    pub const fn created_by_hub(self) -> bool {
        matches!(
            self,
            RepresentationKind::GuestAccount | RepresentationKind::Bot
        )
    }

    /// Whether the hub can finish a sync of this kind without anyone's consent: it creates
    /// guests itself, and bots where the platform lets it.
    const fn may_complete_unprompted(self) -> bool {
        matches!(
            self,
            RepresentationKind::GuestAccount | RepresentationKind::Bot
        )
    }
}

impl fmt::Display for RepresentationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sync status of one representation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// Nothing exists yet on the secondary platform (circular arrow: click to sync).
    NotCreated,
    /// Waiting for somebody's consent: the person was prompted, or an admin must approve
    /// (orange clock).
    Pending,
    /// The representation works: messages can be relayed as it (green check).
    Synced,
    /// The last attempt failed or a working sync broke, with why (red triangle: re-attempt).
    Failed { reason: String },
}

/// A sync status without its payload: what the store indexes and the API filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncStatusCode {
    NotCreated,
    Pending,
    Synced,
    Failed,
}

impl SyncStatusCode {
    pub const ALL: [SyncStatusCode; 4] = [
        SyncStatusCode::NotCreated,
        SyncStatusCode::Pending,
        SyncStatusCode::Synced,
        SyncStatusCode::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SyncStatusCode::NotCreated => "not_created",
            SyncStatusCode::Pending => "pending",
            SyncStatusCode::Synced => "synced",
            SyncStatusCode::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| UnknownName {
                kind: "sync status",
                value: name.to_owned(),
            })
    }
}

impl SyncStatus {
    pub fn code(&self) -> SyncStatusCode {
        match self {
            SyncStatus::NotCreated => SyncStatusCode::NotCreated,
            SyncStatus::Pending => SyncStatusCode::Pending,
            SyncStatus::Synced => SyncStatusCode::Synced,
            SyncStatus::Failed { .. } => SyncStatusCode::Failed,
        }
    }

    /// Rebuilds a status from its stored parts; a failure must carry its reason.
    pub fn from_parts(code: SyncStatusCode, reason: Option<String>) -> Result<Self, UnknownName> {
        match (code, reason) {
            (SyncStatusCode::NotCreated, None) => Ok(SyncStatus::NotCreated),
            (SyncStatusCode::Pending, None) => Ok(SyncStatus::Pending),
            (SyncStatusCode::Synced, None) => Ok(SyncStatus::Synced),
            (SyncStatusCode::Failed, Some(reason)) => Ok(SyncStatus::Failed { reason }),
            (code, reason) => Err(UnknownName {
                kind: "sync status",
                value: format!("{} with reason {reason:?}", code.as_str()),
            }),
        }
    }

    pub fn failure_reason(&self) -> Option<&str> {
        match self {
            SyncStatus::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncStatus::Failed { reason } => write!(f, "failed ({reason})"),
            other => f.write_str(other.code().as_str()),
        }
    }
}

/// Something that happened to a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// Consent was asked for: the person was prompted on their primary platform (again, on a
    /// reprompt), or a workspace admin was asked to approve a bot.
    ConsentRequested,
    /// The representation now works: consent was given, or the hub finished provisioning.
    Completed,
    /// The person's own account works without their consent, under the admin's standing grant
    /// for the whole connection (a domain-wide delegation): synced with no prompt.
    Granted,
    /// An attempt failed, or a working representation broke (a revoked token, say).
    Failed { reason: String },
    /// The admin broke the sync; whatever the hub created on the platform is removed.
    Reset,
}

impl SyncEvent {
    pub const fn name(&self) -> &'static str {
        match self {
            SyncEvent::ConsentRequested => "consent requested",
            SyncEvent::Completed => "completed",
            SyncEvent::Granted => "granted",
            SyncEvent::Failed { .. } => "failed",
            SyncEvent::Reset => "reset",
        }
    }
}

/// A transition the state machine refuses, with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply '{event}' to a representation of kind {kind} whose status is {}: {why}", from.as_str())]
pub struct IllegalTransition {
    pub kind: RepresentationKind,
    pub from: SyncStatusCode,
    pub event: &'static str,
    pub why: &'static str,
}

/// A transition the state machine accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: SyncStatus,
    pub to: SyncStatus,
}

/// How one person is represented on one secondary platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    pub person_id: PersonId,
    pub platform: Platform,
    pub kind: RepresentationKind,
    pub status: SyncStatus,
    /// The account that represents the person, once there is one.
    pub account_id: Option<AccountId>,
    /// The platform's id of the account acting for the person (the bot user, the guest, their
    /// own account), once the sync completed.
    pub external_account: Option<ExternalUserId>,
}

impl Representation {
    /// Applies `event` if the state machine allows it, and says what changed.
    pub fn apply(&mut self, event: SyncEvent) -> Result<Transition, IllegalTransition> {
        let to = next_status(self.kind, &self.status, event)?;
        let from = std::mem::replace(&mut self.status, to.clone());
        Ok(Transition { from, to })
    }
}

/// The sync state machine: the status that `event` leads to from `from`, for a representation
/// of `kind`, or why it may not happen.
pub fn next_status(
    kind: RepresentationKind,
    from: &SyncStatus,
    event: SyncEvent,
) -> Result<SyncStatus, IllegalTransition> {
    use SyncStatus as S;
    let refuse = |why| IllegalTransition {
        kind,
        from: from.code(),
        event: event.name(),
        why,
    };
    if kind == RepresentationKind::Unsupported {
        return Err(refuse("the platform cannot represent this person"));
    }
    match (&event, from) {
        (SyncEvent::ConsentRequested, _) if !kind.may_await_consent() => {
            Err(refuse("this kind of representation needs nobody's consent"))
        }
        (SyncEvent::ConsentRequested, S::Synced) => Err(refuse("it is already synced")),
        (SyncEvent::ConsentRequested, S::NotCreated | S::Pending | S::Failed { .. }) => {
            Ok(S::Pending)
        }

        (SyncEvent::Completed, S::Synced) => Err(refuse("it is already synced")),
        (SyncEvent::Completed, S::NotCreated) if !kind.may_complete_unprompted() => Err(refuse(
            "the person must be prompted and authorise their account first",
        )),
        (SyncEvent::Completed, S::NotCreated | S::Pending | S::Failed { .. }) => Ok(S::Synced),

        (SyncEvent::Granted, _) if kind != RepresentationKind::ExistingAccount => Err(refuse(
            "only a person's own account is acted as under the admin's grant",
        )),
        (SyncEvent::Granted, S::Synced) => Err(refuse("it is already synced")),
        (SyncEvent::Granted, S::NotCreated | S::Pending | S::Failed { .. }) => Ok(S::Synced),

        (SyncEvent::Failed { reason }, _) if reason.trim().is_empty() => {
            Err(refuse("a failure must say why"))
        }
        (SyncEvent::Failed { reason }, _) => Ok(S::Failed {
            reason: reason.clone(),
        }),

        (SyncEvent::Reset, S::NotCreated) => Err(refuse("there is nothing to reset")),
        (SyncEvent::Reset, S::Pending | S::Synced | S::Failed { .. }) => Ok(S::NotCreated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RepresentationKind as K;
    use SyncStatusCode as C;
    use std::collections::BTreeSet;

    fn status(code: C) -> SyncStatus {
        SyncStatus::from_parts(code, (code == C::Failed).then(|| "boom".to_owned())).unwrap()
    }

    fn events() -> [SyncEvent; 4] {
        [
            SyncEvent::ConsentRequested,
            SyncEvent::Completed,
            SyncEvent::Failed {
                reason: "token revoked".to_owned(),
            },
            SyncEvent::Reset,
        ]
    }

    /// The specification, written out by hand: every legal (kind, from, event) → to. Anything
    /// not listed must be refused.
    fn legal() -> Vec<(K, C, &'static str, C)> {
        let mut table = Vec::new();
        for kind in [K::ExistingAccount, K::GuestAccount, K::Bot] {
            for from in C::ALL {
                table.push((kind, from, "failed", C::Failed));
            }
            for from in [C::Pending, C::Synced, C::Failed] {
                table.push((kind, from, "reset", C::NotCreated));
            }
            for from in [C::Pending, C::Failed] {
                table.push((kind, from, "completed", C::Synced));
            }
        }
        for kind in [K::ExistingAccount, K::Bot] {
            for from in [C::NotCreated, C::Pending, C::Failed] {
                table.push((kind, from, "consent requested", C::Pending));
            }
        }
        for kind in [K::GuestAccount, K::Bot] {
            table.push((kind, C::NotCreated, "completed", C::Synced));
        }
        table
    }

    #[test]
    fn every_kind_status_and_event_follows_the_table() {
        let legal = legal();
        for kind in K::ALL {
            for from in C::ALL {
                for event in events() {
                    let name = event.name();
                    let expected = legal
                        .iter()
                        .find(|(k, f, e, _)| *k == kind && *f == from && *e == name)
                        .map(|(_, _, _, to)| *to);
                    let actual = next_status(kind, &status(from), event).map(|s| s.code());
                    match (expected, actual) {
                        (Some(to), Ok(got)) => assert_eq!(got, to, "{kind} {from:?} {name}"),
                        (None, Err(err)) => {
                            assert_eq!((err.kind, err.from, err.event), (kind, from, name));
                        }
                        (expected, actual) => {
                            panic!("{kind} {from:?} {name}: expected {expected:?}, got {actual:?}")
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn exactly_the_legal_status_pairs_are_reachable() {
        let expected_pairs: BTreeSet<(usize, usize)> = [
            (C::NotCreated, C::Pending),
            (C::NotCreated, C::Synced),
            (C::NotCreated, C::Failed),
            (C::Pending, C::Pending),
            (C::Pending, C::Synced),
            (C::Pending, C::Failed),
            (C::Pending, C::NotCreated),
            (C::Synced, C::Failed),
            (C::Synced, C::NotCreated),
            (C::Failed, C::Pending),
            (C::Failed, C::Synced),
            (C::Failed, C::Failed),
            (C::Failed, C::NotCreated),
        ]
        .into_iter()
        .map(|(a, b)| (a as usize, b as usize))
        .collect();
        for from in C::ALL {
            for to in C::ALL {
                let reachable = K::ALL.into_iter().any(|kind| {
                    events().into_iter().any(|event| {
                        next_status(kind, &status(from), event).map(|s| s.code()) == Ok(to)
                    })
                });
                let pair = (from as usize, to as usize);
                assert_eq!(
                    reachable,
                    expected_pairs.contains(&pair),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn synced_to_synced_and_not_created_to_not_created_are_refused() {
        for kind in K::ALL {
            for event in events() {
                assert_ne!(
                    next_status(kind, &SyncStatus::Synced, event.clone()),
                    Ok(SyncStatus::Synced)
                );
                assert_ne!(
                    next_status(kind, &SyncStatus::NotCreated, event),
                    Ok(SyncStatus::NotCreated)
                );
            }
        }
    }

    #[test]
    fn only_guests_and_bots_are_the_hubs_to_remove() {
        let created: Vec<_> = K::ALL.into_iter().filter(|k| k.created_by_hub()).collect();
        assert_eq!(created, vec![K::GuestAccount, K::Bot]);
    }

    #[test]
    fn a_failure_keeps_its_reason_and_needs_one() {
        let mut rep = Representation {
            person_id: PersonId::from_uuid(uuid::Uuid::from_u128(1)),
            platform: Platform::Teams,
            kind: K::ExistingAccount,
            status: SyncStatus::Synced,
            account_id: None,
            external_account: None,
        };
        let transition = rep
            .apply(SyncEvent::Failed {
                reason: "refresh token revoked".to_owned(),
            })
            .unwrap();
        assert_eq!(transition.from, SyncStatus::Synced);
        assert_eq!(rep.status.failure_reason(), Some("refresh token revoked"));
        let err = rep
            .apply(SyncEvent::Failed {
                reason: "  ".to_owned(),
            })
            .unwrap_err();
        assert_eq!(err.why, "a failure must say why");
        assert_eq!(rep.status.failure_reason(), Some("refresh token revoked"));
    }

    #[test]
    fn only_an_own_account_is_synced_under_the_admins_grant() {
        let granted = |kind, from: &SyncStatus| next_status(kind, from, SyncEvent::Granted);
        for from in [SyncStatus::NotCreated, SyncStatus::Pending] {
            assert_eq!(granted(K::ExistingAccount, &from), Ok(SyncStatus::Synced));
        }
        assert!(granted(K::ExistingAccount, &SyncStatus::Synced).is_err());
        for kind in [K::GuestAccount, K::Bot, K::Unsupported] {
            assert!(granted(kind, &SyncStatus::NotCreated).is_err());
        }
    }

    #[test]
    fn refusals_explain_themselves() {
        let err = next_status(
            K::ExistingAccount,
            &SyncStatus::NotCreated,
            SyncEvent::Completed,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply 'completed' to a representation of kind existing_account whose status is \
             not_created: the person must be prompted and authorise their account first"
        );
    }

    #[test]
    fn statuses_rebuild_from_their_stored_parts() {
        for code in C::ALL {
            assert_eq!(status(code).code(), code);
            assert_eq!(C::parse(code.as_str()), Ok(code));
        }
        assert!(SyncStatus::from_parts(C::Failed, None).is_err());
        assert!(SyncStatus::from_parts(C::Synced, Some("x".to_owned())).is_err());
    }
}
