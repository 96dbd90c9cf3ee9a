//! The parts of the `switchboard` binary that its benchmarks and tests reuse: the platform
//! registry built from the `[platforms]` tables, and the demo's autopilot that connects and
//! imports the simulated platforms as an admin would.

pub mod demo;
pub mod platforms;
