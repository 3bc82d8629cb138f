//! The on-disk envelope, byte by byte as docs/FORMAT.md describes it:
//!
//! ```text
//! magic(8) version(2) kdf_id(1) aead_id(1) m_kib(4) t(4) p(4) salt_len(1) salt(16|32)
//! wrap_nonce(12) wrapped_key(48) payload_salt(32) [generation(8), version 2 only]
//! payload_len(4) commitment(32) payload(payload_len)
//! ```
//!
//! Version 2 adds the save's generation (authenticated, one more than the file it replaced) so a
//! reader can tell an older copy put back in place (rollback); version 1 files read as
//! generation 0. Version 3 keeps that envelope and changes the payload: removed entries kept for
//! `undelete`, and how long they are kept. Versions 1 and 2 are written as version 3 on their
//! next save.
//!
//! Every integer is little-endian. Parsing is bounded and refuses, never clamps; nothing is
//! allocated or derived before the header has been checked.

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::secret::{SecretKey, SecretString};
use crate::vault::crypto::{self, COMMITMENT_LEN, KdfParams, PayloadKeys, TAG_LEN};
use crate::vault::model::{MAX_KEY_LINKS, TeamState, VaultData, VaultDataV2};
use crate::vault::recipients::{self, Recipient};
pub use crate::vault::slots::{Credential, KeySlot, KeySlots, RecipientSlot, VaultKey};

/// The first eight bytes of every vault file.
pub const MAGIC: [u8; 8] = *b"SFVAULT\0";
/// The newest format version this build reads and writes: version 4, a team vault (recipients,
/// or no passphrase). A vault that has only a passphrase is still written as
/// [`PASSPHRASE_FORMAT_VERSION`], so an older sfvault keeps reading it.
pub const FORMAT_VERSION: u16 = 4;
/// The version written for a vault that has a passphrase and no team state.
pub const PASSPHRASE_FORMAT_VERSION: u16 = 3;
/// The oldest format version this build reads.
pub const OLDEST_READ_VERSION: u16 = 1;
/// The first version whose slots may hold recipients and whose payload ends with team state.
pub const TEAM_SINCE: u16 = 4;
/// Algorithm id of Argon2id version 0x13.
pub const KDF_ARGON2ID: u8 = 1;
/// Algorithm id of AES-256-GCM.
pub const AEAD_AES256GCM: u8 = 1;
/// Length of the per-save payload salt.
pub const PAYLOAD_SALT_LEN: usize = 32;
/// Largest vault file accepted (and largest payload written): 256 MiB.
pub const MAX_FILE_LEN: u64 = 256 * 1024 * 1024;

/// The bincode configuration of the payload: little-endian, fixed-width integers, and a limit so a
/// length field can never make the decoder allocate more than a file may hold.
fn payload_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<{ MAX_FILE_LEN as usize }>()
}

/// Any part of the payload in the payload's encoding, for tests of the payload's types.
#[cfg(test)]
pub(crate) fn encode_part<T: serde::Serialize>(value: &T) -> Vec<u8> {
    crate::secret::exposing(|| bincode::serde::encode_to_vec(value, payload_config()))
        .expect("encodes")
}

/// Decode any part of the payload, for tests of the payload's types.
#[cfg(test)]
pub(crate) fn decode_part<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, payload_config())
        .map(|(value, _)| value)
        .map_err(|e| e.to_string())
}

/// Why a file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The key could not be unwrapped: wrong passphrase, or the authenticated header was altered.
    WrongPassphrase,
    /// The identity given is not one of the vault's recipients.
    NotARecipient,
    /// A passphrase was given, but the vault opens only by identity.
    NoPassphrase,
    /// The file is not a vault this build can read; the text says why.
    Corrupt(String),
}

impl OpenError {
    /// The error for the file at `path`: [`Error::WrongPassphrase`] or [`Error::Corrupt`]
    /// (with `hint` after the detail, e.g. where the previous version is).
    pub fn for_file(self, path: &Path, hint: Option<&str>) -> Error {
        match self {
            OpenError::WrongPassphrase => Error::WrongPassphrase {
                path: path.to_path_buf(),
                backup: None,
            },
            OpenError::NotARecipient => Error::NotARecipient {
                path: path.to_path_buf(),
            },
            OpenError::NoPassphrase => Error::locked(format!(
                "{} has no passphrase: it opens with an identity (--identity FILE or \
                 SFVAULT_IDENTITY_FILE: an age identity file or an SSH private key whose public \
                 key is one of its recipients)",
                path.display()
            )),
            OpenError::Corrupt(detail) => Error::corrupt(
                path,
                match hint {
                    Some(hint) => format!("{detail}; {hint}"),
                    None => detail,
                },
            ),
        }
    }
}

/// A parsed, bounds-checked header with the byte ranges the crypto needs.
#[derive(Debug)]
pub struct Header {
    /// The key slots.
    pub slots: KeySlots,
    /// The format version of the file.
    pub version: u16,
    /// This save's payload salt.
    pub payload_salt: [u8; PAYLOAD_SALT_LEN],
    /// This save's generation: one more than the version it replaced (0 for a version 1 file).
    /// Authenticated only once the payload has been opened.
    pub generation: u64,
    /// Length of the payload ciphertext including its tag.
    pub payload_len: usize,
    /// The key-commitment tag.
    pub commitment: [u8; COMMITMENT_LEN],
    /// Length of the header (offset of the payload).
    pub len: usize,
}

/// Read and check the header of `bytes`. No key is derived and nothing large is allocated.
pub fn parse_header(bytes: &[u8]) -> Result<Header, OpenError> {
    let corrupt = |m: &str| OpenError::Corrupt(m.to_owned());
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(corrupt("larger than the 256 MiB limit"));
    }
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not an sfvault file (wrong magic bytes)"));
    }
    let mut r = Reader {
        bytes,
        pos: MAGIC.len(),
    };
    let version = u16::from_le_bytes(r.array()?);
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(OpenError::Corrupt(format!(
            "format version {version} is not supported (this sfvault reads versions \
             {OLDEST_READ_VERSION} to {FORMAT_VERSION}); a newer sfvault may read it"
        )));
    }
    let slots = if version >= TEAM_SINCE {
        let [has_passphrase] = r.array()?;
        let passphrase = match has_passphrase {
            0 => None,
            1 => Some(parse_passphrase_slot(&mut r)?),
            n => {
                return Err(OpenError::Corrupt(format!(
                    "passphrase slot flag {n} (must be 0 or 1)"
                )));
            }
        };
        let recipients = parse_recipient_slot(&mut r)?;
        if passphrase.is_none() && recipients.is_none() {
            return Err(corrupt(
                "neither a passphrase slot nor recipients: nothing opens it",
            ));
        }
        KeySlots {
            passphrase,
            recipients,
        }
    } else {
        KeySlots {
            passphrase: Some(parse_passphrase_slot(&mut r)?),
            recipients: None,
        }
    };
    let payload_salt = r.array()?;
    let generation = if version >= 2 {
        u64::from_le_bytes(r.array()?)
    } else {
        0
    };
    let payload_len = u32::from_le_bytes(r.array()?) as usize;
    let commitment = r.array()?;
    let len = r.pos;
    if payload_len < TAG_LEN {
        return Err(corrupt("payload shorter than its authentication tag"));
    }
    if bytes.len() - len != payload_len {
        return Err(OpenError::Corrupt(format!(
            "payload is {} bytes but the header says {payload_len} (truncated or extended file)",
            bytes.len() - len
        )));
    }
    Ok(Header {
        slots,
        version,
        payload_salt,
        generation,
        payload_len,
        commitment,
        len,
    })
}

fn parse_passphrase_slot(r: &mut Reader) -> Result<KeySlot, OpenError> {
    let [kdf_id] = r.array()?;
    if kdf_id != KDF_ARGON2ID {
        return Err(OpenError::Corrupt(format!("unknown KDF id {kdf_id}")));
    }
    let [aead_id] = r.array()?;
    if aead_id != AEAD_AES256GCM {
        return Err(OpenError::Corrupt(format!("unknown cipher id {aead_id}")));
    }
    let kdf = KdfParams {
        memory_kib: u32::from_le_bytes(r.array()?),
        iterations: u32::from_le_bytes(r.array()?),
        parallelism: u32::from_le_bytes(r.array()?),
    };
    kdf.check().map_err(OpenError::Corrupt)?;
    let [salt_len] = r.array()?;
    if salt_len != 16 && salt_len != 32 {
        return Err(OpenError::Corrupt(format!(
            "KDF salt length {salt_len} (must be 16 or 32)"
        )));
    }
    let kdf_salt = r.take(salt_len.into())?.to_vec();
    Ok(KeySlot {
        kdf,
        kdf_salt,
        wrap_nonce: r.array()?,
        wrapped_key: r.array()?,
    })
}

/// The recipient slot of a version 4 file: names and public keys (checked for form, not parsed
/// as keys: that costs, and only a save that wraps to them needs it), then the age file.
fn parse_recipient_slot(r: &mut Reader) -> Result<Option<RecipientSlot>, OpenError> {
    let corrupt = |m: String| OpenError::Corrupt(m);
    let count = u16::from_le_bytes(r.array()?) as usize;
    if count > recipients::MAX_RECIPIENTS {
        return Err(corrupt(format!(
            "{count} recipients (at most {})",
            recipients::MAX_RECIPIENTS
        )));
    }
    let mut list: Vec<Recipient> = Vec::with_capacity(count);
    for _ in 0..count {
        let [name_len] = r.array()?;
        let name = std::str::from_utf8(r.take(name_len.into())?)
            .map_err(|_| corrupt("a recipient name is not UTF-8".into()))?;
        recipients::check_name(name).map_err(corrupt)?;
        let key_len = u16::from_le_bytes(r.array()?) as usize;
        if key_len == 0 || key_len > recipients::MAX_KEY_LEN {
            return Err(corrupt(format!("recipient {name}: key length {key_len}")));
        }
        let key = std::str::from_utf8(r.take(key_len)?)
            .map_err(|_| corrupt(format!("recipient {name}: key is not UTF-8")))?;
        if key.trim() != key || key.contains(['\n', '\r']) {
            return Err(corrupt(format!(
                "recipient {name}: key has stray whitespace"
            )));
        }
        if list.iter().any(|o| o.name == name) {
            return Err(corrupt(format!("recipient {name} appears twice")));
        }
        list.push(Recipient {
            name: name.to_owned(),
            key: key.to_owned(),
        });
    }
    let wrapped_len = u32::from_le_bytes(r.array()?) as usize;
    if (count == 0) != (wrapped_len == 0) {
        return Err(corrupt(format!(
            "{count} recipients but a wrapped key of {wrapped_len} bytes"
        )));
    }
    if wrapped_len > recipients::MAX_WRAPPED_LEN {
        return Err(corrupt(format!(
            "wrapped key of {wrapped_len} bytes (at most 1 MiB)"
        )));
    }
    let wrapped = r.take(wrapped_len)?.to_vec();
    Ok((count > 0).then_some(RecipientSlot {
        recipients: list,
        wrapped,
    }))
}

/// The bytes of `slots` in a version 4 header (between the version and the payload salt).
fn encode_slots_v4(slots: &KeySlots, out: &mut Vec<u8>) -> Result<(), String> {
    match &slots.passphrase {
        None => out.push(0),
        Some(slot) => {
            out.push(1);
            slot.encode_before_key(out);
            out.extend_from_slice(&slot.wrapped_key);
        }
    }
    let empty = RecipientSlot {
        recipients: Vec::new(),
        wrapped: Vec::new(),
    };
    let rs = slots.recipients.as_ref().unwrap_or(&empty);
    if rs.recipients.len() > recipients::MAX_RECIPIENTS {
        return Err(format!("at most {} recipients", recipients::MAX_RECIPIENTS));
    }
    out.extend_from_slice(&(rs.recipients.len() as u16).to_le_bytes());
    for r in &rs.recipients {
        recipients::check_name(&r.name)?;
        if r.key.is_empty() || r.key.len() > recipients::MAX_KEY_LEN {
            return Err(format!("recipient {}: key length {}", r.name, r.key.len()));
        }
        out.push(r.name.len() as u8);
        out.extend_from_slice(r.name.as_bytes());
        out.extend_from_slice(&(r.key.len() as u16).to_le_bytes());
        out.extend_from_slice(r.key.as_bytes());
    }
    out.extend_from_slice(&(rs.wrapped.len() as u32).to_le_bytes());
    out.extend_from_slice(&rs.wrapped);
    Ok(())
}

/// Parse, unlock with `passphrase`, authenticate and decode a vault file.
pub fn open(bytes: &[u8], passphrase: &SecretString) -> Result<(VaultData, VaultKey), OpenError> {
    open_by(bytes, &Credential::Passphrase(passphrase.duplicate()))
}

/// Parse, unlock with `credential` (a passphrase or an identity), authenticate and decode.
pub fn open_by(bytes: &[u8], credential: &Credential) -> Result<(VaultData, VaultKey), OpenError> {
    let header = parse_header(bytes)?;
    let key = header.slots.unlock(credential)?;
    let data = decrypt_payload(bytes, &header, &key)?;
    Ok((data, key))
}

/// Open a vault file with a key already unwrapped from the same slot (a reload after another
/// writer saved). A file whose slot differs (passphrase changed, vault replaced) is refused with
/// [`OpenError::WrongPassphrase`] so the caller asks again.
pub fn open_with_key(bytes: &[u8], key: &VaultKey) -> Result<VaultData, OpenError> {
    let header = parse_header(bytes)?;
    if header.slots != *key.slots() {
        return Err(OpenError::WrongPassphrase);
    }
    decrypt_payload(bytes, &header, key)
}

/// The key of a vault file whose raw data key was handed over instead of the passphrase (the
/// agent's start-up): the file's slot with `data_key`. Nothing is proven yet: opening the file
/// with it checks the key commitment before anything is decrypted.
pub fn key_for_data_key(bytes: &[u8], data_key: SecretKey) -> Result<VaultKey, OpenError> {
    let header = parse_header(bytes)?;
    Ok(VaultKey::from_parts(header.slots, data_key))
}

/// The first format version whose payload holds removed entries (`VaultData` as it is now);
/// older payloads decode as [`VaultDataV2`].
const REMOVED_SINCE: u16 = 3;

/// Like [`open_with_key`], but decrypts inside `bytes` instead of a copy (a 50 MB vault then
/// costs 50 MB, not 100). The payload region holds plaintext only while it is decoded, and is
/// zeroized before this returns; the header is left as it was.
pub fn open_in_place(bytes: &mut [u8], key: &VaultKey) -> Result<VaultData, OpenError> {
    let header = parse_header(bytes)?;
    if header.slots != *key.slots() {
        return Err(OpenError::WrongPassphrase);
    }
    let keys = PayloadKeys::derive(key.data_key(), &header.payload_salt);
    let committed = header.len - COMMITMENT_LEN;
    if !keys.verify_commitment(&bytes[..committed], &header.commitment) {
        return Err(OpenError::Corrupt(
            "key commitment does not match (file altered)".into(),
        ));
    }
    let (head, payload) = bytes.split_at_mut(header.len);
    let result = match keys.open(head, payload) {
        Some(plain) => decode_payload_of(plain, header.version),
        None => Err(OpenError::Corrupt(
            "payload failed authentication (file altered)".into(),
        )),
    };
    zeroize::Zeroize::zeroize(payload);
    result
}

fn decrypt_payload(bytes: &[u8], header: &Header, key: &VaultKey) -> Result<VaultData, OpenError> {
    let keys = PayloadKeys::derive(key.data_key(), &header.payload_salt);
    let committed = header.len - COMMITMENT_LEN;
    if !keys.verify_commitment(&bytes[..committed], &header.commitment) {
        return Err(OpenError::Corrupt(
            "key commitment does not match (file altered)".into(),
        ));
    }
    let mut buf = Zeroizing::new(bytes[header.len..].to_vec());
    let plain = keys
        .open(&bytes[..header.len], &mut buf)
        .ok_or_else(|| OpenError::Corrupt("payload failed authentication (file altered)".into()))?;
    decode_payload_of(plain, header.version)
}

/// Decode a plaintext payload of the newest format version, refusing trailing bytes and broken
/// invariants.
pub fn decode_payload(plain: &[u8]) -> Result<VaultData, OpenError> {
    decode_payload_of(plain, PASSPHRASE_FORMAT_VERSION)
}

/// Decode the plaintext payload of a file of format `version`, refusing trailing bytes and
/// broken invariants. A version 1 or 2 payload (no removed entries) comes back as version 3's;
/// a version 4 payload is version 3's followed by the team state.
pub fn decode_payload_of(plain: &[u8], version: u16) -> Result<VaultData, OpenError> {
    let decoded = if version >= TEAM_SINCE {
        bincode::serde::decode_from_slice::<(VaultData, TeamState), _>(plain, payload_config()).map(
            |((mut data, team), used)| {
                data.team = Some(team);
                (data, used)
            },
        )
    } else if version >= REMOVED_SINCE {
        bincode::serde::decode_from_slice::<VaultData, _>(plain, payload_config())
    } else {
        bincode::serde::decode_from_slice::<VaultDataV2, _>(plain, payload_config())
            .map(|(old, used)| (VaultData::from(old), used))
    };
    let (data, used) =
        decoded.map_err(|e| OpenError::Corrupt(format!("payload does not decode: {e}")))?;
    if used != plain.len() {
        return Err(OpenError::Corrupt(format!(
            "{} unexpected bytes after the payload",
            plain.len() - used
        )));
    }
    data.check_invariants().map_err(OpenError::Corrupt)?;
    if let Some(team) = &data.team
        && team.key_links.len() > MAX_KEY_LINKS
    {
        return Err(OpenError::Corrupt(format!(
            "{} key links (at most {MAX_KEY_LINKS})",
            team.key_links.len()
        )));
    }
    if let Some(team) = &data.team {
        crate::vault::slice::check_all(team).map_err(OpenError::Corrupt)?;
    }
    Ok(data)
}

/// The version a save of `data` under `key` is written as: 4 for a team vault (team state,
/// recipients, or no passphrase), else 3, which older sfvault releases read.
pub fn version_for(data: &VaultData, key: &VaultKey) -> u16 {
    if data.team.is_some() || key.slots().need_team_format() {
        FORMAT_VERSION
    } else {
        PASSPHRASE_FORMAT_VERSION
    }
}

/// Encode the payload as format `version` (3 or 4) into a zeroizing buffer sized exactly, with
/// room for the tag, so no reallocation leaves plaintext copies behind. Secret values are
/// serialized (inside [`crate::secret::exposing`]) only here and in the agent's frames.
pub fn encode_payload(data: &VaultData, version: u16) -> Result<Zeroizing<Vec<u8>>, String> {
    match (version, &data.team) {
        (FORMAT_VERSION, Some(team)) => crate::secret::exposing(|| encode_exposed(&(data, team))),
        (FORMAT_VERSION, None) => Err("a team vault without its team state".into()),
        (PASSPHRASE_FORMAT_VERSION, None) => crate::secret::exposing(|| encode_exposed(data)),
        (PASSPHRASE_FORMAT_VERSION, Some(_)) => {
            Err("a team vault cannot be written as version 3".into())
        }
        (v, _) => Err(format!("cannot write format version {v}")),
    }
}

fn encode_exposed(value: &impl serde::Serialize) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut counter = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut counter, payload_config())
        .map_err(|e| format!("cannot encode the vault: {e}"))?;
    let len = counter.bytes_written;
    if len as u64 + (TAG_LEN as u64) > u32::MAX as u64 || len as u64 > MAX_FILE_LEN - 1024 {
        return Err("the vault would exceed the 256 MiB limit".into());
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(len + TAG_LEN));
    buf.resize(len, 0);
    bincode::serde::encode_into_slice(value, &mut buf[..], payload_config())
        .map_err(|e| format!("cannot encode the vault: {e}"))?;
    Ok(buf)
}

/// Encrypt `data` into a complete vault file under `key`, with a fresh payload salt, as save
/// number `generation`.
pub fn seal(data: &VaultData, key: &VaultKey, generation: u64) -> Result<Vec<u8>, String> {
    let mut payload_salt = [0u8; PAYLOAD_SALT_LEN];
    crypto::random_fill(&mut payload_salt);
    seal_with_salt(data, key, &payload_salt, generation)
}

/// [`seal`] with a chosen payload salt (for golden test vectors).
pub fn seal_with_salt(
    data: &VaultData,
    key: &VaultKey,
    payload_salt: &[u8; PAYLOAD_SALT_LEN],
    generation: u64,
) -> Result<Vec<u8>, String> {
    let version = version_for(data, key);
    let payload = encode_payload(data, version)?;
    seal_plaintext(payload, key, payload_salt, generation, version)
}

/// Seal an already-encoded payload of format `version`. Public so test vectors and fuzzers can
/// build files whose plaintext is deliberately malformed; everything else goes through [`seal`].
pub fn seal_plaintext(
    mut payload: Zeroizing<Vec<u8>>,
    key: &VaultKey,
    payload_salt: &[u8; PAYLOAD_SALT_LEN],
    generation: u64,
    version: u16,
) -> Result<Vec<u8>, String> {
    payload.reserve_exact(TAG_LEN);
    let payload_len = (payload.len() + TAG_LEN) as u32;
    let mut header = Vec::with_capacity(256);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&version.to_le_bytes());
    match (version >= TEAM_SINCE, &key.slots().passphrase) {
        (true, _) => encode_slots_v4(key.slots(), &mut header)?,
        (false, Some(slot)) if !key.slots().need_team_format() => {
            slot.encode_before_key(&mut header);
            header.extend_from_slice(&slot.wrapped_key);
        }
        (false, _) => return Err(format!("version {version} holds only a passphrase slot")),
    }
    header.extend_from_slice(payload_salt);
    header.extend_from_slice(&generation.to_le_bytes());
    header.extend_from_slice(&payload_len.to_le_bytes());
    let keys = PayloadKeys::derive(key.data_key(), payload_salt);
    let commitment = keys.commitment(&header);
    header.extend_from_slice(&commitment);
    keys.seal(&header, &mut payload);
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// A cursor that fails with `Corrupt("truncated header")` instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpenError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| OpenError::Corrupt("truncated header".into()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OpenError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::name::EntryName;

    fn pass(s: &str) -> SecretString {
        SecretString::new(s.into())
    }

    fn sample() -> VaultData {
        let mut v = VaultData::default();
        let n = EntryName::parse("acme/ci").unwrap();
        v.add_entry(&n, 10).unwrap();
        v.set_field(&n, "consumer_secret", pass("s3cr3t"), true, 11)
            .unwrap();
        v
    }

    #[test]
    fn seal_open_roundtrip() {
        let key = VaultKey::generate(&pass("pw"), KdfParams::MINIMUM).unwrap();
        let bytes = seal(&sample(), &key, 1).unwrap();
        let (data, key2) = open(&bytes, &pass("pw")).unwrap();
        assert_eq!(data, sample());
        assert_eq!(open_with_key(&bytes, &key2).unwrap(), sample());
        assert_eq!(
            open(&bytes, &pass("px")).unwrap_err(),
            OpenError::WrongPassphrase
        );
    }

    #[test]
    fn header_bounds() {
        let key = VaultKey::generate(&pass("pw"), KdfParams::MINIMUM).unwrap();
        let bytes = seal(&sample(), &key, 1).unwrap();
        // memory 4 GiB - 1 KiB: refused from the header alone
        let mut big = bytes.clone();
        big[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse_header(&big), Err(OpenError::Corrupt(m)) if m.contains("memory")));
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(parse_header(&extended).is_err());
        for len in 0..bytes.len() {
            assert!(parse_header(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn payload_bytes_match_format_doc_example() {
        let mut v = VaultData::default();
        let n = EntryName::parse("acme/ci").unwrap();
        v.add_entry(&n, 10).unwrap();
        v.set_field(&n, "username", pass("u@x"), false, 11).unwrap();
        // history_limit 5, removed_days 30, one entry
        let mut want = vec![5, 0, 0, 0, 30, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(b"acme/ci");
        want.extend_from_slice(&[10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(b"username");
        want.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(b"u@x");
        want.push(0);
        want.extend_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0]);
        want.push(0);
        want.extend_from_slice(&[0; 8]); // history: none
        want.extend_from_slice(&[0; 8]); // removed: none
        assert_eq!(
            encode_payload(&v, PASSPHRASE_FORMAT_VERSION)
                .unwrap()
                .as_slice(),
            want.as_slice()
        );
        // "That entry after `rm` at time 20": the entry's bytes move under `removed`.
        let entry_bytes = want[16 + 15..want.len() - 8].to_vec();
        let mut removed = vec![5, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        removed.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        removed.extend_from_slice(&want[16..16 + 15]); // key "acme/ci"
        removed.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0]);
        removed.extend_from_slice(&entry_bytes);
        let mut gone = v.clone();
        gone.discard_entry(&n, 20).unwrap();
        assert_eq!(
            encode_payload(&gone, PASSPHRASE_FORMAT_VERSION)
                .unwrap()
                .as_slice(),
            removed.as_slice()
        );
        assert_eq!(
            encode_payload(&VaultData::default(), PASSPHRASE_FORMAT_VERSION)
                .unwrap()
                .as_slice(),
            &[
                5, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        // The same vault as version 2 wrote it: no removed_days, no removed map.
        let v2 = [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_payload_of(&v2, 2).unwrap(), VaultData::default());
        assert!(decode_payload_of(&v2, 3).is_err());
    }

    #[test]
    fn removed_entries_round_trip_and_are_checked() {
        let mut v = sample();
        let n = EntryName::parse("acme/ci").unwrap();
        assert!(v.discard_entry(&n, 20).unwrap());
        let plain = encode_payload(&v, PASSPHRASE_FORMAT_VERSION).unwrap();
        assert_eq!(decode_payload(&plain).unwrap(), v);
        // A removed copy under an invalid address is refused like a live one.
        let mut bad = v.clone();
        let copies = bad.removed.remove("acme/ci").unwrap();
        bad.removed.insert("acme ci".into(), copies);
        let plain = encode_payload(&bad, PASSPHRASE_FORMAT_VERSION).unwrap();
        assert!(
            matches!(decode_payload(&plain), Err(OpenError::Corrupt(m)) if m.contains("invalid address"))
        );
        // An empty list of copies is refused.
        let mut empty = v.clone();
        empty.removed.insert("acme/x".into(), Vec::new());
        let plain = encode_payload(&empty, PASSPHRASE_FORMAT_VERSION).unwrap();
        assert!(
            matches!(decode_payload(&plain), Err(OpenError::Corrupt(m)) if m.contains("copies"))
        );
    }

    #[test]
    fn generation_is_in_the_authenticated_header() {
        let key = VaultKey::generate(&pass("pw"), KdfParams::MINIMUM).unwrap();
        let bytes = seal(&sample(), &key, 41).unwrap();
        let header = parse_header(&bytes).unwrap();
        assert_eq!((header.version, header.generation), (3, 41));
        // Lowering the generation (a forged "older" or "newer" copy) breaks the commitment.
        let at = header.len - COMMITMENT_LEN - 4 - 8;
        assert_eq!(bytes[at], 41);
        let mut forged = bytes.clone();
        forged[at] = 40;
        assert!(
            matches!(open(&forged, &pass("pw")), Err(OpenError::Corrupt(m)) if m.contains("commitment"))
        );
        // A version 1 file (no generation field) still opens, as generation 0.
        let mut v1 = bytes[..at].to_vec();
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        v1.extend_from_slice(&bytes[at + 8..]);
        assert_eq!(parse_header(&v1).unwrap().generation, 0);
    }

    #[test]
    fn trailing_payload_bytes_refused() {
        let mut plain = encode_payload(&sample(), PASSPHRASE_FORMAT_VERSION)
            .unwrap()
            .to_vec();
        assert!(decode_payload(&plain).is_ok());
        plain.push(0);
        assert!(decode_payload(&plain).is_err());
    }
}
