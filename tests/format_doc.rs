//! An independent reader of the vault format, written from `docs/FORMAT.md` alone (no `sfvault`
//! code is used or was consulted). It reads the three format versions the page describes (version
//! 3, and versions 2 and 1 through the differences marked "v1:" and "v1, v2:"), decodes the golden
//! vectors `tests/vectors/v3-golden.sfv`, `v2-golden.sfv` and `v1-golden.sfv` and compares them
//! with their `.json`, so if the page and the code ever disagree, this test fails.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{hkdf, hmac};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Passphrase of the golden vaults (FORMAT.md section 5).
const PASSPHRASE: &str = "correct horse battery staple";
/// Generation of `v2-golden.sfv` (FORMAT.md section 5).
const V2_GOLDEN_GENERATION: u64 = 7;
/// Generation of `v3-golden.sfv` (FORMAT.md section 5).
const V3_GOLDEN_GENERATION: u64 = 11;
/// Fields that must always be marked secret (FORMAT.md section 3).
const ALWAYS_SECRET: &str = "consumer_secret private_key password security_token refresh_token";

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn read_vector(name: &str) -> Vec<u8> {
    std::fs::read(vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Size of the generation field (section 1): 8 bytes in versions 2 and 3, absent in version 1
/// ("v1:").
fn generation_size(version: u16) -> Option<usize> {
    match version {
        2 | 3 => Some(8),
        1 => Some(0),
        _ => None,
    }
}

/// The header length of a well-formed file: `161 + S` (v1: `153 + S`).
fn header_len(file: &[u8]) -> usize {
    let g = generation_size(u16::from_le_bytes([file[8], file[9]])).unwrap();
    153 + g + usize::from(file[24])
}

/// An opened vault file: its format version, its generation (0 for version 1) and the plaintext.
struct Opened {
    version: u16,
    generation: u64,
    plain: Vec<u8>,
}

/// Section 1 (envelope) and section 2 (keys), for versions 3, 2 and 1.
fn open(file: &[u8], passphrase: &str) -> Result<Opened, String> {
    if file.len() > 256 << 20 {
        return Err("file larger than 256 MiB".into());
    }
    if file.len() < 25 || file[..8] != *b"SFVAULT\0" {
        return Err("not an sfvault file".into());
    }
    let version = u16::from_le_bytes([file[8], file[9]]);
    let g = generation_size(version).ok_or(format!("unknown format version {version}"))?;
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
    // The header: 161 + S bytes (v1: 153 + S, everything from 117 + S is 8 bytes earlier).
    let h = 153 + s + g;
    if file.len() < h {
        return Err("truncated header".into());
    }
    let l = u32_at(file, 117 + s + g) as usize;
    if l < 16 || file.len() != h + l {
        return Err("bad payload length".into());
    }
    let generation = match g {
        8 => u64::from_le_bytes(file[117 + s..125 + s].try_into().unwrap()),
        _ => 0, // v1: "a version 1 file counts as generation 0"
    };
    let (salt, wrap_nonce) = (&file[25..25 + s], &file[25 + s..37 + s]);
    let (wrapped, payload_salt) = (&file[37 + s..85 + s], &file[85 + s..117 + s]);
    let commitment = &file[121 + s + g..h];

    let mut kek = [0u8; 32];
    let params = Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut kek)
        .map_err(|e| e.to_string())?;
    // The key wrap's aad is bytes [0, 37+S) with the version (bytes 8 and 9) taken as 01 00.
    let mut wrap_aad = file[..37 + s].to_vec();
    wrap_aad[8..10].copy_from_slice(&[1, 0]);
    let nonce = Nonce::try_assume_unique_for_key(wrap_nonce).unwrap();
    let data_key = aead_open(&kek, nonce, &wrap_aad, wrapped).ok_or("wrong passphrase")?;

    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, payload_salt).extract(&data_key);
    let payload_key = expand(&prk, b"sfvault/v1/payload-key");
    let commit_key = expand(&prk, b"sfvault/v1/commitment-key");
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, &commit_key);
    // The commitment covers [0, 129+S) (v1: [0, 121+S)): everything before itself.
    hmac::verify(&hkey, &file[..121 + s + g], commitment).map_err(|_| "commitment mismatch")?;
    let zero = Nonce::assume_unique_for_key([0u8; 12]);
    let plain = aead_open(&payload_key, zero, &file[..h], &file[h..]).ok_or("payload tag")?;
    Ok(Opened {
        version,
        generation,
        plain,
    })
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
    /// `Map<String, V>`: keys must come in strictly ascending order of their UTF-8 bytes; a key
    /// out of order or repeated is an error (never reordered, never "last one wins").
    fn map<V>(
        &mut self,
        mut value: impl FnMut(&mut Self) -> Result<V, String>,
    ) -> Result<Vec<(String, V)>, String> {
        let mut out: Vec<(String, V)> = Vec::new();
        for _ in 0..self.len()? {
            let key = self.string()?;
            if let Some((prev, _)) = out.last()
                && prev.as_bytes() >= key.as_bytes()
            {
                return Err(format!(
                    "map keys not strictly ascending: {key:?} after {prev:?}"
                ));
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

/// `Entry { created_at: i64, fields: Map<String, Field> }`.
fn decode_entry(c: &mut Cursor) -> Result<(i64, Vec<(String, Value)>), String> {
    let created_at = c.i64()?;
    let fields = c.map(decode_field)?;
    Ok((created_at, fields))
}

/// An entry at `address` with the post-decode checks of section 3, as JSON.
fn check_entry(
    address: &str,
    created_at: i64,
    fields: Vec<(String, Value)>,
) -> Result<Value, String> {
    let part = |p: &str| ident(p, u8::is_ascii_alphanumeric, b"._-");
    if !matches!(address.split_once('/'), Some((org, app)) if part(org) && part(app)) {
        return Err(format!("bad address {address:?}"));
    }
    let mut fmap = Map::new();
    for (name, field) in fields {
        let always_secret = ALWAYS_SECRET.split(' ').any(|n| n == name);
        if !ident(&name, u8::is_ascii_lowercase, b"_") || (always_secret && field["secret"] != true)
        {
            return Err(format!("bad field {name:?}"));
        }
        fmap.insert(name, field);
    }
    Ok(json!({"created_at": created_at, "fields": fmap}))
}

/// Decodes a whole plaintext of format `version` into the shape of `v*-golden.json`, with the
/// post-decode checks. Versions 1 and 2 have the same payload ("v1, v2:" in section 3):
/// `history_limit` and the entries; version 3 adds `removed_days` and the removed map.
fn decode_vault(plain: &[u8], version: u16) -> Result<Value, String> {
    let v3 = version >= 3;
    let mut c = Cursor(plain);
    let history_limit = c.u32()?;
    let removed_days = if v3 { c.u32()? } else { 30 };
    let entries = c.map(decode_entry)?;
    let removed = if v3 {
        c.map(|c| {
            let mut copies = Vec::new();
            for _ in 0..c.len()? {
                let removed_at = c.i64()?;
                copies.push((removed_at, decode_entry(c)?));
            }
            Ok(copies)
        })?
    } else {
        Vec::new()
    };
    if !c.0.is_empty() {
        return Err(format!("{} trailing bytes", c.0.len()));
    }
    if history_limit > 100 {
        return Err("history_limit above 100".into());
    }
    if removed_days > 3650 {
        return Err("removed_days above 3650".into());
    }
    let mut out = Map::new();
    for (address, (created_at, fields)) in entries {
        out.insert(address.clone(), check_entry(&address, created_at, fields)?);
    }
    let mut kept = Map::new();
    let mut total = 0;
    for (address, copies) in removed {
        if !(1..=5).contains(&copies.len()) {
            return Err(format!("{address:?}: {} removed copies", copies.len()));
        }
        if copies.windows(2).any(|w| w[0].0 > w[1].0) {
            return Err(format!("{address:?}: removed copies not oldest first"));
        }
        total += copies.len();
        let mut list = Vec::new();
        for (removed_at, (created_at, fields)) in copies {
            let entry = check_entry(&address, created_at, fields)?;
            list.push(json!({"removed_at": removed_at, "entry": entry}));
        }
        kept.insert(address, Value::Array(list));
    }
    if total > 500 {
        return Err("more than 500 removed copies".into());
    }
    let mut vault = json!({"history_limit": history_limit, "entries": out});
    if v3 {
        vault["removed_days"] = json!(removed_days);
        vault["removed"] = Value::Object(kept);
    }
    Ok(vault)
}

/// Bytes written as hex pairs separated by white space, as in the examples of section 3.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// The section 3 example "one entry with one field", byte for byte.
fn one_entry_example() -> Vec<u8> {
    hex("05 00 00 00
        1e 00 00 00
        01 00 00 00 00 00 00 00
        07 00 00 00 00 00 00 00  61 63 6d 65 2f 63 69
        0a 00 00 00 00 00 00 00
        01 00 00 00 00 00 00 00
        08 00 00 00 00 00 00 00  75 73 65 72 6e 61 6d 65
        03 00 00 00 00 00 00 00  75 40 78
        00
        0b 00 00 00 00 00 00 00
        0b 00 00 00 00 00 00 00
        00
        00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00")
}

/// The section 3 example "that entry after `rm` at time 20", byte for byte.
fn removed_entry_example() -> Vec<u8> {
    hex("05 00 00 00
        1e 00 00 00
        00 00 00 00 00 00 00 00
        01 00 00 00 00 00 00 00
        07 00 00 00 00 00 00 00  61 63 6d 65 2f 63 69
        01 00 00 00 00 00 00 00
        14 00 00 00 00 00 00 00
        0a 00 00 00 00 00 00 00
        01 00 00 00 00 00 00 00
        08 00 00 00 00 00 00 00  75 73 65 72 6e 61 6d 65
        03 00 00 00 00 00 00 00  75 40 78
        00
        0b 00 00 00 00 00 00 00
        0b 00 00 00 00 00 00 00
        00
        00 00 00 00 00 00 00 00")
}

fn golden_json(name: &str) -> Value {
    serde_json::from_slice(&read_vector(name)).unwrap()
}

#[test]
fn v3_golden_vault_decodes_to_golden_json() {
    let file = read_vector("v3-golden.sfv");
    let opened = open(&file, PASSPHRASE).unwrap();
    assert_eq!(opened.version, 3);
    assert_eq!(opened.generation, V3_GOLDEN_GENERATION);
    assert_eq!(header_len(&file), 161 + 32, "sfvault writes S = 32");
    let decoded = decode_vault(&opened.plain, 3).unwrap();
    assert_eq!(decoded, golden_json("v3-golden.json"));
    // Section 5: the entries of the older golden files.
    assert_eq!(decoded["entries"], golden_json("v2-golden.json")["entries"]);
    assert_eq!(
        decoded["removed"]["acme-dev/old"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn v2_golden_vault_decodes_to_golden_json() {
    let file = read_vector("v2-golden.sfv");
    let opened = open(&file, PASSPHRASE).unwrap();
    assert_eq!(opened.version, 2);
    assert_eq!(opened.generation, V2_GOLDEN_GENERATION);
    assert_eq!(header_len(&file), 161 + 32, "sfvault writes S = 32");
    let decoded = decode_vault(&opened.plain, 2).unwrap();
    assert_eq!(decoded, golden_json("v2-golden.json"));
    // A version 2 payload is not a version 3 one: read as version 3 it does not decode.
    assert!(decode_vault(&opened.plain, 3).is_err());
}

#[test]
fn v1_golden_vault_decodes_to_golden_json() {
    let file = read_vector("v1-golden.sfv");
    let opened = open(&file, PASSPHRASE).unwrap();
    assert_eq!(opened.version, 1);
    assert_eq!(
        opened.generation, 0,
        "a version 1 file counts as generation 0"
    );
    let decoded = decode_vault(&opened.plain, 1).unwrap();
    assert_eq!(decoded, golden_json("v1-golden.json"));
    // Section 5: "with the same contents".
    assert_eq!(decoded, golden_json("v2-golden.json"));
}

#[test]
fn flipped_payload_byte_fails_decryption() {
    for name in ["v3-golden.sfv", "v2-golden.sfv", "v1-golden.sfv"] {
        let mut file = read_vector(name);
        let payload_start = header_len(&file);
        let at = payload_start + (file.len() - payload_start) / 2;
        file[at] ^= 0x01;
        assert_eq!(
            open(&file, PASSPHRASE).err().as_deref(),
            Some("payload tag"),
            "{name}"
        );
    }
}

#[test]
fn altered_generation_fails_the_commitment() {
    let golden = read_vector("v2-golden.sfv");
    let at = 117 + usize::from(golden[24]);
    let mut forged = golden.clone();
    forged[at..at + 8].copy_from_slice(&(V2_GOLDEN_GENERATION + 1).to_le_bytes());
    assert_eq!(
        open(&forged, PASSPHRASE).err().as_deref(),
        Some("commitment mismatch")
    );
    // Every byte of the field is covered, the high ones too.
    for i in 0..8 {
        let mut file = golden.clone();
        file[at + i] ^= 0x80;
        let err = open(&file, PASSPHRASE).err();
        assert_eq!(err.as_deref(), Some("commitment mismatch"), "byte {i}");
    }
    // The forged older generation of the broken set is refused the same way.
    let older = read_vector("broken/v2-older-generation.sfv");
    assert_eq!(
        open(&older, PASSPHRASE).err().as_deref(),
        Some("commitment mismatch")
    );
}

#[test]
fn changed_version_is_refused_before_any_key_is_derived() {
    // Reading one version's bytes with the other version's layout puts `L` elsewhere.
    let mut v2 = read_vector("v2-golden.sfv");
    v2[8] = 1;
    assert_eq!(
        open(&v2, PASSPHRASE).err().as_deref(),
        Some("bad payload length")
    );
    let mut v1 = read_vector("v1-golden.sfv");
    v1[8] = 2;
    assert_eq!(
        open(&v1, PASSPHRASE).err().as_deref(),
        Some("bad payload length")
    );
    // Versions 2 and 3 share the envelope: a changed version is caught by the commitment.
    let mut v3 = read_vector("v3-golden.sfv");
    v3[8] = 2;
    assert_eq!(
        open(&v3, PASSPHRASE).err().as_deref(),
        Some("commitment mismatch")
    );
    for version in [0u16, 4, 0x0102] {
        let mut file = read_vector("v2-golden.sfv");
        file[8..10].copy_from_slice(&version.to_le_bytes());
        let err = open(&file, PASSPHRASE).err().unwrap();
        assert_eq!(err, format!("unknown format version {version}"));
    }
}

#[test]
fn empty_vault_example_decodes() {
    let bytes = hex("05 00 00 00  1e 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00");
    assert_eq!(
        decode_vault(&bytes, 3).unwrap(),
        json!({"history_limit": 5, "removed_days": 30, "entries": {}, "removed": {}})
    );
    // v1, v2: 12 bytes, without removed_days and removed.
    let bytes = hex("05 00 00 00  00 00 00 00 00 00 00 00");
    assert_eq!(
        decode_vault(&bytes, 2).unwrap(),
        json!({"history_limit": 5, "entries": {}})
    );
}

/// The username field of the examples.
fn example_entry() -> Value {
    json!({"created_at": 10, "fields": {"username": {"value": "u@x", "secret": false,
        "set_at": 11, "changed_at": 11, "used_at": null, "history": []}}})
}

#[test]
fn one_entry_example_decodes() {
    let expected = json!({"history_limit": 5, "removed_days": 30,
        "entries": {"acme/ci": example_entry()}, "removed": {}});
    assert_eq!(decode_vault(&one_entry_example(), 3).unwrap(), expected);
}

#[test]
fn removed_entry_example_decodes() {
    let expected = json!({"history_limit": 5, "removed_days": 30, "entries": {},
        "removed": {"acme/ci": [{"removed_at": 20, "entry": example_entry()}]}});
    assert_eq!(decode_vault(&removed_entry_example(), 3).unwrap(), expected);
}

#[test]
fn map_keys_must_be_strictly_ascending() {
    // Built from the one-entry example: the same field twice, then two fields out of order.
    let example = one_entry_example();
    let (head, field) = example.split_at(4 + 4 + 8 + 15 + 8);
    assert_eq!(field[..8], 1u64.to_le_bytes(), "the field count");
    // The field, without the removed map's count that ends the example.
    let field = &field[8..field.len() - 8];
    let named = |name: &str| {
        let mut f = (name.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(name.as_bytes());
        f.extend_from_slice(&field[16..]); // after "username"'s length and bytes
        f
    };
    let two_fields = |a: &str, b: &str| {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend(named(a));
        bytes.extend(named(b));
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes
    };
    let sorted = decode_vault(&two_fields("notes", "username"), 3).unwrap();
    assert_eq!(
        sorted["entries"]["acme/ci"]["fields"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    for (a, b) in [("username", "username"), ("username", "notes")] {
        let err = decode_vault(&two_fields(a, b), 3).unwrap_err();
        assert!(err.contains("strictly ascending"), "{a}, {b}: {err}");
    }

    // The broken vectors: authentic files (they open) whose plaintext keys are not canonical.
    for name in [
        "v2-unsorted-entries.sfv",
        "v2-repeated-entries.sfv",
        "v2-unsorted-fields.sfv",
        "v2-repeated-fields.sfv",
    ] {
        let file = read_vector(&format!("broken/{name}"));
        let opened = open(&file, PASSPHRASE).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.version, 2, "{name}");
        let err = decode_vault(&opened.plain, 2).unwrap_err();
        assert!(err.contains("strictly ascending"), "{name}: {err}");
    }
    for name in ["v3-unsorted-removed.sfv", "v3-repeated-removed.sfv"] {
        let file = read_vector(&format!("broken/{name}"));
        let opened = open(&file, PASSPHRASE).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.version, 3, "{name}");
        let err = decode_vault(&opened.plain, 3).unwrap_err();
        assert!(err.contains("strictly ascending"), "{name}: {err}");
    }
}

/// Section 2's error classes: an unwrap failure is a wrong passphrase (exit 4); everything else
/// this reader refuses is a corrupted file (exit 6). Every broken vector must be refused, with
/// the exit code `broken/EXPECTED*.txt` lists.
#[test]
fn broken_vectors_are_refused_with_their_error_class() {
    let mut checked = 0;
    for list in [
        "broken/EXPECTED.txt",
        "broken/EXPECTED-v2.txt",
        "broken/EXPECTED-v3.txt",
    ] {
        let text = String::from_utf8(read_vector(list)).unwrap();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let mut words = line.split_whitespace();
            let (name, code) = (words.next().unwrap(), words.next().unwrap());
            let file = read_vector(&format!("broken/{name}"));
            let result = open(&file, PASSPHRASE).and_then(|o| decode_vault(&o.plain, o.version));
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name} was accepted"));
            let class = if err == "wrong passphrase" { "4" } else { "6" };
            assert_eq!(class, code, "{name}: {err}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} broken vectors listed");
}
