//! What every Graph answer shares: the error envelope with its request ids, the OData query
//! options (`$select`, `$filter`, `$top`, `$skiptoken`, `$count`), timestamps in Graph's format,
//! and the URL and form encoding the rest of the crate needs.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Graph labels its JSON this way; clients select their parser on the part before `;`.
pub const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A Graph error. The body is rendered by [`envelope`], which alone knows the request's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn directory_bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// Directory objects (users, groups) answer a missing id in Entra's own words.
    pub fn directory_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn insufficient_privileges() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    pub fn throttled(wait: Duration) -> Self {
        Self {
            retry_after: Some(switchboard_sim_kit::ratelimit::retry_after_seconds(wait).max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests have been sent. Wait for the time given in Retry-After and try again.",
            )
        }
    }

    pub fn unreadable_body() -> Self {
        Self::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    }

    /// The whole response, with ids the caller supplies (used where no [`envelope`] runs).
    pub fn render(&self, request_id: &str, client_request_id: &str) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": iso_seconds(now_ms()),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }
        });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
        set_ids(headers, request_id, client_request_id);
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.status;
        response.extensions_mut().insert(self);
        response
    }
}

pub type GraphResult = Result<Response, GraphError>;

fn set_ids(headers: &mut HeaderMap, request_id: &str, client_request_id: &str) {
    for (name, value) in [
        ("request-id", request_id),
        ("client-request-id", client_request_id),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"Simulator","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"SIM"}}"#),
    );
}

/// Middleware on every Graph route: gives each request its `request-id`, echoes the client's
/// `client-request-id` (or reuses the request id, as Graph does when none is sent), and renders
/// [`GraphError`]s with both.
pub async fn envelope(request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = request
        .headers()
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 200)
        .map_or_else(|| request_id.clone(), str::to_owned);
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<GraphError>() {
        return error.render(&request_id, &client_request_id);
    }
    set_ids(response.headers_mut(), &request_id, &client_request_id);
    response
}

/// A JSON answer with Graph's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parses a request body as JSON, answering Graph's error for anything else.
pub fn parse_body(body: &[u8]) -> Result<Value, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(GraphError::unreadable_body()),
    }
}

/// The OData system query options of one request.
#[derive(Debug, Default, Clone)]
pub struct QueryOptions {
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
    pub top: Option<usize>,
    pub skiptoken: Option<String>,
    pub deltatoken: Option<String>,
    pub count: bool,
    /// The request's other parameters, kept for `@odata.nextLink`.
    pub rest: Vec<(String, String)>,
}

impl QueryOptions {
    /// Reads `$`-options; Graph also accepts them without the `$`.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, GraphError> {
        let mut options = Self::default();
        for (name, value) in pairs {
            match name.trim_start_matches('$').to_ascii_lowercase().as_str() {
                "select" => {
                    let fields: Vec<String> = value
                        .split(',')
                        .map(|field| field.trim().to_owned())
                        .filter(|field| !field.is_empty())
                        .collect();
                    options.select = (!fields.is_empty()).then_some(fields);
                }
                "filter" => options.filter = Some(value.clone()),
                "top" => {
                    let top = value.trim().parse::<usize>().map_err(|_| {
                        GraphError::bad_request(format!(
                            "Invalid value '{value}' for $top query option."
                        ))
                    })?;
                    options.top = Some(top);
                }
                "skiptoken" => options.skiptoken = Some(value.clone()),
                "deltatoken" => options.deltatoken = Some(value.clone()),
                "count" => options.count = value.eq_ignore_ascii_case("true"),
                _ => options.rest.push((name.clone(), value.clone())),
            }
        }
        Ok(options)
    }

    /// `$top` within `1..=max`, or `default`; out of range is the directory's error.
    pub fn page_size(&self, default: usize, max: usize) -> Result<usize, GraphError> {
        match self.top {
            None => Ok(default),
            Some(top) if (1..=max).contains(&top) => Ok(top),
            Some(top) => Err(GraphError::directory_bad_request(format!(
                "Invalid page size specified: '{top}'. Must be between 1 and {max} inclusive."
            ))),
        }
    }

    /// The URL of the page that resumes at `skiptoken`, keeping every other option.
    pub fn next_link(&self, base: &str, skiptoken: &str) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(select) = &self.select {
            pairs.push(("$select".to_owned(), select.join(",")));
        }
        if let Some(filter) = &self.filter {
            pairs.push(("$filter".to_owned(), filter.clone()));
        }
        if let Some(top) = self.top {
            pairs.push(("$top".to_owned(), top.to_string()));
        }
        if self.count {
            pairs.push(("$count".to_owned(), "true".to_owned()));
        }
        pairs.extend(self.rest.iter().cloned());
        pairs.push(("$skiptoken".to_owned(), skiptoken.to_owned()));
        with_query(base, &pairs)
    }
}

/// `$count=true` needs the advanced-query header, as in Entra.
pub fn wants_count(options: &QueryOptions, headers: &HeaderMap) -> Result<bool, GraphError> {
    if !options.count {
        return Ok(false);
    }
    let eventual = headers
        .get("consistencylevel")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("eventual"));
    if eventual {
        Ok(true)
    } else {
        Err(GraphError::directory_bad_request(
            "$count is not currently supported without the ConsistencyLevel: eventual header.",
        ))
    }
}

pub fn with_query(base: &str, pairs: &[(String, String)]) -> String {
    let mut url = base.to_owned();
    for (index, (name, value)) in pairs.iter().enumerate() {
        url.push(if index == 0 { '?' } else { '&' });
        url.push_str(&encode_component(name).replace("%24", "$"));
        url.push('=');
        url.push_str(&encode_component(value));
    }
    url
}

/// Percent-encodes a query-string component.
pub fn encode_component(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Decodes `application/x-www-form-urlencoded` text; malformed escapes pass through as text, as
/// Entra and Graph are lenient there.
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

pub fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// Opaque page tokens: a position, base64url-encoded so clients treat it as opaque.
pub fn encode_token(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_token(token: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

pub fn now_ms() -> u64 {
    u64::try_from(switchboard_sim_kit::clock::since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// `2024-05-01T12:34:56.789Z`, the form Graph gives timestamps.
pub fn iso(ms: u64) -> String {
    let (date, seconds) = civil(ms / 1000);
    format!("{date}T{seconds}.{:03}Z", ms % 1000)
}

/// `2024-05-01T12:34:56Z`.
pub fn iso_seconds(ms: u64) -> String {
    let (date, seconds) = civil(ms / 1000);
    format!("{date}T{seconds}Z")
}

fn civil(secs: u64) -> (String, String) {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let (year, month, day) = date_from_days(days);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        ),
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (the era-based method).
fn date_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * month_index + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_date(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses an ISO 8601 / RFC 3339 timestamp (`Z` or `±hh:mm`, any fraction) to epoch ms.
pub fn parse_iso(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0_i64)
    } else if let Some(position) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(position);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
        let minutes = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
        (clock, sign * minutes)
    } else {
        (time, 0)
    };
    let mut clock_parts = clock.split(':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let seconds_text = clock_parts.next().unwrap_or("0");
    let (whole, fraction) = seconds_text.split_once('.').unwrap_or((seconds_text, ""));
    let second: i64 = whole.parse().ok()?;
    if hour > 23 || minute > 59 || second > 60 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let total = days_from_date(year, month, day) * 86_400_000
        + (hour * 3600 + minute * 60 + second - offset_minutes * 60) * 1000
        + millis;
    u64::try_from(total).ok()
}

/// A value a `$filter` compares against.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Bool(bool),
    Null,
}

/// What an entity answers when a filter asks for one of its properties.
pub enum Field<'a> {
    Text(Option<&'a str>),
    Bool(bool),
    List(Vec<&'a str>),
    /// Not filterable: the query is refused.
    Unsupported,
}

pub trait Filterable {
    fn field(&self, name: &str) -> Field<'_>;
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Eq(String, Literal),
    Ne(String, Literal),
    In(String, Vec<Literal>),
    StartsWith(String, String),
    AnyEq(String, String),
    AnyStartsWith(String, String),
}

/// A parsed `$filter`: alternatives (`or`) of conjunctions (`and`) of simple tests, the subset
/// of OData Entra accepts on users and groups without advanced queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    alternatives: Vec<Vec<Test>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
    Comma,
    Colon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, GraphError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' | ')' | ',' | ':' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    _ => Token::Colon,
                });
            }
            '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            value.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => value.push(other),
                        None => return Err(invalid_filter()),
                    }
                }
                tokens.push(Token::Text(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, ' ' | '\t' | '(' | ')' | ',' | ':' | '\'') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

fn invalid_filter() -> GraphError {
    GraphError::bad_request("Invalid filter clause")
}

fn unsupported_query() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        "Unsupported Query.",
    )
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek_word(&self) -> Option<String> {
        match self.tokens.get(self.position) {
            Some(Token::Word(word)) => Some(word.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn expect(&mut self, expected: &Token) -> Result<(), GraphError> {
        if self.next().as_ref() == Some(expected) {
            Ok(())
        } else {
            Err(invalid_filter())
        }
    }

    fn word(&mut self) -> Result<String, GraphError> {
        match self.next() {
            Some(Token::Word(word)) => Ok(word),
            _ => Err(invalid_filter()),
        }
    }

    fn text(&mut self) -> Result<String, GraphError> {
        match self.next() {
            Some(Token::Text(text)) => Ok(text),
            _ => Err(invalid_filter()),
        }
    }

    fn literal(&mut self) -> Result<Literal, GraphError> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            Some(Token::Word(word)) if word == "true" => Ok(Literal::Bool(true)),
            Some(Token::Word(word)) if word == "false" => Ok(Literal::Bool(false)),
            Some(Token::Word(word)) if word == "null" => Ok(Literal::Null),
            _ => Err(invalid_filter()),
        }
    }

    fn test(&mut self) -> Result<Test, GraphError> {
        let word = self.word()?;
        if word.eq_ignore_ascii_case("startswith") {
            self.expect(&Token::Open)?;
            let property = self.word()?;
            self.expect(&Token::Comma)?;
            let prefix = self.text()?;
            self.expect(&Token::Close)?;
            return Ok(Test::StartsWith(property, prefix));
        }
        if let Some((property, function)) = word.split_once('/') {
            if !function.eq_ignore_ascii_case("any") {
                return Err(unsupported_query());
            }
            self.expect(&Token::Open)?;
            let variable = self.word()?;
            self.expect(&Token::Colon)?;
            let test = if self.peek_word().as_deref() == Some("startswith") {
                self.word()?;
                self.expect(&Token::Open)?;
                if self.word()? != variable {
                    return Err(invalid_filter());
                }
                self.expect(&Token::Comma)?;
                let prefix = self.text()?;
                self.expect(&Token::Close)?;
                Test::AnyStartsWith(property.to_owned(), prefix)
            } else {
                if self.word()? != variable || self.peek_word().as_deref() != Some("eq") {
                    return Err(invalid_filter());
                }
                self.word()?;
                Test::AnyEq(property.to_owned(), self.text()?)
            };
            self.expect(&Token::Close)?;
            return Ok(test);
        }
        let operator = self.word()?.to_ascii_lowercase();
        match operator.as_str() {
            "eq" => Ok(Test::Eq(word, self.literal()?)),
            "ne" => Ok(Test::Ne(word, self.literal()?)),
            "in" => {
                self.expect(&Token::Open)?;
                let mut values = vec![self.literal()?];
                loop {
                    match self.next() {
                        Some(Token::Comma) => values.push(self.literal()?),
                        Some(Token::Close) => break,
                        _ => return Err(invalid_filter()),
                    }
                }
                Ok(Test::In(word, values))
            }
            "gt" | "ge" | "lt" | "le" | "endswith" => Err(unsupported_query()),
            _ => Err(invalid_filter()),
        }
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self, GraphError> {
        let mut parser = Parser {
            tokens: tokenize(text)?,
            position: 0,
        };
        let mut alternatives = vec![vec![parser.test()?]];
        while let Some(word) = parser.peek_word() {
            parser.word()?;
            let test = parser.test()?;
            match word.as_str() {
                "and" => alternatives
                    .last_mut()
                    .ok_or_else(invalid_filter)?
                    .push(test),
                "or" => alternatives.push(vec![test]),
                _ => return Err(invalid_filter()),
            }
        }
        if parser.position < parser.tokens.len() {
            return Err(invalid_filter());
        }
        Ok(Self { alternatives })
    }

    /// Whether `entity` passes; an unfilterable property is Entra's unsupported-query error.
    pub fn matches(&self, entity: &impl Filterable) -> Result<bool, GraphError> {
        for conjunction in &self.alternatives {
            let mut all = true;
            for test in conjunction {
                if !evaluate(test, entity)? {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn literal_matches(field: &Field<'_>, literal: &Literal) -> Result<bool, GraphError> {
    Ok(match (field, literal) {
        (Field::Text(value), Literal::Text(expected)) => {
            value.is_some_and(|value| value.eq_ignore_ascii_case(expected))
        }
        (Field::Text(value), Literal::Null) => value.is_none(),
        (Field::Bool(value), Literal::Bool(expected)) => value == expected,
        (Field::Unsupported, _) => return Err(unsupported_query()),
        _ => return Err(invalid_filter()),
    })
}

fn evaluate(test: &Test, entity: &impl Filterable) -> Result<bool, GraphError> {
    match test {
        Test::Eq(property, literal) => literal_matches(&entity.field(property), literal),
        Test::Ne(property, literal) => Ok(!literal_matches(&entity.field(property), literal)?),
        Test::In(property, literals) => {
            let field = entity.field(property);
            for literal in literals {
                if literal_matches(&field, literal)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Test::StartsWith(property, prefix) => match entity.field(property) {
            Field::Text(value) => Ok(value.is_some_and(|value| starts_with_ci(value, prefix))),
            Field::Unsupported => Err(unsupported_query()),
            _ => Err(invalid_filter()),
        },
        Test::AnyEq(property, expected) => match entity.field(property) {
            Field::List(values) => Ok(values
                .iter()
                .any(|value| value.eq_ignore_ascii_case(expected))),
            Field::Unsupported => Err(unsupported_query()),
            _ => Err(invalid_filter()),
        },
        Test::AnyStartsWith(property, prefix) => match entity.field(property) {
            Field::List(values) => Ok(values.iter().any(|value| starts_with_ci(value, prefix))),
            Field::Unsupported => Err(unsupported_query()),
            _ => Err(invalid_filter()),
        },
    }
}

fn starts_with_ci(value: &str, prefix: &str) -> bool {
    value
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Keeps only the `$select`ed properties (plus annotations), refusing unknown ones as Entra does.
pub fn select(
    mut object: serde_json::Map<String, Value>,
    fields: Option<&[String]>,
    default: &[&str],
    type_name: &str,
) -> Result<Value, GraphError> {
    let keep: Vec<String> = match fields {
        Some(fields) => {
            let mut keep = Vec::with_capacity(fields.len());
            for field in fields {
                let Some(name) = object.keys().find(|name| name.eq_ignore_ascii_case(field)) else {
                    return Err(GraphError::directory_bad_request(format!(
                        "Could not find a property named '{field}' on type '{type_name}'."
                    )));
                };
                keep.push(name.clone());
            }
            keep
        }
        None => default.iter().map(|name| (*name).to_owned()).collect(),
    };
    object.retain(|name, _| name.starts_with('@') || keep.iter().any(|kept| kept == name));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Person(&'static str, bool, Vec<&'static str>);

    impl Filterable for Person {
        fn field(&self, name: &str) -> Field<'_> {
            match name {
                "mail" => Field::Text(Some(self.0)),
                "accountEnabled" => Field::Bool(self.1),
                "otherMails" => Field::List(self.2.clone()),
                _ => Field::Unsupported,
            }
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = 1_714_566_896_789;
        assert_eq!(iso(ms), "2024-05-01T12:34:56.789Z");
        assert_eq!(parse_iso("2024-05-01T12:34:56.7890000Z"), Some(ms));
        assert_eq!(parse_iso("2024-05-01T14:34:56.789+02:00"), Some(ms));
        assert_eq!(parse_iso("2024-02-30"), None);
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn filters_compare_values_case_insensitively() {
        let ada = Person("Ada.Berg@acme.example", true, vec!["ada@home.example"]);
        let matches = |text: &str| Filter::parse(text).and_then(|filter| filter.matches(&ada));
        assert_eq!(matches("mail eq 'ada.berg@ACME.example'"), Ok(true));
        assert_eq!(matches("mail eq 'x' or accountEnabled eq true"), Ok(true));
        assert_eq!(matches("mail eq 'x' and accountEnabled eq true"), Ok(false));
        assert_eq!(
            matches("otherMails/any(m:m eq 'ADA@home.example')"),
            Ok(true)
        );
        assert_eq!(matches("startswith(mail,'ada.')"), Ok(true));
        assert_eq!(matches("mail in ('a', 'ada.berg@acme.example')"), Ok(true));
        assert_eq!(
            matches("jobTitle eq 'x'").unwrap_err().code,
            "Request_UnsupportedQuery"
        );
        assert_eq!(matches("mail eq").unwrap_err().code, "BadRequest");
        assert_eq!(
            matches("mail eq 'unterminated").unwrap_err().code,
            "BadRequest"
        );
    }

    #[test]
    fn form_and_tokens_decode() {
        let pairs = form_decode("a=1+2&b=%41%zz&c");
        assert_eq!(form_value(&pairs, "a"), Some("1 2"));
        assert_eq!(form_value(&pairs, "b"), Some("A%zz"));
        assert_eq!(form_value(&pairs, "c"), None);
        assert_eq!(decode_token(&encode_token("p:42")).as_deref(), Some("p:42"));
        assert_eq!(
            with_query("http://x/users", &[("$top".to_owned(), "a b".to_owned())]),
            "http://x/users?$top=a+b"
        );
    }
}
