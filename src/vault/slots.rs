//! Who can open a vault: its key slots. The data key is random; a passphrase slot wraps it under
//! a key derived from the passphrase (Argon2id, then AES-256-GCM), and a recipient slot wraps it
//! to public keys in the age format (src/vault/recipients.rs). A vault has one or both. A save
//! copies the slots unchanged, so a process holding only the data key (the agent) can save;
//! changing who can open it (`passwd`, `recipient add`/`rm`) writes new slots.
//!
//! The bytes of the slots are in src/vault/format.rs, with the rest of the envelope.

use crate::secret::{SecretKey, SecretString};
use crate::vault::crypto::{self, KdfParams, NONCE_LEN, WRAPPED_KEY_LEN};
use crate::vault::format::{AEAD_AES256GCM, KDF_ARGON2ID, MAGIC, OpenError};
use crate::vault::recipients::{self, Identity, Recipient, UnwrapError};

/// The version number inside the key wrap's authenticated data. The passphrase slot's layout has
/// not changed since version 1, and a save copies the slot unchanged (no passphrase at hand), so
/// the wrap keeps authenticating the slot as version 1 wrote it; the whole header, version and
/// generation included, is authenticated by the key commitment and the payload's tag.
const SLOT_VERSION: u16 = 1;

/// The passphrase slot: what a passphrase change rewrites. Saves copy it unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySlot {
    /// Argon2id costs.
    pub kdf: KdfParams,
    /// Argon2id salt, 16 or 32 bytes.
    pub kdf_salt: Vec<u8>,
    /// Nonce of the key wrap.
    pub wrap_nonce: [u8; NONCE_LEN],
    /// The data key encrypted under the passphrase-derived key.
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

/// The recipient slot: the public keys that may open the vault, and the data key wrapped to
/// all of them (an age file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientSlot {
    /// The recipients, in the order they were added; names are unique.
    pub recipients: Vec<Recipient>,
    /// The age file whose plaintext is the data key.
    pub wrapped: Vec<u8>,
}

/// Every way to open one vault: a passphrase, recipients, or both (never neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySlots {
    /// The passphrase slot, unless the vault is opened by identities only.
    pub passphrase: Option<KeySlot>,
    /// The recipients, if any.
    pub recipients: Option<RecipientSlot>,
}

/// An opened vault's key material: the slots as on disk and the data key they unwrap to.
/// Holding this is what lets a process (or the agent) save without asking again.
#[derive(Debug, Clone)]
pub struct VaultKey {
    slots: KeySlots,
    data_key: SecretKey,
}

/// What unlocks a vault: a passphrase, or the private keys of an identity file.
#[derive(Debug)]
pub enum Credential {
    /// A passphrase, for the passphrase slot.
    Passphrase(SecretString),
    /// An identity, for the recipient slot.
    Identity(Identity),
}

impl KeySlot {
    /// A new slot: fresh 32-byte salt and nonce, `data_key` wrapped under `passphrase`.
    pub fn create(
        passphrase: &SecretString,
        kdf: KdfParams,
        data_key: &SecretKey,
    ) -> Result<KeySlot, String> {
        let mut kdf_salt = vec![0u8; 32];
        crypto::random_fill(&mut kdf_salt);
        let mut wrap_nonce = [0u8; NONCE_LEN];
        crypto::random_fill(&mut wrap_nonce);
        let kek = crypto::derive_kek(passphrase, &kdf, &kdf_salt)?;
        let mut slot = KeySlot {
            kdf,
            kdf_salt,
            wrap_nonce,
            wrapped_key: [0u8; WRAPPED_KEY_LEN],
        };
        let aad = slot.wrap_aad();
        slot.wrapped_key = crypto::wrap_key(&kek, &slot.wrap_nonce, data_key, &aad);
        Ok(slot)
    }

    /// The bytes authenticated by the key wrap: the magic, version 1, and the slot's bytes
    /// before the wrapped key (in versions 1 to 3, everything in the file before it).
    pub(crate) fn wrap_aad(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 2 + self.encoded_len_before_key());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&SLOT_VERSION.to_le_bytes());
        self.encode_before_key(&mut out);
        out
    }

    fn encoded_len_before_key(&self) -> usize {
        15 + self.kdf_salt.len() + NONCE_LEN
    }

    /// The slot's bytes up to (not including) the wrapped key: ids, costs, salt, nonce.
    pub(crate) fn encode_before_key(&self, out: &mut Vec<u8>) {
        out.push(KDF_ARGON2ID);
        out.push(AEAD_AES256GCM);
        out.extend_from_slice(&self.kdf.memory_kib.to_le_bytes());
        out.extend_from_slice(&self.kdf.iterations.to_le_bytes());
        out.extend_from_slice(&self.kdf.parallelism.to_le_bytes());
        // Salt length is 16 or 32, checked on parse and on create.
        out.push(self.kdf_salt.len() as u8);
        out.extend_from_slice(&self.kdf_salt);
        out.extend_from_slice(&self.wrap_nonce);
    }

    /// Unwrap the data key with `passphrase`.
    fn unwrap(&self, passphrase: &SecretString) -> Result<SecretKey, OpenError> {
        let kek = crypto::derive_kek(passphrase, &self.kdf, &self.kdf_salt)
            .map_err(OpenError::Corrupt)?;
        crypto::unwrap_key(&kek, &self.wrap_nonce, &self.wrapped_key, &self.wrap_aad())
            .ok_or(OpenError::WrongPassphrase)
    }
}

impl KeySlots {
    /// Whether these slots need format version 4 (no passphrase, or recipients).
    pub fn need_team_format(&self) -> bool {
        self.passphrase.is_none() || self.recipients.is_some()
    }

    /// The passphrase slot's Argon2id costs; the defaults for a vault without a passphrase
    /// (what a passphrase added to it would cost).
    pub fn kdf_or_default(&self) -> KdfParams {
        self.passphrase
            .as_ref()
            .map_or(KdfParams::DEFAULT, |s| s.kdf)
    }

    /// The recipients (none for a passphrase-only vault).
    pub fn recipients(&self) -> &[Recipient] {
        self.recipients.as_ref().map_or(&[], |r| &r.recipients)
    }

    /// Unwrap the data key with `credential`, giving the key that opens and saves the vault.
    /// Nothing is proven yet: opening the file checks the key commitment first.
    pub fn unlock(&self, credential: &Credential) -> Result<VaultKey, OpenError> {
        let data_key = match credential {
            Credential::Passphrase(pass) => match &self.passphrase {
                Some(slot) => slot.unwrap(pass)?,
                None => return Err(OpenError::NoPassphrase),
            },
            Credential::Identity(identity) => match &self.recipients {
                Some(slot) => recipients::unwrap(&slot.wrapped, identity).map_err(|e| match e {
                    UnwrapError::NotARecipient => OpenError::NotARecipient,
                    UnwrapError::Corrupt(why) => OpenError::Corrupt(why),
                })?,
                None => return Err(OpenError::NotARecipient),
            },
        };
        Ok(VaultKey {
            slots: self.clone(),
            data_key,
        })
    }
}

impl VaultKey {
    /// A brand-new vault key: random data key, wrapped under `passphrase` with `kdf`.
    pub fn generate(passphrase: &SecretString, kdf: KdfParams) -> Result<VaultKey, String> {
        let data_key = crypto::random_key();
        let slot = KeySlot::create(passphrase, kdf, &data_key)?;
        Ok(VaultKey {
            slots: KeySlots {
                passphrase: Some(slot),
                recipients: None,
            },
            data_key,
        })
    }

    /// A brand-new vault key opened only by `recipients` (a team vault without a passphrase).
    pub fn generate_for(recipients: Vec<Recipient>) -> Result<VaultKey, String> {
        let data_key = crypto::random_key();
        let wrapped = recipients::wrap(&data_key, &recipients)?;
        Ok(VaultKey {
            slots: KeySlots {
                passphrase: None,
                recipients: Some(RecipientSlot {
                    recipients,
                    wrapped,
                }),
            },
            data_key,
        })
    }

    /// The key of a file whose raw data key was handed over instead of a credential (the
    /// agent's start-up): the file's slots with `data_key`.
    pub(crate) fn from_parts(slots: KeySlots, data_key: SecretKey) -> VaultKey {
        VaultKey { slots, data_key }
    }

    /// The slots as stored.
    pub fn slots(&self) -> &KeySlots {
        &self.slots
    }

    /// The passphrase slot, if the vault has one.
    pub fn passphrase_slot(&self) -> Option<&KeySlot> {
        self.slots.passphrase.as_ref()
    }

    /// The raw data key, for handing to the agent over a pipe. Never write it anywhere else.
    pub fn data_key(&self) -> &SecretKey {
        &self.data_key
    }

    /// The same data key opened by `recipients` instead of the current ones (none: the
    /// recipient slot goes; the passphrase slot stays). Who already had the data key keeps
    /// it: removing someone calls for [`VaultKey::rekeyed`].
    pub fn with_recipients(&self, recipients: Vec<Recipient>) -> Result<VaultKey, String> {
        let recipient_slot = if recipients.is_empty() {
            None
        } else {
            Some(RecipientSlot {
                wrapped: recipients::wrap(&self.data_key, &recipients)?,
                recipients,
            })
        };
        let slots = KeySlots {
            passphrase: self.slots.passphrase.clone(),
            recipients: recipient_slot,
        };
        check_openable(&slots)?;
        Ok(VaultKey {
            slots,
            data_key: self.data_key.clone(),
        })
    }

    /// This key with its recipient slot's wrapped key replaced by `wrapped` (an age file made
    /// elsewhere, e.g. by the `age` tool, for tests of interoperability). Nothing checks here
    /// that `wrapped` holds this data key: opening the saved file does.
    #[doc(hidden)]
    pub fn with_wrapped_key(&self, wrapped: Vec<u8>) -> VaultKey {
        let mut slots = self.slots.clone();
        if let Some(r) = &mut slots.recipients {
            r.wrapped = wrapped;
        }
        VaultKey {
            slots,
            data_key: self.data_key.clone(),
        }
    }

    /// A new data key, wrapped for `passphrase` (a new slot with `kdf`; `None`: no passphrase)
    /// and for `recipients`. The old key opens nothing saved afterwards.
    pub fn rekeyed(
        passphrase: Option<(&SecretString, KdfParams)>,
        recipients: Vec<Recipient>,
    ) -> Result<VaultKey, String> {
        let data_key = crypto::random_key();
        let passphrase = passphrase
            .map(|(pass, kdf)| KeySlot::create(pass, kdf, &data_key))
            .transpose()?;
        let recipients = if recipients.is_empty() {
            None
        } else {
            Some(RecipientSlot {
                wrapped: recipients::wrap(&data_key, &recipients)?,
                recipients,
            })
        };
        let slots = KeySlots {
            passphrase,
            recipients,
        };
        check_openable(&slots)?;
        Ok(VaultKey { slots, data_key })
    }
}

fn check_openable(slots: &KeySlots) -> Result<(), String> {
    if slots.passphrase.is_none() && slots.recipients.is_none() {
        return Err(
            "the vault would have neither a passphrase nor a recipient, and nobody could open it"
                .into(),
        );
    }
    Ok(())
}
