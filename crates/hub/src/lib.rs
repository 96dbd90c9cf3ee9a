//! The hub's HTTP layer and application services, wired around the domain core: the routes
//! that admins, platforms and monitoring reach, and the state they share.

pub mod api;
mod clock;
pub mod connect;
mod http;
pub mod import;
mod link;
pub mod settings;
pub mod sync;
mod webhooks;

pub use clock::SystemClock;
pub use http::{AppState, router};
