//! `inject` templates and dotenv files on hostile text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(pieces) = sfvault::handoff::template::parse(text) {
            // Text pieces must be pieces of the input, in order.
            let mut rest = text;
            for p in pieces {
                if let sfvault::handoff::template::Piece::Text(t) = p {
                    let at = rest.find(t).expect("text piece comes from the input");
                    rest = &rest[at + t.len()..];
                }
            }
        }
        let _ = sfvault::handoff::dotenv::parse(text);
    }
});
