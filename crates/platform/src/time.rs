//! Times on the wire as platforms write them: RFC 3339 in UTC (`2024-05-01T12:34:56.789012Z`,
//! any number of fraction digits), read and written to the microsecond, for every module alike.

use switchboard_core::Timestamp;

/// Microseconds since the epoch of an RFC 3339 UTC time; `None` when it is not one.
pub fn parse_micros(text: &str) -> Option<i64> {
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
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").get(..6)?.parse().ok()?
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + micros)
}

pub fn parse(text: &str) -> Option<Timestamp> {
    parse_micros(text).map(|micros| Timestamp::from_unix_millis(micros.div_euclid(1000)))
}

/// `2024-05-01T12:00:00.000001Z`.
pub fn format_micros(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let in_day = micros.rem_euclid(86_400_000_000);
    let seconds = in_day / 1_000_000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        in_day % 1_000_000
    )
}

pub fn format(at: Timestamp) -> String {
    format_micros(at.unix_millis() * 1000)
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
    fn times_are_read_to_the_microsecond() {
        assert_eq!(
            parse_micros("1994-11-06T08:49:37.1234567Z"),
            Some(784_111_777_123_456)
        );
        assert_eq!(
            parse_micros("1994-11-06T08:49:37Z"),
            Some(784_111_777_000_000)
        );
        assert_eq!(
            parse_micros("2000-02-29T00:00:00.5Z"),
            Some(951_782_400_500_000)
        );
        assert_eq!(parse_micros("1994-13-06T08:49:37Z"), None);
        assert_eq!(parse_micros("1994-11-06T08:49:37.x1Z"), None);
        assert_eq!(parse_micros("1994-11-06 08:49:37"), None);
    }

    #[test]
    fn times_round_trip() {
        for micros in [0, 784_111_777_123_456, 951_782_400_000_001, -1] {
            assert_eq!(parse_micros(&format_micros(micros)), Some(micros));
        }
        assert_eq!(
            format_micros(784_111_777_000_000),
            "1994-11-06T08:49:37.000000Z"
        );
        assert_eq!(
            format(Timestamp::from_unix_millis(951_782_400_000)),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
