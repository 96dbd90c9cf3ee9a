//! Connecting a workspace and installing bots with Slack's OAuth v2, the app configuration
//! token the hub keeps fresh, and the health check.
//!
//! A connection installs the hub's own app (`oauth.v2.access` with its client credentials)
//! after the admin's app configuration tokens are checked by rotating them once; a person's bot
//! app is installed the same way, with that app's credentials. Bot tokens do not expire; the
//! configuration token lives twelve hours and is rotated with its refresh token.
//!
//! - OAuth v2: <https://api.slack.com/authentication/oauth-v2>
//! - Configuration tokens: <https://api.slack.com/authentication/config-tokens>
//! - `auth.test`: <https://api.slack.com/methods/auth.test>

use rand::Rng;
use serde::{Deserialize, Serialize};
use switchboard_core::{ExternalTenantId, ExternalUserId, Timestamp};
use switchboard_platform::{
    ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep, Health,
    PlatformError,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::client::{Auth, Body, required, split_scopes};
use crate::{
    CONFIGURATION_TOKEN_LIFETIME, HUB_BOT_SCOPES, REPRESENTATION_BOT_SCOPES, SlackPlatform,
    credential,
};

/// What a flow remembers between its steps; kept sealed by the hub in a [`FlowState`]. It holds
/// secrets, so it has no `Debug`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
pub(crate) enum Flow {
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
    pub(crate) fn seal(&self) -> FlowState {
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

/// `tooling.tokens.rotate`'s answer.
#[derive(Debug, Deserialize)]
struct Rotated {
    token: Option<String>,
    refresh_token: Option<String>,
    /// When the new token expires (Unix seconds).
    exp: Option<i64>,
    /// When it was issued, for an answer without `exp`.
    iat: Option<i64>,
}

/// `oauth.v2.access`'s answer.
#[derive(Debug, Deserialize)]
struct Installed {
    token_type: Option<String>,
    access_token: Option<String>,
    bot_user_id: Option<String>,
    scope: Option<String>,
    team: Option<Workspace>,
}

#[derive(Debug, Deserialize)]
struct Workspace {
    id: Option<String>,
    name: Option<String>,
}

impl Installed {
    fn team_id(&self) -> Option<String> {
        self.team.as_ref()?.id.clone()
    }

    fn team_name(&self) -> Option<String> {
        self.team.as_ref()?.name.clone()
    }
}

/// `auth.test`'s answer: who the token is, and where.
#[derive(Debug, Deserialize)]
struct Identity {
    user_id: Option<String>,
    user: Option<String>,
    team: Option<String>,
}

pub(crate) fn secret_of(text: impl Into<String>) -> SecretString {
    SecretString::from(text.into())
}

pub(crate) fn random_state() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

impl SlackPlatform {
    pub(crate) fn authorize_url(
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

    async fn rotate(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(String, String, Option<i64>), PlatformError> {
        const METHOD: &str = "tooling.tokens.rotate";
        let rotated: Rotated = self
            .call(
                METHOD,
                Auth::None,
                Body::Form(vec![(
                    "refresh_token",
                    refresh_token.expose_secret().to_owned(),
                )]),
            )
            .await?
            .read(METHOD)?;
        let token = required(rotated.token, METHOD, "/token")?;
        let refresh = required(rotated.refresh_token, METHOD, "/refresh_token")?;
        let expires = rotated.exp.or_else(|| {
            rotated
                .iat
                .map(|iat| iat + CONFIGURATION_TOKEN_LIFETIME.as_secs() as i64)
        });
        Ok((token, refresh, expires))
    }

    /// `oauth.v2.access` for the app with `client_id`.
    async fn exchange(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Installed, PlatformError> {
        const METHOD: &str = "oauth.v2.access";
        let installed: Installed = self
            .call(
                METHOD,
                Auth::Basic(client_id, client_secret),
                Body::Form(vec![
                    ("code", code.to_owned()),
                    ("redirect_uri", redirect_uri.to_owned()),
                ]),
            )
            .await?
            .read(METHOD)?;
        if installed.token_type.as_deref() != Some("bot") {
            return Err(PlatformError::Rejected(
                "oauth.v2.access granted no bot token; the installation asked for no bot scopes"
                    .into(),
            ));
        }
        Ok(installed)
    }
}

pub(crate) async fn begin_connect(
    slack: &SlackPlatform,
    inputs: &Credentials,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    let refresh = inputs.get(credential::APP_CONFIGURATION_REFRESH_TOKEN)?;
    // Rotating checks the admin's tokens and starts the hub's own twelve hours.
    let (config_token, config_refresh_token, config_expires_at) = slack.rotate(refresh).await?;
    let url = slack.authorize_url(
        &slack.settings.client_id,
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

pub(crate) async fn continue_flow(
    slack: &SlackPlatform,
    connection: Option<&ConnectionContext>,
    state: &FlowState,
    flow: &FlowContext,
    callback: &[(String, String)],
) -> Result<FlowStep, PlatformError> {
    const METHOD: &str = "oauth.v2.access";
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
                let url = slack.authorize_url(
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
            let installed = slack
                .exchange(
                    &slack.settings.client_id,
                    &slack.settings.client_secret,
                    code,
                    &redirect_uri,
                )
                .await?;
            let mut credentials = Credentials::default();
            credentials.insert(
                credential::BOT_TOKEN,
                secret_of(required(
                    installed.access_token.clone(),
                    METHOD,
                    "/access_token",
                )?),
            );
            credentials.insert(
                credential::BOT_USER_ID,
                secret_of(required(
                    installed.bot_user_id.clone(),
                    METHOD,
                    "/bot_user_id",
                )?),
            );
            credentials.insert(
                credential::SCOPE,
                secret_of(installed.scope.clone().unwrap_or_default()),
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
                tenant: ExternalTenantId::new(required(installed.team_id(), METHOD, "/team/id")?),
                display_name: required(installed.team_name(), METHOD, "/team/name")?,
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
            let installed = slack
                .exchange(&client_id, &client_secret, code, &redirect_uri)
                .await?;
            if let Some(connection) = connection {
                let team = required(installed.team_id(), METHOD, "/team/id")?;
                if team != connection.connection.tenant.as_str() {
                    return Err(PlatformError::Rejected(format!(
                        "the bot was installed in workspace {team}, not in {}",
                        connection.connection.tenant
                    )));
                }
            }
            let bot_user = required(installed.bot_user_id, METHOD, "/bot_user_id")?;
            let mut credentials = Credentials::default();
            credentials.insert(
                credential::BOT_TOKEN,
                secret_of(required(installed.access_token, METHOD, "/access_token")?),
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

pub(crate) async fn refresh(
    slack: &SlackPlatform,
    credentials: &Credentials,
) -> Result<Credentials, PlatformError> {
    // Bot tokens do not expire (token rotation is off in every manifest): only a connection's
    // app configuration token needs renewing. A bot's token is revoked when an admin removes
    // its app, though, so it is checked: the same credentials come back while it works.
    let Ok(refresh) = credentials.get(credential::APP_CONFIGURATION_REFRESH_TOKEN) else {
        if let Ok(token) = credentials.get(credential::BOT_TOKEN) {
            slack
                .call("auth.test", Auth::Bearer(token), Body::Form(Vec::new()))
                .await?;
        }
        return Ok(credentials.clone());
    };
    let (token, refresh_token, expires_at) = slack.rotate(refresh).await?;
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

pub(crate) async fn check_health(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
) -> Result<Health, PlatformError> {
    const METHOD: &str = "auth.test";
    let token = connection.credentials.get(credential::BOT_TOKEN)?;
    let reply = slack
        .call(METHOD, Auth::Bearer(token), Body::Form(Vec::new()))
        .await?;
    let scopes = match &reply.scopes {
        Some(scopes) => scopes.clone(),
        None => connection
            .credentials
            .get(credential::SCOPE)
            .map(|s| split_scopes(s.expose_secret()))
            .unwrap_or_default(),
    };
    let found: Identity = reply.read(METHOD)?;
    // The bot user's and the workspace's names, which an admin recognises; the id too,
    // which is what Slack's own pages and logs show.
    let id = required(found.user_id, METHOD, "/user_id")?;
    let name = |text: Option<String>| text.filter(|text| !text.is_empty());
    let identity = match (name(found.user), name(found.team)) {
        (Some(user), Some(team)) => format!("{user} in {team} ({id})"),
        (Some(user), None) => format!("{user} ({id})"),
        (None, Some(team)) => format!("{id} in {team}"),
        (None, None) => id,
    };
    Ok(Health { identity, scopes })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::settings::tests::{Epoch, settings};

    #[test]
    fn the_consent_link_names_the_app_scopes_redirect_and_state() {
        let platform = SlackPlatform::new(
            settings(serde_json::json!({"api_base_url": "http://sim/slack/"})).unwrap(),
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
