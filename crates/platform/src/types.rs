use std::collections::BTreeMap;

use switchboard_core::{
    Connection, Email, ExternalChatId, ExternalTenantId, ExternalUserId, Platform, RichText,
    Timestamp,
};
use switchboard_secrets::SecretString;

use crate::PlatformError;

/// Named secrets (access and refresh tokens, signing secrets…) of a connection or of a
/// representation, decrypted for the duration of a call, and when the access token expires.
/// The names are the platform module's own; the hub stores them sealed, name by name.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    secrets: BTreeMap<String, SecretString>,
    expires_at: Option<Timestamp>,
}

impl Credentials {
    pub fn insert(&mut self, name: impl Into<String>, secret: SecretString) {
        self.secrets.insert(name.into(), secret);
    }

    pub fn get(&self, name: &'static str) -> Result<&SecretString, PlatformError> {
        self.secrets
            .get(name)
            .ok_or(PlatformError::MissingCredential(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.secrets
            .iter()
            .map(|(name, secret)| (name.as_str(), secret))
    }

    /// When the access token stops working; `None` when it does not expire.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    pub fn set_expires_at(&mut self, expires_at: Option<Timestamp>) {
        self.expires_at = expires_at;
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
        credentials: Credentials,
    },
    /// Any account of the connection, acted as through a grant over the whole organisation
    /// that the connection holds (Zoom's server-to-server app): how the hub reads a chat it
    /// cannot read as itself. A module without such a grant answers
    /// [`PlatformError::Unsupported`](crate::PlatformError::Unsupported).
    Delegated { account: ExternalUserId },
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
    /// A guest from another directory (Teams B2B guests, Slack restricted accounts).
    pub is_guest: bool,
    pub deactivated: bool,
}

/// A group of the platform's directory that Directory Sync may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub id: String,
    pub name: String,
    /// What kind of group, in the platform's words ("security group", "Google group", …).
    pub kind: String,
}

/// A member of a directory group: an active account of the organisation's own (not a guest,
/// not an application), with the addresses it is matched by (the primary first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub account: ExternalUserId,
    pub emails: Vec<Email>,
    /// The name the group's listing gives; `None` where the listing names no one (Google's
    /// members carry an address only): the hub looks a new member up by address.
    pub display_name: Option<String>,
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
    /// The name of the person's primary platform, for a representation that says where they
    /// write from (a fallback that relays for many people, labelled "Ann (Slack)").
    pub primary_platform: Option<String>,
}

/// What removing a representation the hub created leaves on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The account is deleted or deactivated: it leaves the directory and its credentials stop
    /// working.
    Deleted,
    /// The platform offers no way to delete it: the hub forgets its credentials and removes
    /// its event subscriptions, but the account stays on the platform, unused, and credentials
    /// already issued for it work until they expire.
    Forgotten,
}

impl Removal {
    /// The stable name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Removal::Deleted => "deleted",
            Removal::Forgotten => "forgotten",
        }
    }
}

/// The outcome of provisioning.
#[derive(Debug, Clone)]
pub enum Provisioning {
    /// The representation exists and can be used with these credentials.
    Ready {
        account: ExternalUserId,
        credentials: Credentials,
    },
    /// Someone must consent first (an admin approving a bot's installation): send them to
    /// `url`; the flow continues with [`crate::ChatPlatform::continue_flow`]. What already
    /// exists (the bot's app) is removed with `created`, should the consent never come.
    AwaitingConsent {
        url: String,
        state: FlowState,
        created: Credentials,
    },
}

/// Something the admin must type in to connect a platform (an app configuration token, a
/// tenant's domain…), described for the connect form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectField {
    /// The name under which the value reaches [`crate::ChatPlatform::begin_connect`].
    pub name: &'static str,
    pub label: &'static str,
    /// Where on the platform the admin finds the value.
    pub help: &'static str,
    /// Secret values are sealed at rest and never shown again.
    pub secret: bool,
}

/// Where a browser-based flow returns to, and the `state` value that ties the return to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowContext {
    /// The hub's callback URL for this flow, registered with the platform.
    pub callback_url: String,
    /// An unguessable value the hub generated; the platform echoes it back to the callback.
    pub state: String,
}

/// What a platform must remember between the steps of a flow (which step, a PKCE verifier,
/// the app being installed…). Opaque to the hub, which keeps it sealed until the browser
/// returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowState(pub String);

/// One step of a browser-based authorisation: an admin connecting a platform or approving a
/// bot, or a person authorising their own account.
#[derive(Debug, Clone)]
pub enum FlowStep {
    /// Send the browser to `url`; keep `state` until it comes back to the callback URL.
    Redirect {
        url: String,
        state: FlowState,
    },
    Done(FlowOutcome),
}

#[derive(Debug, Clone)]
pub enum FlowOutcome {
    /// A platform instance is connected: the hub's app is installed or consented to, and its
    /// service identity signed in.
    Connected {
        tenant: ExternalTenantId,
        display_name: String,
        credentials: Credentials,
    },
    /// An account may now be acted as: a person's own account, or an approved bot.
    Authorized {
        account: ExternalUserId,
        credentials: Credentials,
    },
}

/// What a connection's credentials can do, as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Who the credentials act as (the bot, the service user).
    pub identity: String,
    pub scopes: Vec<String>,
}

/// A message asking a person to sync, with their personal "Sync now" link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub link: String,
}

/// A message as sent to a platform: the module renders it in the platform's markup. Its
/// mentions name the platform's user ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub body: RichText,
    /// The thread to reply in, if any.
    pub thread: Option<MessageRef>,
    /// Unique to this copy: stored with the message where the platform keeps such metadata, so
    /// that [`crate::ChatPlatform::find_posted`] recognises it.
    pub idempotency_key: Option<String>,
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
    /// The event subscriptions the hub holds for the connection (see
    /// [`crate::ChatPlatform::maintain_subscriptions`]): a platform whose deliveries name their
    /// subscription refuses one for any other, which no one the hub asked is sending, and may
    /// read from the subscription what it watches (the account a delivery is addressed to).
    pub held_subscriptions: Vec<EventSubscription>,
}

/// What to do with a verified webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookVerdict {
    /// A handshake (Slack `url_verification`, Graph `validationToken`): answer with this text.
    Challenge(String),
    /// Events to store durably and then acknowledge.
    Events,
}

/// A new message a webhook item announces, as far as the item itself tells (see
/// [`crate::ChatPlatform::announced_post`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedPost {
    pub message: MessageRef,
    /// Who wrote it, when the item says (Slack's events do; Graph's notifications carry ids
    /// only).
    pub author: Option<ExternalUserId>,
}

/// One item of a verified webhook, kept as the platform sent it until the relay reads it.
/// The hub stores it durably before acknowledging the delivery, so a crash loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    /// Equal for redeliveries of the same item, so the hub stores each item once.
    pub event_id: String,
    /// The item in the platform's own wire format, opaque to the hub.
    pub payload: String,
}

/// A subscription through which a platform delivers events to the hub, where the platform
/// needs one created and renewed by API (Graph change notifications); Slack's are part of each
/// app's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSubscription {
    pub id: String,
    /// What it watches, in the platform's words.
    pub resource: String,
    pub expires_at: Timestamp,
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
        /// The account the delivery was addressed to, where the platform says (Slack names the
        /// bot whose app received the event); the hub reads the chat's members as that account.
        recipient: Option<ExternalUserId>,
        /// When the platform says it was sent, in microseconds since the Unix epoch: the relay
        /// delivers a conversation's messages in this order, whatever order their events
        /// arrive in.
        sent_at_micros: Option<i64>,
        /// What it says, read from the platform's markup; mentions name the platform's ids.
        body: RichText,
        thread: Option<MessageRef>,
    },
    /// A message written in a chat several portals share (see
    /// [`crate::ChatPlatform::shared_chat`]), which does not say which of their conversations
    /// it answers: the hub sends it to the portal whose other participant its text begins by
    /// naming, else to the one last written in.
    MessageToSharedChat {
        /// The shared chat, and the message's id there.
        message: MessageRef,
        sender: ExternalUserId,
        /// As in [`InboundKind::MessagePosted`].
        sent_at_micros: Option<i64>,
        body: RichText,
    },
    MessageEdited {
        message: MessageRef,
        body: RichText,
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
    /// A message changed in a way the platform does not say (Graph's `updated`: an edit, a
    /// reaction, an undelete): its state now. `edit` names the version of its text when it was
    /// ever edited (each edit has its own), with that text; `reactions` are all its reactions,
    /// by whom. The hub compares them with what it saw before.
    MessageState {
        message: MessageRef,
        edit: Option<(String, RichText)>,
        reactions: Vec<(ExternalUserId, String)>,
    },
    /// The members of a directory group may have changed (a member added or removed, a user
    /// disabled, suspended or deleted): Directory Sync reads the groups it follows again.
    /// `group` names the group when the platform says which.
    DirectoryChanged {
        group: Option<String>,
    },
    /// Something happened to one of the subscriptions that deliver events (see
    /// [`crate::ChatPlatform::maintain_subscriptions`]).
    SubscriptionChanged {
        subscription: String,
        change: SubscriptionChange,
    },
}

/// What a platform says about a subscription of the hub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// Events may have been lost: what was written meanwhile must be read back.
    Missed,
    /// The subscription is gone and must be created again.
    Removed,
    /// The subscription must be renewed (its authorisation is about to lapse).
    RenewalRequired,
}
