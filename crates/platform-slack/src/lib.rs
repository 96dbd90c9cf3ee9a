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

mod client;
mod mapping;
pub mod markup;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use switchboard_core::{
    Abilities, Clock, Email, ExternalChatId, ExternalTenantId, ExternalUserId, ImportScope, Noun,
    Platform, PlatformRules, PlatformWords, RepresentationKind, RepresentationRule, Timestamp,
};
use switchboard_platform::{
    Actor, AnnouncedPost, ChatPlatform, ConnectField, ConnectionContext, Credentials,
    EventEnvelope, FlowContext, FlowOutcome, FlowState, FlowStep, Health, ImportRequest,
    InboundEvent, InboundKind, MessageRef, OutboundMessage, PlatformError, PlatformUser, Prompt,
    ProvisionRequest, Provisioning, ProvisioningRate, Rate, RetryPolicy, Team, UserPage,
    WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::client::{Auth, Body, Client, Reply, split_scopes};
use crate::mapping::{WireUser, reaction_name};

/// The `event_type` of the metadata the hub stores with each copy it posts: its idempotency
/// key, to recognise the copy after a crash.
const COPY_EVENT_TYPE: &str = "switchboard_copy";

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

/// How the hub reaches Slack and who it is there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// `https://slack.com`; the simulator's is `http://HOST:PORT/slack`. The Web API is under
    /// `{api_base_url}/api/{method}`, OAuth consent at `{api_base_url}/oauth/v2/authorize`.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// The hub's own Slack app.
    pub client_id: String,
    #[serde(deserialize_with = "secret")]
    pub client_secret: SecretString,
    #[serde(deserialize_with = "secret")]
    pub signing_secret: SecretString,
    /// The hub's public Events API Request URL, set in every bot app's manifest.
    pub events_url: String,
    /// The hub's public OAuth callback URL (the `callback_url` of its flows), set as the
    /// Redirect URL of every bot app's manifest.
    pub redirect_url: String,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Whether bots' apps are created at Slack's published pace (one a minute); off only for
    /// a server that sets no such limit, as the simulator with its rate limits off, where the
    /// pace would only slow the hub down.
    #[serde(default = "default_pace_apps")]
    pub pace_apps: bool,
}

fn default_pace_apps() -> bool {
    true
}

fn default_api_base_url() -> String {
    "https://slack.com".to_owned()
}

fn default_timeout() -> u64 {
    10
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

#[derive(Debug, thiserror::Error)]
pub enum SlackSetupError {
    #[error("invalid Slack setting {0}")]
    Setting(String),
    #[error("cannot build the Slack HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

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

/// What a flow remembers between its steps; kept sealed by the hub in a [`FlowState`]. It holds
/// secrets, so it has no `Debug`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
enum Flow {
    /// Installing the hub's app in a workspace.
    Connect {
        state: String,
        redirect_uri: String,
        config_token: String,
        config_refresh_token: String,
        config_expires_at: Option<i64>,
    },
    /// An admin approving a person's bot app.
    InstallBot {
        state: String,
        redirect_uri: String,
        app_id: String,
        client_id: String,
        client_secret: String,
        signing_secret: String,
    },
}

impl Flow {
    fn seal(&self) -> FlowState {
        FlowState(serde_json::to_string(self).unwrap_or_default())
    }

    fn open(state: &FlowState) -> Result<Self, PlatformError> {
        serde_json::from_str(&state.0)
            .map_err(|_| PlatformError::Rejected("the flow state is not a Slack flow's".into()))
    }

    fn expected_state(&self) -> &str {
        match self {
            Flow::Connect { state, .. } | Flow::InstallBot { state, .. } => state,
        }
    }
}

fn secret_of(text: impl Into<String>) -> SecretString {
    SecretString::from(text.into())
}

fn field<'v>(body: &'v Value, pointer: &str, method: &str) -> Result<&'v str, PlatformError> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PlatformError::Rejected(format!("{method} answered without {pointer}")))
}

fn random_state() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Slack's escaping of `&`, `<` and `>` in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

impl SlackPlatform {
    /// Builds the module. `clock` decides the webhook timestamp window (the hub passes its
    /// wall clock).
    pub fn new(settings: SlackSettings, clock: Arc<dyn Clock>) -> Result<Self, SlackSetupError> {
        for (name, url) in [
            ("api_base_url", &settings.api_base_url),
            ("events_url", &settings.events_url),
            ("redirect_url", &settings.redirect_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(SlackSetupError::Setting(format!(
                    "{name}: '{url}' is not an http(s) URL"
                )));
            }
        }
        if settings.client_id.trim().is_empty() {
            return Err(SlackSetupError::Setting("client_id: it is empty".into()));
        }
        if settings.request_timeout_secs == 0 {
            return Err(SlackSetupError::Setting(
                "request_timeout_secs: it must be at least 1".into(),
            ));
        }
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

    fn authorize_url(
        &self,
        client_id: &str,
        scopes: &[&str],
        redirect_uri: &str,
        state: &str,
    ) -> String {
        format!(
            "{}/oauth/v2/authorize?{}",
            self.base,
            query(&[
                ("client_id", client_id),
                ("scope", &scopes.join(",")),
                ("redirect_uri", redirect_uri),
                ("state", state),
            ])
        )
    }

    async fn call(&self, method: &str, auth: Auth<'_>, body: Body) -> Result<Reply, PlatformError> {
        self.client.call(method, auth, body).await
    }

    async fn rotate(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(String, String, Option<i64>), PlatformError> {
        const METHOD: &str = "tooling.tokens.rotate";
        let reply = self
            .call(
                METHOD,
                Auth::None,
                Body::Form(vec![(
                    "refresh_token",
                    refresh_token.expose_secret().to_owned(),
                )]),
            )
            .await?;
        let token = field(&reply.body, "/token", METHOD)?.to_owned();
        let refresh = field(&reply.body, "/refresh_token", METHOD)?.to_owned();
        let expires = reply.body.get("exp").and_then(Value::as_i64).or_else(|| {
            reply
                .body
                .get("iat")
                .and_then(Value::as_i64)
                .map(|iat| iat + CONFIGURATION_TOKEN_LIFETIME.as_secs() as i64)
        });
        Ok((token, refresh, expires))
    }

    fn token<'a>(
        connection: &'a ConnectionContext,
        actor: &'a Actor,
    ) -> Result<&'a SecretString, PlatformError> {
        match actor {
            Actor::Hub => connection.credentials.get(credential::BOT_TOKEN),
            Actor::Representation { credentials, .. } => credentials.get(credential::BOT_TOKEN),
        }
    }

    /// `oauth.v2.access` for the app with `client_id`.
    async fn exchange(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Value, PlatformError> {
        let reply = self
            .call(
                "oauth.v2.access",
                Auth::Basic(client_id, client_secret),
                Body::Form(vec![
                    ("code", code.to_owned()),
                    ("redirect_uri", redirect_uri.to_owned()),
                ]),
            )
            .await?;
        if reply.body.get("token_type").and_then(Value::as_str) != Some("bot") {
            return Err(PlatformError::Rejected(
                "oauth.v2.access granted no bot token; the installation asked for no bot scopes"
                    .into(),
            ));
        }
        Ok(reply.body)
    }

    /// `chat.postMessage` as JSON.
    async fn post(&self, token: &SecretString, body: Value) -> Result<MessageRef, PlatformError> {
        const METHOD: &str = "chat.postMessage";
        let reply = self
            .call(METHOD, Auth::Bearer(token), Body::Json(body))
            .await?;
        Ok(MessageRef {
            chat: ExternalChatId::new(field(&reply.body, "/channel", METHOD)?),
            id: field(&reply.body, "/ts", METHOD)?.to_owned(),
        })
    }

    async fn open(
        &self,
        token: &SecretString,
        users: &[&str],
    ) -> Result<ExternalChatId, PlatformError> {
        const METHOD: &str = "conversations.open";
        let reply = self
            .call(
                METHOD,
                Auth::Bearer(token),
                Body::Form(vec![("users", users.join(","))]),
            )
            .await?;
        Ok(ExternalChatId::new(field(
            &reply.body,
            "/channel/id",
            METHOD,
        )?))
    }

    /// Every item of `field` across the pages of a cursor-paginated method, 200 a page.
    async fn list_all(
        &self,
        method: &str,
        token: &SecretString,
        arguments: Vec<(&'static str, String)>,
        field: &str,
    ) -> Result<Vec<Value>, PlatformError> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut form = arguments.clone();
            form.push(("limit", "200".to_owned()));
            if !cursor.is_empty() {
                form.push(("cursor", cursor.clone()));
            }
            let reply = self
                .call(method, Auth::Bearer(token), Body::Form(form))
                .await?
                .body;
            let page = reply.get(field).and_then(Value::as_array).ok_or_else(|| {
                PlatformError::Rejected(format!("{method} answered without {field}"))
            })?;
            items.extend(page.iter().cloned());
            cursor = reply
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() {
                return Ok(items);
            }
        }
    }

    /// Creates a person's bot app and returns the consent step bound to `flow` (its callback URL
    /// must start with [`SlackSettings::redirect_url`]). The trait's
    /// [`ChatPlatform::provision_representation`] has no flow context, so it calls this with a
    /// state of its own (see `docs/platforms/slack.md`).
    pub async fn provision_with_flow(
        &self,
        connection: &ConnectionContext,
        request: &ProvisionRequest,
        flow: &FlowContext,
    ) -> Result<Provisioning, PlatformError> {
        const METHOD: &str = "apps.manifest.create";
        let config_token = connection
            .credentials
            .get(credential::APP_CONFIGURATION_TOKEN)?;
        let manifest = self.manifest(request);
        let reply = self
            .call(
                METHOD,
                Auth::Bearer(config_token),
                Body::Form(vec![("manifest", manifest.to_string())]),
            )
            .await?;
        let body = &reply.body;
        let bot = Flow::InstallBot {
            state: flow.state.clone(),
            redirect_uri: flow.callback_url.clone(),
            app_id: field(body, "/app_id", METHOD)?.to_owned(),
            client_id: field(body, "/credentials/client_id", METHOD)?.to_owned(),
            client_secret: field(body, "/credentials/client_secret", METHOD)?.to_owned(),
            signing_secret: field(body, "/credentials/signing_secret", METHOD)?.to_owned(),
        };
        let Flow::InstallBot {
            client_id, app_id, ..
        } = &bot
        else {
            unreachable!("built just above")
        };
        let mut created = Credentials::default();
        created.insert(credential::APP_ID, secret_of(app_id.clone()));
        Ok(Provisioning::AwaitingConsent {
            url: self.authorize_url(
                client_id,
                REPRESENTATION_BOT_SCOPES,
                &flow.callback_url,
                &flow.state,
            ),
            state: bot.seal(),
            created,
        })
    }

    /// The manifest of a person's bot app.
    fn manifest(&self, request: &ProvisionRequest) -> Value {
        let name: String = request.display_name.trim().chars().take(35).collect();
        let name = if name.is_empty() {
            request.email.as_str().chars().take(35).collect()
        } else {
            name
        };
        let display: String = request.display_name.trim().chars().take(80).collect();
        let display = if display.is_empty() {
            name.clone()
        } else {
            display
        };
        json!({
            "_metadata": {"major_version": 1, "minor_version": 1},
            "display_information": {
                "name": name,
                "description": "Represents a colleague who chats from another platform, through Switchboard.",
            },
            "features": {
                "app_home": {
                    "home_tab_enabled": false,
                    "messages_tab_enabled": true,
                    "messages_tab_read_only_enabled": false,
                },
                "bot_user": {"display_name": display, "always_online": true},
            },
            "oauth_config": {
                "redirect_urls": [self.settings.redirect_url],
                "scopes": {"bot": REPRESENTATION_BOT_SCOPES},
            },
            "settings": {
                "event_subscriptions": {
                    "request_url": self.settings.events_url,
                    "bot_events": REPRESENTATION_BOT_EVENTS,
                },
                "org_deploy_enabled": false,
                "socket_mode_enabled": false,
                "token_rotation_enabled": false,
            },
        })
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().unix_millis().div_euclid(1000)
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
    };
    PlatformRules {
        import: ImportScope::AllUsers,
        with_account: BOT,
        without_account: BOT,
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
        let refresh = inputs.get(credential::APP_CONFIGURATION_REFRESH_TOKEN)?;
        // Rotating checks the admin's tokens and starts the hub's own twelve hours.
        let (config_token, config_refresh_token, config_expires_at) = self.rotate(refresh).await?;
        let url = self.authorize_url(
            &self.settings.client_id,
            HUB_BOT_SCOPES,
            &flow.callback_url,
            &flow.state,
        );
        let state = Flow::Connect {
            state: flow.state.clone(),
            redirect_uri: flow.callback_url.clone(),
            config_token,
            config_refresh_token,
            config_expires_at,
        }
        .seal();
        Ok(FlowStep::Redirect { url, state })
    }

    async fn continue_flow(
        &self,
        connection: Option<&ConnectionContext>,
        state: &FlowState,
        flow: &FlowContext,
        callback: &[(String, String)],
    ) -> Result<FlowStep, PlatformError> {
        let param = |name: &str| {
            callback
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let remembered = Flow::open(state)?;
        // No code and no error: the hub asks for the consent link bound to its own flow (a bot
        // installation whose state the hub wants to generate itself).
        if param("code").is_none() && param("error").is_none() {
            return match remembered {
                Flow::InstallBot {
                    app_id,
                    client_id,
                    client_secret,
                    signing_secret,
                    ..
                } => {
                    let url = self.authorize_url(
                        &client_id,
                        REPRESENTATION_BOT_SCOPES,
                        &flow.callback_url,
                        &flow.state,
                    );
                    let state = Flow::InstallBot {
                        state: flow.state.clone(),
                        redirect_uri: flow.callback_url.clone(),
                        app_id,
                        client_id,
                        client_secret,
                        signing_secret,
                    }
                    .seal();
                    Ok(FlowStep::Redirect { url, state })
                }
                Flow::Connect { .. } => Err(PlatformError::Rejected(
                    "Slack came back with neither a code nor an error".into(),
                )),
            };
        }
        let returned = param("state").unwrap_or_default();
        if returned != remembered.expected_state() || returned != flow.state {
            return Err(PlatformError::Rejected(
                "the state Slack returned does not match this flow; start again".into(),
            ));
        }
        if let Some(error) = param("error") {
            let who = match remembered {
                Flow::Connect { .. } => "the hub's app",
                Flow::InstallBot { .. } => "this person's bot",
            };
            return Err(PlatformError::Rejected(if error == "access_denied" {
                format!("the admin declined to install {who} in the Slack workspace")
            } else {
                format!("Slack refused to install {who}: {error}")
            }));
        }
        let code = param("code").unwrap_or_default();
        match remembered {
            Flow::Connect {
                redirect_uri,
                config_token,
                config_refresh_token,
                config_expires_at,
                ..
            } => {
                let body = self
                    .exchange(
                        &self.settings.client_id,
                        &self.settings.client_secret,
                        code,
                        &redirect_uri,
                    )
                    .await?;
                const METHOD: &str = "oauth.v2.access";
                let mut credentials = Credentials::default();
                credentials.insert(
                    credential::BOT_TOKEN,
                    secret_of(field(&body, "/access_token", METHOD)?),
                );
                credentials.insert(
                    credential::BOT_USER_ID,
                    secret_of(field(&body, "/bot_user_id", METHOD)?),
                );
                credentials.insert(
                    credential::SCOPE,
                    secret_of(
                        body.get("scope")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                );
                credentials.insert(credential::APP_CONFIGURATION_TOKEN, secret_of(config_token));
                credentials.insert(
                    credential::APP_CONFIGURATION_REFRESH_TOKEN,
                    secret_of(config_refresh_token),
                );
                credentials.set_expires_at(
                    config_expires_at.map(|secs| Timestamp::from_unix_millis(secs * 1000)),
                );
                Ok(FlowStep::Done(FlowOutcome::Connected {
                    tenant: ExternalTenantId::new(field(&body, "/team/id", METHOD)?),
                    display_name: field(&body, "/team/name", METHOD)?.to_owned(),
                    credentials,
                }))
            }
            Flow::InstallBot {
                redirect_uri,
                app_id,
                client_id,
                client_secret,
                signing_secret,
                ..
            } => {
                let client_secret = secret_of(client_secret);
                let body = self
                    .exchange(&client_id, &client_secret, code, &redirect_uri)
                    .await?;
                const METHOD: &str = "oauth.v2.access";
                if let Some(connection) = connection {
                    let team = field(&body, "/team/id", METHOD)?;
                    if team != connection.connection.tenant.as_str() {
                        return Err(PlatformError::Rejected(format!(
                            "the bot was installed in workspace {team}, not in {}",
                            connection.connection.tenant
                        )));
                    }
                }
                let bot_user = field(&body, "/bot_user_id", METHOD)?.to_owned();
                let mut credentials = Credentials::default();
                credentials.insert(
                    credential::BOT_TOKEN,
                    secret_of(field(&body, "/access_token", METHOD)?),
                );
                credentials.insert(credential::BOT_USER_ID, secret_of(bot_user.clone()));
                credentials.insert(credential::APP_ID, secret_of(app_id));
                credentials.insert(credential::CLIENT_ID, secret_of(client_id));
                credentials.insert(credential::CLIENT_SECRET, client_secret);
                credentials.insert(credential::SIGNING_SECRET, secret_of(signing_secret));
                Ok(FlowStep::Done(FlowOutcome::Authorized {
                    account: ExternalUserId::new(bot_user),
                    credentials,
                }))
            }
        }
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
        // Bot tokens do not expire (token rotation is off in every manifest): only a connection's
        // app configuration token needs renewing. A bot's token is revoked when an admin removes
        // its app, though, so it is checked: the same credentials come back while it works.
        let Ok(refresh) = credentials.get(credential::APP_CONFIGURATION_REFRESH_TOKEN) else {
            if let Ok(token) = credentials.get(credential::BOT_TOKEN) {
                self.call("auth.test", Auth::Bearer(token), Body::Form(Vec::new()))
                    .await?;
            }
            return Ok(credentials.clone());
        };
        let (token, refresh_token, expires_at) = self.rotate(refresh).await?;
        let mut renewed = Credentials::default();
        for (name, value) in credentials.iter() {
            renewed.insert(name, value.clone());
        }
        renewed.insert(credential::APP_CONFIGURATION_TOKEN, secret_of(token));
        renewed.insert(
            credential::APP_CONFIGURATION_REFRESH_TOKEN,
            secret_of(refresh_token),
        );
        renewed.set_expires_at(expires_at.map(|secs| Timestamp::from_unix_millis(secs * 1000)));
        Ok(renewed)
    }

    async fn check_health(&self, connection: &ConnectionContext) -> Result<Health, PlatformError> {
        const METHOD: &str = "auth.test";
        let token = connection.credentials.get(credential::BOT_TOKEN)?;
        let reply = self
            .call(METHOD, Auth::Bearer(token), Body::Form(Vec::new()))
            .await?;
        let scopes = match reply.scopes {
            Some(scopes) => scopes,
            None => connection
                .credentials
                .get(credential::SCOPE)
                .map(|s| split_scopes(s.expose_secret()))
                .unwrap_or_default(),
        };
        // The bot user's and the workspace's names, which an admin recognises; the id too,
        // which is what Slack's own pages and logs show.
        let id = field(&reply.body, "/user_id", METHOD)?;
        let name = |pointer| field(&reply.body, pointer, METHOD).ok();
        let identity = match (name("/user"), name("/team")) {
            (Some(user), Some(team)) => format!("{user} in {team} ({id})"),
            (Some(user), None) => format!("{user} ({id})"),
            (None, Some(team)) => format!("{id} in {team}"),
            (None, None) => id.to_owned(),
        };
        Ok(Health { identity, scopes })
    }

    async fn send_prompt(
        &self,
        connection: &ConnectionContext,
        to: &ExternalUserId,
        prompt: &Prompt,
    ) -> Result<(), PlatformError> {
        let token = connection.credentials.get(credential::BOT_TOKEN)?;
        let channel = self.open(token, &[to.as_str()]).await?;
        let text = format!("{} <{}|Sync now>", escape(&prompt.text), prompt.link);
        self.post(
            token,
            json!({
                "channel": channel.as_str(),
                "text": text,
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": escape(&prompt.text)}},
                    {"type": "actions", "elements": [{
                        "type": "button",
                        "action_id": "switchboard_sync_now",
                        "text": {"type": "plain_text", "text": "Sync now"},
                        "url": prompt.link,
                        "style": "primary",
                    }]},
                ],
                "unfurl_links": false,
            }),
        )
        .await?;
        Ok(())
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
        const METHOD: &str = "users.list";
        let token = connection.credentials.get(credential::BOT_TOKEN)?;
        let mut args = vec![("limit", "200".to_owned())];
        if let Some(cursor) = &request.cursor {
            args.push(("cursor", cursor.clone()));
        }
        let reply = self
            .call(METHOD, Auth::Bearer(token), Body::Form(args))
            .await?;
        let members: Vec<WireUser> =
            serde_json::from_value(reply.body.get("members").cloned().unwrap_or(Value::Null))
                .map_err(|e| {
                    PlatformError::Rejected(format!("{METHOD} answered unreadable members: {e}"))
                })?;
        let next_cursor = reply
            .body
            .pointer("/response_metadata/next_cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        Ok(UserPage {
            users: members.into_iter().map(WireUser::into_platform).collect(),
            next_cursor,
        })
    }

    async fn lookup_by_email(
        &self,
        connection: &ConnectionContext,
        email: &Email,
    ) -> Result<Option<PlatformUser>, PlatformError> {
        const METHOD: &str = "users.lookupByEmail";
        let token = connection.credentials.get(credential::BOT_TOKEN)?;
        match self
            .call(
                METHOD,
                Auth::Bearer(token),
                Body::Form(vec![("email", email.as_str().to_owned())]),
            )
            .await
        {
            Ok(reply) => {
                let user: WireUser =
                    serde_json::from_value(reply.body.get("user").cloned().unwrap_or(Value::Null))
                        .map_err(|e| {
                            PlatformError::Rejected(format!(
                                "{METHOD} answered an unreadable user: {e}"
                            ))
                        })?;
                Ok(Some(user.into_platform()))
            }
            Err(PlatformError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn provision_representation(
        &self,
        connection: &ConnectionContext,
        request: &ProvisionRequest,
    ) -> Result<Provisioning, PlatformError> {
        // The trait passes no flow context here: the consent link returns to the configured
        // redirect URL with a state of our own, which the hub reads from the link's `state`
        // parameter (or it calls `continue_flow` with no callback to rebind it to its own).
        let flow = FlowContext {
            callback_url: self.settings.redirect_url.clone(),
            state: random_state(),
        };
        self.provision_with_flow(connection, request, &flow).await
    }

    async fn remove_representation(
        &self,
        connection: &ConnectionContext,
        _account: Option<&ExternalUserId>,
        credentials: &Credentials,
    ) -> Result<(), PlatformError> {
        // The app is the bot: deleting it (approved or not) revokes its tokens and deactivates
        // its bot user.
        let config_token = connection
            .credentials
            .get(credential::APP_CONFIGURATION_TOKEN)?;
        let app_id = credentials.get(credential::APP_ID)?;
        match self
            .call(
                "apps.manifest.delete",
                Auth::Bearer(config_token),
                Body::Form(vec![("app_id", app_id.expose_secret().to_owned())]),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(PlatformError::Rejected(message)) if message.ends_with("invalid_app_id") => {
                Err(PlatformError::NotFound(format!(
                    "{message} (the app is already deleted, or was created by another admin's configuration token)"
                )))
            }
            Err(error) => Err(error),
        }
    }

    fn webhook_secrets_of(&self, representation: &Credentials) -> Vec<(String, SecretString)> {
        match (
            representation.get(credential::APP_ID),
            representation.get(credential::SIGNING_SECRET),
        ) {
            (Ok(app_id), Ok(secret)) => {
                vec![(
                    app_signing_secret_name(app_id.expose_secret()),
                    secret.clone(),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn webhook_secret_name(&self, request: &WebhookRequest) -> Option<String> {
        webhook::app_id(request).map(|app_id| app_signing_secret_name(&app_id))
    }

    async fn open_chat(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        members: &[ExternalUserId],
    ) -> Result<ExternalChatId, PlatformError> {
        let token = Self::token(connection, actor)?;
        let own_id = match actor {
            Actor::Hub => connection
                .credentials
                .get(credential::BOT_USER_ID)
                .ok()
                .map(|id| id.expose_secret().to_owned()),
            Actor::Representation { account, .. } => Some(account.as_str().to_owned()),
        };
        // Slack adds the caller itself; it must not be listed.
        let mut users: Vec<&str> = Vec::new();
        for member in members {
            if Some(member.as_str()) != own_id.as_deref() && !users.contains(&member.as_str()) {
                users.push(member.as_str());
            }
        }
        if users.is_empty() {
            return Err(PlatformError::Rejected(
                "a chat needs at least one other member".into(),
            ));
        }
        if users.len() > 8 {
            return Err(PlatformError::Rejected(format!(
                "a Slack group DM holds at most 8 others besides the caller, not {}",
                users.len()
            )));
        }
        self.open(token, &users).await
    }

    async fn post_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
    ) -> Result<MessageRef, PlatformError> {
        let token = Self::token(connection, actor)?;
        let mut body = json!({"channel": chat.as_str(), "text": markup::render(&message.body)});
        if let Some(thread) = &message.thread {
            body["thread_ts"] = json!(thread.id);
        }
        if let Some(key) = &message.idempotency_key {
            body["metadata"] = json!({
                "event_type": COPY_EVENT_TYPE,
                "event_payload": {"key": key},
            });
        }
        self.post(token, body).await
    }

    async fn messages_since(
        &self,
        connection: &ConnectionContext,
        reader: &Actor,
        chat: &ExternalChatId,
        after_micros: i64,
    ) -> Result<Vec<InboundEvent>, PlatformError> {
        let token = Self::token(connection, reader)?;
        let after = after_micros.max(0);
        let oldest = format!("{}.{:06}", after / 1_000_000, after % 1_000_000);
        let listed = self
            .list_all(
                "conversations.history",
                token,
                vec![("channel", chat.as_str().to_owned()), ("oldest", oldest)],
                "messages",
            )
            .await?;
        let mut found: Vec<InboundEvent> = listed
            .iter()
            .filter_map(|message| {
                let kind = webhook::history_message(chat.as_str(), message)?;
                let ts = message.get("ts").and_then(Value::as_str)?;
                Some(InboundEvent {
                    event_id: format!("history/{chat}/{ts}"),
                    platform: Platform::Slack,
                    kind,
                })
            })
            .collect();
        found.sort_by_key(|event| match &event.kind {
            InboundKind::MessagePosted { sent_at_micros, .. } => *sent_at_micros,
            _ => None,
        });
        Ok(found)
    }

    async fn find_posted(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
        message: &OutboundMessage,
        since: Timestamp,
    ) -> Result<Vec<MessageRef>, PlatformError> {
        const METHOD: &str = "conversations.history";
        let token = Self::token(connection, actor)?;
        let own = match actor {
            Actor::Hub => connection
                .credentials
                .get(credential::BOT_USER_ID)?
                .expose_secret()
                .to_owned(),
            Actor::Representation { account, .. } => account.as_str().to_owned(),
        };
        let millis = since.unix_millis().max(0);
        let oldest = format!("{}.{:03}000", millis / 1000, millis % 1000);
        let rendered = markup::render(&message.body);
        let reply = self
            .call(
                METHOD,
                Auth::Bearer(token),
                Body::Form(vec![
                    ("channel", chat.as_str().to_owned()),
                    ("oldest", oldest),
                    ("limit", "200".to_owned()),
                    ("include_all_metadata", "true".to_owned()),
                ]),
            )
            .await?
            .body;
        let listed = reply
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                PlatformError::Rejected(format!("{METHOD} answered without messages"))
            })?;
        let mut found: Vec<(&str, MessageRef)> = listed
            .iter()
            .filter(|m| m.get("user").and_then(Value::as_str) == Some(own.as_str()))
            .filter(|m| {
                let key = m
                    .pointer("/metadata/event_payload/key")
                    .and_then(Value::as_str);
                match (key, &message.idempotency_key) {
                    (Some(stored), Some(wanted)) => stored == wanted,
                    // Without metadata, the text as posted is all there is to compare.
                    _ => m.get("text").and_then(Value::as_str) == Some(rendered.as_str()),
                }
            })
            .filter_map(|m| {
                let ts = m.get("ts").and_then(Value::as_str)?;
                Some((
                    ts,
                    MessageRef {
                        chat: chat.clone(),
                        id: ts.to_owned(),
                    },
                ))
            })
            .collect();
        found.sort_by_key(|(ts, _)| webhook::ts_micros(ts));
        Ok(found.into_iter().map(|(_, message)| message).collect())
    }

    async fn edit_message(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        message: &MessageRef,
        replacement: &OutboundMessage,
    ) -> Result<(), PlatformError> {
        let token = Self::token(connection, actor)?;
        self.call(
            "chat.update",
            Auth::Bearer(token),
            Body::Json(json!({
                "channel": message.chat.as_str(),
                "ts": message.id,
                "text": markup::render(&replacement.body),
            })),
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
        let token = Self::token(connection, actor)?;
        self.call(
            "chat.delete",
            Auth::Bearer(token),
            Body::Form(vec![
                ("channel", message.chat.as_str().to_owned()),
                ("ts", message.id.clone()),
            ]),
        )
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
        let token = Self::token(connection, actor)?;
        let name = reaction_name(emoji).ok_or_else(|| {
            PlatformError::Rejected(format!("no Slack name is known for the emoji {emoji}"))
        })?;
        let method = if present {
            "reactions.add"
        } else {
            "reactions.remove"
        };
        let result = self
            .call(
                method,
                Auth::Bearer(token),
                Body::Form(vec![
                    ("channel", message.chat.as_str().to_owned()),
                    ("timestamp", message.id.clone()),
                    ("name", name),
                ]),
            )
            .await;
        match result {
            // Already as asked: reacting is idempotent for the hub.
            Err(PlatformError::Rejected(m))
                if m.ends_with("already_reacted") || m.ends_with("no_reaction") =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    fn verify_webhook(
        &self,
        connection: &ConnectionContext,
        request: &WebhookRequest,
    ) -> Result<WebhookVerdict, PlatformError> {
        let prefix = credential::APP_SIGNING_SECRET_PREFIX;
        let apps: Vec<(&str, &SecretString)> = connection
            .credentials
            .iter()
            .filter_map(|(name, secret)| name.strip_prefix(prefix).map(|app| (app, secret)))
            .collect();
        let hub = &self.settings.signing_secret;
        webhook::verify(
            request,
            self.now_secs(),
            |app_id| {
                apps.iter()
                    .find(|(id, _)| *id == app_id)
                    .map_or(hub, |(_, s)| *s)
            },
            std::iter::once(hub).chain(apps.iter().map(|(_, s)| *s)),
        )
    }

    fn split_webhook(&self, request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
        webhook::envelopes(&request.body)
    }

    fn announced_post(&self, envelope: &EventEnvelope) -> Option<AnnouncedPost> {
        webhook::announced_post(envelope.payload.as_bytes())
    }

    fn redelivery_span(&self, request: &WebhookRequest) -> Option<Duration> {
        webhook::is_retry(request).then_some(webhook::REDELIVERY_SPAN)
    }

    async fn read_event(
        &self,
        _connection: &ConnectionContext,
        envelope: &EventEnvelope,
    ) -> Result<Option<InboundEvent>, PlatformError> {
        // Slack's events carry what happened in full: nothing to fetch.
        Ok(webhook::parse(envelope.payload.as_bytes())?
            .into_iter()
            .next())
    }

    async fn chat_members(
        &self,
        connection: &ConnectionContext,
        actor: &Actor,
        chat: &ExternalChatId,
    ) -> Result<Vec<ExternalUserId>, PlatformError> {
        let token = Self::token(connection, actor)?;
        let members = self
            .list_all(
                "conversations.members",
                token,
                vec![("channel", chat.as_str().to_owned())],
                "members",
            )
            .await?;
        Ok(members
            .iter()
            .filter_map(Value::as_str)
            .map(ExternalUserId::new)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Epoch;

    impl Clock for Epoch {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_millis(0)
        }
    }

    fn settings(extra: Value) -> Result<SlackSettings, serde_json::Error> {
        let mut value = json!({
            "client_id": "1.2", "client_secret": "cs", "signing_secret": "ss",
            "events_url": "https://hub.example/slack/events",
            "redirect_url": "https://hub.example/oauth/callback",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            value[k] = v.clone();
        }
        serde_json::from_value(value)
    }

    #[test]
    fn settings_have_defaults_refuse_unknown_keys_and_never_print_secrets() {
        let read = settings(json!({})).unwrap();
        assert_eq!(read.api_base_url, "https://slack.com");
        assert_eq!(read.request_timeout_secs, 10);
        let printed = format!("{:?}", SlackPlatform::new(read, Arc::new(Epoch)).unwrap());
        assert!(
            !printed.contains("cs\"") && !printed.contains("\"ss"),
            "{printed}"
        );
        assert!(settings(json!({"verification_token": "x"})).is_err());
        let bad = settings(json!({"events_url": "hub.example/events"})).unwrap();
        assert!(matches!(
            SlackPlatform::new(bad, Arc::new(Epoch)),
            Err(SlackSetupError::Setting(_))
        ));
    }

    #[test]
    fn the_consent_link_names_the_app_scopes_redirect_and_state() {
        let platform = SlackPlatform::new(
            settings(json!({"api_base_url": "http://sim/slack/"})).unwrap(),
            Arc::new(Epoch),
        )
        .unwrap();
        let url =
            platform.authorize_url("1.2", HUB_BOT_SCOPES, "https://hub.example/cb?x=1", "s t");
        assert!(url.starts_with(
            "http://sim/slack/oauth/v2/authorize?client_id=1.2&scope=chat%3Awrite%2C"
        ));
        assert!(url.ends_with("&redirect_uri=https%3A%2F%2Fhub.example%2Fcb%3Fx%3D1&state=s+t"));
    }
}
