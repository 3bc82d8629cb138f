//! The one error type of the library. Each variant belongs to one exit-code class of the command-line
//! contract, so the binary maps errors to exit codes without inspecting messages.
//!
//! Messages say what happened, to what, and what to do next. They never contain a secret value.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in sfvault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request itself is malformed: a bad name, a missing argument, a value where none is allowed.
    #[error("{0}")]
    Usage(String),

    /// An entry or a field that does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The passphrase did not unlock the vault (or the key-wrapping header was altered).
    #[error(
        "wrong passphrase for {}: the key could not be unwrapped (if you are sure of the passphrase, the file header was altered; `{}.bak` holds the previous version)",
        path.display(), path.display()
    )]
    WrongPassphrase {
        /// The vault file.
        path: PathBuf,
    },

    /// No way to get a passphrase: no agent, no script source, no terminal.
    #[error("{0}")]
    Locked(String),

    /// The vault file is damaged, tampered with, or of a version this build does not know.
    #[error("{} is not a usable vault: {detail}", path.display())]
    Corrupt {
        /// The file that was read.
        path: PathBuf,
        /// What exactly is wrong, for the user.
        detail: String,
    },

    /// The vault file is an older copy than this machine has already seen (rollback), or a copy
    /// from before a passphrase change made here.
    #[error(
        "{} is an older copy of this vault than this machine has seen ({}): an earlier version was put back in place (a .bak, an old backup, a sync tool going back in time), which would bring back old secrets and deleted entries. Put the newest copy back; or, if you mean to go back to this copy, adopt it deliberately with `sfvault restore {}` (it then becomes the newest version)",
        path.display(),
        if *superseded { format!("generation {generation}, from before a passphrase change made here") } else { format!("generation {generation}; seen here: {seen}") },
        path.display()
    )]
    RolledBack {
        /// The vault file.
        path: PathBuf,
        /// The generation of the file.
        generation: u64,
        /// The highest generation this machine saw.
        seen: u64,
        /// The file's data key was replaced by `passwd` on this machine.
        superseded: bool,
    },

    /// Another process holds the vault lock for longer than we are willing to wait.
    #[error("vault {} is busy: {holder} has held its lock for more than {waited_secs} s; try again, or set SFVAULT_LOCK_TIMEOUT to wait longer", path.display())]
    Busy {
        /// The vault file.
        path: PathBuf,
        /// Who holds the lock, as far as we know ("process 1234" or "another process").
        holder: String,
        /// How long we waited.
        waited_secs: u64,
    },

    /// Salesforce refused an OAuth request; its `error` and `error_description` are kept.
    #[error("Salesforce refused: {error}: {description}{}", hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    OAuth {
        /// The OAuth `error` code (`invalid_grant`, …).
        error: String,
        /// The OAuth `error_description`.
        description: String,
        /// What to do about it, where the cause is known.
        hint: Option<String>,
    },

    /// The network, TLS, or a Salesforce server failure.
    #[error("{0}")]
    Network(String),

    /// Refused because it would weaken protection: loose permissions, plaintext to a file, and the like.
    #[error("{0}")]
    Unsafe(String),

    /// An operating-system error on a named file.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("cannot read", "cannot create").
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Any other failure, with its explanation.
    #[error("{0}")]
    Other(String),

    /// A program sfvault was asked to run could not be started (126: not executable,
    /// 127: not found), as shells report it.
    #[error("{message}")]
    Exec {
        /// 126 or 127.
        code: i32,
        /// What failed.
        message: String,
    },

    /// The agent could not be reached (it stopped): the request was not carried out.
    #[error("{0}")]
    AgentGone(String),

    /// Exit with this code; whatever needed saying was already printed (e.g. `audit` findings).
    #[error("")]
    Exit(i32),

    /// An error reported by the agent, carrying its exit-code class.
    #[error("{message}")]
    Remote {
        /// The exit code of the agent-side error.
        code: i32,
        /// The agent's message.
        message: String,
    },
}

impl Error {
    /// The process exit code of this error's class, as in the command-line contract.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::NotFound(_) => 3,
            Error::WrongPassphrase { .. } => 4,
            Error::Locked(_) => 5,
            Error::Corrupt { .. } | Error::RolledBack { .. } => 6,
            Error::OAuth { .. } => 7,
            Error::Network(_) => 8,
            Error::Busy { .. } => 9,
            Error::Unsafe(_) => 10,
            Error::Io { .. } | Error::Other(_) | Error::AgentGone(_) => 1,
            Error::Remote { code, .. } | Error::Exec { code, .. } => *code,
            Error::Exit(code) => *code,
        }
    }

    /// Build an [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Build an [`Error::Corrupt`] for `path`.
    pub fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
