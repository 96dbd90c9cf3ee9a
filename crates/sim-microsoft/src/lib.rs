//! The simulator's Microsoft: Entra ID (sign-in, consent, tokens) and Microsoft Graph v1.0
//! (directory, Teams chats and messages, change notifications), served at Microsoft's own
//! paths under `/login/{tenant}/…` and `/graph/v1.0/…`, plus a small Teams-like web view at
//! `/teams/` for people to chat as simulated users. `docs/simulator-microsoft.md` describes
//! what is simulated and every place it knowingly differs from Microsoft.

mod body;
mod chats;
mod demo;
mod directory;
mod entra;
mod odata;
mod state;
mod subscriptions;
mod web;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use switchboard_sim_kit::{
    ControlError, Every, Limit, MembershipRequest, OrgPlatform, Organisation, SeedKind, SimContext,
    SimGroup, SimPlatform, SimUser,
};

pub use demo::MicrosoftDemo;
pub use odata::GraphError;
pub use state::{
    CUSTOMER_TENANT_ID, HUB_APP_ID, HUB_APP_SECRET, INTEROP_DOMAIN, INTEROP_TENANT_ID,
    SEEDED_PASSWORD, TEAMS_CLIENT_ID, TEAMS_CLIENT_SCOPES, guid,
};
pub use subscriptions::LifecycleEvent;

use state::State;

/// The simulated Microsoft cloud. One mutex guards the whole state: requests hold it only for
/// in-memory work, never across I/O.
pub struct MicrosoftSim {
    context: SimContext,
    state: Mutex<State>,
}

impl MicrosoftSim {
    pub fn new(context: SimContext) -> Arc<Self> {
        Arc::new(Self {
            context,
            state: Mutex::new(State::seeded(&Organisation::default())),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn graph_base(&self) -> String {
        format!("{}/graph/v1.0", self.context.base_url)
    }

    /// Takes a token from a rate-limit bucket, or answers Graph's 429.
    fn limit(&self, key: &str, limit: Limit) -> Result<(), GraphError> {
        self.context
            .limits
            .check(key, limit)
            .map_err(GraphError::throttled)
    }

    /// Revokes every token issued to the user whose sign-in name or mail is `email`, as an
    /// administrator revoking their sessions does: their refresh tokens answer `invalid_grant`
    /// and their access tokens 401. Answers how many tokens were revoked; `None` for no such
    /// user.
    pub fn revoke_tokens(&self, email: &str) -> Option<usize> {
        let mut state = self.lock();
        let users: Vec<(String, String)> = state
            .tenants
            .iter()
            .flat_map(|tenant| {
                tenant
                    .users
                    .iter()
                    .filter(|user| {
                        user.upn.eq_ignore_ascii_case(email)
                            || user
                                .mail
                                .as_deref()
                                .is_some_and(|mail| mail.eq_ignore_ascii_case(email))
                    })
                    .map(|user| (tenant.id.clone(), user.id.clone()))
            })
            .collect();
        if users.is_empty() {
            return None;
        }
        let before = state.refresh_tokens.len() + state.access_tokens.len();
        state
            .refresh_tokens
            .retain(|_, grant| !users.contains(&(grant.tenant_id.clone(), grant.user_id.clone())));
        state.access_tokens.retain(|_, grant| {
            grant
                .user_id
                .as_ref()
                .is_none_or(|user| !users.contains(&(grant.tenant_id.clone(), user.clone())))
        });
        Some(before - state.refresh_tokens.len() - state.access_tokens.len())
    }

    /// Makes access tokens issued from now on last `seconds` (Entra's are 60–90 minutes), so
    /// tests can watch tokens and subscriptions' authorisation run out.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.lock().token_lifetime_secs = seconds.max(1);
    }

    /// Sends a lifecycle notification for a subscription now, as Graph does on its own
    /// schedule; `SubscriptionRemoved` also deletes the subscription.
    pub fn send_lifecycle(
        &self,
        subscription_id: &str,
        event: LifecycleEvent,
    ) -> Result<(), String> {
        subscriptions::send_lifecycle(self, subscription_id, event)
    }

    /// Runs the periodic work (subscription expiry, reauthorisation and missed-notification
    /// signals) once a second for as long as the simulator lives.
    fn start_sweeper(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let Some(sim) = weak.upgrade() else {
                    return;
                };
                subscriptions::sweep(&sim);
            }
        });
    }

    fn graph_router(self: &Arc<Self>) -> Router<Arc<Self>> {
        Router::new()
            .route("/me", get(directory::me))
            .route("/me/joinedTeams", get(directory::my_joined_teams))
            .route("/me/chats", get(chats::my_chats))
            .route(
                "/users",
                get(directory::list_users).post(directory::create_user),
            )
            .route("/users/delta", get(directory::users_delta))
            .route("/users/delta()", get(directory::users_delta))
            .route(
                "/users/{id}",
                get(directory::get_user).delete(directory::delete_user),
            )
            .route("/users/{id}/joinedTeams", get(directory::joined_teams))
            .route("/users/{id}/chats", get(chats::user_chats))
            .route(
                "/users/{uid}/chats/{cid}/messages/{mid}/softDelete",
                post(chats::soft_delete),
            )
            .route(
                "/users/{uid}/chats/{cid}/messages/{mid}/undoSoftDelete",
                post(chats::undo_soft_delete),
            )
            .route("/groups", get(directory::list_groups))
            .route("/groups/{id}", get(directory::get_group))
            .route("/groups/delta", get(directory::groups_delta))
            .route("/groups/delta()", get(directory::groups_delta))
            .route("/groups/{id}/members", get(directory::group_members))
            .route(
                "/groups/{id}/transitiveMembers",
                get(directory::group_transitive_members),
            )
            .route(
                "/groups/{id}/transitiveMembers/microsoft.graph.user",
                get(directory::group_transitive_users),
            )
            // The cast as Microsoft's own SDKs write it.
            .route(
                "/groups/{id}/transitiveMembers/graph.user",
                get(directory::group_transitive_users),
            )
            .route("/teams/{id}", get(directory::get_team))
            .route("/teams/{id}/members", get(directory::team_members))
            .route("/invitations", post(directory::invite))
            .route("/chats", get(chats::list_chats).post(chats::create_chat))
            .route("/chats/{id}", get(chats::get_chat))
            .route("/chats/{id}/members", get(chats::chat_members))
            .route(
                "/chats/{id}/messages",
                get(chats::list_messages).post(chats::post_message),
            )
            .route(
                "/chats/{id}/messages/{mid}",
                get(chats::get_message).patch(chats::update_message),
            )
            .route(
                "/chats/{id}/messages/{mid}/replies",
                get(chats::replies).post(chats::replies),
            )
            .route(
                "/chats/{id}/messages/{mid}/setReaction",
                post(chats::set_reaction),
            )
            .route(
                "/chats/{id}/messages/{mid}/unsetReaction",
                post(chats::unset_reaction),
            )
            .route(
                "/subscriptions",
                get(subscriptions::list).post(subscriptions::create),
            )
            .route(
                "/subscriptions/{id}",
                get(subscriptions::get)
                    .patch(subscriptions::renew)
                    .delete(subscriptions::delete),
            )
            .route(
                "/subscriptions/{id}/reauthorize",
                post(subscriptions::reauthorize),
            )
            .fallback(unknown_segment)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn(odata::envelope))
    }
}

async fn unknown_segment(uri: axum::http::Uri) -> GraphError {
    let segment = uri
        .path()
        .trim_start_matches("/graph/v1.0")
        .split('/')
        .find(|segment| !segment.is_empty())
        .unwrap_or("")
        .to_owned();
    GraphError::bad_request(format!("Resource not found for the segment '{segment}'."))
}

async fn method_not_allowed() -> GraphError {
    GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

/// The simulated Microsoft's key in the simulator and its organisation: its people are Teams
/// users.
pub(crate) const KEY: &str = "teams";

impl SimPlatform for MicrosoftSim {
    fn key(&self) -> &'static str {
        KEY
    }

    /// Its people belong to teams; one in 97 has a disabled account.
    fn org_platform(&self) -> OrgPlatform {
        OrgPlatform {
            teams: true,
            kinds: vec![(
                Every {
                    modulus: 97,
                    remainder: 2,
                },
                SeedKind::Deactivated,
            )],
            ..OrgPlatform::new(KEY)
        }
    }

    fn router(self: Arc<Self>) -> Router {
        self.start_sweeper();
        let graph = self.graph_router();
        Router::new()
            .nest("/graph/v1.0", graph)
            .merge(entra::routes())
            .merge(web::routes())
            .with_state(self)
    }

    fn seed(&self, organisation: &Organisation) {
        let seeded = State::seeded(organisation);
        *self.lock() = seeded;
    }

    fn users(&self) -> Vec<SimUser> {
        let state = self.lock();
        state
            .customer()
            .users
            .iter()
            .filter(|user| user.active())
            .map(|user| SimUser {
                id: user.id.clone(),
                email: user.mail.clone(),
                display_name: user.display_name.clone(),
                kind: if !user.account_enabled {
                    "disabled"
                } else if user.is_guest() {
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
        let index = state
            .sign_in(CUSTOMER_TENANT_ID, email)
            .ok_or_else(|| format!("no Teams user {email}"))?;
        let user = &state.customer().users[index];
        if !user.account_enabled {
            return Err(format!("the account {email} is disabled"));
        }
        let user_id = user.id.clone();
        let scopes = TEAMS_CLIENT_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let (token, _) = entra::issue_access(
            &mut state,
            CUSTOMER_TENANT_ID,
            Some(&user_id),
            TEAMS_CLIENT_ID,
            scopes,
            Vec::new(),
        );
        Ok(token)
    }

    fn throttled(&self, retry_after: Duration) -> Response {
        let id = uuid::Uuid::new_v4().to_string();
        GraphError::throttled(retry_after).render(&id, &id)
    }

    fn failure(&self, status: StatusCode) -> Response {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, message) = match status {
            StatusCode::SERVICE_UNAVAILABLE => (
                "serviceNotAvailable",
                "The service is temporarily unavailable. Try again later.",
            ),
            StatusCode::GATEWAY_TIMEOUT => ("gatewayTimeout", "The request timed out."),
            _ => ("generalException", "An unexpected error occurred."),
        };
        GraphError::new(status, code, message).render(&id, &id)
    }

    fn save(&self) -> serde_json::Value {
        serde_json::to_value(&*self.lock()).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&self, saved: serde_json::Value) -> Result<(), String> {
        let mut restored: State = serde_json::from_value(saved)
            .map_err(|error| format!("not a Microsoft state: {error}"))?;
        if restored.tenants.len() < 2 {
            return Err(
                "not a Microsoft state: it lacks the customer and interop tenants".to_owned(),
            );
        }
        restored.reindex();
        *self.lock() = restored;
        Ok(())
    }

    fn control_actions(&self) -> &'static [&'static str] {
        &[
            "lifecycle",
            "token-lifetime",
            "revoke",
            "users",
            "remove-user",
            "group-members",
            "disable-user",
        ]
    }

    fn groups(&self) -> Vec<SimGroup> {
        let state = self.lock();
        let tenant = state.customer();
        tenant
            .groups
            .iter()
            .map(|group| {
                let members = tenant.direct_members(group);
                SimGroup {
                    id: group.id.clone(),
                    name: group.display_name.clone(),
                    kind: format!("{:?}", group.kind).to_ascii_lowercase(),
                    members: members
                        .iter()
                        .filter_map(|id| tenant.user(id)?.mail.clone())
                        .collect(),
                    groups: members
                        .into_iter()
                        .filter(|id| tenant.user(id).is_none() && tenant.group(id).is_some())
                        .map(str::to_owned)
                        .collect(),
                }
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
        struct Lifecycle {
            subscription_id: String,
            event: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct TokenLifetime {
            seconds: u64,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Revoke {
            email: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewUser {
            email: String,
            display_name: String,
            #[serde(default)]
            teams: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RemoveUser {
            email: String,
            team: Option<String>,
        }
        let invalid = |e: serde_json::Error| ControlError::Invalid(e.to_string());
        match action {
            "users" => {
                let request: NewUser = serde_json::from_value(arguments).map_err(invalid)?;
                let id = directory::add_member(
                    self,
                    &request.email,
                    &request.display_name,
                    &request.teams,
                )
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
            "disable-user" => {
                let request: Revoke = serde_json::from_value(arguments).map_err(invalid)?;
                let id =
                    directory::disable_user(self, &request.email).map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "id": id, "disabled": true }))
            }
            "remove-user" => {
                let request: RemoveUser = serde_json::from_value(arguments).map_err(invalid)?;
                let id = directory::remove_member(self, &request.email, request.team.as_deref())
                    .map_err(ControlError::Invalid)?;
                Ok(
                    serde_json::json!({ "id": id, "removed_from": request.team.unwrap_or_else(|| "tenant".to_owned()) }),
                )
            }
            "lifecycle" => {
                let request: Lifecycle = serde_json::from_value(arguments).map_err(invalid)?;
                let event = LifecycleEvent::from_name(&request.event).ok_or_else(|| {
                    ControlError::Invalid(format!(
                        "event is reauthorizationRequired, subscriptionRemoved or missed, not '{}'",
                        request.event
                    ))
                })?;
                self.send_lifecycle(&request.subscription_id, event)
                    .map_err(ControlError::Invalid)?;
                Ok(serde_json::json!({ "sent": request.event }))
            }
            "token-lifetime" => {
                let request: TokenLifetime = serde_json::from_value(arguments).map_err(invalid)?;
                self.set_token_lifetime(request.seconds);
                Ok(serde_json::json!({ "seconds": request.seconds.max(1) }))
            }
            "revoke" => {
                let request: Revoke = serde_json::from_value(arguments).map_err(invalid)?;
                let revoked = self.revoke_tokens(&request.email).ok_or_else(|| {
                    ControlError::Invalid(format!("no user signs in as '{}'", request.email))
                })?;
                Ok(serde_json::json!({ "revoked": revoked }))
            }
            other => Err(ControlError::UnknownAction(other.to_owned())),
        }
    }
}
