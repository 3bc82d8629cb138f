//! Three-way merge of two versions of a vault's contents (git's merge driver, `sfvault merge`),
//! field by field, using each field's timestamps and history.
//!
//! Rules, for each entry and field, comparing each side with the common ancestor (`base`):
//! - changed on one side only: that side's (unless its value is *older* than the ancestor's,
//!   which no edit makes: a file put back, kept as a warning, not taken);
//! - changed on both sides to the same value: that value;
//! - changed on both sides to different values: the newer (`changed_at`) is current, the other
//!   goes into the field's history, and the field is reported as a conflict;
//! - added on one or both sides: kept (an entry added on both sides is merged field by field);
//! - removed on one side and untouched on the other: removed (moved to the removed entries, so
//!   `undelete` brings it back); removed on one side and changed on the other: kept, reported.
//!
//! Histories are the union of both sides' past values, oldest first, cut to the history limit.
//! Nothing here knows of files, keys or git.

use std::collections::{BTreeMap, BTreeSet};

use crate::vault::field_map::FieldMap;
use crate::vault::model::{
    Entry, Field, PastValue, RemovedEntry, Settings, TeamState, Timestamp, VaultData,
};
use crate::vault::slice::{MAX_SLICES, Slice};

/// Where a merge needs a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The field changed on both sides; `kept` says which side's value is current ("ours" or
    /// "theirs", the newer), the other is the field's newest past value.
    Field {
        /// `ORG/APP`
        entry: String,
        /// Field name.
        field: String,
        /// Which side's value is current.
        kept: &'static str,
    },
    /// The entry was removed on one side and changed on the other: kept.
    RemovedAndChanged {
        /// `ORG/APP`
        entry: String,
        /// The side that removed it.
        removed_by: &'static str,
    },
    /// A slice's definition changed on both sides (or was removed on one, changed on the
    /// other): `kept` says which side's definition stands ("ours" or "theirs"); "neither"
    /// when it was dropped because another kept slice writes the same file.
    Slice {
        /// The slice's name.
        name: String,
        /// Which side's definition stands.
        kept: &'static str,
    },
}

/// What a merge noticed without needing anyone: a side's value older than the ancestor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// `ORG/APP`
    pub entry: String,
    /// Field name.
    pub field: String,
    /// The side whose older value was not taken.
    pub side: &'static str,
}

/// The merged contents and what the user should hear about.
#[derive(Debug)]
pub struct Merged {
    /// The result.
    pub data: VaultData,
    /// Fields and entries that need a decision (git shows a conflict).
    pub conflicts: Vec<Conflict>,
    /// Older values that were not taken.
    pub ignored: Vec<Ignored>,
}

/// Merge `ours` and `theirs`, whose common ancestor is `base` (empty when they have none), at
/// time `now`.
pub fn merge(base: &VaultData, ours: &VaultData, theirs: &VaultData, now: Timestamp) -> Merged {
    let mut out = Merged {
        data: VaultData {
            settings: merge_settings(&base.settings, &ours.settings, &theirs.settings),
            entries: BTreeMap::new(),
            removed: merge_removed(&ours.removed, &theirs.removed),
            team: merge_team(ours.team.as_ref(), theirs.team.as_ref()),
        },
        conflicts: Vec::new(),
        ignored: Vec::new(),
    };
    if let (Some(team), Some(o), Some(t)) = (&mut out.data.team, &ours.team, &theirs.team) {
        let no_slices = Vec::new();
        let b = base.team.as_ref().map_or(&no_slices, |b| &b.slices);
        team.slices = merge_slices(b, &o.slices, &t.slices, &mut out.conflicts);
    }
    let limit = out.data.settings.history_limit as usize;
    let names: BTreeSet<&String> = ours.entries.keys().chain(theirs.entries.keys()).collect();
    for name in names {
        let b = base.entries.get(name);
        match (ours.entries.get(name), theirs.entries.get(name)) {
            (Some(o), Some(t)) => {
                let e = merge_entry(name, b, o, t, limit, now, &mut out);
                out.data.entries.insert(name.clone(), e);
            }
            (Some(kept), None) | (None, Some(kept)) => {
                let other = if ours.entries.contains_key(name) {
                    "theirs"
                } else {
                    "ours"
                };
                match b {
                    // Added on one side.
                    None => {
                        out.data.entries.insert(name.clone(), kept.clone());
                    }
                    // Removed on the other side, untouched here: removed.
                    Some(b) if b == kept => {
                        let copies = out.data.removed.entry(name.clone()).or_default();
                        if !copies.iter().any(|c| &c.entry == kept) {
                            copies.push(RemovedEntry {
                                removed_at: now,
                                entry: kept.clone(),
                            });
                        }
                    }
                    // Removed on the other side, changed here: kept, and said.
                    Some(_) => {
                        out.data.entries.insert(name.clone(), kept.clone());
                        out.conflicts.push(Conflict::RemovedAndChanged {
                            entry: name.clone(),
                            removed_by: other,
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

fn merge_settings(base: &Settings, ours: &Settings, theirs: &Settings) -> Settings {
    let pick = |b: u32, o: u32, t: u32| if o == b { t } else { o };
    Settings {
        history_limit: pick(base.history_limit, ours.history_limit, theirs.history_limit),
        removed_days: pick(base.removed_days, ours.removed_days, theirs.removed_days),
    }
}

fn merge_team(ours: Option<&TeamState>, theirs: Option<&TeamState>) -> Option<TeamState> {
    let mut team = ours.or(theirs)?.clone();
    if let (Some(_), Some(t)) = (ours, theirs) {
        for link in &t.key_links {
            team.push_link(*link);
        }
    }
    Some(team)
}

/// Slices by name: one side's change taken; changed on both sides, the newer definition
/// stands (a removal loses to a change) and a conflict says so. A slice whose file another
/// kept slice already uses is dropped, and said.
fn merge_slices(
    base: &[Slice],
    ours: &[Slice],
    theirs: &[Slice],
    conflicts: &mut Vec<Conflict>,
) -> Vec<Slice> {
    let find = |list: &[Slice], name: &str| list.iter().find(|s| s.name == name).cloned();
    let mut names: Vec<&str> = ours.iter().map(|s| s.name.as_str()).collect();
    for s in theirs {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let mut out: Vec<Slice> = Vec::new();
    for name in names {
        let (b, o, t) = (find(base, name), find(ours, name), find(theirs, name));
        let kept = if o == t || t == b {
            o
        } else if o == b {
            t
        } else {
            let (side, kept) = match (o, t) {
                (Some(o), Some(t)) if t.changed_at > o.changed_at => ("theirs", t),
                (Some(o), _) => ("ours", o),
                (None, Some(t)) => ("theirs", t),
                (None, None) => unreachable!("o == t handled above"),
            };
            conflicts.push(Conflict::Slice {
                name: name.to_owned(),
                kept: side,
            });
            Some(kept)
        };
        if let Some(slice) = kept {
            if out.iter().any(|s| s.file == slice.file) || out.len() >= MAX_SLICES {
                conflicts.push(Conflict::Slice {
                    name: name.to_owned(),
                    kept: "neither",
                });
            } else {
                out.push(slice);
            }
        }
    }
    out
}

fn merge_removed(
    ours: &BTreeMap<String, Vec<RemovedEntry>>,
    theirs: &BTreeMap<String, Vec<RemovedEntry>>,
) -> BTreeMap<String, Vec<RemovedEntry>> {
    let mut out = ours.clone();
    for (name, copies) in theirs {
        let list = out.entry(name.clone()).or_default();
        for c in copies {
            if !list.contains(c) {
                list.push(c.clone());
            }
        }
        list.sort_by_key(|c| c.removed_at);
    }
    out
}

fn merge_entry(
    name: &str,
    base: Option<&Entry>,
    ours: &Entry,
    theirs: &Entry,
    limit: usize,
    now: Timestamp,
    out: &mut Merged,
) -> Entry {
    let mut fields = FieldMap::default();
    let names: BTreeSet<&String> = ours.fields.keys().chain(theirs.fields.keys()).collect();
    for field in names {
        let b = base.and_then(|e| e.fields.get(field));
        let merged = match (ours.fields.get(field), theirs.fields.get(field)) {
            (Some(o), Some(t)) => Some(merge_field(name, field, b, o, t, limit, now, out)),
            (Some(kept), None) | (None, Some(kept)) => match b {
                Some(b) if same_value(b, kept) => None, // removed on the other side
                _ => Some(kept.clone()),
            },
            (None, None) => None,
        };
        if let Some(f) = merged {
            fields.insert(field.clone(), f);
        }
    }
    Entry {
        created_at: ours.created_at.min(theirs.created_at),
        fields,
    }
}

/// Same current value, set at the same moment: the same edit.
fn same_value(a: &Field, b: &Field) -> bool {
    a.value == b.value && a.changed_at == b.changed_at
}

#[allow(clippy::too_many_arguments)]
fn merge_field(
    entry: &str,
    name: &str,
    base: Option<&Field>,
    ours: &Field,
    theirs: &Field,
    limit: usize,
    now: Timestamp,
    out: &mut Merged,
) -> Field {
    let mut result = if same_value(ours, theirs) || ours.value == theirs.value {
        // The same value on both sides (perhaps set twice): the later record of it.
        if theirs.set_at > ours.set_at {
            theirs.clone()
        } else {
            ours.clone()
        }
    } else {
        let ours_changed = base.is_none_or(|b| !same_value(b, ours));
        let theirs_changed = base.is_none_or(|b| !same_value(b, theirs));
        let older_than_base = |f: &Field| base.is_some_and(|b| f.changed_at < b.changed_at);
        match (ours_changed, theirs_changed) {
            (false, true) if older_than_base(theirs) => {
                out.ignored.push(Ignored {
                    entry: entry.into(),
                    field: name.into(),
                    side: "theirs",
                });
                ours.clone()
            }
            (true, false) if older_than_base(ours) => {
                out.ignored.push(Ignored {
                    entry: entry.into(),
                    field: name.into(),
                    side: "ours",
                });
                theirs.clone()
            }
            (false, _) => theirs.clone(),
            (true, false) => ours.clone(),
            (true, true) => {
                let (kept, other, side) = if theirs.changed_at > ours.changed_at {
                    (theirs, ours, "theirs")
                } else {
                    (ours, theirs, "ours")
                };
                out.conflicts.push(Conflict::Field {
                    entry: entry.into(),
                    field: name.into(),
                    kept: side,
                });
                let mut f = kept.clone();
                f.history.push(PastValue {
                    value: other.value.duplicate(),
                    changed_at: other.changed_at,
                    replaced_at: now.max(kept.changed_at),
                });
                f
            }
        }
    };
    // Past values of both sides, oldest first, each once; never the current value's own record.
    let mut history: Vec<PastValue> = Vec::new();
    for p in ours
        .history
        .iter()
        .chain(&theirs.history)
        .chain(&result.history)
    {
        let is_current = p.value == result.value && p.changed_at == result.changed_at;
        if !is_current
            && !history
                .iter()
                .any(|h| h.value == p.value && h.changed_at == p.changed_at)
        {
            history.push(p.clone());
        }
    }
    history.sort_by_key(|p| (p.replaced_at, p.changed_at));
    if history.len() > limit {
        history.drain(..history.len() - limit);
    }
    result.history = history;
    result.used_at = ours.used_at.max(theirs.used_at);
    result.secret = ours.secret || theirs.secret;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use crate::vault::name::EntryName;

    fn s(v: &str) -> SecretString {
        SecretString::new(v.into())
    }

    fn base() -> VaultData {
        let mut v = VaultData::default();
        let n = EntryName::parse("acme/ci").unwrap();
        v.add_entry(&n, 10).unwrap();
        v.set_field(&n, "consumer_secret", s("s0"), true, 10)
            .unwrap();
        v.set_field(&n, "username", s("u0"), false, 10).unwrap();
        v
    }

    fn set(v: &mut VaultData, entry: &str, field: &str, value: &str, at: Timestamp) {
        let n = EntryName::parse(entry).unwrap();
        if !v.entries.contains_key(entry) {
            v.add_entry(&n, at).unwrap();
        }
        v.set_field(&n, field, s(value), field == "consumer_secret", at)
            .unwrap();
    }

    fn value(v: &VaultData, entry: &str, field: &str) -> String {
        v.entries[entry]
            .fields
            .get(field)
            .unwrap()
            .value
            .expose()
            .to_owned()
    }

    #[test]
    fn different_fields_and_entries_merge_cleanly() {
        let b = base();
        let mut o = b.clone();
        let mut t = b.clone();
        set(&mut o, "acme/ci", "username", "u1", 20);
        set(&mut t, "acme/ci", "consumer_secret", "s1", 21);
        set(&mut t, "acme/uat", "consumer_key", "k", 22);
        set(&mut o, "acme/dev", "consumer_key", "d", 23);
        let m = merge(&b, &o, &t, 30);
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert_eq!(value(&m.data, "acme/ci", "username"), "u1");
        assert_eq!(value(&m.data, "acme/ci", "consumer_secret"), "s1");
        assert_eq!(value(&m.data, "acme/uat", "consumer_key"), "k");
        assert_eq!(value(&m.data, "acme/dev", "consumer_key"), "d");
        // The history of the changed secret came along.
        let f = m.data.entries["acme/ci"]
            .fields
            .get("consumer_secret")
            .unwrap();
        assert_eq!(f.history.len(), 1);
        assert_eq!(f.history[0].value.expose(), "s0");
    }

    #[test]
    fn the_same_field_changed_on_both_sides_keeps_the_newer_and_the_other_in_history() {
        let b = base();
        let mut o = b.clone();
        let mut t = b.clone();
        set(&mut o, "acme/ci", "consumer_secret", "ours", 25);
        set(&mut t, "acme/ci", "consumer_secret", "theirs", 20);
        let m = merge(&b, &o, &t, 30);
        assert_eq!(
            m.conflicts,
            [Conflict::Field {
                entry: "acme/ci".into(),
                field: "consumer_secret".into(),
                kept: "ours"
            }]
        );
        let f = m.data.entries["acme/ci"]
            .fields
            .get("consumer_secret")
            .unwrap();
        assert_eq!(f.value.expose(), "ours");
        let past: Vec<&str> = f.history.iter().map(|p| p.value.expose()).collect();
        assert_eq!(past, ["s0", "theirs"]);
        m.data.check_invariants().unwrap();
    }

    #[test]
    fn removal_and_older_values() {
        let b = base();
        let mut o = b.clone();
        let t = b.clone();
        o.discard_entry(&EntryName::parse("acme/ci").unwrap(), 20)
            .unwrap();
        // Removed on our side, untouched on theirs: removed, kept for undelete.
        let m = merge(&b, &o, &t, 30);
        assert!(!m.data.entries.contains_key("acme/ci"));
        assert!(m.data.removed.contains_key("acme/ci"));
        // Removed on one side, changed on the other: kept and reported.
        let mut t2 = b.clone();
        set(&mut t2, "acme/ci", "username", "u9", 25);
        let m = merge(&b, &o, &t2, 30);
        assert_eq!(value(&m.data, "acme/ci", "username"), "u9");
        assert_eq!(m.conflicts.len(), 1);
        // A value older than the ancestor's (a file put back) is not taken.
        let mut newer_base = b.clone();
        set(&mut newer_base, "acme/ci", "username", "u5", 50);
        let m = merge(&newer_base, &newer_base, &b, 60);
        assert_eq!(value(&m.data, "acme/ci", "username"), "u5");
        assert_eq!(m.ignored.len(), 1);
    }

    #[test]
    fn slices_merge_by_name_and_a_double_change_is_a_conflict() {
        use crate::vault::recipients::Recipient;
        let r = |k: &str| Recipient {
            name: k.into(),
            key: format!("age1{k}"),
        };
        let ci = EntryName::parse("acme/ci").unwrap();
        let slice = |n: &str, f: &str| {
            Slice::new(n, f, std::slice::from_ref(&ci), vec![r("a")], 10).unwrap()
        };
        let with = |slices: Vec<Slice>| {
            let mut v = base();
            let mut team = TeamState::new();
            team.vault_id = [1; 16];
            team.slices = slices;
            v.team = Some(team);
            v
        };
        let a = slice("a", "a.sfv");
        let b = with(vec![a.clone()]);
        // Added on one side, the other untouched: both kept, no conflict.
        let o = with(vec![a.clone(), slice("ours", "o.sfv")]);
        let t = with(vec![a.clone(), slice("theirs", "t.sfv")]);
        let m = merge(&b, &o, &t, 100);
        let names: Vec<_> = m
            .data
            .team
            .as_ref()
            .unwrap()
            .slices
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(names, ["a", "ours", "theirs"]);
        assert!(m.conflicts.is_empty());
        // Removed on one side, untouched on the other: removed.
        let m = merge(&b, &with(vec![]), &b, 100);
        assert!(m.data.team.as_ref().unwrap().slices.is_empty());
        // Changed on both sides: the newer stands, and it is a conflict.
        let mut older = a.clone();
        older
            .redefine("a.sfv", std::slice::from_ref(&ci), vec![r("b")], 20)
            .unwrap();
        let mut newer = a.clone();
        newer
            .redefine("a.sfv", std::slice::from_ref(&ci), vec![r("c")], 30)
            .unwrap();
        let m = merge(&b, &with(vec![older]), &with(vec![newer.clone()]), 100);
        assert_eq!(m.data.team.as_ref().unwrap().slices, [newer]);
        assert_eq!(
            m.conflicts,
            [Conflict::Slice {
                name: "a".into(),
                kept: "theirs"
            }]
        );
        // Two new slices writing one file: the second is dropped, and said.
        let o = with(vec![a.clone(), slice("x", "same.sfv")]);
        let t = with(vec![a.clone(), slice("y", "same.sfv")]);
        let m = merge(&b, &o, &t, 100);
        assert_eq!(m.data.team.as_ref().unwrap().slices.len(), 2);
        assert_eq!(
            m.conflicts,
            [Conflict::Slice {
                name: "y".into(),
                kept: "neither"
            }]
        );
        crate::vault::slice::check_all(m.data.team.as_ref().unwrap()).unwrap();
    }
}
