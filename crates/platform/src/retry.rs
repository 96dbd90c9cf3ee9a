//! Retrying calls to a platform: transient failures are retried with exponential backoff and
//! full jitter, a platform's `Retry-After` is honoured, and the last failure is returned when
//! the attempts run out. Every platform module sends its calls through [`with_retries`], so the
//! policy is decided once.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::PlatformError;

/// How persistent to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The backoff ceiling before the first retry; it doubles with each retry.
    pub base: Duration,
    /// No single wait is longer than this, `Retry-After` included: a platform asking for longer
    /// gets the failure reported instead, to be retried by whoever scheduled the call.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base: Duration::from_millis(200),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based) after `error`, or `None` to give up.
    pub fn wait_before(&self, retry: u32, error: &PlatformError) -> Option<Duration> {
        if retry >= self.attempts || !error.is_retryable() {
            return None;
        }
        let wait = match error.retry_after() {
            Some(asked) => asked,
            None => {
                let ceiling = self
                    .base
                    .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
                    .min(self.max_wait);
                ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
            }
        };
        (wait <= self.max_wait).then_some(wait)
    }
}

/// Runs `call` until it succeeds, fails in a way retrying cannot help, or the policy gives up.
pub async fn with_retries<T, F, Fut>(policy: RetryPolicy, mut call: F) -> Result<T, PlatformError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PlatformError>>,
{
    let mut retry = 0;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                retry += 1;
                match policy.wait_before(retry, &error) {
                    Some(wait) => {
                        tracing::debug!(%error, retry, wait_ms = wait.as_millis() as u64, "retrying a platform call");
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(error),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            max_wait: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result = with_retries(fast(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(PlatformError::Unavailable("503".to_owned())),
                1 => Err(PlatformError::RateLimited {
                    retry_after: Some(Duration::from_millis(5)),
                }),
                _ => Ok("posted"),
            }
        })
        .await;
        assert_eq!(result, Ok("posted"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn final_failures_and_exhaustion_are_reported() {
        let calls = AtomicU32::new(0);
        let refused: Result<(), _> = with_retries(fast(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(PlatformError::Unauthorized("token_revoked".to_owned()))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(refused, Err(PlatformError::Unauthorized(_))));

        let calls = AtomicU32::new(0);
        let exhausted: Result<(), _> = with_retries(fast(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(PlatformError::Unavailable("502".to_owned()))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(matches!(exhausted, Err(PlatformError::Unavailable(_))));
    }

    #[test]
    fn a_retry_after_longer_than_the_ceiling_is_handed_back() {
        let policy = fast();
        let long = PlatformError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(policy.wait_before(1, &long), None);
        let short = PlatformError::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(policy.wait_before(1, &short), Some(Duration::from_secs(1)));
    }

    #[test]
    fn backoff_grows_and_stays_under_its_ceiling() {
        let policy = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(100),
            max_wait: Duration::from_millis(500),
        };
        let error = PlatformError::Unavailable("timeout".to_owned());
        for retry in 1..10 {
            let wait = policy.wait_before(retry, &error).unwrap();
            let ceiling = Duration::from_millis(100 * 2u64.pow(retry - 1)).min(policy.max_wait);
            assert!(wait <= ceiling, "retry {retry}: {wait:?} > {ceiling:?}");
        }
        assert_eq!(policy.wait_before(10, &error), None);
    }
}
