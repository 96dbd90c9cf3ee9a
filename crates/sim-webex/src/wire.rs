//! What Webex's REST API shares on the wire: its ids, its error body with a tracking id,
//! timestamps, request bodies and paging by `max` with an RFC 5988 `Link` header.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::{Value, json};

/// Webex's ids: the URL-safe base64 of `ciscospark://us/{KIND}/{uuid}`.
pub fn webex_id(kind: &str, uuid: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("ciscospark://us/{kind}/{uuid}"))
}

/// A new random id of this kind.
pub fn new_id(kind: &str) -> String {
    webex_id(kind, &uuid::Uuid::new_v4().to_string())
}

/// The UUID inside a Webex id, if it is one.
pub fn id_uuid(id: &str) -> Option<String> {
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    Some(decoded.rsplit('/').next()?.to_owned())
}

/// A secret of `length` random letters and digits (tokens, codes).
pub fn random_text(length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// An error as Webex answers it: `{"message", "errors": [{"description"}], "trackingId"}`, the
/// tracking id also in the `trackingId` header, and `Retry-After` when throttled.
#[derive(Debug, Clone)]
pub struct WebexError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl WebexError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request requires a valid access token set in the Authorization request header.",
        )
    }

    pub fn missing_scope() -> Self {
        Self::forbidden("Invalid scope")
    }

    pub fn throttled(wait: Duration) -> Self {
        Self {
            retry_after: Some(switchboard_sim_kit::ratelimit::retry_after_seconds(wait).max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests: this token sent more requests than Webex allows; retry after the time in Retry-After.",
            )
        }
    }
}

impl IntoResponse for WebexError {
    fn into_response(self) -> Response {
        let tracking_id = format!("ROUTER_{}", uuid::Uuid::new_v4().simple());
        let body = json!({
            "message": self.message,
            "errors": [{"description": self.message}],
            "trackingId": tracking_id,
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&tracking_id) {
            response.headers_mut().insert("trackingid", value);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

pub type Answer = Result<Response, WebexError>;

pub fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

/// Deletions answer 204 with no body, as the SDK expects.
pub fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON request body. Read by hand, not by axum's extractor, because clients send
/// `application/json;charset=utf-8` and some send no content type at all.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WebexError> {
    serde_json::from_slice(body)
        .map_err(|error| WebexError::invalid(format!("Unable to parse the request body: {error}")))
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Milliseconds since the epoch, from the simulator's clock.
pub fn now_millis() -> u64 {
    u64::try_from(switchboard_sim_kit::clock::since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// A timestamp as Webex writes them: `2024-01-01T00:00:00.000Z`.
pub fn iso(millis: u64) -> String {
    let seconds = millis / 1000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis % 1000
    )
}

/// Reads a UTC timestamp (`2024-01-01T00:00:00Z`, fractions allowed) into milliseconds.
pub fn parse_iso(text: &str) -> Option<u64> {
    let (date, time) = text.trim().split_once('T')?;
    let time = time.strip_suffix('Z')?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let mut clock = time.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let seconds = clock.next().unwrap_or("0");
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let second: i64 = whole.parse().ok()?;
    let millis: i64 = format!("{fraction:0<3}")
        .chars()
        .take(3)
        .collect::<String>()
        .parse()
        .ok()?;
    let days = days_from_civil(year, month, day);
    u64::try_from((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis).ok()
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A query or form parameter, when present and not empty.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// The page size a list asks for with `max`: 1 to 1,000, `default` when absent.
pub fn max_param(params: &[(String, String)], default: usize) -> Result<usize, WebexError> {
    match param(params, "max") {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|max| (1..=1000).contains(max))
            .ok_or_else(|| WebexError::invalid("max must be an integer from 1 to 1000")),
    }
}

/// The absolute URL of the same list with `replace` set in place of the parameters it names.
pub fn next_url(
    base: &str,
    path: &str,
    params: &[(String, String)],
    replace: &[(&str, String)],
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        if !replace.iter().any(|(name, _)| name == key) {
            query.append_pair(key, value);
        }
    }
    for (key, value) in replace {
        query.append_pair(key, value);
    }
    format!("{base}{path}?{}", query.finish())
}

/// `{"items": [...]}` with a `Link: <url>; rel="next"` header when there is more.
pub fn items(items: Vec<Value>, next: Option<String>) -> Answer {
    let mut response = Json(json!({ "items": items })).into_response();
    if let Some(url) = next
        && let Ok(value) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\""))
    {
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

/// The opaque `cursor` of a next-page link, carrying where the next page starts.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// What a list's `cursor` says, if the request has one.
pub fn cursor(params: &[(String, String)]) -> Result<Option<String>, WebexError> {
    param(params, "cursor")
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| WebexError::invalid("The cursor is not one this list gave."))
        })
        .transpose()
}

/// One page of a list paged by an opaque `cursor` (an offset), with the link to the next.
pub fn paged(
    base: &str,
    path: &str,
    params: &[(String, String)],
    all: Vec<Value>,
    default_max: usize,
) -> Answer {
    let max = max_param(params, default_max)?;
    let offset = match cursor(params)? {
        None => 0,
        Some(position) => position
            .strip_prefix("offset:")
            .and_then(|offset| offset.parse::<usize>().ok())
            .ok_or_else(|| WebexError::invalid("The cursor is not one this list gave."))?,
    };
    let end = (offset + max).min(all.len());
    let next = (end < all.len()).then(|| {
        let cursor = encode_cursor(&format!("offset:{end}"));
        next_url(base, path, params, &[("cursor", cursor)])
    });
    let page = all.into_iter().skip(offset).take(max).collect();
    items(page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let millis = 1_796_620_897_123;
        assert_eq!(iso(millis), "2026-12-07T05:21:37.123Z");
        assert_eq!(parse_iso("2026-12-07T05:21:37.123Z"), Some(millis));
        assert_eq!(parse_iso("2026-12-07T05:21:37Z"), Some(millis - 123));
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn ids_carry_their_kind_and_uuid() {
        let id = webex_id("PEOPLE", "0f2b6a1e-0000-4000-8000-000000000001");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&id).unwrap(),
            b"ciscospark://us/PEOPLE/0f2b6a1e-0000-4000-8000-000000000001"
        );
        assert_eq!(
            id_uuid(&id).as_deref(),
            Some("0f2b6a1e-0000-4000-8000-000000000001")
        );
    }
}
