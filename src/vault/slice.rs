//! Slices: least privilege for machines. A slice is a vault of its own holding only some
//! entries of a team vault, opened only by its own recipients (a CI runner, a backup host), and
//! written only by `slice sync` from the team vault, which keeps its definition ([`Slice`], in
//! the team state: encrypted, so someone who can only push cannot add themselves to it).
//!
//! The slice's data key lives in its definition, so each sync can tell whether the file is up
//! to date (it opens it) and keeps the key a reader's machine knows; dropping a recipient draws
//! a new key and passes the old one's link on, as a team vault does (src/vault/team_mark.rs).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::SecretKey;
use crate::vault::crypto;
use crate::vault::fields;
use crate::vault::model::{
    Entry, Field, MAX_KEY_LINKS, TeamState, Timestamp, VaultData, push_key_link,
};
use crate::vault::name::EntryName;
use crate::vault::recipients::{self, Recipient};
use crate::vault::slots::{KeySlots, RecipientSlot, VaultKey};

/// Most slices one vault defines.
pub const MAX_SLICES: usize = 32;
/// Most entries in one slice.
pub const MAX_SLICE_ENTRIES: usize = 256;
/// Most recipients of one slice.
pub const MAX_SLICE_RECIPIENTS: usize = 16;
/// Longest slice file path, in bytes.
pub const MAX_FILE_LEN: usize = 255;

/// One slice's definition, kept in the team vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// What it is called (`ci`, `backup-host`): 1 to 64 letters, digits and `. _ @ + -`.
    pub name: String,
    /// Where it is written, relative to the team vault's directory (`/`-separated, no `..`).
    pub file: String,
    /// The entries it holds, strictly ascending.
    pub entries: Vec<String>,
    /// Who opens it (1 to [`MAX_SLICE_RECIPIENTS`]), in the order given.
    pub recipients: Vec<Recipient>,
    /// Its data key.
    pub key: SecretKey,
    /// Its identity, as a team vault's ([`TeamState::vault_id`]).
    pub vault_id: [u8; 16],
    /// The links of its earlier data keys, oldest first ([`TeamState::key_links`]).
    pub key_links: Vec<[u8; 32]>,
    /// When the definition last changed (a merge keeps the newer of two changes).
    pub changed_at: Timestamp,
}

/// Whether a sync wrote a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The file already held exactly this; untouched.
    Unchanged {
        /// Its generation.
        generation: u64,
    },
    /// Written as this generation.
    Written {
        /// The new generation.
        generation: u64,
    },
    /// Out of date (or missing, or not opened by its key): a sync would write it.
    Stale {
        /// The file's generation; `None` when there is no file.
        generation: Option<u64>,
    },
}

impl Slice {
    /// A new slice: fresh key and identity.
    pub fn new(
        name: &str,
        file: &str,
        entries: &[EntryName],
        recipients: Vec<Recipient>,
        now: Timestamp,
    ) -> Result<Slice> {
        let mut vault_id = [0u8; 16];
        crypto::random_fill(&mut vault_id);
        let slice = Slice {
            name: name.to_owned(),
            file: file.to_owned(),
            entries: sorted_names(entries),
            recipients,
            key: crypto::random_key(),
            vault_id,
            key_links: Vec::new(),
            changed_at: now,
        };
        slice.check().map_err(Error::Usage)?;
        Ok(slice)
    }

    /// The same slice with a new file, entries and recipients. A recipient dropped gets no later
    /// version: the slice gets a new data key, linked from the old one. Returns whether the key
    /// changed.
    pub fn redefine(
        &mut self,
        file: &str,
        entries: &[EntryName],
        recipients: Vec<Recipient>,
        now: Timestamp,
    ) -> Result<bool> {
        let dropped = self
            .recipients
            .iter()
            .any(|old| !recipients.iter().any(|r| r.key == old.key));
        let mut next = self.clone();
        next.file = file.to_owned();
        next.entries = sorted_names(entries);
        next.recipients = recipients;
        next.changed_at = now;
        if dropped {
            push_key_link(&mut next.key_links, crypto::key_link(&self.key));
            next.key = crypto::random_key();
        }
        next.check().map_err(Error::Usage)?;
        *self = next;
        Ok(dropped)
    }

    /// The slice's file, under the team vault's directory `dir`. Refused (exit 10) when a
    /// directory on the way is a symbolic link: a checkout can hold one (a push can add it),
    /// and the slice would be written wherever it points.
    pub fn path_in(&self, dir: &Path) -> Result<std::path::PathBuf> {
        let mut at = dir.to_path_buf();
        let parts: Vec<&str> = self.file.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::Unsafe(format!(
                    "{} is a symbolic link: slice {} is written only below the team vault's \
                     directory; replace the link with a directory",
                    at.display(),
                    self.name
                )));
            }
        }
        Ok(dir.join(&self.file))
    }

    /// The contents of the slice as of `source` (the team vault): each chosen entry with the
    /// current values of the fields a user wrote (no history, no token cache, no rotation
    /// state, no record of use), default settings, and the slice's team state, which marks it
    /// as a slice of `source` (read-only where it is opened). Fails naming an entry that is no
    /// longer in `source`.
    pub fn contents(&self, source: &VaultData) -> Result<VaultData> {
        let source_id = source.team.as_ref().map_or([0; 16], |t| t.vault_id);
        let mut data = VaultData::default();
        for name in &self.entries {
            let Some(entry) = source.entries.get(name) else {
                return Err(Error::NotFound {
                    missing: crate::error::Missing::Entry {
                        entry: name.clone(),
                    },
                    message: format!(
                        "entry {name} of slice {} (removed or renamed? redefine the slice with \
                         `sfvault slice add {} --replace …`)",
                        self.name, self.name
                    ),
                });
            };
            data.entries.insert(name.clone(), stripped(entry));
        }
        data.team = Some(TeamState {
            vault_id: self.vault_id,
            key_links: self.key_links.clone(),
            slices: Vec::new(),
            slice_of: Some(source_id),
        });
        Ok(data)
    }

    /// The key the slice is written with: its data key wrapped to its recipients (no
    /// passphrase).
    pub fn vault_key(&self) -> Result<VaultKey> {
        let wrapped = recipients::wrap(&self.key, &self.recipients).map_err(Error::failed)?;
        Ok(VaultKey::from_parts(
            KeySlots {
                passphrase: None,
                recipients: Some(RecipientSlot {
                    recipients: self.recipients.clone(),
                    wrapped,
                }),
            },
            self.key.clone(),
        ))
    }

    /// The invariants of a definition read from a file or built from arguments.
    pub fn check(&self) -> std::result::Result<(), String> {
        check_name(&self.name)?;
        check_file(&self.file)?;
        if self.entries.is_empty() || self.entries.len() > MAX_SLICE_ENTRIES {
            return Err(format!(
                "slice {}: {} entries (1 to {MAX_SLICE_ENTRIES})",
                self.name,
                self.entries.len()
            ));
        }
        for name in &self.entries {
            EntryName::parse(name).map_err(|e| format!("slice {}: {e}", self.name))?;
        }
        if !self.entries.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!(
                "slice {}: entries not strictly ascending",
                self.name
            ));
        }
        if self.recipients.is_empty() || self.recipients.len() > MAX_SLICE_RECIPIENTS {
            return Err(format!(
                "slice {}: {} recipients (1 to {MAX_SLICE_RECIPIENTS})",
                self.name,
                self.recipients.len()
            ));
        }
        for (i, r) in self.recipients.iter().enumerate() {
            recipients::check_name(&r.name)?;
            if r.key.is_empty() || r.key.len() > recipients::MAX_KEY_LEN {
                return Err(format!(
                    "slice {}: recipient {} has no usable key",
                    self.name, r.name
                ));
            }
            if self.recipients[..i]
                .iter()
                .any(|o| o.name == r.name || o.key == r.key)
            {
                return Err(format!(
                    "slice {}: recipient {} given twice",
                    self.name, r.name
                ));
            }
        }
        if self.key_links.len() > MAX_KEY_LINKS {
            return Err(format!(
                "slice {}: {} key links (at most {MAX_KEY_LINKS})",
                self.name,
                self.key_links.len()
            ));
        }
        Ok(())
    }
}

/// Check the slices of a team state: each valid, names and files unique, at most
/// [`MAX_SLICES`]; a slice defines no slices of its own.
pub fn check_all(team: &TeamState) -> std::result::Result<(), String> {
    if team.slices.len() > MAX_SLICES {
        return Err(format!(
            "{} slices (at most {MAX_SLICES})",
            team.slices.len()
        ));
    }
    if team.slice_of.is_some() && !team.slices.is_empty() {
        return Err("a slice defines slices of its own".into());
    }
    for (i, s) in team.slices.iter().enumerate() {
        s.check()?;
        if team.slices[..i]
            .iter()
            .any(|o| o.name == s.name || o.file == s.file)
        {
            return Err(format!("slice {} or its file defined twice", s.name));
        }
    }
    Ok(())
}

/// A slice name: as a recipient's.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    recipients::check_name(name).map_err(|e| e.replacen("recipient name", "slice name", 1))
}

/// A slice file: a relative path below the team vault's directory, of plain names.
pub fn check_file(file: &str) -> std::result::Result<(), String> {
    let plain = !file.is_empty()
        && file.len() <= MAX_FILE_LEN
        && !file.contains('\0')
        && file
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(())
    } else {
        Err(format!(
            "slice file {file:?}: give a path relative to the team vault's directory, without \
             `..` (at most {MAX_FILE_LEN} bytes)"
        ))
    }
}

/// Rename `from` to `to` in every slice that holds it (an entry renamed with `mv`).
pub fn rename_entry(team: &mut TeamState, from: &str, to: &str) {
    for slice in &mut team.slices {
        if let Some(i) = slice.entries.iter().position(|e| e == from) {
            slice.entries[i] = to.to_owned();
            slice.entries.sort();
        }
    }
}

/// The refusal of any change to a slice where it is opened.
pub fn read_only() -> Error {
    Error::failed(
        "this vault is a slice of a team vault (chosen entries for a machine): it is written \
         only by `sfvault slice sync` in the team vault; make the change there and sync it",
    )
}

fn sorted_names(entries: &[EntryName]) -> Vec<String> {
    let mut names: Vec<String> = entries.iter().map(ToString::to_string).collect();
    names.sort();
    names.dedup();
    names
}

/// `entry` as a slice holds it: user-written fields, current values only.
fn stripped(entry: &Entry) -> Entry {
    let mut out = Entry {
        created_at: entry.created_at,
        fields: Default::default(),
    };
    for (name, field) in entry.fields.iter() {
        if fields::is_computed(name) || name == fields::ROTATION || name == fields::KEY_ROTATION {
            continue;
        }
        out.fields.insert(
            name.clone(),
            Field {
                value: field.value.duplicate(),
                secret: field.secret,
                set_at: field.set_at,
                changed_at: field.changed_at,
                used_at: None,
                history: Vec::new(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use crate::vault::change::Change;

    fn name(s: &str) -> EntryName {
        EntryName::parse(s).unwrap()
    }

    fn who(n: &str, key: &str) -> Recipient {
        Recipient {
            name: n.into(),
            key: key.into(),
        }
    }

    fn source() -> VaultData {
        let mut v = VaultData::default();
        let ci = name("acme/ci");
        v.add_entry(&ci, 100).unwrap();
        let s = |t: &str| SecretString::new(t.into());
        v.set_field(&ci, "consumer_key", s("K"), false, 100)
            .unwrap();
        v.set_field(&ci, "consumer_secret", s("old"), true, 100)
            .unwrap();
        v.set_field(&ci, "consumer_secret", s("new"), true, 200)
            .unwrap();
        v.set_computed(&ci, vec![(fields::ACCESS_TOKEN.into(), s("00Dtoken"))], 300)
            .unwrap();
        v.mark_used(&ci, &["consumer_key".into()], 400).unwrap();
        v.add_entry(&name("acme/other"), 100).unwrap();
        v.team = Some(TeamState::new());
        v
    }

    #[test]
    fn contents_hold_current_user_values_only_and_mark_the_slice() {
        let src = source();
        let slice = Slice::new(
            "ci",
            "ci.sfv",
            &[name("acme/ci")],
            vec![who("r", "age1x")],
            500,
        )
        .unwrap();
        let out = slice.contents(&src).unwrap();
        assert_eq!(out.entries.keys().collect::<Vec<_>>(), ["acme/ci"]);
        let e = &out.entries["acme/ci"];
        assert_eq!(
            e.fields.keys().collect::<Vec<_>>(),
            ["consumer_key", "consumer_secret"]
        );
        let secret = e.fields.get("consumer_secret").unwrap();
        assert_eq!(secret.value.expose(), "new");
        assert!(secret.history.is_empty());
        assert!(e.fields.get("consumer_key").unwrap().used_at.is_none());
        let team = out.team.as_ref().unwrap();
        assert_eq!(team.slice_of, Some(src.team.as_ref().unwrap().vault_id));
        assert_eq!(team.vault_id, slice.vault_id);
        assert!(out.is_slice());
        // The same source gives the same contents (so an unchanged slice is not rewritten).
        assert_eq!(slice.contents(&src).unwrap(), out);
        // A missing entry is named.
        let gone =
            Slice::new("ci", "ci.sfv", &[name("acme/gone")], vec![who("r", "k")], 1).unwrap();
        assert!(
            gone.contents(&src)
                .unwrap_err()
                .to_string()
                .contains("acme/gone")
        );
    }

    #[test]
    fn dropping_a_recipient_draws_a_new_key_linked_from_the_old() {
        let mut slice = Slice::new(
            "ci",
            "ci.sfv",
            &[name("acme/ci")],
            vec![who("a", "age1a"), who("b", "age1b")],
            1,
        )
        .unwrap();
        let first = slice.key.clone();
        // Adding one, or changing entries, keeps the key.
        let kept = slice
            .redefine(
                "ci.sfv",
                &[name("acme/ci"), name("acme/uat")],
                vec![who("a", "age1a"), who("b", "age1b"), who("c", "age1c")],
                2,
            )
            .unwrap();
        assert!(!kept && slice.key == first && slice.key_links.is_empty());
        assert_eq!(slice.entries, ["acme/ci", "acme/uat"]);
        let changed = slice
            .redefine("ci.sfv", &[name("acme/ci")], vec![who("a", "age1a")], 3)
            .unwrap();
        assert!(changed && slice.key != first);
        assert_eq!(slice.key_links, [crypto::key_link(&first)]);
        assert_eq!(slice.changed_at, 3);
        // A bad redefinition changes nothing.
        let before = slice.clone();
        assert!(
            slice
                .redefine("../x", &[name("acme/ci")], vec![], 4)
                .is_err()
        );
        assert_eq!(slice, before);
    }

    #[test]
    fn files_names_and_sets_are_checked() {
        for bad in [
            "",
            "/abs.sfv",
            "../up.sfv",
            "a/../b.sfv",
            "./x.sfv",
            "dir/",
            "a//b",
        ] {
            assert!(check_file(bad).is_err(), "{bad:?}");
        }
        for good in ["ci.sfv", "machines/ci.sfv"] {
            assert!(check_file(good).is_ok(), "{good:?}");
        }
        assert!(check_name("ci runner").is_err());
        let s = |n: &str, f: &str| {
            Slice::new(n, f, &[name("acme/ci")], vec![who("r", "age1r")], 1).unwrap()
        };
        let mut team = TeamState::new();
        team.slices = vec![s("a", "a.sfv"), s("b", "a.sfv")];
        assert!(check_all(&team).unwrap_err().contains("twice"));
        team.slices = vec![s("a", "a.sfv")];
        assert!(check_all(&team).is_ok());
        team.slice_of = Some([1; 16]);
        assert!(check_all(&team).unwrap_err().contains("slices of its own"));
    }

    #[test]
    fn a_slice_keeps_no_bookkeeping_and_refuses_changes() {
        let src = source();
        let slice = Slice::new("ci", "ci.sfv", &[name("acme/ci")], vec![who("r", "k")], 1).unwrap();
        let mut data = slice.contents(&src).unwrap();
        let before = data.clone();
        let used = Change::MarkUsed {
            entry: "acme/ci".into(),
            fields: vec!["consumer_key".into()],
        };
        used.apply(&mut data, 999).unwrap();
        assert_eq!(data, before);
        let set = Change::RemoveEntry {
            entry: "acme/ci".into(),
        };
        assert!(
            set.apply(&mut data, 999)
                .unwrap_err()
                .to_string()
                .contains("slice sync")
        );
        assert_eq!(data, before);
    }

    #[test]
    fn renaming_an_entry_follows_into_slices() {
        let mut src = source();
        let slice = Slice::new("ci", "ci.sfv", &[name("acme/ci")], vec![who("r", "k")], 1).unwrap();
        src.team.as_mut().unwrap().slices.push(slice);
        src.rename_entry(&name("acme/ci"), &name("zeta/ci"))
            .unwrap();
        assert_eq!(src.team.as_ref().unwrap().slices[0].entries, ["zeta/ci"]);
    }
}
