//! The simulator's Google: OAuth 2.0 (consent, tokens, service-account assertions with
//! domain-wide delegation, Google's signing certificates), IAM service-account keys, the Admin
//! SDK Directory, the Chat API, Workspace Events and Cloud Pub/Sub with push delivery, served
//! at Google's own paths under `/google/…`, plus an admin console and a Chat-like web view.
//! `docs/simulator-google.md` describes what is simulated and every place it knowingly differs
//! from Google.

mod admin;
mod chat;
mod demo;
mod directory;
mod events;
mod keys;
mod oauth;
mod pubsub;
mod reports;
mod state;
#[cfg(test)]
mod tests;
mod web;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_sim_kit::{
    ControlError, Every, Limit, MembershipRequest, OrgPlatform, Organisation, SeedKind, SimContext,
    SimGroup, SimPlatform, SimUser,
};

pub use demo::GoogleDemo;
pub use state::{
    CUSTOMER_ID, HUB_OAUTH_CLIENT_ID, HUB_OAUTH_CLIENT_SECRET, HUB_SERVICE_ACCOUNT,
    HUB_SERVICE_ACCOUNT_ID, PROJECT_ID, PROJECT_NUMBER,
};

use state::{ADMIN_SCOPES, Principal, SCOPE_PREFIX, State, USER_CHAT_SCOPES};
use wire::GoogleError;

/// The simulated Google's key in the simulator and its organisation.
pub(crate) const KEY: &str = "google_chat";

/// The simulated Google. One mutex guards the whole state: requests hold it only for in-memory
/// work, never across I/O.
pub struct GoogleSim {
    context: SimContext,
    state: Mutex<State>,
    /// Itself, for the background work a request starts (push deliveries).
    me: Weak<GoogleSim>,
}

/// Who called, as their bearer token says.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    pub scopes: Vec<String>,
    /// The client that obtained the token through domain-wide delegation, if it did.
    pub delegated_by: Option<String>,
}

impl Caller {
    /// Refuses unless the token has one of `scopes` (short names).
    pub fn require(&self, scopes: &[&str]) -> Result<(), GoogleError> {
        if self
            .scopes
            .iter()
            .any(|held| scopes.contains(&held.as_str()))
        {
            Ok(())
        } else {
            Err(GoogleError::insufficient_scopes())
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::User(id) => Some(id),
            Principal::ServiceAccount(_) => None,
        }
    }

    /// A service account with `chat.bot`: the Chat app.
    pub fn is_app(&self) -> bool {
        matches!(self.principal, Principal::ServiceAccount(_))
            && self.scopes.iter().any(|s| s == "chat.bot")
    }
}

impl GoogleSim {
    pub fn new(context: SimContext) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            context,
            state: Mutex::new(State::seeded(&Organisation::default())),
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn base(&self) -> &str {
        &self.context.base_url
    }

    fn token_url(&self) -> String {
        format!("{}/google/oauth2/token", self.base())
    }

    /// Takes a token from a quota bucket, or answers Google's 429.
    fn limit(&self, key: &str, limit: Limit) -> Result<(), GoogleError> {
        self.context
            .limits
            .check(key, limit)
            .map_err(GoogleError::throttled)
    }

    /// The caller of a request, from its bearer token.
    fn caller(&self, state: &State, headers: &HeaderMap) -> Result<Caller, GoogleError> {
        let token = wire::bearer(headers).ok_or_else(GoogleError::unauthenticated)?;
        let grant = state
            .access_tokens
            .get(token)
            .filter(|grant| grant.expires_at > wire::now_micros())
            .ok_or_else(GoogleError::unauthenticated)?;
        if let Some(key_id) = &grant.key_id
            && state.key(key_id).is_none()
        {
            return Err(GoogleError::unauthenticated());
        }
        if let Principal::User(id) = &grant.principal
            && !state.user(id).is_some_and(state::User::active)
        {
            return Err(GoogleError::unauthenticated());
        }
        let delegated_by = match (&grant.principal, &grant.key_id) {
            (Principal::User(_), Some(_)) => Some(grant.client_id.clone()),
            _ => None,
        };
        Ok(Caller {
            principal: grant.principal.clone(),
            scopes: grant.scopes.clone(),
            delegated_by,
        })
    }

    /// Runs the periodic work (Workspace Events expiry and reminders, Pub/Sub lease expiry)
    /// once a second for as long as the simulator lives.
    fn start_sweeper(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let Some(sim) = weak.upgrade() else {
                    return;
                };
                events::sweep(&sim);
            }
        });
    }
}

/// Scopes as the token endpoint reads them: space-separated URLs, kept by their short names.
pub(crate) fn short_scopes(text: &str) -> Vec<String> {
    text.split([' ', ','])
        .filter(|scope| !scope.is_empty())
        .map(|scope| scope.trim_start_matches(SCOPE_PREFIX).to_owned())
        .collect()
}

impl SimPlatform for GoogleSim {
    fn key(&self) -> &'static str {
        KEY
    }

    /// Its first person is the domain's super admin; one in 25 is suspended.
    fn org_platform(&self) -> OrgPlatform {
        OrgPlatform {
            admins: 1,
            kinds: vec![(
                Every {
                    modulus: 25,
                    remainder: 24,
                },
                SeedKind::Deactivated,
            )],
            ..OrgPlatform::new(KEY)
        }
    }

    fn router(self: Arc<Self>) -> Router {
        self.start_sweeper();
        Router::new()
            .merge(chat::routes())
            .merge(directory::routes())
            .merge(oauth::routes())
            .merge(admin::routes())
            .merge(events::routes())
            .merge(pubsub::routes())
            .merge(reports::routes())
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
            .filter(|user| !user.deleted)
            .map(|user| SimUser {
                id: user.id.clone(),
                email: Some(user.email.clone()),
                display_name: user.full_name(),
                kind: if user.suspended {
                    "suspended"
                } else if user.admin {
                    "admin"
                } else if user.guest {
                    "guest"
                } else {
                    "member"
                }
                .to_owned(),
            })
            .collect()
    }

    fn mint_token(&self, email: &str) -> Result<String, String> {
        let mut state = self.lock();
        let user = state
            .user(email)
            .ok_or_else(|| format!("no Google user {email}"))?;
        if user.suspended {
            return Err(format!("the account {email} is suspended"));
        }
        let principal = Principal::User(user.id.clone());
        let admin_scopes: &[&str] = if user.admin { &ADMIN_SCOPES } else { &[] };
        let scopes = USER_CHAT_SCOPES
            .iter()
            .chain(admin_scopes)
            .map(|s| (*s).to_owned())
            .collect();
        Ok(oauth::issue(
            &mut state,
            principal,
            scopes,
            HUB_OAUTH_CLIENT_ID,
            None,
            false,
        )
        .0)
    }

    fn throttled(&self, retry_after: Duration) -> Response {
        GoogleError::throttled(retry_after).into_response()
    }

    fn failure(&self, status: StatusCode) -> Response {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "The service is currently unavailable.",
            StatusCode::GATEWAY_TIMEOUT => "The request timed out.",
            _ => "Internal error encountered.",
        };
        GoogleError::new(status, message).into_response()
    }

    fn save(&self) -> serde_json::Value {
        serde_json::to_value(&*self.lock()).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&self, saved: serde_json::Value) -> Result<(), String> {
        let restored: State = serde_json::from_value(saved)
            .map_err(|error| format!("not a Google state: {error}"))?;
        *self.lock() = restored;
        Ok(())
    }

    fn control_actions(&self) -> &'static [&'static str] {
        &[
            "delegate",
            "revoke_delegation",
            "configure_chat_app",
            "add_user",
            "suspend_user",
            "delete_user",
            "expire_subscription",
            "group-members",
        ]
    }

    fn groups(&self) -> Vec<SimGroup> {
        let state = self.lock();
        state
            .groups
            .iter()
            .map(|group| SimGroup {
                id: group.id.clone(),
                name: group.name.clone(),
                kind: "google".to_owned(),
                members: group
                    .members
                    .iter()
                    .filter_map(|key| state.user(key).map(|user| user.email.clone()))
                    .collect(),
                groups: group
                    .members
                    .iter()
                    .filter(|key| state.groups.iter().any(|g| &g.id == *key))
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    fn control(
        &self,
        action: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, ControlError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Delegate {
            client_id: String,
            #[serde(default)]
            scopes: Vec<String>,
        }
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
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Named {
            name: String,
        }
        let invalid = |e: serde_json::Error| ControlError::Invalid(e.to_string());
        match action {
            "delegate" => {
                let request: Delegate = serde_json::from_value(arguments).map_err(invalid)?;
                let scopes = oauth::delegate(self, &request.client_id, &request.scopes.join(","));
                Ok(serde_json::json!({ "client_id": request.client_id, "scopes": scopes }))
            }
            "revoke_delegation" => {
                let request: Delegate = serde_json::from_value(arguments).map_err(invalid)?;
                oauth::revoke_delegation(self, &request.client_id)
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "revoked": request.client_id }))
            }
            "configure_chat_app" => {
                let request: Named = serde_json::from_value(arguments).map_err(invalid)?;
                self.lock().chat_app = Some(request.name.clone());
                Ok(serde_json::json!({ "chat_app": request.name }))
            }
            "add_user" => {
                let request: NewUser = serde_json::from_value(arguments).map_err(invalid)?;
                let mut state = self.lock();
                if state.user(&request.email).is_some() {
                    return Err(ControlError::Invalid(format!(
                        "{} already exists",
                        request.email
                    )));
                }
                let (given, family) = request
                    .name
                    .split_once(' ')
                    .unwrap_or((request.name.as_str(), ""));
                let user = state.add_user(&request.email, given, family, false);
                Ok(serde_json::json!({ "id": user.id }))
            }
            "suspend_user" | "delete_user" => {
                let request: Email = serde_json::from_value(arguments).map_err(invalid)?;
                let id = directory::retire(self, &request.email, action == "delete_user")
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "id": id }))
            }
            "group-members" => {
                let request = MembershipRequest::parse(arguments)?;
                let id = directory::change_group_membership(self, &request)
                    .map_err(ControlError::Invalid)?;
                Ok(
                    serde_json::json!({ "group": request.group, "member": id, "added": request.add }),
                )
            }
            "expire_subscription" => {
                let request: Named = serde_json::from_value(arguments).map_err(invalid)?;
                events::expire_now(self, &request.name).map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "expired": request.name }))
            }
            other => Err(ControlError::UnknownAction(other.to_owned())),
        }
    }
}
