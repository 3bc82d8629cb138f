//! An independent reader of the vault format, written from `docs/FORMAT.md` alone (no `sfvault`
//! code is used or was consulted). It reads the four format versions the page describes (version
//! 3, versions 2 and 1 through the differences marked "v1:" and "v1, v2:", and version 4, the team
//! vault, through section 1b and the "v4:" notes), decodes the golden vectors
//! `tests/vectors/v4-golden.sfv`, `v4-nopass.sfv`, `v3-golden.sfv`, `v2-golden.sfv` and
//! `v1-golden.sfv` and compares them with their `.json`, so if the page and the code ever
//! disagree, this test fails. Version 4's recipient slot is opened with the real `age` tool
//! (`age -d -i IDENTITY`, section 2), never with sfvault's own code.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{hkdf, hmac};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Passphrase of the golden vaults (FORMAT.md section 5).
const PASSPHRASE: &str = "correct horse battery staple";
/// Generation of `v2-golden.sfv` (FORMAT.md section 5).
const V2_GOLDEN_GENERATION: u64 = 7;
/// Generation of `v3-golden.sfv` (FORMAT.md section 5).
const V3_GOLDEN_GENERATION: u64 = 11;
/// Generation of `v4-golden.sfv` (FORMAT.md section 5).
const V4_GOLDEN_GENERATION: u64 = 13;
/// Generation of `v4-nopass.sfv` (FORMAT.md section 5).
const V4_NOPASS_GENERATION: u64 = 2;
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

/// A passphrase slot: bytes 10 to 85+S of a version 1, 2 or 3 file (section 1), or the optional
/// slot of a version 4 file (section 1b), which holds exactly the same bytes: KDF id, AEAD id,
/// Argon2 costs, `S`, KDF salt, wrap nonce, wrapped data key.
struct PassphraseSlot<'a> {
    memory: u32,
    iterations: u32,
    parallelism: u32,
    /// The slot's `75 + S` bytes.
    bytes: &'a [u8],
}

impl PassphraseSlot<'_> {
    /// `S`, the KDF salt length.
    fn s(&self) -> usize {
        usize::from(self.bytes[14])
    }
}

/// Reads a passphrase slot at the start of `b` with the rules of section 1 (ids, Argon2 costs,
/// `S`), before any key is derived.
fn passphrase_slot(b: &[u8]) -> Result<PassphraseSlot<'_>, String> {
    if b.len() < 15 {
        return Err("truncated header".into());
    }
    if b[0] != 1 {
        return Err(format!("unknown KDF id {}", b[0]));
    }
    if b[1] != 1 {
        return Err(format!("unknown AEAD id {}", b[1]));
    }
    let (m, t, p) = (u32_at(b, 2), u32_at(b, 6), u32_at(b, 10));
    if !(19456..=1_048_576).contains(&m) || !(2..=10).contains(&t) || !(1..=16).contains(&p) {
        return Err("Argon2 parameters out of range".into());
    }
    let s = usize::from(b[14]);
    if s != 16 && s != 32 {
        return Err("bad salt length".into());
    }
    if b.len() < 75 + s {
        return Err("truncated header".into());
    }
    Ok(PassphraseSlot {
        memory: m,
        iterations: t,
        parallelism: p,
        bytes: &b[..75 + s],
    })
}

/// A version 4 recipient (section 1b): a name and a key, both kept as text (not parsed as keys).
#[derive(Debug, PartialEq)]
struct Recipient {
    name: String,
    key: String,
}

/// An envelope (sections 1 and 1b) whose every check passed; no key is derived yet.
struct Envelope<'a> {
    version: u16,
    /// 0 for version 1 ("a version 1 file counts as generation 0").
    generation: u64,
    /// Always present before version 4; v4: present if the flag is 1.
    passphrase: Option<PassphraseSlot<'a>>,
    /// v4: the recipients, in file order (none before version 4).
    recipients: Vec<Recipient>,
    /// v4: the wrapped data key, an age file of `W` bytes (empty when `W` is 0 or before v4).
    wrapped_key: &'a [u8],
    payload_salt: &'a [u8],
    /// Offset of the key-commitment tag: the commitment covers the bytes before it.
    commitment_at: usize,
    /// Length of the header: the payload starts here, and the payload's aad is the header.
    header_len: usize,
}

/// The key slots of a file (section 1b), as `Envelope` holds them.
struct KeySlots<'a> {
    passphrase: Option<PassphraseSlot<'a>>,
    recipients: Vec<Recipient>,
    wrapped_key: &'a [u8],
}

/// Section 1b: the key slots of a version 4 file, read from `c` (positioned at byte 10).
fn v4_slots<'a>(c: &mut Cursor<'a>) -> Result<KeySlots<'a>, String> {
    let passphrase = match c.u8()? {
        0 => None,
        1 => {
            let slot = passphrase_slot(c.0)?;
            c.take(slot.bytes.len())?;
            Some(slot)
        }
        flag => return Err(format!("passphrase slot flag {flag}")),
    };
    let r = c.u16()?;
    if r > 256 {
        return Err(format!("{r} recipients"));
    }
    let mut recipients: Vec<Recipient> = Vec::new();
    for _ in 0..r {
        let n = usize::from(c.u8()?);
        let name = std::str::from_utf8(c.take(n)?).map_err(|_| "recipient name not UTF-8")?;
        if !ident(name, u8::is_ascii_alphanumeric, b"._@+-") {
            return Err(format!("bad recipient name {name:?}"));
        }
        if recipients.iter().any(|r| r.name == name) {
            return Err(format!("recipient {name:?} listed twice"));
        }
        let k = usize::from(c.u16()?);
        let key = std::str::from_utf8(c.take(k)?).map_err(|_| "recipient key not UTF-8")?;
        if !(1..=4096).contains(&k) || key.trim() != key || key.contains(['\n', '\r']) {
            return Err(format!("bad recipient key {key:?}"));
        }
        recipients.push(Recipient {
            name: name.to_string(),
            key: key.to_string(),
        });
    }
    let w = c.u32()? as usize;
    if w > 1 << 20 {
        return Err(format!("wrapped key of {w} bytes"));
    }
    if passphrase.is_none() && r == 0 {
        return Err("no passphrase slot and no recipient: nothing opens it".into());
    }
    if (w == 0) != (r == 0) {
        return Err(format!("{r} recipients but a wrapped key of {w} bytes"));
    }
    let wrapped_key = c.take(w)?;
    Ok(KeySlots {
        passphrase,
        recipients,
        wrapped_key,
    })
}

/// Section 1 (and 1b for version 4): every check of the envelope, before any key is derived.
fn envelope(file: &[u8]) -> Result<Envelope<'_>, String> {
    if file.len() > 256 << 20 {
        return Err("file larger than 256 MiB".into());
    }
    if file.len() < 10 || file[..8] != *b"SFVAULT\0" {
        return Err("not an sfvault file".into());
    }
    let version = u16::from_le_bytes([file[8], file[9]]);
    let mut c = Cursor(&file[10..]);
    let slots = match version {
        1..=3 => {
            let slot = passphrase_slot(c.0)?;
            c.take(slot.bytes.len())?;
            KeySlots {
                passphrase: Some(slot),
                recipients: Vec::new(),
                wrapped_key: &[],
            }
        }
        4 => v4_slots(&mut c)?,
        _ => return Err(format!("unknown format version {version}")),
    };
    // From the payload salt on, every version is version 3's layout, except that version 1 has
    // no generation field.
    let payload_salt = c.take(32)?;
    let generation = if version == 1 { 0 } else { c.u64()? };
    let l = c.u32()? as usize;
    let commitment_at = file.len() - c.0.len();
    let header_len = commitment_at + 32;
    if file.len() < header_len {
        return Err("truncated header".into());
    }
    if l < 16 || file.len() != header_len + l {
        return Err("bad payload length".into());
    }
    Ok(Envelope {
        version,
        generation,
        passphrase: slots.passphrase,
        recipients: slots.recipients,
        wrapped_key: slots.wrapped_key,
        payload_salt,
        commitment_at,
        header_len,
    })
}

/// The header length of a well-formed file: `161 + S` (v1: `153 + S`; v4: everything before the
/// payload).
fn header_len(file: &[u8]) -> usize {
    envelope(file).unwrap().header_len
}

/// An opened vault file: its format version, its generation (0 for version 1), its key slots as
/// the shape of `v4-golden.json` has them (v4: `recipients` and `passphrase`), and the plaintext.
struct Opened {
    version: u16,
    generation: u64,
    recipients: Vec<Recipient>,
    passphrase: bool,
    plain: Vec<u8>,
}

/// Section 2: the data key from a passphrase slot. The wrap's aad is, in every version, the
/// 8-byte magic, `01 00`, then the slot's bytes before the wrapped key (KDF id to wrap nonce):
/// for versions 1 to 3, file bytes [0, 37+S) with the version taken as `01 00`.
fn unwrap_passphrase(slot: &PassphraseSlot, passphrase: &str) -> Result<Vec<u8>, String> {
    let s = slot.s();
    let salt = &slot.bytes[15..15 + s];
    let wrap_nonce = &slot.bytes[15 + s..27 + s];
    let wrapped = &slot.bytes[27 + s..75 + s];
    let mut kek = [0u8; 32];
    let (m, t, p) = (slot.memory, slot.iterations, slot.parallelism);
    let params = Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut kek)
        .map_err(|e| e.to_string())?;
    let mut wrap_aad = b"SFVAULT\0\x01\x00".to_vec();
    wrap_aad.extend_from_slice(&slot.bytes[..27 + s]);
    let nonce = Nonce::try_assume_unique_for_key(wrap_nonce).unwrap();
    aead_open(&kek, nonce, &wrap_aad, wrapped).ok_or_else(|| "wrong passphrase".to_string())
}

/// Section 2's recipient slot: `age -d -i IDENTITY` on the wrapped data key (an age file), run with
/// the real `age` tool. No matching stanza is "not a recipient"; anything else age refuses, or a
/// plaintext that is not 32 bytes, is a corrupted file. A missing `age` fails the test.
fn age_decrypt(wrapped: &[u8], identity: &Path) -> Result<Vec<u8>, String> {
    let mut child = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run the `age` tool ({e}): install it with `apt-get install age`")
        });
    let mut stdin = child.stdin.take().unwrap();
    let output = std::thread::scope(|scope| {
        // age may stop reading early (a header it refuses): its exit status tells, not the pipe.
        scope.spawn(move || stdin.write_all(wrapped));
        child.wait_with_output()
    })
    .map_err(|e| format!("age: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("no identity matched") {
            return Err("not a recipient".into());
        }
        return Err(format!("age refused the wrapped key: {}", stderr.trim()));
    }
    if output.stdout.len() != 32 {
        return Err(format!("wrapped data key of {} bytes", output.stdout.len()));
    }
    Ok(output.stdout)
}

/// Section 2 from the data key on, whichever slot gave it: the commitment (the header up to the
/// commitment field) checked in constant time, then the payload (aad: the whole header).
fn open_with_key(file: &[u8], env: Envelope, data_key: &[u8]) -> Result<Opened, String> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, env.payload_salt).extract(data_key);
    let payload_key = expand(&prk, b"sfvault/v1/payload-key");
    let commit_key = expand(&prk, b"sfvault/v1/commitment-key");
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, &commit_key);
    let (at, h) = (env.commitment_at, env.header_len);
    hmac::verify(&hkey, &file[..at], &file[at..h]).map_err(|_| "commitment mismatch")?;
    let zero = Nonce::assume_unique_for_key([0u8; 12]);
    let plain = aead_open(&payload_key, zero, &file[..h], &file[h..]).ok_or("payload tag")?;
    Ok(Opened {
        version: env.version,
        generation: env.generation,
        passphrase: env.passphrase.is_some(),
        recipients: env.recipients,
        plain,
    })
}

/// Sections 1 and 2 through the passphrase slot, for every version.
fn open(file: &[u8], passphrase: &str) -> Result<Opened, String> {
    let env = envelope(file)?;
    let slot = env.passphrase.as_ref().ok_or("no passphrase slot")?;
    let data_key = unwrap_passphrase(slot, passphrase)?;
    open_with_key(file, env, &data_key)
}

/// Sections 1b and 2 through the recipient slot (version 4), with an identity file for `age`.
fn open_with_identity(file: &[u8], identity: &Path) -> Result<Opened, String> {
    let env = envelope(file)?;
    if env.wrapped_key.is_empty() {
        return Err("no recipient slot".into());
    }
    let data_key = age_decrypt(env.wrapped_key, identity)?;
    open_with_key(file, env, &data_key)
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

/// Section 3: the little-endian fixed-width encoding (the header's integers are little-endian
/// too, so section 1b reads its slots with it as well).
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
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
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
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

/// Lowercase hex, as `v4-golden.json` writes the team state's bytes.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Vec<[u8; 32]>` of at most 16 key links, as hex strings.
fn decode_links(c: &mut Cursor) -> Result<Vec<String>, String> {
    let count = c.len()?;
    if count > 16 {
        return Err(format!("{count} key links"));
    }
    (0..count).map(|_| c.take(32).map(to_hex)).collect()
}

/// `Slice { name, file, entries, recipients, key, vault_id, key_links, changed_at }`, with the
/// checks of section 3 that the vectors exercise: a file without `..`.
fn decode_slice(c: &mut Cursor) -> Result<Value, String> {
    let (name, file) = (c.string()?, c.string()?);
    if file.split('/').any(|p| p == ".." || p.is_empty()) || file.starts_with('/') {
        return Err(format!("slice file {file:?} not relative without `..`"));
    }
    let entries: Vec<String> = (0..c.len()?)
        .map(|_| c.string())
        .collect::<Result<_, _>>()?;
    let mut recipients = Vec::new();
    for _ in 0..c.len()? {
        let (n, k) = (c.string()?, c.string()?);
        recipients.push(json!({"name": n, "key": k}));
    }
    let key = to_hex(c.take(32)?);
    let vault_id = to_hex(c.take(16)?);
    let key_links = decode_links(c)?;
    let changed_at = c.i64()?;
    Ok(
        json!({"name": name, "file": file, "entries": entries, "recipients": recipients,
        "key": key, "vault_id": vault_id, "key_links": key_links, "changed_at": changed_at}),
    )
}

/// v4: `Team { vault_id: [u8; 16], key_links: Vec<[u8; 32]>, slices: Vec<Slice>,
/// slice_of: Option<[u8; 16]> }`, as the `team` of `v4-golden.json` (hex strings).
fn decode_team(c: &mut Cursor) -> Result<Value, String> {
    let vault_id = to_hex(c.take(16)?);
    let key_links = decode_links(c)?;
    let slices: Vec<Value> = (0..c.len()?)
        .map(|_| decode_slice(c))
        .collect::<Result<_, _>>()?;
    let slice_of = match c.u8()? {
        0 => None,
        1 => Some(to_hex(c.take(16)?)),
        t => return Err(format!("bad option tag {t}")),
    };
    if slice_of.is_some() && !slices.is_empty() {
        return Err("a slice that defines slices".into());
    }
    for (i, s) in slices.iter().enumerate() {
        if slices[..i]
            .iter()
            .any(|o| o["name"] == s["name"] || o["file"] == s["file"])
        {
            return Err("two slices of one name or file".into());
        }
    }
    Ok(
        json!({"vault_id": vault_id, "key_links": key_links, "slices": slices, "slice_of": slice_of}),
    )
}

/// Decodes a whole plaintext of format `version` into the shape of `v*-golden.json`, with the
/// post-decode checks. Versions 1 and 2 have the same payload ("v1, v2:" in section 3):
/// `history_limit` and the entries; version 3 adds `removed_days` and the removed map; version 4
/// is version 3's `Vault` followed by `Team`. (Version 4's `recipients` and `passphrase` come from
/// the header: see `v4_json`.)
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
    let team = if version >= 4 {
        Some(decode_team(&mut c)?)
    } else {
        None
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
    if let Some(team) = team {
        vault["team"] = team;
    }
    Ok(vault)
}

/// The recipients of a version 4 header in the shape of `v4-golden.json`.
fn recipients_json(recipients: &[Recipient]) -> Value {
    let list = recipients.iter();
    Value::Array(
        list.map(|r| json!({"name": r.name, "key": r.key}))
            .collect(),
    )
}

/// A whole opened version 4 file in the shape of `v4-golden.json`: the payload (section 3) with
/// the header's recipients and whether it has a passphrase slot.
fn v4_json(opened: &Opened) -> Result<Value, String> {
    let mut vault = decode_vault(&opened.plain, opened.version)?;
    vault["recipients"] = recipients_json(&opened.recipients);
    vault["passphrase"] = json!(opened.passphrase);
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
    for name in [
        "v4-golden.sfv",
        "v3-golden.sfv",
        "v2-golden.sfv",
        "v1-golden.sfv",
    ] {
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
    for version in [0u16, 5, 0x0102] {
        let mut file = read_vector("v2-golden.sfv");
        file[8..10].copy_from_slice(&version.to_le_bytes());
        let err = open(&file, PASSPHRASE).err().unwrap();
        assert_eq!(err, format!("unknown format version {version}"));
    }
    // Section 5: a version 3 file marked 4 is read as version 4's slots: its KDF id (1) is the
    // passphrase flag, its AEAD id the slot's KDF id, and the low byte of its memory cost (19456 =
    // 0x4c00) the slot's AEAD id: "unknown cipher id 0".
    for name in ["v3-golden.sfv", "v2-golden.sfv"] {
        let mut file = read_vector(name);
        file[8] = 4;
        let err = open(&file, PASSPHRASE).err();
        assert_eq!(err.as_deref(), Some("unknown AEAD id 0"), "{name}");
    }
    let err = open(&read_vector("broken/v3-version-4.sfv"), PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("unknown AEAD id 0"));
    // And a version 4 file marked 3 puts its passphrase flag (1) where the KDF id is and its KDF
    // id (1) where the AEAD id is, then reads its slot's bytes one off: the memory cost is out of
    // range.
    let mut v4 = read_vector("v4-golden.sfv");
    v4[8] = 3;
    let err = open(&v4, PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("Argon2 parameters out of range"));
    let err = open(&read_vector("broken/v4-version-5.sfv"), PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("unknown format version 5"));
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

/// Section 2's error classes: an unwrap failure is a wrong passphrase and no matching age stanza
/// is "not a recipient" (exit 4); everything else this reader refuses is a corrupted file (exit
/// 6). Every broken vector must be refused, with the exit code `broken/EXPECTED*.txt` lists; a
/// version 4 one without a passphrase slot is opened with the test identity.
#[test]
fn broken_vectors_are_refused_with_their_error_class() {
    let mut checked = 0;
    for list in [
        "broken/EXPECTED.txt",
        "broken/EXPECTED-v2.txt",
        "broken/EXPECTED-v3.txt",
        "broken/EXPECTED-v4.txt",
    ] {
        let text = String::from_utf8(read_vector(list)).unwrap();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let mut words = line.split_whitespace();
            let (name, code) = (words.next().unwrap(), words.next().unwrap());
            let file = read_vector(&format!("broken/{name}"));
            let opened = match envelope(&file) {
                Ok(env) if env.passphrase.is_none() => open_with_identity(&file, &identity()),
                _ => open(&file, PASSPHRASE),
            };
            let result = opened.and_then(|o| decode_vault(&o.plain, o.version));
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name} was accepted"));
            let exit_4 = ["wrong passphrase", "not a recipient"];
            let class = if exit_4.contains(&err.as_str()) {
                "4"
            } else {
                "6"
            };
            assert_eq!(class, code, "{name}: {err}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} broken vectors listed");
}

/// The age identity of recipient `alice` (section 5).
fn identity() -> PathBuf {
    vector("v4-identity.txt")
}

/// The SSH ed25519 private key of recipient `golden-test-key`, copied to a 0600 file first
/// (section 5: git checks it out readable by others).
fn ssh_identity() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    // One file per call: tests run in parallel threads, and rewriting a file another test's
    // `age` is reading would truncate it under it.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("format_doc-v4-ssh-ed25519-{}-{call}", std::process::id());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, read_vector("v4-ssh-ed25519")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn v4_golden_vault_decodes_to_golden_json() {
    let file = read_vector("v4-golden.sfv");
    let opened = open(&file, PASSPHRASE).unwrap();
    assert_eq!(opened.version, 4);
    assert_eq!(opened.generation, V4_GOLDEN_GENERATION);
    let decoded = v4_json(&opened).unwrap();
    let golden = golden_json("v4-golden.json");
    assert_eq!(decoded, golden);
    // Section 5: version 3's golden contents, vault_id 0x00, 0x11, ... 0xff, one link of 0xab.
    let v3 = golden_json("v3-golden.json");
    for key in ["entries", "history_limit", "removed_days", "removed"] {
        assert_eq!(decoded[key], v3[key], "{key}");
    }
    let vault_id: Vec<u8> = (0..16).map(|i| i * 0x11).collect();
    assert_eq!(decoded["team"]["vault_id"], to_hex(&vault_id));
    assert_eq!(decoded["team"]["key_links"], json!([to_hex(&[0xab; 32])]));
    // "sfvault writes S = 32": the header is the magic and version, the flag, a 107-byte
    // passphrase slot, the recipients, W and the age file, then 32 + 8 + 4 + 32 bytes.
    let env = envelope(&file).unwrap();
    assert_eq!(env.passphrase.as_ref().unwrap().s(), 32);
    let list = env
        .recipients
        .iter()
        .map(|r| 3 + r.name.len() + r.key.len());
    let list: usize = list.sum();
    let slots = 1 + 75 + 32 + 2 + list + 4 + env.wrapped_key.len();
    assert_eq!(env.header_len, 10 + slots + 32 + 8 + 4 + 32);
}

#[test]
fn v4_recipient_slot_gives_the_passphrase_slots_data_key() {
    let file = read_vector("v4-golden.sfv");
    let env = envelope(&file).unwrap();
    assert_eq!(
        recipients_json(&env.recipients),
        golden_json("v4-golden.json")["recipients"]
    );
    // Section 5: alice is the identity's public key; golden-test-key the .pub key, no comment.
    let identity_text = String::from_utf8(read_vector("v4-identity.txt")).unwrap();
    assert!(identity_text.contains(&format!("public key: {}", env.recipients[0].key)));
    let public = String::from_utf8(read_vector("v4-ssh-ed25519.pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().collect();
    assert_eq!(env.recipients[1].key, public[..2].join(" "));
    // The wrapped key is an age file in the binary format, not armored.
    assert!(env.wrapped_key.starts_with(b"age-encryption.org/v1\n"));

    let slot = env.passphrase.as_ref().unwrap();
    let from_passphrase = unwrap_passphrase(slot, PASSPHRASE).unwrap();
    let from_age = age_decrypt(env.wrapped_key, &identity()).unwrap();
    assert_eq!(from_age, from_passphrase);
    let ssh = ssh_identity();
    let from_ssh = age_decrypt(env.wrapped_key, &ssh);
    std::fs::remove_file(&ssh).unwrap();
    assert_eq!(from_ssh.unwrap(), from_passphrase);
    // The recipient slot's key opens the file like the passphrase did.
    let by_age = open_with_identity(&file, &identity()).unwrap();
    assert_eq!(by_age.plain, open(&file, PASSPHRASE).unwrap().plain);
}

#[test]
fn v4_nopass_vault_opens_through_the_recipient_slot() {
    let file = read_vector("v4-nopass.sfv");
    let env = envelope(&file).unwrap();
    assert!(env.passphrase.is_none());
    let alice = &golden_json("v4-golden.json")["recipients"][0];
    assert_eq!(recipients_json(&env.recipients), json!([alice]));
    assert_eq!(
        open(&file, PASSPHRASE).err().as_deref(),
        Some("no passphrase slot")
    );
    let opened = open_with_identity(&file, &identity()).unwrap();
    assert_eq!(opened.version, 4);
    assert_eq!(opened.generation, V4_NOPASS_GENERATION);
    let decoded = v4_json(&opened).unwrap();
    let golden = golden_json("v4-golden.json");
    // Section 5: "the same contents", no passphrase, one recipient.
    for key in [
        "entries",
        "history_limit",
        "removed_days",
        "removed",
        "team",
    ] {
        assert_eq!(decoded[key], golden[key], "{key}");
    }
    assert_eq!(decoded["passphrase"], false);
    // golden-test-key is not one of its recipients: "not a recipient" (exit 4).
    let ssh = ssh_identity();
    let err = open_with_identity(&file, &ssh).err();
    std::fs::remove_file(&ssh).unwrap();
    assert_eq!(err.as_deref(), Some("not a recipient"));
}

/// Offset of the byte after the version 4 passphrase slot of `v4-golden.sfv`: `R`.
fn v4_golden_r_at(file: &[u8]) -> usize {
    11 + 75 + usize::from(file[11 + 14])
}

#[test]
fn v4_header_is_checked_before_any_key_is_derived() {
    let golden = read_vector("v4-golden.sfv");
    // The passphrase slot flag is 0 or 1.
    let mut file = golden.clone();
    file[10] = 2;
    let err = open(&file, PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("passphrase slot flag 2"));
    let err = envelope(&read_vector("broken/v4-passphrase-flag-2.sfv")).err();
    assert_eq!(err.as_deref(), Some("passphrase slot flag 2"));
    // At most 256 recipients.
    let r_at = v4_golden_r_at(&golden);
    assert_eq!(golden[r_at..r_at + 2], 2u16.to_le_bytes());
    let mut file = golden.clone();
    file[r_at..r_at + 2].copy_from_slice(&257u16.to_le_bytes());
    assert_eq!(envelope(&file).err().as_deref(), Some("257 recipients"));
    // A recipient name starts with a letter or digit.
    let mut file = golden.clone();
    assert_eq!(&file[r_at + 3..r_at + 8], b"alice");
    file[r_at + 3] = b'-';
    let err = envelope(&file).err().unwrap();
    assert!(err.starts_with("bad recipient name"), "{err}");
    // Names are unique: "golden-test-key" renamed "alice" is refused (while the list is read,
    // before the lengths that follow it are checked).
    let mut file = golden.clone();
    let second = r_at + 3 + 5 + 2 + 62;
    assert_eq!(file[second], 15);
    file[second] = 5;
    file.splice(second + 1..second + 16, *b"alice");
    let err = envelope(&file).err();
    assert_eq!(err.as_deref(), Some("recipient \"alice\" listed twice"));
    // Neither a passphrase nor a recipient: nothing opens it.
    let err = envelope(&read_vector("broken/v4-no-slots.sfv"))
        .err()
        .unwrap();
    assert!(err.contains("nothing opens it"), "{err}");
    // W is 0 if and only if R is 0.
    let err = envelope(&read_vector("broken/v4-recipients-without-key.sfv")).err();
    assert_eq!(
        err.as_deref(),
        Some("1 recipients but a wrapped key of 0 bytes")
    );
}

#[test]
fn v4_slots_are_authenticated_by_the_commitment() {
    let golden = read_vector("v4-golden.sfv");
    let r_at = v4_golden_r_at(&golden);
    // A changed byte of alice's key: the passphrase slot still unwraps (its aad is only the
    // magic, 01 00 and the slot), but the commitment covers the list.
    let mut file = golden.clone();
    let key_at = r_at + 2 + 1 + 5 + 2;
    assert_eq!(&file[key_at..key_at + 4], b"age1");
    file[key_at + 10] ^= 0x01;
    assert!(envelope(&file).is_ok(), "still a well-formed header");
    let err = open(&file, PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("commitment mismatch"));
    let err = open(
        &read_vector("broken/v4-recipient-key-altered.sfv"),
        PASSPHRASE,
    )
    .err();
    assert_eq!(err.as_deref(), Some("commitment mismatch"));
    // The forged older generation.
    let err = open(&read_vector("broken/v4-older-generation.sfv"), PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("commitment mismatch"));
    // A changed byte of the passphrase slot's wrap nonce: wrong passphrase (section 2).
    let mut file = golden.clone();
    file[11 + 15 + 32] ^= 0x01;
    let err = open(&file, PASSPHRASE).err();
    assert_eq!(err.as_deref(), Some("wrong passphrase"));
    // The payload's team state: at most 16 key links, nothing after it, and it must be there.
    for (name, expected) in [
        ("v4-17-key-links.sfv", "17 key links"),
        ("v4-trailing-plaintext.sfv", "trailing bytes"),
        ("v4-no-team-state.sfv", "need 16 bytes"),
        ("v4-slice-file-outside.sfv", "without `..`"),
        ("v4-slice-with-slices.sfv", "defines slices"),
    ] {
        let opened = open(&read_vector(&format!("broken/{name}")), PASSPHRASE).unwrap();
        let err = decode_vault(&opened.plain, 4).unwrap_err();
        assert!(err.contains(expected), "{name}: {err}");
    }
}
