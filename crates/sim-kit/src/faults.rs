//! Faults injected on purpose: failures, throttling and latency on routes, and dropped webhook
//! deliveries, so the hub's resilience can be tested against a misbehaving platform.

use std::sync::RwLock;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One rule. A request (or webhook delivery) matches the first rule whose target fits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRule {
    /// Requests whose path starts with this (e.g. `/slack/api/chat.postMessage`, `/graph/`).
    pub route_prefix: Option<String>,
    /// Webhook deliveries of this platform (`slack`, `teams`, …).
    pub webhooks_of: Option<String>,
    /// Share of matching requests answered with `error_status` (0.0–1.0).
    pub error_rate: f64,
    /// The status of injected failures; 503 when unset.
    pub error_status: Option<u16>,
    /// Share of matching requests throttled with 429 and `Retry-After`.
    pub throttle_rate: f64,
    /// The `Retry-After` of injected throttling, in seconds; 1 when unset.
    pub retry_after_secs: Option<u64>,
    /// Added to every matching request or delivery.
    pub latency_ms: u64,
    /// Share of matching webhook deliveries dropped (the platform then retries them).
    pub drop_rate: f64,
}

/// What to do to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultDecision {
    Pass {
        delay: Duration,
    },
    Fail {
        delay: Duration,
        status: u16,
    },
    Throttle {
        delay: Duration,
        retry_after: Duration,
    },
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: RwLock<Vec<FaultRule>>,
}

impl Faults {
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.rules.write().expect("faults lock") = rules;
    }

    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules.read().expect("faults lock").clone()
    }

    /// The fate of a request to `path`.
    pub fn for_request(&self, path: &str) -> FaultDecision {
        let rules = self.rules.read().expect("faults lock");
        let Some(rule) = rules.iter().find(|rule| {
            rule.route_prefix
                .as_deref()
                .is_some_and(|prefix| path.starts_with(prefix))
        }) else {
            return FaultDecision::Pass {
                delay: Duration::ZERO,
            };
        };
        let delay = Duration::from_millis(rule.latency_ms);
        let mut rng = rand::rng();
        if rule.throttle_rate > 0.0 && rng.random_bool(rule.throttle_rate.clamp(0.0, 1.0)) {
            return FaultDecision::Throttle {
                delay,
                retry_after: Duration::from_secs(rule.retry_after_secs.unwrap_or(1)),
            };
        }
        if rule.error_rate > 0.0 && rng.random_bool(rule.error_rate.clamp(0.0, 1.0)) {
            return FaultDecision::Fail {
                delay,
                status: rule.error_status.unwrap_or(503),
            };
        }
        FaultDecision::Pass { delay }
    }

    /// Whether to drop this delivery attempt of a `platform` webhook, and the latency to add.
    pub fn for_webhook(&self, platform: &str) -> (bool, Duration) {
        let rules = self.rules.read().expect("faults lock");
        let Some(rule) = rules
            .iter()
            .find(|rule| rule.webhooks_of.as_deref() == Some(platform))
        else {
            return (false, Duration::ZERO);
        };
        let drop = rule.drop_rate > 0.0 && rand::rng().random_bool(rule.drop_rate.clamp(0.0, 1.0));
        (drop, Duration::from_millis(rule.latency_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_by_prefix_and_platform() {
        let faults = Faults::default();
        faults.set(vec![
            FaultRule {
                route_prefix: Some("/slack/api/chat.".to_owned()),
                throttle_rate: 1.0,
                retry_after_secs: Some(30),
                ..FaultRule::default()
            },
            FaultRule {
                route_prefix: Some("/graph/".to_owned()),
                error_rate: 1.0,
                latency_ms: 5,
                ..FaultRule::default()
            },
            FaultRule {
                webhooks_of: Some("slack".to_owned()),
                drop_rate: 1.0,
                ..FaultRule::default()
            },
        ]);
        assert_eq!(
            faults.for_request("/slack/api/chat.postMessage"),
            FaultDecision::Throttle {
                delay: Duration::ZERO,
                retry_after: Duration::from_secs(30)
            }
        );
        assert_eq!(
            faults.for_request("/graph/v1.0/users"),
            FaultDecision::Fail {
                delay: Duration::from_millis(5),
                status: 503
            }
        );
        assert_eq!(
            faults.for_request("/slack/api/users.list"),
            FaultDecision::Pass {
                delay: Duration::ZERO
            }
        );
        assert!(faults.for_webhook("slack").0);
        assert!(!faults.for_webhook("teams").0);
    }
}
