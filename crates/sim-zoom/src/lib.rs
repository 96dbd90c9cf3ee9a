//! The simulator's Zoom Team Chat: the REST API at `/zoom/v2/` (users, chat messages, chat
//! channels and their members, the Chatbot API), Zoom OAuth at `/zoom/oauth/` (authorization
//! codes, refresh tokens, server-to-server account credentials, the chatbot's client
//! credentials), Marketplace apps with their event subscriptions (validated endpoints, deliveries
//! signed with `x-zm-signature`), an admin page and a Zoom-like web view.
//! `docs/simulator-zoom.md` describes what is simulated and every place it knowingly differs
//! from Zoom.

mod admin;
mod channels;
mod chatbot;
mod demo;
mod events;
mod messages;
mod oauth;
mod state;
#[cfg(test)]
mod tests;
mod users;
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

pub use demo::ZoomDemo;
pub use state::{
    ACCOUNT_ID, CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET, CHATBOT_SECRET_TOKEN, ROBOT_JID,
    S2S_CLIENT_ID, S2S_CLIENT_SECRET, S2S_SECRET_TOKEN, USER_CLIENT_ID, USER_CLIENT_SECRET,
};

use state::{State, Status, ZOOM_APP_CLIENT_ID};
use wire::ZoomError;

/// The simulated Zoom's key in the simulator and its organisation.
pub(crate) const KEY: &str = "zoom";

/// Zoom's rate-limit categories ("Rate Limit Label" of each endpoint), limited per account and
/// second at the Pro plan's rates (docs/simulator-zoom.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Light,
    Medium,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Light => "Light",
            Category::Medium => "Medium",
        }
    }

    fn per_second(self) -> u32 {
        match self {
            Category::Light => 30,
            Category::Medium => 20,
        }
    }
}

/// The simulated Zoom. One mutex guards the whole state: requests hold it only for in-memory
/// work, never across I/O.
pub struct ZoomSim {
    context: SimContext,
    state: Mutex<State>,
}

/// Who called, as their bearer token says.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The user the token acts as: "me".
    pub user: String,
    pub scopes: Vec<String>,
    pub client_id: String,
}

impl Caller {
    /// Whether the token holds `scope`, or its `:admin` form, which covers every user's data.
    pub fn holds(&self, scope: &str) -> bool {
        let admin = format!("{scope}:admin");
        self.scopes
            .iter()
            .any(|held| held == scope || *held == admin)
    }

    /// Refuses unless the token holds `scope` (or its `:admin` form).
    pub fn require(&self, scope: &str) -> Result<(), ZoomError> {
        if self.holds(scope) {
            Ok(())
        } else {
            Err(ZoomError::missing_scopes(&[
                scope.to_owned(),
                format!("{scope}:admin"),
            ]))
        }
    }

    /// Refuses unless the token holds `scope` itself: an `:admin` scope, which nothing else
    /// covers.
    pub fn require_exactly(&self, scope: &str) -> Result<(), ZoomError> {
        if self.scopes.iter().any(|held| held == scope) {
            Ok(())
        } else {
            Err(ZoomError::missing_scopes(&[scope.to_owned()]))
        }
    }

    /// The user a path's `{userId}` names (`me`, an id or an e-mail address), with the scope
    /// to act for them: `scope` for oneself, its `:admin` form for anyone else.
    pub fn acting_for(
        &self,
        state: &State,
        user_id: &str,
        scope: &str,
    ) -> Result<String, ZoomError> {
        let user = if user_id == "me" {
            state.user(&self.user)
        } else {
            state.user(user_id)
        }
        .filter(|u| u.active())
        .ok_or_else(|| ZoomError::no_user(user_id))?;
        if user.id == self.user {
            self.require(scope)?;
        } else {
            self.require_exactly(&format!("{scope}:admin"))?;
        }
        Ok(user.id.clone())
    }
}

impl ZoomSim {
    pub fn new(context: SimContext) -> Arc<Self> {
        Arc::new(Self {
            context,
            state: Mutex::new(State::seeded(&Organisation::default())),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The caller of an API request, from its bearer token, after the account's rate limit of
    /// the endpoint's category.
    fn caller(
        &self,
        state: &State,
        headers: &HeaderMap,
        category: Category,
    ) -> Result<Caller, ZoomError> {
        let token = wire::bearer(headers).ok_or_else(ZoomError::invalid_token)?;
        let grant = state
            .access_tokens
            .get(token)
            .ok_or_else(ZoomError::invalid_token)?;
        if grant.expires_at <= wire::now_millis() {
            return Err(ZoomError::expired_token());
        }
        if !state.user(&grant.user).is_some_and(state::User::active) {
            return Err(ZoomError::invalid_token());
        }
        self.throttle(category)?;
        Ok(Caller {
            user: grant.user.clone(),
            scopes: grant.scopes.clone(),
            client_id: grant.client_id.clone(),
        })
    }

    /// Takes one request from the account's budget of `category`.
    fn throttle(&self, category: Category) -> Result<(), ZoomError> {
        let per_second = category.per_second();
        let limit = Limit {
            per_second: f64::from(per_second),
            burst: f64::from(per_second),
        };
        self.context
            .limits
            .check(&format!("{KEY}:{ACCOUNT_ID}:{}", category.name()), limit)
            .map_err(|wait| ZoomError::throttled(category.name(), per_second, wait))
    }
}

impl SimPlatform for ZoomSim {
    fn key(&self) -> &'static str {
        KEY
    }

    /// Zoom imports every user of the account (no teams); the first is the account's owner and
    /// the second an admin, and one in 89 is deactivated.
    fn org_platform(&self) -> OrgPlatform {
        OrgPlatform {
            admins: 2,
            kinds: vec![(
                Every {
                    modulus: 89,
                    remainder: 7,
                },
                SeedKind::Deactivated,
            )],
            ..OrgPlatform::new(KEY)
        }
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .merge(users::routes())
            .merge(messages::routes())
            .merge(channels::routes())
            .merge(chatbot::routes())
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
            .users
            .iter()
            .map(|user| SimUser {
                id: user.id.clone(),
                email: Some(user.email.clone()),
                display_name: user.display_name.clone(),
                kind: if user.active() {
                    user.role.name()
                } else {
                    "deactivated"
                }
                .to_owned(),
            })
            .collect()
    }

    fn mint_token(&self, email: &str) -> Result<String, String> {
        let mut state = self.lock();
        let user = state
            .user(email)
            .ok_or_else(|| format!("no Zoom user {email}"))?;
        if !user.active() {
            return Err(format!("the Zoom user {email} is deactivated"));
        }
        let user = user.id.clone();
        Ok(oauth::issue_user_tokens(&mut state, &user, ZOOM_APP_CLIENT_ID).0)
    }

    fn throttled(&self, retry_after: Duration) -> Response {
        let category = Category::Medium;
        ZoomError::throttled(category.name(), category.per_second(), retry_after).into_response()
    }

    fn failure(&self, status: StatusCode) -> Response {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
            StatusCode::BAD_GATEWAY => "Bad Gateway",
            StatusCode::GATEWAY_TIMEOUT => "Gateway Timeout",
            _ => "Internal Server Error",
        };
        ZoomError::new(status, u32::from(status.as_u16()), message).into_response()
    }

    fn save(&self) -> serde_json::Value {
        serde_json::to_value(&*self.lock()).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&self, saved: serde_json::Value) -> Result<(), String> {
        let mut restored: State =
            serde_json::from_value(saved).map_err(|error| format!("not a Zoom state: {error}"))?;
        restored.reindex();
        *self.lock() = restored;
        Ok(())
    }

    fn control_actions(&self) -> &'static [&'static str] {
        &["deactivate", "add_user"]
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
        struct NewUser {
            email: String,
            name: String,
        }
        let invalid = |error: serde_json::Error| ControlError::Invalid(error.to_string());
        match action {
            // An admin deactivates a user: their tokens stop working and they are no contact.
            "deactivate" => {
                let request: Email = serde_json::from_value(arguments).map_err(invalid)?;
                let mut state = self.lock();
                let user = state
                    .user_mut(&request.email)
                    .ok_or_else(|| ControlError::Invalid(format!("no user {}", request.email)))?;
                user.status = Status::Inactive;
                Ok(serde_json::json!({ "id": user.id }))
            }
            "add_user" => {
                let request: NewUser = serde_json::from_value(arguments).map_err(invalid)?;
                self.lock()
                    .add_user(&request.email, &request.name)
                    .map(|id| serde_json::json!({ "id": id }))
                    .map_err(ControlError::Invalid)
            }
            other => Err(ControlError::UnknownAction(other.to_owned())),
        }
    }
}
