//! The agent protocol decoder on hostile bytes, as both the agent (requests) and a client
//! (responses) read them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfvault::agent::protocol::{self, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, Request, Response};

fuzz_target!(|data: &[u8]| {
    let _ = protocol::read_frame::<Request>(data, MAX_REQUEST_LEN);
    let _ = protocol::read_frame::<Response>(data, MAX_RESPONSE_LEN);
    let _ = protocol::decode_body::<Request>(data);
});
