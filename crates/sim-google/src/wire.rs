//! What Google's APIs share on the wire: the error model, timestamps, durations and enums that
//! come as names or integers.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error in Google's API error model: `{"error":{"code","message","status"}}`, with the
/// Admin SDK's `errors[]` where it adds them, and `Retry-After` on quota errors.
#[derive(Debug, Clone)]
pub struct GoogleError {
    pub status: StatusCode,
    pub message: String,
    /// The Admin SDK's `errors[].reason` (`notFound`, `forbidden`, …).
    pub reason: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl GoogleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
    }

    pub fn insufficient_scopes() -> Self {
        Self::denied("Request had insufficient authentication scopes.")
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn throttled(wait: Duration) -> Self {
        Self {
            retry_after: Some(switchboard_sim_kit::ratelimit::retry_after_seconds(wait).max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute'.",
            )
        }
    }

    /// Adds the Admin SDK's `errors[].reason`.
    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    fn status_name(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            412 => "FAILED_PRECONDITION",
            429 => "RESOURCE_EXHAUSTED",
            501 => "UNIMPLEMENTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        }
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "status": self.status_name(),
        });
        if let Some(reason) = self.reason {
            error["errors"] =
                json!([{"domain": "global", "reason": reason, "message": self.message}]);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

pub type Answer = Result<Response, GoogleError>;

pub fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Seconds and nanoseconds since the epoch as RFC 3339 in UTC with microseconds, as Google
/// writes its timestamps.
pub fn rfc3339(micros: u64) -> String {
    let seconds = micros / 1_000_000;
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        micros % 1_000_000
    )
}

/// An HTTP date (RFC 7231's IMF-fixdate), as push headers such as
/// `X-Goog-Channel-Expiration` carry it.
pub fn http_date(micros: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = micros / 1_000_000;
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Reads an RFC 3339 timestamp into microseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.trim().split_once(['T', 't'])?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, offset_seconds) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0_i64)
    } else {
        let position = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(position);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        let offset = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
        (clock, sign * offset)
    };
    let mut clock_parts = clock.split(':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let seconds_text = clock_parts.next().unwrap_or("0");
    let (whole, fraction) = seconds_text.split_once('.').unwrap_or((seconds_text, ""));
    let second: i64 = whole.parse().ok()?;
    let micros: i64 = format!("{fraction:0<6}")[..6].parse().ok()?;
    let days = days_from_civil(year, month, day);
    let total = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    u64::try_from(total * 1_000_000 + micros).ok()
}

/// A protobuf `Duration` in JSON: `"3600s"`, `"1.5s"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An enum field as Google's clients send it: its name, or (with `enum-encoding=int`, as the
/// official Python clients do) its number, the index into `names`.
pub fn enum_name(value: &Value, names: &[&'static str]) -> Option<&'static str> {
    match value {
        Value::String(text) => names
            .iter()
            .find(|name| **name == text.as_str())
            .copied()
            .or_else(|| enum_name(&Value::from(text.parse::<u64>().ok()?), names)),
        Value::Number(number) => names.get(usize::try_from(number.as_u64()?).ok()?).copied(),
        _ => None,
    }
}

/// The current time in microseconds since the epoch, from the simulator's clock.
pub fn now_micros() -> u64 {
    u64::try_from(switchboard_sim_kit::clock::since_epoch().as_micros()).unwrap_or(u64::MAX)
}

pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub fn form_value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_name_the_weekday_and_month() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_384_823_632_000_000),
            "Tue, 19 Nov 2013 01:13:52 GMT"
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let micros = 1_796_620_897_123_456;
        let text = rfc3339(micros);
        assert_eq!(text, "2026-12-07T05:21:37.123456Z");
        assert_eq!(parse_rfc3339(&text), Some(micros));
        assert_eq!(
            parse_rfc3339("2026-12-07T06:21:37+01:00"),
            Some(1_796_620_897_000_000)
        );
    }

    #[test]
    fn enums_come_as_names_or_numbers() {
        let names = ["UNSPECIFIED", "SPACE", "GROUP_CHAT", "DIRECT_MESSAGE"];
        assert_eq!(enum_name(&json!(3), &names), Some("DIRECT_MESSAGE"));
        assert_eq!(enum_name(&json!("GROUP_CHAT"), &names), Some("GROUP_CHAT"));
        assert_eq!(enum_name(&json!("1"), &names), Some("SPACE"));
        assert_eq!(enum_name(&json!(9), &names), None);
    }
}
