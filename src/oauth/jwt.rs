//! The JWT bearer assertion: `{"alg":"RS256"}` header, `iss`/`sub`/`aud`/`exp` claims,
//! RSASSA-PKCS1-v1_5 with SHA-256 signed by ring, base64url without padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use crate::error::{Error, Result};
use crate::pem::{self, PrivateKeyDer};
use crate::secret::SecretString;

/// How far ahead the assertion expires: Salesforce accepts at most 3 minutes.
pub const LIFETIME_SECS: i64 = 180;

/// A signing key from a PEM private key (PKCS#1 or PKCS#8).
pub fn signing_key(pem_text: &SecretString) -> Result<RsaKeyPair> {
    let key = match pem::decode_private_key(pem_text.expose())? {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(&der),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(&der),
    };
    key.map_err(|e| {
        Error::Usage(format!(
            "the private key is not an RSA key ring accepts ({e}); Salesforce needs RSA, 2048 bits or more"
        ))
    })
}

/// The signed assertion for `iss` (consumer key), `sub` (username), `aud` (login host), expiring
/// at `now + 180 s`.
pub fn assertion(
    key: &RsaKeyPair,
    iss: &str,
    sub: &str,
    aud: &str,
    now: i64,
) -> Result<SecretString> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let claims = serde_json::json!({
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "exp": now + LIFETIME_SECS,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::failed("RSA signing failed"))?;
    Ok(SecretString::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(&signature)
    )))
}
