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
/// Default number of days a removed entry is kept (see [`VaultData::removed`]).
pub const DEFAULT_REMOVED_DAYS: u32 = 30;
/// Largest accepted `removed_days` (ten years).
pub const MAX_REMOVED_DAYS: u32 = 3650;
/// Most removed copies kept under one name; a further removal drops the oldest.
pub const MAX_REMOVED_PER_NAME: usize = 5;
/// Most removed copies kept in the whole vault; a further removal drops the oldest.
pub const MAX_REMOVED_TOTAL: usize = 500;
/// Seconds in a day, for `removed_days`.
const DAY: i64 = 86_400;

pub use crate::timefmt::Timestamp;
use crate::vault::slice::Slice;

/// The whole decrypted vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultData {
    /// Vault-wide settings.
    pub settings: Settings,
    /// Entries by `ORG/APP` address, sorted (decoded only from strictly ascending keys).
    #[serde(deserialize_with = "strictly_ascending")]
    pub entries: BTreeMap<String, Entry>,
    /// Removed entries still kept (format version 3), by the address they had: each list holds
    /// at most [`MAX_REMOVED_PER_NAME`] copies, oldest removal first. Never read as entries:
    /// nothing that lists, resolves, exports or audits entries looks here.
    #[serde(deserialize_with = "strictly_ascending")]
    pub removed: BTreeMap<String, Vec<RemovedEntry>>,
    /// What a team vault (format version 4) adds: its identity and the keys it had. `None`
    /// for a vault that only ever had a passphrase (written as version 3). Encoded after the
    /// rest of the payload by src/vault/format.rs, not by this derive.
    #[serde(skip)]
    pub team: Option<TeamState>,
}

/// Most earlier data keys a team vault remembers (see [`TeamState::key_links`]).
pub const MAX_KEY_LINKS: usize = 16;

/// The part of a team vault's payload that lets a member's sfvault recognise its vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamState {
    /// Random at the vault's first save as version 4, kept for its life (merges included).
    /// Only those who can open the vault know it, so someone who can only push cannot make
    /// another vault that claims it.
    pub vault_id: [u8; 16],
    /// For each earlier data key (oldest first, at most [`MAX_KEY_LINKS`]), a value derived
    /// from it that only its holders could compute: a new data key is accepted by a member's
    /// machine that knew an earlier one only if it carries that key's link.
    pub key_links: Vec<[u8; 32]>,
    /// The slices this vault defines (src/vault/slice.rs), at most
    /// [`crate::vault::slice::MAX_SLICES`].
    pub slices: Vec<Slice>,
    /// In a slice: the identity of the team vault it was cut from. A slice is written only by
    /// `slice sync` there; where it is opened it is read-only.
    pub slice_of: Option<[u8; 16]>,
}

impl TeamState {
    /// A new team identity.
    pub fn new() -> TeamState {
        let mut vault_id = [0u8; 16];
        crate::vault::crypto::random_fill(&mut vault_id);
        TeamState {
            vault_id,
            key_links: Vec::new(),
            slices: Vec::new(),
            slice_of: None,
        }
    }

    /// Remember `link` (of the data key being replaced), dropping the oldest beyond the limit.
    pub fn push_link(&mut self, link: [u8; 32]) {
        push_key_link(&mut self.key_links, link);
    }
}

/// Append `link` to a list of key links (a team vault's or a slice's) unless it is there,
/// dropping the oldest beyond [`MAX_KEY_LINKS`].
pub fn push_key_link(links: &mut Vec<[u8; 32]>, link: [u8; 32]) {
    if !links.contains(&link) {
        links.push(link);
    }
    while links.len() > MAX_KEY_LINKS {
        links.remove(0);
    }
}

impl Default for TeamState {
    fn default() -> Self {
        TeamState::new()
    }
}

/// Vault-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// How many past values each field keeps.
    pub history_limit: u32,
    /// How many days a removed entry is kept before a save drops it (0: `rm` keeps nothing).
    pub removed_days: u32,
}

/// An entry that `rm` removed, kept (encrypted, like history) so `undelete` can bring it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedEntry {
    /// When it was removed.
    pub removed_at: Timestamp,
    /// The entry as it was, every field with its history.
    pub entry: Entry,
}

/// The payload of format versions 1 and 2: no removed entries, no `removed_days`. Read only,
/// through [`VaultData::from`]; written as version 3.
#[derive(Debug, Deserialize)]
pub struct VaultDataV2 {
    /// Settings of versions 1 and 2.
    settings: SettingsV2,
    /// Entries, as in version 3.
    #[serde(deserialize_with = "strictly_ascending")]
    entries: BTreeMap<String, Entry>,
}

/// The settings of format versions 1 and 2.
#[derive(Debug, Deserialize)]
struct SettingsV2 {
    history_limit: u32,
}

impl From<VaultDataV2> for VaultData {
    /// A version 1 or 2 payload as version 3: nothing removed, the default retention.
    fn from(old: VaultDataV2) -> VaultData {
        VaultData {
            settings: Settings {
                history_limit: old.settings.history_limit,
                removed_days: DEFAULT_REMOVED_DAYS,
            },
            entries: old.entries,
            removed: BTreeMap::new(),
            team: None,
        }
    }
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
                removed_days: DEFAULT_REMOVED_DAYS,
            },
            entries: BTreeMap::new(),
            removed: BTreeMap::new(),
            team: None,
        }
    }
}

impl VaultData {
    /// Whether this is a slice of a team vault (read-only; see src/vault/slice.rs).
    pub fn is_slice(&self) -> bool {
        self.team.as_ref().is_some_and(|t| t.slice_of.is_some())
    }

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
        self.refuse_case_twin(name, None)?;
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
        let removed = self.removed.values_mut().flatten().map(|r| &mut r.entry);
        for entry in self.entries.values_mut().chain(removed) {
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

    /// Remove an entry and everything in it, keeping nothing (see [`VaultData::discard_entry`]
    /// for `rm`, which keeps it for a while).
    pub fn remove_entry(&mut self, name: &EntryName) -> Result<Entry> {
        self.entries
            .remove(&name.to_string())
            .ok_or_else(|| entry_not_found(name))
    }

    /// `rm`: remove an entry, keeping it among the removed ones for `removed_days` (unless that
    /// is 0). Returns whether it was kept.
    pub fn discard_entry(&mut self, name: &EntryName, now: Timestamp) -> Result<bool> {
        let entry = self.remove_entry(name)?;
        if self.settings.removed_days == 0 {
            return Ok(false);
        }
        let copies = self.removed.entry(name.to_string()).or_default();
        // Copies stay oldest first (decoding refuses anything else) even when the clock went
        // back since the last removal under this name: this copy is the newest.
        let removed_at = copies.last().map_or(now, |last| last.removed_at.max(now));
        copies.push(RemovedEntry { removed_at, entry });
        self.expire_removed(now);
        Ok(true)
    }

    /// `rm --purge`: remove an entry and every removed copy of it for good. Returns how many
    /// copies went (the live one included); none at all is a not-found error.
    pub fn purge_entry(&mut self, name: &EntryName) -> Result<usize> {
        let key = name.to_string();
        let live = usize::from(self.entries.remove(&key).is_some());
        let kept = self.removed.remove(&key).map_or(0, |v| v.len());
        if live + kept == 0 {
            return Err(entry_not_found(name));
        }
        Ok(live + kept)
    }

    /// `undelete`: bring back the most recently removed copy of `name`, as `target` (its own
    /// name by default), with every field and its history. The target must be free, also
    /// ignoring case.
    pub fn undelete(
        &mut self,
        name: &EntryName,
        target: Option<&EntryName>,
        now: Timestamp,
    ) -> Result<&Entry> {
        self.expire_removed(now);
        let key = name.to_string();
        if !self.removed.contains_key(&key) {
            return Err(Error::NotFound {
                missing: Missing::Entry { entry: key },
                message: format!(
                    "nothing removed under {name} is kept; `sfvault list --removed` lists what \
                     can be brought back"
                ),
            });
        }
        let to = target.unwrap_or(name);
        if self.entries.contains_key(&to.to_string()) {
            return Err(Error::Usage(format!(
                "{to} exists; bring the removed one back under another name with \
                 `sfvault undelete {name} --as ORG/APP`"
            )));
        }
        self.refuse_case_twin(to, None).map_err(|e| match e {
            Error::Usage(m) => {
                Error::Usage(format!("{m} (or `sfvault undelete {name} --as ORG/APP`)"))
            }
            other => other,
        })?;
        let copies = self.removed.get_mut(&key).expect("checked above");
        let back = copies.pop().expect("removed lists are never empty");
        if copies.is_empty() {
            self.removed.remove(&key);
        }
        Ok(self.entries.entry(to.to_string()).or_insert(back.entry))
    }

    /// When a copy removed at `removed_at` is dropped (at the first save from then on).
    pub fn removed_until(&self, removed_at: Timestamp) -> Timestamp {
        removed_at.saturating_add(i64::from(self.settings.removed_days) * DAY)
    }

    /// Drop removed copies older than `removed_days` at `now`, then the oldest beyond
    /// [`MAX_REMOVED_PER_NAME`] per name and [`MAX_REMOVED_TOTAL`] in all. Every save does this.
    pub fn expire_removed(&mut self, now: Timestamp) {
        let days = self.settings.removed_days;
        for copies in self.removed.values_mut() {
            copies.retain(|r| days > 0 && r.removed_at.saturating_add(i64::from(days) * DAY) > now);
            let excess = copies.len().saturating_sub(MAX_REMOVED_PER_NAME);
            copies.drain(..excess);
        }
        self.removed.retain(|_, copies| !copies.is_empty());
        let mut total: usize = self.removed.values().map(Vec::len).sum();
        while total > MAX_REMOVED_TOTAL {
            // The oldest removal in the whole vault goes first.
            let oldest = self
                .removed
                .iter()
                .min_by_key(|(_, copies)| copies[0].removed_at)
                .map(|(k, _)| k.clone())
                .expect("total > 0");
            let copies = self.removed.get_mut(&oldest).expect("just found");
            copies.remove(0);
            if copies.is_empty() {
                self.removed.remove(&oldest);
            }
            total -= 1;
        }
    }

    /// The removed copies still kept at `now`, secret values masked: what `list --removed` may
    /// see.
    pub fn removed_view(&self, now: Timestamp) -> BTreeMap<String, Vec<RemovedEntry>> {
        let mut copy = BTreeMap::new();
        for (key, copies) in &self.removed {
            let kept: Vec<RemovedEntry> = copies
                .iter()
                .filter(|r| {
                    self.settings.removed_days > 0 && self.removed_until(r.removed_at) > now
                })
                .map(|r| RemovedEntry {
                    removed_at: r.removed_at,
                    entry: r.entry.masked(),
                })
                .collect();
            if !kept.is_empty() {
                copy.insert(key.clone(), kept);
            }
        }
        copy
    }

    /// Change how many days removed entries are kept (dropping those now older at `now`).
    pub fn set_removed_days(&mut self, days: u32, now: Timestamp) -> Result<()> {
        if days > MAX_REMOVED_DAYS {
            return Err(Error::Usage(format!(
                "removed-days is at most {MAX_REMOVED_DAYS}"
            )));
        }
        self.settings.removed_days = days;
        self.expire_removed(now);
        Ok(())
    }

    /// The live entry whose address equals `name` ignoring ASCII case but is not `name` (nor
    /// `except`, the entry being renamed), if any.
    pub fn case_twin(&self, name: &EntryName, except: Option<&EntryName>) -> Option<&str> {
        let key = name.to_string();
        let except = except.map(ToString::to_string);
        self.entries
            .keys()
            .find(|k| **k != key && Some(*k) != except.as_ref() && k.eq_ignore_ascii_case(&key))
            .map(String::as_str)
    }

    /// A usage error when `name` differs only by case from another live entry: two such names
    /// are one entry to a person, and to case-insensitive file systems and shells' completion.
    fn refuse_case_twin(&self, name: &EntryName, except: Option<&EntryName>) -> Result<()> {
        match self.case_twin(name, except) {
            Some(twin) => Err(Error::Usage(format!(
                "{name} differs only by case from the existing {twin}; use {twin}, or pick a name \
                 that differs by more than case"
            ))),
            None => Ok(()),
        }
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
        self.refuse_case_twin(to, Some(from))?;
        let entry = self.remove_entry(from)?;
        self.entries.insert(to.to_string(), entry);
        if let Some(team) = &mut self.team {
            crate::vault::slice::rename_entry(team, &from.to_string(), &to.to_string());
        }
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
        if self.settings.removed_days > MAX_REMOVED_DAYS {
            return Err(format!(
                "removed_days {} exceeds {MAX_REMOVED_DAYS}",
                self.settings.removed_days
            ));
        }
        for (key, entry) in &self.entries {
            check_entry(key, entry)?;
        }
        let mut total = 0;
        for (key, copies) in &self.removed {
            if copies.is_empty() || copies.len() > MAX_REMOVED_PER_NAME {
                return Err(format!(
                    "removed {key} has {} copies (1 to {MAX_REMOVED_PER_NAME})",
                    copies.len()
                ));
            }
            if copies.windows(2).any(|w| w[0].removed_at > w[1].removed_at) {
                return Err(format!("removed {key}: copies not oldest first"));
            }
            for copy in copies {
                check_entry(key, &copy.entry).map_err(|e| format!("removed: {e}"))?;
            }
            total += copies.len();
        }
        if total > MAX_REMOVED_TOTAL {
            return Err(format!(
                "{total} removed entries (at most {MAX_REMOVED_TOTAL})"
            ));
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

/// The checks of [`VaultData::check_invariants`] on one entry at `key` (live or removed).
fn check_entry(key: &str, entry: &Entry) -> std::result::Result<(), String> {
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
    Ok(())
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
    fn removed_copies_expire_and_are_capped() {
        let mut v = VaultData::default();
        let day = 86_400;
        // 30 days by default: kept at 29 days, gone at 30.
        let n = name("acme/ci");
        v.add_entry(&n, 0).unwrap();
        assert!(v.discard_entry(&n, 0).unwrap());
        v.expire_removed(29 * day);
        assert_eq!(v.removed_view(29 * day).len(), 1);
        assert!(v.removed_view(30 * day).is_empty());
        v.expire_removed(30 * day);
        assert!(v.removed.is_empty());
        // At most MAX_REMOVED_TOTAL in all: the oldest removals go first.
        for i in 0..(MAX_REMOVED_TOTAL as i64 + 3) {
            let n = name(&format!("acme/e{i}"));
            v.add_entry(&n, i).unwrap();
            v.discard_entry(&n, 100 * day + i).unwrap();
        }
        assert_eq!(
            v.removed.values().map(Vec::len).sum::<usize>(),
            MAX_REMOVED_TOTAL
        );
        assert!(!v.removed.contains_key("acme/e0") && !v.removed.contains_key("acme/e2"));
        assert!(v.removed.contains_key("acme/e3"));
        assert!(v.check_invariants().is_ok());
        // removed_days 0 keeps nothing, and drops what was kept.
        v.set_removed_days(0, 100 * day).unwrap();
        assert!(v.removed.is_empty());
        let n = name("acme/zero");
        v.add_entry(&n, 0).unwrap();
        assert!(!v.discard_entry(&n, 100 * day).unwrap());
        assert!(v.removed.is_empty());
    }

    #[test]
    fn case_twins_are_refused_on_creation_only() {
        let mut v = VaultData::default();
        v.add_entry(&name("ACME/ci"), 0).unwrap();
        let e = v.add_entry(&name("acme/CI"), 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("ACME/ci"));
        v.add_entry(&name("acme/other"), 0).unwrap();
        assert_eq!(
            v.rename_entry(&name("acme/other"), &name("Acme/Ci"))
                .unwrap_err()
                .kind(),
            ErrorKind::Usage
        );
        // Its own name in another case is no twin.
        v.rename_entry(&name("ACME/ci"), &name("acme/ci")).unwrap();
        // Pairs already in a vault pass its checks.
        v.entries
            .insert("ACME/CI".into(), v.entries["acme/ci"].clone());
        assert!(v.check_invariants().is_ok());
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
