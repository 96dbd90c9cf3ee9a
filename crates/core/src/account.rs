use crate::{AccountId, ConnectionId, Email, ExternalUserId, PersonId, Platform};

/// What an account on a platform is, as far as matching people is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A human's own account: it can be matched into a person.
    Human,
    /// Somebody else's bot or app: never a person.
    Bot,
    /// An account the hub itself created to represent a person (a guest or a bot); it belongs
    /// to the person it represents and is never imported as a person of its own.
    HubRepresentation,
}

impl AccountKind {
    pub const ALL: [AccountKind; 3] = [
        AccountKind::Human,
        AccountKind::Bot,
        AccountKind::HubRepresentation,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::Human => "human",
            AccountKind::Bot => "bot",
            AccountKind::HubRepresentation => "hub_representation",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One identity on one platform connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub connection_id: ConnectionId,
    pub platform: Platform,
    pub external_id: ExternalUserId,
    pub display_name: String,
    /// Accounts without an address (bots, some service users) cannot be matched by e-mail.
    pub email: Option<Email>,
    pub kind: AccountKind,
    /// False once the platform reports the account deactivated or it left the imported teams.
    pub active: bool,
    pub person_id: Option<PersonId>,
}

impl Account {
    /// Whether this account may be matched into a person by its e-mail address.
    pub fn is_matchable(&self) -> bool {
        self.kind == AccountKind::Human && self.active && self.email.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn account(kind: AccountKind, active: bool, email: Option<&str>) -> Account {
        Account {
            id: AccountId::from_uuid(Uuid::from_u128(1)),
            connection_id: ConnectionId::from_uuid(Uuid::from_u128(2)),
            platform: Platform::Slack,
            external_id: ExternalUserId::new("U1"),
            display_name: "Alice".to_owned(),
            email: email.map(|e| Email::parse(e).unwrap()),
            kind,
            active,
            person_id: None,
        }
    }

    #[test]
    fn only_active_humans_with_an_address_are_matchable() {
        assert!(account(AccountKind::Human, true, Some("a@x.io")).is_matchable());
        assert!(!account(AccountKind::Human, false, Some("a@x.io")).is_matchable());
        assert!(!account(AccountKind::Human, true, None).is_matchable());
        assert!(!account(AccountKind::Bot, true, Some("a@x.io")).is_matchable());
        assert!(!account(AccountKind::HubRepresentation, true, Some("a@x.io")).is_matchable());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AccountKind::ALL {
            assert_eq!(AccountKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AccountKind::parse("robot"), None);
    }
}
