//! The vault file parser on hostile bytes: the header parser and the payload decoder (which sees
//! plaintext only after authentication, but must still never panic or over-allocate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfvault::vault::format;

fuzz_target!(|data: &[u8]| {
    let _ = format::parse_header(data);
    let _ = format::decode_payload(data);
});
