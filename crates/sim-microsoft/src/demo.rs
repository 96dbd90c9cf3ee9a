//! How the hub's demo connects to the simulated Microsoft tenant: with the hub's app
//! registration and service user the tenant is seeded with (docs/simulator-microsoft.md lists
//! them), an admin consenting as that service user.

use serde_json::{Value, json};
use switchboard_sim_kit::{Consent, DemoError, DemoHub, SimulatedConnect};

use crate::KEY;
use crate::state::{HUB_APP_ID, HUB_APP_SECRET, INTEROP_DOMAIN, INTEROP_TENANT_ID};

/// The hub's service user in the demo organisation's tenant.
const SERVICE_USER: &str = "switchboard.service@acme.example";

/// The simulated Microsoft tenant as the demo connects the hub to it.
pub struct MicrosoftDemo;

#[async_trait::async_trait]
impl SimulatedConnect for MicrosoftDemo {
    fn key(&self) -> &'static str {
        KEY
    }

    fn web_view(&self) -> &'static str {
        "/teams/"
    }

    fn hub_table(
        &self,
        sim: &str,
        _hub: &DemoHub,
        _prepared: Option<&Value>,
    ) -> Result<Value, DemoError> {
        Ok(json!({
            "login_base_url": format!("{sim}/login"),
            "graph_base_url": format!("{sim}/graph/v1.0"),
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "invite_redirect_url": format!("{sim}/teams/"),
            "interop": {"tenant": INTEROP_TENANT_ID, "domain": INTEROP_DOMAIN},
        }))
    }

    fn consent(&self, _prepared: Option<&Value>) -> Result<Consent, DemoError> {
        Ok(Consent {
            inputs: Vec::new(),
            identity: ("login".to_owned(), SERVICE_USER.to_owned()),
            accept: "accept".to_owned(),
        })
    }
}
