//! SCIM PATCH (RFC 7644 §3.5.2): applying a `PatchOp` request to a user or group held as JSON.
//!
//! Entra ID and Okta change users and groups almost only through PATCH, each in its own
//! dialect: Entra capitalises its ops ("Replace"), sends booleans as strings ("False"), adds an
//! e-mail through a value path (`emails[type eq "work"].value`) whether or not the user has one
//! and removes group members by listing them in `value`; Okta writes its ops in lower case,
//! deactivates with a path-less `{"active": false}` and echoes a group's `id` when renaming it.
//! Both dialects are read here into one set of rules, with the RFC's answers where it has them.
//!
//! The request is atomic, as §3.5.2 requires: the operations are applied to a copy, which
//! replaces the resource only if every one of them succeeded.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{
    AttributePath, CORE_GROUP_SCHEMA, CORE_USER_SCHEMA, ValueFilter, parse_attribute_path,
};

/// The schema URI that marks a request body as a PATCH.
const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The enterprise User extension (RFC 7643 §4.3), which Entra writes `department`,
/// `employeeNumber` and `manager` to.
const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Which resource is patched: the attributes each may have differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

/// Applies a `PatchOp` request to `resource`, a JSON object, or leaves it unchanged and says why.
pub fn apply(resource: &mut Value, request: &Value, kind: ResourceKind) -> Result<(), ScimError> {
    let operations = operations(request)?;
    let mut patched = resource.clone();
    let root = patched
        .as_object_mut()
        .ok_or_else(|| ScimError::invalid_value("the resource to patch is not a JSON object"))?;
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(root, operation, kind).map_err(|error| ScimError {
            detail: format!("Operations[{index}]: {}", error.detail),
            ..error
        })?;
    }
    *resource = patched;
    Ok(())
}

fn operations(request: &Value) -> Result<&Vec<Value>, ScimError> {
    let is_patch_op = member(request, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| {
            schemas
                .iter()
                .any(|schema| is_text(schema, PATCH_OP_SCHEMA))
        });
    if !is_patch_op {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH request must list {PATCH_OP_SCHEMA} in its schemas"
        )));
    }
    member(request, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH request needs an Operations array"))
}

/// How `add` and `replace` differ: on a multi-valued attribute, `add` adds to the values and
/// `replace` replaces them; on a value selected by a filter, `add` merges into it and `replace`
/// replaces it. Elsewhere they agree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Add,
    Replace,
}

fn apply_operation(
    root: &mut Map<String, Value>,
    operation: &Value,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    let op = member(operation, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ScimError::invalid_syntax("each operation needs an op: add, replace or remove")
        })?;
    let write = if op.eq_ignore_ascii_case("add") {
        Some(Write::Add)
    } else if op.eq_ignore_ascii_case("replace") {
        Some(Write::Replace)
    } else if op.eq_ignore_ascii_case("remove") {
        None
    } else {
        return Err(ScimError::invalid_syntax(format!(
            "unknown op `{op}`: SCIM PATCH knows add, replace and remove"
        )));
    };
    let path = match member(operation, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) => Some(parse_path(path)?),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "path must be a string, not {other}"
            )));
        }
    };
    let value = member(operation, "value");
    let Some(write) = write else {
        let path = path
            .ok_or_else(|| ScimError::no_target("remove needs a path that names what to remove"))?;
        return remove(root, &path, value.filter(|value| !value.is_null()), kind);
    };
    let value = value.ok_or_else(|| ScimError::invalid_value(format!("{op} needs a value")))?;
    match path {
        Some(path) => write_path(root, &path, value, write, kind),
        // Without a path the value holds the attributes, each keyed by its own path.
        None => {
            let Value::Object(attributes) = value else {
                return Err(ScimError::invalid_value(format!(
                    "{op} without a path needs an object of attributes as its value, not {value}"
                )));
            };
            for (key, value) in attributes {
                write_path(root, &parse_path(key)?, value, write, kind)?;
            }
            Ok(())
        }
    }
}

fn parse_path(text: &str) -> Result<AttributePath<'_>, ScimError> {
    parse_attribute_path(text.trim())
        .map_err(|problem| ScimError::invalid_path(format!("path `{text}`: {problem}")))
}

/// Where a path's attributes are kept: core attributes at the top of the resource, an
/// extension's in an object under its schema URI (RFC 7643 §3.3).
#[derive(Clone, PartialEq, Eq)]
enum Container {
    Core,
    Extension(String),
}

/// What a path names: one attribute (maybe a part of it), or a whole schema's attributes, as in
/// `{"urn:…:enterprise:2.0:User": {"department": "Sales"}}`.
enum Location {
    Attribute(Container),
    Schema(Container),
}

fn locate(
    root: &Map<String, Value>,
    path: &AttributePath<'_>,
    kind: ResourceKind,
) -> Result<Location, ScimError> {
    let Some(schema) = path.schema else {
        return Ok(Location::Attribute(Container::Core));
    };
    // "…:enterprise:2.0:User" parses as the attribute `User` of "…:enterprise:2.0"; only the
    // schemas known here or declared by the resource tell it from an attribute.
    if path.value_filter.is_none() && path.sub_attribute.is_none() {
        let whole = format!("{schema}:{}", path.name);
        let known = [CORE_USER_SCHEMA, CORE_GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA];
        let declared = find(root, "schemas").and_then(Value::as_array);
        if known.iter().any(|known| known.eq_ignore_ascii_case(&whole))
            || declared
                .is_some_and(|declared| declared.iter().any(|schema| is_text(schema, &whole)))
        {
            return container(&whole, kind).map(Location::Schema);
        }
    }
    container(schema, kind).map(Location::Attribute)
}

fn container(schema: &str, kind: ResourceKind) -> Result<Container, ScimError> {
    let (own, other) = match kind {
        ResourceKind::User => (CORE_USER_SCHEMA, CORE_GROUP_SCHEMA),
        ResourceKind::Group => (CORE_GROUP_SCHEMA, CORE_USER_SCHEMA),
    };
    if schema.eq_ignore_ascii_case(own) {
        Ok(Container::Core)
    } else if schema.eq_ignore_ascii_case(other) {
        Err(ScimError::invalid_path(format!(
            "{schema} is not the schema of this resource"
        )))
    } else {
        Ok(Container::Extension(schema.to_owned()))
    }
}

fn write_path(
    root: &mut Map<String, Value>,
    path: &AttributePath<'_>,
    value: &Value,
    write: Write,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    match locate(root, path, kind)? {
        Location::Attribute(container) => {
            write_attribute(root, &container, path, value, write, kind)
        }
        Location::Schema(container) => {
            let Value::Object(attributes) = value else {
                return Err(ScimError::invalid_value(format!(
                    "a schema's value must be an object of its attributes, not {value}"
                )));
            };
            for (key, value) in attributes {
                let path = parse_path(key)?;
                if path.schema.is_some() {
                    return Err(ScimError::invalid_path(format!(
                        "`{key}` is qualified inside a schema's attributes"
                    )));
                }
                write_attribute(root, &container, &path, value, write, kind)?;
            }
            Ok(())
        }
    }
}

fn write_attribute(
    root: &mut Map<String, Value>,
    container: &Container,
    path: &AttributePath<'_>,
    value: &Value,
    write: Write,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    refuse_protected(root, container, path, Some(value), kind)?;
    let value = checked_value(container, path, value, kind)?;
    let attributes = container_mut(root, container)?;
    let name = path.name;
    match (&path.value_filter, path.sub_attribute) {
        (None, None) => write_whole(attributes, name, value, write),
        (None, Some(sub_attribute)) => {
            let slot = slot(attributes, name);
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            match slot {
                Value::Object(fields) => set(fields, sub_attribute, value),
                Value::Array(_) => return Err(multi_valued_without_filter(name, sub_attribute)),
                _ => {
                    return Err(ScimError::invalid_path(format!(
                        "{name} has no sub-attributes"
                    )));
                }
            }
        }
        (Some(filter), sub_attribute) => {
            write_selected(attributes, name, filter, sub_attribute, value, write)?;
        }
    }
    prune(attributes, name);
    Ok(())
}

/// Refuses changes to what the service provider owns (`id`, `meta`) and to what a resource of
/// this kind does not have or cannot change itself.
fn refuse_protected(
    root: &Map<String, Value>,
    container: &Container,
    path: &AttributePath<'_>,
    new_value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    if *container != Container::Core {
        return Ok(());
    }
    let name = path.name;
    if name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("meta") {
        // Okta repeats a group's id in the value when it renames the group; that changes nothing.
        let unchanged = names_whole(container, path, name)
            && new_value.is_some_and(|new_value| find(root, name) == Some(new_value));
        if unchanged {
            return Ok(());
        }
        return Err(ScimError::mutability(format!(
            "{name} is set by the service provider and cannot be changed"
        )));
    }
    match kind {
        ResourceKind::User if name.eq_ignore_ascii_case("members") => Err(ScimError::invalid_path(
            "members is an attribute of groups; a user joins a group through a PATCH of the group",
        )),
        // RFC 7643 §4.1.2: a user's groups are read-only, derived from the groups' members.
        ResourceKind::User if name.eq_ignore_ascii_case("groups") => Err(ScimError::mutability(
            "groups is read-only; a user joins a group through a PATCH of the group's members",
        )),
        _ => Ok(()),
    }
}

/// The value to store, after the checks and conversions its attribute needs.
fn checked_value(
    container: &Container,
    path: &AttributePath<'_>,
    value: &Value,
    kind: ResourceKind,
) -> Result<Value, ScimError> {
    if names_whole(container, path, "active") {
        // Entra sends "True" and "False" as strings.
        return match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(ScimError::invalid_value(format!(
                "active must be true or false, not {value}"
            ))),
        };
    }
    if kind == ResourceKind::Group && names_whole(container, path, "members") {
        check_members(value)?;
    }
    Ok(value.clone())
}

/// Whether `path` names the whole of the core attribute `name`, not a part or some values of it.
fn names_whole(container: &Container, path: &AttributePath<'_>, name: &str) -> bool {
    *container == Container::Core
        && path.value_filter.is_none()
        && path.sub_attribute.is_none()
        && path.name.eq_ignore_ascii_case(name)
}

/// A group's members are references: each must say whom with a `value`, the member's id.
fn check_members(value: &Value) -> Result<(), ScimError> {
    match values_in(value)
        .iter()
        .find(|listed| !member(listed, "value").is_some_and(Value::is_string))
    {
        Some(listed) => Err(ScimError::invalid_value(format!(
            "each member needs a value, the id of the user or group, which {listed} lacks"
        ))),
        None => Ok(()),
    }
}

/// The object that holds the path's attribute; an extension's is created, and its schema
/// declared in `schemas` (RFC 7643 §3), when it gets its first attribute.
fn container_mut<'r>(
    root: &'r mut Map<String, Value>,
    container: &Container,
) -> Result<&'r mut Map<String, Value>, ScimError> {
    let Container::Extension(schema) = container else {
        return Ok(root);
    };
    if let Some(Value::Array(schemas)) = find_mut(root, "schemas")
        && !schemas.iter().any(|declared| is_text(declared, schema))
    {
        schemas.push(Value::from(schema.as_str()));
    }
    let slot = slot(root, schema);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(attributes) => Ok(attributes),
        _ => Err(ScimError::invalid_path(format!(
            "the resource holds no attributes under {schema}"
        ))),
    }
}

fn write_whole(attributes: &mut Map<String, Value>, name: &str, value: Value, write: Write) {
    match (find_mut(attributes, name), value) {
        (Some(Value::Array(values)), added) if write == Write::Add && !added.is_null() => {
            add_values(values, values_in(&added));
        }
        // RFC 7644 §3.5.2.1 and §3.5.2.3: a complex attribute's sub-attributes are set one by one,
        // and those the value leaves out are kept.
        (Some(Value::Object(fields)), Value::Object(new_fields)) => merge(fields, new_fields),
        (_, value) => set(attributes, name, value),
    }
}

/// Adds values to a multi-valued attribute. A value that is already there, by its `value` (a
/// member's id, an address), is updated rather than repeated: SCIM's multi-valued attributes are
/// sets, and identity providers re-add members they are unsure of.
fn add_values(values: &mut Vec<Value>, added: &[Value]) {
    for value in added {
        match (
            values.iter_mut().find(|present| same_value(present, value)),
            value,
        ) {
            (Some(Value::Object(fields)), Value::Object(new_fields)) => {
                merge(fields, new_fields.clone());
            }
            (Some(_), _) => {}
            (None, value) => values.push(value.clone()),
        }
    }
}

/// Writes the values a filter selects, as in `emails[type eq "work"].value`. When none is
/// selected one is created with the filter's attribute, since Entra adds an e-mail this way
/// whether or not the user has one of that type yet.
fn write_selected(
    attributes: &mut Map<String, Value>,
    name: &str,
    filter: &ValueFilter<'_>,
    sub_attribute: Option<&str>,
    value: Value,
    write: Write,
) -> Result<(), ScimError> {
    let change = match (sub_attribute, value) {
        (Some(sub_attribute), value) => Change::SubAttribute(sub_attribute, value),
        (None, Value::Object(fields)) => Change::Fields(fields),
        (None, value) => {
            return Err(ScimError::invalid_value(format!(
                "a path that selects whole values of {name} takes an object, not {value}"
            )));
        }
    };
    let slot = slot(attributes, name);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(values) = slot else {
        return Err(not_multi_valued(name));
    };
    let mut selected_any = false;
    for fields in values
        .iter_mut()
        .filter(|element| selects(filter, element))
        .filter_map(Value::as_object_mut)
    {
        selected_any = true;
        match &change {
            Change::SubAttribute(sub_attribute, value) => set(fields, sub_attribute, value.clone()),
            Change::Fields(new_fields) if write == Write::Add => merge(fields, new_fields.clone()),
            Change::Fields(replacement) => fields.clone_from(replacement),
        }
    }
    let unassigns = matches!(change, Change::SubAttribute(_, Value::Null));
    if !selected_any && !unassigns {
        let mut fields = Map::new();
        fields.insert(
            filter.attribute.to_owned(),
            Value::from(filter.value.as_str()),
        );
        match change {
            Change::SubAttribute(sub_attribute, value) => set(&mut fields, sub_attribute, value),
            Change::Fields(new_fields) => merge(&mut fields, new_fields),
        }
        // A user's only e-mail address is their primary one; the hub matches people by it.
        if values.is_empty()
            && name.eq_ignore_ascii_case("emails")
            && find(&fields, "primary").is_none()
        {
            fields.insert("primary".to_owned(), Value::Bool(true));
        }
        values.push(Value::Object(fields));
    }
    Ok(())
}

/// What a write does to each value a filter selects.
enum Change<'p> {
    /// Sets one sub-attribute, as `emails[type eq "work"].value` does.
    SubAttribute(&'p str, Value),
    /// Merges into (`add`) or replaces (`replace`) the whole value: `emails[type eq "work"]`.
    Fields(Map<String, Value>),
}

/// Removes what `path` names. Removing what is not there succeeds: identity providers retry
/// requests whose answer they missed, and the outcome they asked for holds.
fn remove(
    root: &mut Map<String, Value>,
    path: &AttributePath<'_>,
    value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    let container = match locate(root, path, kind)? {
        Location::Attribute(container) => container,
        Location::Schema(Container::Extension(schema)) => {
            remove_key(root, &schema);
            return Ok(());
        }
        Location::Schema(Container::Core) => {
            return Err(ScimError::invalid_path(
                "remove needs an attribute, not the resource's core schema",
            ));
        }
    };
    refuse_protected(root, &container, path, None, kind)?;
    if let Some(value) = value
        && kind == ResourceKind::Group
        && names_whole(&container, path, "members")
    {
        check_members(value)?;
    }
    let attributes = match container {
        Container::Core => root,
        Container::Extension(schema) => match find_mut(root, &schema) {
            Some(Value::Object(attributes)) => attributes,
            _ => return Ok(()),
        },
    };
    let name = path.name;
    match (
        &path.value_filter,
        path.sub_attribute,
        find_mut(attributes, name),
    ) {
        (_, _, None) => {}
        // Entra removes group members by listing them:
        // {"op": "Remove", "path": "members", "value": [{"value": "id"}]}.
        (None, None, Some(Value::Array(values))) if let Some(value) = value => {
            let removed = values_in(value);
            values.retain(|present| !removed.iter().any(|removed| same_value(present, removed)));
        }
        (None, None, Some(_)) => remove_key(attributes, name),
        (None, Some(sub_attribute), Some(Value::Object(fields))) => {
            remove_key(fields, sub_attribute);
        }
        (None, Some(sub_attribute), Some(Value::Array(_))) => {
            return Err(multi_valued_without_filter(name, sub_attribute));
        }
        (None, Some(_), Some(_)) => {
            return Err(ScimError::invalid_path(format!(
                "{name} has no sub-attributes"
            )));
        }
        (Some(filter), None, Some(Value::Array(values))) => {
            values.retain(|element| !selects(filter, element));
        }
        (Some(filter), Some(sub_attribute), Some(Value::Array(values))) => {
            for fields in values
                .iter_mut()
                .filter(|element| selects(filter, element))
                .filter_map(Value::as_object_mut)
            {
                remove_key(fields, sub_attribute);
            }
        }
        (Some(_), _, Some(_)) => return Err(not_multi_valued(name)),
    }
    prune(attributes, name);
    Ok(())
}

fn multi_valued_without_filter(name: &str, sub_attribute: &str) -> ScimError {
    ScimError::invalid_path(format!(
        "{name} is multi-valued: select values with a filter, as in \
         {name}[type eq \"work\"].{sub_attribute}"
    ))
}

fn not_multi_valued(name: &str) -> ScimError {
    ScimError::invalid_path(format!(
        "{name} is not multi-valued, so a filter cannot select its values"
    ))
}

/// Whether a value path's filter selects this value of a multi-valued attribute. The attributes
/// filtered on (`type`, an address, a member's id) are not case-exact in RFC 7643.
fn selects(filter: &ValueFilter<'_>, element: &Value) -> bool {
    member(element, filter.attribute)
        .and_then(Value::as_str)
        .is_some_and(|text| same_text(text, &filter.value))
}

/// Whether two values of a multi-valued attribute are the same one: the same `value` when both
/// have one, otherwise equal.
fn same_value(a: &Value, b: &Value) -> bool {
    let key = |value| member(value, "value").and_then(Value::as_str);
    match (key(a), key(b)) {
        (Some(a), Some(b)) => same_text(a, b),
        _ => a == b,
    }
}

fn same_text(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

fn is_text(value: &Value, text: &str) -> bool {
    value
        .as_str()
        .is_some_and(|value| value.eq_ignore_ascii_case(text))
}

/// An unassigned attribute is left out rather than kept empty: RFC 7643 §2.5 counts an empty
/// array or object the same as none.
fn prune(attributes: &mut Map<String, Value>, name: &str) {
    let empty = match find(attributes, name) {
        Some(Value::Array(values)) => values.is_empty(),
        Some(Value::Object(fields)) => fields.is_empty(),
        _ => false,
    };
    if empty {
        remove_key(attributes, name);
    }
}

fn merge(fields: &mut Map<String, Value>, new_fields: Map<String, Value>) {
    for (name, value) in new_fields {
        set(fields, &name, value);
    }
}

// Attribute names are case-insensitive (RFC 7643 §2.1), so every lookup below ignores case, and
// a write to an attribute the resource spells differently keeps the resource's spelling rather
// than adding a second key.

/// The key under which `attributes` holds `name`, whatever its case.
fn key_of(attributes: &Map<String, Value>, name: &str) -> Option<String> {
    attributes
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
}

fn find<'m>(attributes: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    attributes
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn find_mut<'m>(attributes: &'m mut Map<String, Value>, name: &str) -> Option<&'m mut Value> {
    attributes
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The member `name` of a JSON object, whatever its case; none if `value` is not an object.
fn member<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    value.as_object().and_then(|fields| find(fields, name))
}

/// The values a multi-valued attribute's value lists: an array's elements, or a lone value.
fn values_in(value: &Value) -> &[Value] {
    match value {
        Value::Array(values) => values,
        value => std::slice::from_ref(value),
    }
}

/// The place `name` is kept in `attributes`, holding null if it was not there.
fn slot<'m>(attributes: &'m mut Map<String, Value>, name: &str) -> &'m mut Value {
    let key = key_of(attributes, name).unwrap_or_else(|| name.to_owned());
    attributes.entry(key).or_insert(Value::Null)
}

/// Sets `name`; a null value unassigns it (RFC 7643 §2.5).
fn set(attributes: &mut Map<String, Value>, name: &str, value: Value) {
    match value {
        Value::Null => remove_key(attributes, name),
        value => *slot(attributes, name) = value,
    }
}

fn remove_key(attributes: &mut Map<String, Value>, name: &str) {
    if let Some(key) = key_of(attributes, name) {
        attributes.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const USER: ResourceKind = ResourceKind::User;
    const GROUP: ResourceKind = ResourceKind::Group;

    fn request(operations: &Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
    }

    /// Applies `operations` to `resource` and compares the result with `expected`.
    fn check(kind: ResourceKind, resource: Value, operations: Value, expected: Value) {
        let mut patched = resource;
        apply(&mut patched, &request(&operations), kind)
            .unwrap_or_else(|error| panic!("{operations}: {error}"));
        assert_eq!(patched, expected, "{operations}");
    }

    /// Checks that `operation` is refused with `scim_type` and a detail containing `problem`,
    /// leaving the resource as it was.
    fn check_refused(
        kind: ResourceKind,
        resource: Value,
        operation: Value,
        (scim_type, problem): (&str, &str),
    ) {
        let mut patched = resource.clone();
        let error = apply(&mut patched, &request(&json!([operation])), kind)
            .expect_err(&operation.to_string());
        assert_eq!(error.status, 400, "{operation}: {error}");
        assert_eq!(error.scim_type, Some(scim_type), "{operation}: {error}");
        assert!(error.detail.contains(problem), "{operation}: {error}");
        assert_eq!(patched, resource, "a refused request changes nothing");
    }

    fn user() -> Value {
        json!({
            "schemas": [CORE_USER_SCHEMA],
            "id": "u-1",
            "userName": "ada@example.com",
            "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "meta": {"resourceType": "User"},
        })
    }

    fn group(members: Value) -> Value {
        json!({
            "schemas": [CORE_GROUP_SCHEMA],
            "id": "g-1",
            "displayName": "Sales",
            "members": members,
        })
    }

    fn group_without_members() -> Value {
        with(group(json!(null)), json!({"members": null}))
    }

    /// `resource` with the attributes of `changes` set, or removed where they are null.
    fn with(mut resource: Value, changes: Value) -> Value {
        let attributes = resource.as_object_mut().expect("a resource is an object");
        for (name, value) in changes.as_object().expect("changes are an object") {
            match value {
                Value::Null => attributes.remove(name),
                value => attributes.insert(name.clone(), value.clone()),
            };
        }
        resource
    }

    #[test]
    fn entra_deactivates_with_a_string_boolean() {
        check(
            USER,
            user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            with(user(), json!({"active": false})),
        );
        check(
            USER,
            with(user(), json!({"active": false})),
            json!([{"op": "Replace", "path": "active", "value": "TRUE"}]),
            user(),
        );
    }

    #[test]
    fn entra_replaces_without_a_path() {
        check(
            USER,
            user(),
            json!([{"op": "Replace", "value": {"active": false}}]),
            with(user(), json!({"active": false})),
        );
    }

    #[test]
    fn entra_adds_a_work_email_the_user_lacks() {
        check(
            USER,
            with(user(), json!({"emails": null})),
            json!([{
                "op": "Add",
                "path": "emails[type eq \"work\"].value",
                "value": "ada@example.org",
            }]),
            with(
                user(),
                json!({"emails": [{"type": "work", "value": "ada@example.org", "primary": true}]}),
            ),
        );
    }

    #[test]
    fn entra_changes_the_work_email_the_user_has() {
        check(
            USER,
            user(),
            json!([{
                "op": "Replace",
                "path": "emails[type eq \"Work\"].value",
                "value": "ada@example.org",
            }]),
            with(
                user(),
                json!({"emails": [{"value": "ada@example.org", "type": "work", "primary": true}]}),
            ),
        );
    }

    #[test]
    fn a_second_email_is_not_made_primary() {
        check(
            USER,
            user(),
            json!([{
                "op": "Add",
                "path": "emails[type eq \"home\"].value",
                "value": "ada@home.example",
            }]),
            with(
                user(),
                json!({"emails": [
                    {"value": "ada@example.com", "type": "work", "primary": true},
                    {"value": "ada@home.example", "type": "home"},
                ]}),
            ),
        );
    }

    #[test]
    fn entra_replaces_a_sub_attribute_of_name() {
        check(
            USER,
            user(),
            json!([{"op": "Replace", "path": "name.givenName", "value": "Augusta"}]),
            with(
                user(),
                json!({"name": {"givenName": "Augusta", "familyName": "Lovelace"}}),
            ),
        );
        check(
            USER,
            with(user(), json!({"name": null})),
            json!([{"op": "Add", "path": "name.familyName", "value": "King"}]),
            with(user(), json!({"name": {"familyName": "King"}})),
        );
    }

    #[test]
    fn entra_adds_and_removes_members_by_value() {
        check(
            GROUP,
            group(json!([{"value": "u-1"}])),
            json!([{
                "op": "Add",
                "path": "members",
                "value": [{"value": "u-2"}, {"value": "u-1", "display": "Ada"}],
            }]),
            group(json!([{"value": "u-1", "display": "Ada"}, {"value": "u-2"}])),
        );
        check(
            GROUP,
            group(json!([{"value": "u-1"}, {"value": "u-2"}])),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "U-1"}]}]),
            group(json!([{"value": "u-2"}])),
        );
    }

    #[test]
    fn entra_sends_several_operations_including_the_enterprise_extension() {
        check(
            USER,
            user(),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Ada King"},
                {"op": "Add", "path": "title", "value": "Analyst"},
                {
                    "op": "Add",
                    "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                    "value": "Engines",
                },
                {
                    "op": "Replace",
                    "path": "phoneNumbers[type eq \"mobile\"].value",
                    "value": "+44 20 7946 0000",
                },
                {
                    "op": "Replace",
                    "path": "addresses[type eq \"work\"].streetAddress",
                    "value": "12 St James's Square",
                },
            ]),
            with(
                user(),
                json!({
                    "schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                    "displayName": "Ada King",
                    "title": "Analyst",
                    ENTERPRISE_USER_SCHEMA: {"department": "Engines"},
                    "phoneNumbers": [{"type": "mobile", "value": "+44 20 7946 0000"}],
                    "addresses": [{"type": "work", "streetAddress": "12 St James's Square"}],
                }),
            ),
        );
    }

    #[test]
    fn attribute_names_ignore_case_and_keep_the_resource_spelling() {
        check(
            USER,
            user(),
            json!([
                {"op": "replace", "path": "USERNAME", "value": "ada@example.org"},
                {"op": "replace", "path": "Name.GivenName", "value": "Augusta"},
            ]),
            with(
                user(),
                json!({
                    "userName": "ada@example.org",
                    "name": {"givenName": "Augusta", "familyName": "Lovelace"},
                }),
            ),
        );
    }

    #[test]
    fn paths_may_be_qualified_by_the_core_schema() {
        check(
            USER,
            user(),
            json!([{
                "op": "replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
                "value": "Augusta",
            }]),
            with(
                user(),
                json!({"name": {"givenName": "Augusta", "familyName": "Lovelace"}}),
            ),
        );
    }

    #[test]
    fn okta_deactivates_without_a_path() {
        check(
            USER,
            user(),
            json!([{"op": "replace", "value": {"active": false}}]),
            with(user(), json!({"active": false})),
        );
    }

    #[test]
    fn okta_renames_a_group_repeating_its_id() {
        let renamed = with(
            group(json!([{"value": "u-1"}])),
            json!({"displayName": "Sales EMEA"}),
        );
        check(
            GROUP,
            group(json!([{"value": "u-1"}])),
            json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Sales EMEA"}}]),
            renamed.clone(),
        );
        check(
            GROUP,
            group(json!([{"value": "u-1"}])),
            json!([{"op": "replace", "path": "displayName", "value": "Sales EMEA"}]),
            renamed,
        );
    }

    #[test]
    fn okta_adds_members_and_removes_one_by_filter() {
        check(
            GROUP,
            group_without_members(),
            json!([{
                "op": "add",
                "path": "members",
                "value": [{"value": "u-1", "display": "ada@example.com"}],
            }]),
            group(json!([{"value": "u-1", "display": "ada@example.com"}])),
        );
        check(
            GROUP,
            group(json!([{"value": "u-1"}, {"value": "u-2"}])),
            json!([{"op": "remove", "path": "members[value eq \"u-1\"]"}]),
            group(json!([{"value": "u-2"}])),
        );
    }

    #[test]
    fn replacing_members_sets_the_list_and_removing_them_clears_it() {
        check(
            GROUP,
            group(json!([{"value": "u-1"}, {"value": "u-2"}])),
            json!([{"op": "replace", "path": "members", "value": [{"value": "u-3"}]}]),
            group(json!([{"value": "u-3"}])),
        );
        check(
            GROUP,
            group(json!([{"value": "u-1"}, {"value": "u-2"}])),
            json!([{"op": "remove", "path": "members"}]),
            group_without_members(),
        );
    }

    #[test]
    fn removing_the_last_member_leaves_members_unassigned() {
        check(
            GROUP,
            group(json!([{"value": "u-1"}])),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u-1"}]}]),
            group_without_members(),
        );
    }

    #[test]
    fn removing_what_is_not_there_succeeds() {
        check(
            GROUP,
            group(json!([{"value": "u-1"}])),
            json!([
                {"op": "remove", "path": "members[value eq \"u-9\"]"},
                {"op": "Remove", "path": "members", "value": [{"value": "u-9"}]},
                {
                    "op": "remove",
                    "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                },
            ]),
            group(json!([{"value": "u-1"}])),
        );
        check(
            USER,
            user(),
            json!([{"op": "remove", "path": "nickName"}]),
            user(),
        );
    }

    #[test]
    fn a_value_path_removes_whole_values_or_one_sub_attribute() {
        let two_emails = with(
            user(),
            json!({"emails": [
                {"value": "ada@example.com", "type": "work", "primary": true},
                {"value": "ada@home.example", "type": "home"},
            ]}),
        );
        check(
            USER,
            two_emails.clone(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
            with(
                user(),
                json!({"emails": [{"value": "ada@home.example", "type": "home"}]}),
            ),
        );
        check(
            USER,
            two_emails,
            json!([{"op": "remove", "path": "emails[type eq \"home\"].value"}]),
            with(
                user(),
                json!({"emails": [
                    {"value": "ada@example.com", "type": "work", "primary": true},
                    {"type": "home"},
                ]}),
            ),
        );
    }

    #[test]
    fn a_value_path_without_a_sub_attribute_merges_on_add_and_replaces_on_replace() {
        check(
            USER,
            user(),
            json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": {"display": "Ada"}}]),
            with(
                user(),
                json!({"emails": [
                    {"value": "ada@example.com", "type": "work", "primary": true, "display": "Ada"},
                ]}),
            ),
        );
        check(
            USER,
            user(),
            json!([{
                "op": "replace",
                "path": "emails[type eq \"work\"]",
                "value": {"value": "a@b.c", "type": "work"},
            }]),
            with(
                user(),
                json!({"emails": [{"value": "a@b.c", "type": "work"}]}),
            ),
        );
    }

    #[test]
    fn without_a_path_keys_are_paths_and_schemas_hold_their_attributes() {
        check(
            USER,
            user(),
            json!([{"op": "Add", "value": {
                "name.givenName": "Augusta",
                "emails[type eq \"work\"].value": "ada@example.org",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1815",
                ENTERPRISE_USER_SCHEMA: {"department": "Engines", "manager": {"value": "u-0"}},
            }}]),
            with(
                user(),
                json!({
                    "schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                    "name": {"givenName": "Augusta", "familyName": "Lovelace"},
                    "emails": [{"value": "ada@example.org", "type": "work", "primary": true}],
                    ENTERPRISE_USER_SCHEMA: {
                        "employeeNumber": "1815",
                        "department": "Engines",
                        "manager": {"value": "u-0"},
                    },
                }),
            ),
        );
    }

    #[test]
    fn a_complex_attribute_is_merged_and_null_unassigns() {
        check(
            USER,
            user(),
            json!([{
                "op": "replace",
                "path": "name",
                "value": {"formatted": "Ada Lovelace", "familyName": null},
            }]),
            with(
                user(),
                json!({"name": {"givenName": "Ada", "formatted": "Ada Lovelace"}}),
            ),
        );
        check(
            USER,
            user(),
            json!([{"op": "replace", "value": {"name": {"givenName": null, "familyName": null}}}]),
            with(user(), json!({"name": null})),
        );
    }

    #[test]
    fn a_whole_extension_can_be_removed() {
        let schemas = json!({"schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA]});
        check(
            USER,
            with(
                with(user(), schemas.clone()),
                json!({ENTERPRISE_USER_SCHEMA: {"department": "Engines"}}),
            ),
            json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
            with(user(), schemas),
        );
    }

    #[test]
    fn the_request_must_be_a_patch_op() {
        let operations = json!([{"op": "replace", "path": "active", "value": false}]);
        for (request, problem) in [
            (json!({"Operations": operations}), "must list"),
            (
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": operations,
                }),
                "must list",
            ),
            (
                json!({"schemas": [PATCH_OP_SCHEMA]}),
                "needs an Operations array",
            ),
            (
                json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}),
                "needs an Operations array",
            ),
        ] {
            let mut resource = user();
            let error = apply(&mut resource, &request, USER).expect_err(&request.to_string());
            assert_eq!(error.scim_type, Some("invalidSyntax"), "{request}");
            assert!(error.detail.contains(problem), "{request}: {error}");
        }
    }

    #[test]
    fn unknown_or_missing_ops_are_refused() {
        for (operation, problem) in [
            (
                json!({"op": "move", "path": "title", "value": "x"}),
                "unknown op `move`",
            ),
            (json!({"path": "title", "value": "x"}), "needs an op"),
        ] {
            check_refused(USER, user(), operation, ("invalidSyntax", problem));
        }
    }

    #[test]
    fn what_the_service_provider_owns_cannot_change() {
        for (operation, problem) in [
            (
                json!({"op": "replace", "path": "id", "value": "u-2"}),
                "id is set",
            ),
            (
                json!({"op": "replace", "value": {"id": "u-2"}}),
                "id is set",
            ),
            (json!({"op": "remove", "path": "id"}), "id is set"),
            (
                json!({"op": "add", "path": "meta.version", "value": "W/\"2\""}),
                "meta is set",
            ),
            (
                json!({"op": "add", "path": "groups", "value": [{"value": "g-1"}]}),
                "groups is read-only",
            ),
        ] {
            check_refused(USER, user(), operation, ("mutability", problem));
        }
    }

    #[test]
    fn members_belong_to_groups() {
        check_refused(
            USER,
            user(),
            json!({"op": "add", "path": "members", "value": [{"value": "u-2"}]}),
            ("invalidPath", "members is an attribute of groups"),
        );
        check_refused(
            USER,
            user(),
            json!({
                "op": "add",
                "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
                "value": "x",
            }),
            ("invalidPath", "is not the schema of this resource"),
        );
    }

    #[test]
    fn members_must_name_whom() {
        for operation in [
            json!({"op": "add", "path": "members", "value": [{"display": "Ada"}]}),
            json!({"op": "add", "path": "members", "value": ["u-1"]}),
            json!({"op": "replace", "value": {"members": [{"value": 7}]}}),
            json!({"op": "remove", "path": "members", "value": [{"value": 7}]}),
        ] {
            check_refused(
                GROUP,
                group(json!([{"value": "u-1"}])),
                operation,
                ("invalidValue", "each member needs a value"),
            );
        }
    }

    #[test]
    fn active_must_be_a_boolean() {
        for operation in [
            json!({"op": "Replace", "path": "active", "value": "yes"}),
            json!({"op": "replace", "value": {"active": 0}}),
        ] {
            check_refused(
                USER,
                user(),
                operation,
                ("invalidValue", "active must be true or false"),
            );
        }
    }

    #[test]
    fn values_of_the_wrong_shape_are_refused() {
        for (operation, problem) in [
            (
                json!({"op": "replace", "value": "x"}),
                "without a path needs an object",
            ),
            (json!({"op": "add", "path": "title"}), "add needs a value"),
            (
                json!({"op": "add", "path": "emails[type eq \"work\"]", "value": "a@b.c"}),
                "takes an object",
            ),
            (
                json!({"op": "add", "path": ENTERPRISE_USER_SCHEMA, "value": "x"}),
                "a schema's value must be an object",
            ),
        ] {
            check_refused(USER, user(), operation, ("invalidValue", problem));
        }
    }

    #[test]
    fn malformed_or_misdirected_paths_are_refused() {
        for (path, problem) in [
            (json!("emails[type eq \"work\""), "never closes its `[`"),
            (
                json!("emails[type co \"work\"].value"),
                "only `eq` can select",
            ),
            (json!("emails[type eq work].value"), "double-quoted"),
            (json!("emails[type eq \"work\"]value"), "expected `.`"),
            (json!("name..givenName"), "is not an attribute name"),
            (json!("1st"), "is not an attribute name"),
            (json!(""), "is not an attribute name"),
            (json!(7), "path must be a string"),
            (json!("emails.value"), "emails is multi-valued"),
            (json!("userName.first"), "userName has no sub-attributes"),
            (
                json!("userName[type eq \"work\"].value"),
                "userName is not multi-valued",
            ),
        ] {
            let operation = json!({"op": "replace", "path": path, "value": "x"});
            check_refused(USER, user(), operation, ("invalidPath", problem));
        }
        check_refused(
            USER,
            user(),
            json!({"op": "remove", "path": "emails.value"}),
            ("invalidPath", "emails is multi-valued"),
        );
        check_refused(
            USER,
            user(),
            json!({"op": "replace", "value": {"bad key": "x"}}),
            ("invalidPath", "`bad key`"),
        );
    }

    #[test]
    fn remove_needs_a_path() {
        for operation in [
            json!({"op": "remove"}),
            json!({"op": "Remove", "value": [{"value": "u-1"}]}),
        ] {
            check_refused(
                GROUP,
                group(json!([])),
                operation,
                ("noTarget", "remove needs a path"),
            );
        }
    }

    #[test]
    fn a_failing_operation_undoes_the_ones_before_it_and_is_named() {
        let mut resource = user();
        let operations = json!([
            {"op": "replace", "path": "title", "value": "Analyst"},
            {"op": "replace", "path": "id", "value": "u-2"},
        ]);
        let error = apply(&mut resource, &request(&operations), USER).expect_err("refused");
        assert!(error.detail.starts_with("Operations[1]: "), "{error}");
        assert_eq!(resource, user());
    }

    #[test]
    fn a_resource_that_is_not_an_object_is_refused() {
        let mut resource = json!([]);
        let error = apply(&mut resource, &request(&json!([])), USER).expect_err("refused");
        assert_eq!(error.scim_type, Some("invalidValue"));
    }
}
