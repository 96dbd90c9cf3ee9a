//! How the hub's demo connects to the simulated Zoom, as the account's owner following the
//! hub's documentation would: on the App Marketplace, create the server-to-server app (the
//! directory and the account's Team Chat events), the user-managed app (each person authorises
//! the hub to write as them) and the chatbot, and point the event subscriptions at the hub,
//! which must answer Zoom's URL validation, so it is done once the hub is connected and serving.

use serde_json::{Value, json};
use switchboard_sim_kit::demo::{browser, prepared};
use switchboard_sim_kit::{Consent, DemoError, DemoHub, SimulatedConnect};

use crate::KEY;
use crate::state::{
    ACCOUNT_ID, AppKind, CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET, CHATBOT_SECRET_TOKEN, ROBOT_JID,
    S2S_CLIENT_ID, S2S_CLIENT_SECRET, S2S_SECRET_TOKEN, TEAM_CHAT_EVENTS, USER_CLIENT_ID,
    USER_CLIENT_SECRET,
};

/// What the demo keeps: the owner, who connects the hub and authorises it first.
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    owner: String,
}

/// The simulated Zoom as the demo connects the hub to it.
pub struct ZoomDemo;

fn refused(what: impl Into<String>) -> DemoError {
    DemoError::Refused(what.into())
}

/// Posts one of the Marketplace page's forms as `admin`; the page answers 303 on success.
async fn marketplace(sim: &str, action: &str, pairs: &[(&str, &str)]) -> Result<(), DemoError> {
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let response = browser()?
        .post(format!("{sim}/zoom/admin/{action}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    if status == 303 {
        Ok(())
    } else {
        let text = response.text().await.unwrap_or_default();
        Err(refused(format!(
            "the Zoom Marketplace refused {action}: HTTP {status}: {text}"
        )))
    }
}

/// What the admin does first on the Marketplace: create the three apps.
async fn create_apps(sim: &str, admin: &str) -> Result<(), DemoError> {
    for kind in AppKind::ALL {
        marketplace(sim, "apps", &[("email", admin), ("app", kind.name())]).await?;
    }
    Ok(())
}

/// What the admin does once the hub serves: subscribe the server-to-server app to Team Chat's
/// events and the chatbot to its notifications, both at `endpoint`, which Zoom validates.
async fn subscribe(sim: &str, admin: &str, endpoint: &str) -> Result<(), DemoError> {
    let mut s2s = vec![
        ("email", admin),
        ("app", AppKind::ServerToServer.name()),
        ("url", endpoint),
    ];
    s2s.extend(TEAM_CHAT_EVENTS.iter().map(|event| ("event", *event)));
    marketplace(sim, "events", &s2s).await?;
    marketplace(
        sim,
        "events",
        &[
            ("email", admin),
            ("app", AppKind::Chatbot.name()),
            ("url", endpoint),
            ("event", "bot_notification"),
        ],
    )
    .await
}

#[async_trait::async_trait]
impl SimulatedConnect for ZoomDemo {
    fn key(&self) -> &'static str {
        KEY
    }

    fn web_view(&self) -> &'static str {
        "/zoom/"
    }

    async fn prepare(&self, sim: &str, _hub: &DemoHub) -> Result<Option<Value>, DemoError> {
        let users: Value = browser()?
            .get(format!("{sim}/_sim/users?platform={KEY}"))
            .send()
            .await?
            .json()
            .await?;
        let owner = users
            .as_array()
            .and_then(|users| users.iter().find(|u| u["kind"] == "owner"))
            .and_then(|u| u["email"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| refused("the Zoom account has no owner"))?;
        create_apps(sim, &owner).await?;
        serde_json::to_value(Prepared { owner })
            .map(Some)
            .map_err(|error| refused(error.to_string()))
    }

    async fn after_connect(
        &self,
        sim: &str,
        hub: &DemoHub,
        prepared_state: Option<&Value>,
    ) -> Result<(), DemoError> {
        let prepared: Prepared = prepared(KEY, prepared_state)?;
        subscribe(sim, &prepared.owner, &hub.webhook_url).await
    }

    fn hub_table(
        &self,
        sim: &str,
        _hub: &DemoHub,
        _prepared: Option<&Value>,
    ) -> Result<Value, DemoError> {
        Ok(json!({
            "api_base": format!("{sim}/zoom/v2"),
            "oauth_base": format!("{sim}/zoom/oauth"),
            "account_id": ACCOUNT_ID,
            "s2s_client_id": S2S_CLIENT_ID,
            "s2s_client_secret": S2S_CLIENT_SECRET,
            "user_client_id": USER_CLIENT_ID,
            "user_client_secret": USER_CLIENT_SECRET,
            "chatbot_client_id": CHATBOT_CLIENT_ID,
            "chatbot_client_secret": CHATBOT_CLIENT_SECRET,
            "robot_jid": ROBOT_JID,
            "webhook_secret_token": S2S_SECRET_TOKEN,
            "chatbot_secret_token": CHATBOT_SECRET_TOKEN,
        }))
    }

    /// The owner connects the hub and allows the user-managed app for themselves, as every
    /// person will when the hub prompts them.
    fn consent(&self, prepared_state: Option<&Value>) -> Result<Consent, DemoError> {
        let prepared: Prepared = prepared(KEY, prepared_state)?;
        Ok(Consent {
            inputs: Vec::new(),
            identity: ("email".to_owned(), prepared.owner),
            accept: "allow".to_owned(),
        })
    }
}
