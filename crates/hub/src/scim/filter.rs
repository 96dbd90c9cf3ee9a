//! SCIM filters (RFC 7644 §3.4.2.2) as far as identity providers use them, and the attribute
//! path grammar that filters and PATCH paths share.
//!
//! Before creating a user or group, Entra ID and Okta ask whether it already exists with one
//! filter: `userName eq "a@b.c"`, `externalId eq "123"`, `displayName eq "Sales"`, or several such
//! equalities joined by `and`. That is all this module accepts. `or`, `not`, parentheses and the
//! other operators are refused with `invalidFilter`, which RFC 7644 lets a service provider
//! answer for filters it does not support, rather than half-supported.

use std::fmt;

use super::error::ScimError;

/// The core User schema, whose attributes may be written qualified by it.
pub(super) const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema, whose attributes may be written qualified by it.
pub(super) const CORE_GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Appended to every refusal, so the administrator sees what would have been accepted.
const SUPPORTED: &str = "supported: `attribute eq \"value\"` terms joined by `and`, on id, \
    userName, externalId, displayName, emails.value or emails[type eq \"…\"].value";

/// An attribute a filter may compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Id,
    UserName,
    ExternalId,
    DisplayName,
    /// Any of the resource's e-mail addresses: `emails.value`, or `emails[type eq "…"].value`,
    /// whose type Entra fills from its mapping and which says nothing about who the user is.
    Email,
}

/// A filter that matches the resources whose attributes equal every one of its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub equals: Vec<(Attribute, String)>,
}

/// Parses a filter of `attribute eq "value"` terms joined by `and`. Operators and attribute names
/// are case-insensitive (RFC 7643 §2.1, RFC 7644 §3.4.2.2); values are JSON strings.
pub fn parse(text: &str) -> Result<Filter, ScimError> {
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err(refusal("the filter is empty"));
    }
    let mut equals = Vec::new();
    loop {
        let (path_text, after_path) = split_attribute_path(rest);
        if path_text.starts_with('(') || path_text.eq_ignore_ascii_case("not") {
            return Err(refusal("`not` and parentheses are not supported"));
        }
        let attribute = parse_attribute_path(path_text)
            .map_err(refusal)
            .and_then(|path| {
                filtered_attribute(&path).ok_or_else(|| {
                    refusal(format!("the attribute `{path_text}` cannot be filtered on"))
                })
            })?;
        let (operator, after_operator) = split_word(after_path.trim_start());
        if !operator.eq_ignore_ascii_case("eq") {
            return Err(refusal(format!(
                "expected `eq` after `{path_text}`, found {}",
                quoted_or_end(operator, after_operator)
            )));
        }
        let (value, after_value) = read_string(after_operator.trim_start()).map_err(refusal)?;
        equals.push((attribute, value));

        let after_value = after_value.trim_start();
        if after_value.is_empty() {
            return Ok(Filter { equals });
        }
        let (joiner, after_joiner) = split_word(after_value);
        if !joiner.eq_ignore_ascii_case("and") {
            return Err(refusal(format!(
                "expected `and` or the end after a term, found {}",
                quoted_or_end(joiner, after_joiner)
            )));
        }
        rest = after_joiner.trim_start();
        if rest.is_empty() {
            return Err(refusal("expected a term after `and`"));
        }
    }
}

fn refusal(problem: impl fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!("{problem}; {SUPPORTED}"))
}

/// The attribute a parsed path names, if it is one a filter may compare.
fn filtered_attribute(path: &AttributePath<'_>) -> Option<Attribute> {
    if let Some(schema) = path.schema
        && !schema.eq_ignore_ascii_case(CORE_USER_SCHEMA)
        && !schema.eq_ignore_ascii_case(CORE_GROUP_SCHEMA)
    {
        return None;
    }
    let name = path.name.to_ascii_lowercase();
    let sub_attribute = path.sub_attribute.map(str::to_ascii_lowercase);
    let selects_by_type = |filter: &ValueFilter<'_>| filter.attribute.eq_ignore_ascii_case("type");
    match (name.as_str(), &path.value_filter, sub_attribute.as_deref()) {
        ("id", None, None) => Some(Attribute::Id),
        ("username", None, None) => Some(Attribute::UserName),
        ("externalid", None, None) => Some(Attribute::ExternalId),
        ("displayname", None, None) => Some(Attribute::DisplayName),
        ("emails", None, Some("value")) => Some(Attribute::Email),
        ("emails", Some(filter), Some("value")) if selects_by_type(filter) => {
            Some(Attribute::Email)
        }
        _ => None,
    }
}

/// An attribute path (RFC 7644 §3.4.2.2 `attrPath` and `valuePath`, which PATCH paths reuse in
/// §3.5.2): `[schema:]name[.sub]` or `[schema:]name[attribute eq "value"][.sub]`.
pub(super) struct AttributePath<'a> {
    /// The schema URI the path is qualified with, as written.
    pub(super) schema: Option<&'a str>,
    pub(super) name: &'a str,
    /// The `[attribute eq "value"]` that selects some values of a multi-valued attribute.
    pub(super) value_filter: Option<ValueFilter<'a>>,
    pub(super) sub_attribute: Option<&'a str>,
}

/// The selection inside a value path's brackets; only `eq` on a string is supported.
pub(super) struct ValueFilter<'a> {
    pub(super) attribute: &'a str,
    pub(super) value: String,
}

/// Parses one attribute path, the whole of `text`; the error is the problem, to be wrapped in
/// the caller's kind of refusal (a filter's `invalidFilter`, a PATCH's `invalidPath`).
pub(super) fn parse_attribute_path(text: &str) -> Result<AttributePath<'_>, String> {
    let (head, bracketed) = match text.find('[') {
        None => (text, None),
        Some(open) => {
            let inside = &text[open + 1..];
            let close =
                closing_bracket(inside).ok_or_else(|| format!("`{text}` never closes its `[`"))?;
            (
                &text[..open],
                Some((&inside[..close], &inside[close + 1..])),
            )
        }
    };
    // A schema URI has colons and a version with a dot ("…:2.0:User"), so the schema ends at the
    // last colon and only what follows it can hold a sub-attribute.
    let (schema, unqualified) = match head.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("urn:") => match head.rfind(':') {
            Some(colon) => (Some(&head[..colon]), &head[colon + 1..]),
            None => (None, head),
        },
        _ => (None, head),
    };
    let (name, value_filter, sub_attribute) = match bracketed {
        None => match unqualified.split_once('.') {
            Some((name, sub_attribute)) => (name, None, Some(sub_attribute)),
            None => (unqualified, None, None),
        },
        Some((selection, after)) => {
            let sub_attribute = match after {
                "" => None,
                _ => Some(after.strip_prefix('.').ok_or_else(|| {
                    format!("expected `.` and a sub-attribute after `]`, found `{after}`")
                })?),
            };
            (
                unqualified,
                Some(parse_value_filter(selection)?),
                sub_attribute,
            )
        }
    };
    for part in std::iter::once(name).chain(sub_attribute) {
        if !is_attribute_name(part) {
            return Err(format!("`{part}` is not an attribute name"));
        }
    }
    Ok(AttributePath {
        schema,
        name,
        value_filter,
        sub_attribute,
    })
}

fn parse_value_filter(selection: &str) -> Result<ValueFilter<'_>, String> {
    let (attribute, after_attribute) = split_word(selection.trim_start());
    if !is_attribute_name(attribute) {
        return Err(format!(
            "`[{selection}]` does not start with an attribute name"
        ));
    }
    let (operator, after_operator) = split_word(after_attribute.trim_start());
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(format!(
            "only `eq` can select values inside `[…]`, found {}",
            quoted_or_end(operator, after_operator)
        ));
    }
    let (value, after_value) = read_string(after_operator.trim_start())?;
    if !after_value.trim().is_empty() {
        return Err(format!(
            "only one comparison fits inside `[…]`, found `{}`",
            after_value.trim()
        ));
    }
    Ok(ValueFilter { attribute, value })
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, plus the `$ref` of references.
fn is_attribute_name(text: &str) -> bool {
    let name = text.strip_prefix('$').unwrap_or(text);
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && characters
            .all(|character| character.is_ascii_alphanumeric() || matches!(character, '-' | '_'))
}

/// Splits off the attribute path at the start of `text`: up to the first whitespace outside
/// brackets, since a value path's brackets hold a comparison with spaces.
fn split_attribute_path(text: &str) -> (&str, &str) {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if character.is_whitespace() && depth == 0 => return text.split_at(index),
            _ => {}
        }
    }
    (text, "")
}

/// The index in `text` of the `]` that closes a bracket opened just before it, skipping any in
/// quoted strings.
fn closing_bracket(text: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(index),
            _ => {}
        }
    }
    None
}

/// Splits off the word at the start of `text`: up to whitespace, a quote, a bracket or a
/// parenthesis.
fn split_word(text: &str) -> (&str, &str) {
    let end = text
        .find(|character: char| character.is_whitespace() || "\"[]()".contains(character))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Reads the JSON string at the start of `text` and returns it decoded with what follows it.
fn read_string(text: &str) -> Result<(String, &str), String> {
    let Some(body) = text.strip_prefix('"') else {
        let (word, rest) = split_word(text);
        return Err(format!(
            "values must be double-quoted strings, found {}",
            quoted_or_end(word, rest)
        ));
    };
    let mut escaped = false;
    for (index, byte) in body.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => {
                let (literal, rest) = text.split_at(index + 2);
                let value = serde_json::from_str(literal)
                    .map_err(|_| format!("{literal} is not a valid JSON string"))?;
                return Ok((value, rest));
            }
            _ => {}
        }
    }
    Err(format!("the string {text} is never closed"))
}

/// How a refusal names what it found: the word, or the next character when the word is empty
/// (a parenthesis, say), or the end.
fn quoted_or_end(word: &str, rest: &str) -> String {
    match (word, rest.chars().next()) {
        ("", None) => "the end".to_owned(),
        ("", Some(character)) => format!("`{character}`"),
        _ => format!("`{word}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[(Attribute, &str)]) {
        let filter = parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        let expected: Vec<_> = expected
            .iter()
            .map(|(attribute, value)| (*attribute, (*value).to_owned()))
            .collect();
        assert_eq!(filter.equals, expected, "{text}");
    }

    fn check_refused(text: &str, problem: &str) {
        let error = parse(text).expect_err(text);
        assert_eq!(
            (error.status, error.scim_type),
            (400, Some("invalidFilter")),
            "{text}"
        );
        assert!(error.detail.contains(problem), "{text}: {}", error.detail);
        assert!(
            error.detail.ends_with(SUPPORTED),
            "{text}: {}",
            error.detail
        );
    }

    #[test]
    fn entra_looks_users_up_by_user_name() {
        check(r#"userName eq "a@b.c""#, &[(Attribute::UserName, "a@b.c")]);
    }

    #[test]
    fn entra_looks_users_up_by_external_id() {
        check(r#"externalId eq "123""#, &[(Attribute::ExternalId, "123")]);
    }

    #[test]
    fn okta_joins_terms_with_and() {
        check(
            r#"userName eq "x" and externalId eq "y""#,
            &[(Attribute::UserName, "x"), (Attribute::ExternalId, "y")],
        );
    }

    #[test]
    fn an_email_is_selected_by_type_or_not() {
        check(
            r#"emails[type eq "work"].value eq "A@B.C""#,
            &[(Attribute::Email, "A@B.C")],
        );
        check(
            r#"emails[ TYPE  eq "home" ].value eq "x""#,
            &[(Attribute::Email, "x")],
        );
        check(r#"emails.value eq "a@b.c""#, &[(Attribute::Email, "a@b.c")]);
    }

    #[test]
    fn groups_are_looked_up_by_display_name_and_id() {
        check(
            r#"displayName eq "Sales""#,
            &[(Attribute::DisplayName, "Sales")],
        );
        check(r#"id eq "7f0c""#, &[(Attribute::Id, "7f0c")]);
    }

    #[test]
    fn operators_and_names_ignore_case() {
        check(r#"USERNAME EQ "x""#, &[(Attribute::UserName, "x")]);
        check(
            r#"username eq "x" AND EXTERNALID Eq "y""#,
            &[(Attribute::UserName, "x"), (Attribute::ExternalId, "y")],
        );
    }

    #[test]
    fn any_whitespace_separates_the_parts() {
        check(
            "  userName\teq   \"x\"\n and\r\nid eq \"1\"  ",
            &[(Attribute::UserName, "x"), (Attribute::Id, "1")],
        );
    }

    #[test]
    fn values_are_json_strings() {
        check(
            r#"displayName eq "say \"hi\" \\ bye""#,
            &[(Attribute::DisplayName, r#"say "hi" \ bye"#)],
        );
        check(
            r#"displayName eq "caf\u00e9""#,
            &[(Attribute::DisplayName, "café")],
        );
        check(
            r#"displayName eq "a ] and [ b""#,
            &[(Attribute::DisplayName, "a ] and [ b")],
        );
        check(r#"displayName eq """#, &[(Attribute::DisplayName, "")]);
    }

    #[test]
    fn attributes_may_be_qualified_by_their_core_schema() {
        check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
            &[(Attribute::UserName, "x")],
        );
        check(
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Sales""#,
            &[(Attribute::DisplayName, "Sales")],
        );
    }

    #[test]
    fn other_operators_and_combinators_are_refused() {
        check_refused(r#"userName eq "x" or userName eq "y""#, "found `or`");
        check_refused(
            r#"not (userName eq "x")"#,
            "`not` and parentheses are not supported",
        );
        check_refused(
            r#"(userName eq "x")"#,
            "`not` and parentheses are not supported",
        );
        check_refused("userName pr", "found `pr`");
        check_refused(r#"userName co "x""#, "found `co`");
        check_refused(r#"userName sw "x""#, "found `sw`");
        check_refused(
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            "cannot be filtered on",
        );
        check_refused(
            r#"emails[type eq "work" or type eq "home"].value eq "x""#,
            "only one comparison",
        );
        check_refused(
            r#"emails[type co "work"].value eq "x""#,
            "only `eq` can select",
        );
    }

    #[test]
    fn unknown_attributes_are_refused() {
        check_refused(r#"title eq "x""#, "`title` cannot be filtered on");
        check_refused(r#"name.givenName eq "x""#, "cannot be filtered on");
        check_refused(r#"emails eq "x""#, "cannot be filtered on");
        check_refused(
            r#"emails[value eq "x"].value eq "x""#,
            "cannot be filtered on",
        );
        check_refused(r#"emails[type eq "work"] eq "x""#, "cannot be filtered on");
        check_refused(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
            "cannot be filtered on",
        );
    }

    #[test]
    fn malformed_filters_are_refused() {
        check_refused("", "the filter is empty");
        check_refused("   ", "the filter is empty");
        check_refused(r#"userName eq "x"#, "never closed");
        check_refused(r#"userName eq "\x""#, "not a valid JSON string");
        check_refused(
            "userName eq x",
            "values must be double-quoted strings, found `x`",
        );
        check_refused("userName eq true", "found `true`");
        check_refused("userName eq", "found the end");
        check_refused("userName", "found the end");
        check_refused(r#"userName eq "x" and"#, "expected a term after `and`");
        check_refused(r#"userName eq "x" and "#, "expected a term after `and`");
        check_refused(r#"userName eq "x" userName eq "y""#, "found `userName`");
        check_refused(
            r#"emails[type eq "work".value eq "x""#,
            "never closes its `[`",
        );
    }
}
