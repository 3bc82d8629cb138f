//! The Salesforce CLI's own store of logins, read for `import --from-sf`: one JSON file per
//! username in `~/.sfdx/` (`USERNAME.json`), whose token, password and secret fields are
//! encrypted with AES-256-GCM under a key kept in `~/.sfdx/key.json` (the "generic" keychain sf
//! uses on Linux without libsecret) or in the libsecret keychain (`secret-tool`). Aliases are in
//! `~/.sfdx/alias.json`. Nothing here writes to sf's files.
//!
//! The encrypted form, as `@salesforce/core` writes it: `IV CIPHERTEXT:TAG`, all hex but the
//! IV of version 1. Version 1 keys are 32 characters used as they are (32 bytes), with a
//! 12-character IV used as text; version 2 keys are 64 hex digits (32 bytes), with a 24-hex-digit
//! (12-byte) IV. The tag is 16 bytes (32 hex digits).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::{SecretKey, SecretString};
use crate::vault::crypto;

/// Largest sf file read (auth files are about 1 KiB; a key file a few KiB).
const MAX_FILE: u64 = 256 * 1024;

/// The key sf encrypts its auth files with.
pub struct SfKey {
    key: SecretKey,
    /// Version 1: the IV is 12 characters of text; version 2: 24 hex digits.
    v2: bool,
}

impl SfKey {
    /// The key from its stored text: 32 characters (version 1) or 64 hex digits (version 2).
    pub fn from_text(text: &str) -> Result<SfKey> {
        let text = text.trim();
        let mut bytes = Zeroizing::new([0u8; 32]);
        let v2 = match text.len() {
            32 => {
                bytes.copy_from_slice(text.as_bytes());
                false
            }
            64 => {
                hex_into(text, &mut bytes[..]).ok_or_else(unknown_key)?;
                true
            }
            _ => return Err(unknown_key()),
        };
        Ok(SfKey {
            key: SecretKey::from_slice(&bytes),
            v2,
        })
    }

    /// The key of the generic keychain file `key.json` (`{"service":"sfdx","account":"local",
    /// "key":"…"}`), if there is one.
    pub fn from_key_file(path: &Path) -> Result<Option<SfKey>> {
        let Some(text) = read_small(path)? else {
            return Ok(None);
        };
        let json: Value = serde_json::from_str(&text)
            .map_err(|_| Error::corrupt(path, "not the JSON of sf's key file"))?;
        match (
            json["service"].as_str(),
            json["account"].as_str(),
            json["key"].as_str(),
        ) {
            (Some("sfdx"), Some("local"), Some(key)) => SfKey::from_text(key).map(Some),
            _ => Err(Error::corrupt(
                path,
                "not sf's key file (service sfdx, account local, key)",
            )),
        }
    }

    /// Decrypt one field; `None` when it is not in sf's encrypted form or does not open under
    /// this key.
    pub fn decrypt(&self, text: &str) -> Option<SecretString> {
        let (body, tag) = text.split_once(':')?;
        let iv_len = if self.v2 { 24 } else { 12 };
        if tag.len() != 32 || body.len() < iv_len || !body.is_char_boundary(iv_len) {
            return None;
        }
        let (iv, ciphertext) = body.split_at(iv_len);
        let mut nonce = [0u8; crypto::NONCE_LEN];
        if self.v2 {
            hex_into(iv, &mut nonce)?;
        } else {
            nonce.copy_from_slice(iv.as_bytes());
        }
        if ciphertext.len() % 2 != 0 {
            return None;
        }
        let mut sealed = Zeroizing::new(vec![0u8; ciphertext.len() / 2 + 16]);
        let split = ciphertext.len() / 2;
        hex_into(ciphertext, &mut sealed[..split])?;
        hex_into(tag, &mut sealed[split..])?;
        let plain = crypto::open_foreign_aes_gcm(&self.key, &nonce, &sealed)?;
        SecretString::from_utf8(plain).ok()
    }
}

fn unknown_key() -> Error {
    Error::Usage(
        "sf's encryption key is neither 32 characters (version 1) nor 64 hex digits (version 2)"
            .into(),
    )
}

/// Decode `hex` into `out` (exactly twice its length); `None` on anything but hex digits.
fn hex_into(hex: &str, out: &mut [u8]) -> Option<()> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = hex.as_bytes();
    if bytes.len() != out.len() * 2 {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(bytes.chunks(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

/// A file's text, at most [`MAX_FILE`] bytes; `None` when it does not exist.
fn read_small(path: &Path) -> Result<Option<Zeroizing<String>>> {
    let file = match crate::fs_safety::open_nonblocking(path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot open", path, e)),
    };
    let meta = crate::fs_safety::regular_file_meta(&file, path)?;
    if meta.len() > MAX_FILE {
        return Err(Error::corrupt(path, "too large for an sf file"));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("cannot read", path, e))?;
    Ok(Some(text))
}

/// One org sf is logged in to, as its auth file holds it (secrets decrypted).
pub struct SfLogin {
    /// The auth file.
    pub file: PathBuf,
    /// The Salesforce username.
    pub username: String,
    /// sf's aliases for it.
    pub aliases: Vec<String>,
    /// `loginUrl`.
    pub login_url: Option<String>,
    /// `instanceUrl`.
    pub instance_url: Option<String>,
    /// `clientId`: the connected app's consumer key (sf's own app when absent).
    pub client_id: Option<String>,
    /// `clientSecret`, decrypted.
    pub client_secret: Option<SecretString>,
    /// `refreshToken`, decrypted.
    pub refresh_token: Option<SecretString>,
    /// `privateKey`: the path of a JWT key file.
    pub private_key_file: Option<PathBuf>,
    /// `isDevHub`.
    pub is_dev_hub: bool,
    /// Encrypted fields left out (`accessToken`: a new one is obtained; `password`).
    pub left_out: Vec<String>,
}

/// sf's aliases: alias → username, from `alias.json` (`{"orgs": {ALIAS: USERNAME}}`).
pub fn aliases(sfdx_dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = sfdx_dir.join("alias.json");
    let Some(text) = read_small(&path)? else {
        return Ok(BTreeMap::new());
    };
    let json: Value = serde_json::from_str(&text)
        .map_err(|_| Error::corrupt(&path, "not the JSON of sf's aliases"))?;
    Ok(json["orgs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(alias, user)| Some((alias.clone(), user.as_str()?.to_owned())))
        .collect())
}

/// The auth files in `sfdx_dir`: `USERNAME.json` files (a username holds an `@`), sorted.
pub fn auth_files(sfdx_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(sfdx_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot read", sfdx_dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".json") && n.contains('@'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Read one auth file, decrypting its secrets with `key`. An encrypted field that does not
/// open is an error naming the field (the key is not this file's): nothing is half-imported.
pub fn read_login(path: &Path, key: &SfKey, aliases: &BTreeMap<String, String>) -> Result<SfLogin> {
    let text = read_small(path)?
        .ok_or_else(|| Error::io("cannot open", path, std::io::ErrorKind::NotFound.into()))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|_| Error::corrupt(path, "not the JSON of an sf auth file"))?;
    let obj = json
        .as_object()
        .ok_or_else(|| Error::corrupt(path, "not the JSON of an sf auth file"))?;
    let text_of = |k: &str| obj.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let username = text_of("username")
        .ok_or_else(|| Error::corrupt(path, "an sf auth file without a username"))?
        .to_owned();
    let secret = |k: &str| -> Result<Option<SecretString>> {
        match text_of(k) {
            None => Ok(None),
            Some(enc) => key.decrypt(enc).map(Some).ok_or_else(|| {
                Error::corrupt(
                    path,
                    format!("its {k} does not decrypt with sf's key (another machine's file?)"),
                )
            }),
        }
    };
    let mut left_out = Vec::new();
    for k in ["accessToken", "password"] {
        if text_of(k).is_some() {
            left_out.push(k.to_owned());
        }
    }
    Ok(SfLogin {
        file: path.to_path_buf(),
        aliases: aliases
            .iter()
            .filter(|(_, u)| **u == username)
            .map(|(a, _)| a.clone())
            .collect(),
        login_url: text_of("loginUrl").map(str::to_owned),
        instance_url: text_of("instanceUrl").map(str::to_owned),
        client_id: text_of("clientId").map(str::to_owned),
        client_secret: secret("clientSecret")?,
        refresh_token: secret("refreshToken")?,
        private_key_file: text_of("privateKey").map(PathBuf::from),
        is_dev_hub: obj
            .get("isDevHub")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        left_out,
        username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by @salesforce/core 9.x's own Crypto (tests/vectors/sf/README.md tells how).
    const V1_KEY: &str = "0123456789abcdef0123456789abcdef";
    const V1_REFRESH: &str =
        "84725270750d9c572ea9864fe1eb1b5ddc407bdc8099e518468fb5e5:279834e30a530e6a05a8a3da5c42ac54";
    const V1_SECRET: &str = "dcc07710c6f9f70a3c96d8ab3dd691:e67b5fb3b135e287fc33123e28922a1b";
    const V2_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const V2_REFRESH: &str = "4c0b6e5d950e426dc6d26c983c517fdeb1ffcdfcea08d99a37efd64fa5a1a6af2bca:5642029181dffedec967958b802f9971";
    const V2_SECRET: &str =
        "e0e6cc8126ea9360f09d31418241b9e64186fb05fc:c9766cc8145c53c2cd4297fb1702ace8";

    #[test]
    fn both_versions_of_sfs_encryption_open() {
        let v1 = SfKey::from_text(V1_KEY).unwrap();
        assert_eq!(
            v1.decrypt(V1_REFRESH).unwrap().expose(),
            "5Aep861refresh.token=="
        );
        assert_eq!(v1.decrypt(V1_SECRET).unwrap().expose(), "sekret!é");
        let v2 = SfKey::from_text(V2_KEY).unwrap();
        assert_eq!(
            v2.decrypt(V2_REFRESH).unwrap().expose(),
            "5Aep861refresh.token=="
        );
        assert_eq!(v2.decrypt(V2_SECRET).unwrap().expose(), "sekret!é");
        // Another key, an altered byte, a cut tag, plain text: refused.
        assert!(v2.decrypt(V1_REFRESH).is_none());
        let mut altered = V2_SECRET.to_owned();
        altered.replace_range(30..31, if &V2_SECRET[30..31] == "0" { "1" } else { "0" });
        assert!(v2.decrypt(&altered).is_none());
        assert!(v2.decrypt(&V2_SECRET[..V2_SECRET.len() - 2]).is_none());
        assert!(v2.decrypt("5Aep861plain").is_none());
        assert!(SfKey::from_text("short").is_err());
        assert!(SfKey::from_text(&"g".repeat(64)).is_err());
    }

    #[test]
    fn an_auth_file_gives_its_login() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key.json");
        std::fs::write(
            &key_file,
            format!(r#"{{"account":"local","key":"{V2_KEY}","service":"sfdx"}}"#),
        )
        .unwrap();
        let key = SfKey::from_key_file(&key_file).unwrap().unwrap();
        assert!(
            SfKey::from_key_file(&dir.path().join("none.json"))
                .unwrap()
                .is_none()
        );
        std::fs::write(
            dir.path().join("alias.json"),
            r#"{"orgs":{"acme":"ci@acme.example","other":"x@y.example"}}"#,
        )
        .unwrap();
        let file = dir.path().join("ci@acme.example.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"username":"ci@acme.example","loginUrl":"https://login.salesforce.com",
                "instanceUrl":"https://acme.my.salesforce.com","clientId":"PlatformCLI",
                "refreshToken":"{V2_REFRESH}","accessToken":"{V2_SECRET}","isDevHub":true,
                "orgId":"00D5g000000XXXXEAA","instanceApiVersion":"62.0"}}"#
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("sfdx-config.json"), "{}").unwrap();
        assert_eq!(auth_files(dir.path()).unwrap(), std::slice::from_ref(&file));
        let login = read_login(&file, &key, &aliases(dir.path()).unwrap()).unwrap();
        assert_eq!(login.username, "ci@acme.example");
        assert_eq!(login.aliases, ["acme"]);
        assert_eq!(login.client_id.as_deref(), Some("PlatformCLI"));
        assert_eq!(
            login.refresh_token.unwrap().expose(),
            "5Aep861refresh.token=="
        );
        assert!(login.client_secret.is_none() && login.is_dev_hub);
        assert_eq!(login.left_out, ["accessToken"]);
        // Under another key: an error naming the field, not a partial login.
        let other = SfKey::from_text(V1_KEY).unwrap();
        let err = read_login(&file, &other, &BTreeMap::new()).err().unwrap();
        assert!(
            err.to_string().contains("refreshToken does not decrypt"),
            "{err}"
        );
    }
}
