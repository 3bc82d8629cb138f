//! What decoding a hostile agent frame may allocate: a length declared inside the body can
//! never make the decoder reserve more than the bytes that were actually received (the agent
//! used to reserve 255 MiB for a 22-byte request, and aborted under `ulimit -v`).
//!
//! This binary counts allocations with its own global allocator: the largest single request
//! made by the current thread (per thread, so tests running in parallel do not mix).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sfvault::agent::protocol::{self, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, Request, Response};

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown must not panic.
    let _ = LARGEST.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&protocol::MAGIC);
    f.extend_from_slice(&protocol::PROTOCOL_VERSION.to_le_bytes());
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// `Request::Field` (variant 1) whose `entry` string declares `len` bytes and carries 100.
fn hostile_field_request(len: u64) -> Vec<u8> {
    let mut body = 1u32.to_le_bytes().to_vec();
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&[b'x'; 100]);
    frame(&body)
}

#[test]
fn a_declared_string_length_cannot_outgrow_the_body() {
    for declared in [101, 1024, 1 << 20, 255 << 20, (256 << 20) - 1, u64::MAX] {
        let hostile = hostile_field_request(declared);
        let (result, largest) =
            largest_allocation(|| protocol::read_frame::<Request>(&hostile[..], MAX_REQUEST_LEN));
        assert!(result.is_err(), "declared {declared}: decoded {result:?}");
        assert!(
            largest <= hostile.len(),
            "a {}-byte request declaring a {declared}-byte string made a {largest}-byte \
             allocation",
            hostile.len()
        );
        // The same bytes read as a response (the client's side) are bounded alike.
        let (result, largest) =
            largest_allocation(|| protocol::read_frame::<Response>(&hostile[..], MAX_RESPONSE_LEN));
        assert!(result.is_err());
        assert!(largest <= hostile.len(), "response: {largest} bytes");
        let (result, largest) =
            largest_allocation(|| protocol::decode_body::<Request>(&hostile[10..]));
        assert!(result.is_err());
        assert!(largest <= hostile.len(), "decode_body: {largest} bytes");
    }
}

/// A header that declares a 4 MiB body and delivers a few bytes: memory follows the bytes
/// that arrive, not the declared length.
#[test]
fn a_declared_body_length_is_not_reserved_up_front() {
    let mut hostile = frame(&[]);
    hostile[6..10].copy_from_slice(&MAX_REQUEST_LEN.to_le_bytes());
    hostile.extend_from_slice(&[1, 0, 0, 0, 3]);
    let (result, largest) =
        largest_allocation(|| protocol::read_frame::<Request>(&hostile[..], MAX_REQUEST_LEN));
    assert!(result.is_err());
    assert!(
        largest <= 128 * 1024,
        "a 15-byte request declaring a 4 MiB body made a {largest}-byte allocation"
    );
}

/// Genuine requests and answers of every size still decode (the bound follows the body).
#[test]
fn real_frames_of_every_size_still_decode() {
    for len in [0usize, 1, 7, 8, 9, 100, 4096, 70_000, 1 << 20, 3 << 20] {
        let req = Request::Field {
            entry: "e".repeat(len),
            field: "f".into(),
        };
        let mut buf = Vec::new();
        protocol::write_frame(&mut buf, &req).unwrap();
        let back: Request = protocol::read_frame(&buf[..], MAX_REQUEST_LEN).unwrap();
        assert_eq!(back, req, "len {len}");
        let resp = Response::Error {
            kind: sfvault::ErrorKind::Failed,
            message: "m".repeat(len),
        };
        let mut buf = Vec::new();
        protocol::write_frame(&mut buf, &resp).unwrap();
        let back: Response = protocol::read_frame(&buf[..], MAX_RESPONSE_LEN).unwrap();
        assert_eq!(back, resp, "len {len}");
    }
}
