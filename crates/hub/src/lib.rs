//! The hub: application services wired around the domain core, the admin's use cases over
//! them, and the HTTP adapters that reach both.
//!
//! Three layers, each depending only on those below it:
//! - **HTTP adapters**: the REST API (`api`), the console (`console`), the platforms'
//!   webhooks (`webhooks`), the consent callback (`callback`), the pages a prompt's link opens
//!   (`link`, `pages`), and the router (`http`). Only these know axum and status codes.
//! - **Use cases** (`admin`): what an admin does, audited, called alike by the API and the
//!   console; a refusal says its kind, which each adapter answers in its own terms.
//! - **Services**: connect, import, sync, disconnect, refresh, directory, settings, relay,
//!   tokens. Each has its own error and knows no HTTP. User sync and the relay meet through two
//!   narrow doors (see `relay`).

// The OpenAPI document (`api::openapi`) is a few large `json!` literals.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
mod callback;
pub(crate) mod clock;
pub mod connect;
pub mod console;
pub mod directory;
pub mod disconnect;
pub mod groups;
mod http;
pub mod import;
mod link;
mod pages;
pub mod refresh;
pub mod relay;
mod scim;
pub mod scope;
pub mod settings;
pub mod sync;
pub mod tokens;
mod webhooks;

pub use clock::SystemClock;
pub use http::{AppState, router};

/// Starts the relay's loops, with user sync prompting the senders whose copies wait for them.
pub fn spawn_relay(state: AppState) {
    let senders = std::sync::Arc::new(sync::SenderPrompts(state.clone()));
    relay::spawn(state, senders);
}

/// Starts Directory Sync's reading of the directory groups it follows.
pub fn spawn_directory_sync(state: AppState) {
    groups::spawn(state);
}
