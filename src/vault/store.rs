//! The vault file on disk: the only code that writes it.
//!
//! Reads refuse symlinks, files readable by others, files owned by someone else and files over
//! the size cap, before a byte is parsed. Writes happen under an exclusive lock on `PATH.lock`:
//! a temp file in the same directory (0600), fsync, the old version kept as `PATH.bak` (hard
//! link), rename over the vault, fsync the directory. A crash at any point leaves either the old
//! or the new file, never a mixture.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Missing, Result};
use crate::fs_safety::{
    check_private_file, check_vault_dir, dir_of, ensure_vault_dir, lock_within, open_lock_file,
    open_nonblocking, read_bounded, regular_file_meta,
};
use crate::secret::{SecretKey, SecretString};
use crate::vault::format::{self, Credential, KeySlots, MAX_FILE_LEN, OpenError, VaultKey};
use crate::vault::model::VaultData;
use crate::vault::rollback::{self, Mark, Marks};
use crate::vault::team_mark::{self, Refusal, TeamMark};

/// How long a writer waits for the lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A vault file and its companions (`.lock`, `.bak`).
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    lock_timeout: Duration,
    marks: Option<Marks>,
}

/// An exclusive hold on the vault's lock file; released when dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    /// Clear the holder's pid before the lock goes, so a later "busy" message never names a
    /// process that no longer holds it.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// A vault opened with its key: read it, change it, save it.
#[derive(Debug)]
pub struct OpenVault {
    /// The decrypted contents as of the last read.
    pub data: VaultData,
    key: VaultKey,
    store: Store,
    stamp: FileStamp,
    payload_salt: [u8; format::PAYLOAD_SALT_LEN],
    generation: u64,
}

/// One authenticated read of the live vault file.
struct Current {
    data: VaultData,
    stamp: FileStamp,
    payload_salt: [u8; format::PAYLOAD_SALT_LEN],
    generation: u64,
    /// The key with the file's slots, when they changed but the data key still opens it
    /// (another process added or removed a recipient): the holder adopts it.
    adopted: Option<VaultKey>,
}

/// What identifies one version of the vault file without reading it: a save always makes a new
/// inode (rename), and the times and size catch anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// Matches no file: forces the next refresh to reload.
    const UNKNOWN: FileStamp = FileStamp {
        dev: u64::MAX,
        ino: u64::MAX,
        size: u64::MAX,
        mtime_ns: i128::MIN,
        ctime_ns: i128::MIN,
    };

    fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

impl Store {
    /// How long a lock of this vault is waited for.
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// The vault at `path`, waiting at most `lock_timeout` for the write lock.
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Duration) -> Store {
        Store {
            path: path.into(),
            lock_timeout,
            marks: None,
        }
    }

    /// Keep this machine's rollback marks in `dir` (outside the vault's directory): every open
    /// then refuses a file older than the newest this machine has seen ([`Error::RolledBack`]),
    /// and every save records its generation. See [`rollback`].
    pub fn with_rollback_marks(mut self, dir: impl Into<PathBuf>) -> Store {
        self.marks = Some(Marks::new(dir, &self.path));
        self
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The previous version's path (`PATH.bak`).
    pub fn backup_path(&self) -> PathBuf {
        with_suffix(&self.path, ".bak")
    }

    fn lock_path(&self) -> PathBuf {
        with_suffix(&self.path, ".lock")
    }

    fn dir(&self) -> PathBuf {
        dir_of(&self.path)
    }

    /// Whether anything (even a broken symlink) exists at the vault path.
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok()
    }

    /// Read the raw file after the safety checks; the contents are not yet authenticated.
    pub fn read_bytes(&self) -> Result<Vec<u8>> {
        read_checked(&self.path).map(|(bytes, _)| bytes)
    }

    /// Read and decrypt the vault with `passphrase`. Takes no lock: a concurrent save replaces the
    /// file atomically, so this sees the old or the new version.
    pub fn open(&self, passphrase: &SecretString) -> Result<OpenVault> {
        self.open_with(|_| Ok(Credential::Passphrase(passphrase.duplicate())))
    }

    /// Like [`Store::open`], but asks `credential` for a passphrase or an identity only once the
    /// file has been read and its header checked (and shows it the slots, so it can tell a
    /// vault without a passphrase): a missing, unsafe or corrupt vault fails before any prompt.
    pub fn open_with(
        &self,
        credential: impl FnOnce(&KeySlots) -> Result<Credential>,
    ) -> Result<OpenVault> {
        let read = read_checked(&self.path)?;
        let header = format::parse_header(&read.0).map_err(|e| self.open_error(e))?;
        let credential = credential(&header.slots)?;
        let key = header
            .slots
            .unlock(&credential)
            .map_err(|e| self.open_error(e))?;
        let current = self.read_current(&key, read, |e| self.open_error(e))?;
        Ok(self.opened(current, key))
    }

    fn opened(&self, current: Current, key: VaultKey) -> OpenVault {
        OpenVault {
            data: current.data,
            key: current.adopted.unwrap_or(key),
            store: self.clone(),
            stamp: current.stamp,
            payload_salt: current.payload_salt,
            generation: current.generation,
        }
    }

    /// Decrypt `read` (the live file's bytes and stamp) with `key` and check its generation
    /// against this machine's rollback mark. A save that lands between our read of the file and
    /// our look at the mark (which a writer raises after its rename) looks like a rollback for
    /// a moment: when the file changed meanwhile, it is read again (a few times at most).
    fn read_current(
        &self,
        key: &VaultKey,
        mut read: (Vec<u8>, FileStamp),
        on_open_error: impl Fn(OpenError) -> Error,
    ) -> Result<Current> {
        let mut attempts = 0;
        loop {
            let (mut bytes, stamp) = read;
            let header = format::parse_header(&bytes).map_err(&on_open_error)?;
            // Slots that changed while the data key stayed (a recipient added or removed by
            // another process) are adopted: the key commitment, checked before anything is
            // decrypted, proves the data key still opens the file, and only a holder of it
            // can have written those slots. A different data key fails that check, and reads
            // as a re-keyed vault, not as a damaged one.
            let adopted = (header.slots != *key.slots())
                .then(|| VaultKey::from_parts(header.slots.clone(), key.data_key().clone()));
            let data = format::open_in_place(&mut bytes, adopted.as_ref().unwrap_or(key))
                .map_err(|e| match e {
                    OpenError::Corrupt(_) if adopted.is_some() => OpenError::WrongPassphrase,
                    other => other,
                })
                .map_err(&on_open_error)?;
            let checked = self
                .check_generation(key, header.generation)
                .and_then(|()| self.check_team(key, &data));
            match checked {
                Err(Error::RolledBack { .. }) if attempts < 3 && self.changed_since(stamp) => {
                    attempts += 1;
                    read = read_checked(&self.path)?;
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    return Ok(Current {
                        data,
                        stamp,
                        payload_salt: header.payload_salt,
                        generation: header.generation,
                        adopted,
                    });
                }
            }
        }
    }

    /// Whether the file at the vault path is no longer the version stamped `stamp`.
    fn changed_since(&self, stamp: FileStamp) -> bool {
        fs::symlink_metadata(&self.path).map_or(true, |m| FileStamp::of(&m) != stamp)
    }

    /// Refuse a file of `generation` under `key` when this machine has seen a newer one (or the
    /// key was replaced here by `passwd`); remember a newer one. Recording is best effort: a
    /// read must not fail because the state directory is read-only.
    fn check_generation(&self, key: &VaultKey, generation: u64) -> Result<()> {
        let Some(marks) = &self.marks else {
            return Ok(());
        };
        let mark = marks.load(key.data_key())?;
        if rollback::is_rollback(mark, generation) {
            return Err(Error::RolledBack {
                path: self.path.clone(),
                generation,
                seen: mark.map_or(0, |m| m.generation),
                superseded: mark.is_some_and(|m| m.superseded),
            });
        }
        if mark.is_none_or(|m| generation > m.generation) {
            let _ = marks.raise(key.data_key(), generation);
        }
        Ok(())
    }

    /// Refuse a team vault that is not the one this machine knew at this path (another vault
    /// id, or a new data key without the link of the known one: see `team_mark`); remember
    /// the first one seen and each legitimate key change.
    fn check_team(&self, key: &VaultKey, data: &VaultData) -> Result<()> {
        let (Some(marks), Some(team)) = (&self.marks, &data.team) else {
            return Ok(());
        };
        let seen = TeamMark::of(team, key.data_key());
        match team_mark::judge(marks.load_team()?, seen, team) {
            Ok(true) => {
                let _ = marks.store_team(seen);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(refusal) => Err(Error::Substituted {
                path: self.path.clone(),
                detail: match refusal {
                    Refusal::Replaced => "it is another vault (its identity changed)".into(),
                    Refusal::UnlinkedKey => "its data key changed, and the new key does not \
                        come from the one this machine knew (a member who removes a recipient \
                        passes the old key's link on; a removed member or an outsider cannot)"
                        .into(),
                },
            }),
        }
    }

    /// Record a save of `generation` under `key` (best effort, as in [`Store::check_generation`]).
    fn record_save(&self, key: &VaultKey, generation: u64) {
        if let Some(marks) = &self.marks {
            let _ = marks.raise(key.data_key(), generation);
        }
    }

    /// Open the vault with its raw data key (handed over by the process that unlocked it, to the
    /// agent). The key is checked against the file's key commitment before anything is
    /// decrypted.
    pub fn open_with_data_key(&self, data_key: SecretKey) -> Result<OpenVault> {
        let read = read_checked(&self.path)?;
        let key = format::key_for_data_key(&read.0, data_key).map_err(|e| self.open_error(e))?;
        let current = self.read_current(&key, read, |e| self.open_error(e))?;
        Ok(self.opened(current, key))
    }

    /// Create the vault directory (0700) if needed, and check it is safe to use.
    fn prepare_dir(&self) -> Result<()> {
        ensure_vault_dir(&self.dir(), "the vault directory")
    }

    /// Create a new vault file holding `data`; refuses to replace anything that exists.
    pub fn create(&self, data: &VaultData, key: &VaultKey) -> Result<OpenVault> {
        self.prepare_dir()?;
        let guard = self.lock()?;
        if self.exists() {
            return Err(Error::failed(format!(
                "a vault already exists at {}; use it, or pick another path with --vault",
                self.path.display()
            )));
        }
        let (stamp, payload_salt) = self.write(&guard, data, key, 1)?;
        Ok(OpenVault {
            data: data.clone(),
            key: key.clone(),
            store: self.clone(),
            stamp,
            payload_salt,
            generation: 1,
        })
    }

    /// Write a slice (src/vault/slice.rs) to this path: `data` under `key`, its data key wrapped
    /// to `recipients`, unless the file already holds exactly `data` for exactly `recipients`.
    /// Called under the team vault's lock (`source_lock`): slices are written only from it, so
    /// they need no lock files of their own. No `.bak` is kept (the team vault is the truth);
    /// the generation is above the replaced file's, so readers' machines take it as newer.
    ///
    /// A slice's generation is the Unix time of its sync in microseconds, or one above the
    /// replaced file's (if the slice's key opens it) when that is higher: members who sync the
    /// same slice in their own clones, or over a file someone else put there, make generations
    /// in time order (as far as their clocks agree), so the latest sync reads as the newest.
    pub fn publish(
        &self,
        _source_lock: &LockGuard,
        slice: &crate::vault::slice::Slice,
        data: &VaultData,
    ) -> Result<crate::vault::slice::Published> {
        ensure_vault_dir(&self.dir(), "the slice's directory")?;
        self.slice_file(slice, data, true)
    }

    /// Whether the slice at this path holds exactly `data` for the recipients of `slice`
    /// ([`Published::Unchanged`]) or not ([`Published::Stale`]); nothing is written.
    ///
    /// [`Published::Unchanged`]: crate::vault::slice::Published::Unchanged
    /// [`Published::Stale`]: crate::vault::slice::Published::Stale
    pub fn slice_state(
        &self,
        slice: &crate::vault::slice::Slice,
        data: &VaultData,
    ) -> Result<crate::vault::slice::Published> {
        self.slice_file(slice, data, false)
    }

    fn slice_file(
        &self,
        slice: &crate::vault::slice::Slice,
        data: &VaultData,
        write: bool,
    ) -> Result<crate::vault::slice::Published> {
        use crate::vault::slice::Published;
        let existing = match fs::symlink_metadata(&self.path) {
            Ok(_) => Some(read_checked(&self.path)?.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("cannot inspect", &self.path, e)),
        };
        // Only a file the slice's key opens counts: an unauthenticated header could carry
        // any generation (u64::MAX included) and would stop every later sync.
        let mut floor = 0;
        let mut seen = None;
        let mut reuse = None;
        if let Some(header) = existing
            .as_deref()
            .and_then(|b| format::parse_header(b).ok())
        {
            seen = Some(header.generation);
            let same_recipients =
                header.slots.passphrase.is_none() && header.slots.recipients() == slice.recipients;
            // The commitment proves the header (wrapped key included) was written with the key.
            let key = VaultKey::from_parts(header.slots.clone(), slice.key.clone());
            if let Some(Ok(held)) = existing.as_deref().map(|b| format::open_with_key(b, &key)) {
                floor = header.generation;
                if same_recipients && held == *data {
                    return Ok(Published::Unchanged {
                        generation: header.generation,
                    });
                }
                if same_recipients {
                    reuse = Some(key);
                }
            }
        }
        if !write {
            return Ok(Published::Stale { generation: seen });
        }
        let key = match reuse {
            Some(key) => key,
            None => slice.vault_key()?,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let generation = next_generation(&self.path, floor)?.max(now);
        let bytes = format::seal(data, &key, generation).map_err(Error::failed)?;
        self.remove_stale_temps();
        atomic_write(&self.path, &bytes, || Ok(()))?;
        Ok(Published::Written { generation })
    }

    /// Take the exclusive write lock, waiting up to the lock timeout.
    pub fn lock(&self) -> Result<LockGuard> {
        let path = self.lock_path();
        let mut file =
            open_lock_file(&path).map_err(|e| Error::io("cannot open the lock file", &path, e))?;
        if !lock_within(&file, self.lock_timeout).map_err(|e| Error::io("cannot lock", &path, e))? {
            let mut text = String::new();
            let _ = (&file).take(32).read_to_string(&mut text);
            // The pid is only there while an sfvault process holds the lock (and may be stale
            // after a crash); anything else (flock(1)…) is anonymous.
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) if Path::new(&format!("/proc/{pid}")).exists() => format!("process {pid}"),
                _ => "another process".to_owned(),
            };
            return Err(Error::Busy {
                path: self.path.clone(),
                holder,
                waited_secs: self.lock_timeout.as_secs(),
            });
        }
        // Record the holder for the "busy" message of the next waiter; best effort.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        Ok(LockGuard { file })
    }

    /// Atomically replace the vault with `data` sealed under `key` as save number
    /// `generation`, and record it in this machine's rollback marks. The caller holds the lock.
    /// Returns the stamp and the payload salt of the file written.
    fn write(
        &self,
        guard: &LockGuard,
        data: &VaultData,
        key: &VaultKey,
        generation: u64,
    ) -> Result<(FileStamp, [u8; format::PAYLOAD_SALT_LEN])> {
        let bytes = format::seal(data, key, generation).map_err(Error::failed)?;
        let salt = payload_salt_of(&bytes);
        let stamp = self.write_bytes(guard, &bytes)?;
        // After the rename, never before: a reader that sees the raised mark then finds the
        // new file (or re-reads until it does, see `read_current`).
        self.record_save(key, generation);
        if let (Some(marks), Some(team)) = (&self.marks, &data.team) {
            let _ = marks.store_team(TeamMark::of(team, key.data_key()));
        }
        Ok((stamp, salt))
    }

    /// Atomically replace the vault file with `bytes`, keeping the old one as `.bak`.
    fn write_bytes(&self, _guard: &LockGuard, bytes: &[u8]) -> Result<FileStamp> {
        self.remove_stale_temps();
        let keep = fs::symlink_metadata(&self.path).is_ok();
        atomic_write(&self.path, bytes, || {
            if keep { self.keep_backup() } else { Ok(()) }
        })
    }

    /// Copy the vault as it is (encrypted, same passphrase) to `dest`, under the lock so the copy
    /// is one consistent version. Refuses to replace an existing `dest` unless `force`.
    pub fn backup_to(&self, dest: &Path, force: bool) -> Result<()> {
        let _guard = self.lock()?;
        let bytes = self.read_bytes()?;
        format::parse_header(&bytes).map_err(|e| self.open_error(e))?;
        write_new_file(dest, &bytes, force)
    }

    /// Replace the vault with `data` (a verified backup, opened with `key`, its own key),
    /// keeping the replaced file as `.bak`. Works when the current vault is missing or damaged.
    ///
    /// Restoring is the deliberate way back: the copy is saved as a generation newer than the
    /// backup, the replaced file and anything this machine has seen, so neither this machine
    /// nor one that saw later saves takes it for a rollback. Returns that generation.
    pub fn restore(&self, data: &VaultData, key: &VaultKey, backup_generation: u64) -> Result<u64> {
        self.prepare_dir()?;
        let guard = self.lock()?;
        // The replaced file counts only if it opens under the backup's key (an unauthenticated
        // header could carry any number, u64::MAX included).
        let replaced = read_checked(&self.path)
            .ok()
            .filter(|(bytes, _)| format::open_with_key(bytes, key).is_ok())
            .and_then(|(bytes, _)| format::parse_header(&bytes).ok())
            .map_or(0, |h| h.generation);
        // An altered mark is overridden here, deliberately.
        let seen = self.marks.as_ref().map_or(0, |m| {
            m.load(key.data_key())
                .ok()
                .flatten()
                .map_or(0, |m| m.generation)
        });
        let generation = next_generation(&self.path, backup_generation.max(replaced).max(seen))?;
        if let Some(marks) = &self.marks {
            // Adopted deliberately: whatever team vault this machine knew here, this one now.
            marks.forget_team()?;
        }
        self.write(&guard, data, key, generation)?;
        if let Some(marks) = &self.marks {
            // Clears a `superseded` mark: this key is the vault's key again.
            marks.store(
                key.data_key(),
                Mark {
                    generation,
                    superseded: false,
                },
            )?;
        }
        Ok(generation)
    }

    /// Remove temp files of this vault left by writers that were killed mid-save. Only called
    /// under the lock, when no other writer of this vault can be between its temp file and its
    /// rename. They hold ciphertext only; this is tidiness, not secrecy.
    fn remove_stale_temps(&self) {
        let prefix = temp_prefix(&self.path);
        let Ok(dir) = fs::read_dir(self.dir()) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Make `PATH.bak` the current version before it is replaced: a hard link (no copy, same
    /// permissions), put in place by rename so the old `.bak` is never half-written.
    fn keep_backup(&self) -> Result<()> {
        let bak = self.backup_path();
        let staging = with_suffix(&self.path, ".bak.tmp");
        let _ = fs::remove_file(&staging);
        if fs::hard_link(&self.path, &staging).is_err() {
            // Filesystems without hard links: copy, then fsync, before the rename.
            fs::copy(&self.path, &staging)
                .and_then(|_| File::open(&staging)?.sync_all())
                .map_err(|e| Error::io("cannot keep a backup at", &staging, e))?;
        }
        fs::rename(&staging, &bak).map_err(|e| Error::io("cannot keep a backup at", &bak, e))
    }

    /// The error for this vault's file; the previous version is named only when it exists.
    fn open_error(&self, e: OpenError) -> Error {
        let backup = Some(self.backup_path()).filter(|b| fs::symlink_metadata(b).is_ok());
        match (e, backup) {
            (OpenError::WrongPassphrase, backup) => Error::WrongPassphrase {
                path: self.path.clone(),
                backup,
            },
            (e, Some(backup)) => {
                let hint = format!("the previous version may be in {}", backup.display());
                e.for_file(&self.path, Some(&hint))
            }
            (e, None) => e.for_file(&self.path, None),
        }
    }
}

impl OpenVault {
    /// The store this vault came from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key (its slot for KDF facts, its data key to hand to an agent).
    pub fn key(&self) -> &VaultKey {
        &self.key
    }

    /// The generation of the version held (see [`rollback`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Apply `change` to the newest version of the vault and save it, under the lock: the file
    /// is re-read first (without the KDF), so concurrent writers never lose each other's
    /// changes. If `change` fails, nothing is written.
    pub fn update<T>(&mut self, change: impl FnOnce(&mut VaultData) -> Result<T>) -> Result<T> {
        self.commit(None, change)
    }

    /// Save the newest version under a new key (`passwd`, `recipient add`/`rm`): the entries
    /// are untouched. A new data key's old key gets its rollback mark marked superseded, so a
    /// copy from before the change (such as the `.bak`) put back in place is refused on this
    /// machine, and a team vault keeps the old key's link (docs/FORMAT.md).
    pub fn rekey(&mut self, new_key: VaultKey) -> Result<()> {
        let old = self.key.clone();
        let new_data_key = new_key.data_key().expose() != old.data_key().expose();
        // Slots only a team vault has (recipients, no passphrase) need its team state: made
        // at the vault's first such save, kept ever after.
        let team_format = new_key.slots().need_team_format();
        self.commit(Some(new_key), |data| {
            if team_format {
                data.team
                    .get_or_insert_with(crate::vault::model::TeamState::new);
            }
            if new_data_key && let Some(team) = &mut data.team {
                team.push_link(crate::vault::crypto::key_link(old.data_key()));
            }
            Ok(())
        })?;
        if new_data_key && let Some(marks) = &self.store.marks {
            let _ = marks.store(
                old.data_key(),
                Mark {
                    generation: self.generation,
                    superseded: true,
                },
            );
        }
        Ok(())
    }

    fn commit<T>(
        &mut self,
        new_key: Option<VaultKey>,
        change: impl FnOnce(&mut VaultData) -> Result<T>,
    ) -> Result<T> {
        if self.data.is_slice() {
            // Read-only where it is opened, and never locked there (the lock file would sit
            // untracked in a runner's checkout): a change that changes nothing (bookkeeping a
            // slice does not keep) succeeds without a save, anything else is refused.
            let mut data = self.data.clone();
            let out = change(&mut data)?;
            return if new_key.is_none() && data == self.data {
                Ok(out)
            } else {
                Err(crate::vault::slice::read_only())
            };
        }
        let guard = self.store.lock()?;
        let (bytes, stamp) = read_checked(&self.store.path)?;
        let header = format::parse_header(&bytes).map_err(|e| self.store.open_error(e))?;
        // Every save draws a new random payload salt: the same salt (and slot) means the file
        // is exactly the version we hold, and decrypting it again can be skipped.
        // The generation too: it is read here without authenticating the file, and a file
        // whose generation was rewritten in place must go through `read_current` (which fails
        // the commitment), never be saved from as if it were ours.
        let fresh = header.payload_salt == self.payload_salt
            && header.slots == *self.key.slots()
            && header.generation == self.generation;
        let (mut data, generation, kept) =
            if fresh {
                (
                    std::mem::take(&mut self.data),
                    header.generation,
                    Some(bytes),
                )
            } else {
                let path = self.store.path.clone();
                let current = self.store.read_current(&self.key, (bytes, stamp), |e| match e {
                OpenError::WrongPassphrase => Error::failed(format!(
                    "{} was re-keyed or replaced by another process while this command ran; \
                     nothing was changed, run it again",
                    path.display()
                )),
                other => self.store.open_error(other),
            })?;
                if let Some(adopted) = current.adopted {
                    self.key = adopted;
                }
                (current.data, current.generation, None)
            };
        let key = new_key.unwrap_or_else(|| self.key.clone());
        let next = next_generation(&self.store.path, generation)?;
        let result = change(&mut data).and_then(|out| {
            // Every save drops removed entries past their retention.
            data.expire_removed(crate::vault::model::now());
            let written = self.store.write(&guard, &data, &key, next)?;
            Ok((out, written))
        });
        match result {
            Ok((out, (stamp, salt))) => {
                self.stamp = stamp;
                self.payload_salt = salt;
                self.key = key;
                self.data = data;
                self.generation = next;
                Ok(out)
            }
            Err(e) => {
                // The change failed or was not saved: what we hold must be the file again.
                if let Some(bytes) = kept {
                    match format::open_with_key(&bytes, &self.key) {
                        Ok(d) => self.data = d,
                        Err(_) => self.stamp = FileStamp::UNKNOWN,
                    }
                }
                Err(e)
            }
        }
    }

    /// Re-read the vault if another writer replaced it since we last read or wrote it. Returns
    /// whether it was reloaded. A file re-keyed or replaced by another vault fails with
    /// [`Error::Locked`]: the key held here no longer opens it; an older copy put in place fails
    /// with [`Error::RolledBack`].
    pub fn refresh(&mut self) -> Result<bool> {
        // The directory too, every time: loosening it does not change the file's stamp.
        check_vault_dir(&self.store.dir())?;
        let meta = fs::symlink_metadata(&self.store.path)
            .map_err(|e| Error::io("cannot inspect", &self.store.path, e))?;
        if FileStamp::of(&meta) == self.stamp {
            return Ok(false);
        }
        let read = read_checked(&self.store.path)?;
        let current = self.store.read_current(&self.key, read, |e| match e {
            OpenError::WrongPassphrase => Error::locked(format!(
                "{} was re-keyed or replaced; unlock it again",
                self.store.path.display()
            )),
            other => self.store.open_error(other),
        })?;
        if let Some(adopted) = current.adopted {
            self.key = adopted;
        }
        self.data = current.data;
        self.payload_salt = current.payload_salt;
        self.stamp = current.stamp;
        self.generation = current.generation;
        Ok(true)
    }
}

/// Write `bytes` to `dest` atomically (same-directory temp file 0600, fsync, `before_rename`,
/// rename, directory fsync). Returns the new file's stamp.
fn atomic_write(
    dest: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> Result<()>,
) -> Result<FileStamp> {
    let dir = dir_of(dest);
    let prefix = temp_prefix(dest);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| Error::io("cannot create a temporary file in", &dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write (nothing was replaced)", tmp.path(), e))?;
    before_rename()?;
    let file = tmp
        .persist(dest)
        .map_err(|e| Error::io("cannot replace", dest, e.error))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync the directory", &dir, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect", dest, e))?;
    Ok(FileStamp::of(&meta))
}

/// Write a new file (a backup) atomically with mode 0600; an existing file is replaced only
/// with `force`.
pub fn write_new_file(dest: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let dir = dir_of(dest);
    if !dir.is_dir() {
        // Said here, before a temporary file's name can end up in the error.
        return Err(Error::Usage(format!(
            "directory {} does not exist; create it first or pick another path",
            dir.display()
        )));
    }
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Usage(format!(
            "{} is a directory; name a file in it (or pass the directory alone to `backup`)",
            dest.display()
        )));
    }
    if fs::symlink_metadata(dest).is_ok() && !force {
        return Err(Error::failed(format!(
            "{} exists; pass --force to replace it",
            dest.display()
        )));
    }
    atomic_write(dest, bytes, || Ok(())).map(drop)
}

/// Read a file that should be a vault (a backup to restore), bounded, without the ownership and
/// permission checks of the live vault: it is only read, and authenticated before use. Opened
/// without blocking (a FIFO cannot hang it), refused unless a regular file, and refused before
/// a byte is read when over the size cap.
pub fn read_foreign(path: &Path) -> Result<Vec<u8>> {
    let file = open_nonblocking(path, false).map_err(|e| Error::io("cannot open", path, e))?;
    let meta = regular_file_meta(&file, path)?;
    read_bounded(file, &meta, path, MAX_FILE_LEN)
}

/// The error for a vault file that does not exist (exit 3), with how to make one.
pub fn no_vault(path: &Path) -> Error {
    Error::NotFound {
        missing: Missing::Vault {
            path: path.to_path_buf(),
        },
        message: format!(
            "no vault at {}; create one with `sfvault init` (or point --vault / SFVAULT_PATH at yours)",
            path.display()
        ),
    }
}

/// Open `path` without following a final symlink, check who owns it and who may read it, bound
/// its size, and read it.
fn read_checked(path: &Path) -> Result<(Vec<u8>, FileStamp)> {
    let file = open_nonblocking(path, true).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => no_vault(path),
        _ if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            Error::Unsafe(format!(
                "{} is a symbolic link; sfvault replaces the file on every save, so point \
                     --vault at the real file instead",
                path.display()
            ))
        }
        _ => Error::io("cannot open", path, e),
    })?;
    let meta = regular_file_meta(&file, path)?;
    // Only a file others may read needs its header first (a team vault without a passphrase
    // may be); one closed to others passes without it, as before.
    if meta.mode() & 0o077 == 0 {
        check_private_file(&meta, path)?;
    }
    check_vault_dir(&dir_of(path))?;
    let stamp = FileStamp::of(&meta);
    let bytes = read_bounded(file, &meta, path, MAX_FILE_LEN)?;
    if meta.mode() & 0o077 != 0 {
        let only_by_key = format::parse_header(&bytes).is_ok_and(|h| h.slots.passphrase.is_none());
        crate::fs_safety::check_vault_file(&meta, path, only_by_key)?;
    }
    Ok((bytes, stamp))
}

/// The generation after `generation`; refused at the end of the range rather than stuck there
/// (a stuck number would make every later copy look as new as the last).
fn next_generation(path: &Path, generation: u64) -> Result<u64> {
    generation.checked_add(1).ok_or_else(|| {
        Error::corrupt(
            path,
            "its generation number is at its maximum, which no real sequence of saves reaches; \
             the file was altered",
        )
    })
}

/// The payload salt of a well-formed file (all zeros if it cannot be parsed, which matches
/// no real save).
fn payload_salt_of(bytes: &[u8]) -> [u8; format::PAYLOAD_SALT_LEN] {
    format::parse_header(bytes).map_or([0; format::PAYLOAD_SALT_LEN], |h| h.payload_salt)
}

/// Temp files of a save to `dest` are named `.NAME.XXXXXX.tmp`.
fn temp_prefix(dest: &Path) -> String {
    format!(
        ".{}.",
        dest.file_name()
            .map_or("sfvault".into(), |n| n.to_string_lossy())
    )
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
