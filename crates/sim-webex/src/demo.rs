//! How the hub's demo connects to the simulated Webex, as the organisation's admin following
//! the hub's documentation would: authorise the hub's Service App in Control Hub (for guests),
//! then connect the hub, signing in on the integration's consent page as the organisation's
//! service user, whose token the hub uses to read teams and relay.

use serde_json::{Value, json};
use switchboard_sim_kit::demo::{browser, prepared};
use switchboard_sim_kit::{Consent, DemoError, DemoHub, SimulatedConnect};

use crate::KEY;
use crate::state::{
    INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, SERVICE_APP_CLIENT_ID,
    SERVICE_APP_CLIENT_SECRET,
};

/// What the demo keeps: the service user who consents for the hub.
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    service_user: String,
}

/// The simulated Webex as the demo connects the hub to it.
pub struct WebexDemo;

fn refused(what: impl Into<String>) -> DemoError {
    DemoError::Refused(what.into())
}

/// What the admin does on Control Hub's page: authorise the hub's Service App.
pub(crate) async fn authorise_service_app(sim: &str, admin: &str) -> Result<(), DemoError> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", admin)
        .append_pair("decision", "authorise")
        .finish();
    let response = browser()?
        .post(format!("{sim}/webex/admin/service-app"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    if status != 303 {
        let text = response.text().await.unwrap_or_default();
        return Err(refused(format!(
            "authorising the Service App: HTTP {status}: {text}"
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl SimulatedConnect for WebexDemo {
    fn key(&self) -> &'static str {
        KEY
    }

    async fn prepare(&self, sim: &str, _hub: &DemoHub) -> Result<Option<Value>, DemoError> {
        let http = browser()?;
        let users: Value = http
            .get(format!("{sim}/_sim/users?platform={KEY}"))
            .send()
            .await?
            .json()
            .await?;
        let email_of = |kind: &str| {
            users
                .as_array()
                .and_then(|users| users.iter().find(|u| u["kind"] == kind))
                .and_then(|u| u["email"].as_str())
                .map(str::to_owned)
        };
        let admin =
            email_of("admin").ok_or_else(|| refused("the Webex organisation has no admin"))?;
        let service_user = email_of("service")
            .ok_or_else(|| refused("the Webex organisation has no service user"))?;
        authorise_service_app(sim, &admin).await?;
        serde_json::to_value(Prepared { service_user })
            .map(Some)
            .map_err(|error| refused(error.to_string()))
    }

    fn hub_table(
        &self,
        sim: &str,
        _hub: &DemoHub,
        _prepared: Option<&Value>,
    ) -> Result<Value, DemoError> {
        Ok(json!({
            "base_url": format!("{sim}/webex/v1/"),
            "authorize_url": format!("{sim}/webex/v1/authorize"),
            "token_url": format!("{sim}/webex/v1/access_token"),
            "client_id": INTEGRATION_CLIENT_ID,
            "client_secret": INTEGRATION_CLIENT_SECRET,
            "service_app_client_id": SERVICE_APP_CLIENT_ID,
            "service_app_client_secret": SERVICE_APP_CLIENT_SECRET,
        }))
    }

    fn consent(&self, prepared_state: Option<&Value>) -> Result<Consent, DemoError> {
        let prepared: Prepared = prepared(KEY, prepared_state)?;
        Ok(Consent {
            inputs: vec![(
                "service_user_email".to_owned(),
                prepared.service_user.clone(),
            )],
            identity: ("email".to_owned(), prepared.service_user),
            accept: "accept".to_owned(),
        })
    }
}
