use std::time::{Duration, UNIX_EPOCH};

/// Time since the Unix epoch: the simulator's one reading of the wall clock, for timestamps that
/// platforms put on the wire (Slack `ts`, Graph `createdDateTime`, token expiry).
#[allow(
    clippy::disallowed_methods,
    reason = "the simulator stands in for remote services, whose clocks are their own"
)]
pub fn since_epoch() -> Duration {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
