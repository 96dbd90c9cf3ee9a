//! How the module names a chat. Zoom has no id for a 1:1 chat: each side reaches it through the
//! other participant (`to_contact`), so a direct chat is named by its two members, in order,
//! and is the same chat from either side and in every event. A group chat is a channel, named
//! by its id; a person's chat with the hub's chatbot by the person. The chatbot also relays
//! for people without a Zoom account: each one's portal with a person is that person's chat
//! with the chatbot, named by both, so that each conversation has a portal of its own while
//! the person sees one chat.

use switchboard_core::ExternalChatId;
use switchboard_platform::{ChatKind, PlatformError};

const DIRECT: &str = "dm:";
const CHANNEL: &str = "channel:";
const BOT: &str = "bot:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chat {
    /// Two users' 1:1 chat, their ids in order.
    Direct(String, String),
    /// A channel (a group chat is a channel of type 4).
    Channel(String),
    /// A user's chat with the hub's chatbot.
    Bot(String),
    /// A user's chat with the hub's chatbot, as the portal of one conversation with someone
    /// the chatbot relays for (`via`, their relayed account).
    Relayed { person: String, via: String },
}

impl Chat {
    pub fn direct(one: &str, other: &str) -> Self {
        if one <= other {
            Chat::Direct(one.to_owned(), other.to_owned())
        } else {
            Chat::Direct(other.to_owned(), one.to_owned())
        }
    }

    pub fn id(&self) -> ExternalChatId {
        ExternalChatId::new(match self {
            Chat::Direct(one, other) => format!("{DIRECT}{one}:{other}"),
            Chat::Channel(id) => format!("{CHANNEL}{id}"),
            Chat::Bot(user) => format!("{BOT}{user}"),
            Chat::Relayed { person, via } => format!("{BOT}{person}/{via}"),
        })
    }

    pub fn parse(chat: &ExternalChatId) -> Result<Self, PlatformError> {
        let text = chat.as_str();
        let not_ours = || PlatformError::Rejected(format!("not a Zoom chat of this hub: {text}"));
        let parsed = if let Some(pair) = text.strip_prefix(DIRECT) {
            let (one, other) = pair.split_once(':').ok_or_else(not_ours)?;
            Chat::Direct(one.to_owned(), other.to_owned())
        } else if let Some(id) = text.strip_prefix(CHANNEL) {
            Chat::Channel(id.to_owned())
        } else if let Some(user) = text.strip_prefix(BOT) {
            match user.split_once('/') {
                Some((person, via)) => Chat::Relayed {
                    person: person.to_owned(),
                    via: via.to_owned(),
                },
                None => Chat::Bot(user.to_owned()),
            }
        } else {
            return Err(not_ours());
        };
        let ids_present = match &parsed {
            Chat::Direct(one, other) => !one.is_empty() && !other.is_empty(),
            Chat::Channel(id) | Chat::Bot(id) => !id.is_empty(),
            Chat::Relayed { person, via } => !person.is_empty() && !via.is_empty(),
        };
        if ids_present {
            Ok(parsed)
        } else {
            Err(not_ours())
        }
    }

    pub fn kind(&self) -> ChatKind {
        match self {
            Chat::Channel(_) => ChatKind::Group,
            Chat::Direct(..) | Chat::Bot(_) | Chat::Relayed { .. } => ChatKind::Direct,
        }
    }

    /// Where `me` reaches the chat in the Team Chat API: `("to_contact", the other member)` or
    /// `("to_channel", the channel)`.
    pub fn target(&self, me: &str) -> Result<(&'static str, String), PlatformError> {
        match self {
            Chat::Direct(one, other) if one == me => Ok(("to_contact", other.clone())),
            Chat::Direct(one, other) if other == me => Ok(("to_contact", one.clone())),
            Chat::Direct(..) => Err(PlatformError::Rejected(format!(
                "{me} is not a member of the direct chat {}",
                self.id()
            ))),
            Chat::Channel(id) => Ok(("to_channel", id.clone())),
            Chat::Bot(_) | Chat::Relayed { .. } => Err(PlatformError::Unsupported(
                "writing in a chat with the hub's chatbot as a person (only the chatbot writes there)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_chat_is_the_same_from_either_side() {
        let chat = Chat::direct("U2", "U1");
        assert_eq!(chat, Chat::direct("U1", "U2"));
        assert_eq!(chat.id().as_str(), "dm:U1:U2");
        assert_eq!(Chat::parse(&chat.id()).unwrap(), chat);
        assert_eq!(chat.target("U1").unwrap(), ("to_contact", "U2".to_owned()));
        assert_eq!(chat.target("U2").unwrap(), ("to_contact", "U1".to_owned()));
        assert!(chat.target("U3").is_err());
        assert_eq!(chat.kind(), ChatKind::Direct);
    }

    #[test]
    fn channels_and_chatbot_chats_round_trip_and_other_ids_are_refused() {
        let channel = Chat::Channel("c0ffee".to_owned());
        assert_eq!(Chat::parse(&channel.id()).unwrap(), channel);
        assert_eq!(
            channel.target("U1").unwrap(),
            ("to_channel", "c0ffee".to_owned())
        );
        assert_eq!(channel.kind(), ChatKind::Group);
        let bot = Chat::Bot("U1".to_owned());
        assert_eq!(Chat::parse(&bot.id()).unwrap(), bot);
        assert!(matches!(
            bot.target("U1"),
            Err(PlatformError::Unsupported(_))
        ));
        let relayed = Chat::Relayed {
            person: "U1".to_owned(),
            via: "chatbot-relay:ann@elsewhere.example".to_owned(),
        };
        assert_eq!(
            relayed.id().as_str(),
            "bot:U1/chatbot-relay:ann@elsewhere.example"
        );
        assert_eq!(Chat::parse(&relayed.id()).unwrap(), relayed);
        assert_eq!(relayed.kind(), ChatKind::Direct);
        for bad in [
            "", "dm:U1", "dm::U2", "channel:", "room:x", "U1", "bot:/x", "bot:U1/",
        ] {
            assert!(Chat::parse(&ExternalChatId::new(bad)).is_err(), "{bad}");
        }
    }
}
