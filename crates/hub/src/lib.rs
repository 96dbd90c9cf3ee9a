//! The hub's HTTP layer and application services, wired around the domain core: the routes
//! that admins, platforms and monitoring reach, and the state they share.

mod clock;
mod http;

pub use clock::SystemClock;
pub use http::{AppState, router};
