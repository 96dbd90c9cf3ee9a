//! How the hub's demo connects to the simulated Webex, as the organisation's admin following
//! the hub's documentation (docs/platforms/webex.md) would: authorise the hub's Service App in
//! Control Hub (for guests) and generate its tokens, then connect the hub with the Service App's
//! refresh token, signing in on the integration's consent page as the organisation's service
//! user, whose token the hub uses to read teams and relay.

use serde_json::{Value, json};
use switchboard_sim_kit::demo::{browser, prepared};
use switchboard_sim_kit::{Consent, DemoError, DemoHub, SimulatedConnect};

use crate::KEY;
use crate::state::{
    INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, SERVICE_APP_CLIENT_ID,
    SERVICE_APP_CLIENT_SECRET,
};

/// What the demo keeps: the service user who consents for the hub, and the Service App's
/// refresh token the admin pastes into the hub's connect form.
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    service_user: String,
    service_app_refresh_token: String,
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

/// What the admin does on the Service App's page once it is authorised: generate its tokens
/// for the organisation; the refresh token is what the hub's connect form asks for. (The
/// simulator's stand-in for the developer portal is the `client_credentials` grant, see
/// docs/simulator-webex.md.)
pub(crate) async fn service_app_refresh_token(sim: &str) -> Result<String, DemoError> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", SERVICE_APP_CLIENT_ID)
        .append_pair("client_secret", SERVICE_APP_CLIENT_SECRET)
        .finish();
    let response = browser()?
        .post(format!("{sim}/webex/v1/access_token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await?;
    answer["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            refused(format!(
                "generating the Service App's tokens: HTTP {status}: {answer}"
            ))
        })
}

#[async_trait::async_trait]
impl SimulatedConnect for WebexDemo {
    fn key(&self) -> &'static str {
        KEY
    }

    fn web_view(&self) -> &'static str {
        "/webex/"
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
        let service_app_refresh_token = service_app_refresh_token(sim).await?;
        serde_json::to_value(Prepared {
            service_user,
            service_app_refresh_token,
        })
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
                "service_app_refresh_token".to_owned(),
                prepared.service_app_refresh_token,
            )],
            identity: ("email".to_owned(), prepared.service_user),
            accept: "accept".to_owned(),
        })
    }
}
