//! The workspace's directory and the bots that represent people: importing every user,
//! looking one up by address, prompting a person in a DM from the hub's bot, and creating
//! (one app per person, from a manifest) and deleting bots.
//!
//! - `users.list`: <https://api.slack.com/methods/users.list>
//! - `users.lookupByEmail`: <https://api.slack.com/methods/users.lookupByEmail>
//! - App manifests: <https://api.slack.com/reference/manifests>,
//!   <https://api.slack.com/methods/apps.manifest.create>,
//!   <https://api.slack.com/methods/apps.manifest.delete>

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::wire;
use switchboard_platform::{
    ConnectionContext, Credentials, FlowContext, ImportRequest, PlatformError, PlatformUser,
    Prompt, ProvisionRequest, Provisioning, UserPage,
};
use switchboard_secrets::ExposeSecret;

use crate::client::{Auth, Body, required};
use crate::connect::{Flow, random_state, secret_of};
use crate::mapping::WireUser;
use crate::messaging::ResponseMetadata;
use crate::{REPRESENTATION_BOT_EVENTS, REPRESENTATION_BOT_SCOPES, SlackPlatform, credential};

/// A page of `users.list`.
#[derive(Debug, Deserialize)]
struct Users {
    members: Vec<WireUser>,
    #[serde(default, deserialize_with = "wire::lenient")]
    response_metadata: Option<ResponseMetadata>,
}

/// `users.lookupByEmail`'s answer.
#[derive(Debug, Deserialize)]
struct Found {
    user: WireUser,
}

/// `apps.manifest.create`'s answer: the new app and its secrets.
#[derive(Debug, Deserialize)]
struct CreatedApp {
    app_id: Option<String>,
    credentials: Option<AppCredentials>,
}

#[derive(Debug, Default, Deserialize)]
struct AppCredentials {
    client_id: Option<String>,
    client_secret: Option<String>,
    signing_secret: Option<String>,
}

/// Slack's escaping of `&`, `<` and `>` in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl SlackPlatform {
    /// Creates a person's bot app and returns the consent step bound to `flow` (its callback URL
    /// must start with [`SlackSettings::redirect_url`]). The trait's
    /// [`ChatPlatform::provision_representation`] has no flow context, so it calls this with a
    /// state of its own (see `docs/platforms/slack.md`).
    ///
    /// [`SlackSettings::redirect_url`]: crate::SlackSettings::redirect_url
    /// [`ChatPlatform::provision_representation`]: switchboard_platform::ChatPlatform::provision_representation
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
        let app: CreatedApp = self
            .call(
                METHOD,
                Auth::Bearer(config_token),
                Body::Form(vec![("manifest", manifest.to_string())]),
            )
            .await?
            .read(METHOD)?;
        let app_id = required(app.app_id, METHOD, "/app_id")?;
        let secrets = app.credentials.unwrap_or_default();
        let client_id = required(secrets.client_id, METHOD, "/credentials/client_id")?;
        let bot = Flow::InstallBot {
            state: flow.state.clone(),
            redirect_uri: flow.callback_url.clone(),
            app_id: app_id.clone(),
            client_id: client_id.clone(),
            client_secret: required(secrets.client_secret, METHOD, "/credentials/client_secret")?,
            signing_secret: required(
                secrets.signing_secret,
                METHOD,
                "/credentials/signing_secret",
            )?,
        };
        let mut created = Credentials::default();
        created.insert(credential::APP_ID, secret_of(app_id));
        Ok(Provisioning::AwaitingConsent {
            url: self.authorize_url(
                &client_id,
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
}

pub(crate) async fn send_prompt(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    to: &ExternalUserId,
    prompt: &Prompt,
) -> Result<(), PlatformError> {
    let token = connection.credentials.get(credential::BOT_TOKEN)?;
    let channel = slack.open(token, &[to.as_str()]).await?;
    let text = format!("{} <{}|Sync now>", escape(&prompt.text), prompt.link);
    slack
        .post(
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

pub(crate) async fn import_users(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    request: &ImportRequest,
) -> Result<UserPage, PlatformError> {
    const METHOD: &str = "users.list";
    let token = connection.credentials.get(credential::BOT_TOKEN)?;
    let mut args = vec![("limit", "200".to_owned())];
    if let Some(cursor) = &request.cursor {
        args.push(("cursor", cursor.clone()));
    }
    let users: Users = slack
        .call(METHOD, Auth::Bearer(token), Body::Form(args))
        .await?
        .read(METHOD)?;
    let next_cursor = users
        .response_metadata
        .and_then(|metadata| metadata.next_cursor)
        .filter(|c| !c.is_empty());
    Ok(UserPage {
        users: users
            .members
            .into_iter()
            .map(WireUser::into_platform)
            .collect(),
        next_cursor,
    })
}

pub(crate) async fn lookup_by_email(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    email: &Email,
) -> Result<Option<PlatformUser>, PlatformError> {
    const METHOD: &str = "users.lookupByEmail";
    let token = connection.credentials.get(credential::BOT_TOKEN)?;
    match slack
        .call(
            METHOD,
            Auth::Bearer(token),
            Body::Form(vec![("email", email.as_str().to_owned())]),
        )
        .await
    {
        Ok(reply) => {
            let found: Found = reply.read(METHOD)?;
            Ok(Some(found.user.into_platform()))
        }
        Err(PlatformError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

pub(crate) async fn provision_representation(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    request: &ProvisionRequest,
) -> Result<Provisioning, PlatformError> {
    // The trait passes no flow context here: the consent link returns to the configured
    // redirect URL with a state of our own, which the hub reads from the link's `state`
    // parameter (or it calls `continue_flow` with no callback to rebind it to its own).
    let flow = FlowContext {
        callback_url: slack.settings.redirect_url.clone(),
        state: random_state(),
    };
    slack.provision_with_flow(connection, request, &flow).await
}

pub(crate) async fn remove_representation(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    credentials: &Credentials,
) -> Result<(), PlatformError> {
    // The app is the bot: deleting it (approved or not) revokes its tokens and deactivates
    // its bot user.
    let config_token = connection
        .credentials
        .get(credential::APP_CONFIGURATION_TOKEN)?;
    let app_id = credentials.get(credential::APP_ID)?;
    match slack
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
