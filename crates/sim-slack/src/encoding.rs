//! Small wire encodings: URL-encoded forms, HTML escaping, Slack-looking ids and timestamps.

/// Decodes one `application/x-www-form-urlencoded` component; `None` when it is not valid
/// percent-encoding of UTF-8, so callers can answer Slack's `invalid_form_data`. Written here
/// because the `form_urlencoded` crate decodes leniently (bad escapes kept, bad UTF-8 replaced)
/// and so cannot tell a malformed form from a valid one.
pub fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = hex_value(*bytes.get(i + 1)?)?;
                let low = hex_value(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Parses a query string or form body into its pairs, in order.
pub fn parse_urlencoded(input: &str) -> Option<Vec<(String, String)>> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Reads the text fields of a `multipart/form-data` body (file parts are skipped); `None` when
/// the body is not well-formed multipart with this boundary.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let body = std::str::from_utf8(body).ok()?;
    let delimiter = format!("--{boundary}");
    let mut parts = body.split(delimiter.as_str());
    if !parts.next()?.trim().is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    let mut closed = false;
    for part in parts {
        if part.starts_with("--") {
            closed = true;
            break;
        }
        let part = part.strip_prefix("\r\n")?;
        let (head, value) = part.split_once("\r\n\r\n")?;
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let disposition = head.lines().find(|line| {
            line.to_ascii_lowercase()
                .starts_with("content-disposition:")
        })?;
        let mut name = None;
        let mut is_file = false;
        for attribute in disposition.split(';').skip(1).map(str::trim) {
            if let Some(quoted) = attribute.strip_prefix("name=") {
                name = Some(quoted.trim_matches('"').to_owned());
            } else if attribute.starts_with("filename=") {
                is_file = true;
            }
        }
        if !is_file {
            fields.push((name?, value.to_owned()));
        }
    }
    closed.then_some(fields)
}

/// Encodes a value for a query string.
pub fn percent_encode(input: &str) -> String {
    form_urlencoded::byte_serialize(input.as_bytes()).collect()
}

/// A Slack-looking id: the kind's letter and a zero-padded upper-case base-36 number, so
/// seeded ids can be predicted from an index (`U00000000` is the organisation's person 0).
pub fn slack_id(prefix: char, number: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut digits = [b'0'; 13];
    let mut rest = number;
    let mut at = digits.len();
    while rest > 0 {
        at -= 1;
        digits[at] = DIGITS[(rest % 36) as usize];
        rest /= 36;
    }
    let start = at.min(digits.len() - 8);
    let mut id = String::with_capacity(1 + digits.len() - start);
    id.push(prefix);
    id.extend(digits[start..].iter().map(|&d| char::from(d)));
    id
}

/// Slack's message timestamp: seconds and microseconds, `"1700000000.000100"`.
pub fn format_ts(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

pub fn parse_ts(ts: &str) -> Option<u64> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    if seconds.is_empty()
        || fraction.len() > 6
        || !seconds.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    let micros: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip() {
        let pairs = parse_urlencoded("a=1&text=hello+w%C3%B6rld%21&empty=&flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("text".to_owned(), "hello wörld!".to_owned()),
                ("empty".to_owned(), String::new()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            percent_decode(&percent_encode("a b&c=d/é")).unwrap(),
            "a b&c=d/é"
        );
        assert!(parse_urlencoded("bad=%zz").is_none());
        assert!(parse_urlencoded("bad=%C3").is_none());
    }

    #[test]
    fn multipart_text_fields_are_read() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n1.2.abc\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"redirect_uri\"\r\n\r\nhttps://h.example/cb\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nbytes\r\n\
                    --XyZ--\r\n";
        assert_eq!(
            parse_multipart(body.as_bytes(), "XyZ").unwrap(),
            vec![
                ("code".to_owned(), "1.2.abc".to_owned()),
                ("redirect_uri".to_owned(), "https://h.example/cb".to_owned()),
            ]
        );
        assert!(parse_multipart(b"garbage", "XyZ").is_none());
        assert!(parse_multipart(b"--XyZ\r\nno headers", "XyZ").is_none());
    }

    #[test]
    fn ids_and_timestamps() {
        assert_eq!(slack_id('U', 0), "U00000000");
        assert_eq!(slack_id('U', 35), "U0000000Z");
        assert_eq!(slack_id('D', 36), "D00000010");
        assert_eq!(format_ts(1_700_000_000_000_100), "1700000000.000100");
        assert_eq!(parse_ts("1700000000.000100"), Some(1_700_000_000_000_100));
        assert_eq!(parse_ts("1700000000.1"), Some(1_700_000_000_100_000));
        assert_eq!(parse_ts("1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts("x.1"), None);
        assert_eq!(parse_ts("1.1234567"), None);
    }
}
