//! Slack for the hub: the hub's own Slack app (installed once per workspace, it imports users and
//! sends prompts) and one bot app per represented person, created with the App Manifest API and
//! installed with a workspace admin's approval.
//!
//! Credential names (what the hub stores, sealed, for a connection and for each bot):
//!
//! | name | on | what |
//! |---|---|---|
//! | `bot_token` | connection, bot | the app's bot token (`xoxb-`); does not expire |
//! | `bot_user_id` | connection, bot | the bot user the token acts as |
//! | `scope` | connection | the bot scopes `oauth.v2.access` granted |
//! | `app_configuration_token` | connection | calls the App Manifest API; lives 12 hours (the credentials' expiry) |
//! | `app_configuration_refresh_token` | connection | rotates it with `tooling.tokens.rotate` (one use) |
//! | `app_id`, `client_id`, `client_secret`, `signing_secret` | bot | the bot app's identity and secrets |
//! | `app_signing_secret:{app_id}` | connection, when verifying webhooks | each bot app's signing secret, added by the hub (see [`app_signing_secret_name`]) |
//!
//! See `docs/platforms/slack.md` for how this maps to Slack and where the simulator differs.
//!
//! The module's parts: `settings` ([`SlackSettings`] and its validation), `connect`
//! (OAuth, configuration tokens, health), `directory` (users, prompts, bots), `messaging` (DMs
//! and their messages) and `events` (the Events API), over `client` (the Web API over HTTP),
//! [`webhook`] (signatures and deliveries as Slack sends them), `mapping` (users and emoji)
//! and [`markup`] (mrkdwn).

mod client;
mod connect;
mod directory;
mod events;
mod mapping;
pub mod markup;
mod messaging;
mod settings;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::{
    Abilities, Authoriser, Clock, Email, ExternalChatId, ExternalUserId, ImportScope, Noun,
    Platform, PlatformRules, PlatformWords, RepresentationKind, RepresentationRule, Timestamp,
};
use switchboard_platform::{
    Actor, AnnouncedPost, ChatPlatform, ConnectField, ConnectionContext, Credentials,
    EventEnvelope, FlowContext, FlowState, FlowStep, Health, ImportRequest, InboundEvent,
    MessageRef, OutboundMessage, PlatformError, PlatformUser, Prompt, ProvisionRequest,
    Provisioning, ProvisioningRate, Rate, RetryPolicy, Team, UserPage, WebhookRequest,
    WebhookVerdict,
};
use switchboard_secrets::SecretString;

use crate::client::{Auth, Body, Client, Reply};
pub use crate::settings::{SlackSettings, SlackSetupError};

/// Credential names this module stores and reads.
pub mod credential {
    pub const BOT_TOKEN: &str = "bot_token";
    pub const BOT_USER_ID: &str = "bot_user_id";
    pub const SCOPE: &str = "scope";
    pub const APP_CONFIGURATION_TOKEN: &str = "app_configuration_token";
    pub const APP_CONFIGURATION_REFRESH_TOKEN: &str = "app_configuration_refresh_token";
    pub const APP_ID: &str = "app_id";
    pub const CLIENT_ID: &str = "client_id";
    pub const CLIENT_SECRET: &str = "client_secret";
    pub const SIGNING_SECRET: &str = "signing_secret";
    /// Prefix of the per-bot-app signing secrets the hub adds to a connection's credentials
    /// before verifying a webhook.
    pub const APP_SIGNING_SECRET_PREFIX: &str = "app_signing_secret:";
}

/// The name under which the hub passes a bot app's signing secret to
/// [`ChatPlatform::verify_webhook`] among the connection's credentials.
pub fn app_signing_secret_name(app_id: &str) -> String {
    format!("{}{app_id}", credential::APP_SIGNING_SECRET_PREFIX)
}

/// Bot scopes of the hub's own app: read the directory (with e-mail addresses, to match people),
/// send prompts in DMs from its bot, and read and write DMs and group DMs and their reactions.
pub const HUB_BOT_SCOPES: &[&str] = &[
    "chat:write",
    "chat:write.customize",
    "im:write",
    "im:history",
    "im:read",
    "mpim:write",
    "mpim:history",
    "mpim:read",
    "users:read",
    "users:read.email",
    "reactions:read",
    "reactions:write",
    "team:read",
];

/// Bot scopes of each person's bot: open, read and write DMs and group DMs, react, and see who
/// it talks to.
pub const REPRESENTATION_BOT_SCOPES: &[&str] = &[
    "chat:write",
    "im:write",
    "im:history",
    "im:read",
    "mpim:write",
    "mpim:history",
    "mpim:read",
    "reactions:read",
    "reactions:write",
    "users:read",
];

/// Events each person's bot subscribes to: messages in its DMs and group DMs, and reactions.
pub const REPRESENTATION_BOT_EVENTS: &[&str] = &[
    "message.im",
    "message.mpim",
    "reaction_added",
    "reaction_removed",
];

/// Slack's app configuration tokens live twelve hours.
pub const CONFIGURATION_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The Slack platform module.
pub struct SlackPlatform {
    settings: SlackSettings,
    base: String,
    client: Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SlackPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackPlatform")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SlackPlatform {
    /// Builds the module. `clock` decides the webhook timestamp window (the hub passes its
    /// wall clock).
    pub fn new(settings: SlackSettings, clock: Arc<dyn Clock>) -> Result<Self, SlackSetupError> {
        settings.validate()?;
        let base = settings.api_base_url.trim_end_matches('/').to_owned();
        let client = Client::new(
            &base,
            Duration::from_secs(settings.request_timeout_secs),
            RetryPolicy::default(),
        )?;
        Ok(Self {
            settings,
            base,
            client,
            clock,
        })
    }

    /// Replaces the retry policy (the default is [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.client.set_retry(policy);
        self
    }

    async fn call(&self, method: &str, auth: Auth<'_>, body: Body) -> Result<Reply, PlatformError> {
        self.client.call(method, auth, body).await
    }
}

/// On Slack a bot the hub provisions, with the person's name and picture, represents everyone
/// whose primary platform is elsewhere, whether or not they have a Slack account: Slack lets no
/// app post as a person. An import brings in every user of the workspace.
const RULES: PlatformRules = {
    const BOT: RepresentationRule = RepresentationRule {
        kind: RepresentationKind::Bot,
        called: Noun {
            one: "bot",
            many: "bots",
        },
        abilities: Abilities {
            edit: true,
            delete: true,
            react: true,
            thread: true,
            mention: true,
            file: false,
        },
        // Each bot's app is approved by an admin of the workspace, never by the person.
        authorised_by: Authoriser::Admin,
    };
    PlatformRules {
        import: ImportScope::AllUsers,
        with_account: BOT,
        without_account: BOT,
        fallback: None,
        words: PlatformWords {
            connection: Noun {
                one: "workspace",
                many: "workspaces",
            },
        },
    }
};

#[async_trait]
impl ChatPlatform for SlackPlatform {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn rules(&self) -> PlatformRules {
        RULES
    }

    /// Each bot is one `apps.manifest.create`, a Tier 1 method: one call a minute per
    /// workspace, bursts tolerated only a little, so none are counted on.
    fn provisioning_rate(&self) -> Option<ProvisioningRate> {
        self.settings.pace_apps.then_some(ProvisioningRate {
            rate: Rate {
                per_second: 1.0 / 60.0,
                burst: 1.0,
            },
            allows: "one new app a minute",
        })
    }

    fn connect_fields(&self) -> Vec<ConnectField> {
        vec![
            ConnectField {
                name: credential::APP_CONFIGURATION_TOKEN,
                label: "App configuration token",
                help: "At api.slack.com/apps, under \"Your App Configuration Tokens\", generate a \
                       token for this workspace (as a workspace admin) and paste its access token. \
                       The hub uses it to create one bot app per represented person.",
                secret: true,
            },
            ConnectField {
                name: credential::APP_CONFIGURATION_REFRESH_TOKEN,
                label: "App configuration refresh token",
                help: "The refresh token shown beside that access token. The hub rotates the \
                       configuration token with it before it expires (every 12 hours).",
                secret: true,
            },
        ]
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
        _account: &ExternalUserId,
        _flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        // On Slack every person is represented by a bot the hub provisions; no one authorises
        // their own account.
        Err(PlatformError::Unsupported(
            "authorising a person's own Slack account",
        ))
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

    async fn list_teams(
        &self,
        _connection: &ConnectionContext,
    ) -> Result<Vec<Team>, PlatformError> {
        // A Slack connection imports every member of the workspace; there are no teams to pick.
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
        connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError> {
        directory::provision_representation(self, connection, request).await
    }

    async fn remove_representation(
        &self,
        connection: &ConnectionContext,
        _account: Option<&ExternalUserId>,
        credentials: &Credentials,
    ) -> Result<(), PlatformError> {
        directory::remove_representation(self, connection, credentials).await
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

    async fn messages_since(
        &self,
        connection: &ConnectionContext,
        reader: &Actor,
        chat: &ExternalChatId,
        after_micros: i64,
    ) -> Result<Vec<InboundEvent>, PlatformError> {
        messaging::messages_since(self, connection, reader, chat, after_micros).await
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
        events::verify_webhook(self, connection, request)
    }

    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
        events::split_webhook(request)
    }

    fn announced_post(&self, envelope: &EventEnvelope) -> Option<AnnouncedPost> {
        events::announced_post(envelope)
    }

    fn redelivery_span(&self, request: &WebhookRequest) -> Option<Duration> {
        events::redelivery_span(request)
    }

    async fn read_event(
        &self,
        _connection: &ConnectionContext,
        envelope: &EventEnvelope,
        _addressee: Option<&Actor>,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        events::read_event(envelope)
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
