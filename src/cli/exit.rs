//! Exit codes: the one table of the command-line contract, and how a command fails.
//!
//! The library reports an [`ErrorKind`]; only this file turns kinds into numbers. README.md's
//! table and the `--help` summary are tested against [`CODES`].

use std::process::ExitCode;

use sfvault::{Error, ErrorKind};

/// Every exit code sfvault itself chooses, with its meaning as README.md states it.
pub const CODES: [(u8, &str); 11] = [
    (SUCCESS, "success"),
    (FAILED, "other failure; `audit` found problems"),
    (
        2,
        "usage error (bad name, secret on the command line, bad value)",
    ),
    (3, "entry, field or vault not found"),
    (4, "wrong passphrase"),
    (LOCKED, "vault locked and no way to ask for the passphrase"),
    (
        6,
        "vault file corrupted, tampered with, of an unknown version, or an older copy than this machine has already seen (rollback; `restore` is the deliberate way back)",
    ),
    (
        7,
        "Salesforce refused (OAuth); its `error` and `error_description` are shown, with a hint",
    ),
    (8, "network or TLS failure, or a Salesforce server error"),
    (9, "vault busy: another process held the lock too long"),
    (
        10,
        "refused as unsafe (`inject`/`export` into a regular file, loose permissions, symlinked vault, a vault directory others may write to, plain http to a non-loopback host, a URL with a user name or password before `@`)",
    ),
];

/// The command did what was asked.
pub const SUCCESS: u8 = 0;
/// A failure of no other class; also `audit` when it found something.
pub const FAILED: u8 = 1;
/// The vault is locked (`status` without an agent).
pub const LOCKED: u8 = 5;
/// `exec`: the command is not executable (as shells report it).
pub const NOT_EXECUTABLE: u8 = 126;
/// `exec`: the command was not found (as shells report it).
pub const COMMAND_NOT_FOUND: u8 = 127;

/// `sfvault --help`'s closing text: the short help's, with the whole table of exit codes
/// instead of its one-paragraph summary.
pub fn long_help() -> String {
    let short = super::args::AFTER_HELP;
    let mut text = short
        .split("Exit codes:")
        .next()
        .unwrap_or(short)
        .to_owned();
    text.push_str("Exit codes:\n");
    for (code, meaning) in CODES {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text.push_str(&format!(
        "  other  exec and run: the command's own exit code; {NOT_EXECUTABLE}/{COMMAND_NOT_FOUND} when it cannot be started"
    ));
    text
}

/// The exit code of an error kind.
pub fn for_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Usage => 2,
        ErrorKind::NotFound => 3,
        ErrorKind::WrongPassphrase => 4,
        ErrorKind::Locked => LOCKED,
        ErrorKind::Corrupt => 6,
        ErrorKind::Refused => 7,
        ErrorKind::Network => 8,
        ErrorKind::Busy => 9,
        ErrorKind::Unsafe => 10,
        ErrorKind::Failed | ErrorKind::AgentGone => FAILED,
    }
}

/// The stable name of an error kind in `--json` error objects (`{"error": {"kind": …}}`).
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Usage => "usage",
        ErrorKind::NotFound => "not-found",
        ErrorKind::WrongPassphrase => "wrong-passphrase",
        ErrorKind::Locked => "locked",
        ErrorKind::Corrupt => "corrupt",
        ErrorKind::Refused => "refused",
        ErrorKind::Network => "network",
        ErrorKind::Busy => "busy",
        ErrorKind::Unsafe => "unsafe",
        ErrorKind::Failed | ErrorKind::AgentGone => "failed",
    }
}

/// How a command ended when it did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// A library error: its message on stderr, the code of its kind.
    Error(Error),
    /// `exec` could not start the command: 126 (not executable) or 127 (not found).
    Spawn {
        /// [`NOT_EXECUTABLE`] or [`COMMAND_NOT_FOUND`].
        code: u8,
        /// What failed.
        message: String,
    },
    /// A multi-step operation stopped: the error, then where things stand now (what to do next),
    /// printed after it on stderr and given as `standing` in the `--json` error object.
    Stopped {
        /// Why it stopped.
        error: Error,
        /// Where things stand (never a secret).
        standing: String,
    },
    /// The command already printed what it had to (`audit` findings, `status` of a locked
    /// vault); exit with this code and print nothing more.
    Reported(u8),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl Failure {
    /// What to print on stderr, if anything.
    pub fn message(&self) -> Option<String> {
        match self {
            Failure::Error(e) => Some(e.to_string()),
            Failure::Stopped { error, standing } => Some(format!("{error}\nsfvault: {standing}")),
            Failure::Spawn { message, .. } => Some(message.clone()),
            Failure::Reported(_) => None,
        }
    }

    /// The process exit code.
    pub fn code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Error(e) | Failure::Stopped { error: e, .. } => for_kind(e.kind()),
            Failure::Spawn { code, .. } | Failure::Reported(code) => *code,
        })
    }
}

impl Failure {
    /// The `--json` error object, `{"error": {"code", "kind", "message"}}` (plus `standing`
    /// for a stopped operation), or None when the command already printed its own output
    /// (`audit` findings, `status`, a child's exit code).
    pub fn json(&self) -> Option<serde_json::Value> {
        let (code, kind, message, standing) = match self {
            Failure::Error(e) => (for_kind(e.kind()), kind_name(e.kind()), e.to_string(), None),
            Failure::Stopped { error, standing } => (
                for_kind(error.kind()),
                kind_name(error.kind()),
                error.to_string(),
                Some(standing),
            ),
            Failure::Spawn { code, message } => (
                *code,
                if *code == COMMAND_NOT_FOUND {
                    "command-not-found"
                } else {
                    "not-executable"
                },
                message.clone(),
                None,
            ),
            Failure::Reported(_) => return None,
        };
        let mut error = serde_json::json!({"code": code, "kind": kind, "message": message});
        if let Some(standing) = standing {
            error["standing"] = standing.as_str().into();
        }
        Some(serde_json::json!({ "error": error }))
    }
}

/// What a command returns: success, or how it failed.
pub type Outcome = std::result::Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of README.md's "Exit codes" table, as (code, meaning).
    fn readme_rows() -> Vec<(String, String)> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Exit codes\n")
            .nth(1)
            .expect("README.md has an Exit codes section");
        let section = section.split("\n## ").next().unwrap();
        section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| code"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
                (cells[0].trim().to_owned(), cells[1].trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn readme_lists_exactly_the_table() {
        let rows = readme_rows();
        let numbered: Vec<(String, String)> = rows
            .iter()
            .filter(|(c, _)| c.parse::<u8>().is_ok())
            .cloned()
            .collect();
        let expected: Vec<(String, String)> = CODES
            .iter()
            .map(|(c, m)| (c.to_string(), (*m).to_owned()))
            .collect();
        assert_eq!(
            numbered, expected,
            "README.md's exit codes differ from CODES"
        );
        let other = rows
            .iter()
            .find(|(c, _)| c == "other")
            .expect("an `other` row");
        assert!(
            other
                .1
                .contains(&format!("{NOT_EXECUTABLE}/{COMMAND_NOT_FOUND}"))
        );
    }

    #[test]
    fn help_summary_names_every_code() {
        let help = super::super::args::AFTER_HELP;
        let summary = help
            .split("Exit codes:")
            .nth(1)
            .expect("help lists exit codes");
        for (code, _) in CODES {
            assert!(
                summary.contains(&format!(" {code} ")) || summary.contains(&format!("\n{code} ")),
                "help lacks exit code {code}"
            );
        }
    }

    #[test]
    fn every_kind_has_a_code_of_the_table() {
        for (kind, wire) in sfvault::agent::protocol::wire_kind::TABLE {
            let code = for_kind(kind);
            assert!(CODES.iter().any(|(c, _)| *c == code), "{kind:?}");
            // Protocol version 1 sent exit codes; the wire numbers kept them, so an agent and a
            // client of different builds agree on every kind.
            assert_eq!(i32::from(code), wire, "{kind:?}");
        }
        assert_eq!(for_kind(ErrorKind::AgentGone), FAILED);
    }
}
