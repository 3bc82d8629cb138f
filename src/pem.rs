//! PEM private keys (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) to DER, bounded and
//! strict: one block, matching labels, no encryption headers, base64 that decodes.
//!
//! A parser of outside bytes with two users: the vault, which refuses a `private_key` that would
//! not decode when it is stored, and the JWT flow, which signs with the decoded key.

use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Largest PEM text accepted (a 4096-bit key is about 3.2 KiB).
pub const MAX_PEM_LEN: usize = 64 * 1024;

/// A private key's DER bytes and which structure they hold.
pub enum PrivateKeyDer {
    /// PKCS#1 `RSAPrivateKey`.
    Pkcs1(Zeroizing<Vec<u8>>),
    /// PKCS#8 `PrivateKeyInfo`.
    Pkcs8(Zeroizing<Vec<u8>>),
}

/// Decode the first PEM private-key block of `text`.
pub fn decode_private_key(text: &str) -> Result<PrivateKeyDer> {
    if text.len() > MAX_PEM_LEN {
        return Err(bad("longer than 64 KiB"));
    }
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    let begin = lines.next().ok_or_else(|| bad("no -----BEGIN line"))?;
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| bad("malformed BEGIN line"))?;
    let mut body = Zeroizing::new(String::with_capacity(text.len()));
    let mut ended = false;
    for line in lines {
        if let Some(end) = line.strip_prefix("-----END ") {
            if end.strip_suffix("-----") != Some(label) {
                return Err(bad("END label does not match BEGIN"));
            }
            ended = true;
            break;
        }
        if line.contains(':') {
            return Err(bad(
                "encrypted PEM keys are not supported; decrypt it into the vault through a pipe, never into a file: openssl pkey -in key.pem | sfvault set ORG/APP private_key -",
            ));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(bad("no -----END line"));
    }
    let der = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| bad("its base64 body does not decode"))?,
    );
    match label {
        "RSA PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs1(der)),
        "PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs8(der)),
        "ENCRYPTED PRIVATE KEY" => Err(bad(
            "encrypted PKCS#8 keys are not supported; decrypt it into the vault through a pipe, never into a file: openssl pkey -in key.pem | sfvault set ORG/APP private_key -",
        )),
        _ => Err(bad("expected RSA PRIVATE KEY or PRIVATE KEY")),
    }
}

/// Encode DER as a PEM block with 64-character lines.
pub fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----"));
    out
}

fn bad(why: &str) -> Error {
    Error::Usage(format!("the private key is not a usable PEM key: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let pem = encode("PRIVATE KEY", &[1, 2, 3, 4, 5]);
        assert!(
            matches!(decode_private_key(&pem), Ok(PrivateKeyDer::Pkcs8(d)) if d.as_slice() == [1, 2, 3, 4, 5])
        );
        let pkcs1 = encode("RSA PRIVATE KEY", &[9; 100]);
        assert!(matches!(
            decode_private_key(&pkcs1),
            Ok(PrivateKeyDer::Pkcs1(_))
        ));
        for bad in [
            "",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        ] {
            assert!(decode_private_key(bad).is_err(), "{bad:?}");
        }
    }
}
