//! Google Chat for the hub: a service account with domain-wide delegation, the Admin SDK
//! directory, Workspace guest accounts, Chat direct messages and group chats, and Workspace
//! Events delivered through Pub/Sub push. See `docs/platforms/google-chat.md`.
//!
//! Who acts, and with which token (see `auth`):
//! - the **admin** the connection names, by delegation, reads the directory and creates and
//!   deletes guest accounts;
//! - the hub's **Chat app** (the service account itself, `chat.bot`) sends prompts;
//! - each **representation** (a person's own account or a hub-created guest account) is acted
//!   as by delegation, or with the person's own grant where an admin chose prompts: it opens
//!   chats, posts, edits, deletes and reacts, and its Workspace Events subscription delivers
//!   what is written in its chats.
//!
//! The module's parts: `settings` ([`GoogleChatSettings`]), `connect` (connecting, the user
//! OAuth flow, refresh and health), `directory` (users, guests, prompts), `messaging` (chats,
//! messages, reactions, pacing), `events` (subscriptions and reading events), over `client`
//! (HTTP), `auth` (tokens), [`markup`], `webhook` (push verification and envelopes) and `time`.

mod auth;
mod chat;
mod client;
mod connect;
mod directory;
mod events;
mod groups;
pub mod markup;
mod messaging;
mod settings;
mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_core::{
    Abilities, Authoriser, Clock, Email, ExternalChatId, ExternalUserId, ImportScope, Noun,
    Platform, PlatformRules, PlatformWords, RepresentationKind, RepresentationRule, Timestamp,
};
use switchboard_platform::{
    Actor, AnnouncedPost, ChatPlatform, ConnectField, ConnectionContext, Credentials,
    DirectoryGroup, EventEnvelope, EventSubscription, FlowContext, FlowState, FlowStep,
    GroupMember, Health, ImportRequest, InboundEvent, MessageRef, OutboundMessage, PlatformError,
    PlatformUser, Prompt, ProvisionRequest, Provisioning, RetryPolicy, Team, UserPage,
    WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::auth::{ServiceAccountKey, TokenCache};
use crate::client::Client;
use crate::messaging::Pacing;
use crate::webhook::SigningKeys;

pub use crate::auth::{APP_SCOPE, DELEGATION_SCOPES};
pub use crate::settings::GoogleChatSettings;

/// Credential names, on connections and representations.
pub mod credential {
    /// Connection: the service account's JSON key.
    pub const SERVICE_ACCOUNT_KEY: &str = "service_account_key";
    /// Connection: the Workspace admin the hub acts as for the directory.
    pub const ADMIN_EMAIL: &str = "admin_email";
    /// Connection: the Workspace customer id.
    pub const CUSTOMER: &str = "customer";
    /// Connection: the Pub/Sub topic the Workspace Events subscriptions publish to.
    pub const PUBSUB_TOPIC: &str = "pubsub_topic";
    /// Connection: the service account whose e-mail the push requests' tokens carry.
    pub const PUSH_SERVICE_ACCOUNT: &str = "push_service_account";
    /// Representation: a person's own refresh token, when they authorised through a prompt.
    pub const REFRESH_TOKEN: &str = "refresh_token";
}

/// Google Chat behind [`ChatPlatform`].
pub struct GoogleChatPlatform {
    client: Client,
    authorize_url: String,
    token_url: String,
    certs_url: String,
    push_audience: String,
    oauth_client: Option<(String, SecretString)>,
    guest_domain: Option<String>,
    page_size: u32,
    clock: Arc<dyn Clock>,
    tokens: TokenCache,
    /// The primary e-mail of each account acted as by delegation (the assertion's `sub`), by
    /// service account and account id.
    subjects: Mutex<HashMap<(String, String), String>>,
    signing_keys: SigningKeys,
    pacing: Pacing,
}

impl std::fmt::Debug for GoogleChatPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleChatPlatform")
            .field("push_audience", &self.push_audience)
            .field("certs_url", &self.certs_url)
            .finish_non_exhaustive()
    }
}

impl GoogleChatPlatform {
    /// `clock` is the hub's: the times the module signs (assertions) and checks (push tokens)
    /// come from it.
    pub fn new(settings: GoogleChatSettings, clock: Arc<dyn Clock>) -> Result<Self, PlatformError> {
        Self::with_retry_policy(settings, clock, RetryPolicy::default())
    }

    pub fn with_retry_policy(
        settings: GoogleChatSettings,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Result<Self, PlatformError> {
        let client = Client::new(&settings, retry)?;
        let signing_keys = SigningKeys::new(
            settings.certs_url.clone(),
            std::time::Duration::from_secs(settings.request_timeout_secs.max(1)),
            retry,
        )?;
        let oauth_client = match (settings.oauth_client_id, settings.oauth_client_secret) {
            (Some(id), Some(secret)) => Some((id, secret)),
            _ => None,
        };
        Ok(Self {
            client,
            authorize_url: settings.authorize_url,
            token_url: settings.token_url,
            certs_url: settings.certs_url,
            push_audience: settings.push_audience,
            guest_domain: settings
                .guest_domain
                .map(|domain| domain.trim().to_ascii_lowercase()),
            oauth_client,
            page_size: settings.page_size.clamp(1, 500),
            tokens: TokenCache::new(Arc::clone(&clock)),
            clock,
            subjects: Mutex::new(HashMap::new()),
            signing_keys,
            pacing: Pacing::default(),
        })
    }

    fn key(connection: &ConnectionContext) -> Result<ServiceAccountKey, PlatformError> {
        let key = connection
            .credentials
            .get(credential::SERVICE_ACCOUNT_KEY)?;
        auth::parse_key(key.expose_secret())
    }

    fn text<'a>(
        connection: &'a ConnectionContext,
        name: &'static str,
    ) -> Result<&'a str, PlatformError> {
        Ok(connection.credentials.get(name)?.expose_secret())
    }

    /// The connection's admin, by delegation, for the directory.
    async fn admin_token(&self, connection: &ConnectionContext) -> Result<String, PlatformError> {
        let key = Self::key(connection)?;
        let admin = Self::text(connection, credential::ADMIN_EMAIL)?;
        self.tokens
            .service_account(&self.client, &key, Some(admin), auth::DIRECTORY_SCOPES)
            .await
    }

    /// The hub's Chat app.
    async fn app_token(&self, connection: &ConnectionContext) -> Result<String, PlatformError> {
        let key = Self::key(connection)?;
        self.tokens
            .service_account(&self.client, &key, None, &[APP_SCOPE])
            .await
    }

    /// A person's account, with their own grant where they gave one, else by delegation.
    async fn user_token(
        &self,
        connection: &ConnectionContext,
        account: &ExternalUserId,
        credentials: &Credentials,
    ) -> Result<String, PlatformError> {
        if let Ok(refresh_token) = credentials.get(credential::REFRESH_TOKEN) {
            let oauth_client = self.oauth_client()?;
            return self
                .tokens
                .refreshed(
                    &self.client,
                    &self.token_url,
                    oauth_client,
                    refresh_token.expose_secret(),
                )
                .await;
        }
        let subject = self.subject_of(connection, account).await?;
        let key = Self::key(connection)?;
        self.tokens
            .service_account(&self.client, &key, Some(&subject), auth::USER_SCOPES)
            .await
    }

    async fn actor_token(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
    ) -> Result<String, PlatformError> {
        match actor {
            Actor::Hub => self.app_token(connection).await,
            Actor::Representation {
                account,
                credentials,
            } => self.user_token(connection, account, credentials).await,
            // Domain-wide delegation reaches every account of the domain.
            Actor::Delegated { account } => {
                self.user_token(connection, account, &Credentials::default())
                    .await
            }
        }
    }

    /// The primary e-mail of an account, which a delegated assertion names as `sub`.
    async fn subject_of(
        &self,
        connection: &ConnectionContext,
        account: &ExternalUserId,
    ) -> Result<String, PlatformError> {
        let cache_key = (
            connection.connection.tenant.as_str().to_owned(),
            account.as_str().to_owned(),
        );
        if let Some(subject) = self.lock_subjects().get(&cache_key) {
            return Ok(subject.clone());
        }
        let user = directory::get_user(self, connection, account.as_str())
            .await?
            .ok_or_else(|| {
                PlatformError::NotFound(format!("user {} in the directory", account.as_str()))
            })?;
        let subject = user.primary_email.ok_or_else(|| {
            PlatformError::Rejected(format!("user {} has no primary e-mail", account.as_str()))
        })?;
        self.lock_subjects().insert(cache_key, subject.clone());
        Ok(subject)
    }

    fn lock_subjects(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.subjects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn oauth_client(&self) -> Result<&(String, SecretString), PlatformError> {
        self.oauth_client.as_ref().ok_or_else(|| {
            PlatformError::Rejected(
                "no OAuth client is configured ([platforms.google_chat] oauth_client_id and oauth_client_secret), so people cannot authorise their own Google account; rely on the domain-wide delegation instead".to_owned(),
            )
        })
    }
}

/// Bytes in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// On Google Chat the Workspace admin's domain-wide delegation is the consent: a person's own
/// account is acted as at once, and a person without one gets a Workspace guest account the
/// hub creates. An import brings in every user of the Workspace.
const RULES: PlatformRules = {
    const ABILITIES: Abilities = Abilities {
        edit: true,
        delete: true,
        react: true,
        thread: true,
        mention: true,
        file: false,
    };
    PlatformRules {
        import: ImportScope::AllUsers,
        with_account: RepresentationRule {
            kind: RepresentationKind::ExistingAccount,
            called: Noun {
                one: "own account",
                many: "own accounts",
            },
            abilities: ABILITIES,
            authorised_by: Authoriser::Admin,
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
                one: "workspace",
                many: "workspaces",
            },
        },
    }
};

#[async_trait]
impl ChatPlatform for GoogleChatPlatform {
    fn platform(&self) -> Platform {
        Platform::GoogleChat
    }

    fn rules(&self) -> PlatformRules {
        RULES
    }

    fn connect_fields(&self) -> Vec<ConnectField> {
        connect::fields()
    }

    async fn begin_connect(
        &self,
        inputs: &Credentials,
        _flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        connect::begin_connect(self, inputs).await
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

    /// An import brings in every user: there are no teams to choose.
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
        connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError> {
        directory::provision_representation(self, connection, request).await
    }

    async fn remove_representation(
        &self,
        connection: &ConnectionContext,
        account: Option<&ExternalUserId>,
        _credentials: &Credentials,
    ) -> Result<(), PlatformError> {
        directory::remove_representation(self, connection, account).await
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
        if groups::is_channel_push(request) {
            return groups::verify_push(connection, request);
        }
        webhook::verify(self, connection, request)
    }

    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
        if groups::is_channel_push(request) {
            return groups::split_push(request);
        }
        webhook::split(request)
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
        if let Some(read) = groups::read_push(envelope) {
            return Ok(read);
        }
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

    async fn maintain_subscriptions(
        &self,
        connection: &ConnectionContext,
        // Chat events are pushed to the URL the Pub/Sub push subscription names; only the
        // Reports channel is told this one.
        events_url: &str,
        watched: &[Actor],
        groups: &[String],
        current: &[EventSubscription],
        now: Timestamp,
    ) -> Result<Vec<EventSubscription>, PlatformError> {
        let (channels, current): (Vec<EventSubscription>, Vec<EventSubscription>) = current
            .iter()
            .cloned()
            .partition(|subscription| subscription.resource == groups::REPORTS_RESOURCE);
        let mut kept: Vec<EventSubscription> = Vec::new();
        for extra in channels.iter().skip(1) {
            groups::stop_channel(self, connection, extra).await?;
        }
        match groups::maintain_channel(
            self,
            connection,
            events_url,
            !groups.is_empty(),
            channels.first(),
            now,
        )
        .await
        {
            Ok(channel) => kept.extend(channel),
            Err(error) => {
                tracing::warn!(%error, "cannot keep the Reports channel that Directory Sync listens on");
                kept.extend(channels.first().cloned());
            }
        }
        // Each subscription is made as its account through the admin's domain-wide delegation,
        // with the connection's credentials: the account is all Google needs of each.
        let watched: Vec<ExternalUserId> = watched
            .iter()
            .filter_map(|actor| match actor {
                Actor::Representation { account, .. } => Some(account.clone()),
                Actor::Hub | Actor::Delegated { .. } => None,
            })
            .collect();
        kept.extend(
            events::maintain_subscriptions(self, connection, &watched, &current, now).await?,
        );
        Ok(kept)
    }

    async fn remove_subscriptions(
        &self,
        connection: &ConnectionContext,
        current: &[EventSubscription],
    ) -> Result<(), PlatformError> {
        let (channels, chat): (Vec<EventSubscription>, Vec<EventSubscription>) = current
            .iter()
            .cloned()
            .partition(|subscription| subscription.resource == groups::REPORTS_RESOURCE);
        for channel in &channels {
            groups::stop_channel(self, connection, channel).await?;
        }
        events::remove_subscriptions(self, connection, &chat).await
    }

    async fn directory_groups(
        &self,
        connection: &ConnectionContext,
    ) -> Result<Vec<DirectoryGroup>, PlatformError> {
        groups::directory_groups(self, connection).await
    }

    async fn group_members(
        &self,
        connection: &ConnectionContext,
        group: &str,
    ) -> Result<Vec<GroupMember>, PlatformError> {
        groups::group_members(self, connection, group).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admins_delegation_authorises_every_representation() {
        assert!(!RULES.prompted(RepresentationKind::ExistingAccount));
        assert_eq!(
            RULES.created_by_hub().map(|noun| noun.one),
            Some("guest account")
        );
        assert!(RULES.abilities(RepresentationKind::GuestAccount).thread);
        assert!(!RULES.abilities(RepresentationKind::ExistingAccount).file);
    }
}
