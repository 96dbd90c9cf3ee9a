//! The error a SCIM endpoint answers with (RFC 7644 §3.12).
//!
//! Identity providers log the `detail` of a refused request and show it to the administrator who
//! set up provisioning, so each constructor takes a sentence that says what was wrong; the
//! `scimType` keyword tells the provider's software which kind of 400 it was.

use std::fmt;

use serde_json::{Value, json};

/// The schema URI that marks a response body as a SCIM error.
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM error as RFC 7644 §3.12 answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// The HTTP status, which the body repeats.
    pub status: u16,
    /// The RFC's keyword for the kind of error; RFC 7644 defines them for 400 and 409 only.
    pub scim_type: Option<&'static str>,
    /// What was wrong, for the administrator reading the identity provider's log.
    pub detail: String,
}

impl ScimError {
    fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 `invalidFilter`: a filter the service provider cannot parse or does not support.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    /// 400 `invalidPath`: a PATCH `path` that is malformed or names nothing this resource has.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    /// 400 `noTarget`: a PATCH operation that names nothing to operate on.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    /// 400 `invalidValue`: a value missing where one is required, or of the wrong type.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    /// 400 `invalidSyntax`: a request body that is not the message the endpoint takes.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    /// 400 `mutability`: a change to an attribute that is read-only or immutable.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    /// 409 `uniqueness`: a value, such as a `userName`, that another resource already holds.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    /// 404: no resource has the requested id.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 401: the request's bearer token is missing or not one the hub issued.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// The response body. `status` is a string because RFC 7644 §3.12 defines it as one.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = Value::from(scim_type);
        }
        body
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(scim_type) => write!(formatter, "{} {scim_type}: {}", self.status, self.detail),
            None => write!(formatter, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_the_status_and_keyword_of_rfc_7644() {
        let cases = [
            (ScimError::invalid_filter("d"), 400, Some("invalidFilter")),
            (ScimError::invalid_path("d"), 400, Some("invalidPath")),
            (ScimError::no_target("d"), 400, Some("noTarget")),
            (ScimError::invalid_value("d"), 400, Some("invalidValue")),
            (ScimError::invalid_syntax("d"), 400, Some("invalidSyntax")),
            (ScimError::mutability("d"), 400, Some("mutability")),
            (ScimError::uniqueness("d"), 409, Some("uniqueness")),
            (ScimError::not_found("d"), 404, None),
            (ScimError::unauthorized("d"), 401, None),
        ];
        for (error, status, scim_type) in cases {
            assert_eq!(
                (error.status, error.scim_type),
                (status, scim_type),
                "{error}"
            );
        }
    }

    #[test]
    fn the_body_carries_the_status_as_a_string() {
        let body = ScimError::uniqueness("userName a@b.c is taken").to_json();
        assert_eq!(
            body,
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "409",
                "scimType": "uniqueness",
                "detail": "userName a@b.c is taken",
            })
        );
    }

    #[test]
    fn the_body_leaves_out_scim_type_when_there_is_none() {
        let body = ScimError::not_found("no user has id 7").to_json();
        assert_eq!(
            body,
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "404",
                "detail": "no user has id 7",
            })
        );
    }

    #[test]
    fn display_names_the_status_keyword_and_detail() {
        assert_eq!(ScimError::no_target("x").to_string(), "400 noTarget: x");
        assert_eq!(ScimError::unauthorized("y").to_string(), "401: y");
    }
}
