//! Webhook delivery the way platforms do it: a POST with a deadline, retried on failure on the
//! platform's schedule (compressible for tests by a time scale), each attempt logged, and
//! attempts dropped when a fault rule ([`crate::FaultRule`]) says so.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::{Faults, LogEntry, LogKind, RequestLog};

/// Headers for one attempt: attempt 0 is the first delivery, 1.. are retries, each told how the
/// attempt before it failed (platforms name the reason in a retry header).
pub type AttemptHeaders =
    Box<dyn Fn(u32, Option<&AttemptFailure>) -> Vec<(String, String)> + Send + Sync>;

/// How one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No answer within the delivery's deadline.
    Timeout,
    /// The receiver could not be reached.
    ConnectionFailed,
    /// The receiver answered with a status outside 2xx.
    HttpError(u16),
    /// An injected fault lost the attempt on its way; to the platform it looks like no answer.
    Dropped,
    /// Anything else the HTTP client reported.
    Other(String),
}

impl std::fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptFailure::Timeout => f.write_str("no answer in time"),
            AttemptFailure::ConnectionFailed => f.write_str("connection failed"),
            AttemptFailure::HttpError(status) => write!(f, "HTTP {status}"),
            AttemptFailure::Dropped => f.write_str("dropped by an injected fault"),
            AttemptFailure::Other(reason) => f.write_str(reason),
        }
    }
}

/// One webhook to deliver.
pub struct Delivery {
    /// Which platform sends it (matched by [`crate::FaultRule::webhooks_of`]).
    pub platform: &'static str,
    pub url: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: AttemptHeaders,
    /// The waits before each retry at the platform's real pace; their count is the number of
    /// retries.
    pub retry_delays: Vec<Duration>,
    /// An answer slower than this counts as a failed attempt.
    pub deadline: Duration,
    /// A response header with which the receiver may ask for no retries (Slack's
    /// `X-Slack-No-Retry: 1`).
    pub no_retry_header: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        attempts: u32,
        status: u16,
        body: String,
    },
    Failed {
        attempts: u32,
        last_error: String,
    },
}

pub struct WebhookSender {
    client: reqwest::Client,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    time_scale: RwLock<f64>,
}

impl WebhookSender {
    pub fn new(faults: Arc<Faults>, log: Arc<RequestLog>) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(2))
                // Closed before the hub closes an idle connection (after 30 s), so a delivery never
                // starts on a connection the hub is closing.
                .pool_idle_timeout(Duration::from_secs(20))
                .build()
                .expect("a plain HTTP client builds"),
            faults,
            log,
            time_scale: RwLock::new(1.0),
        }
    }

    /// Multiplies every retry delay (e.g. 0.001 turns Slack's 5 minutes into 0.3 s).
    pub fn set_time_scale(&self, scale: f64) {
        *self.time_scale.write().expect("time scale lock") = scale.max(0.0);
    }

    pub fn time_scale(&self) -> f64 {
        *self.time_scale.read().expect("time scale lock")
    }

    /// Delivers in the background.
    pub fn spawn(self: &Arc<Self>, delivery: Delivery) {
        let sender = self.clone();
        tokio::spawn(async move {
            sender.deliver(delivery).await;
        });
    }

    /// Delivers, retrying on the delivery's schedule, and says how it ended.
    pub async fn deliver(&self, delivery: Delivery) -> DeliveryOutcome {
        let attempts = delivery.retry_delays.len() as u32 + 1;
        let mut previous: Option<AttemptFailure> = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                let wait = delivery.retry_delays[attempt as usize - 1].mul_f64(self.time_scale());
                tokio::time::sleep(wait).await;
            }
            match self.attempt(&delivery, attempt, previous.as_ref()).await {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    return DeliveryOutcome::Delivered {
                        attempts: attempt + 1,
                        status: answer.status,
                        body: answer.body,
                    };
                }
                Ok(answer) => {
                    if answer.no_retry {
                        return DeliveryOutcome::Failed {
                            attempts: attempt + 1,
                            last_error: AttemptFailure::HttpError(answer.status).to_string(),
                        };
                    }
                    previous = Some(AttemptFailure::HttpError(answer.status));
                }
                Err(failure) => previous = Some(failure),
            }
        }
        DeliveryOutcome::Failed {
            attempts,
            last_error: previous.map(|f| f.to_string()).unwrap_or_default(),
        }
    }

    async fn attempt(
        &self,
        delivery: &Delivery,
        attempt: u32,
        previous: Option<&AttemptFailure>,
    ) -> Result<Answer, AttemptFailure> {
        let started = Instant::now();
        let (dropped, latency) = self.faults.for_webhook(delivery.platform);
        let log = |status: u16, note: String| {
            self.log.record(LogEntry {
                seq: 0,
                at_ms: 0,
                kind: LogKind::Webhook,
                method: "POST".to_owned(),
                target: delivery.url.clone(),
                status,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                note: format!("{} attempt {}{note}", delivery.platform, attempt + 1),
            });
        };
        if dropped {
            log(0, ": dropped (injected fault)".to_owned());
            return Err(AttemptFailure::Dropped);
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut request = self
            .client
            .post(&delivery.url)
            .timeout(delivery.deadline)
            .header("content-type", delivery.content_type)
            .body(delivery.body.clone());
        for (name, value) in (delivery.headers)(attempt, previous) {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let no_retry = delivery.no_retry_header.is_some_and(|name| {
                    response
                        .headers()
                        .get(name)
                        .is_some_and(|value| value.as_bytes() == b"1")
                });
                let body = response.text().await.unwrap_or_default();
                log(status, String::new());
                Ok(Answer {
                    status,
                    body,
                    no_retry,
                })
            }
            Err(error) => {
                let failure = if error.is_timeout() {
                    AttemptFailure::Timeout
                } else if error.is_connect() {
                    AttemptFailure::ConnectionFailed
                } else {
                    AttemptFailure::Other(error.to_string())
                };
                log(0, format!(": {failure}"));
                Err(failure)
            }
        }
    }
}

/// What a receiver answered.
struct Answer {
    status: u16,
    body: String,
    no_retry: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FaultRule;
    use axum::routing::post;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn receiver(fail_first: u32) -> (String, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap| {
                let counter = counter.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let retry = headers
                        .get("x-retry")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    assert_eq!(retry, n.to_string());
                    if n < fail_first {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new())
                    } else {
                        (axum::http::StatusCode::OK, format!("ok after {n}"))
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{address}/hook"), calls)
    }

    fn delivery(url: String, retries: usize) -> Delivery {
        Delivery {
            platform: "slack",
            url,
            content_type: "application/json",
            body: b"{}".to_vec(),
            headers: Box::new(|attempt, previous| {
                assert_eq!(previous.is_some(), attempt > 0);
                vec![("x-retry".to_owned(), attempt.to_string())]
            }),
            retry_delays: vec![Duration::from_secs(60); retries],
            deadline: Duration::from_secs(3),
            no_retry_header: None,
        }
    }

    #[tokio::test]
    async fn failures_are_retried_on_a_scaled_schedule() {
        let (url, calls) = receiver(2).await;
        let sender = WebhookSender::new(Arc::default(), Arc::default());
        sender.set_time_scale(0.0001);
        let outcome = sender.deliver(delivery(url, 3)).await;
        assert_eq!(
            outcome,
            DeliveryOutcome::Delivered {
                attempts: 3,
                status: 200,
                body: "ok after 2".to_owned()
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn dropped_attempts_count_as_failures_and_are_logged() {
        let (url, calls) = receiver(0).await;
        let faults = Arc::new(Faults::default());
        faults.set(vec![FaultRule {
            webhooks_of: Some("slack".to_owned()),
            drop_rate: 1.0,
            ..FaultRule::default()
        }]);
        let log = Arc::new(RequestLog::default());
        let sender = WebhookSender::new(faults, log.clone());
        sender.set_time_scale(0.0);
        let outcome = sender.deliver(delivery(url, 2)).await;
        assert!(
            matches!(outcome, DeliveryOutcome::Failed { attempts: 3, .. }),
            "{outcome:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(log.entries(0, Some(LogKind::Webhook), 10).len(), 3);
    }
}
