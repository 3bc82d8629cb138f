//! Where a passphrase comes from when there is no terminal to ask: a file descriptor, a file, a
//! command, or (weakest) an environment variable. The terminal prompt itself lives in the binary;
//! the agent (when it exists) is tried before all of these.
//!
//! Every source is bounded and its text is held in a [`SecretString`] from the first byte.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::SecretString;

/// Longest passphrase accepted from any source.
pub const MAX_PASSPHRASE_LEN: usize = 4096;

/// The environment variables a passphrase may be taken from, removed from every child we start.
pub const PASSPHRASE_ENV_VARS: &[&str] = &[
    "SFVAULT_PASSPHRASE",
    "SFVAULT_PASSPHRASE_FILE",
    "SFVAULT_PASSPHRASE_CMD",
    "SFVAULT_NEW_PASSPHRASE_FILE",
];

/// One non-interactive place a passphrase can come from.
#[derive(Debug)]
pub enum Source {
    /// An inherited, already-open file descriptor (`--passphrase-fd N`).
    Fd(u32),
    /// A file holding the passphrase (`SFVAULT_PASSPHRASE_FILE`); must not be readable by others.
    File(PathBuf),
    /// A shell command whose standard output is the passphrase (`SFVAULT_PASSPHRASE_CMD`).
    Command(String),
    /// The passphrase itself, from `SFVAULT_PASSPHRASE`.
    Value(SecretString),
}

impl Source {
    /// Where this passphrase came from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Fd(n) => format!("file descriptor {n}"),
            Source::File(p) => format!("passphrase file {}", p.display()),
            Source::Command(_) => "SFVAULT_PASSPHRASE_CMD".to_owned(),
            Source::Value(_) => "SFVAULT_PASSPHRASE".to_owned(),
        }
    }

    /// Read the passphrase. A single trailing newline (`\n` or `\r\n`) is removed; an empty
    /// result is an error.
    pub fn read(&self) -> Result<SecretString> {
        let text = match self {
            Source::Fd(n) => read_fd(*n)?,
            Source::File(path) => read_file(path)?,
            Source::Command(cmd) => run_command(cmd)?,
            Source::Value(v) => return non_empty(v.duplicate(), self),
        };
        non_empty(text, self)
    }
}

fn non_empty(pass: SecretString, source: &Source) -> Result<SecretString> {
    if pass.is_empty() {
        return Err(Error::locked(format!(
            "the passphrase from {} is empty",
            source.describe()
        )));
    }
    Ok(pass)
}

/// Bounded read of `reader` into a secret, trailing newline removed.
fn read_secret(reader: impl Read, what: &str) -> Result<SecretString> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_PASSPHRASE_LEN + 1));
    reader
        .take(MAX_PASSPHRASE_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::locked(format!("cannot read the passphrase from {what}: {e}")))?;
    if buf.len() > MAX_PASSPHRASE_LEN {
        return Err(Error::Usage(format!(
            "the passphrase from {what} is longer than {MAX_PASSPHRASE_LEN} bytes"
        )));
    }
    strip_newline(&mut buf);
    SecretString::from_utf8(buf)
        .map_err(|_| Error::Usage(format!("the passphrase from {what} is not valid UTF-8")))
}

/// Remove one trailing `\n` or `\r\n`.
pub fn strip_newline(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

fn read_fd(fd: u32) -> Result<SecretString> {
    // Reopening /dev/fd/N reads the same pipe or file without any unsafe fd juggling.
    let path = format!("/dev/fd/{fd}");
    let file = std::fs::File::open(&path).map_err(|e| {
        Error::locked(format!(
            "--passphrase-fd {fd}: descriptor {fd} is not open for reading ({e}); start sfvault as \
             `sfvault --passphrase-fd 3 … 3<passphrase-file`"
        ))
    })?;
    read_secret(file, &format!("file descriptor {fd}"))
}

fn read_file(path: &Path) -> Result<SecretString> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| {
            Error::locked(format!(
                "SFVAULT_PASSPHRASE_FILE {}: cannot open it: {e}",
                path.display()
            ))
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect", path, e))?;
    crate::fs_safety::check_passphrase_file(&meta, path)?;
    read_secret(file, &format!("{}", path.display()))
}

fn run_command(cmd: &str) -> Result<SecretString> {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for var in PASSPHRASE_ENV_VARS {
        command.env_remove(var);
    }
    let mut child = command.spawn().map_err(|e| Error::Locked {
        message: "SFVAULT_PASSPHRASE_CMD could not start".into(),
        source: Some(Box::new(e)),
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let read = read_secret(stdout, "SFVAULT_PASSPHRASE_CMD");
    let status = child.wait().map_err(|e| Error::Locked {
        message: "SFVAULT_PASSPHRASE_CMD".into(),
        source: Some(Box::new(e)),
    })?;
    if !status.success() {
        return Err(Error::locked(format!(
            "SFVAULT_PASSPHRASE_CMD failed ({status}); nothing was unlocked"
        )));
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn command_source_strips_newline() {
        let p = Source::Command("printf 'pw one\\n'".into()).read().unwrap();
        assert_eq!(p.expose(), "pw one");
        let err = Source::Command("exit 3".into()).read().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        let empty = Source::Command("true".into()).read().unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::Locked);
    }

    #[test]
    fn newline_stripping() {
        let mut v = b"a\r\n".to_vec();
        strip_newline(&mut v);
        assert_eq!(v, b"a");
        let mut w = b"a\n\n".to_vec();
        strip_newline(&mut w);
        assert_eq!(w, b"a\n");
    }
}
