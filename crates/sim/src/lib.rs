//! The platform simulator: a server that stands in for Slack, Microsoft Graph and Entra ID, and
//! later Google Chat, Webex and Zoom, speaking their documented wire formats so that the hub,
//! its tests and the vendors' own SDKs can run against it with no real tenant.
//!
//! It shares no code with the hub's platform clients, not even wire types: it is a second,
//! independent reading of the vendors' documentation.

use axum::Router;
use axum::routing::get;

/// The simulator's HTTP routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(health))
}

async fn index() -> &'static str {
    "Switchboard platform simulator\n\nGET /healthz  health check\n"
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}
