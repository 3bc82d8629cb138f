//! `--identity FILE` / `SFVAULT_IDENTITY_FILE`: unlocking a team vault with a private key the
//! user already has (an age identity file or an SSH private key) instead of a passphrase.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sfvault::error::{Error, Result};
use sfvault::secret::SecretString;
use sfvault::vault::recipients::{self, Identity, MAX_IDENTITY_FILE_LEN};

use super::prompt;

/// Read and parse the identity file at `path`. A regular file readable by other users is
/// refused (exit 10), as ssh refuses such a key; a pipe (`--identity <(…)`) is read as is.
pub fn load(path: &Path) -> Result<Identity> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::locked(format!("identity file {}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect", path, e))?;
    if meta.is_file() && meta.mode() & 0o077 != 0 {
        return Err(Error::Unsafe(format!(
            "identity file {} is readable by other users (mode {:o}); a private key must be \
             yours alone: `chmod 600 {}`",
            path.display(),
            meta.mode() & 0o777,
            sfvault::quote::shell_word(&path.to_string_lossy())
        )));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    (&mut file)
        .take(MAX_IDENTITY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if bytes.len() as u64 > MAX_IDENTITY_FILE_LEN {
        return Err(Error::Usage(format!(
            "identity file {} is larger than {} KiB: not an identity",
            path.display(),
            MAX_IDENTITY_FILE_LEN / 1024
        )));
    }
    recipients::load_identity(&path.display().to_string(), &bytes, ask_key_passphrase)
        .map_err(Error::Usage)
}

/// The passphrase of an encrypted SSH key, asked on the terminal (hidden); without a
/// terminal, none, and the key does not unlock.
fn ask_key_passphrase(description: &str) -> Option<SecretString> {
    if !prompt::terminal_available() {
        return None;
    }
    prompt::hidden_line(&format!("{description}: "))
        .ok()
        .flatten()
}
