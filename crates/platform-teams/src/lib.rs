//! Microsoft Teams for the hub: Entra ID admin consent and sign-in, the Graph directory (teams,
//! members, look-ups), B2B guests from an interop directory the hub controls, one-on-one and
//! group chats, and Graph change notifications. See `docs/platforms/teams.md`.
//!
//! Who acts, and with which token:
//! - the **hub app** (client credentials, an application token per tenant, cached here) reads
//!   the directory, invites and deletes guests; Graph never lets it post chat messages;
//! - the **service user** (a delegated token, the connection's credentials) sends prompts;
//! - each **representation** (a person's own account or a hub-created guest, delegated
//!   tokens) opens chats, posts, edits, deletes and reacts.
//!
//! The module's parts: `settings` ([`TeamsSettings`]), `connect` (consent, sign-in and tokens),
//! `directory` (teams, members, look-ups, prompts and guests), `messaging` (chats and their
//! messages), `events` (change notifications and their subscriptions), over `client` (Graph
//! and Entra ID over HTTP), `chat`, [`markup`] and `mapping` (what Graph's objects say) and
//! `webhook` (notifications as Graph sends them).

mod chat;
mod client;
mod connect;
mod directory;
mod events;
mod mapping;
pub mod markup;
mod messaging;
mod settings;
mod time;
mod webhook;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::{
    Abilities, Authoriser, Email, ExternalChatId, ExternalUserId, ImportScope, Noun, Platform,
    PlatformRules, PlatformWords, RepresentationKind, RepresentationRule, Timestamp,
};
use switchboard_platform::{
    Actor, AnnouncedPost, ChatPlatform, ConnectField, ConnectionContext, Credentials,
    DirectoryGroup, EventEnvelope, EventSubscription, FlowContext, FlowState, FlowStep,
    GroupMember, Health, ImportRequest, InboundEvent, MessageRef, OutboundMessage, PlatformError,
    PlatformUser, Prompt, ProvisionRequest, Provisioning, ProvisioningRate, Rate, RetryPolicy,
    Team, UserPage, WebhookRequest, WebhookVerdict,
};

use crate::client::Client;
use crate::connect::CachedToken;
pub use crate::settings::{InteropSettings, TeamsSettings};
pub use crate::webhook::{ChangeNotice, ChangeType};

/// Credential names, on connections and representations.
pub mod credential {
    /// A delegated Graph access token (the service user's, a person's or a guest's).
    pub const ACCESS_TOKEN: &str = "access_token";
    /// Its refresh token; Entra issues a new one with every refresh.
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// The delegated scopes granted, space-separated, as the token endpoint reported them.
    pub const SCOPE: &str = "scope";
    /// Connection: the service user's object id.
    pub const SERVICE_USER_ID: &str = "service_user_id";
    /// Connection: the `clientState` every change-notification subscription carries.
    pub const CLIENT_STATE: &str = "client_state";
    /// Guest: the object id of its identity in the interop directory.
    pub const INTEROP_USER_ID: &str = "interop_user_id";
    /// Guest: the user principal name (and address) of that identity.
    pub const INTEROP_UPN: &str = "interop_upn";
    /// Guest: that identity's password, which the hub generated and alone knows.
    pub const INTEROP_PASSWORD: &str = "interop_password";
}
/// Microsoft Teams behind [`ChatPlatform`].
pub struct TeamsPlatform {
    client: Client,
    interop: Option<InteropSettings>,
    page_size: u32,
    invite_redirect_url: String,
    /// Application tokens per tenant (client credentials), refreshed before they expire.
    app_tokens: Mutex<HashMap<String, CachedToken>>,
}

impl std::fmt::Debug for TeamsPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamsPlatform")
            .field("graph", &self.client.graph_base())
            .field("login", &self.client.login_base())
            .finish_non_exhaustive()
    }
}

/// Graph's published limit on `POST /invitations`: 150 requests per 5 s per tenant.
const INVITATION_RATE: ProvisioningRate = ProvisioningRate {
    rate: Rate {
        per_second: 30.0,
        burst: 150.0,
    },
    allows: "150 invitations every 5 seconds",
};

impl TeamsPlatform {
    pub fn new(settings: TeamsSettings) -> Result<Self, PlatformError> {
        Self::with_retry_policy(settings, RetryPolicy::default())
    }

    pub fn with_retry_policy(
        settings: TeamsSettings,
        retry: RetryPolicy,
    ) -> Result<Self, PlatformError> {
        let client = Client::new(
            &settings.login_base_url,
            &settings.graph_base_url,
            settings.client_id,
            settings.client_secret,
            Duration::from_secs(settings.request_timeout_secs.max(1)),
            retry,
        )?;
        Ok(Self {
            client,
            interop: settings.interop,
            page_size: settings.page_size.clamp(1, 999),
            invite_redirect_url: settings.invite_redirect_url,
            app_tokens: Mutex::new(HashMap::new()),
        })
    }
}

/// On Teams a person who has an account is asked to authorise it (the prompt's "Sync now"), and
/// the hub invites a guest account for a person who has none; either posts as the person through
/// Graph's delegated permissions. Chats have no reply threads in Graph: a reply is a quote of its
/// parent. An import brings in the members of the teams the admin selects.
const RULES: PlatformRules = {
    const ABILITIES: Abilities = Abilities {
        edit: true,
        delete: true,
        react: true,
        thread: false,
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
                one: "guest account",
                many: "guest accounts",
            },
            abilities: ABILITIES,
            authorised_by: Authoriser::Admin,
        },
        fallback: None,
        words: PlatformWords {
            connection: Noun {
                one: "tenant",
                many: "tenants",
            },
        },
    }
};

#[async_trait]
impl ChatPlatform for TeamsPlatform {
    fn platform(&self) -> Platform {
        Platform::Teams
    }

    fn rules(&self) -> PlatformRules {
        RULES
    }

    /// Each guest takes one `POST /invitations`, which Graph limits to 150 requests per 5 s
    /// per tenant.
    fn provisioning_rate(&self) -> Option<ProvisioningRate> {
        Some(INVITATION_RATE)
    }

    fn connect_fields(&self) -> Vec<ConnectField> {
        vec![ConnectField {
            name: "tenant",
            label: "Microsoft Entra tenant (optional)",
            help: "The organisation's tenant ID or primary domain (Entra admin center › Overview). Leave empty to use the tenant of the administrator who signs in.",
            secret: false,
        }]
    }

    async fn begin_connect(
        &self,
        inputs: &Credentials,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        connect::begin_connect(self, inputs, flow)
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
        connection: &ConnectionContext,
        account: &ExternalUserId,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        connect::begin_authorize(self, connection, account, flow).await
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

    async fn directory_groups(
        &self,
        connection: &ConnectionContext,
    ) -> Result<Vec<DirectoryGroup>, PlatformError> {
        directory::directory_groups(self, connection).await
    }

    async fn group_members(
        &self,
        connection: &ConnectionContext,
        group: &str,
    ) -> Result<Vec<GroupMember>, PlatformError> {
        directory::group_members(self, connection, group).await
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

    async fn messages_since(
        &self,
        connection: &ConnectionContext,
        _reader: &Actor,
        chat: &ExternalChatId,
        after_micros: i64,
    ) -> Result<Vec<InboundEvent>, PlatformError> {
        messaging::messages_since(self, connection, chat, after_micros).await
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

    async fn set_reaction(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        emoji: &str,
        present: bool,
    ) -> Result<(), PlatformError> {
        messaging::set_reaction(self, connection, actor, message, emoji, present).await
    }

    fn verify_webhook(
        &self,
        connection: &ConnectionContext,
        request: &WebhookRequest,
    ) -> Result<WebhookVerdict, PlatformError> {
        events::verify_webhook(connection, request)
    }

    /// Graph cannot change a subscription's `clientState`: a reconnect keeps the one the
    /// tenant's subscriptions were made with.
    fn kept_on_reconnect(&self) -> &'static [&'static str] {
        &[credential::CLIENT_STATE]
    }

    async fn maintain_subscriptions(
        &self,
        connection: &ConnectionContext,
        events_url: &str,
        _watched: &[Actor],
        groups: &[String],
        current: &[EventSubscription],
        now: Timestamp,
    ) -> Result<Vec<EventSubscription>, PlatformError> {
        events::maintain_subscriptions(self, connection, events_url, groups, current, now).await
    }

    async fn remove_subscriptions(
        &self,
        connection: &ConnectionContext,
        current: &[EventSubscription],
    ) -> Result<(), PlatformError> {
        events::remove_subscriptions(self, connection, current).await
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
}
