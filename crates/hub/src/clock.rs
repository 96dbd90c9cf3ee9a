use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_core::{Clock, Timestamp};

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place the wall clock is read"
    )]
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_unix_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The wall clock in microseconds, for latency metrics that span the relay's stages (and its
/// restarts), which the injected clock's milliseconds are too coarse for.
#[allow(
    clippy::disallowed_methods,
    reason = "latency metrics read the wall clock itself"
)]
pub fn wall_clock_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
