//! Golden frames of the agent protocol: one committed file per request and per answer in
//! tests/vectors/agent/ (described, two of them byte by byte, in the README.md there).
//!
//! The agent and its clients may be different builds, so the bytes on the wire must not change
//! by accident: not when the code is refactored, and not when bincode (unmaintained, pinned) is
//! replaced. Each frame below is built from fixed values through the public API, and
//!
//! - encoding it gives exactly the committed bytes,
//! - decoding the committed bytes gives back the same value,
//! - the hex dumps in the README are the committed bytes.
//!
//! A replacement encoder is proven by these same files, unchanged. Only a deliberate change of
//! the protocol (a new `PROTOCOL_VERSION`) rewrites them:
//! `SFVAULT_WRITE_GOLDEN=1 cargo test --test protocol_golden` writes the `.bin` files from the
//! values below, then checks them as usual; the README's hex dumps are then updated by hand.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sfvault::ErrorKind;
use sfvault::agent::protocol::{
    self, AgentStatus, FrameError, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, Request, Response,
};
use sfvault::secret::SecretString;
use sfvault::vault::field_map::FieldMap;
use sfvault::vault::model::RemovedEntry;
use sfvault::vault::{
    Change, ChangeOutcome, Entry, Field, NewField, PastValue, SetOutcome, model::Timestamp,
};

/// The environment variable that makes this test write the golden files instead of only
/// reading them.
const WRITE_GOLDEN: &str = "SFVAULT_WRITE_GOLDEN";

/// A time in the vectors (2025-11-28, like the golden vaults).
const T0: Timestamp = 1_764_370_000;

/// The error answer of the vectors.
///
/// This is the only place that builds `Response::Error`: when its fields change type but not
/// their bytes (as when the exit-code class `code: i32` became `kind: ErrorKind`, still written
/// as the same i32), this function is all that changes, and the frames prove the bytes stayed.
fn error_response() -> Response {
    Response::Error {
        kind: ErrorKind::NotFound,
        message: "no entry acme/ci".into(),
    }
}

/// One frame on the wire.
enum Frame {
    /// What a client sends.
    Request(Request),
    /// What the agent answers.
    Response(Response),
    /// The header alone, with an empty body: the agent's answer to a client of another version.
    VersionOnly,
}

impl Frame {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Frame::Request(r) => protocol::write_frame(&mut out, r),
            Frame::Response(r) => protocol::write_frame(&mut out, r),
            Frame::VersionOnly => protocol::write_version_only(&mut out),
        }
        .expect("encode a golden frame");
        out
    }

    /// Decode `bytes` as this frame's kind and require this frame's value.
    fn assert_decodes(&self, name: &str, bytes: &[u8]) {
        match self {
            Frame::Request(want) => {
                let got: Request = protocol::read_frame(bytes, MAX_REQUEST_LEN)
                    .unwrap_or_else(|e| panic!("{name}: does not decode: {e}"));
                assert_eq!(&got, want, "{name}: decodes to another request");
            }
            Frame::Response(want) => {
                let got: Response = protocol::read_frame(bytes, MAX_RESPONSE_LEN)
                    .unwrap_or_else(|e| panic!("{name}: does not decode: {e}"));
                assert_eq!(&got, want, "{name}: decodes to another answer");
            }
            Frame::VersionOnly => {
                // A header with this build's version and no body: not a message of either kind.
                assert_eq!(
                    u16::from_le_bytes([bytes[4], bytes[5]]),
                    protocol::PROTOCOL_VERSION,
                    "{name}"
                );
                assert!(
                    matches!(
                        protocol::read_frame::<Response>(bytes, MAX_RESPONSE_LEN),
                        Err(FrameError::Malformed(_))
                    ),
                    "{name}: an empty body must not decode as an answer"
                );
            }
        }
    }
}

fn s(text: &str) -> SecretString {
    SecretString::new(text.into())
}

fn new_field(name: &str, value: &str, secret: bool) -> NewField {
    NewField {
        name: name.into(),
        value: s(value),
        secret,
    }
}

/// A secret field with one past value and a use.
fn secret_field() -> Field {
    Field {
        value: s("s3cr3t"),
        secret: true,
        set_at: T0 + 20,
        changed_at: T0 + 20,
        used_at: Some(T0 + 30),
        history: vec![PastValue {
            value: s("old"),
            changed_at: T0,
            replaced_at: T0 + 20,
        }],
    }
}

/// An entry with a public field (never used) and a secret one.
fn entry() -> Entry {
    let mut fields = FieldMap::default();
    fields.insert(
        "consumer_key".into(),
        Field {
            value: s("3MVG9key"),
            secret: false,
            set_at: T0,
            changed_at: T0,
            used_at: None,
            history: Vec::new(),
        },
    );
    fields.insert("consumer_secret".into(), secret_field());
    Entry {
        created_at: T0,
        fields,
    }
}

fn apply(change: Change) -> Frame {
    Frame::Request(Request::Apply(change))
}

/// Every golden frame: its file name (without `.bin`) and its value.
fn frames() -> Vec<(&'static str, Frame)> {
    let entry_name = || "acme/ci".to_owned();
    let mut entries = BTreeMap::new();
    entries.insert("acme/ci".to_owned(), entry());
    entries.insert(
        "acme/uat".to_owned(),
        Entry {
            created_at: T0 + 1,
            fields: FieldMap::default(),
        },
    );
    vec![
        ("request-status", Frame::Request(Request::Status)),
        (
            "request-field",
            Frame::Request(Request::Field {
                entry: entry_name(),
                field: "consumer_key".into(),
            }),
        ),
        (
            "request-entry",
            Frame::Request(Request::Entry {
                entry: entry_name(),
                reveal: true,
                history: false,
            }),
        ),
        ("request-list", Frame::Request(Request::List)),
        (
            "request-apply-add-entry",
            apply(Change::AddEntry {
                entry: entry_name(),
                fields: vec![
                    new_field("consumer_key", "3MVG9key", false),
                    new_field("consumer_secret", "s3cr3t", true),
                ],
            }),
        ),
        (
            "request-apply-set-field",
            apply(Change::SetField {
                entry: entry_name(),
                field: new_field("username", "ci@acme.example.com", false),
            }),
        ),
        (
            "request-apply-remove-entry",
            apply(Change::RemoveEntry {
                entry: entry_name(),
            }),
        ),
        (
            "request-apply-rename-entry",
            apply(Change::RenameEntry {
                from: entry_name(),
                to: "acme/ci2".into(),
            }),
        ),
        (
            "request-apply-set-computed",
            apply(Change::SetComputed {
                entry: entry_name(),
                computed: vec![new_field("access_token", "00Dtoken", true)],
                fields: vec![new_field("refresh_token", "5Aep", true)],
            }),
        ),
        (
            "request-apply-restore-field",
            apply(Change::RestoreField {
                entry: entry_name(),
                field: "consumer_secret".into(),
                index: 2,
            }),
        ),
        (
            "request-apply-mark-used",
            apply(Change::MarkUsed {
                entry: entry_name(),
                fields: vec!["consumer_key".into(), "private_key".into()],
            }),
        ),
        (
            "request-apply-set-history-limit",
            apply(Change::SetHistoryLimit(7)),
        ),
        (
            "request-apply-forget-tokens",
            apply(Change::ForgetTokens {
                entry: entry_name(),
                revoked: vec![s("00Dtoken")],
            }),
        ),
        (
            "request-apply-remove-fields",
            apply(Change::RemoveFields {
                entry: entry_name(),
                fields: vec!["access_token".into()],
            }),
        ),
        ("request-lock", Frame::Request(Request::Lock)),
        (
            "response-status",
            Frame::Response(Response::Status(AgentStatus {
                vault: "/home/u/.local/share/sfvault/vault.sfv".into(),
                pid: 4242,
                idle_timeout_secs: 900,
                locks_in_secs: Some(600),
                history_limit: 5,
            })),
        ),
        (
            "response-field",
            Frame::Response(Response::Field(secret_field())),
        ),
        ("response-entry", Frame::Response(Response::Entry(entry()))),
        (
            "response-entries",
            Frame::Response(Response::Entries(entries)),
        ),
        (
            "response-applied-done",
            Frame::Response(Response::Applied(ChangeOutcome::Done)),
        ),
        (
            "response-applied-created",
            Frame::Response(Response::Applied(ChangeOutcome::Field(SetOutcome::Created))),
        ),
        (
            "response-applied-changed",
            Frame::Response(Response::Applied(ChangeOutcome::Field(SetOutcome::Changed))),
        ),
        (
            "response-applied-unchanged",
            Frame::Response(Response::Applied(ChangeOutcome::Field(
                SetOutcome::Unchanged,
            ))),
        ),
        ("response-locked", Frame::Response(Response::Locked)),
        ("response-error", Frame::Response(error_response())),
        ("version-only", Frame::VersionOnly),
        // Appended for removed entries (format version 3): new variants after the old ones,
        // so every frame above keeps its bytes.
        (
            "request-apply-undelete",
            apply(Change::Undelete {
                entry: entry_name(),
                target: Some("acme/ci-old".into()),
            }),
        ),
        (
            "request-apply-purge-entry",
            apply(Change::PurgeEntry {
                entry: entry_name(),
            }),
        ),
        (
            "request-apply-set-removed-days",
            apply(Change::SetRemovedDays(30)),
        ),
        ("request-apply-rewrite", apply(Change::Rewrite)),
        ("request-removed", Frame::Request(Request::Removed)),
        (
            "response-removed",
            Frame::Response(Response::Removed {
                removed_days: 30,
                removed: BTreeMap::from([(
                    entry_name(),
                    vec![RemovedEntry {
                        removed_at: T0 + 500,
                        entry: entry().masked(),
                    }],
                )]),
            }),
        ),
    ]
}

/// tests/vectors/agent, after writing the `.bin` files if `SFVAULT_WRITE_GOLDEN` is set (once
/// per run, before any test reads them).
fn golden_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/agent");
        if std::env::var_os(WRITE_GOLDEN).is_some_and(|v| !v.is_empty()) {
            fs::create_dir_all(&dir).unwrap();
            for (name, frame) in frames() {
                fs::write(dir.join(format!("{name}.bin")), frame.encode()).unwrap();
            }
            eprintln!("{WRITE_GOLDEN} is set: wrote {}", dir.display());
        }
        dir
    })
}

fn golden(name: &str) -> Vec<u8> {
    let path = golden_dir().join(name);
    fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (a new frame's file is written by {WRITE_GOLDEN}=1)",
            path.display()
        )
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_frame_encodes_to_its_golden_bytes_and_decodes_back() {
    for (name, frame) in frames() {
        let file = format!("{name}.bin");
        let bytes = golden(&file);
        assert_eq!(
            hex(&frame.encode()),
            hex(&bytes),
            "{file}: the encoding changed (left: now, right: committed)"
        );
        frame.assert_decodes(&file, &bytes);
        // The header is the documented one, whatever the body's encoding.
        assert_eq!(bytes[..4], protocol::MAGIC, "{file}");
        assert_eq!(
            u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize,
            bytes.len() - protocol::HEADER_LEN,
            "{file}: the body length"
        );
    }
}

/// The directory holds exactly the frames above (a stale or misnamed file fails, naming it),
/// and the README describes each.
#[test]
fn the_golden_files_are_exactly_the_frames_and_all_are_described() {
    let dir = golden_dir();
    let names: Vec<String> = frames()
        .iter()
        .map(|(name, _)| format!("{name}.bin"))
        .collect();
    let mut on_disk: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "README.md")
        .collect();
    on_disk.sort();
    for file in &on_disk {
        assert!(
            names.contains(file),
            "tests/vectors/agent/{file} is not a frame of this test"
        );
    }
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    for file in &names {
        assert!(
            on_disk.contains(file),
            "tests/vectors/agent/{file} is missing"
        );
        assert!(
            readme.contains(&format!("`{file}`")),
            "tests/vectors/agent/README.md does not describe {file}"
        );
    }
}

/// The README's annotated dumps: blocks opened by ```` ```hex FILE ````, each line the bytes in
/// hex, then `|` and what they are.
#[test]
fn the_readme_hex_dumps_are_the_golden_bytes() {
    let readme = fs::read_to_string(golden_dir().join("README.md")).unwrap();
    let mut dumps = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line.strip_prefix("```hex ") else {
            continue;
        };
        let file = file.trim();
        let mut bytes = Vec::new();
        for row in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            let (data, _annotation) = row.split_once('|').unwrap_or((row, ""));
            for byte in data.split_whitespace() {
                bytes.push(u8::from_str_radix(byte, 16).unwrap_or_else(|_| {
                    panic!("README.md, dump of {file}: «{byte}» is not a hex byte")
                }));
            }
        }
        assert_eq!(
            hex(&bytes),
            hex(&golden(file)),
            "README.md's dump of {file} (left) is not the file (right)"
        );
        dumps += 1;
    }
    assert!(
        dumps >= 2,
        "README.md has {dumps} hex dumps, expected at least 2"
    );
}
