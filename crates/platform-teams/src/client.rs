//! The HTTP client: Entra ID's token endpoint (form-encoded) and Microsoft Graph (JSON), with
//! time-outs, `@odata.nextLink` paging and every failure classified as a [`PlatformError`].
//! Every call goes through [`with_retries`]. Answers are read into the caller's typed struct.
//!
//! - Token endpoint: <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>
//! - Paging: <https://learn.microsoft.com/en-us/graph/paging>
//! - Errors and throttling: <https://learn.microsoft.com/en-us/graph/errors>,
//!   <https://learn.microsoft.com/en-us/graph/throttling>

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use switchboard_core::Timestamp;
use switchboard_platform::{PlatformError, RetryPolicy, http, with_retries};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::time;
use switchboard_platform::wire;

/// The platform as errors name it.
const PLATFORM: &str = "Microsoft";

/// A successful answer of Entra's token endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenGrant {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The delegated scopes granted (absent for client-credentials tokens).
    #[serde(default)]
    pub scope: Option<String>,
    /// When the token expires, from the response's `Date` plus `expires_in` (not on the wire).
    #[serde(skip)]
    pub expires_at: Option<Timestamp>,
}

/// Entra's error body.
#[derive(Debug, Default, Deserialize)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Graph's error body: `{"error":{"code","message"}}`.
#[derive(Debug, Default, Deserialize)]
struct GraphErrorBody {
    #[serde(default)]
    error: GraphError,
}

#[derive(Debug, Default, Deserialize)]
struct GraphError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

pub(crate) struct Client {
    http: reqwest::Client,
    login_base: String,
    graph_base: String,
    client_id: String,
    client_secret: SecretString,
    retry: RetryPolicy,
}

impl Client {
    pub fn new(
        login_base: &str,
        graph_base: &str,
        client_id: String,
        client_secret: SecretString,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, PlatformError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Closed before servers commonly close idle connections (30 s or more), so a post
            // never starts on a connection being closed, where its fate would be unclear.
            .pool_idle_timeout(Duration::from_secs(20))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlatformError::Rejected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            login_base: login_base.trim_end_matches('/').to_owned(),
            graph_base: graph_base.trim_end_matches('/').to_owned(),
            client_id,
            client_secret,
            retry,
        })
    }

    pub fn login_base(&self) -> &str {
        &self.login_base
    }

    pub fn graph_base(&self) -> &str {
        &self.graph_base
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A Graph URL from a path (`/users`) and query pairs, percent-encoded.
    pub fn graph_url(&self, path: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        let mut url = Url::parse(&format!("{}{path}", self.graph_base))
            .map_err(|e| PlatformError::Rejected(format!("bad Graph URL {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.into())
    }

    /// An Entra URL under `{login}/{tenant}/…`.
    pub fn login_url(
        &self,
        tenant: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<String, PlatformError> {
        let mut url = Url::parse(&format!(
            "{}/{}/{path}",
            self.login_base,
            encode_segment(tenant)
        ))
        .map_err(|e| PlatformError::Rejected(format!("bad sign-in URL: {e}")))?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url.into())
    }

    /// Posts a grant to `{login}/{tenant}/oauth2/v2.0/token` with the hub app's credentials.
    pub async fn token(
        &self,
        tenant: &str,
        grant: &[(&str, &str)],
    ) -> Result<TokenGrant, PlatformError> {
        let url = self.login_url(tenant, "oauth2/v2.0/token", &[])?;
        let secret = self.client_secret.expose_secret();
        let mut form: Vec<(&str, &str)> = vec![("client_id", &self.client_id)];
        form.push(("client_secret", secret));
        form.extend_from_slice(grant);
        with_retries(self.retry, || async {
            let answer = http::send(self.http.post(&url).form(&form), PLATFORM).await?;
            let issued = time::date_header(&answer.headers);
            if answer.status.is_success() {
                let mut grant: TokenGrant = answer.json(PLATFORM)?;
                grant.expires_at = match (issued, grant.expires_in) {
                    (Some(issued), Some(seconds)) => Some(Timestamp::from_unix_millis(
                        issued.unix_millis() + (seconds as i64) * 1000,
                    )),
                    _ => None,
                };
                return Ok(grant);
            }
            Err(classify_entra(answer.status, &answer.headers, &answer.body))
        })
        .await
    }

    /// One Graph call, its answer read as `T` (an empty answer, 204, as JSON `null`).
    pub async fn graph<T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<T, PlatformError> {
        if !url.starts_with(&self.graph_base) {
            // Never send a token anywhere but the configured Graph (a nextLink or a cursor
            // could otherwise point a bearer token at another host).
            return Err(PlatformError::Rejected(format!(
                "refusing to call {url}: not under the configured Graph URL"
            )));
        }
        with_retries(self.retry, || async {
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token)
                .header("Accept", "application/json");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = http::send(request, PLATFORM).await?;
            if answer.status.is_success() {
                return answer.json(PLATFORM);
            }
            Err(classify_graph(answer.status, &answer.headers, &answer.body))
        })
        .await
    }

    /// A Graph call whose answer the hub does not need.
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(), PlatformError> {
        self.graph::<IgnoredAny>(token, method, url, body, &[])
            .await
            .map(drop)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
    ) -> Result<T, PlatformError> {
        self.graph(token, Method::GET, url, None, &[]).await
    }

    /// Every readable item of a collection, following `@odata.nextLink` up to `max_pages`
    /// pages.
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
        max_pages: usize,
    ) -> Result<Vec<T>, PlatformError> {
        let mut items = Vec::new();
        let mut next = Some(url.to_owned());
        let mut pages = 0;
        while let Some(url) = next.take() {
            let page: Page<T> = self.get(token, &url).await?;
            next = page.next_link;
            items.extend(page.value.unwrap_or_default());
            pages += 1;
            if pages >= max_pages {
                break;
            }
        }
        Ok(items)
    }
}

/// A page of a Graph collection: its readable items (`None` when it has no `value` list) and
/// the link to the next page.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub(crate) struct Page<T> {
    #[serde(default, deserialize_with = "wire::listed")]
    pub value: Option<Vec<T>>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

impl<T> Page<T> {
    pub fn items(self) -> Vec<T> {
        self.value.unwrap_or_default()
    }
}

/// What Graph answers a create with, as far as the hub reads it.
#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    pub id: Option<String>,
}

/// A path segment, percent-encoded (chat ids hold `:` and `@`, which are fine in a path, but
/// never `/`, `?` or `#`).
pub(crate) fn path(segment: &str) -> String {
    segment
        .chars()
        .map(|c| match c {
            '/' => "%2F".to_owned(),
            '?' => "%3F".to_owned(),
            '#' => "%23".to_owned(),
            '%' => "%25".to_owned(),
            ' ' => "%20".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
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

/// Failures every Microsoft endpoint shares: throttling and server trouble.
fn transient(status: StatusCode, headers: &HeaderMap, what: &str) -> Option<PlatformError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(PlatformError::RateLimited {
            retry_after: retry_after(headers),
        });
    }
    if status.is_server_error() {
        let wait = retry_after(headers)
            .map(|d| format!(" (Retry-After {} s)", d.as_secs()))
            .unwrap_or_default();
        return Some(PlatformError::Unavailable(format!(
            "HTTP {}{wait}: {what}",
            status.as_u16()
        )));
    }
    None
}

pub(crate) fn classify_entra(status: StatusCode, headers: &HeaderMap, text: &str) -> PlatformError {
    let body: EntraError = serde_json::from_str(text).unwrap_or_default();
    let what = if body.error.is_empty() {
        text.chars().take(200).collect::<String>()
    } else {
        format!("{}: {}", body.error, first_line(&body.error_description))
    };
    if let Some(error) = transient(status, headers, &what) {
        return error;
    }
    match body.error.as_str() {
        "invalid_grant" | "interaction_required" | "consent_required" => {
            PlatformError::Unauthorized(what)
        }
        "invalid_client" => PlatformError::Unauthorized(format!(
            "Entra ID refused the hub app's client id or secret ({what})"
        )),
        "unauthorized_client" => PlatformError::Unauthorized(format!(
            "the hub app is not consented in this tenant; an administrator must grant admin consent ({what})"
        )),
        _ => PlatformError::Rejected(what),
    }
}

pub(crate) fn classify_graph(status: StatusCode, headers: &HeaderMap, text: &str) -> PlatformError {
    let body: GraphErrorBody = serde_json::from_str(text).unwrap_or_default();
    let what = if body.error.code.is_empty() {
        format!(
            "HTTP {}: {}",
            status.as_u16(),
            text.chars().take(200).collect::<String>()
        )
    } else {
        format!("{}: {}", body.error.code, body.error.message)
    };
    if let Some(error) = transient(status, headers, &what) {
        return error;
    }
    match status {
        StatusCode::UNAUTHORIZED => PlatformError::Unauthorized(what),
        StatusCode::FORBIDDEN => PlatformError::Unauthorized(format!(
            "missing permission ({what}); the hub app's consent or the user's scopes do not cover this call"
        )),
        StatusCode::NOT_FOUND => PlatformError::NotFound(what),
        _ => PlatformError::Rejected(what),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
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

    #[test]
    fn graph_errors_are_classified_by_what_to_do_next() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert_eq!(
            classify_graph(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(Some("7")),
                &body("TooManyRequests")
            ),
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify_graph(
                StatusCode::SERVICE_UNAVAILABLE,
                &headers(Some("3")),
                &body("serviceNotAvailable")
            ),
            PlatformError::Unavailable(m) if m.contains("Retry-After 3")
        ));
        assert!(matches!(
            classify_graph(StatusCode::UNAUTHORIZED, &headers(None), &body("InvalidAuthenticationToken")),
            PlatformError::Unauthorized(m) if m.starts_with("InvalidAuthenticationToken")
        ));
        assert!(matches!(
            classify_graph(StatusCode::FORBIDDEN, &headers(None), &body("Forbidden")),
            PlatformError::Unauthorized(m) if m.contains("missing permission")
        ));
        assert!(matches!(
            classify_graph(StatusCode::NOT_FOUND, &headers(None), &body("NotFound")),
            PlatformError::NotFound(_)
        ));
        assert!(matches!(
            classify_graph(StatusCode::BAD_REQUEST, &headers(None), "not json"),
            PlatformError::Rejected(m) if m.contains("HTTP 400")
        ));
    }

    #[test]
    fn entra_errors_are_classified() {
        let body = |error: &str| {
            format!(
                r#"{{"error":"{error}","error_description":"AADSTS70000: bad.\r\nTrace ID: x"}}"#
            )
        };
        assert!(matches!(
            classify_entra(StatusCode::BAD_REQUEST, &headers(None), &body("invalid_grant")),
            PlatformError::Unauthorized(m) if m == "invalid_grant: AADSTS70000: bad."
        ));
        assert!(matches!(
            classify_entra(
                StatusCode::UNAUTHORIZED,
                &headers(None),
                &body("invalid_client")
            ),
            PlatformError::Unauthorized(_)
        ));
        assert!(matches!(
            classify_entra(
                StatusCode::BAD_REQUEST,
                &headers(None),
                &body("invalid_scope")
            ),
            PlatformError::Rejected(_)
        ));
        assert!(matches!(
            classify_entra(
                StatusCode::BAD_GATEWAY,
                &headers(None),
                &body("temporarily_unavailable")
            ),
            PlatformError::Unavailable(_)
        ));
    }

    #[test]
    fn tenant_segments_are_encoded() {
        assert_eq!(encode_segment("acme.example"), "acme.example");
        assert_eq!(encode_segment("a/b?c"), "a%2Fb%3Fc");
    }
}
