//! Every filesystem safety rule in one place: which directories and files sfvault trusts,
//! how it opens what it reads, and how it takes its locks. The rules differ by use, on purpose:
//!
//! | what | owner | others may | otherwise |
//! |---|---|---|---|
//! | vault directory (also where backups and rollback marks go) | me, or root | read and enter, not write (they could swap the file, or plant `.lock`/`.bak`) | refused, exit 10 |
//! | vault file | me | nothing; a team vault without a passphrase slot (its ciphertext is shared with every reader of its repository anyway, and there is no passphrase to guess): read, not write ([`check_vault_file`]) | refused, exit 10 |
//! | passphrase file (`SFVAULT_PASSPHRASE_FILE`) | anyone | nothing, if it is a regular file (a pipe such as `<(pass show …)` is fine) | refused, exit 10 |
//! | agent runtime directory (sockets, log, claim) | me | nothing | refused, exit 10 |
//! | agent log and claim file | me | nothing | an existing file open to others is tightened to 0600 |
//! | any file read (vault, restore source) | regular file only, opened without blocking; the vault also without following a symlink | | refused, exit 2 (a FIFO, device, socket or directory) |
//! | lock files | created 0600, never through a symlink | | locks are taken within a time limit |
//!
//! Root may own the vault directory (a home on a system volume); no one else but the user may
//! own anything sfvault reads secrets from or writes them to.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Who may own a path and which permission bits others must not have: one rule of the table.
struct Rule {
    /// How the path is named in messages ("the vault directory ", or "" for a file).
    what: &'static str,
    /// Root may own it (a directory above the user's data).
    root_may_own: bool,
    /// Bits that must be clear.
    forbidden: u32,
    /// What those bits let others do, for messages.
    others_may: &'static str,
    /// The mode that fixes it.
    fix: &'static str,
}

fn check(meta: &fs::Metadata, path: &Path, rule: &Rule) -> Result<()> {
    let Rule { what, .. } = rule;
    if meta.uid() != rustix::process::geteuid().as_raw() && !(rule.root_may_own && meta.uid() == 0)
    {
        return Err(Error::Unsafe(format!(
            "{what}{} belongs to another user (uid {}); refusing to use it",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & rule.forbidden != 0 {
        // Advise chmod only on what is the user's own and not shared on purpose: a sticky
        // directory such as /tmp must stay open to others (even when root owns and runs it).
        let shared = meta.is_dir() && meta.mode() & 0o1000 != 0;
        let fix = if !shared && meta.uid() == rustix::process::geteuid().as_raw() {
            format!(
                "fix it with `chmod {} {}`",
                rule.fix,
                crate::quote::shell_word(&path.display().to_string())
            )
        } else {
            "it is shared, not yours to close: keep the vault in a directory only you can write \
             (the default, under ~/.local/share/sfvault, is one)"
                .to_owned()
        };
        return Err(Error::Unsafe(format!(
            "{what}{} is {} other users (mode {:o}); {fix}",
            path.display(),
            rule.others_may,
            meta.mode() & 0o7777,
        )));
    }
    Ok(())
}

/// The vault file must be ours and closed to everyone else.
pub fn check_private_file(meta: &fs::Metadata, path: &Path) -> Result<()> {
    let rule = Rule {
        what: "",
        root_may_own: false,
        forbidden: 0o077,
        others_may: "accessible by",
        fix: "600",
    };
    check(meta, path, &rule)
}

/// The vault file as read: ours and closed to others ([`check_private_file`]); or, when
/// `opens_only_by_key` (a team vault without a passphrase slot, as git checks it out under the
/// usual umask), readable but not writable by others. A file others can read that has a
/// passphrase slot is refused: local users could copy it and guess the passphrase offline.
pub fn check_vault_file(meta: &fs::Metadata, path: &Path, opens_only_by_key: bool) -> Result<()> {
    if opens_only_by_key && meta.mode() & 0o022 == 0 {
        let rule = Rule {
            what: "",
            root_may_own: false,
            forbidden: 0o022,
            others_may: "writable by",
            fix: "644",
        };
        return check(meta, path, &rule);
    }
    check_private_file(meta, path).map_err(|e| match e {
        Error::Unsafe(m) if meta.mode() & 0o022 == 0 && meta.mode() & 0o044 != 0 => {
            Error::Unsafe(format!(
                "{m}. Its passphrase slot could be guessed offline by anyone who can read it; a \
                 team vault kept in git is better without one (`sfvault passwd --remove`), and \
                 then a checkout readable by others is fine"
            ))
        }
        other => other,
    })
}

/// The directory holding `path` (`.` for a bare file name).
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The vault directory must be ours and not writable by others (who could swap the file).
/// Exit 10 ([`Error::Unsafe`]) otherwise.
pub fn check_vault_dir(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| Error::io("cannot inspect", dir, e))?;
    // Sticky directories (like /tmp) are refused too: others may still create the companion
    // files (.lock, .bak) and block or observe saves.
    let rule = Rule {
        what: "the vault directory ",
        root_may_own: true,
        forbidden: 0o022,
        others_may: "writable by",
        fix: "700",
    };
    check(&meta, dir, &rule)
}

/// A passphrase file that is a regular file must be closed to others; a pipe (`<(…)`) passes.
pub fn check_passphrase_file(meta: &fs::Metadata, path: &Path) -> Result<()> {
    if meta.is_file() && meta.mode() & 0o077 != 0 {
        return Err(Error::Unsafe(format!(
            "passphrase file {} is readable by other users (mode {:o}); fix it with `chmod 600 {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// Create a directory for vault files (the vault's own, the rollback marks') 0700 if needed,
/// and check it as [`check_vault_dir`] does; `what` names it in errors.
pub fn ensure_vault_dir(dir: &Path, what: &str) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::failed_with(format!("cannot create {what} {}", dir.display()), e))?;
    check_vault_dir(dir)
}

/// Create the runtime directory 0700 if needed, and refuse one that another user owns or that
/// others can enter.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create", dir, e))?;
    check_private_dir(dir)
}

/// Refuse a directory owned by another user or open to others.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io("cannot inspect", dir, e))?;
    if !meta.is_dir() {
        return Err(Error::Unsafe(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let rule = Rule {
        what: "agent directory ",
        root_may_own: false,
        forbidden: 0o077,
        others_may: "open to",
        fix: "700",
    };
    check(&meta, dir, &rule)
}

/// Open for reading with `O_NONBLOCK` (opening a FIFO with no writer would otherwise wait
/// forever) and, when `nofollow`, `O_NOFOLLOW`. Reads of a regular file ignore `O_NONBLOCK`.
pub fn open_nonblocking(path: &Path, nofollow: bool) -> std::io::Result<File> {
    let mut flags = rustix::fs::OFlags::NONBLOCK;
    if nofollow {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

/// The metadata of an open file that must be a regular one (not a FIFO, device, socket or
/// directory, which could block, never end, or not be a vault at all).
pub fn regular_file_meta(file: &File, path: &Path) -> Result<fs::Metadata> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect", path, e))?;
    if !meta.is_file() {
        let ft = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(Error::Usage(format!(
            "{} is {kind}, not a vault file; nothing was read from it",
            path.display()
        )));
    }
    Ok(meta)
}

/// Read a regular file of at most `max` bytes: its size checked first, and bounded again while
/// reading (it may grow).
pub fn read_bounded(file: File, meta: &fs::Metadata, path: &Path, max: u64) -> Result<Vec<u8>> {
    let mib = max >> 20;
    if meta.len() > max {
        return Err(Error::corrupt(
            path,
            format!("{} bytes is over the {mib} MiB limit", meta.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::corrupt(
            path,
            format!("larger than the {mib} MiB limit"),
        ));
    }
    Ok(bytes)
}

/// Open (creating it 0600) one of the agent's own files, `what` naming it in errors: never
/// through a symlink, only a regular file of ours (opened with `O_NONBLOCK`, so a FIFO there
/// fails instead of waiting for a peer; blocking again once checked), and an existing one left
/// open to others is tightened to 0600. `append` for the log, read-write for the claim.
pub fn open_private_file(path: &Path, what: &str, append: bool) -> Result<fs::File> {
    let refused = || {
        Error::Unsafe(format!(
            "{what} {} is a symbolic link or not a regular file; remove it and unlock again",
            path.display()
        ))
    };
    let mut options = fs::OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.read(true).write(true).truncate(false);
    }
    let file = options
        .create(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| match fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_file() => refused(),
            _ => Error::io("cannot open", path, e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect", path, e))?;
    if !meta.is_file() {
        return Err(refused());
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(Error::Unsafe(format!(
            "{what} {} belongs to uid {}; remove it and unlock again",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("cannot restrict", path, e))?;
    }
    let blocking = if append {
        rustix::fs::OFlags::APPEND
    } else {
        rustix::fs::OFlags::empty()
    };
    rustix::fs::fcntl_setfl(&file, blocking)
        .map_err(|e| Error::io("cannot set up", path, e.into()))?;
    Ok(file)
}

/// Open (creating it 0600, never through a symlink) a file used only for its `flock`.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Take `file`'s exclusive `flock`, trying every 5 ms for up to `within`: `Ok(false)` when
/// another process still holds it then. Every lock sfvault takes is bounded this way, so a
/// stray holder (a hung process, a `flock` in a shell) delays a command, never hangs it.
pub fn lock_within(file: &File, within: Duration) -> std::io::Result<bool> {
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < within => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => return Ok(false),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn each_use_has_its_rule() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        // A directory others may enter: fine for a vault, not for the agent's sockets.
        mode(&d, 0o755);
        check_vault_dir(&d).unwrap();
        assert_eq!(check_private_dir(&d).unwrap_err().kind(), ErrorKind::Unsafe);
        // A directory others may write to: refused for both.
        mode(&d, 0o777);
        assert_eq!(check_vault_dir(&d).unwrap_err().kind(), ErrorKind::Unsafe);
        mode(&d, 0o700);

        let f = d.join("vault.sfv");
        fs::write(&f, b"x").unwrap();
        mode(&f, 0o644);
        let meta = fs::metadata(&f).unwrap();
        assert_eq!(
            check_private_file(&meta, &f).unwrap_err().kind(),
            ErrorKind::Unsafe
        );
        // The agent's own files are tightened instead.
        let log = open_private_file(&f, "the log", true).unwrap();
        assert_eq!(log.metadata().unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn reads_refuse_what_is_not_a_regular_file_and_bound_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        // Opening does not wait for a writer; the type check refuses it.
        let file = open_nonblocking(&fifo, true).unwrap();
        assert_eq!(
            regular_file_meta(&file, &fifo).unwrap_err().kind(),
            ErrorKind::Usage
        );
        let f = dir.path().join("big");
        fs::write(&f, vec![0u8; 2 << 20]).unwrap();
        let file = open_nonblocking(&f, true).unwrap();
        let meta = regular_file_meta(&file, &f).unwrap();
        let err = read_bounded(file, &meta, &f, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("over the 1 MiB limit"), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(open_nonblocking(&link, true).is_err());
    }
}
