/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Milliseconds as an integer store identically in SQLite and PostgreSQL and compare cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }
}

/// The source of the current time. Injected so that expiry, leases and backoff are
/// deterministic in tests; the real clock lives with the adapters.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
