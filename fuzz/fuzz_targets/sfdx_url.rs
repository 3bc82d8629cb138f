//! SFDX auth URLs on hostile text: parse, and a parsed URL formats back to one that parses to
//! the same parts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(u) = sfvault::handoff::sfdx::parse(text)
    {
        let again = sfvault::handoff::sfdx::format(&u.client_id, u.client_secret.as_ref(), &u.refresh_token, &u.host);
        let back = sfvault::handoff::sfdx::parse(again.expose()).expect("formatted URL parses");
        assert_eq!(back.client_id, u.client_id);
        assert_eq!(back.refresh_token.expose(), u.refresh_token.expose());
        assert_eq!(back.host, u.host);
    }
});
