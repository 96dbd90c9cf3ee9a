//! The HTTP client for Google's APIs: the Chat API, the Admin SDK Directory, Workspace Events,
//! and the OAuth token endpoints, with time-outs and every failure classified
//! as a [`PlatformError`]. Every call goes through [`with_retries`], so 429s
//! (`RESOURCE_EXHAUSTED`) and 5xx are retried with backoff, honouring `Retry-After`.
//!
//! - Error model: <https://cloud.google.com/apis/design/errors>
//! - Chat limits and 429s: <https://developers.google.com/workspace/chat/limits>
//! - Token endpoint errors: <https://developers.google.com/identity/protocols/oauth2/service-account#error-codes>

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use switchboard_platform::{PlatformError, RetryPolicy, http, with_retries};

use crate::settings::GoogleChatSettings;

/// A successful answer of a Google token endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenGrant {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// The token endpoint's error body (RFC 6749 §5.2).
#[derive(Debug, Default, Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Google's error body: `{"error":{"code","message","status"}}`.
#[derive(Debug, Default, Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    error: GoogleError,
}

#[derive(Debug, Default, Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

pub(crate) struct Client {
    http: reqwest::Client,
    retry: RetryPolicy,
    chat_base: String,
    directory_base: String,
    events_base: String,
    reports_base: String,
}

impl Client {
    pub fn new(settings: &GoogleChatSettings, retry: RetryPolicy) -> Result<Self, PlatformError> {
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
        let base = |url: &str| url.trim_end_matches('/').to_owned();
        Ok(Self {
            http,
            retry,
            chat_base: base(&settings.chat_base_url),
            directory_base: base(&settings.directory_base_url),
            events_base: base(&settings.events_base_url),
            reports_base: base(&settings.reports_base_url),
        })
    }

    pub fn chat_url(&self, path: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        url(&format!("{}/v1/{path}", self.chat_base), query)
    }

    pub fn directory_url(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<String, PlatformError> {
        url(&format!("{}/{path}", self.directory_base), query)
    }

    pub fn events_url(&self, path: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        url(&format!("{}/v1/{path}", self.events_base), query)
    }

    pub fn reports_url(&self, path: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        url(&format!("{}/{path}", self.reports_base), query)
    }

    /// One API call with a bearer token, its answer read as `T` (an empty answer as `null`).
    pub async fn call<T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, PlatformError> {
        let allowed = [
            &self.chat_base,
            &self.directory_base,
            &self.events_base,
            &self.reports_base,
        ];
        if !allowed.iter().any(|base| url.starts_with(base.as_str())) {
            // A token is never sent anywhere but the configured APIs.
            return Err(PlatformError::Rejected(format!(
                "refusing to call {url}: not under a configured Google API URL"
            )));
        }
        with_retries(self.retry, || async {
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token)
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            read_json(http::send(request, PLATFORM).await?)
        })
        .await
    }

    /// A call whose answer the hub does not need.
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(), PlatformError> {
        self.call::<IgnoredAny>(token, method, url, body)
            .await
            .map(drop)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
    ) -> Result<T, PlatformError> {
        self.call(token, Method::GET, url, None).await
    }

    /// Posts a form to a token endpoint.
    pub async fn token(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenGrant, PlatformError> {
        with_retries(self.retry, || async {
            let answer = http::send(self.http.post(url).form(form), PLATFORM).await?;
            if answer.status.is_success() {
                return answer.json(PLATFORM);
            }
            Err(classify_oauth(answer.status, &answer.headers, &answer.body))
        })
        .await
    }
}

impl Client {
    /// A GET that carries no bearer token (Google's token information).
    pub async fn public_get<T: DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<T, PlatformError> {
        let url = self::url(url, query)?;
        with_retries(self.retry, || async {
            let answer = http::send(self.http.get(&url), PLATFORM).await?;
            if answer.status.is_success() {
                return answer.json(PLATFORM);
            }
            Err(classify_oauth(answer.status, &answer.headers, &answer.body))
        })
        .await
    }
}

/// The platform as errors name it.
const PLATFORM: &str = "Google";

fn read_json<T: DeserializeOwned>(answer: http::Answer) -> Result<T, PlatformError> {
    if answer.status.is_success() {
        return answer.json(PLATFORM);
    }
    Err(classify_google(
        answer.status,
        &answer.headers,
        &answer.body,
    ))
}

fn url(base: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
    let mut url =
        Url::parse(base).map_err(|e| PlatformError::Rejected(format!("bad URL {base}: {e}")))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url.into())
}

/// A Google resource name (`spaces/AAA/messages/BBB.CCC`, `users/123`) checked for use in a URL
/// path: only the characters Google's names use, no empty or dot segments, so that a name read
/// from a delivery cannot point a call elsewhere.
pub(crate) fn resource_name(name: &str) -> Result<&str, PlatformError> {
    let safe = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~/@".contains(&b))
        && name
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if safe {
        Ok(name)
    } else {
        Err(PlatformError::Rejected(format!(
            "not a Google resource name: {name:?}"
        )))
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Throttling and server trouble, which every Google endpoint reports alike.
fn transient(status: StatusCode, headers: &HeaderMap, what: &str) -> Option<PlatformError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(PlatformError::RateLimited {
            retry_after: retry_after(headers),
        });
    }
    if status.is_server_error() {
        return Some(PlatformError::Unavailable(format!(
            "HTTP {}: {what}",
            status.as_u16()
        )));
    }
    None
}

pub(crate) fn classify_google(
    status: StatusCode,
    headers: &HeaderMap,
    text: &str,
) -> PlatformError {
    let body: GoogleErrorBody = serde_json::from_str(text).unwrap_or_default();
    let what = if body.error.status.is_empty() && body.error.message.is_empty() {
        format!(
            "HTTP {}: {}",
            status.as_u16(),
            text.chars().take(200).collect::<String>()
        )
    } else {
        format!("{}: {}", body.error.status, body.error.message)
    };
    if body.error.status == "RESOURCE_EXHAUSTED" {
        return PlatformError::RateLimited {
            retry_after: retry_after(headers),
        };
    }
    if let Some(error) = transient(status, headers, &what) {
        return error;
    }
    match status {
        StatusCode::UNAUTHORIZED => PlatformError::Unauthorized(what),
        StatusCode::FORBIDDEN => PlatformError::Unauthorized(format!(
            "missing permission ({what}); the domain-wide delegation or the user's grant does not cover this call"
        )),
        StatusCode::NOT_FOUND => PlatformError::NotFound(what),
        _ => PlatformError::Rejected(what),
    }
}

pub(crate) fn classify_oauth(status: StatusCode, headers: &HeaderMap, text: &str) -> PlatformError {
    let body: OAuthError = serde_json::from_str(text).unwrap_or_default();
    let what = if body.error.is_empty() {
        format!(
            "HTTP {}: {}",
            status.as_u16(),
            text.chars().take(200).collect::<String>()
        )
    } else {
        format!("{}: {}", body.error, body.error_description)
    };
    if let Some(error) = transient(status, headers, &what) {
        return error;
    }
    match body.error.as_str() {
        "invalid_grant" | "unauthorized_client" | "access_denied" | "invalid_client" => {
            PlatformError::Unauthorized(what)
        }
        _ => PlatformError::Rejected(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(retry) = retry {
            headers.insert(RETRY_AFTER, retry.parse().unwrap());
        }
        headers
    }

    fn body(code: u16, status: &str) -> String {
        format!(r#"{{"error":{{"code":{code},"message":"m","status":"{status}"}}}}"#)
    }

    #[test]
    fn google_errors_are_classified_by_what_to_do_next() {
        assert_eq!(
            classify_google(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(Some("7")),
                &body(429, "RESOURCE_EXHAUSTED")
            ),
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify_google(
                StatusCode::SERVICE_UNAVAILABLE,
                &headers(None),
                &body(503, "UNAVAILABLE")
            ),
            PlatformError::Unavailable(_)
        ));
        assert!(matches!(
            classify_google(StatusCode::FORBIDDEN, &headers(None), &body(403, "PERMISSION_DENIED")),
            PlatformError::Unauthorized(m) if m.contains("missing permission")
        ));
        assert!(matches!(
            classify_google(StatusCode::NOT_FOUND, &headers(None), &body(404, "NOT_FOUND")),
            PlatformError::NotFound(m) if m == "NOT_FOUND: m"
        ));
        assert!(matches!(
            classify_google(StatusCode::BAD_REQUEST, &headers(None), "not json"),
            PlatformError::Rejected(m) if m.contains("HTTP 400")
        ));
    }

    #[test]
    fn token_endpoint_errors_are_classified() {
        let refused =
            r#"{"error":"unauthorized_client","error_description":"Client is unauthorized"}"#;
        assert!(matches!(
            classify_oauth(StatusCode::UNAUTHORIZED, &headers(None), refused),
            PlatformError::Unauthorized(m) if m.starts_with("unauthorized_client")
        ));
        assert!(matches!(
            classify_oauth(
                StatusCode::BAD_REQUEST,
                &headers(None),
                r#"{"error":"invalid_scope"}"#
            ),
            PlatformError::Rejected(_)
        ));
    }

    #[test]
    fn resource_names_cannot_leave_their_path() {
        assert!(resource_name("spaces/AAA/messages/BBB.CCC").is_ok());
        assert!(resource_name("spaces/AAA/messages/client-x_1").is_ok());
        for bad in [
            "",
            "spaces/../x",
            "spaces//x",
            "spaces/a?b",
            "spaces/a#b",
            "a b",
        ] {
            assert!(resource_name(bad).is_err(), "{bad}");
        }
    }
}
