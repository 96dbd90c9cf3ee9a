//! The HTTP client for Webex's REST API and its OAuth token endpoint, with time-outs and every
//! failure classified as a [`PlatformError`]. Every call goes through [`with_retries`], so a
//! 429 (or a 423 with `Retry-After`) and 5xx are retried with backoff, honouring `Retry-After`.
//! Lists are `{"items": […]}` and page through the absolute URL of the `Link: <…>; rel="next"`
//! header (RFC 8288).
//!
//! - REST basics, errors and `trackingId`: <https://developer.webex.com/docs/basics>
//! - Pagination: <https://developer.webex.com/docs/basics#pagination>
//! - Rate limits: <https://developer.webex.com/docs/basics#rate-limiting>

use std::time::Duration;

use reqwest::header::{HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_platform::wire::items;
use switchboard_platform::{PlatformError, RetryPolicy, http, with_retries};

use crate::settings::WebexSettings;
use crate::wire::TokenGrant;

/// The platform's name in errors.
const PLATFORM: &str = "Webex";

/// Webex's error body: `{"message", "errors": [{"description"}], "trackingId"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default, deserialize_with = "switchboard_platform::wire::lenient")]
    message: Option<String>,
    #[serde(default, deserialize_with = "items")]
    errors: Vec<ErrorItem>,
    #[serde(default, deserialize_with = "switchboard_platform::wire::lenient")]
    tracking_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default, deserialize_with = "switchboard_platform::wire::lenient")]
    description: Option<String>,
}

/// A list answer: its readable items.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Items<T> {
    #[serde(default, deserialize_with = "items")]
    items: Vec<T>,
}

/// One page of a list, and the URL of the next one.
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub(crate) struct Client {
    http: reqwest::Client,
    retry: RetryPolicy,
    base: String,
}

impl Client {
    pub fn new(settings: &WebexSettings, retry: RetryPolicy) -> Result<Self, PlatformError> {
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
        let mut base = settings.base_url.trim().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        Url::parse(&base)
            .map_err(|e| PlatformError::Rejected(format!("bad Webex base_url {base}: {e}")))?;
        Ok(Self { http, retry, base })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}{path}?{query}`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<String, PlatformError> {
        let mut url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| PlatformError::Rejected(format!("bad URL for {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.into())
    }

    /// One call with a bearer token, its answer read as `T` (an empty answer, such as a
    /// DELETE's 204, as `null`), with the `Link` header's next page.
    async fn exchange<T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(T, Option<String>), PlatformError> {
        if !url.starts_with(&self.base) {
            // A token is never sent anywhere but the configured API, whatever a `Link` says.
            return Err(PlatformError::Rejected(format!(
                "refusing to call {url}: not under the configured Webex base_url"
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
            let answer = http::send(request, PLATFORM).await?;
            if !answer.status.is_success() {
                return Err(classify(answer.status, &answer.headers, &answer.body));
            }
            Ok((answer.json(PLATFORM)?, next_link(&answer.headers)))
        })
        .await
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, PlatformError> {
        self.exchange(token, method, url, body)
            .await
            .map(|(value, _)| value)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
    ) -> Result<T, PlatformError> {
        self.call(token, Method::GET, url, None).await
    }

    /// A call whose answer the hub does not need (a DELETE answers 204 with no body).
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

    /// One page of a list.
    pub async fn page<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
    ) -> Result<Page<T>, PlatformError> {
        let (list, next): (Items<T>, _) = self.exchange(token, Method::GET, url, None).await?;
        Ok(Page {
            items: list.items,
            next,
        })
    }

    /// Every item of a list, following `Link` for at most `max_pages` pages.
    pub async fn all<T: DeserializeOwned>(
        &self,
        token: &str,
        url: &str,
        max_pages: usize,
    ) -> Result<Vec<T>, PlatformError> {
        let mut found = Vec::new();
        let mut next = Some(url.to_owned());
        for _ in 0..max_pages {
            let Some(url) = next.take() else { break };
            let page = self.page(token, &url).await?;
            found.extend(page.items);
            next = page.next;
        }
        Ok(found)
    }

    /// Posts a form to `{base}access_token` (authorization code or refresh token).
    pub async fn token(&self, form: &[(&str, &str)]) -> Result<TokenGrant, PlatformError> {
        let url = self.url("access_token", &[])?;
        with_retries(self.retry, || async {
            let answer = http::send(self.http.post(&url).form(form), PLATFORM).await?;
            if answer.status.is_success() {
                return answer.json(PLATFORM);
            }
            Err(
                match classify(answer.status, &answer.headers, &answer.body) {
                    // The token endpoint answers 400 for an expired, revoked or foreign code or
                    // refresh token: someone must authorise again.
                    PlatformError::Rejected(why) => PlatformError::Unauthorized(why),
                    other => other,
                },
            )
        })
        .await
    }
}

/// The `rel="next"` target of a response's `Link` headers (RFC 8288), which Webex gives as an
/// absolute URL. A link's URL may hold commas (`id=a,b`), so links are read between their
/// angle brackets, not split at commas.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(next_in)
}

fn next_in(value: &str) -> Option<String> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let params_end = after[close..].find('<').map_or(after.len(), |i| close + i);
        let params = &after[close + 1..params_end];
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next && !target.trim().is_empty() {
            return Some(target.trim().to_owned());
        }
        rest = &after[params_end..];
    }
    None
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

/// A failed answer, by what to do next.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, text: &str) -> PlatformError {
    let body: ErrorBody = serde_json::from_str(text).unwrap_or_default();
    let said = body
        .message
        .filter(|message| !message.is_empty())
        .or_else(|| body.errors.into_iter().find_map(|error| error.description))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let mut what = format!("HTTP {}: {said}", status.as_u16());
    if let Some(tracking) = body.tracking_id {
        what.push_str(&format!(" (trackingId {tracking})"));
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
            retry_after: retry_after(headers),
        },
        // Webex answers 423 Locked with a `Retry-After` while a resource is busy.
        StatusCode::LOCKED if retry_after(headers).is_some() => PlatformError::RateLimited {
            retry_after: retry_after(headers),
        },
        status if status.is_server_error() => PlatformError::Unavailable(what),
        StatusCode::UNAUTHORIZED => PlatformError::Unauthorized(what),
        StatusCode::FORBIDDEN => PlatformError::Unauthorized(format!(
            "missing permission ({what}); the token's scopes or the person's role do not allow this call"
        )),
        StatusCode::NOT_FOUND | StatusCode::GONE => PlatformError::NotFound(what),
        _ => PlatformError::Rejected(what),
    }
}

/// An id read from a delivery or an answer, checked for use in a URL path: Webex's ids are
/// base64url text, so anything else could point a call elsewhere.
pub(crate) fn id(value: &str) -> Result<&str, PlatformError> {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b));
    if safe {
        Ok(value)
    } else {
        Err(PlatformError::Rejected(format!(
            "not a Webex id: {value:?}"
        )))
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
    fn the_next_page_is_the_absolute_url_of_rel_next() {
        let link = "<https://webexapis.com/v1/people?id=a,b&max=2&cursor=Y3Vyc29y>; rel=\"next\"";
        assert_eq!(
            next_link(&headers(&[("link", link)])).as_deref(),
            Some("https://webexapis.com/v1/people?id=a,b&max=2&cursor=Y3Vyc29y")
        );
        let several = "<https://x/v1/a?p=1>; rel=\"prev\", <https://x/v1/a?p=3>; rel=\"next\"";
        assert_eq!(
            next_link(&headers(&[("link", several)])).as_deref(),
            Some("https://x/v1/a?p=3")
        );
        let unquoted = "<https://x/v1/a?p=3>;rel=next";
        assert_eq!(
            next_link(&headers(&[("link", unquoted)])).as_deref(),
            Some("https://x/v1/a?p=3")
        );
        let split = [
            ("link", "<https://x/v1/a?p=1>; rel=\"first\""),
            ("link", "<https://x/v1/a?p=2>; rel=\"next\""),
        ];
        assert_eq!(
            next_link(&headers(&split)).as_deref(),
            Some("https://x/v1/a?p=2")
        );
        assert_eq!(
            next_link(&headers(&[("link", "<https://x/v1/a>; rel=\"prev\"")])),
            None
        );
        assert_eq!(next_link(&headers(&[("link", "garbage; rel=next")])), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn failures_are_classified_by_what_to_do_next() {
        let body =
            r#"{"message":"Too many","errors":[{"description":"slow down"}],"trackingId":"T1"}"#;
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[("retry-after", "7")]),
                body
            ),
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            classify(StatusCode::LOCKED, &headers(&[("retry-after", "2")]), body),
            PlatformError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(
            classify(StatusCode::LOCKED, &headers(&[]), body),
            PlatformError::Rejected(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &headers(&[]), "oops"),
            PlatformError::Unavailable(m) if m == "HTTP 502: oops"
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &headers(&[]), body),
            PlatformError::Unauthorized(m) if m == "HTTP 401: Too many (trackingId T1)"
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &headers(&[]), r#"{"errors":[{"description":"gone"}]}"#),
            PlatformError::NotFound(m) if m == "HTTP 404: gone"
        ));
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, &headers(&[]), "{}"),
            PlatformError::Unauthorized(m) if m.contains("missing permission")
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &headers(&[]), "not json"),
            PlatformError::Rejected(m) if m == "HTTP 400: not json"
        ));
    }

    #[test]
    fn ids_cannot_leave_their_path() {
        assert!(id("Y2lzY29zcGFyazovL3VzL1JPT00vdGVzdA").is_ok());
        assert!(id("Y2lz-_=").is_ok());
        for bad in ["", "a/b", "..", "a?b", "a#b", "a b", "a%2F"] {
            assert!(id(bad).is_err(), "{bad}");
        }
    }
}
