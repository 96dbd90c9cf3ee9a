//! What Zoom's REST API shares on the wire: its ids, its error body `{"code", "message"}`, the
//! rate-limit headers of a 429, timestamps, request bodies and paging by `next_page_token`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::{Value, json};

/// Zoom's code for a request it refuses as malformed ("Validation Failed.").
pub const CODE_INVALID: u32 = 300;
/// Zoom's code for an unknown, expired or revoked access token.
pub const CODE_INVALID_TOKEN: u32 = 124;
/// Zoom's code for a token without a scope the endpoint needs.
pub const CODE_MISSING_SCOPE: u32 = 4711;
/// The Users API's code for a user that does not exist.
pub const CODE_NO_USER: u32 = 1001;
/// The Team Chat API's code for a contact that does not exist.
pub const CODE_NO_CONTACT: u32 = 4130;

/// The rate-limit facts a throttled answer carries in its headers.
#[derive(Debug, Clone)]
pub struct Throttle {
    pub category: &'static str,
    pub limit: u32,
    pub retry_after: u64,
}

/// An error as Zoom answers it: the HTTP status and `{"code": N, "message": "..."}`.
#[derive(Debug, Clone)]
pub struct ZoomError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    pub throttle: Option<Throttle>,
}

impl ZoomError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            throttle: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, CODE_INVALID, message)
    }

    /// A missing thing without a code of its own in Zoom's docs: the code is the status.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, message)
    }

    pub fn no_user(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            CODE_NO_USER,
            format!("User does not exist: {key}."),
        )
    }

    pub fn no_contact() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            CODE_NO_CONTACT,
            "User does not exist",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, 403, message)
    }

    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            CODE_INVALID_TOKEN,
            "Invalid access token.",
        )
    }

    pub fn expired_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            CODE_INVALID_TOKEN,
            "Access token is expired.",
        )
    }

    pub fn missing_scopes(scopes: &[String]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_SCOPE,
            format!(
                "Invalid access token, does not contain scopes:[{}].",
                scopes.join(", ")
            ),
        )
    }

    pub fn throttled(category: &'static str, limit: u32, wait: Duration) -> Self {
        Self {
            throttle: Some(Throttle {
                category,
                limit,
                retry_after: switchboard_sim_kit::ratelimit::retry_after_seconds(wait).max(1),
            }),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "You have reached the maximum per-second rate limit for this API. Try again later.",
            )
        }
    }
}

impl IntoResponse for ZoomError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(throttle) = self.throttle {
            let headers = response.headers_mut();
            let mut set = |name: &'static str, value: String| {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(HeaderName::from_static(name), value);
                }
            };
            set("x-ratelimit-category", throttle.category.to_owned());
            set("x-ratelimit-type", "QPS".to_owned());
            set("x-ratelimit-limit", throttle.limit.to_string());
            set("x-ratelimit-remaining", "0".to_owned());
            set("retry-after", throttle.retry_after.to_string());
        }
        response
    }
}

pub type Answer = Result<Response, ZoomError>;

pub fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

/// What Zoom answers when it made something: 201 with the new thing's fields.
pub fn created(value: Value) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// Edits, deletions and reactions answer 204 with no body.
pub fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON request body, read by hand so that a missing or unusual content type is no error.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ZoomError> {
    serde_json::from_slice(body).map_err(|error| {
        ZoomError::invalid(format!("Validation Failed. The request body: {error}"))
    })
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A secret of `length` random letters and digits (tokens, codes, secrets).
pub fn random_text(length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A message id as Zoom writes them: an upper-case UUID.
pub fn message_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// Milliseconds since the epoch, from the simulator's clock.
pub fn now_millis() -> u64 {
    u64::try_from(switchboard_sim_kit::clock::since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// A time as Zoom writes `date_time`: `2024-01-01T00:00:00Z`, to the second.
pub fn iso(millis: u64) -> String {
    let seconds = millis / 1000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
    )
}

/// The UTC day of a time, as `date` is written: `2024-01-01`.
pub fn day(millis: u64) -> String {
    iso(millis)[..10].to_owned()
}

/// Reads `2024-01-01T00:00:00Z` (fractions allowed) or a bare day `2024-01-01` into
/// milliseconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00Z"));
    let time = time.strip_suffix('Z')?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let mut clock = time.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let seconds = clock.next().unwrap_or("0");
    let whole = seconds.split('.').next()?;
    let second: i64 = whole.parse().ok()?;
    let days = days_from_civil(year, month, day);
    u64::try_from((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000).ok()
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

/// The `page_size` a list asks for: 1 to `max`, `default` when absent.
pub fn page_size(
    params: &[(String, String)],
    default: usize,
    max: usize,
) -> Result<usize, ZoomError> {
    match param(params, "page_size") {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|size| (1..=max).contains(size))
            .ok_or_else(|| {
                ZoomError::invalid(format!("page_size must be an integer from 1 to {max}."))
            }),
    }
}

/// A `next_page_token`: where the next page starts (`position`), tied to the list it came
/// from (`scope`: the list and its filters as the request gave them) so that a token is refused
/// on another list. Opaque to clients, the same for the same page.
pub fn page_token(scope: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{scope}|{position}"))
}

/// The position a request's `next_page_token` names, if it has one.
pub fn page_position(
    params: &[(String, String)],
    scope: &str,
) -> Result<Option<String>, ZoomError> {
    let Some(token) = param(params, "next_page_token") else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (of, position) = text.rsplit_once('|')?;
            (of == scope).then(|| position.to_owned())
        })
        .map(Some)
        .ok_or_else(|| ZoomError::invalid("The next page token is invalid or expired."))
}

/// One page of `all` from the offset the request's token names: the page and the token of the
/// next, empty at the end (Zoom writes an empty string, not null). For lists that only grow at
/// their end (users, channels, members), so an offset stays put.
pub fn page<T>(
    all: Vec<T>,
    params: &[(String, String)],
    scope: &str,
    size: usize,
) -> Result<(Vec<T>, String), ZoomError> {
    let offset = match page_position(params, scope)? {
        None => 0,
        Some(position) => position
            .parse()
            .map_err(|_| ZoomError::invalid("The next page token is invalid or expired."))?,
    };
    let end = (offset + size).min(all.len());
    let next = if end < all.len() {
        page_token(scope, &end.to_string())
    } else {
        String::new()
    };
    Ok((all.into_iter().skip(offset).take(size).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_second() {
        let millis = 1_796_620_897_000;
        assert_eq!(iso(millis), "2026-12-07T05:21:37Z");
        assert_eq!(parse_time("2026-12-07T05:21:37Z"), Some(millis));
        assert_eq!(parse_time("2026-12-07T05:21:37.999Z"), Some(millis));
        assert_eq!(day(millis), "2026-12-07");
        assert_eq!(
            parse_time("2026-12-07"),
            Some(millis - 5 * 3_600_000 - 21 * 60_000 - 37_000)
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_page_token_is_refused_on_another_list() {
        let token = page_token("users:active", "30");
        let params = vec![("next_page_token".to_owned(), token)];
        assert_eq!(
            page_position(&params, "users:active").unwrap().as_deref(),
            Some("30")
        );
        assert!(page_position(&params, "users:inactive").is_err());
    }
}
