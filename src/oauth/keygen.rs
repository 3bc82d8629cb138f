//! A new RSA key for the JWT flow, generated in memory and stored only in the vault, and the
//! self-signed X.509 certificate to upload to the connected app.
//!
//! ring cannot generate RSA keys, so the `rsa` crate does that one thing; the certificate is
//! built by rcgen and signed by ring; every later signature is ring's.

use rsa::pkcs8::EncodePrivateKey;

use crate::error::{Error, Result};
use crate::pem;
use crate::secret::SecretString;

/// Key sizes accepted.
pub const BITS: [usize; 3] = [2048, 3072, 4096];

/// A generated key (PKCS#8 PEM) and its certificate (PEM).
pub struct KeyAndCertificate {
    /// The private key, PKCS#8 PEM.
    pub private_key: SecretString,
    /// The certificate, PEM.
    pub certificate: String,
}

/// Generate a `bits`-bit RSA key and a certificate valid for `days`, named `common_name`.
pub fn generate(bits: usize, days: u32, common_name: &str) -> Result<KeyAndCertificate> {
    if !BITS.contains(&bits) {
        return Err(Error::Usage(format!(
            "--bits {bits}: use 2048, 3072 or 4096"
        )));
    }
    if !(1..=3650).contains(&days) {
        return Err(Error::Usage(format!("--days {days}: use 1 to 3650")));
    }
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(|e| Error::failed_with("RSA key generation failed", e))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| Error::failed_with("cannot encode the key", e))?;
    let pem_text = pem::encode("PRIVATE KEY", der.as_bytes());
    let private_key = SecretString::new(pem_text.to_string());
    let key_pair = rcgen::KeyPair::from_pem_and_sign_algo(&pem_text, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| Error::failed_with("cannot load the new key for signing", e))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::failed_with("certificate parameters", e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(u64::from(days) * 86_400)).into();
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| Error::failed_with("cannot sign the certificate", e))?;
    Ok(KeyAndCertificate {
        private_key,
        certificate: cert.pem(),
    })
}
