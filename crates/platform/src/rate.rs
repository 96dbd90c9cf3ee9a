//! Request budgets a platform publishes, so the hub can pace itself instead of being throttled.

use std::time::Duration;

/// A token bucket's shape: up to `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// The pace at which one connection may provision representations, with how the platform's
/// limit reads to an admin after the platform's name ("Slack allows one new app a minute"),
/// so that what the hub says about a wait comes from the module that knows the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProvisioningRate {
    pub rate: Rate,
    /// The limit in words, after "allows": "one new app a minute".
    pub allows: &'static str,
}

/// A token bucket that hands out waits: each request takes a token, waiting for it if the
/// bucket is empty. Time is passed in, so the bucket itself never reads a clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: Rate,
    /// Tokens left at `at`; negative when requests already wait for tokens to come.
    tokens: f64,
    at: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now` (measured from any fixed point).
    pub fn new(rate: Rate, now: Duration) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    /// Takes a token at `now` and says how long to wait before using it.
    pub fn take(&mut self, now: Duration) -> Duration {
        if now > self.at {
            let refill = (now - self.at).as_secs_f64() * self.rate.per_second;
            self.tokens = (self.tokens + refill).min(self.rate.burst);
            self.at = now;
        }
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || self.rate.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 30.0,
        burst: 150.0,
    };

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_paces_the_rest() {
        let mut bucket = TokenBucket::new(RATE, Duration::ZERO);
        for _ in 0..150 {
            assert_eq!(bucket.take(Duration::ZERO), Duration::ZERO);
        }
        let waits: Vec<Duration> = (0..3).map(|_| bucket.take(Duration::ZERO)).collect();
        let millis: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, vec![33, 66, 100]);
    }

    #[test]
    fn tokens_come_back_over_time_up_to_the_burst() {
        let mut bucket = TokenBucket::new(RATE, Duration::ZERO);
        for _ in 0..150 {
            bucket.take(Duration::ZERO);
        }
        // One second refills 30 tokens; an hour refills no more than the burst.
        for _ in 0..30 {
            assert_eq!(bucket.take(Duration::from_secs(1)), Duration::ZERO);
        }
        assert!(bucket.take(Duration::from_secs(1)) > Duration::ZERO);
        let later = Duration::from_secs(3600);
        for _ in 0..150 {
            assert_eq!(bucket.take(later), Duration::ZERO);
        }
        assert!(bucket.take(later) > Duration::ZERO);
    }
}
