//! The hub's HTTP layer and application services, wired around the domain core: the routes
//! that admins, platforms and monitoring reach, and the state they share.

// The OpenAPI document (`api::openapi`) is a few large `json!` literals.
#![recursion_limit = "256"]

pub mod api;
pub(crate) mod clock;
pub mod connect;
pub mod console;
pub mod directory;
pub mod disconnect;
mod http;
pub mod import;
mod link;
mod pages;
pub mod refresh;
pub mod relay;
pub mod settings;
pub mod sync;
mod webhooks;

pub use clock::SystemClock;
pub use http::{AppState, router};
