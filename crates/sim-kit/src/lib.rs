//! The toolkit every simulated platform is built on, and the contract ([`SimPlatform`]) by which
//! the simulator server mounts them.
//!
//! A simulated platform is one crate that implements [`SimPlatform`]: it owns its state and its
//! routes (under the vendor's own paths), and it uses this kit for the parts that behave the same
//! everywhere — the seeded organisation, rate limits, injected faults, the request log and
//! webhook delivery with retries. Each also tells the hub's demo how to connect to it
//! ([`SimulatedConnect`]). Conveniences no vendor has live only under `/_sim/`, served by
//! the simulator itself, never by a platform crate.

pub mod clock;
pub mod demo;
pub mod faults;
pub mod html;
pub mod log;
pub mod org;
pub mod ratelimit;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;

pub use demo::{Consent, DemoError, DemoHub, SimulatedConnect};
pub use faults::{FaultDecision, FaultRule, Faults};
pub use log::{LogEntry, LogKind, RequestLog};
pub use org::{
    Every, Membership, OrgPlatform, OrgSpec, Organisation, SeedKind, SeedPerson, SeedTeam,
};
pub use ratelimit::{Limit, RateLimiter};
pub use webhook::{AttemptFailure, Delivery, DeliveryOutcome, WebhookSender};

/// What the simulator gives each platform: shared services and its own public address.
#[derive(Clone)]
pub struct SimContext {
    /// The simulator's base URL as clients reach it, without a trailing slash
    /// (e.g. `http://127.0.0.1:8090`); platforms build consent pages and redirects from it.
    pub base_url: String,
    pub limits: Arc<RateLimiter>,
    pub faults: Arc<Faults>,
    pub log: Arc<RequestLog>,
    pub webhooks: Arc<WebhookSender>,
}

impl SimContext {
    pub fn new(base_url: impl Into<String>, rate_limits_enabled: bool) -> Self {
        let log = Arc::new(RequestLog::default());
        let faults = Arc::new(Faults::default());
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            limits: Arc::new(RateLimiter::new(rate_limits_enabled)),
            webhooks: Arc::new(WebhookSender::new(faults.clone(), log.clone())),
            faults,
            log,
        }
    }
}

/// A user of a simulated platform, as `/_sim/users` lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SimUser {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    /// `member`, `guest`, `bot`, `deactivated`, … in the platform's own terms.
    pub kind: String,
}

/// A group of a platform's directory, as `/_sim/groups` lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SimGroup {
    pub id: String,
    pub name: String,
    /// In the platform's own terms: `security`, `microsoft365`, `dynamic`, `google`, …
    pub kind: String,
    /// The addresses of its direct user members.
    pub members: Vec<String>,
    /// The ids of the groups nested in it.
    pub groups: Vec<String>,
}

/// Who `POST /_sim/{key}/group-members` adds or removes: a user by address, or a group to
/// nest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMember {
    User(String),
    Group(String),
}

/// A change `POST /_sim/{key}/group-members` asks for:
/// `{"group", "email" | "member_group", "action": "add" | "remove"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRequest {
    pub group: String,
    pub member: GroupMember,
    pub add: bool,
}

impl MembershipRequest {
    pub fn parse(arguments: serde_json::Value) -> Result<Self, ControlError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            group: String,
            email: Option<String>,
            member_group: Option<String>,
            action: String,
        }
        let wire: Wire = serde_json::from_value(arguments)
            .map_err(|error| ControlError::Invalid(error.to_string()))?;
        let member = match (wire.email, wire.member_group) {
            (Some(email), None) => GroupMember::User(email),
            (None, Some(group)) => GroupMember::Group(group),
            _ => {
                return Err(ControlError::Invalid(
                    "name exactly one of email (a user) and member_group (a group to nest)"
                        .to_owned(),
                ));
            }
        };
        let add = match wire.action.as_str() {
            "add" => true,
            "remove" => false,
            other => {
                return Err(ControlError::Invalid(format!(
                    "action is add or remove, not '{other}'"
                )));
            }
        };
        Ok(Self {
            group: wire.group,
            member,
            add,
        })
    }
}

/// One simulated platform.
pub trait SimPlatform: Send + Sync + 'static {
    /// The platform's name in `/_sim/` requests: `slack`, `teams`, …
    fn key(&self) -> &'static str;

    /// The platform's routes, at the vendor's paths (e.g. `/slack/api/...`, `/graph/v1.0/...`).
    /// Called within a Tokio runtime: a platform may start its background work here
    /// (subscription expiry, scheduled notifications).
    fn router(self: Arc<Self>) -> Router;

    /// What this platform's people are like in the seeded organisation: whether they belong to
    /// teams, and which of them are admins, guests or deactivated.
    fn org_platform(&self) -> OrgPlatform {
        OrgPlatform::new(self.key())
    }

    /// Replaces the platform's users with the organisation's share on this platform.
    fn seed(&self, organisation: &Organisation);

    fn users(&self) -> Vec<SimUser>;

    /// A token for the user with this e-mail, with the scopes a signed-in user of the platform's
    /// official client would have.
    fn mint_token(&self, email: &str) -> Result<String, String>;

    /// The platform's answer when it throttles a request (429 with `Retry-After`).
    fn throttled(&self, retry_after: Duration) -> Response;

    /// The platform's answer for an injected server failure.
    fn failure(&self, status: StatusCode) -> Response;

    /// The platform's whole state, to persist across restarts.
    fn save(&self) -> serde_json::Value;

    /// Restores what [`SimPlatform::save`] produced.
    fn restore(&self, state: serde_json::Value) -> Result<(), String>;

    /// The groups of the platform's directory (none where it has no groups).
    fn groups(&self) -> Vec<SimGroup> {
        Vec::new()
    }

    /// The platform's own simulator actions, served at `POST /_sim/{key}/{action}` (making a
    /// directory change that fires the platform's events, expiring tokens early…).
    fn control_actions(&self) -> &'static [&'static str] {
        &[]
    }

    /// Runs one of [`SimPlatform::control_actions`] with its JSON arguments.
    fn control(
        &self,
        action: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, ControlError> {
        let _ = arguments;
        Err(ControlError::UnknownAction(action.to_owned()))
    }
}

/// Why a platform's simulator action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    UnknownAction(String),
    /// The arguments were malformed or named something that does not exist.
    Invalid(String),
}
