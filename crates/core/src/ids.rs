use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A string that is not a valid id of the named kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an identifier minted by the caller; the core never mints ids itself, so
            /// tests and stores decide where uniqueness and ordering come from.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId {
                    kind: $kind,
                    value: s.to_owned(),
                })
            }
        }
    };
}

uuid_id!(
    /// A person: one human of the organisation, whatever platforms they use.
    PersonId,
    "person"
);
uuid_id!(
    /// An account: one identity on one platform connection.
    AccountId,
    "account"
);
uuid_id!(
    /// A connection: one connected platform instance (a Slack workspace, a Microsoft tenant…).
    ConnectionId,
    "connection"
);
uuid_id!(
    /// A conversation: a direct message or group chat between people, across platforms.
    ConversationId,
    "conversation"
);
uuid_id!(
    /// A portal: a conversation's native chat on one platform.
    PortalId,
    "portal"
);

macro_rules! external_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

external_id!(
    /// A user's id as the platform spells it (Slack `U…`, an Entra object id, …).
    ExternalUserId
);
external_id!(
    /// A chat's id as the platform spells it (Slack `D…`, a Graph chat id, …).
    ExternalChatId
);
external_id!(
    /// The platform's id of a connected instance (Slack team id, Entra tenant id, …).
    ExternalTenantId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = PersonId::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let text = id.to_string();
        assert_eq!(text, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(text.parse::<PersonId>(), Ok(id));
    }

    #[test]
    fn a_malformed_id_names_its_kind() {
        let err = "nope".parse::<ConnectionId>().unwrap_err();
        assert_eq!(err.to_string(), "'nope' is not a valid connection id");
    }
}
