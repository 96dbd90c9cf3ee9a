//! The one trait every chat platform implements, the vocabulary it speaks, and the registry
//! the hub looks platforms up in.
//!
//! A platform is one self-contained module behind [`ChatPlatform`]: its outbound client, its
//! webhook verification and parsing, and the mapping between its wire types and these types.
//! Adding a platform touches its own folder and one line of the hub's registry.

mod error;
pub mod http;
mod rate;
mod registry;
mod retry;
pub mod time;
mod types;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::{Email, ExternalChatId, ExternalUserId, Platform, PlatformRules, Timestamp};
use switchboard_secrets::SecretString;

pub use error::PlatformError;
pub use rate::{ProvisioningRate, Rate, TokenBucket};
pub use registry::PlatformRegistry;
pub use retry::{RetryPolicy, with_retries};
pub use types::{
    Actor, AnnouncedPost, ChatKind, ConnectField, ConnectionContext, Credentials, DirectoryGroup,
    EventEnvelope, EventSubscription, FlowContext, FlowOutcome, FlowState, FlowStep, GroupMember,
    Health, ImportRequest, InboundEvent, InboundKind, MessageRef, OutboundMessage, PlatformUser,
    Prompt, ProvisionRequest, Provisioning, Removal, SubscriptionChange, Team, UserPage,
    WebhookRequest, WebhookVerdict,
};

/// What the hub needs from a chat platform: its directory, representations, messaging and
/// inbound events.
///
/// Every method that calls the platform takes the connection it acts on; implementations keep
/// no per-connection state of their own beyond caches, so one instance serves every connection
/// of its platform. Calls must time out, retry transient failures with backoff and honour
/// `Retry-After`; what is left over is reported as a [`PlatformError`] that says whether a later
/// retry may help.
#[async_trait]
pub trait ChatPlatform: Send + Sync {
    fn platform(&self) -> Platform;

    /// What the platform declares about itself: how it imports users, how it represents
    /// people with and without an account there and what each representation can do, and its
    /// words. The hub reads these instead of asking which platform it is.
    fn rules(&self) -> PlatformRules;

    /// What the admin types in to connect an instance (may be none).
    fn connect_fields(&self) -> Vec<ConnectField>;

    /// Starts connecting an instance of this platform with the admin's `inputs` (named as in
    /// [`ChatPlatform::connect_fields`]): the admin's browser is sent to install or consent to
    /// the hub's app, and to sign in the service identity where there is one.
    async fn begin_connect(
        &self,
        inputs: &Credentials,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError>;

    /// Continues any flow after the browser came back to the callback URL with `callback`
    /// (its query parameters). `connection` is the connection the flow acts on, if it exists.
    async fn continue_flow(
        &self,
        connection: Option<&ConnectionContext>,
        state: &FlowState,
        flow: &FlowContext,
        callback: &[(String, String)],
    ) -> Result<FlowStep, PlatformError>;

    /// Starts a person's authorisation of their own account on this platform (where the
    /// "Sync now" link of a prompt leads).
    async fn begin_authorize(
        &self,
        connection: &ConnectionContext,
        account: &ExternalUserId,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError>;

    /// New credentials before the old ones expire; [`PlatformError::Unauthorized`] when they
    /// were revoked.
    async fn refresh(
        &self,
        connection: &ConnectionContext,
        credentials: &Credentials,
    ) -> Result<Credentials, PlatformError>;

    /// Checks the connection's credentials and what they are allowed to do.
    async fn check_health(&self, connection: &ConnectionContext) -> Result<Health, PlatformError>;

    /// Sends a prompt to a person, from the hub's app (Slack) or service user (Teams).
    async fn send_prompt(
        &self,
        connection: &ConnectionContext,
        to: &ExternalUserId,
        prompt: &Prompt,
    ) -> Result<(), PlatformError>;

    /// The teams an admin may select for import, for platforms that import by team.
    async fn list_teams(&self, connection: &ConnectionContext) -> Result<Vec<Team>, PlatformError>;

    /// One page of the users an import brings in; pass back the returned cursor for the next.
    async fn import_users(
        &self,
        connection: &ConnectionContext,
        request: &ImportRequest,
    ) -> Result<UserPage, PlatformError>;

    async fn lookup_by_email(
        &self,
        connection: &ConnectionContext,
        email: &Email,
    ) -> Result<Option<PlatformUser>, PlatformError>;

    /// The groups of the platform's directory that Directory Sync may take the hub's people
    /// from (Entra ID's security, Microsoft 365 and dynamic groups; Google groups).
    /// [`PlatformError::Unsupported`] (the default) where the platform has none.
    async fn directory_groups(
        &self,
        _connection: &ConnectionContext,
    ) -> Result<Vec<DirectoryGroup>, PlatformError> {
        Err(PlatformError::Unsupported(
            "this platform has no directory groups",
        ))
    }

    /// Every active member of `group`, the members of nested groups included; disabled,
    /// suspended and deleted accounts are left out. [`PlatformError::NotFound`] when the group
    /// is gone.
    async fn group_members(
        &self,
        _connection: &ConnectionContext,
        _group: &str,
    ) -> Result<Vec<GroupMember>, PlatformError> {
        Err(PlatformError::Unsupported(
            "this platform has no directory groups",
        ))
    }

    /// The pace at which one connection may provision representations, as the platform
    /// publishes its limits; the hub waits for it rather than being answered 429. `None` when
    /// the platform sets no limit that provisioning would reach.
    fn provisioning_rate(&self) -> Option<ProvisioningRate> {
        None
    }

    /// Creates what represents a person on this platform (a guest account, a bot), or starts
    /// the consent its creation needs.
    async fn provision_representation(
        &self,
        connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError>;

    /// What [`ChatPlatform::remove_representation`] leaves on the platform: the admin is told,
    /// before removing, whether the account goes or only stops being used.
    fn removal(&self) -> Removal {
        Removal::Deleted
    }

    /// Removes what the hub created to represent a person: the account, with the credentials
    /// it acts with, or — `account` being `None` — what was created before a consent that never
    /// came, with the credentials [`Provisioning::AwaitingConsent`] named for it, as far as
    /// [`ChatPlatform::removal`] says the platform allows. Never called for accounts the hub
    /// did not create.
    async fn remove_representation(
        &self,
        connection: &ConnectionContext,
        account: Option<&ExternalUserId>,
        credentials: &Credentials,
    ) -> Result<(), PlatformError>;

    /// Secrets that verify webhooks sent on a representation's behalf, by name (Slack signs
    /// each bot app's events with that app's own secret); the hub keeps them while the
    /// representation exists.
    fn webhook_secrets_of(&self, _representation: &Credentials) -> Vec<(String, SecretString)> {
        Vec::new()
    }

    /// The name of the representation's secret that verifies `request`, if it needs one; the
    /// hub adds that secret to the connection's credentials before
    /// [`ChatPlatform::verify_webhook`].
    fn webhook_secret_name(&self, _request: &WebhookRequest) -> Option<String> {
        None
    }

    /// Connection credentials that connecting the same instance again keeps instead of taking
    /// the new grant's: secrets the platform's existing event subscriptions carry and that
    /// cannot be changed on them (Graph's `clientState`). Replacing one would make every
    /// delivery of those subscriptions fail verification until they were made anew.
    fn kept_on_reconnect(&self) -> &'static [&'static str] {
        &[]
    }

    /// The platform's chat that `portal` is shown in when several portals share it, where the
    /// platform gives the hub one chat for many conversations (a person's one chat with Zoom's
    /// chatbot, through which everyone the platform cannot represent reaches them); `None`
    /// (the default) when the portal is a chat of its own. What is written in a shared chat
    /// arrives as [`InboundKind::MessageToSharedChat`](crate::InboundKind::MessageToSharedChat).
    fn shared_chat(&self, _portal: &ExternalChatId) -> Option<ExternalChatId> {
        None
    }

    /// Opens (or finds) the direct message or group chat between `actor` and `members`.
    async fn open_chat(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        members: &[ExternalUserId],
    ) -> Result<ExternalChatId, PlatformError>;

    async fn post_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
    ) -> Result<MessageRef, PlatformError>;

    /// The messages `actor` posted in `chat` since `since` that match `message` — by its
    /// idempotency key where the platform stores one, else by its text as this module renders
    /// it — oldest first. After a crash or an ambiguous failure (a timeout), the hub looks here
    /// before posting a copy again, so a post that succeeded is recognised, not repeated.
    async fn find_posted(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
        since: Timestamp,
    ) -> Result<Vec<MessageRef>, PlatformError>;

    async fn edit_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        replacement: &OutboundMessage,
    ) -> Result<(), PlatformError>;

    async fn delete_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
    ) -> Result<(), PlatformError>;

    /// Adds (`present` true) or removes a reaction, given as a Unicode emoji.
    async fn set_reaction(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        emoji: &str,
        present: bool,
    ) -> Result<(), PlatformError>;

    /// Checks an inbound webhook the way the platform signs it, and says whether it is a
    /// handshake to answer or events to store.
    fn verify_webhook(
        &self,
        connection: &ConnectionContext,
        request: &WebhookRequest,
    ) -> Result<WebhookVerdict, PlatformError>;

    /// The items of a verified webhook, each to be stored before the delivery is acknowledged.
    /// Pure and quick: the platform waits for the acknowledgement (Slack: 3 s).
    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError>;

    /// Whether a verified webhook is the platform's retry of a delivery the hub did not
    /// acknowledge, and if so how long the platform goes on retrying a delivery before it gives
    /// up. A retry is the only sign a platform like Slack gives that its deliveries are failing,
    /// and a delivery that failed on every attempt is never announced at all: the hub reads
    /// back the chats written in over that span. Platforms that announce lost deliveries
    /// themselves (Graph's `missed` lifecycle notification) keep the default.
    fn redelivery_span(&self, _request: &WebhookRequest) -> Option<Duration> {
        None
    }

    /// The new message `envelope` announces, read from the item alone without calling the
    /// platform; `None` for anything else. Most of what the hub receives is its own posts
    /// coming back (each copy it makes is announced like any message), and this lets it
    /// recognise them before storing or fetching them. Edits, deletions and reactions are
    /// never announcements: a person may edit or react to a copy, and that must be relayed.
    fn announced_post(&self, _envelope: &EventEnvelope) -> Option<AnnouncedPost> {
        None
    }

    /// The account a stored item must be read as, when reading it needs that account's own
    /// credentials rather than the connection's: a platform whose subscriptions each belong to
    /// one account delivers ids only, and only that account may fetch what they name (Webex's
    /// webhooks). The module writes the account into its own payload in
    /// [`ChatPlatform::split_webhook`]; the hub looks up its representation of that account
    /// and hands it to [`ChatPlatform::read_event`]. `None` (the default) when the connection's
    /// credentials read everything.
    fn event_addressee(&self, _envelope: &EventEnvelope) -> Option<ExternalUserId> {
        None
    }

    /// What a stored item says happened, fetching what the platform left out (Graph's
    /// notifications carry ids only); `None` for items the hub does not act on.
    ///
    /// `addressee` is the representation acting as the account
    /// [`ChatPlatform::event_addressee`] named, with its credentials, so that the item can be
    /// read after a restart as well as before; `None` when no account was named or the hub no
    /// longer holds a synced representation of it. An item that needs an addressee and has
    /// none cannot be read by anyone the hub acts as: answer an error that is not retryable
    /// (the hub drops the item rather than retrying it for an hour) and that says why.
    async fn read_event(
        &self,
        connection: &ConnectionContext,
        envelope: &EventEnvelope,
        addressee: Option<&Actor>,
    ) -> Result<Option<InboundEvent>, PlatformError>;

    /// The accounts in a chat, read as `actor` (who must be able to see the chat).
    async fn chat_members(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
    ) -> Result<Vec<ExternalUserId>, PlatformError>;

    /// The messages written in `chat` after `after_micros` (the time of the last one the hub
    /// saw, in microseconds since the epoch), oldest first, read as `reader`: what the hub
    /// missed while it was stopped, relayed in order before anything newer. Each is a
    /// [`InboundKind::MessagePosted`] event.
    async fn messages_since(
        &self,
        connection: &ConnectionContext,
        reader: &Actor,
        chat: &ExternalChatId,
        after_micros: i64,
    ) -> Result<Vec<InboundEvent>, PlatformError>;

    /// Creates or renews the subscriptions through which the platform sends this connection's
    /// events to `events_url`, given those that exist (`current`) and the time `now`, and
    /// returns those that exist afterwards. `watched` are the connection's synced
    /// representations, each an [`Actor::Representation`] with the account it acts as and its
    /// credentials: a platform whose subscriptions each watch one account keeps one per
    /// account, and drops those of accounts no longer watched. The credentials are there
    /// because some platforms only let an account subscribe to its own events (Webex creates
    /// a webhook with the token of the account it watches), and the hub is the one that keeps
    /// them across restarts; platforms that subscribe with the connection's credentials
    /// (Google's Workspace Events, through domain-wide delegation) use the accounts only.
    /// `groups` are the directory groups Directory Sync follows on this connection (see
    /// [`ChatPlatform::group_members`]): a platform that announces changes to their members
    /// subscribes to those announcements while there are any, which arrive as
    /// [`InboundKind::DirectoryChanged`].
    /// Platforms whose events need no subscription by API keep the default.
    async fn maintain_subscriptions(
        &self,
        _connection: &ConnectionContext,
        _events_url: &str,
        _watched: &[Actor],
        _groups: &[String],
        current: &[EventSubscription],
        _now: Timestamp,
    ) -> Result<Vec<EventSubscription>, PlatformError> {
        Ok(current.to_vec())
    }

    /// Removes the subscriptions `current` before the connection's credentials are deleted,
    /// so the platform stops sending its events; one already gone counts as removed.
    /// Platforms without subscriptions by API keep the default.
    async fn remove_subscriptions(
        &self,
        _connection: &ConnectionContext,
        _current: &[EventSubscription],
    ) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// Who the hub reads a chat it has not seen as, and the chat's members: itself, or, where the
/// module cannot act as the hub in a chat (Zoom's hub is a chatbot, which is in no one's
/// chats), the message's writer, through the organisation-wide grant the connection holds
/// ([`Actor::Delegated`]).
pub async fn members_of_new_chat(
    module: &dyn ChatPlatform,
    connection: &ConnectionContext,
    chat: &ExternalChatId,
    writer: &ExternalUserId,
) -> Result<(Actor, Vec<ExternalUserId>), PlatformError> {
    match module.chat_members(connection, &Actor::Hub, chat).await {
        Err(PlatformError::Unsupported(_)) => {
            let reader = Actor::Delegated {
                account: writer.clone(),
            };
            let members = module.chat_members(connection, &reader, chat).await?;
            Ok((reader, members))
        }
        read => read.map(|members| (Actor::Hub, members)),
    }
}
