//! Webex for the hub: an integration whose service user an admin signs in, the members of the
//! teams the admin selects, guest identities from a Service App for people without a Webex
//! account, direct and group rooms, and webhooks signed with a secret per webhook. See
//! `docs/platforms/webex.md`.
//!
//! Who acts, and with which token:
//! - the **service user** (the integration's token the admin granted; the connection's
//!   credentials) reads teams and people and sends prompts;
//! - the **Service App** (its token for the organisation, `guest-issuer:write`) issues guest
//!   identities;
//! - each **representation** (a person's own account they linked through the integration, or a
//!   guest identity) opens rooms, posts, edits and deletes, and owns the webhook that delivers
//!   what is written in its rooms.
//!
//! The module's parts: `settings` ([`WebexSettings`]), `connect` (the integration's OAuth, the
//! Service App, refresh and health), `directory` (teams, people, prompts, guests), `messaging`
//! (rooms and messages), `chats` (how chats are named: a direct chat by its two
//! members), `events` (webhooks: registering, verifying, reading), over `client`
//! (HTTP, `Link` paging), `tokens` (the representations' tokens, kept to delete their webhooks),
//! `wire` (Webex's JSON), [`markup`] and `webhook` (signatures).

mod chats;
mod client;
mod connect;
mod directory;
mod events;
pub mod markup;
mod messaging;
mod settings;
mod tokens;
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
    EventEnvelope, EventSubscription, FlowContext, FlowState, FlowStep, Health, ImportRequest,
    InboundEvent, MessageRef, OutboundMessage, PlatformError, PlatformUser, Prompt,
    ProvisionRequest, Provisioning, Removal, RetryPolicy, Team, UserPage, WebhookRequest,
    WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::chats::DirectRooms;
use crate::client::Client;
use crate::tokens::KnownTokens;

pub use crate::settings::WebexSettings;
pub use crate::webhook::sign;

/// Credential names, on connections and representations.
pub mod credential {
    /// An access token of the integration (the service user's, or a person's own account's),
    /// or a guest identity's token.
    pub const ACCESS_TOKEN: &str = "access_token";
    /// The integration's refresh token (90 days; Webex may issue a new one on refresh).
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// Connection: the service user's person id.
    pub const SERVICE_USER_ID: &str = "service_user_id";
    /// Connection: the Service App's access token for the organisation (`guest-issuer:write`).
    pub const SERVICE_APP_TOKEN: &str = "service_app_token";
    /// Connection: the Service App's refresh token for the organisation.
    pub const SERVICE_APP_REFRESH_TOKEN: &str = "service_app_refresh_token";
    /// Representation: the person id it acts as.
    pub const PERSON_ID: &str = "person_id";
    /// Guest identity: the `subject` it was issued for, which issues its next token.
    pub const GUEST_SUBJECT: &str = "guest_subject";
    /// Guest identity: the name it shows.
    pub const GUEST_NAME: &str = "guest_name";
    /// Representation: the secret its webhook signs deliveries with.
    pub const WEBHOOK_SECRET: &str = "webhook_secret";
}

/// Webex behind [`ChatPlatform`].
pub struct WebexPlatform {
    client: Client,
    integration: (String, SecretString),
    service_app: Option<(String, SecretString)>,
    page_size: u32,
    clock: Arc<dyn Clock>,
    known: KnownTokens,
    rooms: DirectRooms,
}

impl std::fmt::Debug for WebexPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebexPlatform")
            .field("base_url", &self.client.base())
            .field("client_id", &self.integration.0)
            .finish_non_exhaustive()
    }
}

impl WebexPlatform {
    /// `clock` is the hub's: token expiries are computed from it.
    pub fn new(settings: WebexSettings, clock: Arc<dyn Clock>) -> Result<Self, PlatformError> {
        Self::with_retry_policy(settings, clock, RetryPolicy::default())
    }

    pub fn with_retry_policy(
        settings: WebexSettings,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Result<Self, PlatformError> {
        let client = Client::new(&settings, retry)?;
        let service_app = match (
            settings.service_app_client_id,
            settings.service_app_client_secret,
        ) {
            (Some(id), Some(secret)) => Some((id, secret)),
            _ => None,
        };
        Ok(Self {
            client,
            integration: (settings.client_id, settings.client_secret),
            service_app,
            page_size: settings.page_size.clamp(1, wire::MAX_PAGE_SIZE),
            clock,
            known: KnownTokens::default(),
            rooms: DirectRooms::default(),
        })
    }

    /// The token `actor` acts with, and the person id it acts as (the service user's for the
    /// hub). A representation's token is remembered for deleting its webhook later.
    pub(crate) fn acting(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
    ) -> Result<(String, String), PlatformError> {
        match actor {
            Actor::Hub => Ok((
                secret(&connection.credentials, credential::ACCESS_TOKEN)?.to_owned(),
                secret(&connection.credentials, credential::SERVICE_USER_ID)?.to_owned(),
            )),
            Actor::Representation {
                account,
                credentials,
            } => {
                let token = secret(credentials, credential::ACCESS_TOKEN)?.to_owned();
                self.known
                    .remember(connection, account.as_str(), credentials);
                Ok((token, account.as_str().to_owned()))
            }
            Actor::Delegated { .. } => Err(PlatformError::Unsupported(
                "acting for any account: a Webex connection holds no grant over the organisation",
            )),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// A named secret's text.
pub(crate) fn secret<'a>(
    credentials: &'a Credentials,
    name: &'static str,
) -> Result<&'a str, PlatformError> {
    Ok(credentials.get(name)?.expose_secret())
}

/// On Webex a person with an account is prompted (a direct message from the service user) and
/// links it through the integration; a person without one is given a guest identity the
/// Service App issues, at once. Both post, edit, delete, reply in threads and mention; Webex
/// has no public API for reactions. An import brings in the members of the selected teams.
const RULES: PlatformRules = {
    const ABILITIES: Abilities = Abilities {
        edit: true,
        delete: true,
        react: false,
        thread: true,
        mention: true,
        file: false,
    };
    PlatformRules {
        import: ImportScope::SelectedTeams {
            team: Noun {
                one: "team",
                many: "teams",
            },
        },
        with_account: RepresentationRule {
            kind: RepresentationKind::ExistingAccount,
            called: Noun {
                one: "own account",
                many: "own accounts",
            },
            abilities: ABILITIES,
            authorised_by: Authoriser::Owner,
        },
        without_account: RepresentationRule {
            kind: RepresentationKind::GuestAccount,
            called: Noun {
                one: "guest identity",
                many: "guest identities",
            },
            abilities: ABILITIES,
            authorised_by: Authoriser::Admin,
        },
        fallback: None,
        words: PlatformWords {
            connection: Noun {
                one: "organisation",
                many: "organisations",
            },
        },
    }
};

#[async_trait]
impl ChatPlatform for WebexPlatform {
    fn platform(&self) -> Platform {
        Platform::Webex
    }

    fn rules(&self) -> PlatformRules {
        RULES
    }

    /// Webex has no API to delete a guest identity, and a guest's tokens stay valid until
    /// they expire (Service App guest management): removing one forgets its token and deletes
    /// the hub's webhooks on it.
    fn removal(&self) -> Removal {
        Removal::Forgotten
    }

    fn connect_fields(&self) -> Vec<ConnectField> {
        connect::fields()
    }

    async fn begin_connect(
        &self,
        inputs: &Credentials,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        connect::begin_connect(self, inputs, flow).await
    }

    async fn continue_flow(
        &self,
        connection: Option<&ConnectionContext>,
        state: &FlowState,
        flow: &FlowContext,
        callback: &[(String, String)],
    ) -> Result<FlowStep, PlatformError> {
        connect::continue_flow(self, connection, state, flow, callback).await
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
        connection: &ConnectionContext,
        credentials: &Credentials,
    ) -> Result<Credentials, PlatformError> {
        connect::refresh(self, connection, credentials).await
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

    async fn list_teams(&self, connection: &ConnectionContext) -> Result<Vec<Team>, PlatformError> {
        directory::list_teams(self, connection).await
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
        connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError> {
        directory::provision_representation(self, connection, request).await
    }

    async fn remove_representation(
        &self,
        connection: &ConnectionContext,
        account: Option<&ExternalUserId>,
        credentials: &Credentials,
    ) -> Result<(), PlatformError> {
        directory::remove_representation(self, connection, account, credentials).await
    }

    fn webhook_secrets_of(&self, representation: &Credentials) -> Vec<(String, SecretString)> {
        events::webhook_secrets_of(representation)
    }

    fn webhook_secret_name(&self, request: &WebhookRequest) -> Option<String> {
        events::webhook_secret_name(request)
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
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
        since: Timestamp,
    ) -> Result<Vec<MessageRef>, PlatformError> {
        messaging::find_posted(self, connection, actor, chat, message, since).await
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

    /// Webex publishes no API for reactions; the rules declare them unsupported, so the relay
    /// never asks.
    async fn set_reaction(
        &self,
        _connection: &ConnectionContext,
        _actor: &Actor,
        _message: &MessageRef,
        _emoji: &str,
        _present: bool,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported(
            "reactions (Webex has no public reactions API)",
        ))
    }

    fn verify_webhook(
        &self,
        connection: &ConnectionContext,
        request: &WebhookRequest,
    ) -> Result<WebhookVerdict, PlatformError> {
        events::verify_webhook(connection, request)
    }

    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
        events::split_webhook(request)
    }

    fn announced_post(&self, envelope: &EventEnvelope) -> Option<AnnouncedPost> {
        events::announced_post(self, envelope)
    }

    fn event_addressee(&self, envelope: &EventEnvelope) -> Option<ExternalUserId> {
        events::event_addressee(envelope)
    }

    async fn read_event(
        &self,
        _connection: &ConnectionContext,
        envelope: &EventEnvelope,
        addressee: Option<&Actor>,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        events::read_event(self, envelope, addressee).await
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

    async fn maintain_subscriptions(
        &self,
        connection: &ConnectionContext,
        events_url: &str,
        watched: &[Actor],
        _groups: &[String],
        current: &[EventSubscription],
        now: Timestamp,
    ) -> Result<Vec<EventSubscription>, PlatformError> {
        events::maintain_subscriptions(self, connection, events_url, watched, current, now).await
    }

    async fn remove_subscriptions(
        &self,
        connection: &ConnectionContext,
        current: &[EventSubscription],
    ) -> Result<(), PlatformError> {
        events::remove_subscriptions(self, connection, current).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_accounts_are_prompted_and_guest_identities_made_at_once() {
        assert_eq!(
            RULES.representation(true),
            RepresentationKind::ExistingAccount
        );
        assert_eq!(
            RULES.representation(false),
            RepresentationKind::GuestAccount
        );
        assert!(RULES.prompted(RepresentationKind::ExistingAccount));
        assert!(!RULES.prompted(RepresentationKind::GuestAccount));
        assert_eq!(
            RULES.created_by_hub().map(|noun| noun.one),
            Some("guest identity")
        );
        assert_eq!(RULES.import.as_str(), "selected_teams");
    }

    #[test]
    fn reactions_are_declared_unsupported_and_the_rest_supported() {
        for kind in [
            RepresentationKind::ExistingAccount,
            RepresentationKind::GuestAccount,
        ] {
            let abilities = RULES.abilities(kind);
            assert!(!abilities.react, "{kind}");
            assert!(abilities.edit && abilities.delete && abilities.thread && abilities.mention);
            assert!(!abilities.file);
        }
    }
}
