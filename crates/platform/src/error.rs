use std::time::Duration;

/// Why a call to a platform did not succeed, classified by what the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The platform asked us to slow down; `retry_after` is its `Retry-After`, when given.
    #[error("rate limited by the platform{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// A transient failure: a timeout, a refused connection, a 5xx. Retrying may succeed.
    #[error("the platform is unavailable: {0}")]
    Unavailable(String),
    /// The credentials were refused: expired, revoked, or missing a scope. Retrying will not
    /// help until someone re-authorises; what depends on them is marked failed.
    #[error("the platform refused our credentials: {0}")]
    Unauthorized(String),
    /// The connection has no credential of this name stored.
    #[error("the connection has no {0} stored; reconnect the platform")]
    MissingCredential(&'static str),
    #[error("not found on the platform: {0}")]
    NotFound(String),
    /// The platform refused the request itself; retrying the same request will not help.
    #[error("the platform refused the request: {0}")]
    Rejected(String),
    /// The platform cannot do this at all (for example editing as some account types).
    #[error("the platform does not support {0}")]
    Unsupported(&'static str),
    /// An inbound webhook failed verification or could not be read.
    #[error("rejected webhook: {0}")]
    BadWebhook(String),
}

impl PlatformError {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PlatformError::RateLimited { .. } | PlatformError::Unavailable(_)
        )
    }

    /// Whether the platform may have done what was asked although the call failed: a timeout
    /// or a server error can come after the request took effect.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, PlatformError::Unavailable(_))
    }

    /// The wait the platform asked for before the next attempt, if it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PlatformError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        let retryable = [
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            },
            PlatformError::Unavailable("503".to_owned()),
        ];
        let final_ = [
            PlatformError::Unauthorized("token_revoked".to_owned()),
            PlatformError::MissingCredential("bot token"),
            PlatformError::NotFound("channel_not_found".to_owned()),
            PlatformError::Rejected("msg_too_long".to_owned()),
            PlatformError::Unsupported("threads in chats"),
            PlatformError::BadWebhook("bad signature".to_owned()),
        ];
        assert!(retryable.iter().all(PlatformError::is_retryable));
        assert!(!final_.iter().any(PlatformError::is_retryable));
        assert_eq!(retryable[0].retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(
            retryable[0].to_string(),
            "rate limited by the platform (retry after 30 s)"
        );
    }
}
