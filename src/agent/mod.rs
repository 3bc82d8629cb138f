//! The agent: a background process that holds one vault open so scripts get values in
//! milliseconds without a passphrase, in the spirit of ssh-agent and rbw-agent.
//!
//! - [`protocol`]: the versioned, bounded wire format.
//! - [`server`]: the agent's accept loop, peer-uid check, idle timeout and reloads.
//! - [`client`]: finding and asking the agent of a vault, within time limits.
//!
//! One agent per vault file: its socket is named after a hash of the vault's canonical path, in
//! `$XDG_RUNTIME_DIR/sfvault/` (or a 0700 `run/` directory under the data dir).

pub mod client;
mod deadline;
pub mod protocol;
pub mod server;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The files of the agent for one vault.
#[derive(Debug, Clone)]
pub struct AgentPaths {
    /// The Unix socket.
    pub socket: PathBuf,
    /// The agent's log (refused connections, lock reasons; never secrets).
    pub log: PathBuf,
    /// The canonical vault path the agent serves.
    pub vault: PathBuf,
}

impl AgentPaths {
    /// The agent files of the vault at `vault` (which must exist: it is canonicalised).
    /// `runtime_dir` is the directory for sockets, from [`runtime_dir`].
    pub fn for_vault(vault: &Path, runtime_dir: &Path) -> Result<AgentPaths> {
        let vault = fs::canonicalize(vault).map_err(|e| Error::io("cannot resolve", vault, e))?;
        let digest =
            ring::digest::digest(&ring::digest::SHA256, vault.as_os_str().as_encoded_bytes());
        let id: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(AgentPaths {
            socket: runtime_dir.join(format!("agent-{id}.sock")),
            log: runtime_dir.join(format!("agent-{id}.log")),
            vault,
        })
    }
}

/// The directory for agent sockets: `$XDG_RUNTIME_DIR/sfvault` when that variable names an
/// absolute directory, else `fallback` (a `run` directory under the data dir).
pub fn runtime_dir(xdg_runtime_dir: Option<&Path>, fallback: &Path) -> PathBuf {
    match xdg_runtime_dir {
        Some(dir) if dir.is_absolute() && dir.is_dir() => dir.join("sfvault"),
        _ => fallback.to_path_buf(),
    }
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
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(Error::Unsafe(format!(
            "agent directory {} belongs to uid {}; refusing to use it",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Error::Unsafe(format!(
            "agent directory {} is open to other users (mode {:o}); fix it with `chmod 700 {}`",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        )));
    }
    Ok(())
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
