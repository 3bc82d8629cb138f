//! Property tests: the vault model survives the trip to bytes and back, sealed or not, and the
//! decoders never panic on arbitrary bytes.
//!
//! Random bytes almost never get past a magic number, so the decoders are also fed valid inputs
//! (the golden vault tests/vectors/v3-golden.sfv, its plaintext, the golden agent frames in
//! tests/vectors/agent) with a few mutations each: bits flipped, truncated, extended, a length
//! or number field set, bytes spliced in or out, the tail of another valid input. Whatever comes
//! out, nothing panics, every error says what is wrong, and a vault file opens only as one of
//! the authentic files, byte for byte, with its own contents.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use sfvault::agent::protocol::{
    self, FrameError, HEADER_LEN, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, Request, Response,
};
use sfvault::secret::SecretString;
use sfvault::vault::format::{self, OpenError, VaultKey};
use sfvault::vault::model::VaultData;
use sfvault::vault::{Change, EntryName, KdfParams};

fn key() -> &'static VaultKey {
    static KEY: OnceLock<VaultKey> = OnceLock::new();
    KEY.get_or_init(|| {
        VaultKey::generate(&SecretString::new("pw".into()), KdfParams::MINIMUM).unwrap()
    })
}

fn part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,12}"
}

fn field_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}".prop_filter("not computed or special", |f| {
        !sfvault::vault::fields::is_computed(f)
            && !matches!(
                f.as_str(),
                "flow"
                    | "login_url"
                    | "callback_url"
                    | "private_key"
                    | "certificate"
                    | "token_lifetime"
                    | "consumer_key"
                    | "username"
            )
    })
}

prop_compose! {
    fn vault()(entries in prop::collection::vec(
        (part(), part(), any::<i64>(), prop::collection::vec((field_name(), "\\PC{1,40}", any::<bool>(), 0i64..4_000_000_000, 0u8..8), 0..6)),
        0..8,
    ), limit in 0u32..=10, removed_days in 0u32..=3650,
       removes in prop::collection::vec((any::<Index>(), 0i64..4_000_000_000), 0..5)) -> VaultData {
        let mut v = VaultData::default();
        v.settings.history_limit = limit;
        v.settings.removed_days = removed_days;
        for (org, app, created, fields) in entries {
            let name = EntryName::parse(&format!("{org}/{app}")).unwrap();
            if v.add_entry(&name, created).is_err() {
                continue;
            }
            for (f, value, public, at, changes) in fields {
                let secret = !public || !sfvault::vault::fields::may_be_public(&f);
                for c in 0..=changes {
                    let _ = v.set_field(&name, &f, SecretString::new(format!("{value}{c}")), secret, at + i64::from(c));
                }
            }
        }
        // Some removed (kept or not, as removed_days says), at increasing times.
        let mut times: Vec<i64> = removes.iter().map(|(_, t)| *t).collect();
        times.sort_unstable();
        for ((which, _), at) in removes.iter().zip(times) {
            if v.entries.is_empty() {
                break;
            }
            let key = v.entries.keys().nth(which.index(v.entries.len())).unwrap().clone();
            v.discard_entry(&EntryName::parse(&key).unwrap(), at).unwrap();
        }
        v
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn payload_round_trips(v in vault()) {
        let bytes = format::encode_payload(&v, format::PASSPHRASE_FORMAT_VERSION).unwrap();
        prop_assert_eq!(format::decode_payload(&bytes).unwrap(), v);
    }

    #[test]
    fn sealed_files_round_trip(v in vault()) {
        let file = format::seal(&v, key(), 1).unwrap();
        prop_assert_eq!(format::open_with_key(&file, key()).unwrap(), v);
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = format::parse_header(&bytes);
        let _ = format::decode_payload(&bytes);
        let _ = protocol::read_frame::<Request>(&bytes[..], MAX_REQUEST_LEN);
    }

    #[test]
    fn requests_round_trip(org in part(), app in part(), field in field_name(), value in "\\PC{0,64}") {
        let entry = format!("{org}/{app}");
        for req in [
            Request::Field { entry: entry.clone(), field: field.clone() },
            Request::Apply(Change::SetField {
                entry: entry.clone(),
                field: sfvault::vault::NewField { name: field.clone(), value: SecretString::new(value.clone()), secret: true },
            }),
        ] {
            let mut buf = Vec::new();
            protocol::write_frame(&mut buf, &req).unwrap();
            prop_assert_eq!(protocol::read_frame::<Request>(&buf[..], MAX_REQUEST_LEN).unwrap(), req);
        }
    }
}

/// The passphrase of the golden vaults (docs/FORMAT.md).
const GOLDEN_PASSPHRASE: &str = "correct horse battery staple";

/// A valid input to mutate, with the offset and width of its length and number fields.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    fields: Vec<(usize, usize)>,
}

/// The golden vault, unlocked once, and a second authentic file under the same key (another
/// save of other contents), to splice with.
struct Vaults {
    key: VaultKey,
    files: [(Seed, VaultData); 2],
    plaintexts: [Seed; 2],
}

fn vaults() -> &'static Vaults {
    static VAULTS: OnceLock<Vaults> = OnceLock::new();
    VAULTS.get_or_init(|| {
        let golden = include_bytes!("vectors/v3-golden.sfv").to_vec();
        let (data, key) = format::open(&golden, &SecretString::new(GOLDEN_PASSPHRASE.into()))
            .expect("the golden vault opens");
        let mut other = data.clone();
        Change::SetField {
            entry: "acme-prod/ci".into(),
            field: sfvault::vault::NewField {
                name: "consumer_secret".into(),
                value: SecretString::new("a fourth secret".into()),
                secret: true,
            },
        }
        .apply(&mut other, 1_764_400_000)
        .unwrap();
        let header = format::parse_header(&golden).unwrap();
        let generation = header.generation;
        let other_file = format::seal(&other, &key, generation + 1).unwrap();
        // version, KDF salt length, generation, payload length.
        let payload_len_at = header.len - 32 - 4;
        let fields = vec![
            (8, 2),
            (24, 1),
            (payload_len_at - 8, 8),
            (payload_len_at, 4),
        ];
        let file = |name: &str, bytes: Vec<u8>| Seed {
            name: name.into(),
            bytes,
            fields: fields.clone(),
        };
        // history limit, removed_days, number of entries, length of the first address.
        let plain = |name: &str, data: &VaultData| Seed {
            name: name.into(),
            bytes: format::encode_payload(data, format::PASSPHRASE_FORMAT_VERSION)
                .unwrap()
                .to_vec(),
            fields: vec![(0, 4), (4, 4), (8, 8), (16, 8)],
        };
        Vaults {
            plaintexts: [plain("golden", &data), plain("other", &other)],
            files: [
                (file("v3-golden.sfv", golden), data),
                (file("another save", other_file), other),
            ],
            key,
        }
    })
}

/// The golden agent frames (all but the version-only answer), requests and answers apart.
fn frames() -> &'static [Vec<Seed>; 2] {
    static FRAMES: OnceLock<[Vec<Seed>; 2]> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/agent");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".bin") && f.starts_with("re"))
            .collect();
        names.sort();
        let seed = |name: &String| Seed {
            name: name.clone(),
            bytes: fs::read(dir.join(name)).unwrap(),
            // version, body length, the variant, the word after it (a length, often).
            fields: vec![(4, 2), (6, 4), (10, 4), (14, 8)],
        };
        let (requests, responses): (Vec<&String>, Vec<&String>) =
            names.iter().partition(|n| n.starts_with("request-"));
        assert!(requests.len() >= 6 && responses.len() >= 7, "{names:?}");
        [
            requests.into_iter().map(seed).collect(),
            responses.into_iter().map(seed).collect(),
        ]
    })
}

/// One change to a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit.
    FlipBit(Index, u8),
    /// Keep only a prefix.
    Truncate(Index),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Set one of the input's length or number fields.
    SetField(Index, u64),
    /// Write a little-endian number of 1, 2, 4 or 8 bytes anywhere.
    SetNumber(Index, usize, u64),
    /// Replace up to 32 bytes with up to 32 others.
    Splice(Index, usize, Vec<u8>),
    /// Keep a prefix and take the rest from the other valid input of the same kind.
    CrossOver(Index),
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        2u64..4096,
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..48).prop_map(Mutation::Extend),
        2 => (any::<Index>(), number()).prop_map(|(f, v)| Mutation::SetField(f, v)),
        1 => (any::<Index>(), prop::sample::select(vec![1usize, 2, 4, 8]), number())
            .prop_map(|(at, width, v)| Mutation::SetNumber(at, width, v)),
        1 => (any::<Index>(), 0usize..32, prop::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(at, remove, insert)| Mutation::Splice(at, remove, insert)),
        1 => any::<Index>().prop_map(Mutation::CrossOver),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

/// Write the low `width` bytes of `value` at `at`, as far as the input reaches.
fn put_number(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    let end = bytes.len().min(at + width);
    if at < end {
        bytes[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
    }
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>, seed: &Seed, other: &[u8]) {
        let len = bytes.len();
        match self {
            Mutation::FlipBit(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            Mutation::Truncate(at) if len > 0 => bytes.truncate(at.index(len)),
            Mutation::Extend(more) => bytes.extend_from_slice(more),
            Mutation::SetField(which, value) => {
                let (at, width) = *which.get(&seed.fields);
                put_number(bytes, at, width, *value);
            }
            Mutation::SetNumber(at, width, value) if len > 0 => {
                put_number(bytes, at.index(len), *width, *value);
            }
            Mutation::Splice(at, remove, insert) => {
                let start = at.index(len + 1);
                let end = len.min(start + remove);
                bytes.splice(start..end, insert.iter().copied());
            }
            Mutation::CrossOver(at) => {
                let cut = at.index(len.min(other.len()) + 1);
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[cut..]);
            }
            _ => {}
        }
    }
}

/// `seed` (or the other one) after `mutations`.
fn mutate(seed: &Seed, other: &Seed, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.bytes.clone();
    for m in mutations {
        m.apply(&mut bytes, seed, &other.bytes);
    }
    bytes
}

/// What a vault error may say: each message names what is wrong.
const VAULT_ERROR_WORDS: &[&str] = &[
    "wrong magic",
    "truncated",
    "format version",
    "unknown KDF id",
    "unknown cipher id",
    "Argon2",
    "salt length",
    "payload",
    "key commitment",
    "256 MiB",
    // The invariants of decoded contents.
    "history limit",
    "invalid address",
    "canonical form",
    "invalid field name",
    "too long a history",
    "must be secret",
    "removed_days",
    "copies",
    "removed entries",
];

fn clear_vault_error(e: &OpenError, what: &str) -> Result<(), TestCaseError> {
    if let OpenError::Corrupt(m) = e {
        prop_assert!(
            VAULT_ERROR_WORDS.iter().any(|w| m.contains(w)),
            "{}: an unclear error: {}",
            what,
            m
        );
    }
    Ok(())
}

/// A mutated file either opens as one of the two authentic files, byte for byte, with that
/// file's contents, or fails with a clear error.
fn opens_only_as_an_authentic_file(
    bytes: &[u8],
    opened: Result<VaultData, OpenError>,
    what: &str,
) -> Result<(), TestCaseError> {
    match opened {
        Ok(data) => {
            let authentic = vaults().files.iter().find(|(seed, _)| seed.bytes == bytes);
            prop_assert!(
                authentic.is_some(),
                "{}: a mutated file opened ({} bytes)",
                what,
                bytes.len()
            );
            let (seed, contents) = authentic.unwrap();
            prop_assert!(
                data == *contents,
                "{}: {} opened to other contents",
                what,
                seed.name
            );
            Ok(())
        }
        Err(e) => clear_vault_error(&e, what),
    }
}

/// A frame error says what is wrong: the header was cut short, another version, or malformed.
fn clear_frame_error(e: &FrameError, bytes: &[u8]) -> Result<(), TestCaseError> {
    match e {
        FrameError::Io(io) => prop_assert!(
            bytes.len() < HEADER_LEN && io.kind() == std::io::ErrorKind::UnexpectedEof,
            "reading from memory failed otherwise than at a short header: {}",
            io
        ),
        FrameError::Version(v) => prop_assert_ne!(*v, protocol::PROTOCOL_VERSION),
        FrameError::Malformed(m) => prop_assert!(!m.trim().is_empty(), "an empty error"),
    }
    prop_assert!(!e.to_string().trim().is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// The golden vault and another save under its key, mutated: nothing opens but an
    /// authentic file, through the data key in a copy or in place.
    #[test]
    fn mutated_vault_files_open_only_as_authentic_ones(
        which in 0..2usize,
        changes in mutations(),
    ) {
        let v = vaults();
        let (seed, other) = (&v.files[which].0, &v.files[1 - which].0);
        let bytes = mutate(seed, other, &changes);
        let what = format!("{} after {changes:?}", seed.name);
        opens_only_as_an_authentic_file(&bytes, format::open_with_key(&bytes, &v.key), &what)?;
        let mut in_place = bytes.clone();
        let opened = format::open_in_place(&mut in_place, &v.key);
        opens_only_as_an_authentic_file(&bytes, opened, &what)?;
        let _ = format::parse_header(&bytes);
    }

    /// A file cut short or lengthened says so, whatever its header claims.
    #[test]
    fn truncated_or_extended_vault_files_say_so(
        which in 0..2usize,
        cut in any::<Index>(),
        more in prop::collection::vec(any::<u8>(), 1..48),
        extend in any::<bool>(),
    ) {
        let v = vaults();
        let file = &v.files[which].0.bytes;
        let bytes = if extend {
            [&file[..], &more[..]].concat()
        } else {
            file[..cut.index(file.len())].to_vec()
        };
        match format::open_with_key(&bytes, &v.key) {
            Err(OpenError::Corrupt(m)) => prop_assert!(
                m.contains("truncated") || (bytes.len() < 8 && m.contains("wrong magic")),
                "{} bytes of {}: {}", bytes.len(), file.len(), m
            ),
            other => prop_assert!(false, "{} bytes of {}: {:?}", bytes.len(), file.len(), other.map(|_| ())),
        }
    }

    /// The golden plaintext, mutated, then decoded (as it would be once authenticated): an
    /// error that says so, or contents that encode back to exactly those bytes (one encoding
    /// per vault, nothing ignored).
    #[test]
    fn mutated_plaintexts_decode_canonically_or_fail_clearly(
        which in 0..2usize,
        changes in mutations(),
    ) {
        let v = vaults();
        let (seed, other) = (&v.plaintexts[which], &v.plaintexts[1 - which]);
        let bytes = mutate(seed, other, &changes);
        match format::decode_payload(&bytes) {
            Ok(data) => {
                let again = format::encode_payload(&data, format::PASSPHRASE_FORMAT_VERSION).unwrap();
                prop_assert!(
                    again.as_slice() == bytes.as_slice(),
                    "{} plaintext after {:?} decoded, but encodes otherwise", seed.name, changes
                );
            }
            Err(e) => clear_vault_error(&e, &format!("{} plaintext after {changes:?}", seed.name))?,
        }
    }

    /// Golden frames, mutated: refused with a clear error, or decoded. A request decodes only
    /// to one that encodes back to exactly the frame's bytes (a request has one encoding); an
    /// answer only to one that survives another round trip unchanged (not always to the same
    /// bytes: an error kind of a newer build reads as `Failed`, and a map decodes whatever its
    /// order). The other side's decoder reads the same bytes without panicking.
    #[test]
    fn mutated_frames_decode_or_fail_clearly(
        kind in prop::sample::select(vec![REQUESTS, ANSWERS]),
        seed in any::<Index>(),
        other in any::<Index>(),
        changes in mutations(),
    ) {
        let frames = &frames()[kind];
        let seed = seed.get(frames);
        let bytes = mutate(seed, other.get(frames), &changes);
        let what = format!("{} after {changes:?}", seed.name);
        if kind == REQUESTS {
            if let Some((_, again)) = decode_mutated::<Request>(&bytes, MAX_REQUEST_LEN)? {
                // A frame is read from a stream: what follows it is not part of it.
                prop_assert!(bytes.starts_with(&again), "{} decoded, but encodes otherwise", what);
            }
            let _ = protocol::read_frame::<Response>(&bytes[..], MAX_RESPONSE_LEN);
        } else {
            if let Some((answer, again)) = decode_mutated::<Response>(&bytes, MAX_RESPONSE_LEN)? {
                let back: Response = protocol::read_frame(&again[..], MAX_RESPONSE_LEN).unwrap();
                prop_assert!(back == answer, "{} changes on another round trip", what);
            }
            let _ = protocol::read_frame::<Request>(&bytes[..], MAX_REQUEST_LEN);
        }
    }
}

/// The golden requests, in [`frames`].
const REQUESTS: usize = 0;
/// The golden answers, in [`frames`].
const ANSWERS: usize = 1;

/// Read `bytes` as a frame of a `T`: `None` after a clear error, or the value and the frame it
/// encodes to.
fn decode_mutated<T: serde::Serialize + serde::de::DeserializeOwned>(
    bytes: &[u8],
    max_len: u32,
) -> Result<Option<(T, Vec<u8>)>, TestCaseError> {
    match protocol::read_frame::<T>(bytes, max_len) {
        Ok(value) => {
            let mut again = Vec::new();
            protocol::write_frame(&mut again, &value).unwrap();
            Ok(Some((value, again)))
        }
        Err(e) => {
            clear_frame_error(&e, bytes)?;
            Ok(None)
        }
    }
}

proptest! {
    // Each case derives a key at the minimum cost (tens of milliseconds): few cases.
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// The golden vault mutated, opened with its passphrase: nothing opens but the authentic
    /// file. Files whose KDF costs changed are left to the property above (their key slot no
    /// longer matches), so that no case derives a key at a cost a mutation chose.
    #[test]
    fn mutated_vault_files_never_unlock_with_the_passphrase(changes in mutations()) {
        let v = vaults();
        let (seed, other) = (&v.files[0].0, &v.files[1].0);
        let bytes = mutate(seed, other, &changes);
        let what = format!("{} after {changes:?}", seed.name);
        let same_cost = format::parse_header(&bytes)
            .is_ok_and(|h| h.slots.kdf_or_default() == v.key.slots().kdf_or_default());
        if same_cost {
            let opened = format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into()))
                .map(|(data, _)| data);
            opens_only_as_an_authentic_file(&bytes, opened, &what)?;
        }
    }
}
