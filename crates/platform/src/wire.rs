//! Reading a platform's JSON into typed structs without becoming stricter than the platform is,
//! for every module alike.
//!
//! The structs a module's readers fill declare the fields the hub reads, each `Option` or
//! defaulted, and ignore every other field. Where one unreadable part of a delivery or an
//! answer (an item of a list, an oddly typed optional field) is to be passed over, [`Lenient`]
//! and the helpers here pass it over, instead of failing the whole of it. serde offers no such
//! attribute of its own, hence these few lines.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A value read if it can be, `None` if it cannot: never an error.
#[derive(Debug)]
pub struct Lenient<T>(pub Option<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Lenient(T::deserialize(value).ok()))
    }
}

/// For `#[serde(default, deserialize_with = "lenient")]`: a field that is absent, null or
/// unreadable reads as `None`.
pub fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Lenient::deserialize(deserializer).map(|read| read.0)
}

/// For `#[serde(default, deserialize_with = "items")]`: the readable items of a list; an
/// absent, null or non-list field reads as no items.
pub fn items<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    listed(deserializer).map(Option::unwrap_or_default)
}

/// The readable items of a list, `None` when the field is not a list at all.
pub fn listed<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error> {
    let list: Option<Vec<Lenient<T>>> = lenient(deserializer)?;
    Ok(list.map(|items| items.into_iter().filter_map(|item| item.0).collect()))
}

/// For `#[serde(default, deserialize_with = "present")]` on an `Option`: `None` only when the
/// field is absent, so that a field sent as null can be told from one not sent.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Listing {
        #[serde(default, deserialize_with = "items")]
        names: Vec<String>,
        #[serde(default, deserialize_with = "lenient")]
        count: Option<u32>,
        #[serde(default, deserialize_with = "present")]
        note: Option<Lenient<String>>,
    }

    #[test]
    fn unreadable_parts_are_passed_over() {
        let read = |value| serde_json::from_value::<Listing>(value).unwrap();
        let listing = read(json!({"names": ["a", 1, null, "b"], "count": "x", "more": {}}));
        assert_eq!(listing.names, ["a", "b"]);
        assert_eq!(listing.count, None);
        assert!(listing.note.is_none());
        assert!(read(json!({"names": null})).names.is_empty());
        assert!(read(json!({"names": "a"})).names.is_empty());
        assert_eq!(read(json!({"count": 3})).count, Some(3));
        assert!(matches!(
            read(json!({"note": null})).note,
            Some(Lenient(None))
        ));
    }
}
