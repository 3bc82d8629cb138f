//! The agent's wire protocol: one request and one response per connection, each a frame
//!
//! ```text
//! magic "SFVA" (4) | protocol version u16 LE (2) | body length u32 LE (4) | body
//! ```
//!
//! The body is bincode (little-endian, fixed-width integers, size-limited) of [`Request`] or
//! [`Response`]. The frame header never changes between versions, so two builds of different
//! versions always recognise each other and say so instead of misreading bytes (rbw#209).
//!
//! Every length is bounded before anything is allocated, and by what was received, not by what
//! was declared: a body's buffer grows only as its bytes arrive, and a length declared inside
//! the body cannot reserve more than the body holds (see [`decode_body`]). Trailing bytes are
//! refused.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ErrorKind;
use crate::vault::change::{Change, ChangeOutcome};
use crate::vault::model::{Entry, Field, RemovedEntry};

/// Frame magic.
pub const MAGIC: [u8; 4] = *b"SFVA";
/// Length of the frame header: magic, version, body length.
pub const HEADER_LEN: usize = 10;
/// This build's protocol version (2: [`Request::Entry`] asks for past values or not).
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest request body (a request carries at most a few values of at most 1 MiB).
pub const MAX_REQUEST_LEN: u32 = 4 * 1024 * 1024;
/// Largest response body (a whole masked vault for `list`).
pub const MAX_RESPONSE_LEN: u32 = 256 * 1024 * 1024;

/// What a client asks. Not `Clone`: [`Request::Apply`] may carry secrets.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Agent state; does not count as activity (does not extend the idle timeout).
    Status,
    /// One field, with its value.
    Field {
        /// `ORG/APP`
        entry: String,
        /// Field name.
        field: String,
    },
    /// One entry; secret values only if `reveal`, past values only if `history`.
    Entry {
        /// `ORG/APP`
        entry: String,
        /// Include secret values.
        reveal: bool,
        /// Include past values (for `history`; other readers need only current ones).
        history: bool,
    },
    /// Every entry with secret values masked.
    List,
    /// Apply a change and save.
    Apply(Change),
    /// Forget the key and exit.
    Lock,
    /// The removed entries still kept, secret values masked (appended after protocol version
    /// 2's requests: an older agent answers it with an error, and every other request keeps its
    /// bytes).
    Removed,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(AgentStatus),
    /// Answer to [`Request::Field`].
    Field(Field),
    /// Answer to [`Request::Entry`].
    Entry(Entry),
    /// Answer to [`Request::List`].
    Entries(BTreeMap<String, Entry>),
    /// Answer to [`Request::Apply`].
    Applied(ChangeOutcome),
    /// Answer to [`Request::Lock`].
    Locked,
    /// The request failed: its kind and its text.
    Error {
        /// The kind of error, as a wire number ([`wire_kind`]).
        #[serde(with = "wire_kind")]
        kind: ErrorKind,
        /// What went wrong (never a secret).
        message: String,
    },
    /// Answer to [`Request::Removed`] (appended, as that request is).
    Removed {
        /// How many days a removed entry is kept.
        removed_days: u32,
        /// The removed copies by address, oldest first, secret values masked.
        removed: BTreeMap<String, Vec<RemovedEntry>>,
    },
}

/// The agent's state as reported by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The vault the agent holds open.
    pub vault: String,
    /// The agent's process id.
    pub pid: u32,
    /// Idle timeout in seconds (0 = none).
    pub idle_timeout_secs: u64,
    /// Seconds until the agent locks, if it will (the sooner of idle and lifetime limits).
    pub locks_in_secs: Option<u64>,
    /// The vault's history limit setting.
    pub history_limit: u32,
}

/// An [`ErrorKind`] on the wire: an `i32` whose values are fixed by this table (and pinned by
/// the golden frames in tests/vectors/agent), never by the order of the enum. Protocol version 1
/// used the same numbers, so mixed builds understand each other's errors. A number this build
/// does not know reads as [`ErrorKind::Failed`]: the message still says what happened.
pub mod wire_kind {
    use super::ErrorKind;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Every kind that crosses the socket and its number.
    pub const TABLE: [(ErrorKind, i32); 10] = [
        (ErrorKind::Failed, 1),
        (ErrorKind::Usage, 2),
        (ErrorKind::NotFound, 3),
        (ErrorKind::WrongPassphrase, 4),
        (ErrorKind::Locked, 5),
        (ErrorKind::Corrupt, 6),
        (ErrorKind::Refused, 7),
        (ErrorKind::Network, 8),
        (ErrorKind::Busy, 9),
        (ErrorKind::Unsafe, 10),
    ];

    /// The wire number of `kind` ([`ErrorKind::AgentGone`], which an agent never reports,
    /// travels as [`ErrorKind::Failed`]).
    pub fn number(kind: ErrorKind) -> i32 {
        TABLE
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(1, |(_, n)| *n)
    }

    /// The kind of a wire number.
    pub fn kind(number: i32) -> ErrorKind {
        TABLE
            .iter()
            .find(|(_, n)| *n == number)
            .map_or(ErrorKind::Failed, |(k, _)| *k)
    }

    /// serde: write the number.
    pub fn serialize<S: Serializer>(kind: &ErrorKind, s: S) -> Result<S::Ok, S::Error> {
        number(*kind).serialize(s)
    }

    /// serde: read a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorKind, D::Error> {
        i32::deserialize(d).map(kind)
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer speaks another protocol version.
    Version(u16),
    /// Not a frame, too long, or a body that does not decode.
    Malformed(String),
    /// The connection failed or closed early.
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Version(v) => write!(
                f,
                "protocol version {v} (this sfvault speaks {PROTOCOL_VERSION})"
            ),
            FrameError::Malformed(m) => write!(f, "malformed message: {m}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The encoding; decoding adds a limit that follows the body's length ([`decode_body`]).
fn config() -> bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Fixint>
{
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// The first buffer for a body; it doubles as bytes arrive, up to the declared length.
const FIRST_BODY_BUFFER: usize = 64 * 1024;

/// Write one frame holding `message`. The frame is encoded into one zeroizing buffer of
/// exactly its size (measured first), so no reallocation leaves copies of secrets behind;
/// secret values are serialized (inside [`crate::secret::exposing`]) only here.
pub fn write_frame<T: Serialize>(mut out: impl Write, message: &T) -> std::io::Result<()> {
    let encode_error =
        |e: bincode::error::EncodeError| std::io::Error::other(format!("encode: {e}"));
    let frame = crate::secret::exposing(|| {
        let mut counter = bincode::enc::write::SizeWriter::default();
        bincode::serde::encode_into_writer(message, &mut counter, config())
            .map_err(encode_error)?;
        let len = u32::try_from(counter.bytes_written)
            .map_err(|_| std::io::Error::other("message too large"))?;
        let mut frame = Zeroizing::new(vec![0u8; HEADER_LEN + counter.bytes_written]);
        frame[..4].copy_from_slice(&MAGIC);
        frame[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        frame[6..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
        bincode::serde::encode_into_slice(message, &mut frame[HEADER_LEN..], config())
            .map_err(encode_error)?;
        Ok::<_, std::io::Error>(frame)
    })?;
    out.write_all(&frame)?;
    out.flush()
}

/// Write a frame with an empty body: what an agent answers to a client of another version.
pub fn write_version_only(mut out: impl Write) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(HEADER_LEN);
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    out.write_all(&frame)?;
    out.flush()
}

/// Read one frame of at most `max_len` body bytes and decode it.
pub fn read_frame<T: serde::de::DeserializeOwned>(
    mut input: impl Read,
    max_len: u32,
) -> Result<T, FrameError> {
    let mut head = [0u8; HEADER_LEN];
    input.read_exact(&mut head).map_err(FrameError::Io)?;
    decode_frame(&head, input, max_len)
}

/// Decode a frame whose header has been read; the body (at most `max_len` bytes) is read from
/// `input`. Memory follows the bytes that arrive: a header declaring a large body that never
/// comes costs little.
pub fn decode_frame<T: serde::de::DeserializeOwned>(
    head: &[u8; HEADER_LEN],
    input: impl Read,
    max_len: u32,
) -> Result<T, FrameError> {
    if head[..4] != MAGIC {
        return Err(FrameError::Malformed("bad magic".into()));
    }
    let version = u16::from_le_bytes([head[4], head[5]]);
    if version != PROTOCOL_VERSION {
        return Err(FrameError::Version(version));
    }
    let len = u32::from_le_bytes([head[6], head[7], head[8], head[9]]);
    if len > max_len {
        return Err(FrameError::Malformed(format!(
            "body of {len} bytes exceeds {max_len}"
        )));
    }
    let body = read_body(input, len as usize)?;
    decode_body(&body)
}

/// Read exactly `len` bytes. The buffer starts small and doubles as bytes arrive, each copy
/// zeroizing the one it replaces (a body may hold secrets).
fn read_body(mut input: impl Read, len: usize) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut body = Zeroizing::new(Vec::new());
    while body.len() < len {
        let target = len.min(FIRST_BODY_BUFFER.max(body.len().saturating_mul(2)));
        let mut grown = Zeroizing::new(Vec::with_capacity(target));
        grown.extend_from_slice(&body);
        let start = grown.len();
        grown.resize(target, 0);
        match input.read_exact(&mut grown[start..]) {
            Ok(()) => body = grown,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(FrameError::Malformed("truncated body".into()));
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(body)
}

/// Decode a body, refusing trailing bytes.
///
/// bincode reserves memory for a string or byte array as soon as it has read its declared
/// length, before its bytes, if the length fits within the decoder's limit, which counts the
/// bytes decoded so far plus every such reservation. That limit is made the body's own
/// length: whatever a body declares, nothing is reserved beyond the bytes it still holds.
/// (bincode limits are compile-time constants, so the decoder is given the largest one and
/// charged, before anything is decoded, with the part of it that this body does not use. A
/// declared number of items is not a reservation of that many: serde preallocates at most
/// 1 MiB for a sequence, whatever it declares.)
pub fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    const LIMIT: usize = MAX_RESPONSE_LEN as usize;
    let Some(unused) = LIMIT.checked_sub(body.len()) else {
        return Err(FrameError::Malformed(format!(
            "body of {} bytes exceeds {LIMIT}",
            body.len()
        )));
    };
    let config = config().with_limit::<LIMIT>();
    let (WithinBody(value), used) = bincode::decode_from_slice_with_context(body, config, unused)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(FrameError::Malformed("trailing bytes".into()));
    }
    Ok(value)
}

/// A `T` decoded through serde after charging the decoder's limit with the number of bytes in
/// its context: what is left of the limit is the body's length (see [`decode_body`]).
struct WithinBody<T>(T);

impl<T: serde::de::DeserializeOwned> bincode::Decode<usize> for WithinBody<T> {
    fn decode<D: bincode::de::Decoder<Context = usize>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let unused = *decoder.context();
        decoder.claim_bytes_read(unused)?;
        let bincode::serde::Compat(value) = bincode::Decode::decode(decoder)?;
        Ok(WithinBody(value))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn error_kinds_keep_their_wire_numbers() {
        use crate::ErrorKind::*;
        let numbers: Vec<(crate::ErrorKind, i32)> = wire_kind::TABLE.to_vec();
        assert_eq!(
            numbers,
            [
                (Failed, 1),
                (Usage, 2),
                (NotFound, 3),
                (WrongPassphrase, 4),
                (Locked, 5),
                (Corrupt, 6),
                (Refused, 7),
                (Network, 8),
                (Busy, 9),
                (Unsafe, 10)
            ],
            "wire numbers are protocol: never renumber"
        );
        assert_eq!(wire_kind::kind(99), Failed);
        assert_eq!(wire_kind::number(AgentGone), 1);
    }
    use super::*;

    #[test]
    fn roundtrip_and_bounds() {
        let req = Request::Field {
            entry: "acme/ci".into(),
            field: "consumer_key".into(),
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: Request = read_frame(&buf[..], MAX_REQUEST_LEN).unwrap();
        assert_eq!(back, req);
        // Too long for the limit.
        assert!(matches!(
            read_frame::<Request>(&buf[..], 3),
            Err(FrameError::Malformed(_))
        ));
        // Truncated at every length: an error, never a panic.
        for n in 0..buf.len() {
            assert!(read_frame::<Request>(&buf[..n], MAX_REQUEST_LEN).is_err());
        }
        // Another version is recognised as such.
        let mut other = buf.clone();
        other[4] = 9;
        assert!(matches!(
            read_frame::<Request>(&other[..], MAX_REQUEST_LEN),
            Err(FrameError::Version(9))
        ));
        // Trailing bytes in the body are refused.
        let mut trailing = buf.clone();
        trailing.push(0);
        let len = u32::from_le_bytes(trailing[6..10].try_into().unwrap()) + 1;
        trailing[6..10].copy_from_slice(&len.to_le_bytes());
        assert!(read_frame::<Request>(&trailing[..], MAX_REQUEST_LEN).is_err());
    }

    /// A length declared inside the body is refused against the body's own size, before
    /// anything is reserved for it (bincode says "limit exceeded"), not after reserving it
    /// and finding the bytes missing ("unexpected end").
    #[test]
    fn a_declared_length_is_refused_before_it_is_reserved() {
        for declared in [64u64, 4096, 255 << 20, u64::MAX] {
            // Request::Field (variant 1) whose `entry` declares `declared` bytes.
            let mut body = 1u32.to_le_bytes().to_vec();
            body.extend_from_slice(&declared.to_le_bytes());
            for result in [
                decode_body::<Request>(&body).map(|_| ()),
                decode_body::<Response>(&body).map(|_| ()),
            ] {
                match result {
                    Err(FrameError::Malformed(m)) => {
                        assert!(m.contains("LimitExceeded"), "declared {declared}: {m}")
                    }
                    other => panic!("declared {declared}: {other:?}"),
                }
            }
        }
        // A body above the largest limit is refused outright.
        let huge = vec![0u8; MAX_RESPONSE_LEN as usize + 1];
        assert!(matches!(
            decode_body::<Request>(&huge),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn every_byte_flip_is_handled() {
        let req = Request::Apply(Change::RenameEntry {
            from: "a/b".into(),
            to: "c/d".into(),
        });
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                let _ = read_frame::<Request>(&b[..], MAX_REQUEST_LEN);
            }
        }
    }
}
