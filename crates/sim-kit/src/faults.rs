//! Faults injected on purpose: failures, throttling and latency on routes, and dropped webhook
//! deliveries, so the hub's resilience can be tested against a misbehaving platform.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One rule. A request (or webhook delivery) matches the first rule whose target fits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRule {
    /// Requests whose path starts with this (e.g. `/slack/api/chat.postMessage`, `/graph/`).
    pub route_prefix: Option<String>,
    /// Requests whose `channel` argument (query string, form or JSON body) is this: Slack names
    /// the conversation there rather than in the path. With `route_prefix`, both must fit.
    pub channel: Option<String>,
    /// The rule lapses this many seconds after it was set; it holds until replaced when unset.
    pub duration_secs: Option<f64>,
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

/// Bodies inspected for a `channel` argument are read whole, up to the size the platforms' own
/// extractors accept.
pub const MAX_INSPECTED_BODY: usize = 2 * 1024 * 1024;

#[derive(Debug)]
struct ActiveRule {
    rule: FaultRule,
    until: Option<Instant>,
}

impl ActiveRule {
    fn live(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: RwLock<Vec<ActiveRule>>,
}

impl Faults {
    /// Replaces the rules; each `duration_secs` counts from now.
    pub fn set(&self, rules: Vec<FaultRule>) {
        let now = Instant::now();
        *self.rules.write().expect("faults lock") = rules
            .into_iter()
            .map(|rule| ActiveRule {
                until: rule
                    .duration_secs
                    .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                    .map(|lasting| now + lasting),
                rule,
            })
            .collect();
    }

    /// The rules still in force.
    pub fn rules(&self) -> Vec<FaultRule> {
        let now = Instant::now();
        self.rules
            .read()
            .expect("faults lock")
            .iter()
            .filter(|active| active.live(now))
            .map(|active| active.rule.clone())
            .collect()
    }

    /// Whether a rule in force targets a `channel`, so requests' arguments must be read.
    pub fn targets_channels(&self) -> bool {
        let now = Instant::now();
        self.rules
            .read()
            .expect("faults lock")
            .iter()
            .any(|active| active.live(now) && active.rule.channel.is_some())
    }

    /// The fate of a request to `path` whose `channel` argument, if read, is `channel`. Prefixes
    /// match the path as sent or percent-decoded: SDKs encode the `:` and `@` of Teams chat ids.
    pub fn for_request(&self, path: &str, channel: Option<&str>) -> FaultDecision {
        let decoded = percent_decode(path);
        let now = Instant::now();
        let rules = self.rules.read().expect("faults lock");
        let Some(rule) = rules
            .iter()
            .filter(|active| active.live(now))
            .map(|active| &active.rule)
            .find(|rule| {
                let targeted = rule.route_prefix.is_some() || rule.channel.is_some();
                targeted
                    && rule.route_prefix.as_deref().is_none_or(|prefix| {
                        path.starts_with(prefix) || decoded.starts_with(prefix)
                    })
                    && rule
                        .channel
                        .as_deref()
                        .is_none_or(|wanted| channel == Some(wanted))
            })
        else {
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
            let status = rule.error_status.unwrap_or(503);
            // A 429 without Retry-After is not how either platform throttles.
            if status == 429 {
                return FaultDecision::Throttle {
                    delay,
                    retry_after: Duration::from_secs(rule.retry_after_secs.unwrap_or(1)),
                };
            }
            return FaultDecision::Fail { delay, status };
        }
        FaultDecision::Pass { delay }
    }

    /// Whether to drop this delivery attempt of a `platform` webhook, and the latency to add.
    pub fn for_webhook(&self, platform: &str) -> (bool, Duration) {
        let now = Instant::now();
        let rules = self.rules.read().expect("faults lock");
        let Some(rule) = rules
            .iter()
            .filter(|active| active.live(now))
            .map(|active| &active.rule)
            .find(|rule| rule.webhooks_of.as_deref() == Some(platform))
        else {
            return (false, Duration::ZERO);
        };
        let drop = rule.drop_rate > 0.0 && rand::rng().random_bool(rule.drop_rate.clamp(0.0, 1.0));
        (drop, Duration::from_millis(rule.latency_ms))
    }
}

/// `%XX` escapes decoded; anything that does not decode to UTF-8 is kept as sent.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

/// The `channel` argument of a request, from its query string or its form or JSON body.
pub fn channel_argument(query: Option<&str>, content_type: &str, body: &[u8]) -> Option<String> {
    let from_form = |text: &[u8]| {
        form_urlencoded::parse(text)
            .find(|(name, _)| name == "channel")
            .map(|(_, value)| value.into_owned())
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let in_body = match media_type.as_str() {
        "application/x-www-form-urlencoded" => from_form(body),
        "application/json" => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| value.get("channel")?.as_str().map(str::to_owned)),
        _ => None,
    };
    in_body.or_else(|| query.and_then(|query| from_form(query.as_bytes())))
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
            faults.for_request("/slack/api/chat.postMessage", None),
            FaultDecision::Throttle {
                delay: Duration::ZERO,
                retry_after: Duration::from_secs(30)
            }
        );
        assert_eq!(
            faults.for_request("/graph/v1.0/users", None),
            FaultDecision::Fail {
                delay: Duration::from_millis(5),
                status: 503
            }
        );
        assert_eq!(
            faults.for_request("/slack/api/users.list", None),
            FaultDecision::Pass {
                delay: Duration::ZERO
            }
        );
        assert!(faults.for_webhook("slack").0);
        assert!(!faults.for_webhook("teams").0);
    }

    #[test]
    fn rules_target_one_channel_and_lapse() {
        let faults = Faults::default();
        faults.set(vec![
            FaultRule {
                route_prefix: Some("/slack/api/chat.".to_owned()),
                channel: Some("D0001".to_owned()),
                error_rate: 1.0,
                error_status: Some(429),
                retry_after_secs: Some(60),
                ..FaultRule::default()
            },
            FaultRule {
                channel: Some("D0002".to_owned()),
                error_rate: 1.0,
                duration_secs: Some(0.05),
                ..FaultRule::default()
            },
        ]);
        assert!(faults.targets_channels());
        assert_eq!(
            faults.for_request("/slack/api/chat.postMessage", Some("D0001")),
            FaultDecision::Throttle {
                delay: Duration::ZERO,
                retry_after: Duration::from_secs(60)
            },
            "an injected 429 always says when to retry"
        );
        let pass = FaultDecision::Pass {
            delay: Duration::ZERO,
        };
        assert_eq!(
            faults.for_request("/slack/api/chat.postMessage", Some("D0003")),
            pass
        );
        assert_eq!(
            faults.for_request("/slack/api/conversations.history", Some("D0001")),
            pass
        );
        assert_eq!(
            faults.for_request("/slack/api/chat.postMessage", None),
            pass
        );
        assert!(matches!(
            faults.for_request("/slack/api/conversations.history", Some("D0002")),
            FaultDecision::Fail { status: 503, .. }
        ));
        assert_eq!(faults.rules().len(), 2);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            faults.for_request("/slack/api/conversations.history", Some("D0002")),
            pass
        );
        assert_eq!(faults.rules().len(), 1, "a lapsed rule is gone");
    }

    #[test]
    fn a_teams_chat_is_targeted_by_its_path_however_it_is_encoded() {
        let faults = Faults::default();
        faults.set(vec![FaultRule {
            route_prefix: Some("/graph/v1.0/chats/19:abc@thread.v2/messages".to_owned()),
            error_rate: 1.0,
            ..FaultRule::default()
        }]);
        for path in [
            "/graph/v1.0/chats/19:abc@thread.v2/messages",
            "/graph/v1.0/chats/19%3Aabc%40thread.v2/messages",
            "/graph/v1.0/chats/19%3aabc%40thread.v2/messages/17",
        ] {
            assert!(
                matches!(faults.for_request(path, None), FaultDecision::Fail { .. }),
                "{path}"
            );
        }
        assert!(matches!(
            faults.for_request("/graph/v1.0/chats/19%3Aabd%40thread.v2/messages", None),
            FaultDecision::Pass { .. }
        ));
        assert_eq!(percent_decode("/a%ZZ%4"), "/a%ZZ%4");
    }

    #[test]
    fn the_channel_argument_is_read_wherever_slack_reads_it() {
        let form = "application/x-www-form-urlencoded";
        assert_eq!(
            channel_argument(None, form, b"text=hi&channel=D0001").as_deref(),
            Some("D0001")
        );
        assert_eq!(
            channel_argument(
                None,
                "application/json; charset=utf-8",
                br#"{"channel": "D0002", "text": "hi"}"#
            )
            .as_deref(),
            Some("D0002")
        );
        assert_eq!(
            channel_argument(Some("channel=D0003&limit=2"), "", b"").as_deref(),
            Some("D0003")
        );
        assert_eq!(
            channel_argument(None, "application/json", b"not json"),
            None
        );
        assert_eq!(channel_argument(Some("users=U1"), form, b"text=hi"), None);
    }
}
