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
