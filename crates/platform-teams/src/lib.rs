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

mod chat;
mod client;
mod mapping;
pub mod markup;
mod time;
mod webhook;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_core::{
    Abilities, Email, ExternalChatId, ExternalTenantId, ExternalUserId, ImportScope, Noun,
    Platform, PlatformRules, PlatformWords, RepresentationKind, RepresentationRule, Timestamp,
};
use switchboard_platform::{
    Actor, AnnouncedPost, ChatKind, ChatPlatform, ConnectField, ConnectionContext, Credentials,
    EventEnvelope, EventSubscription, FlowContext, FlowOutcome, FlowState, FlowStep, Health,
    ImportRequest, InboundEvent, InboundKind, MessageRef, OutboundMessage, PlatformError,
    PlatformUser, Prompt, ProvisionRequest, Provisioning, ProvisioningRate, Rate, RetryPolicy,
    SubscriptionChange, Team, UserPage, WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::client::{Client, TokenGrant, collection, next_link};
use crate::mapping::{USER_SELECT, platform_user};
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
use credential::*;

/// The delegated scopes the service user and people consent to: enough to find themselves,
/// create chats and post, edit, delete and react in them.
const DELEGATED_SCOPES: &str =
    "offline_access User.Read Chat.ReadWrite ChatMessage.Send Chat.Create ChatMember.ReadWrite";
const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
/// Graph's `$filter ... in (…)` takes at most 15 values.
const IN_FILTER_MAX: usize = 15;

fn default_login() -> String {
    "https://login.microsoftonline.com".to_owned()
}
fn default_graph() -> String {
    "https://graph.microsoft.com/v1.0".to_owned()
}
fn default_timeout() -> u64 {
    10
}
fn default_page_size() -> u32 {
    999
}
fn default_invite_redirect() -> String {
    "https://teams.microsoft.com".to_owned()
}
fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

/// How the hub reaches Microsoft, from the hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSettings {
    /// Entra ID (`https://login.microsoftonline.com`; the simulator: `http://HOST:PORT/login`).
    #[serde(default = "default_login")]
    pub login_base_url: String,
    /// Graph (`https://graph.microsoft.com/v1.0`; the simulator: `http://HOST:PORT/graph/v1.0`).
    #[serde(default = "default_graph")]
    pub graph_base_url: String,
    /// The hub's multi-tenant Entra app registration.
    pub client_id: String,
    #[serde(deserialize_with = "secret")]
    pub client_secret: SecretString,
    /// The directory guests come from; without it people with no Teams account cannot be
    /// represented on Teams.
    #[serde(default)]
    pub interop: Option<InteropSettings>,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Directory page size (`$top`, 1–999).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Where an invitation would send a guest who redeemed it by hand (Graph requires one).
    #[serde(default = "default_invite_redirect")]
    pub invite_redirect_url: String,
}

/// The interop directory: an Entra tenant the hub's operator owns, the hub app's home tenant,
/// where each person without a Teams account gets an identity that is then invited into the
/// customer's tenant as a B2B guest. The hub authenticates there with the same app
/// (client credentials), which needs the application permission `User.ReadWrite.All`
/// granted in that tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteropSettings {
    /// The interop tenant's id (or a verified domain).
    pub tenant: String,
    /// The verified domain the identities' user principal names are created in.
    pub domain: String,
}

/// What the browser flow remembers between its steps (sealed by the hub).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// The admin was sent to grant admin consent.
    AdminConsent { state: String, redirect_uri: String },
    /// The service user was sent to sign in (authorization code with PKCE).
    ServiceSignIn {
        state: String,
        redirect_uri: String,
        tenant: String,
        verifier: String,
    },
    /// A person was sent to authorise their own account.
    Authorize {
        state: String,
        redirect_uri: String,
        tenant: String,
        account: String,
        verifier: String,
    },
}

impl Step {
    fn state(&self) -> &str {
        match self {
            Step::AdminConsent { state, .. }
            | Step::ServiceSignIn { state, .. }
            | Step::Authorize { state, .. } => state,
        }
    }

    fn encode(&self) -> FlowState {
        FlowState(serde_json::to_string(self).unwrap_or_default())
    }
}

/// The import cursor: which selected team, and Graph's next page of its members.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    team: usize,
    team_id: String,
    next: Option<String>,
}

struct CachedToken {
    token: String,
    valid_until: Instant,
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

/// What the relay watches: every chat message of the tenant. A protected, metered API that
/// Microsoft must enable for the app (see docs/platforms/teams.md).
const ALL_CHAT_MESSAGES: &str = "/chats/getAllMessages";

/// How long a subscription is asked to live: Graph's most for Teams resources, three days,
/// less an hour so that clock skew never makes Graph refuse it.
const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600 - 3600);

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

    /// An application token for `tenant` (client credentials with `.default`: the permissions
    /// admin consent granted there).
    async fn app_token(&self, tenant: &str) -> Result<String, PlatformError> {
        let now = Instant::now();
        if let Some(cached) = self.lock_tokens().get(tenant)
            && cached.valid_until > now
        {
            return Ok(cached.token.clone());
        }
        let grant = self
            .client
            .token(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", GRAPH_DEFAULT),
                ],
            )
            .await?;
        let lifetime = grant.expires_in.unwrap_or(0);
        let margin = lifetime.min(300).max(lifetime / 2);
        let valid_until = now + Duration::from_secs(lifetime.saturating_sub(margin));
        self.lock_tokens().insert(
            tenant.to_owned(),
            CachedToken {
                token: grant.access_token.clone(),
                valid_until,
            },
        );
        Ok(grant.access_token)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        self.app_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn tenant_app_token(
        &self,
        connection: &ConnectionContext,
    ) -> Result<String, PlatformError> {
        self.app_token(connection.connection.tenant.as_str()).await
    }

    /// The token and user id an actor acts with.
    fn acting<'a>(
        connection: &'a ConnectionContext,
        actor: &'a Actor,
    ) -> Result<(&'a str, String), PlatformError> {
        match actor {
            Actor::Hub => Ok((
                connection.credentials.get(ACCESS_TOKEN)?.expose_secret(),
                connection
                    .credentials
                    .get(SERVICE_USER_ID)?
                    .expose_secret()
                    .to_owned(),
            )),
            Actor::Representation {
                account,
                credentials,
            } => Ok((
                credentials.get(ACCESS_TOKEN)?.expose_secret(),
                account.as_str().to_owned(),
            )),
        }
    }

    fn credentials_from(grant: &TokenGrant) -> Credentials {
        let mut credentials = Credentials::default();
        credentials.insert(ACCESS_TOKEN, SecretString::from(grant.access_token.clone()));
        if let Some(refresh) = &grant.refresh_token {
            credentials.insert(REFRESH_TOKEN, SecretString::from(refresh.clone()));
        }
        if let Some(scope) = &grant.scope {
            credentials.insert(SCOPE, SecretString::from(scope.clone()));
        }
        credentials.set_expires_at(grant.expires_at);
        credentials
    }

    async fn me(&self, token: &str) -> Result<Value, PlatformError> {
        let url = self.client.graph_url(
            "/me",
            &[("$select", "id,displayName,userPrincipalName,mail")],
        )?;
        self.client.get(token, &url).await
    }

    async fn redeem_code(
        &self,
        tenant: &str,
        redirect_uri: &str,
        verifier: &str,
        callback: &[(String, String)],
    ) -> Result<(TokenGrant, Value), PlatformError> {
        let code = param(callback, "code").ok_or_else(|| {
            PlatformError::Rejected("the sign-in came back without a code".to_owned())
        })?;
        let grant = self
            .client
            .token(
                tenant,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                    ("scope", DELEGATED_SCOPES),
                ],
            )
            .await?;
        let me = self.me(&grant.access_token).await?;
        Ok((grant, me))
    }

    /// The organisation's name (`GET /organization`), else the service user's domain.
    async fn organisation_name(&self, tenant: &str, me: &Value) -> Result<String, PlatformError> {
        let token = self.app_token(tenant).await?;
        let url = self
            .client
            .graph_url("/organization", &[("$select", "id,displayName")])?;
        match self.client.get(&token, &url).await {
            Ok(page) => {
                if let Some(name) = collection(&page)
                    .first()
                    .and_then(|org| org.get("displayName"))
                    .and_then(Value::as_str)
                {
                    return Ok(name.to_owned());
                }
            }
            Err(error) if error.is_retryable() => return Err(error),
            Err(_) => {}
        }
        let upn = text(me, "userPrincipalName").unwrap_or_default();
        Ok(upn
            .rsplit_once('@')
            .map_or_else(|| tenant.to_owned(), |(_, domain)| domain.to_owned()))
    }

    fn authorize_url(
        &self,
        tenant: &str,
        redirect_uri: &str,
        state: &str,
        verifier: &str,
        login_hint: Option<&str>,
    ) -> Result<String, PlatformError> {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut query = vec![
            ("client_id", self.client.client_id()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("response_mode", "query"),
            ("scope", DELEGATED_SCOPES),
            ("state", state),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(hint) = login_hint {
            query.push(("login_hint", hint));
        }
        self.client
            .login_url(tenant, "oauth2/v2.0/authorize", &query)
    }

    /// User types of `ids` (`Member`, `Guest`), for chat member roles.
    async fn user_types(
        &self,
        token: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>, PlatformError> {
        let mut types = HashMap::new();
        for chunk in ids.chunks(IN_FILTER_MAX) {
            let list = chunk
                .iter()
                .map(|id| format!("'{}'", odata_quote(id)))
                .collect::<Vec<_>>()
                .join(",");
            let filter = format!("id in ({list})");
            let url = self.client.graph_url(
                "/users",
                &[("$filter", filter.as_str()), ("$select", "id,userType")],
            )?;
            for user in collection(&self.client.get(token, &url).await?) {
                if let (Some(id), Some(kind)) = (text(&user, "id"), text(&user, "userType")) {
                    types.insert(id.to_ascii_lowercase(), kind.to_owned());
                }
            }
        }
        Ok(types)
    }

    /// Opens (or finds) a chat between `actor_id` and `members`, acting with `token`.
    async fn create_chat(
        &self,
        connection: &ConnectionContext,
        token: &str,
        actor_id: &str,
        members: &[ExternalUserId],
    ) -> Result<ExternalChatId, PlatformError> {
        let mut ids = vec![actor_id.to_owned()];
        for member in members {
            if !ids
                .iter()
                .any(|id| id.eq_ignore_ascii_case(member.as_str()))
            {
                ids.push(member.as_str().to_owned());
            }
        }
        if ids.len() < 2 {
            return Err(PlatformError::Rejected(
                "a chat needs someone besides the actor".to_owned(),
            ));
        }
        let app = self.tenant_app_token(connection).await?;
        let types = self.user_types(&app, &ids).await?;
        let graph = self.client.graph_base();
        let members: Vec<Value> = ids
            .iter()
            .map(|id| {
                // In-tenant guests must join chats with the `guest` role; members as owners.
                let guest = types
                    .get(&id.to_ascii_lowercase())
                    .is_some_and(|t| t.eq_ignore_ascii_case("guest"));
                json!({
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": [if guest { "guest" } else { "owner" }],
                    "user@odata.bind": format!("{graph}/users('{id}')"),
                })
            })
            .collect();
        let chat_type = if ids.len() == 2 { "oneOnOne" } else { "group" };
        let url = self.client.graph_url("/chats", &[])?;
        let chat = self
            .client
            .graph(
                token,
                Method::POST,
                &url,
                Some(&json!({"chatType": chat_type, "members": members})),
                &[],
            )
            .await?;
        text(&chat, "id")
            .map(ExternalChatId::new)
            .ok_or_else(|| PlatformError::Rejected("Graph created a chat without an id".to_owned()))
    }

    async fn post(
        &self,
        token: &str,
        chat: &ExternalChatId,
        body: &Value,
    ) -> Result<MessageRef, PlatformError> {
        let url = self
            .client
            .graph_url(&format!("/chats/{}/messages", path(chat.as_str())), &[])?;
        let message = self
            .client
            .graph(token, Method::POST, &url, Some(body), &[])
            .await?;
        let id = text(&message, "id").ok_or_else(|| {
            PlatformError::Rejected("Graph posted a message without an id".to_owned())
        })?;
        Ok(MessageRef {
            chat: chat.clone(),
            id: id.to_owned(),
        })
    }

    fn interop(&self) -> Result<&InteropSettings, PlatformError> {
        self.interop.as_ref().ok_or_else(|| {
            PlatformError::Rejected(
                "guest accounts need an interop directory: set the Teams platform's `interop` tenant and domain".to_owned(),
            )
        })
    }

    /// A delegated token for a hub-created guest, signing its interop identity into the
    /// customer tenant (resource-owner password grant; see docs/platforms/teams.md).
    async fn guest_sign_in(
        &self,
        tenant: &str,
        upn: &str,
        password: &str,
    ) -> Result<TokenGrant, PlatformError> {
        let scope = format!("{GRAPH_DEFAULT} offline_access");
        self.client
            .token(
                tenant,
                &[
                    ("grant_type", "password"),
                    ("username", upn),
                    ("password", password),
                    ("scope", &scope),
                ],
            )
            .await
    }

    async fn delete_user(&self, token: &str, id: &str) -> Result<(), PlatformError> {
        let url = self
            .client
            .graph_url(&format!("/users/{}", path(id)), &[])?;
        match self
            .client
            .graph(token, Method::DELETE, &url, None, &[])
            .await
        {
            Ok(_) | Err(PlatformError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    // ---- Change notifications: what the trait does not cover yet -----------------------

    /// Creates a change-notification subscription carrying the connection's `clientState`,
    /// as `actor` (delegated) or, with `None`, as the hub app. Graph validates both URLs with
    /// its handshake before answering. Returns the subscription id.
    ///
    /// Resources the hub uses: `/users/{id}/chats/getAllMessages` (every chat of a person or
    /// guest, with their token), `/chats/getAllMessages` (the whole tenant, app-only, metered),
    /// `/users` (directory changes, app-only). Teams subscriptions live at most three days and
    /// need a `lifecycle_url` beyond one hour.
    #[allow(clippy::too_many_arguments)]
    pub async fn subscribe(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
        resource: &str,
        change_type: &str,
        notification_url: &str,
        lifecycle_url: Option<&str>,
        expires_at: Timestamp,
    ) -> Result<String, PlatformError> {
        let token = self.token_for(connection, actor).await?;
        let client_state = connection.credentials.get(CLIENT_STATE)?.expose_secret();
        let mut body = json!({
            "changeType": change_type,
            "notificationUrl": notification_url,
            "resource": resource,
            "expirationDateTime": time::iso8601(expires_at),
            "clientState": client_state,
        });
        if let Some(url) = lifecycle_url {
            body["lifecycleNotificationUrl"] = json!(url);
        }
        let url = self.client.graph_url("/subscriptions", &[])?;
        let created = self
            .client
            .graph(&token, Method::POST, &url, Some(&body), &[])
            .await?;
        text(&created, "id").map(str::to_owned).ok_or_else(|| {
            PlatformError::Rejected("Graph created a subscription without an id".to_owned())
        })
    }

    /// Extends a subscription (also renews its authorisation, answering
    /// `reauthorizationRequired`).
    pub async fn renew_subscription(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
        subscription_id: &str,
        expires_at: Timestamp,
    ) -> Result<(), PlatformError> {
        let token = self.token_for(connection, actor).await?;
        let url = self
            .client
            .graph_url(&format!("/subscriptions/{}", path(subscription_id)), &[])?;
        self.client
            .graph(
                &token,
                Method::PATCH,
                &url,
                Some(&json!({"expirationDateTime": time::iso8601(expires_at)})),
                &[],
            )
            .await
            .map(drop)
    }

    pub async fn delete_subscription(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
        subscription_id: &str,
    ) -> Result<(), PlatformError> {
        let token = self.token_for(connection, actor).await?;
        let url = self
            .client
            .graph_url(&format!("/subscriptions/{}", path(subscription_id)), &[])?;
        match self
            .client
            .graph(&token, Method::DELETE, &url, None, &[])
            .await
        {
            Ok(_) | Err(PlatformError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn token_for(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
    ) -> Result<String, PlatformError> {
        match actor {
            Some(actor) => Ok(Self::acting(connection, actor)?.0.to_owned()),
            None => self.tenant_app_token(connection).await,
        }
    }

    /// Every item of a verified notification, lifecycle signals included.
    pub fn notices(&self, request: &WebhookRequest) -> Result<Vec<ChangeNotice>, PlatformError> {
        webhook::notices(&request.body)
    }

    /// Completes a notice into an event by fetching what changed: Graph's basic notifications
    /// carry ids only. `reader` must be able to read the chat (the subscription's owner: the
    /// service user, a person or a guest), or `None` for the app's token; users are read with
    /// the app's token.
    ///
    /// - a new message → `MessagePosted`; an updated one → `MessageState` (its edit version and
    ///   text, its reactions), with an event id that includes `lastModifiedDateTime` so that
    ///   successive updates are not dropped as redeliveries; a soft-deleted one →
    ///   `MessageDeleted`;
    /// - a user → `UserChanged` (a deleted user, who can no longer be read, as deactivated);
    /// - lifecycle and other notices → `None`: the caller renews or resyncs.
    pub async fn fetch_change(
        &self,
        connection: &ConnectionContext,
        reader: Option<&Actor>,
        notice: &ChangeNotice,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        let event = |event_id: String, kind| {
            Some(InboundEvent {
                event_id,
                platform: Platform::Teams,
                kind,
            })
        };
        match notice {
            ChangeNotice::ChatMessage {
                event_id,
                change,
                message,
                ..
            } => {
                if *change == ChangeType::Deleted {
                    return Ok(event(
                        event_id.clone(),
                        InboundKind::MessageDeleted {
                            message: message.clone(),
                        },
                    ));
                }
                let token = self.token_for(connection, reader).await?;
                let url = self.client.graph_url(
                    &format!(
                        "/chats/{}/messages/{}",
                        path(message.chat.as_str()),
                        path(&message.id)
                    ),
                    &[],
                )?;
                let found = self.client.get(&token, &url).await?;
                if found
                    .get("deletedDateTime")
                    .is_some_and(|deleted| !deleted.is_null())
                {
                    return Ok(event(
                        event_id.clone(),
                        InboundKind::MessageDeleted {
                            message: message.clone(),
                        },
                    ));
                }
                let body = chat::read_body(&found);
                if *change == ChangeType::Updated {
                    // Graph reports edits, reactions and undeletes alike as `updated`; only
                    // `lastEditedDateTime` tells an edit, and each edit has its own.
                    let edit = text(&found, "lastEditedDateTime").map(|at| (at.to_owned(), body));
                    let reactions = found
                        .get("reactions")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|reaction| {
                            let user = reaction.pointer("/user/user/id")?.as_str()?;
                            let emoji = reaction.get("reactionType")?.as_str()?;
                            Some((ExternalUserId::new(user), emoji.to_owned()))
                        })
                        .collect();
                    let modified = text(&found, "lastModifiedDateTime").unwrap_or_default();
                    return Ok(event(
                        format!("{event_id}@{modified}"),
                        InboundKind::MessageState {
                            message: message.clone(),
                            edit,
                            reactions,
                        },
                    ));
                }
                // System events and app posts have no user sender: nothing to relay.
                let Some(sender) = found.pointer("/from/user/id").and_then(Value::as_str) else {
                    return Ok(None);
                };
                Ok(event(
                    event_id.clone(),
                    InboundKind::MessagePosted {
                        message: message.clone(),
                        chat_kind: chat_kind(message.chat.as_str()),
                        sender: ExternalUserId::new(sender),
                        recipient: None,
                        sent_at_micros: text(&found, "createdDateTime")
                            .and_then(time::parse_iso8601)
                            .map(|at| at.unix_millis() * 1000),
                        body,
                        thread: None,
                    },
                ))
            }
            ChangeNotice::User {
                event_id,
                change,
                user,
                ..
            } => {
                let service = connection
                    .credentials
                    .get(SERVICE_USER_ID)
                    .ok()
                    .map(|s| s.expose_secret().to_owned());
                if *change == ChangeType::Deleted {
                    return Ok(event(
                        event_id.clone(),
                        InboundKind::UserChanged {
                            user: PlatformUser {
                                id: user.clone(),
                                display_name: user.as_str().to_owned(),
                                emails: Vec::new(),
                                is_bot: false,
                                is_guest: false,
                                deactivated: true,
                            },
                        },
                    ));
                }
                let token = self.tenant_app_token(connection).await?;
                let url = self.client.graph_url(
                    &format!("/users/{}", path(user.as_str())),
                    &[("$select", USER_SELECT)],
                )?;
                let found = self.client.get(&token, &url).await?;
                Ok(platform_user(&found, service.as_deref())
                    .and_then(|user| event(event_id.clone(), InboundKind::UserChanged { user })))
            }
            ChangeNotice::Lifecycle {
                event_id,
                subscription_id,
                event: lifecycle,
            } => {
                let change = match lifecycle.as_str() {
                    "missed" => SubscriptionChange::Missed,
                    "subscriptionRemoved" => SubscriptionChange::Removed,
                    "reauthorizationRequired" => SubscriptionChange::RenewalRequired,
                    _ => return Ok(None),
                };
                Ok(event(
                    event_id.clone(),
                    InboundKind::SubscriptionChanged {
                        subscription: subscription_id.clone(),
                        change,
                    },
                ))
            }
            ChangeNotice::Other { .. } => Ok(None),
        }
    }
}

/// Teams' chat ids tell their kind: one-on-one chats end in `@unq.gbl.spaces`, group chats
/// (and meeting chats) in `@thread.v2`.
fn chat_kind(chat: &str) -> ChatKind {
    if chat.ends_with("@unq.gbl.spaces") {
        ChatKind::Direct
    } else {
        ChatKind::Group
    }
}

fn param<'a>(callback: &'a [(String, String)], name: &str) -> Option<&'a str> {
    callback
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}

/// A path segment, percent-encoded (chat ids hold `:` and `@`, which are fine in a path, but
/// never `/`, `?` or `#`).
fn path(segment: &str) -> String {
    segment
        .chars()
        .map(|c| match c {
            '/' => "%2F".to_owned(),
            '?' => "%3F".to_owned(),
            '#' => "%23".to_owned(),
            '%' => "%25".to_owned(),
            ' ' => "%20".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A string literal inside an OData `$filter`: single quotes doubled.
fn odata_quote(value: &str) -> String {
    value.replace('\'', "''")
}

fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill(&mut buffer[..]);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// A password Entra's complexity rules accept: upper, lower, digit and symbol, 30 characters.
fn random_password() -> String {
    format!("Sb-{}9a!", random_token(18))
}

/// The interop identity's local part for a person: readable, and unique per address.
fn interop_local_part(email: &Email, nonce: &str) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or((email.as_str(), ""));
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
            .collect::<String>()
            .trim_matches('.')
            .to_owned()
    };
    let label = domain.split('.').next().unwrap_or_default();
    let digest = Sha256::digest(email.as_str().as_bytes());
    let tag: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    let mut local = format!("{}.{}", clean(local), clean(label));
    // The distinguishing tail survives truncation of a long address.
    local.truncate(50);
    format!("{local}.{tag}{nonce}")
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
        },
        without_account: RepresentationRule {
            kind: RepresentationKind::GuestAccount,
            called: Noun {
                one: "guest account",
                many: "guest accounts",
            },
            abilities: ABILITIES,
        },
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
        let tenant = inputs
            .get("tenant")
            .map(|t| t.expose_secret().trim().to_owned())
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "organizations".to_owned());
        let url = self.client.login_url(
            &tenant,
            "v2.0/adminconsent",
            &[
                ("client_id", self.client.client_id()),
                ("scope", GRAPH_DEFAULT),
                ("redirect_uri", &flow.callback_url),
                ("state", &flow.state),
            ],
        )?;
        Ok(FlowStep::Redirect {
            url,
            state: Step::AdminConsent {
                state: flow.state.clone(),
                redirect_uri: flow.callback_url.clone(),
            }
            .encode(),
        })
    }

    async fn continue_flow(
        &self,
        _connection: Option<&ConnectionContext>,
        state: &FlowState,
        flow: &FlowContext,
        callback: &[(String, String)],
    ) -> Result<FlowStep, PlatformError> {
        let step: Step = serde_json::from_str(&state.0)
            .map_err(|e| PlatformError::Rejected(format!("unreadable flow state: {e}")))?;
        let returned = param(callback, "state").unwrap_or_default();
        if !webhook::constant_time_eq(returned.as_bytes(), step.state().as_bytes()) {
            return Err(PlatformError::Rejected(
                "the sign-in came back with another flow's state".to_owned(),
            ));
        }
        if let Some(error) = param(callback, "error") {
            let description = param(callback, "error_description").unwrap_or_default();
            let who = match step {
                Step::AdminConsent { .. } => "the administrator",
                Step::ServiceSignIn { .. } => "the service user",
                Step::Authorize { .. } => "the person",
            };
            return Err(PlatformError::Rejected(if error == "access_denied" {
                format!("{who} declined: {description}")
            } else {
                format!("{error}: {description}")
            }));
        }
        match step {
            Step::AdminConsent { .. } => {
                let consented = param(callback, "admin_consent")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let tenant = param(callback, "tenant").filter(|t| !t.is_empty());
                let (true, Some(tenant)) = (consented, tenant) else {
                    return Err(PlatformError::Rejected(
                        "admin consent came back without consent or tenant".to_owned(),
                    ));
                };
                let verifier = random_token(32);
                let url =
                    self.authorize_url(tenant, &flow.callback_url, &flow.state, &verifier, None)?;
                Ok(FlowStep::Redirect {
                    url,
                    state: Step::ServiceSignIn {
                        state: flow.state.clone(),
                        redirect_uri: flow.callback_url.clone(),
                        tenant: tenant.to_owned(),
                        verifier,
                    }
                    .encode(),
                })
            }
            Step::ServiceSignIn {
                redirect_uri,
                tenant,
                verifier,
                ..
            } => {
                let (grant, me) = self
                    .redeem_code(&tenant, &redirect_uri, &verifier, callback)
                    .await?;
                let id = text(&me, "id").ok_or_else(|| {
                    PlatformError::Rejected("/me answered without an id".to_owned())
                })?;
                let display_name = self.organisation_name(&tenant, &me).await?;
                let mut credentials = Self::credentials_from(&grant);
                credentials.insert(SERVICE_USER_ID, SecretString::from(id.to_owned()));
                credentials.insert(CLIENT_STATE, SecretString::from(random_token(32)));
                Ok(FlowStep::Done(FlowOutcome::Connected {
                    tenant: ExternalTenantId::new(tenant),
                    display_name,
                    credentials,
                }))
            }
            Step::Authorize {
                redirect_uri,
                tenant,
                account,
                verifier,
                ..
            } => {
                let (grant, me) = self
                    .redeem_code(&tenant, &redirect_uri, &verifier, callback)
                    .await?;
                let signed_in = text(&me, "id").unwrap_or_default();
                if !signed_in.eq_ignore_ascii_case(&account) {
                    let who = text(&me, "userPrincipalName").unwrap_or(signed_in);
                    return Err(PlatformError::Rejected(format!(
                        "signed in as {who}, not as the account that was prompted; sign in with your own account"
                    )));
                }
                Ok(FlowStep::Done(FlowOutcome::Authorized {
                    account: ExternalUserId::new(account),
                    credentials: Self::credentials_from(&grant),
                }))
            }
        }
    }

    async fn begin_authorize(
        &self,
        connection: &ConnectionContext,
        account: &ExternalUserId,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        let token = self.tenant_app_token(connection).await?;
        let url = self.client.graph_url(
            &format!("/users/{}", path(account.as_str())),
            &[("$select", "id,userPrincipalName")],
        )?;
        let user = self.client.get(&token, &url).await?;
        let hint = text(&user, "userPrincipalName");
        let tenant = connection.connection.tenant.as_str();
        let verifier = random_token(32);
        let url = self.authorize_url(tenant, &flow.callback_url, &flow.state, &verifier, hint)?;
        Ok(FlowStep::Redirect {
            url,
            state: Step::Authorize {
                state: flow.state.clone(),
                redirect_uri: flow.callback_url.clone(),
                tenant: tenant.to_owned(),
                account: account.as_str().to_owned(),
                verifier,
            }
            .encode(),
        })
    }

    async fn refresh(
        &self,
        connection: &ConnectionContext,
        credentials: &Credentials,
    ) -> Result<Credentials, PlatformError> {
        let tenant = connection.connection.tenant.as_str();
        let scope = credentials
            .get(SCOPE)
            .ok()
            .map(|s| format!("{} offline_access", s.expose_secret()));
        let refreshed = match credentials.get(REFRESH_TOKEN) {
            Ok(refresh_token) => {
                let mut grant = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.expose_secret()),
                ];
                if let Some(scope) = &scope {
                    grant.push(("scope", scope));
                }
                self.client.token(tenant, &grant).await
            }
            Err(missing) => Err(missing),
        };
        let grant = match refreshed {
            Ok(grant) => grant,
            // A hub-created guest can sign in again: the hub holds its interop password.
            Err(PlatformError::Unauthorized(_) | PlatformError::MissingCredential(_))
                if credentials.get(INTEROP_PASSWORD).is_ok() =>
            {
                self.guest_sign_in(
                    tenant,
                    credentials.get(INTEROP_UPN)?.expose_secret(),
                    credentials.get(INTEROP_PASSWORD)?.expose_secret(),
                )
                .await?
            }
            Err(error) => return Err(error),
        };
        // Keep what is not a token (service user id, client state, interop identity).
        let mut fresh = Self::credentials_from(&grant);
        for (name, value) in credentials.iter() {
            if ![ACCESS_TOKEN, REFRESH_TOKEN, SCOPE].contains(&name)
                || (name == REFRESH_TOKEN && grant.refresh_token.is_none())
                || (name == SCOPE && grant.scope.is_none())
            {
                fresh.insert(name, value.clone());
            }
        }
        Ok(fresh)
    }

    async fn check_health(&self, connection: &ConnectionContext) -> Result<Health, PlatformError> {
        let token = connection.credentials.get(ACCESS_TOKEN)?.expose_secret();
        let me = self.me(token).await?;
        let name = text(&me, "displayName").unwrap_or_default();
        let upn = text(&me, "userPrincipalName").unwrap_or_default();
        let scopes = connection
            .credentials
            .get(SCOPE)
            .map(|s| {
                s.expose_secret()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Health {
            identity: format!("{name} <{upn}>"),
            scopes,
        })
    }

    async fn send_prompt(
        &self,
        connection: &ConnectionContext,
        to: &ExternalUserId,
        prompt: &Prompt,
    ) -> Result<(), PlatformError> {
        let (token, service_user) = Self::acting(connection, &Actor::Hub)?;
        let chat = self
            .create_chat(connection, token, &service_user, std::slice::from_ref(to))
            .await?;
        self.post(token, &chat, &chat::prompt_body(prompt))
            .await
            .map(drop)
    }

    async fn list_teams(&self, connection: &ConnectionContext) -> Result<Vec<Team>, PlatformError> {
        let token = self.tenant_app_token(connection).await?;
        let top = self.page_size.to_string();
        let url = self.client.graph_url(
            "/groups",
            &[
                ("$filter", "resourceProvisioningOptions/Any(x:x eq 'Team')"),
                ("$select", "id,displayName"),
                ("$top", &top),
            ],
        )?;
        let groups = self.client.get_all(&token, &url, 1000).await?;
        Ok(groups
            .iter()
            .filter_map(|group| {
                Some(Team {
                    id: text(group, "id")?.to_owned(),
                    name: text(group, "displayName").unwrap_or_default().to_owned(),
                    member_count: None,
                })
            })
            .collect())
    }

    async fn import_users(
        &self,
        connection: &ConnectionContext,
        request: &ImportRequest,
    ) -> Result<UserPage, PlatformError> {
        let cursor = match &request.cursor {
            None => Cursor {
                team: 0,
                team_id: request.teams.first().cloned().unwrap_or_default(),
                next: None,
            },
            Some(raw) => URL_SAFE_NO_PAD
                .decode(raw)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
                .ok_or_else(|| PlatformError::Rejected("unreadable import cursor".to_owned()))?,
        };
        let Some(team_id) = request.teams.get(cursor.team) else {
            return Ok(UserPage {
                users: Vec::new(),
                next_cursor: None,
            });
        };
        if *team_id != cursor.team_id {
            return Err(PlatformError::Rejected(
                "the import cursor belongs to another selection of teams".to_owned(),
            ));
        }
        let token = self.tenant_app_token(connection).await?;
        let url = match cursor.next {
            Some(next) => next,
            None => {
                let top = self.page_size.to_string();
                self.client.graph_url(
                    &format!("/groups/{}/members", path(team_id)),
                    &[("$select", USER_SELECT), ("$top", &top)],
                )?
            }
        };
        let page = self.client.get(&token, &url).await?;
        let service = connection
            .credentials
            .get(SERVICE_USER_ID)
            .ok()
            .map(|s| s.expose_secret().to_owned());
        let mut users: Vec<PlatformUser> = Vec::new();
        for object in collection(&page) {
            if let Some(user) = platform_user(&object, service.as_deref())
                && !users.iter().any(|seen| seen.id == user.id)
            {
                users.push(user);
            }
        }
        let next = match next_link(&page) {
            Some(next) => Some(Cursor {
                team: cursor.team,
                team_id: team_id.clone(),
                next: Some(next),
            }),
            None => request.teams.get(cursor.team + 1).map(|next_team| Cursor {
                team: cursor.team + 1,
                team_id: next_team.clone(),
                next: None,
            }),
        };
        let next_cursor = next
            .map(|c| serde_json::to_vec(&c).map(|bytes| URL_SAFE_NO_PAD.encode(bytes)))
            .transpose()
            .map_err(|e| PlatformError::Rejected(format!("cannot write the cursor: {e}")))?;
        Ok(UserPage { users, next_cursor })
    }

    async fn lookup_by_email(
        &self,
        connection: &ConnectionContext,
        email: &Email,
    ) -> Result<Option<PlatformUser>, PlatformError> {
        let token = self.tenant_app_token(connection).await?;
        let address = odata_quote(email.as_str());
        let filter = format!(
            "mail eq '{address}' or userPrincipalName eq '{address}' or proxyAddresses/any(p:p eq 'smtp:{address}') or otherMails/any(m:m eq '{address}')"
        );
        let url = self.client.graph_url(
            "/users",
            &[
                ("$filter", filter.as_str()),
                ("$select", USER_SELECT),
                ("$count", "true"),
            ],
        )?;
        let page = self
            .client
            .graph(
                &token,
                Method::GET,
                &url,
                None,
                &[("ConsistencyLevel", "eventual")],
            )
            .await?;
        let service = connection
            .credentials
            .get(SERVICE_USER_ID)
            .ok()
            .map(|s| s.expose_secret().to_owned());
        let mut found: Vec<PlatformUser> = collection(&page)
            .iter()
            .filter_map(|user| platform_user(user, service.as_deref()))
            .collect();
        // Several matches (an alias of one, the primary address of another): the one whose
        // primary address it is wins.
        found.sort_by_key(|user| user.emails.first() != Some(email));
        Ok(found.into_iter().next())
    }

    async fn provision_representation(
        &self,
        connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError> {
        if let Some(existing) = &request.existing_account {
            return Err(PlatformError::Rejected(format!(
                "{} already has a Teams account ({existing}); prompt them to authorise it (begin_authorize) instead of creating a guest",
                request.email
            )));
        }
        let interop = self.interop()?;
        let tenant = connection.connection.tenant.as_str();
        // A fresh name each time: Entra keeps a deleted user's name reserved for 30 days, so a
        // person reset and synced again cannot have their previous guest's name back.
        let nonce = format!("{:04x}", rand::rng().random::<u16>());
        let upn = format!(
            "{}@{}",
            interop_local_part(&request.email, &nonce),
            interop.domain
        );
        let password = random_password();
        // 1. The identity in the interop directory.
        let interop_token = self.app_token(&interop.tenant).await?;
        let users_url = self.client.graph_url("/users", &[])?;
        let nickname = upn.split('@').next().unwrap_or_default().to_owned();
        let identity = json!({
            "accountEnabled": true,
            "displayName": request.display_name,
            "mailNickname": nickname,
            "userPrincipalName": upn,
            "mail": upn,
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false},
        });
        let created = self
            .client
            .graph(
                &interop_token,
                Method::POST,
                &users_url,
                Some(&identity),
                &[],
            )
            .await?;
        let interop_id = text(&created, "id")
            .ok_or_else(|| PlatformError::Rejected("the interop user has no id".to_owned()))?
            .to_owned();
        // 2. The invitation into the customer tenant, and 3. the guest's delegated token.
        let guest = async {
            let token = self.app_token(tenant).await?;
            let url = self.client.graph_url("/invitations", &[])?;
            let invitation = self
                .client
                .graph(
                    &token,
                    Method::POST,
                    &url,
                    Some(&json!({
                        "invitedUserEmailAddress": upn,
                        "invitedUserDisplayName": request.display_name,
                        "inviteRedirectUrl": self.invite_redirect_url,
                        "sendInvitationMessage": false,
                        "invitedUserType": "Guest",
                    })),
                    &[],
                )
                .await?;
            let guest_id = invitation
                .pointer("/invitedUser/id")
                .and_then(Value::as_str)
                .ok_or_else(|| PlatformError::Rejected("the invitation names no guest".to_owned()))?
                .to_owned();
            let grant = self.guest_sign_in(tenant, &upn, &password).await?;
            Ok::<_, PlatformError>((guest_id, grant))
        }
        .await;
        let (guest_id, grant) = match guest {
            Ok(done) => done,
            Err(error) => {
                if let Err(cleanup) = self.delete_user(&interop_token, &interop_id).await {
                    tracing::warn!(%cleanup, "could not remove the interop identity of a failed guest");
                }
                return Err(error);
            }
        };
        let mut credentials = Self::credentials_from(&grant);
        credentials.insert(INTEROP_USER_ID, SecretString::from(interop_id));
        credentials.insert(INTEROP_UPN, SecretString::from(upn));
        credentials.insert(INTEROP_PASSWORD, SecretString::from(password));
        Ok(Provisioning::Ready {
            account: ExternalUserId::new(guest_id),
            credentials,
        })
    }

    async fn remove_representation(
        &self,
        connection: &ConnectionContext,
        account: Option<&ExternalUserId>,
        credentials: &Credentials,
    ) -> Result<(), PlatformError> {
        // Guests are created whole or not at all: there is never one awaiting consent.
        let Some(account) = account else {
            return Err(PlatformError::Rejected(
                "no guest was named; nothing is removed".to_owned(),
            ));
        };
        let (Ok(interop_id), Ok(interop_upn)) = (
            credentials.get(INTEROP_USER_ID),
            credentials.get(INTEROP_UPN),
        ) else {
            return Err(PlatformError::Rejected(format!(
                "{account} is not a guest the hub created; it is not removed"
            )));
        };
        let interop = self.interop()?;
        let token = self.tenant_app_token(connection).await?;
        let url = self.client.graph_url(
            &format!("/users/{}", path(account.as_str())),
            &[("$select", "id,userType,mail,otherMails")],
        )?;
        match self.client.get(&token, &url).await {
            Ok(user) => {
                let upn = interop_upn.expose_secret();
                let guest =
                    text(&user, "userType").is_some_and(|t| t.eq_ignore_ascii_case("guest"));
                let ours = text(&user, "mail").is_some_and(|m| m.eq_ignore_ascii_case(upn))
                    || user
                        .get("otherMails")
                        .and_then(Value::as_array)
                        .is_some_and(|all| {
                            all.iter()
                                .filter_map(Value::as_str)
                                .any(|m| m.eq_ignore_ascii_case(upn))
                        });
                if !guest || !ours {
                    return Err(PlatformError::Rejected(format!(
                        "{account} is not the guest of {upn}; it is not removed"
                    )));
                }
                self.delete_user(&token, account.as_str()).await?;
            }
            Err(PlatformError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        let interop_token = self.app_token(&interop.tenant).await?;
        self.delete_user(&interop_token, interop_id.expose_secret())
            .await
    }

    async fn open_chat(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        members: &[ExternalUserId],
    ) -> Result<ExternalChatId, PlatformError> {
        let (token, actor_id) = Self::acting(connection, actor)?;
        self.create_chat(connection, token, &actor_id, members)
            .await
    }

    async fn post_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
    ) -> Result<MessageRef, PlatformError> {
        // Chats have no reply threads in Graph (channel messages do): a reply is posted as a
        // message in the chat that opens with a quote of the start of what it answers.
        let (token, _) = Self::acting(connection, actor)?;
        let Some(parent) = &message.thread else {
            return self.post(token, chat, &chat::message_body(message)).await;
        };
        let url = self.client.graph_url(
            &format!(
                "/chats/{}/messages/{}",
                path(parent.chat.as_str()),
                path(&parent.id)
            ),
            &[],
        )?;
        let quoted = match self.client.get(token, &url).await {
            Ok(found) => chat::read_body(&found).to_plain_text(),
            // A parent gone (deleted) still leaves a visible trace that this is a reply.
            Err(PlatformError::NotFound(_)) => String::new(),
            Err(error) => return Err(error),
        };
        let reply = OutboundMessage {
            body: chat::as_reply(&quoted, &message.body),
            thread: None,
            idempotency_key: message.idempotency_key.clone(),
        };
        self.post(token, chat, &chat::message_body(&reply)).await
    }

    /// Read with the app's token (`Chat.Read.All`), newest change first as Graph lists them
    /// with a filter on `lastModifiedDateTime` (the one filter it allows with `gt`).
    async fn messages_since(
        &self,
        connection: &ConnectionContext,
        _reader: &Actor,
        chat: &ExternalChatId,
        after_micros: i64,
    ) -> Result<Vec<InboundEvent>, PlatformError> {
        let token = self.tenant_app_token(connection).await?;
        let after = Timestamp::from_unix_millis(after_micros.div_euclid(1000));
        let filter = format!("lastModifiedDateTime gt {}", time::iso8601(after));
        let url = self.client.graph_url(
            &format!("/chats/{}/messages", path(chat.as_str())),
            &[
                ("$top", "50"),
                ("$orderby", "lastModifiedDateTime desc"),
                ("$filter", &filter),
            ],
        )?;
        let listed = self.client.get_all(&token, &url, 100_000).await?;
        let mut found: Vec<InboundEvent> = listed
            .iter()
            .filter(|m| text(m, "messageType") == Some("message"))
            .filter(|m| m.get("deletedDateTime").is_none_or(Value::is_null))
            .filter_map(|m| {
                let sent = text(m, "createdDateTime").and_then(time::parse_iso8601)?;
                let sent_micros = sent.unix_millis() * 1000;
                if sent_micros <= after_micros {
                    return None;
                }
                let id = text(m, "id")?;
                let sender = m.pointer("/from/user/id").and_then(Value::as_str)?;
                Some(InboundEvent {
                    event_id: format!("history/{chat}/{id}"),
                    platform: Platform::Teams,
                    kind: InboundKind::MessagePosted {
                        message: MessageRef {
                            chat: chat.clone(),
                            id: id.to_owned(),
                        },
                        chat_kind: chat_kind(chat.as_str()),
                        sender: ExternalUserId::new(sender),
                        recipient: None,
                        sent_at_micros: Some(sent_micros),
                        body: chat::read_body(m),
                        thread: None,
                    },
                })
            })
            .collect();
        found.sort_by_key(|event| match &event.kind {
            InboundKind::MessagePosted { sent_at_micros, .. } => *sent_at_micros,
            _ => None,
        });
        Ok(found)
    }

    /// Graph keeps no metadata of the sender's with a chat message: a copy is recognised by
    /// its author, its time and its content as this module renders it.
    async fn find_posted(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
        since: Timestamp,
    ) -> Result<Vec<MessageRef>, PlatformError> {
        let (token, own) = Self::acting(connection, actor)?;
        let url = self.client.graph_url(
            &format!("/chats/{}/messages", path(chat.as_str())),
            &[("$top", "50")],
        )?;
        let listed = self.client.get(token, &url).await?;
        let expected = chat::message_body(message);
        let expected = expected.pointer("/body/content").and_then(Value::as_str);
        let mut found: Vec<(Timestamp, MessageRef)> = listed
            .get("value")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|m| m.pointer("/from/user/id").and_then(Value::as_str) == Some(own.as_str()))
            .filter(|m| {
                let content = m.pointer("/body/content").and_then(Value::as_str);
                // A reply was posted after a quote of what it answers.
                content == expected
                    || (message.thread.is_some()
                        && content.zip(expected).is_some_and(|(c, e)| c.ends_with(e)))
            })
            .filter_map(|m| {
                let at = text(m, "createdDateTime").and_then(time::parse_iso8601)?;
                let id = text(m, "id")?;
                (at >= since).then(|| {
                    (
                        at,
                        MessageRef {
                            chat: chat.clone(),
                            id: id.to_owned(),
                        },
                    )
                })
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        Ok(found.into_iter().map(|(_, message)| message).collect())
    }

    async fn edit_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        replacement: &OutboundMessage,
    ) -> Result<(), PlatformError> {
        let (token, _) = Self::acting(connection, actor)?;
        let url = self.client.graph_url(
            &format!(
                "/chats/{}/messages/{}",
                path(message.chat.as_str()),
                path(&message.id)
            ),
            &[],
        )?;
        self.client
            .graph(
                token,
                Method::PATCH,
                &url,
                Some(&chat::message_body(replacement)),
                &[],
            )
            .await
            .map(drop)
    }

    async fn delete_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
    ) -> Result<(), PlatformError> {
        let (token, actor_id) = Self::acting(connection, actor)?;
        let url = self.client.graph_url(
            &format!(
                "/users/{}/chats/{}/messages/{}/softDelete",
                path(&actor_id),
                path(message.chat.as_str()),
                path(&message.id)
            ),
            &[],
        )?;
        self.client
            .graph(token, Method::POST, &url, Some(&json!({})), &[])
            .await
            .map(drop)
    }

    async fn set_reaction(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        emoji: &str,
        present: bool,
    ) -> Result<(), PlatformError> {
        let (token, _) = Self::acting(connection, actor)?;
        let action = if present {
            "setReaction"
        } else {
            "unsetReaction"
        };
        let url = self.client.graph_url(
            &format!(
                "/chats/{}/messages/{}/{action}",
                path(message.chat.as_str()),
                path(&message.id)
            ),
            &[],
        )?;
        self.client
            .graph(
                token,
                Method::POST,
                &url,
                Some(&json!({"reactionType": emoji})),
                &[],
            )
            .await
            .map(drop)
    }

    fn verify_webhook(
        &self,
        connection: &ConnectionContext,
        request: &WebhookRequest,
    ) -> Result<WebhookVerdict, PlatformError> {
        let expected = connection.credentials.get(CLIENT_STATE)?.expose_secret();
        webhook::verify(request, expected)
    }

    /// Graph cannot change a subscription's `clientState`: a reconnect keeps the one the
    /// tenant's subscriptions were made with.
    fn kept_on_reconnect(&self) -> &'static [&'static str] {
        &[CLIENT_STATE]
    }

    /// One tenant-wide subscription to every chat message (`/chats/getAllMessages`, app-only),
    /// created when missing and renewed once half its life has passed; lifecycle signals go to
    /// the same URL. Graph lets Teams subscriptions live at most three days.
    async fn maintain_subscriptions(
        &self,
        connection: &ConnectionContext,
        events_url: &str,
        current: &[EventSubscription],
        now: Timestamp,
    ) -> Result<Vec<EventSubscription>, PlatformError> {
        let expires_at = Timestamp::from_unix_millis(
            now.unix_millis() + SUBSCRIPTION_LIFETIME.as_millis() as i64,
        );
        let half_life = SUBSCRIPTION_LIFETIME.as_millis() as i64 / 2;
        let mut kept = Vec::new();
        for subscription in current {
            if subscription.resource != ALL_CHAT_MESSAGES || !kept.is_empty() {
                self.delete_subscription(connection, None, &subscription.id)
                    .await?;
                continue;
            }
            if subscription.expires_at.unix_millis() - now.unix_millis() > half_life {
                kept.push(subscription.clone());
                continue;
            }
            match self
                .renew_subscription(connection, None, &subscription.id, expires_at)
                .await
            {
                Ok(()) => kept.push(EventSubscription {
                    expires_at,
                    ..subscription.clone()
                }),
                // Expired or removed by Graph: created again below.
                Err(PlatformError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        if kept.is_empty() {
            let id = self
                .subscribe(
                    connection,
                    None,
                    ALL_CHAT_MESSAGES,
                    "created,updated,deleted",
                    events_url,
                    Some(events_url),
                    expires_at,
                )
                .await?;
            kept.push(EventSubscription {
                id,
                resource: ALL_CHAT_MESSAGES.to_owned(),
                expires_at,
            });
        }
        Ok(kept)
    }

    async fn remove_subscriptions(
        &self,
        connection: &ConnectionContext,
        current: &[EventSubscription],
    ) -> Result<(), PlatformError> {
        for subscription in current {
            self.delete_subscription(connection, None, &subscription.id)
                .await?;
        }
        Ok(())
    }

    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
        webhook::envelopes(&request.body)
    }

    fn announced_post(&self, envelope: &EventEnvelope) -> Option<AnnouncedPost> {
        webhook::announced_post(&envelope.payload)
    }

    /// Graph's notifications carry ids, not content: what changed is read with the app's
    /// token, which can read every chat of the tenant (`Chat.Read.All`).
    async fn read_event(
        &self,
        connection: &ConnectionContext,
        envelope: &EventEnvelope,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        let notice = webhook::stored_notice(&envelope.payload)?;
        self.fetch_change(connection, None, &notice).await
    }

    /// Read with the app's token for [`Actor::Hub`] (the service user is in no chat it did not
    /// start), and as the representation otherwise.
    async fn chat_members(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
    ) -> Result<Vec<ExternalUserId>, PlatformError> {
        let reader = match actor {
            Actor::Hub => None,
            representation @ Actor::Representation { .. } => Some(representation),
        };
        let token = self.token_for(connection, reader).await?;
        let url = self
            .client
            .graph_url(&format!("/chats/{}/members", path(chat.as_str())), &[])?;
        let found = self.client.get(&token, &url).await?;
        let members = found
            .get("value")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                PlatformError::Rejected("Graph listed a chat's members without a value".to_owned())
            })?;
        Ok(members
            .iter()
            .filter_map(|member| member.get("userId").and_then(Value::as_str))
            .map(ExternalUserId::new)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_have_microsoft_defaults_and_refuse_unknown_keys() {
        let settings: TeamsSettings =
            serde_json::from_value(json!({"client_id": "c", "client_secret": "s"})).unwrap();
        assert_eq!(settings.login_base_url, "https://login.microsoftonline.com");
        assert_eq!(settings.graph_base_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(settings.request_timeout_secs, 10);
        assert!(!format!("{settings:?}").contains("\"s\""));
        assert!(
            serde_json::from_value::<TeamsSettings>(
                json!({"client_id": "c", "client_secret": "s", "colour": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn interop_names_are_readable_and_distinct() {
        let a = interop_local_part(&Email::parse("Ada.Berg.1@acme.example").unwrap(), "0a1b");
        let b = interop_local_part(&Email::parse("ada.berg.1@acme.other").unwrap(), "0a1b");
        assert!(a.starts_with("ada.berg.1.acme."), "{a}");
        assert!(a.ends_with("0a1b"), "{a}");
        assert_ne!(a, b);
        let long = interop_local_part(
            &Email::parse(&format!("{}@acme.example", "x".repeat(90))).unwrap(),
            "ffff",
        );
        assert!(long.len() <= 64 && long.ends_with("ffff"), "{long}");
        assert!(random_password().len() >= 16);
    }

    #[test]
    fn chat_kinds_follow_teams_ids() {
        assert_eq!(chat_kind("19:a_b@unq.gbl.spaces"), ChatKind::Direct);
        assert_eq!(chat_kind("19:abc@thread.v2"), ChatKind::Group);
    }
}
