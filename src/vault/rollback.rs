//! Rollback marks: the highest generation of each vault this machine has seen, so an older
//! authentic copy put back in place (the `.bak`, an old backup, a synced folder going back in
//! time) is refused instead of silently bringing back old secrets and deleted entries.
//!
//! Every save carries an authenticated generation (docs/FORMAT.md, version 2). After each open
//! and save, the store compares it with this machine's mark for that vault, kept outside the
//! vault's directory (`$XDG_STATE_HOME/sfvault/seen/`):
//!
//! ```text
//! magic "SFVMARK1"(8) generation u64 LE(8) superseded u8(1) tag(32)
//! ```
//!
//! A mark is named by an HMAC of the vault's path and authenticated by an HMAC, both under a key
//! derived from the data key ([`MarkKey`]): without the key nobody can tell which vault a mark
//! belongs to, nor write one a reader accepts. `superseded` is set on the old key's mark when
//! `passwd` moves the vault to a new data key, so a copy from before the change is refused too.
//!
//! What it cannot do: a machine that never saw the newer copy cannot know it existed, and a
//! deleted mark is the same as one never written (see docs/SECURITY.md).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fs_safety;
use crate::secret::SecretKey;
use crate::vault::crypto::MarkKey;
use crate::vault::store;

const MAGIC: [u8; 8] = *b"SFVMARK1";
/// How long [`Marks::raise`] waits for the marks' lock (it is best effort).
const RAISE_LOCK_WAIT: Duration = Duration::from_millis(500);
/// How long [`Marks::store`] (restore, passwd) waits for it.
const STORE_LOCK_WAIT: Duration = Duration::from_secs(10);
const MARK_LEN: usize = 8 + 8 + 1 + 32;

/// What this machine last recorded for one vault under one data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The highest generation seen.
    pub generation: u64,
    /// The vault moved to another data key (`passwd`) after that generation: every copy under
    /// this key is older than the vault.
    pub superseded: bool,
}

/// The marks of one vault path in one directory.
#[derive(Debug, Clone)]
pub struct Marks {
    dir: PathBuf,
    vault: PathBuf,
}

impl Marks {
    /// Marks for the vault at `vault`, kept in `dir` (created 0700 on the first write).
    pub fn new(dir: impl Into<PathBuf>, vault: &Path) -> Marks {
        Marks {
            dir: dir.into(),
            vault: vault.to_path_buf(),
        }
    }

    /// The directory the marks are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The vault path these marks are for.
    pub fn vault(&self) -> &Path {
        &self.vault
    }

    /// The mark file of this vault under `data_key`, and the key that authenticates it.
    fn file_and_key(&self, data_key: &SecretKey) -> (PathBuf, MarkKey) {
        let key = MarkKey::derive(data_key);
        // Resolved here, not in `new`: a command served by the agent never needs it.
        let mut name_input = b"sfvault mark name\0".to_vec();
        name_input.extend_from_slice(absolute(&self.vault).as_os_str().as_encoded_bytes());
        let name: String = key.tag(&name_input)[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (self.dir.join(name), key)
    }

    /// This machine's mark for the vault under `data_key`: `None` when there is none (never
    /// seen here, or removed); an error when one exists but was not written with this key's
    /// mark key (altered), which is refused rather than taken as "never seen".
    pub fn load(&self, data_key: &SecretKey) -> Result<Option<Mark>> {
        let (path, key) = self.file_and_key(data_key);
        let file = match fs_safety::open_nonblocking(&path, true) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read the rollback mark", &path, e)),
        };
        let mut bytes = Vec::with_capacity(MARK_LEN);
        file.take(MARK_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read the rollback mark", &path, e))?;
        // An empty file is what a crash between create and write can leave: nothing recorded.
        if bytes.is_empty() {
            return Ok(None);
        }
        let valid = bytes.len() == MARK_LEN
            && bytes[..8] == MAGIC
            && bytes[16] <= 1
            && key.verify(&bytes[..17], &bytes[17..]);
        if !valid {
            return Err(Error::corrupt(
                &path,
                format!(
                    "this rollback mark of {} was altered (it does not authenticate under the \
                     vault's key). If you trust the vault file as it is, delete the mark and \
                     run the command again",
                    absolute(&self.vault).display()
                ),
            ));
        }
        let mut generation = [0u8; 8];
        generation.copy_from_slice(&bytes[8..16]);
        Ok(Some(Mark {
            generation: u64::from_le_bytes(generation),
            superseded: bytes[16] == 1,
        }))
    }

    /// Record `mark` for the vault under `data_key`, atomically (temp file, fsync, rename).
    pub fn store(&self, data_key: &SecretKey, mark: Mark) -> Result<()> {
        let _lock = self.lock(STORE_LOCK_WAIT)?;
        self.write(data_key, mark)
    }

    /// The marks directory (created 0700 and checked) and an exclusive lock on its `.lock`
    /// file, so two processes raising one mark at once cannot lower it (a reader that saw 11
    /// writing after one that saw 12).
    /// Waits at most `within` for the lock (another process holding it, e.g. a stray `flock`,
    /// must not hang every save): [`Error::Busy`] after that.
    pub(crate) fn lock(&self, within: Duration) -> Result<fs::File> {
        fs_safety::ensure_vault_dir(&self.dir, "the rollback mark directory")?;
        let path = self.dir.join(".lock");
        let file =
            fs_safety::open_lock_file(&path).map_err(|e| Error::io("cannot open", &path, e))?;
        match fs_safety::lock_within(&file, within) {
            Ok(true) => Ok(file),
            Ok(false) => Err(Error::Busy {
                path,
                holder: "another process".into(),
                waited_secs: within.as_secs(),
            }),
            Err(e) => Err(Error::io("cannot lock", &path, e)),
        }
    }

    fn write(&self, data_key: &SecretKey, mark: Mark) -> Result<()> {
        let (path, key) = self.file_and_key(data_key);
        let mut bytes = Vec::with_capacity(MARK_LEN);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&mark.generation.to_le_bytes());
        bytes.push(u8::from(mark.superseded));
        let tag = key.tag(&bytes);
        bytes.extend_from_slice(&tag);
        store::write_new_file(&path, &bytes, true)
    }

    /// Raise the mark to `generation` if it is lower (never lowers it, never clears
    /// `superseded`); a failure to record is returned for the caller to report or ignore.
    pub fn raise(&self, data_key: &SecretKey, generation: u64) -> Result<()> {
        // Best effort, so it waits only briefly: a held lock means another process is raising
        // this machine's marks right now.
        let _lock = self.lock(RAISE_LOCK_WAIT)?;
        match self.load(data_key)? {
            Some(m) if m.generation >= generation || m.superseded => Ok(()),
            _ => self.write(
                data_key,
                Mark {
                    generation,
                    superseded: false,
                },
            ),
        }
    }
}

/// Whether a file of `generation` under a key whose mark is `mark` is an older copy.
pub fn is_rollback(mark: Option<Mark>, generation: u64) -> bool {
    mark.is_some_and(|m| m.superseded || generation < m.generation)
}

/// `path` made absolute without resolving its last component (the vault file may not exist yet,
/// and a symlinked vault is refused elsewhere); its directory is resolved when it exists, so
/// `./v.sfv` and `/home/me/v.sfv` name the same vault.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let dir = fs_safety::dir_of(path);
    let dir = fs::canonicalize(&dir)
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir);
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn marks_round_trip_raise_only_and_detect_tampering() {
        let root = tempfile::tempdir().unwrap();
        let marks = Marks::new(root.path().join("seen"), &root.path().join("v.sfv"));
        let key = SecretKey::from_slice(&[3; 32]);
        let other = SecretKey::from_slice(&[4; 32]);
        assert_eq!(marks.load(&key).unwrap(), None);
        marks.raise(&key, 7).unwrap();
        marks.raise(&key, 5).unwrap();
        let seven = Mark {
            generation: 7,
            superseded: false,
        };
        assert_eq!(marks.load(&key).unwrap(), Some(seven));
        assert!(is_rollback(Some(seven), 6));
        assert!(!is_rollback(Some(seven), 7));
        // Another key's marks are separate (and unreadable by name).
        assert_eq!(marks.load(&other).unwrap(), None);
        // Another path's marks too.
        let elsewhere = Marks::new(root.path().join("seen"), &root.path().join("w.sfv"));
        assert_eq!(elsewhere.load(&key).unwrap(), None);
        // Altered bytes: refused, never read as "no mark" or a lower one.
        let (file, _) = marks.file_and_key(&key);
        let mut bytes = fs::read(&file).unwrap();
        bytes[8] = 1;
        fs::write(&file, &bytes).unwrap();
        assert_eq!(marks.load(&key).unwrap_err().kind(), ErrorKind::Corrupt);
        fs::write(&file, b"").unwrap();
        assert_eq!(marks.load(&key).unwrap(), None);
    }
}
