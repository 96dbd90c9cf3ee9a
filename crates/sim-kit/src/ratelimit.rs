//! Token buckets keyed by whatever a platform limits on (method + workspace, app + tenant,
//! chat…). Written here rather than taken from a crate because every key carries its own limit,
//! chosen per request from the vendor's published tiers, and the whole limiter switches off
//! for benchmarks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A published limit: a sustained rate, and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: f64,
}

impl Limit {
    pub const fn per_minute(count: f64, burst: f64) -> Self {
        Self {
            per_second: count / 60.0,
            burst,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    enabled: AtomicBool,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
        self.buckets.lock().expect("rate limiter lock").clear();
    }

    /// Takes one token from `key`'s bucket, or says how long until one is available.
    pub fn check(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        self.check_at(key, limit, Instant::now())
    }

    fn check_at(&self, key: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: limit.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / limit.per_second;
            Err(Duration::from_secs_f64(wait))
        }
    }
}

/// `Retry-After` is whole seconds; round up so a client that waits exactly that long succeeds.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_PER_SECOND: Limit = Limit {
        per_second: 1.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let limiter = RateLimiter::new(true);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("chan", ONE_PER_SECOND, start).is_ok());
        }
        let wait = limiter.check_at("chan", ONE_PER_SECOND, start).unwrap_err();
        assert_eq!(retry_after_seconds(wait), 1);
        assert!(limiter.check_at("other", ONE_PER_SECOND, start).is_ok());
        assert!(
            limiter
                .check_at("chan", ONE_PER_SECOND, start + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn switched_off_it_allows_everything() {
        let limiter = RateLimiter::new(false);
        let start = Instant::now();
        for _ in 0..100 {
            assert!(limiter.check_at("chan", ONE_PER_SECOND, start).is_ok());
        }
    }
}
