use std::collections::BTreeMap;

use switchboard_core::{Connection, Email, ExternalChatId, ExternalUserId, Platform};
use switchboard_secrets::SecretString;

use crate::PlatformError;

/// A connection's stored credentials, decrypted for the duration of a call.
#[derive(Debug, Default, Clone)]
pub struct Credentials(BTreeMap<&'static str, SecretString>);

impl Credentials {
    pub fn insert(&mut self, name: &'static str, secret: SecretString) {
        self.0.insert(name, secret);
    }

    pub fn get(&self, name: &'static str) -> Result<&SecretString, PlatformError> {
        self.0
            .get(name)
            .ok_or(PlatformError::MissingCredential(name))
    }
}

/// The connection a call acts on, with what it needs to authenticate.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub connection: Connection,
    pub credentials: Credentials,
}

/// Who a call acts as.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The hub's own identity on the connection: its app, or the service user (Teams, Webex)
    /// that sends prompts.
    Hub,
    /// The account representing a person: their own authorised account, a guest or a bot.
    Representation {
        account: ExternalUserId,
        token: SecretString,
    },
}

/// A team (Teams team, Webex team) whose members an admin may import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub member_count: Option<u64>,
}

/// One page of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    /// For team-scoped platforms, the teams whose members to import; empty otherwise.
    pub teams: Vec<String>,
    /// The cursor the previous page returned; `None` for the first page.
    pub cursor: Option<String>,
}

/// A user as the platform describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformUser {
    pub id: ExternalUserId,
    pub display_name: String,
    /// The primary address, then any aliases (Graph's `proxyAddresses`, `otherMails`).
    pub emails: Vec<Email>,
    pub is_bot: bool,
    pub deactivated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<PlatformUser>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// What to create to represent a person on this platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub display_name: String,
    pub email: Email,
    pub avatar_url: Option<String>,
    /// The person's own account here, when they have one.
    pub existing_account: Option<ExternalUserId>,
}

/// The outcome of provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioning {
    /// The representation exists and can be used.
    Ready { account: ExternalUserId },
    /// Someone must consent first, at `consent_url` (a person authorising their account, or an
    /// admin approving a bot's installation).
    AwaitingConsent { consent_url: String },
}

/// A message as sent to a platform, already in that platform's markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub body: String,
    /// People mentioned in `body`, as the platform's user ids.
    pub mentions: Vec<ExternalUserId>,
    /// The thread to reply in, if any.
    pub thread: Option<MessageRef>,
}

/// A message on a platform: its chat and its id there (Slack `ts`, a Graph message id…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub chat: ExternalChatId,
    pub id: String,
}

/// Whether a chat is between two people or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    Direct,
    Group,
}

/// An inbound webhook as received, before verification.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub headers: http::HeaderMap,
    pub query: Option<String>,
    pub body: Vec<u8>,
}

/// What to do with a verified webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookVerdict {
    /// A handshake (Slack `url_verification`, Graph `validationToken`): answer with this text.
    Challenge(String),
    /// Events to store durably and then acknowledge.
    Events,
}

/// One event a platform reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    /// The platform's id of the delivery, used to drop redeliveries.
    pub event_id: String,
    pub platform: Platform,
    pub kind: InboundKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundKind {
    MessagePosted {
        message: MessageRef,
        chat_kind: ChatKind,
        sender: ExternalUserId,
        body: String,
        thread: Option<MessageRef>,
    },
    MessageEdited {
        message: MessageRef,
        body: String,
    },
    MessageDeleted {
        message: MessageRef,
    },
    ReactionChanged {
        message: MessageRef,
        user: ExternalUserId,
        emoji: String,
        present: bool,
    },
    UserChanged {
        user: PlatformUser,
    },
}
