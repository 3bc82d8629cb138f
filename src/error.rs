//! The one error type of the library, and the kinds callers act on.
//!
//! Every [`Error`] has an [`ErrorKind`]: the class a caller decides on (ask again, fall back to a
//! local unlock, report a refusal). The binary turns kinds into exit codes; the library knows no
//! exit numbers. Variants keep what went wrong as data (the entry, the field, the file, the OS
//! error as a source), so nobody has to read a message to know what happened.
//!
//! Messages say what happened, to what, and what to do next. They never contain a secret value.

use std::path::{Path, PathBuf};

/// A boxed underlying error, kept as the [`std::error::Error::source`] of an [`Error`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The class of an error: what a caller needs to decide what to do, and what crosses the agent
/// socket (see `agent::protocol`). One kind per class of the command-line contract's exit codes,
/// plus [`ErrorKind::AgentGone`], which never leaves the process. Deliberately exhaustive: a
/// new kind must be given its exit code and wire number, which the compiler then asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Something failed that is none of the classes below (an OS call, a crypto library).
    Failed,
    /// The request itself is malformed: a bad name, a missing argument, a value where none is allowed.
    Usage,
    /// An entry, a field, a past value or a vault that does not exist.
    NotFound,
    /// The passphrase did not unlock the vault.
    WrongPassphrase,
    /// No way to unlock: no agent, no script source, no terminal; or the agent is locking.
    Locked,
    /// The vault file is damaged, tampered with, of an unknown version, or rolled back.
    Corrupt,
    /// Salesforce refused an OAuth request.
    Refused,
    /// The network, TLS, or a Salesforce server failure.
    Network,
    /// Another process holds the vault lock for too long.
    Busy,
    /// Refused because it would weaken protection.
    Unsafe,
    /// The agent could not be reached: the request was not carried out, the caller may go on
    /// without it.
    AgentGone,
}

/// Which thing a [`Error::NotFound`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// No entry of this name.
    Entry {
        /// The entry asked for.
        entry: String,
    },
    /// The entry exists, the field does not (or is empty where a value is needed).
    Field {
        /// The entry.
        entry: String,
        /// The field asked for.
        field: String,
    },
    /// The field has fewer past values than asked for.
    PastValue {
        /// The entry.
        entry: String,
        /// The field.
        field: String,
        /// How many past values it has.
        count: usize,
    },
    /// No recipient of this name.
    Recipient {
        /// The name asked for.
        name: String,
    },
    /// No slice of this name.
    Slice {
        /// The name asked for.
        name: String,
    },
    /// No vault file.
    Vault {
        /// Where it was looked for.
        path: PathBuf,
    },
}

/// Everything that can go wrong in sfvault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request itself is malformed: a bad name, a missing argument, a value where none is allowed.
    #[error("{0}")]
    Usage(String),

    /// An entry, field, past value or vault that does not exist; `message` says what to do.
    #[error("{message}")]
    NotFound {
        /// What is missing.
        missing: Missing,
        /// The whole sentence for the user.
        message: String,
    },

    /// The passphrase did not unlock the vault (or the key-wrapping header was altered).
    #[error(
        "wrong passphrase for {}{}",
        path.display(),
        backup.as_ref().map(|b| format!(" (if you are sure of it, the file's key header may be damaged: {} holds the previous version)", b.display())).unwrap_or_default()
    )]
    WrongPassphrase {
        /// The vault file.
        path: PathBuf,
        /// The vault's previous version, named only when it exists.
        backup: Option<PathBuf>,
    },

    /// The identity given is not one of the vault's recipients (exit 4, as a wrong passphrase).
    #[error(
        "this identity does not open {}: none of its keys is a recipient of the vault (`sfvault recipient list` names them; a member adds yours with `sfvault recipient add PUBLIC_KEY`)",
        path.display()
    )]
    NotARecipient {
        /// The vault file.
        path: PathBuf,
    },

    /// No way to get a passphrase: no agent, no script source, no terminal.
    #[error("{message}{}", cause(source))]
    Locked {
        /// What to do about it.
        message: String,
        /// The failure of the source that was tried, if one was.
        #[source]
        source: Option<Source>,
    },

    /// The vault file is damaged, tampered with, or of a version this build does not know.
    #[error("{} is not a usable vault: {detail}", path.display())]
    Corrupt {
        /// The file that was read.
        path: PathBuf,
        /// What exactly is wrong, for the user.
        detail: String,
    },

    /// A team vault that is not the one this machine knew at this path: another vault put in
    /// its place, or a new data key that does not come from the known one.
    #[error(
        "{} is not the team vault this machine knew at this path: {detail}. Anyone with push access to its repository can make a vault encrypted to your public key, so check with your team before using it; if this copy is right, adopt it deliberately with `sfvault --vault {} restore {}`",
        path.display(),
        crate::quote::shell_word(&path.to_string_lossy()),
        crate::quote::shell_word(&path.to_string_lossy())
    )]
    Substituted {
        /// The vault file.
        path: PathBuf,
        /// What changed.
        detail: String,
    },

    /// The vault file is an older copy than this machine has already seen (rollback), or a copy
    /// from before a key change made here (`passwd`, `recipient rm`).
    #[error(
        "{} is an older copy of this vault than this machine has seen ({}): an earlier version was put back in place (a .bak, an old backup, a sync tool going back in time), which would bring back old secrets and deleted entries. Put the newest copy back; or, if you mean to go back to this copy, adopt it deliberately with `sfvault --vault {} restore {}` (it then becomes the newest version)",
        path.display(),
        if *superseded { format!("generation {generation}, from before its key was changed here by passwd or recipient rm") } else { format!("generation {generation}; seen here: {seen}") },
        crate::quote::shell_word(&path.to_string_lossy()),
        crate::quote::shell_word(&path.to_string_lossy())
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

    /// Salesforce refused an API call (Connect REST or Metadata API): its own words are kept.
    #[error("Salesforce refused {call} (HTTP {status}): {code}: {message}")]
    Api {
        /// What was asked, in words ("staging a new consumer key and secret").
        call: String,
        /// The HTTP status.
        status: u16,
        /// Salesforce's `errorCode` (REST) or fault code / status code (SOAP).
        code: String,
        /// Salesforce's message.
        message: String,
    },

    /// The network, TLS, or a Salesforce server failure.
    #[error("{message}{}", cause(source))]
    Network {
        /// What failed, with what to do.
        message: String,
        /// The transport's error, if there was one.
        #[source]
        source: Option<Source>,
    },

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

    /// A step failed for a reason of none of the other kinds (an OS call on no named file, a
    /// crypto library, a process that changed the vault under us). Never matched on: callers
    /// decide by [`Error::kind`].
    #[error("{context}{}", cause(source))]
    Failed {
        /// What was being done, or what happened.
        context: String,
        /// The underlying error, if there is one.
        #[source]
        source: Option<Source>,
    },

    /// The agent could not be reached (it stopped): the request was not carried out.
    #[error("{reason}")]
    AgentGone {
        // The reason already quotes the socket error; main prints only this text.
        /// What happened to it.
        reason: String,
        /// The socket error.
        #[source]
        source: Option<std::io::Error>,
    },

    /// An error reported by the agent: its kind and its message.
    #[error("{message}")]
    Remote {
        /// The kind of the agent-side error.
        kind: ErrorKind,
        /// The agent's message.
        message: String,
    },
}

impl Error {
    /// The class of this error, which callers decide on and the binary maps to an exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::WrongPassphrase { .. } | Error::NotARecipient { .. } => {
                ErrorKind::WrongPassphrase
            }
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Corrupt { .. } | Error::RolledBack { .. } | Error::Substituted { .. } => {
                ErrorKind::Corrupt
            }
            Error::OAuth { .. } | Error::Api { .. } => ErrorKind::Refused,
            Error::Network { .. } => ErrorKind::Network,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Unsafe(_) => ErrorKind::Unsafe,
            Error::Io { .. } | Error::Failed { .. } => ErrorKind::Failed,
            Error::AgentGone { .. } => ErrorKind::AgentGone,
            Error::Remote { kind, .. } => *kind,
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

    /// Build an [`Error::Failed`] without an underlying error.
    pub fn failed(context: impl Into<String>) -> Error {
        Error::Failed {
            context: context.into(),
            source: None,
        }
    }

    /// Build an [`Error::Failed`]: `context` (what was being done), then its cause.
    pub fn failed_with(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Failed {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// Build an [`Error::Locked`] saying what to do.
    pub fn locked(message: impl Into<String>) -> Error {
        Error::Locked {
            message: message.into(),
            source: None,
        }
    }

    /// Build an [`Error::Network`] without an underlying error.
    pub fn network(message: impl Into<String>) -> Error {
        Error::Network {
            message: message.into(),
            source: None,
        }
    }

    /// Build an [`Error::NotFound`] for a missing entry, with the standard advice.
    pub fn no_entry(entry: &impl std::fmt::Display) -> Error {
        Error::NotFound {
            missing: Missing::Entry {
                entry: entry.to_string(),
            },
            message: format!(
                "no entry {entry}; `sfvault list` shows the entries, `sfvault add {entry}` creates it"
            ),
        }
    }

    /// Build an [`Error::NotFound`] for a missing `field` of `entry`; `message` is the whole
    /// sentence (what needs it, how to set it).
    pub fn no_field(
        entry: &impl std::fmt::Display,
        field: &str,
        message: impl Into<String>,
    ) -> Error {
        Error::NotFound {
            missing: Missing::Field {
                entry: entry.to_string(),
                field: field.to_owned(),
            },
            message: message.into(),
        }
    }
}

/// ": the cause" when there is one. Messages carry their cause in their text (the binary and the
/// agent pass on `to_string()` only); `source()` still gives it as a value.
fn cause(source: &Option<Source>) -> String {
    source
        .as_ref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default()
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn sources_are_kept_and_shown_once() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::failed_with("cannot start the agent", io);
        assert_eq!(e.to_string(), "cannot start the agent: disk on fire");
        assert_eq!(e.source().unwrap().to_string(), "disk on fire");
        assert_eq!(e.kind(), ErrorKind::Failed);
        assert!(Error::failed("plain").source().is_none());
    }

    #[test]
    fn every_kind_with_a_source_shows_it() {
        let e = Error::Locked {
            message: "SFVAULT_PASSPHRASE_CMD could not start".into(),
            source: Some(Box::new(std::io::Error::other("no such file"))),
        };
        assert_eq!(
            e.to_string(),
            "SFVAULT_PASSPHRASE_CMD could not start: no such file"
        );
        assert_eq!(Error::locked("locked").to_string(), "locked");
        let e = Error::Network {
            message: "cannot reach acme.example".into(),
            source: Some(Box::new(std::io::Error::other("refused"))),
        };
        assert_eq!(e.to_string(), "cannot reach acme.example: refused");
    }

    #[test]
    fn not_found_says_what_is_missing() {
        let e = Error::no_entry(&"acme/ci");
        assert!(
            matches!(&e, Error::NotFound { missing: Missing::Entry { entry }, .. } if entry == "acme/ci")
        );
        assert!(e.to_string().starts_with("no entry acme/ci;"));
        let e = Error::no_field(&"acme/ci", "username", "acme/ci has no username");
        assert!(
            matches!(&e, Error::NotFound { missing: Missing::Field { field, .. }, .. } if field == "username")
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_remote_error_has_the_agents_kind() {
        let e = Error::Remote {
            kind: ErrorKind::Locked,
            message: "the agent is locking".into(),
        };
        assert_eq!(e.kind(), ErrorKind::Locked);
    }
}
