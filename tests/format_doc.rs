//! An independent reader of the vault format, written from `docs/FORMAT.md` alone (no `sfvault`
//! code is used or was consulted). It decodes the golden vector `tests/vectors/v1-golden.sfv` and
//! compares it with `v1-golden.json`, so if the page and the code ever disagree, this test fails.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{hkdf, hmac};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Passphrase of the golden vault (FORMAT.md section 5).
const PASSPHRASE: &str = "correct horse battery staple";
/// Fields that must always be marked secret (FORMAT.md section 3).
const ALWAYS_SECRET: &str = "consumer_secret private_key password security_token refresh_token";

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Section 1 (envelope) and section 2 (keys): returns the decrypted plaintext.
fn open(file: &[u8], passphrase: &str) -> Result<Vec<u8>, String> {
    if file.len() > 256 << 20 {
        return Err("file larger than 256 MiB".into());
    }
    if file.len() < 25 || file[..8] != *b"SFVAULT\0" {
        return Err("not an sfvault file".into());
    }
    if u16::from_le_bytes([file[8], file[9]]) != 1 {
        return Err("unknown format version".into());
    }
    if file[10] != 1 || file[11] != 1 {
        return Err("unknown KDF or AEAD id".into());
    }
    let (m, t, p) = (u32_at(file, 12), u32_at(file, 16), u32_at(file, 20));
    if !(19456..=1_048_576).contains(&m) || !(2..=10).contains(&t) || !(1..=16).contains(&p) {
        return Err("Argon2 parameters out of range".into());
    }
    let s = usize::from(file[24]);
    if s != 16 && s != 32 {
        return Err("bad salt length".into());
    }
    if file.len() < 153 + s {
        return Err("truncated header".into());
    }
    let l = u32_at(file, 117 + s) as usize;
    if l < 16 || file.len() != 153 + s + l {
        return Err("bad payload length".into());
    }
    let (salt, wrap_nonce) = (&file[25..25 + s], &file[25 + s..37 + s]);
    let (wrapped, payload_salt) = (&file[37 + s..85 + s], &file[85 + s..117 + s]);
    let (commitment, header) = (&file[121 + s..153 + s], &file[..153 + s]);

    let mut kek = [0u8; 32];
    let params = Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut kek)
        .map_err(|e| e.to_string())?;
    let nonce = Nonce::try_assume_unique_for_key(wrap_nonce).unwrap();
    let data_key = aead_open(&kek, nonce, &file[..37 + s], wrapped).ok_or("wrong passphrase")?;

    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, payload_salt).extract(&data_key);
    let payload_key = expand(&prk, b"sfvault/v1/payload-key");
    let commit_key = expand(&prk, b"sfvault/v1/commitment-key");
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, &commit_key);
    hmac::verify(&hkey, &file[..121 + s], commitment).map_err(|_| "commitment mismatch")?;
    let zero = Nonce::assume_unique_for_key([0u8; 12]);
    aead_open(&payload_key, zero, header, &file[153 + s..]).ok_or_else(|| "payload tag".into())
}

fn aead_open(key: &[u8], nonce: Nonce, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = sealed.to_vec();
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(plain_len);
    Some(buf)
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    prk.expand(&[info], Len32).unwrap().fill(&mut out).unwrap();
    out
}

/// Section 3: the little-endian fixed-width encoding.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.0.len() {
            return Err(format!("need {n} bytes, {} left", self.0.len()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn len(&mut self) -> Result<usize, String> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().unwrap());
        usize::try_from(n).map_err(|_| "length overflow".to_string())
    }
    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("bad bool {b}")),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }
    fn option_i64(&mut self) -> Result<Option<i64>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.i64()?)),
            b => Err(format!("bad option tag {b}")),
        }
    }
    /// `Map<String, V>`: keys must come in ascending order.
    fn map<V>(
        &mut self,
        mut value: impl FnMut(&mut Self) -> Result<V, String>,
    ) -> Result<Vec<(String, V)>, String> {
        let mut out: Vec<(String, V)> = Vec::new();
        for _ in 0..self.len()? {
            let key = self.string()?;
            if out.last().is_some_and(|(prev, _)| *prev >= key) {
                return Err(format!("map key {key:?} out of order"));
            }
            out.push((key, value(self)?));
        }
        Ok(out)
    }
}

/// `[first][first|0-9|more]{0,63}`, the name rules of FORMAT.md section 3.
fn ident(s: &str, first: fn(&u8) -> bool, more: &[u8]) -> bool {
    let b = s.as_bytes();
    let rest = |c: &u8| first(c) || c.is_ascii_digit() || more.contains(c);
    (1..=64).contains(&b.len()) && first(&b[0]) && b[1..].iter().all(rest)
}

fn decode_field(c: &mut Cursor) -> Result<Value, String> {
    let (value, secret, set_at, changed_at) = (c.string()?, c.bool()?, c.i64()?, c.i64()?);
    let used_at = c.option_i64()?;
    let mut history = Vec::new();
    for _ in 0..c.len()? {
        let (v, changed, replaced) = (c.string()?, c.i64()?, c.i64()?);
        history.push(json!({"value": v, "changed_at": changed, "replaced_at": replaced}));
    }
    if history.len() > 100 {
        return Err("history longer than 100".into());
    }
    let field = json!({"value": value, "secret": secret, "set_at": set_at,
        "changed_at": changed_at, "used_at": used_at, "history": history});
    Ok(field)
}

/// Decodes a whole plaintext into the shape of `v1-golden.json`, with the post-decode checks.
fn decode_vault(plain: &[u8]) -> Result<Value, String> {
    let mut c = Cursor(plain);
    let history_limit = c.u32()?;
    let entries = c.map(|c| {
        let created_at = c.i64()?;
        let fields = c.map(decode_field)?;
        Ok((created_at, fields))
    })?;
    if !c.0.is_empty() {
        return Err(format!("{} trailing bytes", c.0.len()));
    }
    if history_limit > 100 {
        return Err("history_limit above 100".into());
    }
    let mut out = Map::new();
    for (address, (created_at, fields)) in entries {
        let part = |p: &str| ident(p, u8::is_ascii_alphanumeric, b"._-");
        if !matches!(address.split_once('/'), Some((org, app)) if part(org) && part(app)) {
            return Err(format!("bad address {address:?}"));
        }
        let mut fmap = Map::new();
        for (name, field) in fields {
            let always_secret = ALWAYS_SECRET.split(' ').any(|n| n == name);
            if !ident(&name, u8::is_ascii_lowercase, b"_")
                || (always_secret && field["secret"] != true)
            {
                return Err(format!("bad field {name:?}"));
            }
            fmap.insert(name, field);
        }
        out.insert(address, json!({"created_at": created_at, "fields": fmap}));
    }
    Ok(json!({"history_limit": history_limit, "entries": out}))
}

#[test]
fn golden_vault_decodes_to_golden_json() {
    let file = std::fs::read(vector("v1-golden.sfv")).unwrap();
    let plain = open(&file, PASSPHRASE).unwrap();
    let decoded = decode_vault(&plain).unwrap();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(vector("v1-golden.json")).unwrap()).unwrap();
    assert_eq!(decoded, expected);
}

#[test]
fn flipped_payload_byte_fails_decryption() {
    let mut file = std::fs::read(vector("v1-golden.sfv")).unwrap();
    let payload_start = 153 + usize::from(file[24]);
    let at = payload_start + (file.len() - payload_start) / 2;
    file[at] ^= 0x01;
    assert_eq!(open(&file, PASSPHRASE).unwrap_err(), "payload tag");
}

#[test]
fn empty_vault_example_decodes() {
    let bytes = [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_vault(&bytes).unwrap(),
        json!({"history_limit": 5, "entries": {}})
    );
}
