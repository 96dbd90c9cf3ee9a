//! The Web API client: `POST {base}/api/{method}` with a form or JSON body, a bearer token or
//! HTTP Basic client credentials, a timeout, and Slack's answers classified into
//! [`PlatformError`]s. Every call goes through [`with_retries`].
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error": "<code>"}`; throttling
//! is HTTP 429 with `Retry-After` (seconds) and `{"ok": false, "error": "ratelimited"}`.
//! A successful answer is read into the caller's typed struct ([`Reply::read`]).
//!
//! - Web API: <https://api.slack.com/web>
//! - Rate limits: <https://api.slack.com/apis/rate-limits>

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_platform::{PlatformError, RetryPolicy, with_retries};
use switchboard_secrets::{ExposeSecret, SecretString};

use switchboard_platform::wire;

/// How a call authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// No credentials (`tooling.tokens.rotate` takes its refresh token as an argument).
    None,
    /// `Authorization: Bearer <token>`: a bot, user or app configuration token.
    Bearer(&'a SecretString),
    /// HTTP Basic with an app's client id and secret (`oauth.v2.access`).
    Basic(&'a str, &'a SecretString),
}

/// A method's arguments.
pub(crate) enum Body {
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

/// A successful answer: the JSON body and the scopes Slack said the token has.
#[derive(Debug)]
pub(crate) struct Reply {
    body: Value,
    /// `X-OAuth-Scopes`, when Slack sent it.
    pub scopes: Option<Vec<String>>,
}

impl Reply {
    /// The answer of `method` read as `T`.
    pub(crate) fn read<T: DeserializeOwned>(&self, method: &str) -> Result<T, PlatformError> {
        T::deserialize(&self.body)
            .map_err(|e| PlatformError::Rejected(format!("{method} answered unreadably: {e}")))
    }
}

/// What every answer says of itself: `ok`, and on failure the `error` code and its details.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Status {
    #[serde(default, deserialize_with = "wire::lenient")]
    ok: Option<bool>,
    #[serde(default, deserialize_with = "wire::lenient")]
    error: Option<String>,
    /// `missing_scope`: the scope the method needs.
    #[serde(default, deserialize_with = "wire::lenient")]
    needed: Option<String>,
    /// `invalid_manifest`: what is wrong, and where.
    #[serde(default, deserialize_with = "wire::items")]
    errors: Vec<ManifestProblem>,
}

impl Status {
    fn of(body: &Value) -> Self {
        Self::deserialize(body).unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
struct ManifestProblem {
    message: Option<String>,
    pointer: Option<String>,
}

/// A non-empty text an answer must hold, `what` naming it in the error if it does not.
pub(crate) fn required(
    text: Option<String>,
    method: &str,
    what: &str,
) -> Result<String, PlatformError> {
    text.filter(|text| !text.is_empty())
        .ok_or_else(|| PlatformError::Rejected(format!("{method} answered without {what}")))
}

#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    api_base: String,
    retry: RetryPolicy,
}

impl Client {
    pub(crate) fn new(
        api_base_url: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Closed before servers commonly close idle connections (30 s or more), so a post
            // never starts on a connection being closed, where its fate would be unclear.
            .pool_idle_timeout(Duration::from_secs(20))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            api_base: format!("{}/api", api_base_url.trim_end_matches('/')),
            retry,
        })
    }

    pub(crate) fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// Calls `method`, retrying transient failures as the policy says.
    pub(crate) async fn call(
        &self,
        method: &str,
        auth: Auth<'_>,
        body: Body,
    ) -> Result<Reply, PlatformError> {
        let body = &body;
        with_retries(self.retry, || self.call_once(method, auth, body)).await
    }

    async fn call_once(
        &self,
        method: &str,
        auth: Auth<'_>,
        body: &Body,
    ) -> Result<Reply, PlatformError> {
        let mut request = self.http.post(format!("{}/{method}", self.api_base));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Auth::Basic(id, secret) => request.basic_auth(id, Some(secret.expose_secret())),
        };
        request = match body {
            Body::Form(fields) => request.form(fields),
            Body::Json(value) => request.json(value),
        };
        let response = request
            .send()
            .await
            .map_err(|error| transport(method, &error))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let scopes = response
            .headers()
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok())
            .map(split_scopes);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(PlatformError::RateLimited { retry_after });
        }
        if status.is_server_error() {
            return Err(PlatformError::Unavailable(format!(
                "{method} answered HTTP {}",
                status.as_u16()
            )));
        }
        let text = response
            .text()
            .await
            .map_err(|error| transport(method, &error))?;
        let body: Value = match serde_json::from_str(&text) {
            Ok(body) => body,
            Err(_) => {
                return Err(PlatformError::Rejected(format!(
                    "{method} answered HTTP {} with a body that is not JSON",
                    status.as_u16()
                )));
            }
        };
        let answer = Status::of(&body);
        if answer.ok == Some(true) && status.is_success() {
            return Ok(Reply { body, scopes });
        }
        Err(classify(method, &answer, retry_after))
    }
}

fn transport(method: &str, error: &reqwest::Error) -> PlatformError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    PlatformError::Unavailable(format!("{method} {what}: {error}"))
}

pub(crate) fn split_scopes(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What Slack's `{ok: false, error}` means for the caller.
pub(crate) fn classify(
    method: &str,
    answer: &Status,
    retry_after: Option<Duration>,
) -> PlatformError {
    let code = answer.error.as_deref().unwrap_or("unknown_error");
    match code {
        "ratelimited" | "rate_limited" => PlatformError::RateLimited { retry_after },
        // Slack documents these as transient, worth retrying.
        "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" => {
            PlatformError::Unavailable(format!("{method}: {code}"))
        }
        "invalid_auth"
        | "token_revoked"
        | "account_inactive"
        | "not_authed"
        | "token_expired"
        | "not_allowed_token_type"
        | "invalid_refresh_token"
        | "no_permission"
        | "ekm_access_denied" => PlatformError::Unauthorized(format!("{method}: {code}")),
        "missing_scope" => {
            let needed = answer.needed.as_deref().unwrap_or("an unnamed scope");
            PlatformError::Unauthorized(format!(
                "{method}: missing_scope (the token needs {needed}; reinstall the app with it)"
            ))
        }
        "invalid_manifest" => {
            let problems: Vec<String> = answer
                .errors
                .iter()
                .map(|p| {
                    format!(
                        "{} at {}",
                        p.message.as_deref().unwrap_or("?"),
                        p.pointer.as_deref().unwrap_or("/")
                    )
                })
                .collect();
            PlatformError::Rejected(format!(
                "{method}: invalid_manifest ({})",
                problems.join("; ")
            ))
        }
        code if code.ends_with("_not_found") => {
            PlatformError::NotFound(format!("{method}: {code}"))
        }
        code => PlatformError::Rejected(format!("{method}: {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(body: Value) -> PlatformError {
        classify("m", &Status::of(&body), Some(Duration::from_secs(2)))
    }

    #[test]
    fn slack_error_codes_are_classified_by_what_to_do_next() {
        assert_eq!(
            class(json!({"ok": false, "error": "ratelimited"})),
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        for code in [
            "invalid_auth",
            "token_revoked",
            "account_inactive",
            "not_authed",
            "token_expired",
        ] {
            assert!(
                matches!(
                    class(json!({"ok": false, "error": code})),
                    PlatformError::Unauthorized(_)
                ),
                "{code}"
            );
        }
        let scope = class(json!({"ok": false, "error": "missing_scope", "needed": "im:write"}));
        assert!(matches!(&scope, PlatformError::Unauthorized(m) if m.contains("im:write")));
        for code in ["users_not_found", "channel_not_found", "message_not_found"] {
            assert!(matches!(
                class(json!({"ok": false, "error": code})),
                PlatformError::NotFound(_)
            ));
        }
        assert!(matches!(
            class(json!({"ok": false, "error": "msg_too_long"})),
            PlatformError::Rejected(_)
        ));
        assert!(class(json!({"ok": false, "error": "internal_error"})).is_retryable());
        let manifest = class(json!({"ok": false, "error": "invalid_manifest",
            "errors": [{"message": "Must be a valid URL", "pointer": "/oauth_config/redirect_urls/0"}]}));
        assert!(
            matches!(&manifest, PlatformError::Rejected(m) if m.contains("/oauth_config/redirect_urls/0"))
        );
    }
}
