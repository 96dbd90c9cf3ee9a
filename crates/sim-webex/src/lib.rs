//! The simulator's Webex: the REST API at `/webex/v1/` (people, rooms, memberships, messages,
//! teams and team memberships, webhooks, Service App guests), OAuth for integrations, webhook
//! deliveries signed with `X-Spark-Signature`, an admin page and a Webex-like web view.
//! `docs/simulator-webex.md` describes what is simulated and every place it knowingly differs
//! from Webex.

mod admin;
mod demo;
mod directory;
mod hooks;
mod markup;
mod messages;
mod oauth;
mod rooms;
mod state;
#[cfg(test)]
mod tests;
mod web;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_sim_kit::{
    ControlError, Every, Limit, OrgPlatform, Organisation, SeedKind, SimContext, SimPlatform,
    SimUser,
};

pub use demo::WebexDemo;
pub use state::{
    INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, SERVICE_APP_CLIENT_ID,
    SERVICE_APP_CLIENT_SECRET,
};

use state::{PersonKind, State, USER_SCOPES, WEBEX_APP_CLIENT_ID};
use wire::WebexError;

/// The simulated Webex's key in the simulator and its organisation.
pub(crate) const KEY: &str = "webex";

/// Webex publishes no numbers for its API limits. Assumed here: 300 requests a minute per
/// token, in bursts of up to 50 (docs/simulator-webex.md).
const PER_TOKEN: Limit = Limit::per_minute(300.0, 50.0);

/// The simulated Webex. One mutex guards the whole state: requests hold it only for in-memory
/// work, never across I/O.
pub struct WebexSim {
    context: SimContext,
    state: Mutex<State>,
}

/// Who called, as their bearer token says.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub person: String,
    pub scopes: Vec<String>,
    pub client_id: String,
}

impl Caller {
    /// Refuses unless the token has `scope`; `spark:all` stands for every `spark:` scope.
    pub fn require(&self, scope: &str) -> Result<(), WebexError> {
        let covered = self
            .scopes
            .iter()
            .any(|held| held == scope || (held == "spark:all" && scope.starts_with("spark:")));
        if covered {
            Ok(())
        } else {
            Err(WebexError::missing_scope())
        }
    }

    pub fn holds(&self, scope: &str) -> bool {
        self.require(scope).is_ok()
    }
}

impl WebexSim {
    pub fn new(context: SimContext) -> Arc<Self> {
        Arc::new(Self {
            context,
            state: Mutex::new(State::seeded(&Organisation::default())),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The REST API's base URL as clients reach it, with its trailing slash.
    fn api_base(&self) -> String {
        format!("{}/webex/v1/", self.context.base_url)
    }

    /// The caller of an API request, from its bearer token, after its token's rate limit.
    fn caller(&self, state: &State, headers: &HeaderMap) -> Result<Caller, WebexError> {
        let token = wire::bearer(headers).ok_or_else(WebexError::unauthorized)?;
        let grant = state
            .access_tokens
            .get(token)
            .filter(|grant| grant.expires_at > wire::now_millis())
            .ok_or_else(WebexError::unauthorized)?;
        if !state.person(&grant.person).is_some_and(|p| p.login_enabled) {
            return Err(WebexError::unauthorized());
        }
        self.context
            .limits
            .check(&format!("{KEY}:token:{token}"), PER_TOKEN)
            .map_err(WebexError::throttled)?;
        Ok(Caller {
            person: grant.person.clone(),
            scopes: grant.scopes.clone(),
            client_id: grant.client_id.clone(),
        })
    }
}

impl SimPlatform for WebexSim {
    fn key(&self) -> &'static str {
        KEY
    }

    /// People belong to teams (the hub imports the members of selected teams); the first is
    /// the organisation's full admin and one in 97 is deactivated.
    fn org_platform(&self) -> OrgPlatform {
        OrgPlatform {
            teams: true,
            admins: 1,
            kinds: vec![(
                Every {
                    modulus: 97,
                    remainder: 5,
                },
                SeedKind::Deactivated,
            )],
            ..OrgPlatform::new(KEY)
        }
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .merge(directory::routes())
            .merge(rooms::routes())
            .merge(messages::routes())
            .merge(hooks::routes())
            .merge(oauth::routes())
            .merge(admin::routes())
            .merge(web::routes())
            .with_state(self)
    }

    fn seed(&self, organisation: &Organisation) {
        let seeded = State::seeded(organisation);
        *self.lock() = seeded;
    }

    fn users(&self) -> Vec<SimUser> {
        self.lock()
            .people
            .iter()
            .map(|person| SimUser {
                id: person.id.clone(),
                email: Some(person.email.clone()),
                display_name: person.display_name.clone(),
                kind: if person.login_enabled {
                    person.kind.name()
                } else {
                    "deactivated"
                }
                .to_owned(),
            })
            .collect()
    }

    fn mint_token(&self, email: &str) -> Result<String, String> {
        let mut state = self.lock();
        let person = state
            .person(email)
            .ok_or_else(|| format!("no Webex person {email}"))?;
        if !person.login_enabled {
            return Err(format!("the account {email} is deactivated"));
        }
        if person.kind == PersonKind::ServiceApp {
            return Err(format!(
                "{email} is the Service App's machine account: get its token from the token endpoint"
            ));
        }
        let person = person.id.clone();
        let scopes = USER_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        Ok(oauth::issue(&mut state, &person, scopes, WEBEX_APP_CLIENT_ID).access_token)
    }

    fn throttled(&self, retry_after: Duration) -> Response {
        WebexError::throttled(retry_after).into_response()
    }

    fn failure(&self, status: StatusCode) -> Response {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
            StatusCode::BAD_GATEWAY => "Bad Gateway",
            StatusCode::GATEWAY_TIMEOUT => "Gateway Timeout",
            _ => "Internal Server Error",
        };
        WebexError::new(status, message).into_response()
    }

    fn save(&self) -> serde_json::Value {
        serde_json::to_value(&*self.lock()).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&self, saved: serde_json::Value) -> Result<(), String> {
        let mut restored: State =
            serde_json::from_value(saved).map_err(|error| format!("not a Webex state: {error}"))?;
        restored.reindex();
        *self.lock() = restored;
        Ok(())
    }

    fn control_actions(&self) -> &'static [&'static str] {
        &[
            "authorise_service_app",
            "deactivate",
            "add_person",
            "revoke_integration",
        ]
    }

    fn control(
        &self,
        action: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, ControlError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Email {
            email: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewPerson {
            email: String,
            name: String,
            #[serde(default)]
            teams: Vec<String>,
        }
        let invalid = |error: serde_json::Error| ControlError::Invalid(error.to_string());
        match action {
            "authorise_service_app" => {
                self.lock().service_app_authorised = true;
                Ok(serde_json::json!({ "client_id": SERVICE_APP_CLIENT_ID }))
            }
            "deactivate" => {
                let request: Email = serde_json::from_value(arguments).map_err(invalid)?;
                let mut state = self.lock();
                let person = state
                    .person_mut(&request.email)
                    .ok_or_else(|| ControlError::Invalid(format!("no person {}", request.email)))?;
                person.login_enabled = false;
                Ok(serde_json::json!({ "id": person.id }))
            }
            // An admin adds a user in Control Hub and to the teams named.
            "add_person" => {
                let request: NewPerson = serde_json::from_value(arguments).map_err(invalid)?;
                let mut state = self.lock();
                state
                    .new_member(&request.email, &request.name, &request.teams)
                    .map(|id| serde_json::json!({ "id": id }))
                    .map_err(ControlError::Invalid)
            }
            // The person revokes the integration's access (Webex settings › Apps), ending the
            // access and refresh tokens it was given for them.
            "revoke_integration" => {
                let request: Email = serde_json::from_value(arguments).map_err(invalid)?;
                let mut state = self.lock();
                let person = state
                    .person(&request.email)
                    .map(|person| person.id.clone())
                    .ok_or_else(|| ControlError::Invalid(format!("no person {}", request.email)))?;
                let of_integration = |grant: &state::Grant| {
                    grant.person == person && grant.client_id == INTEGRATION_CLIENT_ID
                };
                state
                    .access_tokens
                    .retain(|_, grant| !of_integration(grant));
                state
                    .refresh_tokens
                    .retain(|_, grant| !of_integration(grant));
                Ok(serde_json::json!({ "id": person }))
            }
            other => Err(ControlError::UnknownAction(other.to_owned())),
        }
    }
}
