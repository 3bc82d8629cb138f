//! Recipients: public keys the vault's data key is wrapped to, in the standard age format, so a
//! team member or a CI runner unlocks with a key they already have (an `age-keygen` identity, an
//! SSH ed25519 or RSA key, an age plugin such as a YubiKey) instead of a shared passphrase.
//!
//! This is the one module that uses the `age` crate: ring cannot use a static X25519 key, and
//! age's stanzas are what other age tools read. The wrapped data key is a whole age file (binary,
//! not armored) whose plaintext is the 32-byte data key: `age -d -i key.txt` on those bytes gives
//! the data key, and a vault wrapped by another age implementation opens here.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use age::secrecy::ExposeSecret;

use crate::secret::{SecretKey, SecretString};

/// Most recipients one vault may have (each adds a stanza to every save).
pub const MAX_RECIPIENTS: usize = 256;
/// Longest recipient name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest public key text, in bytes (a 16384-bit `ssh-rsa` key is about 2,800).
pub const MAX_KEY_LEN: usize = 4096;
/// Largest wrapped data key (the age file) accepted: stanzas of 256 RSA-16384 keys fit.
pub const MAX_WRAPPED_LEN: usize = 1 << 20;
/// Largest identity file read.
pub const MAX_IDENTITY_FILE_LEN: u64 = 64 * 1024;

/// One recipient as the vault stores it: a name people recognise and the public key text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recipient {
    /// Who or what this is (`alice`, `ci-github`); unique in a vault.
    pub name: String,
    /// The public key in its usual text form (`age1…`, `ssh-ed25519 AAAA…`), no comment.
    pub key: String,
}

/// What kind of key a recipient is, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// An age X25519 key (`age1…`), as `age-keygen` makes.
    X25519,
    /// An age post-quantum or tag key (`age1pq1…`, `age1tag1…`).
    AgeOther,
    /// An SSH key (`ssh-ed25519`, `ssh-rsa`).
    Ssh(String),
    /// A key held by an age plugin (`age1yubikey1…`): the plugin's name.
    Plugin(String),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::X25519 => f.write_str("age X25519"),
            KeyKind::AgeOther => f.write_str("age"),
            KeyKind::Ssh(kind) => f.write_str(kind),
            KeyKind::Plugin(name) => write!(f, "age plugin {name}"),
        }
    }
}

/// A public key read from what a user typed or a `.pub` file: its canonical text, its kind, and
/// a name it suggests (an SSH key's comment, an age identity file's name is not known here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// Canonical text: an age key as is, an SSH key as `TYPE BASE64` without its comment.
    pub key: String,
    /// What kind of key it is.
    pub kind: KeyKind,
    /// A name taken from the key itself (an SSH key's comment), if any.
    pub suggested_name: Option<String>,
}

/// Parse one public key: an age recipient (`age1…`, including plugin recipients), or an SSH
/// public key line (`ssh-ed25519 AAAA… comment`, `ssh-rsa …`). The error says what is wrong,
/// never quoting more than the key's first characters.
pub fn parse_key(text: &str) -> Result<ParsedKey, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty public key".into());
    }
    if text.len() > MAX_KEY_LEN {
        return Err(format!("a public key is at most {MAX_KEY_LEN} bytes"));
    }
    if text.starts_with("AGE-SECRET-KEY-") || text.starts_with("AGE-PLUGIN-") {
        return Err(
            "that is a private key (an identity), not a public key: give its public key \
             (`age-keygen -y FILE` prints it)"
                .into(),
        );
    }
    if text.starts_with("-----BEGIN") {
        return Err(
            "that is an SSH private key: give the public key (the `.pub` file beside it)".into(),
        );
    }
    if text.starts_with("age1") {
        return parse_age_key(text);
    }
    parse_ssh_key(text)
}

fn parse_age_key(text: &str) -> Result<ParsedKey, String> {
    let canonical = |kind| ParsedKey {
        key: text.to_owned(),
        kind,
        suggested_name: None,
    };
    if text.parse::<age::x25519::Recipient>().is_ok() {
        return Ok(canonical(KeyKind::X25519));
    }
    if text.parse::<age::tag::Recipient>().is_ok() || text.parse::<age::tagpq::Recipient>().is_ok()
    {
        return Ok(canonical(KeyKind::AgeOther));
    }
    match text.parse::<age::plugin::Recipient>() {
        Ok(r) => Ok(canonical(KeyKind::Plugin(r.plugin().to_owned()))),
        Err(_) => Err(format!(
            "not a valid age public key ({}…): age keys are `age1` followed by bech32 text, as \
             `age-keygen` prints them",
            prefix(text)
        )),
    }
}

fn parse_ssh_key(text: &str) -> Result<ParsedKey, String> {
    let mut words = text.split_whitespace();
    let (Some(kind), Some(body)) = (words.next(), words.next()) else {
        return Err(format!(
            "not a public key ({}…): expected `age1…`, `ssh-ed25519 AAAA…` or `ssh-rsa AAAA…`",
            prefix(text)
        ));
    };
    let comment: Vec<&str> = words.collect();
    let key = format!("{kind} {body}");
    use age::ssh::ParseRecipientKeyError as E;
    match key.parse::<age::ssh::Recipient>() {
        Ok(_) => Ok(ParsedKey {
            key,
            kind: KeyKind::Ssh(kind.to_owned()),
            suggested_name: (!comment.is_empty()).then(|| comment.join(" ")),
        }),
        Err(E::RsaModulusTooSmall) => Err("this RSA key is too small (age needs 2048 bits)".into()),
        Err(E::RsaModulusTooLarge) => Err("this RSA key is too large (at most 16384 bits)".into()),
        Err(E::Unsupported(t)) => Err(format!(
            "SSH keys of type {t} cannot be recipients: use ssh-ed25519 or ssh-rsa, or an age key"
        )),
        Err(_) => Err(format!(
            "not a public key ({}…): expected `age1…`, `ssh-ed25519 AAAA…` or `ssh-rsa AAAA…`",
            prefix(text)
        )),
    }
}

/// At most the first 12 characters of `text`, to name it in an error without repeating it.
fn prefix(text: &str) -> String {
    text.chars().take(12).collect()
}

/// Wrap `data_key` to every recipient: an age file (binary) whose plaintext is the 32 bytes.
/// Plugin recipients run their plugin (`age-plugin-NAME` on `PATH`), which may ask the user to
/// touch a device.
pub fn wrap(data_key: &SecretKey, recipients: &[Recipient]) -> Result<Vec<u8>, String> {
    if recipients.is_empty() {
        return Err("no recipients to wrap the key to".into());
    }
    let mut boxed: Vec<Box<dyn age::Recipient>> = Vec::new();
    let mut plugins: BTreeMap<String, Vec<age::plugin::Recipient>> = BTreeMap::new();
    for r in recipients {
        if let Ok(k) = r.key.parse::<age::x25519::Recipient>() {
            boxed.push(Box::new(k));
        } else if let Ok(k) = r.key.parse::<age::tag::Recipient>() {
            boxed.push(Box::new(k));
        } else if let Ok(k) = r.key.parse::<age::tagpq::Recipient>() {
            boxed.push(Box::new(k));
        } else if let Ok(k) = r.key.parse::<age::ssh::Recipient>() {
            boxed.push(Box::new(k));
        } else if let Ok(k) = r.key.parse::<age::plugin::Recipient>() {
            plugins.entry(k.plugin().to_owned()).or_default().push(k);
        } else {
            return Err(format!("recipient {}: its key no longer parses", r.name));
        }
    }
    for (name, keys) in &plugins {
        let plugin = age::plugin::RecipientPluginV1::new(name, keys, &[], Ask(|_| None))
            .map_err(|e| format!("age plugin {name}: {e}"))?;
        boxed.push(Box::new(plugin));
    }
    let encryptor = age::Encryptor::with_recipients(boxed.iter().map(|b| b.as_ref() as _))
        .map_err(|e| format!("cannot wrap the key: {e}"))?;
    let mut out = Vec::with_capacity(256 * recipients.len());
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| format!("cannot wrap the key: {e}"))?;
    std::io::Write::write_all(&mut writer, data_key.expose())
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| format!("cannot wrap the key: {e}"))?;
    if out.len() > MAX_WRAPPED_LEN {
        return Err("the wrapped key would exceed 1 MiB: too many large recipients".into());
    }
    Ok(out)
}

/// Why an identity did not unwrap the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnwrapError {
    /// None of the identity's keys is a recipient of this vault.
    NotARecipient,
    /// The wrapped key is not a valid age file, or does not hold a 32-byte key.
    Corrupt(String),
}

/// Private keys loaded from one identity file, ready to unwrap.
pub struct Identity {
    keys: Vec<Box<dyn age::Identity>>,
    /// The file's path, for messages.
    pub path: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity({}, {} key(s), redacted)",
            self.path,
            self.keys.len()
        )
    }
}

/// How an encrypted SSH key asks for its passphrase (the command line gives a hidden prompt on
/// the terminal; a script gets `None` and a clear error).
pub type AskPassphrase = fn(&str) -> Option<SecretString>;

#[derive(Clone)]
struct Ask(AskPassphrase);

impl age::Callbacks for Ask {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }
    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }
    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }
    fn request_passphrase(&self, description: &str) -> Option<age::secrecy::SecretString> {
        let pass = (self.0)(description)?;
        Some(age::secrecy::SecretString::from(pass.expose().to_owned()))
    }
}

/// Load the identity file at `path` from its `bytes`: an age identity file (`AGE-SECRET-KEY-1…`
/// lines, `AGE-PLUGIN-…` lines for plugins; `#` comments) or an SSH private key (OpenSSH
/// format; an encrypted one asks `ask` for its passphrase when it is used).
pub fn load_identity(path: &str, bytes: &[u8], ask: AskPassphrase) -> Result<Identity, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("identity file {path} is not text (UTF-8)"))?;
    if text.trim_start().starts_with("-----BEGIN") {
        let id = age::ssh::Identity::from_buffer(std::io::BufReader::new(bytes), Some(path.into()))
            .map_err(|e| format!("identity file {path}: not a usable SSH private key ({e})"))?;
        if let age::ssh::Identity::Unsupported(k) = &id {
            let mut why = String::new();
            let _ = std::fmt::Write::write_fmt(&mut why, format_args!("{}", Unsupported(k, path)));
            return Err(why);
        }
        return Ok(Identity {
            keys: vec![Box::new(id.with_callbacks(Ask(ask)))],
            path: path.to_owned(),
        });
    }
    let file = age::IdentityFile::from_buffer(std::io::BufReader::new(bytes)).map_err(|e| {
        format!("identity file {path}: {e} (expected AGE-SECRET-KEY-1… lines or an SSH key)")
    })?;
    let keys = file
        .with_callbacks(Ask(ask))
        .into_identities()
        .map_err(|e| format!("identity file {path}: {e}"))?;
    if keys.is_empty() {
        return Err(format!("identity file {path} holds no key"));
    }
    Ok(Identity {
        keys: keys
            .into_iter()
            .map(|k| k as Box<dyn age::Identity>)
            .collect(),
        path: path.to_owned(),
    })
}

struct Unsupported<'a>(&'a age::ssh::UnsupportedKey, &'a str);

impl std::fmt::Display for Unsupported<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display(f, Some(self.1))
    }
}

/// The public keys of an age identity file's native keys (what `age-keygen -y` prints), for
/// `recipient add` given an identity file. SSH and plugin identities give none.
pub fn public_keys_of_age_identities(bytes: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.trim().parse::<age::x25519::Identity>().ok())
        .map(|i| i.to_public().to_string())
        .collect()
}

/// Unwrap the data key from `wrapped` (an age file) with `identity`.
pub fn unwrap(wrapped: &[u8], identity: &Identity) -> Result<SecretKey, UnwrapError> {
    let decryptor = age::Decryptor::new_buffered(wrapped)
        .map_err(|e| UnwrapError::Corrupt(format!("the wrapped key is not an age file: {e}")))?;
    if decryptor.is_scrypt() {
        return Err(UnwrapError::Corrupt(
            "the wrapped key is passphrase-encrypted, not to recipients".into(),
        ));
    }
    let mut reader = match decryptor.decrypt(identity.keys.iter().map(|k| k.as_ref() as _)) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => return Err(UnwrapError::NotARecipient),
        Err(e) => return Err(UnwrapError::Corrupt(format!("cannot unwrap the key: {e}"))),
    };
    let mut key = zeroize::Zeroizing::new(Vec::with_capacity(33));
    (&mut reader)
        .take(33)
        .read_to_end(&mut key)
        .map_err(|e| UnwrapError::Corrupt(format!("cannot unwrap the key: {e}")))?;
    let bytes: &[u8; 32] = key[..]
        .try_into()
        .map_err(|_| UnwrapError::Corrupt("the wrapped key is not 32 bytes".into()))?;
    Ok(SecretKey::from_slice(bytes))
}

/// Read a recipients list (`recipient add` from a file): one key per line, `#` comments.
pub fn read_key_lines(reader: impl BufRead) -> Result<Vec<ParsedKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read the keys: {e}"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(parse_key(line).map_err(|e| format!("line {}: {e}", n + 1))?);
        if keys.len() > MAX_RECIPIENTS {
            return Err(format!("more than {MAX_RECIPIENTS} keys"));
        }
    }
    Ok(keys)
}

/// Check a recipient name: 1 to 64 characters of `[A-Za-z0-9._@+-]`, starting with a letter
/// or digit (an email address, a host name or `ci-github` all fit).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "recipient name {name:?}: use 1 to {MAX_NAME_LEN} letters, digits and . _ @ + -, \
             starting with a letter or digit"
        ))
    }
}

/// A name for a key that came without one: its SSH comment cleaned up, else its kind and the
/// first characters of the key.
pub fn default_name(parsed: &ParsedKey) -> String {
    if let Some(comment) = &parsed.suggested_name {
        let cleaned: String = comment
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._@+-".contains(*c))
            .take(MAX_NAME_LEN)
            .collect();
        if check_name(&cleaned).is_ok() {
            return cleaned;
        }
    }
    let body = parsed.key.rsplit([' ', '1']).next().unwrap_or("");
    let short: String = body
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    match &parsed.kind {
        KeyKind::Ssh(_) => format!("ssh-{short}"),
        KeyKind::Plugin(p) => format!("{p}-{short}"),
        _ => format!("age-{short}"),
    }
}

/// A fresh X25519 identity line (`AGE-SECRET-KEY-1…`) and its public key, for tests and for
/// `sfvault` users who have no age tools (the key text is secret: callers keep it zeroized).
pub fn generate_x25519() -> (SecretString, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    (
        SecretString::new(id.to_string().expose_secret().to_owned()),
        public,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &str) -> Option<SecretString> {
        None
    }

    #[test]
    fn wraps_to_two_keys_and_each_unwraps() {
        let (a_secret, a_public) = generate_x25519();
        let (b_secret, b_public) = generate_x25519();
        let (c_secret, _) = generate_x25519();
        let key = crate::vault::crypto::random_key();
        let wrapped = wrap(
            &key,
            &[
                Recipient {
                    name: "a".into(),
                    key: a_public,
                },
                Recipient {
                    name: "b".into(),
                    key: b_public,
                },
            ],
        )
        .unwrap();
        for secret in [&a_secret, &b_secret] {
            let id = load_identity("t", secret.expose().as_bytes(), never).unwrap();
            assert_eq!(unwrap(&wrapped, &id).unwrap().expose(), key.expose());
        }
        let stranger = load_identity("t", c_secret.expose().as_bytes(), never).unwrap();
        assert_eq!(
            unwrap(&wrapped, &stranger).unwrap_err(),
            UnwrapError::NotARecipient
        );
        assert!(matches!(
            unwrap(&wrapped[..wrapped.len() - 1], &stranger),
            Err(UnwrapError::Corrupt(_) | UnwrapError::NotARecipient)
        ));
    }

    #[test]
    fn parses_keys_and_refuses_private_ones() {
        let (secret, public) = generate_x25519();
        assert_eq!(parse_key(&public).unwrap().kind, KeyKind::X25519);
        let err = parse_key(secret.expose()).unwrap_err();
        assert!(err.contains("private key"), "{err}");
        assert!(!err.contains(&secret.expose()[15..]), "{err}");
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB/VIlEXWg4c me@host";
        let parsed = parse_key(ssh).unwrap();
        assert_eq!(parsed.kind, KeyKind::Ssh("ssh-ed25519".into()));
        assert_eq!(parsed.suggested_name.as_deref(), Some("me@host"));
        assert!(!parsed.key.contains("me@host"));
        assert_eq!(default_name(&parsed), "me@host");
        assert!(parse_key("age1notakey").is_err());
        assert!(parse_key("hello world").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice@acme.com").is_ok());
        assert!(check_name("ci-github").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
