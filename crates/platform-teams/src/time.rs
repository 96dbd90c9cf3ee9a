//! Dates on the wire. The module reads no clock of its own (the house rule keeps the time in
//! the hub's `Clock`): a token's expiry is computed from the `Date` header of the answer that
//! issued it — the issuer's own clock — plus `expires_in`; Graph's ISO 8601 times are converted
//! both ways here.

use reqwest::header::{DATE, HeaderMap};
use switchboard_core::Timestamp;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The `Date` header of a response (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn date_header(headers: &HeaderMap) -> Option<Timestamp> {
    parse_http_date(headers.get(DATE)?.to_str().ok()?)
}

pub(crate) fn parse_http_date(text: &str) -> Option<Timestamp> {
    let (_, rest) = text.trim().split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next()?.parse().ok()?;
    if parts.next()? != "GMT" {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Timestamp::from_unix_millis(
        ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000,
    ))
}

/// Graph's times, `2024-05-01T12:34:56.789Z` (any number of fraction digits, or none).
pub(crate) fn parse_iso8601(text: &str) -> Option<Timestamp> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let mut date = date.split('-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: i64 = date.next()?.parse().ok()?;
    let day: i64 = date.next()?.parse().ok()?;
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock = clock.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next()?.parse().ok()?;
    let millis: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<3}").get(..3)?.parse().ok()?
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Timestamp::from_unix_millis(
        ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis,
    ))
}

/// `2024-05-01T12:00:00Z`, as Graph takes `expirationDateTime`.
pub(crate) fn iso8601(at: Timestamp) -> String {
    let millis = at.unix_millis();
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000) / 1000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_read() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Timestamp::from_unix_millis(784_111_777_000))
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Timestamp::from_unix_millis(0))
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn graph_times_are_read_to_the_millisecond() {
        assert_eq!(
            parse_iso8601("1994-11-06T08:49:37.1234567Z"),
            Some(Timestamp::from_unix_millis(784_111_777_123))
        );
        assert_eq!(
            parse_iso8601("1994-11-06T08:49:37Z"),
            Some(Timestamp::from_unix_millis(784_111_777_000))
        );
        assert_eq!(
            parse_iso8601("2000-02-29T00:00:00.5Z"),
            Some(Timestamp::from_unix_millis(951_782_400_500))
        );
        assert_eq!(parse_iso8601("1994-13-06T08:49:37Z"), None);
        assert_eq!(parse_iso8601("1994-11-06 08:49:37"), None);
    }

    #[test]
    fn iso_dates_round_trip_through_days() {
        assert_eq!(
            iso8601(Timestamp::from_unix_millis(784_111_777_000)),
            "1994-11-06T08:49:37Z"
        );
        assert_eq!(
            iso8601(Timestamp::from_unix_millis(951_782_400_000)),
            "2000-02-29T00:00:00Z"
        );
        for days in [-1000, 0, 59, 60, 11_016, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
