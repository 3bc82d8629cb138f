//! The cryptographic primitives of the vault format, and the only file that calls them:
//! Argon2id (passphrase → key-encryption key), AES-256-GCM (key wrap and payload),
//! HKDF-SHA256 (per-save payload key) and HMAC-SHA256 (key commitment).
//!
//! docs/FORMAT.md says how they are combined; docs/SECURITY.md says why.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::secret::{SecretKey, SecretString};

/// Length of the AES-GCM authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of a wrapped data key: 32 bytes of ciphertext and the tag.
pub const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;
/// Length of the key-commitment tag.
pub const COMMITMENT_LEN: usize = 32;

/// HKDF `info` for the per-save payload encryption key.
const INFO_PAYLOAD: &[u8] = b"sfvault/v1/payload-key";
/// HKDF `info` for the per-save key-commitment key.
const INFO_COMMITMENT: &[u8] = b"sfvault/v1/commitment-key";
/// HKDF label of the key that authenticates this machine's rollback marks (not in the file).
const INFO_ROLLBACK_MARK: &[u8] = b"sfvault/v2/rollback-mark-key";
/// HKDF label of a data key's link value (a team vault's `key_links`, docs/FORMAT.md).
const INFO_KEY_LINK: &[u8] = b"sfvault/v4/key-link";

/// Argon2id cost parameters, always within [`KdfParams::check`]'s bounds once constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes (and threads).
    pub parallelism: u32,
}

impl KdfParams {
    /// Smallest memory accepted: 19 MiB, the OWASP minimum for Argon2id.
    pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
    /// Largest memory accepted: 1 GiB.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Fewest iterations accepted.
    pub const MIN_ITERATIONS: u32 = 2;
    /// Most iterations accepted.
    pub const MAX_ITERATIONS: u32 = 10;
    /// Fewest lanes accepted.
    pub const MIN_PARALLELISM: u32 = 1;
    /// Most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Defaults for new vaults: 64 MiB, 3 passes, 4 lanes.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// The weakest accepted parameters (19 MiB, 2 passes, 1 lane), for tests and slow machines.
    pub const MINIMUM: KdfParams = KdfParams {
        memory_kib: Self::MIN_MEMORY_KIB,
        iterations: Self::MIN_ITERATIONS,
        parallelism: Self::MIN_PARALLELISM,
    };

    /// Whether deriving a key with these parameters costs more than with `other`: more memory,
    /// or more memory passes in all (lanes only spread the same work over threads).
    pub fn costlier_than(&self, other: &KdfParams) -> bool {
        let work = |k: &KdfParams| u64::from(k.memory_kib) * u64::from(k.iterations);
        self.memory_kib > other.memory_kib || work(self) > work(other)
    }

    /// `64 MiB, 3 passes, 4 lanes`.
    pub fn describe(&self) -> String {
        format!(
            "{} MiB, {} passes, {} lanes",
            self.memory_kib / 1024,
            self.iterations,
            self.parallelism
        )
    }

    /// Describe the first bound these parameters break, if any. Bounds are refused, never clamped.
    pub fn check(&self) -> Result<(), String> {
        let in_range = |v: u32, lo: u32, hi: u32| (lo..=hi).contains(&v);
        if !in_range(self.memory_kib, Self::MIN_MEMORY_KIB, Self::MAX_MEMORY_KIB) {
            return Err(format!(
                "Argon2 memory {} KiB is outside {}..={} KiB",
                self.memory_kib,
                Self::MIN_MEMORY_KIB,
                Self::MAX_MEMORY_KIB
            ));
        }
        if !in_range(self.iterations, Self::MIN_ITERATIONS, Self::MAX_ITERATIONS) {
            return Err(format!(
                "Argon2 iterations {} outside {}..={}",
                self.iterations,
                Self::MIN_ITERATIONS,
                Self::MAX_ITERATIONS
            ));
        }
        if !in_range(
            self.parallelism,
            Self::MIN_PARALLELISM,
            Self::MAX_PARALLELISM,
        ) {
            return Err(format!(
                "Argon2 parallelism {} outside {}..={}",
                self.parallelism,
                Self::MIN_PARALLELISM,
                Self::MAX_PARALLELISM
            ));
        }
        Ok(())
    }
}

/// Derive the key-encryption key from a passphrase with Argon2id (RFC 9106, version 0x13).
///
/// Fails (with a description) on parameters outside [`KdfParams::check`]'s bounds, a salt that
/// is not 16 or 32 bytes, or when the memory cannot be allocated.
pub fn derive_kek(
    passphrase: &SecretString,
    params: &KdfParams,
    salt: &[u8],
) -> Result<SecretKey, String> {
    params.check()?;
    if salt.len() != 16 && salt.len() != 32 {
        return Err(format!("KDF salt of {} bytes", salt.len()));
    }
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| format!("Argon2 parameters refused: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut kek = SecretKey::zeroed();
    argon
        .hash_password_into(passphrase.expose().as_bytes(), salt, kek.expose_mut())
        .map_err(|e| format!("Argon2 failed: {e}"))?;
    Ok(kek)
}

/// Fill `buf` from the OS random source.
pub fn random_fill(buf: &mut [u8]) {
    SystemRandom::new()
        .fill(buf)
        .expect("the OS random source failed");
}

/// A fresh random 256-bit data key.
pub fn random_key() -> SecretKey {
    let mut key = SecretKey::zeroed();
    random_fill(key.expose_mut());
    key
}

fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte key"))
}

/// Encrypt the data key under the key-encryption key, authenticating `aad`.
pub fn wrap_key(
    kek: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    data_key: &SecretKey,
    aad: &[u8],
) -> [u8; WRAPPED_KEY_LEN] {
    let mut buf = Zeroizing::new(Vec::with_capacity(WRAPPED_KEY_LEN));
    buf.extend_from_slice(data_key.expose());
    aes_key(kek.expose())
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut *buf,
        )
        .expect("AES-GCM seal of 32 bytes cannot fail");
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out.copy_from_slice(&buf);
    out
}

/// Decrypt a wrapped data key; `None` when the KEK is wrong or anything authenticated changed.
pub fn unwrap_key(
    kek: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    wrapped: &[u8; WRAPPED_KEY_LEN],
    aad: &[u8],
) -> Option<SecretKey> {
    let mut buf = Zeroizing::new(*wrapped);
    let plain = aes_key(kek.expose())
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut buf[..],
        )
        .ok()?;
    let mut key = SecretKey::zeroed();
    key.expose_mut().copy_from_slice(plain);
    Some(key)
}

/// Decrypt an AES-256-GCM `ciphertext` followed by its 16-byte tag, with no associated data:
/// the Salesforce CLI's field encryption (read by `import --from-sf`). `None` when the key is
/// wrong or the text was altered.
pub fn open_foreign_aes_gcm(
    key: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    ciphertext_and_tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(ciphertext_and_tag.to_vec());
    let len = aes_key(key.expose())
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::empty(),
            &mut buf[..],
        )
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// The key of this machine's rollback marks for one vault (see `vault::rollback`): derived from
/// the data key alone, so only a holder of the key can write a mark a reader accepts.
pub struct MarkKey(hmac::Key);

impl MarkKey {
    /// HKDF-SHA256(no salt, ikm = data key) expanded under the rollback-mark label.
    pub fn derive(data_key: &SecretKey) -> MarkKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(data_key.expose());
        let mut key = SecretKey::zeroed();
        prk.expand(&[INFO_ROLLBACK_MARK], Len32)
            .and_then(|okm| okm.fill(key.expose_mut()))
            .expect("HKDF output of 32 bytes");
        MarkKey(hmac::Key::new(hmac::HMAC_SHA256, key.expose()))
    }

    /// HMAC-SHA256 of `bytes` under this key.
    pub fn tag(&self, bytes: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, bytes).as_ref());
        out
    }

    /// Constant-time check of a tag made by [`MarkKey::tag`].
    pub fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, bytes, tag).is_ok()
    }
}

/// A data key's link value: HKDF-SHA256(no salt, ikm = data key) under the key-link label.
/// Only a holder of the key can compute it; a team vault that moves to a new data key keeps
/// the old key's link, so a member's machine that knew the old key can accept the new one.
pub fn key_link(data_key: &SecretKey) -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(data_key.expose());
    let mut out = [0u8; 32];
    prk.expand(&[INFO_KEY_LINK], Len32)
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF output of 32 bytes");
    out
}

/// A data key's public fingerprint: SHA-256 of its link value. A machine may keep it in the
/// clear; it reveals nothing of the key or the link.
pub fn key_id(link: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, link).as_ref());
    out
}

/// The two keys of one save, both derived from the data key and that save's random salt.
pub struct PayloadKeys {
    encryption: SecretKey,
    commitment: hmac::Key,
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl PayloadKeys {
    /// HKDF-SHA256(salt = `payload_salt`, ikm = data key) expanded under two labels.
    pub fn derive(data_key: &SecretKey, payload_salt: &[u8]) -> PayloadKeys {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, payload_salt).extract(data_key.expose());
        let mut encryption = SecretKey::zeroed();
        let mut commitment = SecretKey::zeroed();
        for (info, out) in [
            (INFO_PAYLOAD, &mut encryption),
            (INFO_COMMITMENT, &mut commitment),
        ] {
            prk.expand(&[info], Len32)
                .and_then(|okm| okm.fill(out.expose_mut()))
                .expect("HKDF output of 32 bytes");
        }
        PayloadKeys {
            encryption,
            commitment: hmac::Key::new(hmac::HMAC_SHA256, commitment.expose()),
        }
    }

    /// HMAC-SHA256 of `header` under the commitment key.
    pub fn commitment(&self, header: &[u8]) -> [u8; COMMITMENT_LEN] {
        let tag = hmac::sign(&self.commitment, header);
        let mut out = [0u8; COMMITMENT_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Constant-time check of a stored commitment tag.
    pub fn verify_commitment(&self, header: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.commitment, header, tag).is_ok()
    }

    /// Encrypt `buf` in place and append the tag. The nonce is all zeros: each payload key
    /// encrypts exactly one message, because every save draws a fresh salt.
    pub fn seal(&self, aad: &[u8], buf: &mut Vec<u8>) {
        aes_key(self.encryption.expose())
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
                Aad::from(aad),
                buf,
            )
            .expect("payload size is bounded far below the AES-GCM limit");
    }

    /// Decrypt `buf` in place; returns the plaintext part, or `None` if authentication fails.
    pub fn open<'a>(&self, aad: &[u8], buf: &'a mut [u8]) -> Option<&'a mut [u8]> {
        aes_key(self.encryption.expose())
            .open_in_place(
                Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
                Aad::from(aad),
                buf,
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_is_deterministic_per_salt() {
        // Same inputs give the same key; a different salt gives a different one.
        let pass = SecretString::new("pw".into());
        let a = derive_kek(&pass, &KdfParams::MINIMUM, &[1u8; 16]).unwrap();
        let b = derive_kek(&pass, &KdfParams::MINIMUM, &[1u8; 16]).unwrap();
        let c = derive_kek(&pass, &KdfParams::MINIMUM, &[2u8; 16]).unwrap();
        assert!(derive_kek(&pass, &KdfParams::MINIMUM, &[2u8; 17]).is_err());
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
    }

    #[test]
    fn wrap_roundtrip_and_aad_binding() {
        let kek = random_key();
        let dk = random_key();
        let nonce = [9u8; NONCE_LEN];
        let wrapped = wrap_key(&kek, &nonce, &dk, b"header");
        let back = unwrap_key(&kek, &nonce, &wrapped, b"header").unwrap();
        assert_eq!(back.expose(), dk.expose());
        assert!(unwrap_key(&kek, &nonce, &wrapped, b"headeR").is_none());
        assert!(unwrap_key(&random_key(), &nonce, &wrapped, b"header").is_none());
    }

    #[test]
    fn payload_roundtrip_and_commitment() {
        let dk = random_key();
        let keys = PayloadKeys::derive(&dk, &[3u8; 32]);
        let tag = keys.commitment(b"hdr");
        assert!(keys.verify_commitment(b"hdr", &tag));
        assert!(!keys.verify_commitment(b"hdx", &tag));
        let mut buf = b"hello".to_vec();
        keys.seal(b"aad", &mut buf);
        assert_eq!(buf.len(), 5 + TAG_LEN);
        assert_eq!(keys.open(b"aad", &mut buf).unwrap(), b"hello");
        let other = PayloadKeys::derive(&dk, &[4u8; 32]);
        let mut buf2 = b"hello".to_vec();
        keys.seal(b"aad", &mut buf2);
        assert!(other.open(b"aad", &mut buf2).is_none());
    }

    #[test]
    fn bounds_are_refused_not_clamped() {
        assert!(KdfParams::DEFAULT.check().is_ok());
        assert!(KdfParams::MINIMUM.check().is_ok());
        let mut p = KdfParams::DEFAULT;
        p.memory_kib = 4 * 1024 * 1024;
        assert!(p.check().is_err());
        p = KdfParams::DEFAULT;
        p.iterations = 11;
        assert!(p.check().is_err());
        p = KdfParams::DEFAULT;
        p.parallelism = 0;
        assert!(p.check().is_err());
    }
}
