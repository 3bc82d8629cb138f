//! Everything that talks to the terminal or reads stdin: passphrases, secret values,
//! confirmations. Nothing here hangs without a terminal: it fails at once instead.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};

use sfvault::secret::SecretString;
use sfvault::unlock::{self, Source};
use sfvault::{Error, Result};
use zeroize::Zeroizing;

/// Largest value accepted from stdin or a file (a 4096-bit PEM key is about 3 KiB).
pub const MAX_VALUE_LEN: usize = 1024 * 1024;

/// Whether a controlling terminal can be opened for prompts.
pub fn terminal_available() -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Whether stdin is a terminal (else it carries a value from a pipe or file).
pub fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin())
}

/// The first script source that is configured, in the contract's order:
/// `--passphrase-fd`, `SFVAULT_PASSPHRASE_FILE`, `SFVAULT_PASSPHRASE_CMD`, `SFVAULT_PASSPHRASE`.
pub fn script_source(fd: Option<u32>) -> Option<Source> {
    if let Some(fd) = fd {
        return Some(Source::Fd(fd));
    }
    if let Some(path) = std::env::var_os("SFVAULT_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        return Some(Source::File(path.into()));
    }
    if let Some(cmd) = std::env::var("SFVAULT_PASSPHRASE_CMD")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Some(Source::Command(cmd));
    }
    std::env::var("SFVAULT_PASSPHRASE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| Source::Value(SecretString::new(v)))
}

/// The passphrase of an existing vault: a script source, else a hidden prompt, else exit 5.
pub fn existing_passphrase(fd: Option<u32>, vault: &std::path::Path) -> Result<SecretString> {
    if let Some(source) = script_source(fd) {
        return source.read();
    }
    if !terminal_available() {
        return Err(no_source_error());
    }
    hidden(&format!("Passphrase for {}: ", vault.display()))
}

/// A new passphrase: from `source` if given (once), else typed twice on the terminal.
pub fn new_passphrase(source: Option<Source>) -> Result<SecretString> {
    if let Some(source) = source {
        return source.read();
    }
    if !terminal_available() {
        return Err(no_source_error());
    }
    loop {
        let first = hidden("New passphrase: ")?;
        if first.is_empty() {
            super::output::stderr_line("The passphrase cannot be empty.");
            continue;
        }
        if first.len() < 12 {
            super::output::stderr_line(&format!(
                "Note: {} characters is short; a phrase of several words is stronger.",
                first.expose().chars().count()
            ));
        }
        let second = hidden("Repeat the new passphrase: ")?;
        if first == second {
            return Ok(first);
        }
        super::output::stderr_line("The two passphrases differ; try again.");
    }
}

fn no_source_error() -> Error {
    Error::locked(
        "the vault is locked and there is no terminal to ask for the passphrase; give it with \
         --passphrase-fd N, SFVAULT_PASSPHRASE_FILE, SFVAULT_PASSPHRASE_CMD or SFVAULT_PASSPHRASE",
    )
}

/// A hidden prompt on the terminal.
pub fn hidden(prompt: &str) -> Result<SecretString> {
    let text = rpassword::prompt_password(prompt).map_err(|e| Error::Locked {
        message: "cannot read from the terminal".into(),
        source: Some(Box::new(e)),
    })?;
    Ok(SecretString::new(text))
}

/// A value for `field`: `-` reads stdin; no argument reads stdin when it is not a terminal, else
/// prompts (hidden for secrets). `arg` is only accepted for non-secret fields.
pub fn field_value(
    field: &str,
    arg: Option<String>,
    secret: bool,
    entry: &str,
) -> Result<SecretString> {
    match arg.as_deref() {
        Some("-") => read_stdin(field),
        Some(_) if secret => Err(Error::Usage(format!(
            "{field} is secret and is never taken from the command line (it would stay in shell \
             history and be visible in `ps`); omit the value to be prompted, or pass `-` and pipe it on stdin"
        ))),
        Some(_) => Ok(SecretString::new(arg.unwrap_or_default())),
        None if !stdin_is_terminal() => read_stdin(field),
        None if secret => hidden(&format!("{field} for {entry} (hidden): ")),
        None => visible(&format!("{field} for {entry}: ")),
    }
}

/// Read all of stdin as UTF-8 text, at most `max` bytes.
pub fn read_stdin_limited(what: &str, max: usize) -> Result<String> {
    let buf = sfvault::secret::read_unbuffered(std::io::stdin(), max)
        .map_err(|e| Error::failed(format!("cannot read {what} from stdin: {e}")))?;
    if buf.len() > max {
        return Err(Error::Usage(format!(
            "{what} on stdin is larger than {} KiB",
            max / 1024
        )));
    }
    std::str::from_utf8(&buf)
        .map(str::to_owned)
        .map_err(|_| Error::Usage(format!("{what} on stdin is not valid UTF-8")))
}

/// Read a whole value from stdin, bounded, as UTF-8, with one trailing newline removed.
pub fn read_stdin(field: &str) -> Result<SecretString> {
    let mut buf = sfvault::secret::read_unbuffered(std::io::stdin(), MAX_VALUE_LEN)
        .map_err(|e| Error::failed(format!("cannot read {field} from stdin: {e}")))?;
    if buf.len() > MAX_VALUE_LEN {
        return Err(Error::Usage(format!(
            "the value of {field} on stdin is larger than {} KiB",
            MAX_VALUE_LEN / 1024
        )));
    }
    unlock::strip_newline(&mut buf);
    SecretString::from_utf8(buf)
        .map_err(|_| Error::Usage(format!("the value of {field} on stdin is not valid UTF-8")))
}

fn visible(prompt: &str) -> Result<SecretString> {
    let mut tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Error::Usage(format!(
                "no terminal to ask: {prompt}give the value as an argument"
            ))
        })?;
    tty.write_all(prompt.as_bytes())
        .map_err(|e| Error::failed_with("cannot write to the terminal", e))?;
    let mut line = String::new();
    BufReader::new(tty)
        .read_line(&mut line)
        .map_err(|e| Error::failed_with("cannot read from the terminal", e))?;
    let mut bytes = Zeroizing::new(line.into_bytes());
    unlock::strip_newline(&mut bytes);
    SecretString::from_utf8(bytes).map_err(|_| Error::Usage("the value is not valid UTF-8".into()))
}

/// Confirm something that deletes data: true at once with `--yes`; else ask `question` on the
/// terminal; with no terminal, refuse (exit 2) saying `what` needs `--yes`.
pub fn confirm_unless_yes(yes: bool, what: &str, question: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !terminal_available() {
        return Err(Error::Usage(format!(
            "{what}: no terminal to confirm it; pass --yes"
        )));
    }
    confirm(question)
}

/// Ask a yes/no question on the terminal; `false` unless the answer starts with y.
fn confirm(question: &str) -> Result<bool> {
    let answer = visible(&format!("{question} [y/N] "))?;
    Ok(answer.expose().trim().to_ascii_lowercase().starts_with('y'))
}
