//! Users and groups as SCIM resources (RFC 7643 §4): what the hub keeps of what a provider
//! wrote, what it draws from it to filter and match on, and what it answers.

use serde_json::{Map, Value, json};
use switchboard_core::Timestamp;
use switchboard_store::{ScimGroupRecord, ScimUserRecord};

use super::error::ScimError;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// What the service provider sets, never kept from what a provider wrote: `password` is
/// write-only and the hub has no use for it, so it is dropped. A group's members are kept as
/// written too (with their `display` and `type`), but who they are is the store's membership.
const NOT_KEPT: [&str; 3] = ["id", "meta", "password"];

/// An object's value for `name`, whatever its case (attribute names are case-insensitive).
pub fn get<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn text(object: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match get(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ScimError::invalid_value(format!(
            "{name} is a string, not {other}"
        ))),
    }
}

/// The resource a provider wrote, as kept: an object, without what the service provider sets.
fn kept(resource: &Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(object) = resource else {
        return Err(ScimError::invalid_syntax("a resource is a JSON object"));
    };
    Ok(object
        .iter()
        .filter(|(key, _)| !NOT_KEPT.iter().any(|name| key.eq_ignore_ascii_case(name)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect())
}

/// The address a user is matched by: the work one, else the primary one, else the first.
fn email_of(object: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    let emails = match get(object, "emails") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(emails)) => emails,
        Some(_) => return Err(ScimError::invalid_value("emails is a list")),
    };
    let value = |email: &Value| {
        email
            .as_object()
            .and_then(|email| get(email, "value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let is = |email: &Value, name: &str, wanted: &Value| {
        email
            .as_object()
            .and_then(|email| get(email, name))
            .is_some_and(|found| match (found, wanted) {
                (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a == b,
            })
    };
    Ok(emails
        .iter()
        .find(|email| is(email, "type", &json!("work")))
        .or_else(|| {
            emails
                .iter()
                .find(|email| is(email, "primary", &json!(true)))
        })
        .or_else(|| emails.first())
        .and_then(value))
}

fn active_of(object: &Map<String, Value>) -> Result<bool, ScimError> {
    match get(object, "active") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(active)) => Ok(*active),
        // Entra ID writes booleans as strings in some requests.
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(ScimError::invalid_value(format!(
            "active is a boolean, not {other}"
        ))),
    }
}

/// A user record for `resource` as a provider wrote it, with the id, times and version given.
pub fn user_record(
    id: &str,
    resource: &Value,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: i64,
) -> Result<ScimUserRecord, ScimError> {
    let mut object = kept(resource)?;
    let user_name = text(&object, "userName")?
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    let display_name = match text(&object, "displayName")? {
        Some(name) => Some(name),
        None => get(&object, "name")
            .and_then(Value::as_object)
            .and_then(|name| {
                get(name, "formatted")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| {
                        let part = |key| get(name, key).and_then(Value::as_str);
                        let parts: Vec<&str> = [part("givenName"), part("familyName")]
                            .into_iter()
                            .flatten()
                            .collect();
                        (!parts.is_empty()).then(|| parts.join(" "))
                    })
            }),
    };
    let active = active_of(&object)?;
    // Kept as a boolean, whatever form it came in.
    if let Some(key) = object
        .keys()
        .find(|key| key.eq_ignore_ascii_case("active"))
        .cloned()
    {
        object.insert(key, Value::Bool(active));
    }
    Ok(ScimUserRecord {
        id: id.to_owned(),
        user_name,
        external_id: text(&object, "externalId")?,
        display_name,
        email: email_of(&object)?,
        active,
        resource: Value::Object(object).to_string(),
        version,
        created_at,
        updated_at,
    })
}

/// A group record for `resource`, with its members' user ids.
pub fn group_record(
    id: &str,
    resource: &Value,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: i64,
) -> Result<ScimGroupRecord, ScimError> {
    let object = kept(resource)?;
    let display_name = text(&object, "displayName")?
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))?;
    let Value::Object(whole) = resource else {
        return Err(ScimError::invalid_syntax("a resource is a JSON object"));
    };
    let mut members = Vec::new();
    match get(whole, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(listed)) => {
            for member in listed {
                let id = member
                    .as_object()
                    .and_then(|member| get(member, "value"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ScimError::invalid_value("each member is an object with a value")
                    })?;
                if !members.iter().any(|known| known == id) {
                    members.push(id.to_owned());
                }
            }
        }
        Some(_) => return Err(ScimError::invalid_value("members is a list")),
    }
    Ok(ScimGroupRecord {
        id: id.to_owned(),
        display_name,
        external_id: text(&object, "externalId")?,
        resource: Value::Object(object).to_string(),
        members,
        version,
        created_at,
        updated_at,
    })
}

fn stored(resource: &str) -> Map<String, Value> {
    match serde_json::from_str(resource) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

fn meta(kind: &str, location: &str, created: Timestamp, updated: Timestamp, version: i64) -> Value {
    json!({
        "resourceType": kind,
        "created": switchboard_platform::time::format(created),
        "lastModified": switchboard_platform::time::format(updated),
        "location": location,
        "version": etag(version),
    })
}

/// A resource version as an ETag (weak: the representation is not byte-for-byte stable).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The user as the hub answers it, its location under `base` (`…/scim/v2`).
pub fn user_json(user: &ScimUserRecord, base: &str) -> Value {
    let mut object = stored(&user.resource);
    let mut schemas = vec![json!(USER_SCHEMA)];
    if get(&object, ENTERPRISE_USER_SCHEMA).is_some() {
        schemas.push(json!(ENTERPRISE_USER_SCHEMA));
    }
    object.insert("schemas".to_owned(), Value::Array(schemas));
    object.insert("id".to_owned(), json!(user.id));
    object.insert("userName".to_owned(), json!(user.user_name));
    object.retain(|key, _| key == "userName" || !key.eq_ignore_ascii_case("userName"));
    object.insert(
        "meta".to_owned(),
        meta(
            "User",
            &format!("{base}/Users/{}", user.id),
            user.created_at,
            user.updated_at,
            user.version,
        ),
    );
    Value::Object(object)
}

/// The group as the hub answers it, its members with their locations.
pub fn group_json(group: &ScimGroupRecord, base: &str) -> Value {
    let mut object = stored(&group.resource);
    let written: Vec<Map<String, Value>> = match get(&object, "members") {
        Some(Value::Array(members)) => members
            .iter()
            .filter_map(|member| member.as_object().cloned())
            .collect(),
        _ => Vec::new(),
    };
    object.retain(|key, _| !key.eq_ignore_ascii_case("members"));
    object.insert("schemas".to_owned(), json!([GROUP_SCHEMA]));
    object.insert("id".to_owned(), json!(group.id));
    object.insert("displayName".to_owned(), json!(group.display_name));
    object.retain(|key, _| key == "displayName" || !key.eq_ignore_ascii_case("displayName"));
    object.insert(
        "members".to_owned(),
        Value::Array(
            group
                .members
                .iter()
                .map(|id| {
                    let mut member = written
                        .iter()
                        .find(|member| get(member, "value").and_then(Value::as_str) == Some(id))
                        .cloned()
                        .unwrap_or_default();
                    member.retain(|key, _| {
                        !["value", "$ref"]
                            .iter()
                            .any(|name| key.eq_ignore_ascii_case(name))
                    });
                    member.insert("value".to_owned(), json!(id));
                    member.insert("$ref".to_owned(), json!(format!("{base}/Users/{id}")));
                    if get(&member, "type").is_none() {
                        member.insert("type".to_owned(), json!("User"));
                    }
                    Value::Object(member)
                })
                .collect(),
        ),
    );
    object.insert(
        "meta".to_owned(),
        meta(
            "Group",
            &format!("{base}/Groups/{}", group.id),
            group.created_at,
            group.updated_at,
            group.version,
        ),
    );
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

    #[test]
    fn a_user_is_kept_without_what_the_provider_may_not_set_and_matched_by_work_address() {
        let written = json!({
            "schemas": [USER_SCHEMA],
            "id": "forged",
            "password": "hunter2",
            "userName": "Ann@Acme.example",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [
                {"value": "ann@home.example", "primary": true},
                {"value": "Ann@Acme.example", "type": "work"}
            ],
            "active": "False",
            "externalId": "e-1"
        });
        let user = user_record("u1", &written, T, T, 1).unwrap();
        assert_eq!(user.user_name, "Ann@Acme.example");
        assert_eq!(user.display_name.as_deref(), Some("Ann Lee"));
        assert_eq!(user.email.as_deref(), Some("Ann@Acme.example"));
        assert_eq!(user.external_id.as_deref(), Some("e-1"));
        assert!(!user.active);
        assert!(!user.resource.contains("hunter2") && !user.resource.contains("forged"));
        let answered = user_json(&user, "https://hub/scim/v2");
        assert_eq!(answered["id"], "u1");
        assert_eq!(answered["active"], false);
        assert_eq!(answered["meta"]["location"], "https://hub/scim/v2/Users/u1");
        assert_eq!(answered["meta"]["version"], "W/\"1\"");
        assert!(answered.get("password").is_none());
    }

    #[test]
    fn a_user_needs_a_user_name_and_well_formed_attributes() {
        for bad in [
            json!({"displayName": "Nameless"}),
            json!({"userName": ""}),
            json!({"userName": 7}),
            json!({"userName": "a", "active": "maybe"}),
            json!({"userName": "a", "emails": "a@b.c"}),
            json!("not an object"),
        ] {
            assert!(user_record("u", &bad, T, T, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_group_keeps_its_members_once_each_and_answers_them_with_their_location() {
        let written = json!({
            "displayName": "Sales",
            "members": [{"value": "u1"}, {"value": "u2", "display": "Bo"}, {"value": "u1"}]
        });
        let group = group_record("g1", &written, T, T, 3).unwrap();
        assert_eq!(group.members, vec!["u1", "u2"]);
        assert_eq!(group_json(&group, "h")["members"][1]["display"], "Bo");
        assert_eq!(group_json(&group, "h")["members"][0]["type"], "User");
        let answered = group_json(&group, "https://hub/scim/v2");
        assert_eq!(
            answered["members"][1]["$ref"],
            "https://hub/scim/v2/Users/u2"
        );
        assert!(group_record("g", &json!({"members": []}), T, T, 1).is_err());
        assert!(group_record("g", &json!({"displayName": "x", "members": [{}]}), T, T, 1).is_err());
    }
}
