//! How the hub's demo connects to the simulated Slack: the workspace's owner signs in, generates
//! app configuration tokens and creates the hub's app from a manifest, as an admin following
//! the hub's documentation would.

use serde_json::{Value, json};
use switchboard_sim_kit::demo::{between, browser, prepared};
use switchboard_sim_kit::html::unescape;
use switchboard_sim_kit::{Consent, DemoError, DemoHub, SimulatedConnect};

use crate::KEY;

/// What the demo keeps of the hub's app. Its fields are those of the `demo-slack-app.sealed`
/// files earlier demos wrote, which resumed demos still read.
#[derive(serde::Serialize, serde::Deserialize)]
struct HubApp {
    client_id: String,
    client_secret: String,
    signing_secret: String,
    configuration_token: String,
    configuration_refresh_token: String,
    admin_email: String,
}

/// The simulated Slack as the demo connects the hub to it.
pub struct SlackDemo;

#[async_trait::async_trait]
impl SimulatedConnect for SlackDemo {
    fn key(&self) -> &'static str {
        KEY
    }

    fn web_view(&self) -> &'static str {
        "/slack/"
    }

    async fn prepare(&self, sim: &str, hub: &DemoHub) -> Result<Option<Value>, DemoError> {
        let app = create_app(sim, hub).await?;
        serde_json::to_value(app)
            .map(Some)
            .map_err(|error| DemoError::Refused(error.to_string()))
    }

    fn hub_table(
        &self,
        sim: &str,
        hub: &DemoHub,
        prepared_app: Option<&Value>,
    ) -> Result<Value, DemoError> {
        let app: HubApp = prepared(KEY, prepared_app)?;
        Ok(json!({
            "api_base_url": format!("{sim}/slack"),
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "signing_secret": app.signing_secret,
            "events_url": hub.webhook_url,
            "redirect_url": hub.callback_url,
            "pace_apps": hub.paced,
        }))
    }

    fn consent(&self, prepared_app: Option<&Value>) -> Result<Consent, DemoError> {
        let app: HubApp = prepared(KEY, prepared_app)?;
        Ok(Consent {
            inputs: vec![
                (
                    "app_configuration_token".to_owned(),
                    app.configuration_token,
                ),
                (
                    "app_configuration_refresh_token".to_owned(),
                    app.configuration_refresh_token,
                ),
            ],
            identity: ("email".to_owned(), app.admin_email),
            accept: "allow".to_owned(),
        })
    }
}

/// Signs in as the workspace's primary owner, generates app configuration tokens, and creates
/// the hub's app from a manifest with them.
async fn create_app(sim: &str, hub: &DemoHub) -> Result<HubApp, DemoError> {
    let refused = |what: &str| DemoError::Refused(what.to_owned());
    let http = browser()?;
    let users: Value = http
        .get(format!("{sim}/_sim/users?platform={KEY}"))
        .send()
        .await?
        .json()
        .await?;
    let admin_email = users
        .as_array()
        .and_then(|users| users.iter().find(|u| u["kind"] == "primary_owner"))
        .and_then(|u| u["email"].as_str())
        .ok_or_else(|| refused("the workspace has no owner"))?
        .to_owned();
    let signed_in = http
        .post(format!("{sim}/slack/signin"))
        .form(&[("email", admin_email.as_str())])
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| refused("signing in set no session"))?
        .to_owned();
    let page = http
        .post(format!("{sim}/slack/apps/tokens"))
        .header("cookie", cookie)
        .send()
        .await?
        .text()
        .await?;
    let configuration_token = between(&page, "<code id=\"access-token\">", "</code>")
        .map(unescape)
        .ok_or_else(|| refused("no configuration token on the tokens page"))?;
    let configuration_refresh_token = between(&page, "<code id=\"refresh-token\">", "</code>")
        .map(unescape)
        .ok_or_else(|| refused("no refresh token on the tokens page"))?;
    let manifest = json!({
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Switchboard",
            "description": "Direct messages and group chats with colleagues on other platforms.",
        },
        "features": {
            "app_home": {"messages_tab_enabled": true, "messages_tab_read_only_enabled": false},
            "bot_user": {"display_name": "Switchboard", "always_online": true},
        },
        "oauth_config": {
            "redirect_urls": [hub.callback_url],
            "scopes": {"bot": hub.app_scopes},
        },
        "settings": {"org_deploy_enabled": false, "socket_mode_enabled": false},
    });
    let created: Value = http
        .post(format!("{sim}/slack/api/apps.manifest.create"))
        .bearer_auth(&configuration_token)
        .form(&[("manifest", manifest.to_string())])
        .send()
        .await?
        .json()
        .await?;
    if created["ok"] != true {
        return Err(DemoError::Refused(format!(
            "the hub's app was refused: {created}"
        )));
    }
    let credential = |name: &str| {
        created["credentials"][name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DemoError::Refused(format!("the new app has no {name}")))
    };
    Ok(HubApp {
        client_id: credential("client_id")?,
        client_secret: credential("client_secret")?,
        signing_secret: credential("signing_secret")?,
        configuration_token,
        configuration_refresh_token,
        admin_email,
    })
}
