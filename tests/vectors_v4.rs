//! Golden test vectors of format version 4 (team vaults, docs/FORMAT.md): a vault with a
//! passphrase and two recipients (an age X25519 key and an SSH ed25519 key), a vault with one
//! recipient and no passphrase, and broken version 4 files (tests/vectors/broken/EXPECTED-v4.txt,
//! checked with the others by tests/vectors.rs).
//!
//! The identities are test keys committed beside the vectors (never real ones). The files were
//! written once by `SFVAULT_WRITE_VECTORS=1 cargo test --test vectors_v4 -- --ignored` and are
//! never regenerated.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sfvault::secret::{SecretKey, SecretString, exposing};
use sfvault::vault::KdfParams;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::{TeamState, VaultData};
use sfvault::vault::recipients::{self, Recipient};
use sfvault::vault::slice::Slice;
use support::golden::*;
use support::*;
use zeroize::Zeroizing;

/// The generation written into `v4-golden.sfv`.
const V4_GOLDEN_GENERATION: u64 = 13;
/// The generation written into `v4-nopass.sfv`.
const V4_NOPASS_GENERATION: u64 = 2;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// The public key of the committed test identity `v4-identity.txt`.
fn alice_public() -> String {
    let text = fs::read_to_string(vectors_dir().join("v4-identity.txt")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("the identity file names its public key")
        .to_owned()
}

/// The slice defined in the golden team state: `ci`, holding `acme-prod/ci` for `alice`.
fn golden_slice() -> Slice {
    Slice {
        name: "ci".into(),
        file: "ci/ci.sfv".into(),
        entries: vec!["acme-prod/ci".into()],
        recipients: vec![Recipient {
            name: "ci-runner".into(),
            key: alice_public(),
        }],
        key: SecretKey::from_slice(&[0xcd; 32]),
        vault_id: [0x5a; 16],
        key_links: vec![[0xef; 32]],
        changed_at: 1_764_370_500,
    }
}

/// The version 4 golden contents: version 3's, and a team state with a fixed vault id, one
/// key link and one slice.
fn golden_data_v4() -> VaultData {
    let mut v = golden_data_v3();
    v.team = Some(TeamState {
        vault_id: std::array::from_fn(|i| i as u8 * 17),
        key_links: vec![[0xab; 32]],
        slices: vec![golden_slice()],
        slice_of: None,
    });
    v
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `v4-golden.json`: version 3's shape, plus the team state and the recipients.
fn data_json_v4(v: &VaultData, recipients: &[Recipient], passphrase: bool) -> Value {
    let mut out = data_json_v3(v);
    let team = v.team.as_ref().expect("team state");
    out["team"] = json!({
        "vault_id": hex(&team.vault_id),
        "key_links": team.key_links.iter().map(|l| hex(l)).collect::<Vec<_>>(),
        "slices": team.slices.iter().map(|s| json!({
            "name": s.name,
            "file": s.file,
            "entries": s.entries,
            "recipients": s.recipients.iter().map(|r| json!({"name": r.name, "key": r.key})).collect::<Vec<_>>(),
            "key": hex(s.key.expose()),
            "vault_id": hex(&s.vault_id),
            "key_links": s.key_links.iter().map(|l| hex(l)).collect::<Vec<_>>(),
            "changed_at": s.changed_at,
        })).collect::<Vec<_>>(),
        "slice_of": team.slice_of.map(|id| hex(&id)),
    });
    out["recipients"] = recipients
        .iter()
        .map(|r| json!({"name": r.name, "key": r.key}))
        .collect();
    out["passphrase"] = json!(passphrase);
    out
}

/// A committed test identity copied to a 0600 file (git checks files out 0644, and sfvault
/// refuses an identity others can read).
fn identity_copy(tv: &TestVault, name: &str) -> PathBuf {
    let copy = tv.root.path().join(name);
    write_private(&copy, &fs::read(vectors_dir().join(name)).unwrap());
    copy
}

fn golden_cmd(
    tv: &TestVault,
    vault: &Path,
    identity: Option<&Path>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = tv.bare_cmd();
    cmd.arg("--vault").arg(vault);
    match identity {
        Some(id) => {
            cmd.arg("--identity").arg(id);
        }
        None => {
            cmd.env("SFVAULT_PASSPHRASE", GOLDEN_PASSPHRASE);
        }
    }
    run_cmd(cmd, args, None)
}

#[test]
fn golden_v4_vault_opens_with_its_passphrase_and_each_recipient() {
    let dir = vectors_dir();
    let bytes = fs::read(dir.join("v4-golden.sfv")).expect("golden vault is committed");
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("v4-golden.json")).unwrap()).unwrap();
    let header = format::parse_header(&bytes).unwrap();
    assert_eq!(
        (header.version, header.generation),
        (4, V4_GOLDEN_GENERATION)
    );
    let recipients = header.slots.recipients().to_vec();
    let (data, _) = format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into()))
        .expect("the golden vault opens");
    assert_eq!(data_json_v4(&data, &recipients, true), expected);
    assert_eq!(data_json_v4(&golden_data_v4(), &recipients, true), expected);

    let tv = TestVault::empty();
    let copy = tv.home.join("golden.sfv");
    write_private(&copy, &bytes);
    let age_id = identity_copy(&tv, "v4-identity.txt");
    let ssh_id = identity_copy(&tv, "v4-ssh-ed25519");
    for id in [None, Some(age_id.as_path()), Some(ssh_id.as_path())] {
        let out = golden_cmd(
            &tv,
            &copy,
            id,
            &["get", "-n", "acme-prod/ci", "consumer_secret"],
        );
        assert_success(&out, &["get from the v4 golden", &format!("{id:?}")]);
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "third-secret ünïcødé"
        );
    }
    // A save stays version 4, one generation on, with the same team state and recipients.
    let out = golden_cmd(
        &tv,
        &copy,
        Some(&ssh_id),
        &["set", "acme-uat/backup", "notes", "saved"],
    );
    assert_success(&out, &["set on the v4 golden"]);
    let saved = fs::read(&copy).unwrap();
    let h = format::parse_header(&saved).unwrap();
    assert_eq!((h.version, h.generation), (4, V4_GOLDEN_GENERATION + 1));
    assert_eq!(h.slots.recipients(), &recipients[..]);
    let (again, _) = format::open(&saved, &SecretString::new(GOLDEN_PASSPHRASE.into())).unwrap();
    assert_eq!(again.team, golden_data_v4().team);
}

#[test]
fn golden_v4_vault_without_a_passphrase_opens_only_by_identity() {
    let bytes = fs::read(vectors_dir().join("v4-nopass.sfv")).unwrap();
    let header = format::parse_header(&bytes).unwrap();
    assert_eq!(
        (header.version, header.generation),
        (4, V4_NOPASS_GENERATION)
    );
    assert!(header.slots.passphrase.is_none());
    assert_eq!(
        format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into())).unwrap_err(),
        format::OpenError::NoPassphrase
    );
    let tv = TestVault::empty();
    let copy = tv.home.join("nopass.sfv");
    write_private(&copy, &bytes);
    let out = golden_cmd(&tv, &copy, None, &["list"]);
    assert_code(&out, 5, &["list the no-passphrase golden by passphrase"]);
    let age_id = identity_copy(&tv, "v4-identity.txt");
    let out = golden_cmd(
        &tv,
        &copy,
        Some(&age_id),
        &["get", "-n", "acme-prod/ci", "consumer_key"],
    );
    assert_success(&out, &["get from the no-passphrase golden"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "3MVG9golden.consumer.key"
    );
    // The SSH key is no recipient of this one.
    let ssh_id = identity_copy(&tv, "v4-ssh-ed25519");
    assert_code(
        &golden_cmd(&tv, &copy, Some(&ssh_id), &["list"]),
        4,
        &["not a recipient"],
    );
}

/// Writes the version 4 files. Run once, when version 4 was made; never again.
#[test]
#[ignore]
fn write_v4_vectors() {
    if std::env::var_os("SFVAULT_WRITE_VECTORS").is_none() {
        eprintln!("set SFVAULT_WRITE_VECTORS=1 to write the version 4 vectors");
        return;
    }
    let dir = vectors_dir();
    let broken = dir.join("broken");
    // The test keys made with the first version 4 vectors are kept (the team state gained
    // its slices before version 4 was released, and the vectors were written again).
    let ssh = dir.join("v4-ssh-ed25519");
    if !dir.join("v4-identity.txt").exists() {
        let (age_secret, age_public) = recipients::generate_x25519();
        fs::write(
            dir.join("v4-identity.txt"),
            format!(
                "# A test identity for the version 4 golden vectors (tests/vectors_v4.rs): \
                 never a real key.\n# public key: {age_public}\n{}\n",
                age_secret.expose()
            ),
        )
        .unwrap();
        let _ = fs::remove_file(&ssh);
        let _ = fs::remove_file(ssh.with_extension("pub"));
        let ok = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "golden-test-key",
                "-f",
            ])
            .arg(&ssh)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let age_public = alice_public();
    let ssh_public = fs::read_to_string(dir.join("v4-ssh-ed25519.pub")).unwrap();
    let alice = Recipient {
        name: "alice".into(),
        key: age_public,
    };
    let bob = Recipient {
        name: "golden-test-key".into(),
        key: recipients::parse_key(&ssh_public).unwrap().key,
    };
    let data = golden_data_v4();
    let key = VaultKey::generate(
        &SecretString::new(GOLDEN_PASSPHRASE.into()),
        KdfParams::MINIMUM,
    )
    .unwrap()
    .with_recipients(vec![alice.clone(), bob.clone()])
    .unwrap();
    let golden = format::seal(&data, &key, V4_GOLDEN_GENERATION).unwrap();
    fs::write(dir.join("v4-golden.sfv"), &golden).unwrap();
    fs::write(
        dir.join("v4-golden.json"),
        serde_json::to_string_pretty(&data_json_v4(&data, &[alice.clone(), bob], true)).unwrap()
            + "\n",
    )
    .unwrap();
    let nopass_key = VaultKey::generate_for(vec![alice]).unwrap();
    let nopass = format::seal(&data, &nopass_key, V4_NOPASS_GENERATION).unwrap();
    fs::write(dir.join("v4-nopass.sfv"), &nopass).unwrap();

    // Broken files, made from the golden one.
    let header = format::parse_header(&golden).unwrap();
    let generation_at = header.len - 32 - 4 - 8;
    let slots_end = generation_at - 32;
    let mut list = String::from(
        "# file exit-code words-the-error-must-contain\n# version 4 files, made from v4-golden.sfv and v4-nopass.sfv; passphrase as in FORMAT.md\n",
    );
    let mut put = |name: &str, bytes: &[u8], code: i32, words: &str| {
        fs::write(broken.join(name), bytes).unwrap();
        list.push_str(&format!("{name} {code} {words}\n"));
    };
    let patch = |at: usize, new: &[u8]| {
        let mut b = golden.clone();
        b[at..at + new.len()].copy_from_slice(new);
        b
    };
    put(
        "v4-version-5.sfv",
        &patch(8, &5u16.to_le_bytes()),
        6,
        "format version 5 is not supported",
    );
    put(
        "v4-passphrase-flag-2.sfv",
        &patch(10, &[2]),
        6,
        "passphrase slot flag 2",
    );
    put(
        "v4-older-generation.sfv",
        &patch(generation_at, &(V4_GOLDEN_GENERATION - 1).to_le_bytes()),
        6,
        "key commitment",
    );
    // The recipient count sits right after the passphrase slot (75 + S bytes after byte 11).
    let count_at = 11 + 75 + 32;
    assert_eq!(
        u16::from_le_bytes([golden[count_at], golden[count_at + 1]]),
        2,
        "recipient count where FORMAT.md puts it"
    );
    put(
        "v4-257-recipients.sfv",
        &patch(count_at, &257u16.to_le_bytes()),
        6,
        "257 recipients",
    );
    // Another recipient key, same length: authenticated by the key commitment.
    let name_len = golden[count_at + 2] as usize;
    let key_at = count_at + 2 + 1 + name_len + 2;
    let mut swapped = golden.clone();
    swapped[key_at + 10] ^= 0x01;
    put(
        "v4-recipient-key-altered.sfv",
        &swapped,
        6,
        "key commitment",
    );
    // No passphrase slot and no recipients: the slots cut out of the no-passphrase file.
    let nh = format::parse_header(&nopass).unwrap();
    let n_slots_end = nh.len - 32 - 4 - 8 - 32;
    let mut none = nopass[..10].to_vec();
    none.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
    none.extend_from_slice(&nopass[n_slots_end..]);
    put("v4-no-slots.sfv", &none, 6, "nothing opens it");
    // A recipient count without a wrapped key: the wrapped-key length set to 0 and its bytes cut.
    let wrapped_len = nh.slots.recipients.as_ref().unwrap().wrapped.len();
    let len_at = n_slots_end - wrapped_len - 4;
    let mut unwrapped = nopass[..len_at].to_vec();
    unwrapped.extend_from_slice(&0u32.to_le_bytes());
    unwrapped.extend_from_slice(&nopass[n_slots_end..]);
    put(
        "v4-recipients-without-key.sfv",
        &unwrapped,
        6,
        "but a wrapped key of 0 bytes",
    );
    assert!(slots_end > count_at);

    // Authentic files whose plaintext breaks a version 4 rule: sealed with the golden key.
    let salt = [9u8; 32];
    let sealed = |p: Vec<u8>| {
        format::seal_plaintext(Zeroizing::new(p), &key, &salt, V4_GOLDEN_GENERATION, 4).unwrap()
    };
    let cfg = bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding();
    let v3_part = format::encode_payload(&golden_data_v3(), 3)
        .unwrap()
        .to_vec();
    let many = TeamState {
        vault_id: [1; 16],
        key_links: vec![[2; 32]; 17],
        slices: Vec::new(),
        slice_of: None,
    };
    let with_team = |team: &TeamState| {
        let mut p = v3_part.clone();
        p.extend(exposing(|| bincode::serde::encode_to_vec(team, cfg)).unwrap());
        sealed(p)
    };
    put("v4-17-key-links.sfv", &with_team(&many), 6, "17 key links");
    let mut outside = golden_data_v4().team.unwrap();
    outside.slices[0].file = "../ci.sfv".into();
    put(
        "v4-slice-file-outside.sfv",
        &with_team(&outside),
        6,
        "without `..`",
    );
    let mut nested = golden_data_v4().team.unwrap();
    nested.slice_of = Some([3; 16]);
    put(
        "v4-slice-with-slices.sfv",
        &with_team(&nested),
        6,
        "defines slices of its own",
    );
    let mut twice = golden_data_v4().team.unwrap();
    let mut copy = golden_slice();
    copy.name = "ci-2".into();
    twice.slices.push(copy);
    put(
        "v4-slice-file-twice.sfv",
        &with_team(&twice),
        6,
        "defined twice",
    );
    let mut trailing = format::encode_payload(&data, 4).unwrap().to_vec();
    trailing.push(0);
    put(
        "v4-trailing-plaintext.sfv",
        &sealed(trailing),
        6,
        "unexpected bytes after the payload",
    );
    let v3_only = format::encode_payload(&golden_data_v3(), 3)
        .unwrap()
        .to_vec();
    put(
        "v4-no-team-state.sfv",
        &sealed(v3_only),
        6,
        "payload does not decode",
    );
    fs::write(broken.join("EXPECTED-v4.txt"), list).unwrap();
}
