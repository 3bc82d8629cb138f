//! The vault's contents: entries addressed `ORG/APP`, each a set of named fields with their
//! timestamps and past values. This is what the encrypted payload holds (see docs/FORMAT.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Missing, Result};
use crate::secret::SecretString;
use crate::vault::field_map::FieldMap;
use crate::vault::fields;
use crate::vault::name::{EntryName, check_field_name};

/// Default number of past values kept per field.
pub const DEFAULT_HISTORY_LIMIT: u32 = 5;
/// Largest accepted history limit.
pub const MAX_HISTORY_LIMIT: u32 = 100;

pub use crate::timefmt::Timestamp;

/// The whole decrypted vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultData {
    /// Vault-wide settings.
    pub settings: Settings,
    /// Entries by `ORG/APP` address, sorted (decoded only from strictly ascending keys).
    #[serde(deserialize_with = "strictly_ascending")]
    pub entries: BTreeMap<String, Entry>,
}

/// Vault-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// How many past values each field keeps.
    pub history_limit: u32,
}

/// One connected app in one org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the entry was created.
    pub created_at: Timestamp,
    /// Fields by name, sorted.
    pub fields: FieldMap,
}

/// One named value with its history. Its `Clone` duplicates the secret values explicitly.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The current value.
    pub value: SecretString,
    /// Whether the value is masked in output and refused from argv.
    pub secret: bool,
    /// When the field was last set (even to the same value).
    pub set_at: Timestamp,
    /// When the value last changed.
    pub changed_at: Timestamp,
    /// When a flow or hand-off last read it, if ever.
    pub used_at: Option<Timestamp>,
    /// Past values, oldest first, at most `Settings::history_limit`.
    pub history: Vec<PastValue>,
}

/// A value the field held before. Its `Clone` duplicates the value explicitly.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastValue {
    /// The old value.
    pub value: SecretString,
    /// When it became the field's value.
    pub changed_at: Timestamp,
    /// When it was replaced.
    pub replaced_at: Timestamp,
}

impl Clone for Field {
    fn clone(&self) -> Field {
        Field {
            value: self.value.duplicate(),
            secret: self.secret,
            set_at: self.set_at,
            changed_at: self.changed_at,
            used_at: self.used_at,
            history: self.history.clone(),
        }
    }
}

impl Clone for PastValue {
    fn clone(&self) -> PastValue {
        PastValue {
            value: self.value.duplicate(),
            changed_at: self.changed_at,
            replaced_at: self.replaced_at,
        }
    }
}

/// What `set_field` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetOutcome {
    /// The field did not exist.
    Created,
    /// The value changed; the old one went to history.
    Changed,
    /// Same value as before; only `set_at` moved.
    Unchanged,
}

impl Entry {
    /// A copy with every secret value (current and past) replaced by an empty string: what
    /// `list` and a non-revealing `show` may see.
    pub fn masked(&self) -> Entry {
        let mut copy = self.clone();
        for field in copy.fields.values_mut().filter(|f| f.secret) {
            field.value = SecretString::default();
            for past in &mut field.history {
                past.value = SecretString::default();
            }
        }
        copy
    }

    /// A copy for a reader: secret values only if `reveal`, past values only if `history`
    /// (past entries stay, with empty values, so their count and dates are still there).
    pub fn view(&self, reveal: bool, history: bool) -> Entry {
        let mut copy = if reveal { self.clone() } else { self.masked() };
        if !history {
            for past in copy.fields.values_mut().flat_map(|f| f.history.iter_mut()) {
                past.value = SecretString::default();
            }
        }
        copy
    }
}

impl Default for VaultData {
    fn default() -> Self {
        VaultData {
            settings: Settings {
                history_limit: DEFAULT_HISTORY_LIMIT,
            },
            entries: BTreeMap::new(),
        }
    }
}

impl VaultData {
    /// The entry at `name`, or a not-found error naming it.
    pub fn entry(&self, name: &EntryName) -> Result<&Entry> {
        self.entries
            .get(&name.to_string())
            .ok_or_else(|| entry_not_found(name))
    }

    /// One field of an entry, or a not-found error naming both.
    pub fn field(&self, name: &EntryName, field: &str) -> Result<&Field> {
        self.entry(name)?.fields.get(field).ok_or_else(|| {
            Error::no_field(
                name,
                field,
                format!("{name} has no field {field}; `sfvault show {name}` lists its fields"),
            )
        })
    }

    /// The entry at `name`, to change it, or a not-found error naming it.
    fn entry_mut(&mut self, name: &EntryName) -> Result<&mut Entry> {
        self.entries
            .get_mut(&name.to_string())
            .ok_or_else(|| entry_not_found(name))
    }

    /// Create an empty entry; an existing one is an error, never overwritten.
    pub fn add_entry(&mut self, name: &EntryName, now: Timestamp) -> Result<&mut Entry> {
        let key = name.to_string();
        if self.entries.contains_key(&key) {
            return Err(Error::failed(format!(
                "{name} already exists; change it with `sfvault set {name} FIELD`"
            )));
        }
        Ok(self.entries.entry(key).or_insert(Entry {
            created_at: now,
            fields: FieldMap::default(),
        }))
    }

    /// Set a field (validated), keeping the previous value in history.
    pub fn set_field(
        &mut self,
        name: &EntryName,
        field: &str,
        value: SecretString,
        secret: bool,
        now: Timestamp,
    ) -> Result<SetOutcome> {
        check_field_name(field)?;
        fields::check_value(field, &value)?;
        self.put_field(name, field, value, secret, now)
    }

    /// Set a field without checking its value (a restore of what was once accepted: checks may
    /// have grown stricter since), keeping the previous value in history.
    fn put_field(
        &mut self,
        name: &EntryName,
        field: &str,
        value: SecretString,
        secret: bool,
        now: Timestamp,
    ) -> Result<SetOutcome> {
        if !secret && !fields::may_be_public(field) {
            return Err(Error::Usage(format!("{field} is always secret")));
        }
        let limit = self.settings.history_limit as usize;
        let entry = self.entry_mut(name)?;
        let Some(existing) = entry.fields.get_mut(field) else {
            entry.fields.insert(
                field.to_owned(),
                Field {
                    value,
                    secret,
                    set_at: now,
                    changed_at: now,
                    used_at: None,
                    history: Vec::new(),
                },
            );
            return Ok(SetOutcome::Created);
        };
        existing.set_at = now;
        existing.secret = secret;
        if existing.value == value {
            return Ok(SetOutcome::Unchanged);
        }
        let old = std::mem::replace(&mut existing.value, value);
        existing.history.push(PastValue {
            value: old,
            changed_at: existing.changed_at,
            replaced_at: now,
        });
        let excess = existing.history.len().saturating_sub(limit);
        existing.history.drain(..excess);
        existing.changed_at = now;
        Ok(SetOutcome::Changed)
    }

    /// Make past value `n` (1 = the most recently replaced) current again; the current value
    /// goes to history like any change.
    pub fn restore_field(
        &mut self,
        name: &EntryName,
        field: &str,
        n: usize,
        now: Timestamp,
    ) -> Result<SetOutcome> {
        let f = self.field(name, field)?;
        let len = f.history.len();
        if n == 0 || n > len {
            return Err(Error::NotFound {
                missing: Missing::PastValue {
                    entry: name.to_string(),
                    field: field.to_owned(),
                    count: len,
                },
                message: format!(
                    "{name} {field} has {len} past value(s); `sfvault history {name} {field}` lists them"
                ),
            });
        }
        let value = f.history[len - n].value.duplicate();
        let secret = f.secret;
        self.put_field(name, field, value, secret, now)
    }

    /// Record that fields were used by a flow or a hand-off.
    pub fn mark_used(&mut self, name: &EntryName, fields: &[String], now: Timestamp) -> Result<()> {
        let entry = self.entry_mut(name)?;
        for f in fields {
            if let Some(field) = entry.fields.get_mut(f) {
                field.used_at = Some(now);
            }
        }
        Ok(())
    }

    /// Change how many past values each field keeps (trimming longer histories now).
    pub fn set_history_limit(&mut self, limit: u32) -> Result<()> {
        if limit > MAX_HISTORY_LIMIT {
            return Err(Error::Usage(format!(
                "the history limit is at most {MAX_HISTORY_LIMIT}"
            )));
        }
        self.settings.history_limit = limit;
        for entry in self.entries.values_mut() {
            for field in entry.fields.values_mut() {
                let excess = field.history.len().saturating_sub(limit as usize);
                field.history.drain(..excess);
            }
        }
        Ok(())
    }

    /// Write computed fields (the token cache) without history: old tokens are not worth
    /// keeping. Values are checked like any known field's.
    pub fn set_computed(
        &mut self,
        name: &EntryName,
        values: Vec<(String, SecretString)>,
        now: Timestamp,
    ) -> Result<()> {
        let entry = self.entry_mut(name)?;
        for (field, value) in values {
            check_field_name(&field)?;
            fields::check_known_value(&field, &value)?;
            let secret = fields::secret_by_default(&field);
            entry.fields.insert(
                field,
                Field {
                    value,
                    secret,
                    set_at: now,
                    changed_at: now,
                    used_at: None,
                    history: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// Remove fields by name (missing ones are ignored); returns how many were removed.
    pub fn remove_fields(&mut self, name: &EntryName, names: &[&str]) -> Result<usize> {
        let entry = self.entry_mut(name)?;
        Ok(names
            .iter()
            .filter(|f| entry.fields.remove(f).is_some())
            .count())
    }

    /// Remove an entry and everything in it.
    pub fn remove_entry(&mut self, name: &EntryName) -> Result<Entry> {
        self.entries
            .remove(&name.to_string())
            .ok_or_else(|| entry_not_found(name))
    }

    /// Rename an entry; the target must not exist.
    pub fn rename_entry(&mut self, from: &EntryName, to: &EntryName) -> Result<()> {
        // A missing source is the first thing to report (exit 3), whatever the target.
        self.entry(from)?;
        if self.entries.contains_key(&to.to_string()) {
            return Err(Error::failed(format!(
                "{to} already exists; remove it first or pick another name"
            )));
        }
        let entry = self.remove_entry(from)?;
        self.entries.insert(to.to_string(), entry);
        Ok(())
    }

    /// Check the invariants the types cannot express, on data decoded from a file: every address
    /// and field name valid, histories within the limit, flows and URLs of known fields sane.
    /// Returns a description of the first problem.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        if self.settings.history_limit > MAX_HISTORY_LIMIT {
            return Err(format!(
                "history limit {} exceeds {MAX_HISTORY_LIMIT}",
                self.settings.history_limit
            ));
        }
        for (key, entry) in &self.entries {
            let name = EntryName::parse(key).map_err(|_| "an entry has an invalid address")?;
            if name.to_string() != *key {
                return Err("an entry address is not in canonical form".into());
            }
            for (field, value) in &entry.fields {
                check_field_name(field).map_err(|_| format!("{key} has an invalid field name"))?;
                if value.history.len() > MAX_HISTORY_LIMIT as usize {
                    return Err(format!("{key} {field} has too long a history"));
                }
                if !value.secret && !fields::may_be_public(field) {
                    return Err(format!("{key} {field} is marked public but must be secret"));
                }
            }
        }
        Ok(())
    }
}

/// Decode a map whose keys must be strictly ascending, as FORMAT.md specifies: an unsorted or
/// repeated key is an error, not silently reordered or dropped (a `BTreeMap` would let the last
/// of two equal keys win).
fn strictly_ascending<'de, D, V>(
    deserializer: D,
) -> std::result::Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Strict<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Strict<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map with strictly ascending keys")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut access: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((key, value)) = access.next_entry::<String, V>()? {
                if map
                    .last_key_value()
                    .is_some_and(|(last, _): (&String, _)| *last >= key)
                {
                    return Err(serde::de::Error::custom(
                        "entry addresses are not in strictly ascending order (unsorted or repeated)",
                    ));
                }
                map.insert(key, value);
            }
            Ok(map)
        }
    }
    deserializer.deserialize_map(Strict(std::marker::PhantomData))
}

fn entry_not_found(name: &EntryName) -> Error {
    Error::no_entry(name)
}

/// The current time as a Unix timestamp in seconds.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn name(s: &str) -> EntryName {
        EntryName::parse(s).unwrap()
    }

    fn val(s: &str) -> SecretString {
        SecretString::new(s.into())
    }

    /// `acme/ci` whose consumer_secret was set to s0 … s6 at times 0 … 6 (history limit 5).
    fn secret_set_seven_times() -> (VaultData, EntryName) {
        let mut v = VaultData::default();
        let n = name("acme/ci");
        v.add_entry(&n, 0).unwrap();
        for i in 0..7 {
            v.set_field(&n, "consumer_secret", val(&format!("s{i}")), true, i)
                .unwrap();
        }
        (v, n)
    }

    #[test]
    fn history_keeps_last_values_in_order() {
        let (v, n) = secret_set_seven_times();
        let f = v.field(&n, "consumer_secret").unwrap();
        assert_eq!(f.value.expose(), "s6");
        let past: Vec<_> = f.history.iter().map(|p| p.value.expose()).collect();
        assert_eq!(past, ["s1", "s2", "s3", "s4", "s5"]);
        assert_eq!(f.history[0].changed_at, 1);
        assert_eq!(f.history[0].replaced_at, 2);
    }

    #[test]
    fn unchanged_value_keeps_history_empty() {
        let mut v = VaultData::default();
        let n = name("acme/ci");
        v.add_entry(&n, 0).unwrap();
        assert_eq!(
            v.set_field(&n, "username", val("u@x"), false, 1).unwrap(),
            SetOutcome::Created
        );
        assert_eq!(
            v.set_field(&n, "username", val("u@x"), false, 5).unwrap(),
            SetOutcome::Unchanged
        );
        let f = v.field(&n, "username").unwrap();
        assert_eq!((f.set_at, f.changed_at, f.history.len()), (5, 1, 0));
    }

    #[test]
    fn add_rename_remove() {
        let mut v = VaultData::default();
        let (a, b) = (name("acme/ci"), name("acme/backup"));
        v.add_entry(&a, 0).unwrap();
        assert!(v.add_entry(&a, 0).is_err());
        v.rename_entry(&a, &b).unwrap();
        assert_eq!(v.entry(&a).unwrap_err().kind(), ErrorKind::NotFound);
        // The source is gone and the target exists: "not found" comes first.
        assert_eq!(
            v.rename_entry(&a, &b).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        v.add_entry(&a, 0).unwrap();
        assert_eq!(
            v.rename_entry(&a, &b).unwrap_err().kind(),
            ErrorKind::Failed
        );
        v.remove_entry(&a).unwrap();
        v.remove_entry(&b).unwrap();
        assert!(v.entries.is_empty());
    }

    #[test]
    fn restore_brings_back_a_value_that_todays_checks_would_refuse() {
        // Stored under older, looser checks: restoring it must not be blocked by newer ones.
        let mut v = VaultData::default();
        let n = name("acme/ci");
        v.add_entry(&n, 0).unwrap();
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        v.set_field(&n, "private_key", val(key), true, 1).unwrap();
        let old =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
        assert!(v.set_field(&n, "private_key", val(old), true, 2).is_err());
        v.entry_mut(&n)
            .unwrap()
            .fields
            .get_mut("private_key")
            .unwrap()
            .history
            .push(PastValue {
                value: val(old),
                changed_at: 0,
                replaced_at: 1,
            });
        v.restore_field(&n, "private_key", 1, 3).unwrap();
        assert_eq!(v.field(&n, "private_key").unwrap().value.expose(), old);
    }

    #[test]
    fn restore_brings_back_the_nth_most_recent_past_value() {
        let (mut v, n) = secret_set_seven_times();
        // history: s1..s5 (oldest first); 1 = s5, 2 = s4
        v.restore_field(&n, "consumer_secret", 2, 100).unwrap();
        assert_eq!(v.field(&n, "consumer_secret").unwrap().value.expose(), "s4");
        assert!(v.restore_field(&n, "consumer_secret", 6, 101).is_err());
        v.set_history_limit(2).unwrap();
        assert_eq!(v.field(&n, "consumer_secret").unwrap().history.len(), 2);
    }

    #[test]
    fn private_key_cannot_be_public() {
        let mut v = VaultData::default();
        let n = name("acme/ci");
        v.add_entry(&n, 0).unwrap();
        let pem = val("-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----");
        assert!(v.set_field(&n, "private_key", pem, false, 0).is_err());
    }
}
