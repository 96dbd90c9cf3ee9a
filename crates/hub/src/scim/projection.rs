//! Which attributes an answer carries (RFC 7644 §3.4.2.5, §3.9): `attributes` names the only
//! ones returned, `excludedAttributes` those left out; `id` and `schemas` are always returned.
//! A name is an attribute, a sub-attribute (`name.givenName`), either qualified by its schema
//! (`urn:…:core:2.0:User:userName`), or an extension's attribute (`urn:…:enterprise:2.0:User:
//! department`).

use serde_json::{Map, Value};

use super::resources::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// Always returned, whatever is asked.
const ALWAYS: [&str; 2] = ["id", "schemas"];

/// An attribute named in a request: the resource's key, and a sub-attribute of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    key: String,
    sub: Option<String>,
}

fn named(text: &str) -> Option<Named> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let unqualified = [USER_SCHEMA, GROUP_SCHEMA].iter().find_map(|schema| {
        lower
            .starts_with(&format!("{}:", schema.to_ascii_lowercase()))
            .then(|| &text[schema.len() + 1..])
    });
    if let Some(path) = unqualified {
        return plain(path);
    }
    // An extension's attribute follows its schema and a colon; the schema alone names all of
    // it. Any other URN is taken whole, as the key it would be in the resource.
    let extension = ENTERPRISE_USER_SCHEMA;
    if lower.starts_with(&format!("{}:", extension.to_ascii_lowercase())) {
        return Some(Named {
            key: extension.to_owned(),
            sub: Some(text[extension.len() + 1..].to_owned()),
        });
    }
    if lower.starts_with("urn:") {
        return Some(Named {
            key: text.to_owned(),
            sub: None,
        });
    }
    plain(text)
}

fn plain(path: &str) -> Option<Named> {
    let (key, sub) = match path.split_once('.') {
        Some((key, sub)) => (key, Some(sub.to_owned())),
        None => (path, None),
    };
    (!key.is_empty()).then(|| Named {
        key: key.to_owned(),
        sub,
    })
}

fn list(text: Option<&str>) -> Vec<Named> {
    text.into_iter()
        .flat_map(|text| text.split(','))
        .filter_map(named)
        .collect()
}

/// What a request asked of the answer's attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    only: Vec<Named>,
    excluded: Vec<Named>,
}

/// Keeps (`keep` true) or drops the sub-attributes `subs` of an attribute's value: an object,
/// or a list of objects.
fn filter_subs(value: &mut Value, subs: &[&str], keep: bool) {
    let apply = |object: &mut Map<String, Value>| {
        object.retain(|key, _| subs.iter().any(|sub| key.eq_ignore_ascii_case(sub)) == keep);
    };
    match value {
        Value::Object(object) => apply(object),
        Value::Array(items) => {
            for item in items {
                if let Value::Object(object) = item {
                    apply(object);
                }
            }
        }
        _ => {}
    }
}

impl Projection {
    /// From the comma-separated lists of a query (`attributes`, `excludedAttributes`).
    pub fn of(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        Self {
            only: list(attributes),
            excluded: list(excluded),
        }
    }

    /// From the lists of a search request's body.
    pub fn of_lists(attributes: &[String], excluded: &[String]) -> Self {
        Self {
            only: attributes.iter().filter_map(|a| named(a)).collect(),
            excluded: excluded.iter().filter_map(|a| named(a)).collect(),
        }
    }

    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(mut object) = resource else {
            return resource;
        };
        let always = |key: &str| ALWAYS.iter().any(|name| key.eq_ignore_ascii_case(name));
        let naming = |list: &[Named], key: &str| -> Vec<Named> {
            list.iter()
                .filter(|named| named.key.eq_ignore_ascii_case(key))
                .cloned()
                .collect()
        };
        if !self.only.is_empty() {
            let keys: Vec<String> = object.keys().cloned().collect();
            for key in keys {
                if always(&key) {
                    continue;
                }
                let asked = naming(&self.only, &key);
                if asked.is_empty() {
                    object.remove(&key);
                } else if asked.iter().all(|named| named.sub.is_some())
                    && let Some(value) = object.get_mut(&key)
                {
                    let subs: Vec<&str> = asked.iter().filter_map(|n| n.sub.as_deref()).collect();
                    filter_subs(value, &subs, true);
                }
            }
        }
        let keys: Vec<String> = object.keys().cloned().collect();
        for key in keys {
            if always(&key) {
                continue;
            }
            let excluded = naming(&self.excluded, &key);
            if excluded.iter().any(|named| named.sub.is_none()) {
                object.remove(&key);
            } else if !excluded.is_empty()
                && let Some(value) = object.get_mut(&key)
            {
                let subs: Vec<&str> = excluded.iter().filter_map(|n| n.sub.as_deref()).collect();
                filter_subs(value, &subs, false);
            }
        }
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "id": "u1",
            "userName": "ann",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"value": "ann@acme.example", "type": "work"}],
            "active": true,
            ENTERPRISE: {"department": "Sales", "division": "West"},
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn only_the_attributes_asked_for_are_returned_with_id_and_schemas() {
        let only = Projection::of(Some("userName, name.givenName"), None).apply(user());
        assert_eq!(
            only,
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE],
                "id": "u1",
                "userName": "ann",
                "name": {"givenName": "Ann"}
            })
        );
        let qualified = Projection::of(
            Some(&format!(
                "{USER_SCHEMA}:emails.value,{ENTERPRISE}:department"
            )),
            None,
        )
        .apply(user());
        assert_eq!(qualified["emails"], json!([{"value": "ann@acme.example"}]));
        assert_eq!(qualified[ENTERPRISE], json!({"department": "Sales"}));
        assert!(qualified.get("userName").is_none());
    }

    #[test]
    fn excluded_attributes_are_left_out_but_never_id() {
        let rest = Projection::of(None, Some("emails,name.familyName,id,Meta")).apply(user());
        assert!(rest.get("emails").is_none() && rest.get("meta").is_none());
        assert_eq!(rest["name"], json!({"givenName": "Ann"}));
        assert_eq!(rest["id"], "u1");
        let extension = Projection::of(None, Some(ENTERPRISE)).apply(user());
        assert!(extension.get(ENTERPRISE).is_none());
        assert_eq!(Projection::default().apply(user()), user());
    }
}
