//! A small sorted map of field names to fields, backed by one `Vec`.
//!
//! Entries hold a handful of fields, and a `BTreeMap` node (eleven slots) per entry wasted most
//! of its memory: at 100,000 entries the decoded vault was about 40% larger than this. It
//! serialises exactly as a `BTreeMap` does (a map in ascending key order), so the file format
//! is unchanged; unlike a `BTreeMap` it refuses to decode keys that are not strictly ascending.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::vault::model::Field;

/// Fields by name, in ascending name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    items: Vec<(String, Field)>,
}

impl FieldMap {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.items.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.find(name).ok().map(|i| &self.items[i].1)
    }

    /// The field called `name`, to change it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Field> {
        self.find(name).ok().map(|i| &mut self.items[i].1)
    }

    /// Whether a field called `name` exists.
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Insert or replace; returns the replaced field.
    pub fn insert(&mut self, name: String, field: Field) -> Option<Field> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, field)),
            Err(i) => {
                self.items.insert(i, (name, field));
                None
            }
        }
    }

    /// Remove the field called `name`.
    pub fn remove(&mut self, name: &str) -> Option<Field> {
        self.find(name).ok().map(|i| self.items.remove(i).1)
    }

    /// Name and field pairs, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Field)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    /// Names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.items.iter().map(|(k, _)| k)
    }

    /// Fields, in name order.
    pub fn values(&self) -> impl Iterator<Item = &Field> {
        self.items.iter().map(|(_, v)| v)
    }

    /// Fields, in name order, to change them.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Field> {
        self.items.iter_mut().map(|(_, v)| v)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<'a> IntoIterator for &'a FieldMap {
    type Item = (&'a String, &'a Field);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Field)>,
        fn(&'a (String, Field)) -> (&'a String, &'a Field),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for FieldMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.items.len()))?;
        for (k, v) in &self.items {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = FieldMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field names to fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<FieldMap, A::Error> {
                // The size hint comes from the (authenticated) file, but is still only a hint:
                // bincode's limit has already bounded it; cap the pre-allocation anyway.
                let mut items: Vec<(String, Field)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = access.next_entry::<String, Field>()? {
                    // FORMAT.md: keys strictly ascending. An unsorted or repeated name would
                    // otherwise be silently reordered or dropped (the last one winning).
                    if items.last().is_some_and(|(prev, _)| *prev >= k) {
                        return Err(serde::de::Error::custom(
                            "field names are not in strictly ascending order (unsorted or repeated)",
                        ));
                    }
                    items.push((k, v));
                }
                Ok(FieldMap { items })
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use crate::vault::format::{decode_part, encode_part};

    fn field(v: &str) -> Field {
        Field {
            value: SecretString::new(v.into()),
            secret: false,
            set_at: 0,
            changed_at: 0,
            used_at: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut m = FieldMap::default();
        for k in ["b", "a", "c"] {
            assert!(m.insert(k.into(), field(k)).is_none());
        }
        assert_eq!(
            m.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(
            m.insert("b".into(), field("b2")).unwrap().value.expose(),
            "b"
        );
        assert_eq!(m.get("b").unwrap().value.expose(), "b2");
        assert!(m.remove("a").is_some() && !m.contains_key("a") && m.len() == 2);
    }

    #[test]
    fn encodes_exactly_like_a_btreemap_and_refuses_non_canonical_input() {
        let mut m = FieldMap::default();
        let mut b = std::collections::BTreeMap::new();
        for k in ["zeta", "alpha", "mid"] {
            m.insert(k.into(), field(k));
            b.insert(k.to_owned(), field(k));
        }
        let (mb, bb) = (encode_part(&m), encode_part(&b));
        assert_eq!(mb, bb);
        let back: FieldMap = decode_part(&mb).unwrap();
        assert_eq!(back, m);
        // Unsorted, or with a repeated name: refused, never reordered or deduplicated.
        for keys in [["b", "a", "c"], ["a", "b", "b"], ["a", "a", "b"]] {
            let pairs: Vec<(String, Field)> =
                keys.iter().map(|k| ((*k).to_owned(), field(k))).collect();
            let err = decode_part::<FieldMap>(&encode_part(&pairs)).unwrap_err();
            assert!(err.contains("ascending"), "{keys:?}: {err}");
        }
    }
}
