use std::collections::BTreeSet;

use crate::{ConnectionId, ConversationId, ExternalChatId, PersonId, Platform, PortalId};

/// Whether a conversation is between two people or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    Direct,
    Group,
}

impl ConversationKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [ConversationKind::Direct, ConversationKind::Group]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A participant list that cannot make the conversation asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidConversation {
    #[error("a direct message is between exactly two different people, not {0}")]
    DirectNeedsTwo(usize),
    #[error("a group chat needs at least three different people, not {0}")]
    GroupNeedsThree(usize),
}

/// A direct message or group chat between people, whatever platforms they are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub participants: BTreeSet<PersonId>,
}

impl Conversation {
    pub fn new(
        id: ConversationId,
        kind: ConversationKind,
        participants: impl IntoIterator<Item = PersonId>,
    ) -> Result<Self, InvalidConversation> {
        let participants: BTreeSet<PersonId> = participants.into_iter().collect();
        match kind {
            ConversationKind::Direct if participants.len() != 2 => {
                Err(InvalidConversation::DirectNeedsTwo(participants.len()))
            }
            ConversationKind::Group if participants.len() < 3 => {
                Err(InvalidConversation::GroupNeedsThree(participants.len()))
            }
            _ => Ok(Self {
                id,
                kind,
                participants,
            }),
        }
    }

    /// The key that makes a direct message between two people unique, whichever of them
    /// started it: there is one DM per pair, as on every platform. Group chats have none, since
    /// platforms such as Teams allow several group chats with the same members.
    pub fn direct_key(&self) -> Option<String> {
        (self.kind == ConversationKind::Direct).then(|| {
            self.participants
                .iter()
                .map(PersonId::to_string)
                .collect::<Vec<_>>()
                .join(":")
        })
    }
}

/// A conversation's native chat on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    pub id: PortalId,
    pub conversation_id: ConversationId,
    pub platform: Platform,
    pub connection_id: ConnectionId,
    pub external_chat_id: ExternalChatId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn person(n: u128) -> PersonId {
        PersonId::from_uuid(Uuid::from_u128(n))
    }

    fn conversation_id() -> ConversationId {
        ConversationId::from_uuid(Uuid::from_u128(99))
    }

    #[test]
    fn a_direct_message_has_one_key_whoever_starts_it() {
        let ab = Conversation::new(
            conversation_id(),
            ConversationKind::Direct,
            [person(1), person(2)],
        )
        .unwrap();
        let ba = Conversation::new(
            conversation_id(),
            ConversationKind::Direct,
            [person(2), person(1)],
        )
        .unwrap();
        assert_eq!(ab.direct_key(), ba.direct_key());
        assert!(ab.direct_key().is_some());
    }

    #[test]
    fn participant_counts_are_checked() {
        assert_eq!(
            Conversation::new(
                conversation_id(),
                ConversationKind::Direct,
                [person(1), person(1)]
            ),
            Err(InvalidConversation::DirectNeedsTwo(1))
        );
        assert_eq!(
            Conversation::new(
                conversation_id(),
                ConversationKind::Group,
                [person(1), person(2)]
            ),
            Err(InvalidConversation::GroupNeedsThree(2))
        );
        let group = Conversation::new(
            conversation_id(),
            ConversationKind::Group,
            [person(1), person(2), person(3)],
        )
        .unwrap();
        assert_eq!(group.direct_key(), None);
    }
}
