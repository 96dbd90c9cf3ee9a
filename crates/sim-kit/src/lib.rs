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
