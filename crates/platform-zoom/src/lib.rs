//! Zoom Team Chat for the hub: every user of the account imported through a server-to-server
//! app, people's own accounts linked through a user-managed app and posted as, prompts sent by
//! the hub's chatbot, 1:1 chats and channels, and the account's Team Chat events, signed with
//! the server-to-server app's secret token. See `docs/platforms/zoom.md`.
//!
//! Who acts, and with which token:
//! - the **server-to-server app** (`account_credentials`, an hour, renewed by asking again; the
//!   connection's credentials) reads the account's users and receives every Team Chat event of
//!   the account at the hub's webhook URL;
//! - the **chatbot** (`client_credentials`, an hour) sends the hub's prompts, in each person's
//!   chat with it;
//! - each **representation** (a person's own account, which they authorised through the
//!   user-managed app after a prompt) opens chats, posts, edits, deletes and reacts.
//!
//! Someone without a Zoom account cannot be represented on Zoom: Zoom has no way to post as
//! someone without a Zoom account.
//!
//! The module's parts: `settings` ([`ZoomSettings`]), `connect` (OAuth of the three apps,
//! refresh and health), `directory` (users, prompts), `messaging` (chats and messages), `chats`
//! (how chats are named: a 1:1 chat by its two members), `events` (deliveries: verifying,
//! splitting, reading), over `client` (HTTP), `wire` (Zoom's JSON), [`markup`] and `webhook`
//! (signatures).

mod chats;
mod client;
mod connect;
mod directory;
mod events;
pub mod markup;
mod messaging;
mod settings;
mod webhook;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{
    Abilities, Authoriser, Clock, Email, ExternalChatId, ExternalUserId, ImportScope, Noun,
    Platform, PlatformRules, PlatformWords, RepresentationKind, RepresentationRule, Timestamp,
};
use switchboard_platform::{
    Actor, AnnouncedPost, ChatPlatform, ConnectField, ConnectionContext, Credentials,
    EventEnvelope, FlowContext, FlowState, FlowStep, Health, ImportRequest, InboundEvent,
    MessageRef, OutboundMessage, PlatformError, PlatformUser, Prompt, ProvisionRequest,
    Provisioning, RetryPolicy, Team, UserPage, WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::chats::Chat;
use crate::client::Client;

pub use crate::connect::{CHATBOT_SCOPES, S2S_SCOPES, USER_SCOPES};
pub use crate::settings::ZoomSettings;
pub use crate::webhook::{challenge_answer, encrypted_token, sign};

/// Credential names, on connections and representations.
pub mod credential {
    /// Connection: the server-to-server app's access token for the account (an hour).
    pub const S2S_TOKEN: &str = "s2s_access_token";
    /// Connection: the chatbot's access token (`client_credentials`, an hour).
    pub const CHATBOT_TOKEN: &str = "chatbot_access_token";
    /// Representation: the user-managed app's access token of a person's own account (an hour).
    pub const ACCESS_TOKEN: &str = "access_token";
    /// Representation: its refresh token; Zoom issues a new one with every refresh and the
    /// one presented is spent.
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// Representation, relayed by the chatbot: who its messages say they are from
    /// ("Ann Lee (Slack)"), the head of each.
    pub const RELAY_LABEL: &str = "relay_label";
}

/// The prefix of the account id of someone the chatbot relays for (see [`relayed_account`]).
const RELAYED_PREFIX: &str = "chatbot-relay:";

/// The account id under which the hub keeps the chatbot's relaying for the person at `email`:
/// not a Zoom user id, which never holds a colon.
pub(crate) fn relayed_account(email: &str) -> String {
    format!("{RELAYED_PREFIX}{email}")
}

/// The label the chatbot writes messages under when `actor` is someone it relays for.
pub(crate) fn relay_label(actor: &Actor) -> Option<Result<&str, PlatformError>> {
    match actor {
        Actor::Representation {
            account,
            credentials,
        } if account.as_str().starts_with(RELAYED_PREFIX) => {
            Some(secret(credentials, credential::RELAY_LABEL))
        }
        _ => None,
    }
}

/// An app's client id and secret.
type AppCredentials = (String, SecretString);

/// Zoom Team Chat behind [`ChatPlatform`].
pub struct ZoomPlatform {
    client: Client,
    account_id: String,
    s2s: AppCredentials,
    user_app: AppCredentials,
    chatbot: AppCredentials,
    robot_jid: String,
    /// The secret tokens that sign deliveries: the server-to-server app's (its Team Chat
    /// events) and the chatbot's (what people write to it).
    event_secrets: [SecretString; 2],
    page_size: u32,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ZoomPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoomPlatform")
            .field("api_base", &self.client.api_base())
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl ZoomPlatform {
    /// `clock` is the hub's: token expiries and the freshness of deliveries are computed from it.
    pub fn new(settings: ZoomSettings, clock: Arc<dyn Clock>) -> Result<Self, PlatformError> {
        Self::with_retry_policy(settings, clock, RetryPolicy::default())
    }

    pub fn with_retry_policy(
        settings: ZoomSettings,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Result<Self, PlatformError> {
        Ok(Self {
            client: Client::new(&settings, retry)?,
            account_id: settings.account_id,
            s2s: (settings.s2s_client_id, settings.s2s_client_secret),
            user_app: (settings.user_client_id, settings.user_client_secret),
            chatbot: (settings.chatbot_client_id, settings.chatbot_client_secret),
            robot_jid: settings.robot_jid,
            event_secrets: [settings.webhook_secret_token, settings.chatbot_secret_token],
            page_size: settings.page_size.clamp(1, wire::MAX_USERS_PAGE_SIZE),
            clock,
        })
    }

    /// The token a representation acts with, and the user id it acts as.
    pub(crate) fn acting<'a>(&self, actor: &'a Actor) -> Result<(&'a str, &'a str), PlatformError> {
        match actor {
            Actor::Hub => Err(PlatformError::Unsupported(
                "acting as the hub in a chat: on Zoom the hub is a chatbot, which writes only in each person's chat with it",
            )),
            actor if relay_label(actor).is_some() => Err(PlatformError::Unsupported(
                "acting as a Zoom user for someone the chatbot relays for: the chatbot writes for them, only in each person's chat with it",
            )),
            Actor::Representation {
                account,
                credentials,
            } => Ok((
                secret(credentials, credential::ACCESS_TOKEN)?,
                account.as_str(),
            )),
            Actor::Delegated { .. } => Err(PlatformError::Unsupported(
                "writing for any account: the hub writes on Zoom as people's own authorised accounts",
            )),
        }
    }

    /// How `reader` reads: its token, the `{userId}` of the paths it reads (`me` for a
    /// person's own token; the account itself for the server-to-server app, which may read
    /// for any user of the account), and the user id it reads as.
    pub(crate) fn reading<'a>(
        &self,
        connection: &'a ConnectionContext,
        reader: &'a Actor,
    ) -> Result<Reader<'a>, PlatformError> {
        match reader {
            Actor::Delegated { account } => Ok(Reader {
                token: self.account_token(connection)?,
                path_user: account.as_str(),
                me: account.as_str(),
            }),
            actor => {
                let (token, me) = self.acting(actor)?;
                Ok(Reader {
                    token,
                    path_user: "me",
                    me,
                })
            }
        }
    }

    /// The server-to-server app's token, which reads the account's directory.
    pub(crate) fn account_token<'a>(
        &self,
        connection: &'a ConnectionContext,
    ) -> Result<&'a str, PlatformError> {
        secret(&connection.credentials, credential::S2S_TOKEN)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// How a reader reads (see [`ZoomPlatform::reading`]).
pub(crate) struct Reader<'a> {
    pub token: &'a str,
    pub path_user: &'a str,
    pub me: &'a str,
}

/// A named secret's text.
pub(crate) fn secret<'a>(
    credentials: &'a Credentials,
    name: &'static str,
) -> Result<&'a str, PlatformError> {
    Ok(credentials.get(name)?.expose_secret())
}

/// On Zoom a person with an account is prompted (by the hub's chatbot) and authorises the
/// user-managed app, which then posts, edits, deletes, reacts, replies in threads and mentions
/// as them; a person without one cannot be represented. An import brings in every user of the
/// account.
const RULES: PlatformRules = PlatformRules {
    import: ImportScope::AllUsers,
    with_account: RepresentationRule {
        kind: RepresentationKind::ExistingAccount,
        called: Noun {
            one: "own account",
            many: "own accounts",
        },
        abilities: Abilities {
            edit: true,
            delete: true,
            react: true,
            thread: true,
            mention: true,
            file: false,
        },
        authorised_by: Authoriser::Owner,
    },
    without_account: RepresentationRule {
        kind: RepresentationKind::Unsupported,
        called: Noun {
            one: "not possible without a Zoom account",
            many: "not possible without a Zoom account",
        },
        abilities: Abilities::NONE,
        authorised_by: Authoriser::Admin,
    },
    // Beyond the seeds' rule, when the admin allows it: the hub's chatbot writes to Zoom users
    // for someone without a Zoom account, in each one's chat with it, under their name; what
    // they answer there goes back. It can edit and delete what it wrote, nothing more.
    fallback: Some(RepresentationRule {
        kind: RepresentationKind::Bot,
        called: Noun {
            one: "chatbot relay (not native)",
            many: "chatbot relays (not native)",
        },
        abilities: Abilities {
            edit: true,
            delete: true,
            react: false,
            thread: false,
            mention: false,
            file: false,
        },
        authorised_by: Authoriser::Admin,
    }),
    words: PlatformWords {
        connection: Noun {
            one: "account",
            many: "accounts",
        },
    },
};

#[async_trait]
impl ChatPlatform for ZoomPlatform {
    fn platform(&self) -> Platform {
        Platform::Zoom
    }

    fn rules(&self) -> PlatformRules {
        RULES
    }

    /// Nothing to type in: the account and the apps' credentials are the `[platforms.zoom]`
    /// settings.
    fn connect_fields(&self) -> Vec<ConnectField> {
        Vec::new()
    }

    async fn begin_connect(
        &self,
        _inputs: &Credentials,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        connect::begin_connect(self, flow)
    }

    async fn continue_flow(
        &self,
        _connection: Option<&ConnectionContext>,
        state: &FlowState,
        flow: &FlowContext,
        callback: &[(String, String)],
    ) -> Result<FlowStep, PlatformError> {
        connect::continue_flow(self, state, flow, callback).await
    }

    async fn begin_authorize(
        &self,
        _connection: &ConnectionContext,
        account: &ExternalUserId,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        connect::begin_authorize(self, account, flow)
    }

    async fn refresh(
        &self,
        _connection: &ConnectionContext,
        credentials: &Credentials,
    ) -> Result<Credentials, PlatformError> {
        connect::refresh(self, credentials).await
    }

    async fn check_health(&self, connection: &ConnectionContext) -> Result<Health, PlatformError> {
        connect::check_health(self, connection).await
    }

    async fn send_prompt(
        &self,
        connection: &ConnectionContext,
        to: &ExternalUserId,
        prompt: &Prompt,
    ) -> Result<(), PlatformError> {
        directory::send_prompt(self, connection, to, prompt).await
    }

    /// Zoom imports every user of the account: there are no teams to choose.
    async fn list_teams(
        &self,
        _connection: &ConnectionContext,
    ) -> Result<Vec<Team>, PlatformError> {
        Ok(Vec::new())
    }

    async fn import_users(
        &self,
        connection: &ConnectionContext,
        request: &ImportRequest,
    ) -> Result<UserPage, PlatformError> {
        directory::import_users(self, connection, request).await
    }

    async fn lookup_by_email(
        &self,
        connection: &ConnectionContext,
        email: &Email,
    ) -> Result<Option<PlatformUser>, PlatformError> {
        directory::lookup_by_email(self, connection, email).await
    }

    async fn provision_representation(
        &self,
        _connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError> {
        directory::provision_representation(request)
    }

    /// The hub creates nothing on Zoom: a chatbot relay is the hub's own chatbot writing
    /// under a name, which ends when the hub forgets it.
    async fn remove_representation(
        &self,
        _connection: &ConnectionContext,
        _account: Option<&ExternalUserId>,
        _credentials: &Credentials,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    /// A chatbot relay's portal is shown in the person's one chat with the chatbot.
    fn shared_chat(&self, portal: &ExternalChatId) -> Option<ExternalChatId> {
        match Chat::parse(portal).ok()? {
            Chat::Relayed { person, .. } => Some(Chat::Bot(person).id()),
            _ => None,
        }
    }

    async fn open_chat(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        members: &[ExternalUserId],
    ) -> Result<ExternalChatId, PlatformError> {
        messaging::open_chat(self, connection, actor, members).await
    }

    async fn post_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
    ) -> Result<MessageRef, PlatformError> {
        messaging::post_message(self, connection, actor, chat, message).await
    }

    async fn find_posted(
        &self,
        _connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
        since: Timestamp,
    ) -> Result<Vec<MessageRef>, PlatformError> {
        messaging::find_posted(self, actor, chat, message, since).await
    }

    async fn edit_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        replacement: &OutboundMessage,
    ) -> Result<(), PlatformError> {
        messaging::edit_message(self, connection, actor, message, replacement).await
    }

    async fn delete_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
    ) -> Result<(), PlatformError> {
        messaging::delete_message(self, connection, actor, message).await
    }

    async fn set_reaction(
        &self,
        _connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        emoji: &str,
        present: bool,
    ) -> Result<(), PlatformError> {
        messaging::set_reaction(self, actor, message, emoji, present).await
    }

    fn verify_webhook(
        &self,
        _connection: &ConnectionContext,
        request: &WebhookRequest,
    ) -> Result<WebhookVerdict, PlatformError> {
        events::verify_webhook(self, request)
    }

    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
        events::split_webhook(request)
    }

    fn announced_post(&self, envelope: &EventEnvelope) -> Option<AnnouncedPost> {
        events::announced_post(envelope)
    }

    async fn read_event(
        &self,
        connection: &ConnectionContext,
        envelope: &EventEnvelope,
        _addressee: Option<&Actor>,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        events::read_event(self, connection, envelope).await
    }

    async fn chat_members(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
    ) -> Result<Vec<ExternalUserId>, PlatformError> {
        messaging::chat_members(self, connection, actor, chat).await
    }

    async fn messages_since(
        &self,
        connection: &ConnectionContext,
        reader: &Actor,
        chat: &ExternalChatId,
        after_micros: i64,
    ) -> Result<Vec<InboundEvent>, PlatformError> {
        messaging::messages_since(self, connection, reader, chat, after_micros).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_accounts_are_prompted_and_people_without_one_are_not_represented() {
        assert_eq!(
            RULES.representation(true),
            RepresentationKind::ExistingAccount
        );
        assert_eq!(RULES.representation(false), RepresentationKind::Unsupported);
        assert!(RULES.prompted(RepresentationKind::ExistingAccount));
        assert_eq!(RULES.created_by_hub(), None);
        assert!(RULES.is_fallback(RepresentationKind::Bot));
        assert_eq!(RULES.import.as_str(), "all_users");
        assert_eq!(RULES.words.connection.one, "account");
        assert_eq!(
            RULES.abilities(RepresentationKind::Unsupported),
            Abilities::NONE
        );
    }

    #[test]
    fn own_accounts_do_everything_but_files() {
        let abilities = RULES.abilities(RepresentationKind::ExistingAccount);
        assert!(
            abilities.edit
                && abilities.delete
                && abilities.react
                && abilities.thread
                && abilities.mention
        );
        assert!(!abilities.file);
    }
}
