//! PEM private-key import on hostile text: the PEM decoder and, when it yields DER, ring's
//! key parser through `jwt::signing_key`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfvault::secret::SecretString;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sfvault::pem::decode_private_key(text);
        let _ = sfvault::oauth::jwt::signing_key(&SecretString::new(text.to_owned()));
    }
});
