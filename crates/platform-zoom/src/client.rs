//! The HTTP client for Zoom's REST API and its OAuth token endpoint, with time-outs and every
//! failure classified as a [`PlatformError`]. Every call goes through [`with_retries`], so a
//! 429 and 5xx are retried with backoff, honouring `Retry-After`. Lists page through the
//! `next_page_token` of their answers (empty on the last page), which the callers follow.
//!
//! - Errors (`{"code", "message"}`): <https://developers.zoom.us/docs/api/using-zoom-apis/#error-handling>
//! - Rate limits (per account, by plan and endpoint label; 429 with `Retry-After`):
//!   <https://developers.zoom.us/docs/api/rate-limits/>
//! - OAuth errors (`{"reason", "error"}`): <https://developers.zoom.us/docs/integrations/oauth/>

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_platform::wire::lenient;
use switchboard_platform::{PlatformError, RetryPolicy, http, with_retries};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::settings::ZoomSettings;
use crate::wire::TokenGrant;

/// The platform's name in errors.
const PLATFORM: &str = "Zoom";

/// Zoom's error body `{"code", "message"}`, and its token endpoint's `{"reason", "error"}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default, deserialize_with = "lenient")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    error: Option<String>,
}

/// Zoom's code for a token without the scope a call needs ("Invalid access token, does not
/// contain scopes"), answered with HTTP 400.
const MISSING_SCOPES: i64 = 4711;

pub(crate) struct Client {
    http: reqwest::Client,
    retry: RetryPolicy,
    api: String,
    oauth: String,
}

/// A base URL without its trailing slash, checked.
fn base(url: &str, name: &str) -> Result<String, PlatformError> {
    let trimmed = url.trim().trim_end_matches('/').to_owned();
    Url::parse(&trimmed)
        .map_err(|e| PlatformError::Rejected(format!("bad Zoom {name} {trimmed}: {e}")))?;
    Ok(trimmed)
}

impl Client {
    pub fn new(settings: &ZoomSettings, retry: RetryPolicy) -> Result<Self, PlatformError> {
        let timeout = Duration::from_secs(settings.request_timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Closed before servers commonly close idle connections, so a post never starts on
            // a connection being closed, where its fate would be unclear.
            .pool_idle_timeout(Duration::from_secs(20))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlatformError::Rejected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            retry,
            api: base(&settings.api_base, "api_base")?,
            oauth: base(&settings.oauth_base, "oauth_base")?,
        })
    }

    pub fn api_base(&self) -> &str {
        &self.api
    }

    /// `{api_base}/{path}?{query}`; each path segment is escaped by the caller with [`segment`].
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        let mut url = Url::parse(&format!("{}/{path}", self.api))
            .map_err(|e| PlatformError::Rejected(format!("bad URL for {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.into())
    }

    /// Where a person authorises the user-managed app.
    pub fn authorize_url(&self, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        let mut url = Url::parse(&format!("{}/authorize", self.oauth))
            .map_err(|e| PlatformError::Rejected(format!("bad Zoom oauth_base: {e}")))?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url.into())
    }

    /// One call with a bearer token, its answer read as `T` (an empty answer, such as a 204,
    /// as `null`).
    pub async fn call<T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, PlatformError> {
        with_retries(self.retry, || async {
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token)
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = http::send(request, PLATFORM).await?;
            if !answer.status.is_success() {
                return Err(classify(answer.status, &answer.headers, &answer.body));
            }
            answer.json(PLATFORM)
        })
        .await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
    ) -> Result<T, PlatformError> {
        self.call(token, Method::GET, url, None).await
    }

    /// A call whose answer the hub does not need (edits, deletions and reactions answer 204).
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(), PlatformError> {
        self.call::<serde::de::IgnoredAny>(token, method, url, body)
            .await
            .map(drop)
    }

    /// Posts a grant to `{oauth_base}/token`, the app authenticated by HTTP Basic.
    pub async fn token(
        &self,
        (client_id, client_secret): (&str, &SecretString),
        form: &[(&str, &str)],
    ) -> Result<TokenGrant, PlatformError> {
        let url = format!("{}/token", self.oauth);
        with_retries(self.retry, || async {
            let request = self
                .http
                .post(&url)
                .basic_auth(client_id, Some(client_secret.expose_secret()))
                .form(form);
            let answer = http::send(request, PLATFORM).await?;
            if answer.status.is_success() {
                return answer.json(PLATFORM);
            }
            Err(
                match classify(answer.status, &answer.headers, &answer.body) {
                    // The token endpoint answers 400 for an expired, spent or foreign code or
                    // refresh token, and for a wrong account: someone must authorise again.
                    PlatformError::Rejected(why) => PlatformError::Unauthorized(why),
                    other => other,
                },
            )
        })
        .await
    }
}

/// A value for one segment of a URL path (an id or an e-mail address), escaped so that it
/// cannot point the call anywhere else.
pub(crate) fn segment(value: &str) -> Result<String, PlatformError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(PlatformError::Rejected(format!("not a Zoom id: {value:?}")));
    }
    Ok(value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.@+".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect())
}

/// `Retry-After` in whole seconds. Zoom documents an HTTP date for its daily limits: a wait
/// that long is beyond any retry here, so it is not read, and the failure goes back to whoever
/// scheduled the call.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// A failed answer, by what to do next.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, text: &str) -> PlatformError {
    let body: ErrorBody = serde_json::from_str(text).unwrap_or_default();
    let said = body
        .message
        .or(body.reason)
        .filter(|said| !said.is_empty())
        .unwrap_or_else(|| text.chars().take(200).collect());
    let mut what = format!("HTTP {}", status.as_u16());
    if let Some(code) = body.code {
        what.push_str(&format!(" (code {code})"));
    }
    if let Some(error) = body.error {
        what.push_str(&format!(" ({error})"));
    }
    what.push_str(&format!(": {said}"));
    match status {
        StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
            retry_after: retry_after(headers),
        },
        status if status.is_server_error() => PlatformError::Unavailable(what),
        StatusCode::UNAUTHORIZED => PlatformError::Unauthorized(what),
        _ if body.code == Some(MISSING_SCOPES) => PlatformError::Unauthorized(format!(
            "missing scope ({what}); add it to the app on the Zoom App Marketplace"
        )),
        StatusCode::NOT_FOUND => PlatformError::NotFound(what),
        _ => PlatformError::Rejected(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn failures_are_classified_by_what_to_do_next() {
        let throttled = r#"{"code":429,"message":"You have reached the maximum per-second rate limit for this API. Try again later."}"#;
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[("retry-after", "2")]),
                throttled
            ),
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &headers(&[]), "oops"),
            PlatformError::Unavailable(m) if m == "HTTP 502: oops"
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &headers(&[]), r#"{"code":124,"message":"Invalid access token."}"#),
            PlatformError::Unauthorized(m) if m == "HTTP 401 (code 124): Invalid access token."
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &headers(&[]), r#"{"code":4711,"message":"Invalid access token, does not contain scopes:[team_chat:write:user_message]."}"#),
            PlatformError::Unauthorized(m) if m.contains("missing scope")
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &headers(&[]), r#"{"code":4130,"message":"User does not exist"}"#),
            PlatformError::NotFound(m) if m.contains("4130")
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &headers(&[]), r#"{"reason":"Invalid Token!","error":"invalid_request"}"#),
            PlatformError::Rejected(m) if m == "HTTP 400 (invalid_request): Invalid Token!"
        ));
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, &headers(&[]), "not json"),
            PlatformError::Rejected(m) if m == "HTTP 403: not json"
        ));
    }

    #[test]
    fn path_segments_cannot_leave_their_place() {
        assert_eq!(
            segment("KdYKjnimT4KPd8FFgQt9FQ").unwrap(),
            "KdYKjnimT4KPd8FFgQt9FQ"
        );
        assert_eq!(segment("ada+x@acme.example").unwrap(), "ada+x@acme.example");
        assert_eq!(segment("a/b?c#d e").unwrap(), "a%2Fb%3Fc%23d%20e");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }
}
