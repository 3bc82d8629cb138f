//! Golden test vectors: a version-1 vault every future sfvault must open, and deliberately broken
//! files each with its expected exit code and error words (tests/vectors/broken/EXPECTED.txt).
//!
//! The files are committed; `SFVAULT_WRITE_VECTORS=1 cargo test --test vectors -- --ignored`
//! writes them anew (only ever for a new format version).

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sfvault::secret::SecretString;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::{Timestamp, VaultData};
use sfvault::vault::{EntryName, KdfParams};
use support::*;
use zeroize::Zeroizing;

const GOLDEN_PASSPHRASE: &str = "correct horse battery staple";

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// The golden contents: two entries, secret and public fields, a history, a `used_at`.
fn golden_data() -> VaultData {
    let mut v = VaultData::default();
    let s = |t: &str| SecretString::new(t.to_owned());
    let prod = EntryName::parse("acme-prod/ci").unwrap();
    let uat = EntryName::parse("acme-uat/backup").unwrap();
    let t0: Timestamp = 1_764_370_000;
    v.add_entry(&prod, t0).unwrap();
    v.set_field(
        &prod,
        "consumer_key",
        s("3MVG9golden.consumer.key"),
        false,
        t0,
    )
    .unwrap();
    v.set_field(&prod, "username", s("ci@acme.example.com"), false, t0)
        .unwrap();
    v.set_field(&prod, "flow", s("jwt"), false, t0).unwrap();
    v.set_field(
        &prod,
        "private_key",
        s("-----BEGIN PRIVATE KEY-----\nR09MREVOLUtFWS1OT1QtQS1SRUFMLUtFWQ==\n-----END PRIVATE KEY-----"),
        true,
        t0 + 1,
    )
    .unwrap();
    for (i, secret) in ["first-secret", "second-secret", "third-secret ünïcødé"]
        .iter()
        .enumerate()
    {
        v.set_field(
            &prod,
            "consumer_secret",
            s(secret),
            true,
            t0 + 10 * i as i64,
        )
        .unwrap();
    }
    v.entries
        .get_mut("acme-prod/ci")
        .unwrap()
        .fields
        .get_mut("consumer_key")
        .unwrap()
        .used_at = Some(t0 + 100);
    v.add_entry(&uat, t0 + 200).unwrap();
    v.set_field(
        &uat,
        "login_url",
        s("https://test.salesforce.com"),
        false,
        t0 + 200,
    )
    .unwrap();
    v.set_field(&uat, "notes", s("public note"), false, t0 + 201)
        .unwrap();
    v.set_field(&uat, "my_token", s("user-defined secret"), true, t0 + 202)
        .unwrap();
    v
}

/// The golden contents as JSON, written next to the vault as the expected values.
fn data_json(v: &VaultData) -> Value {
    let mut entries = serde_json::Map::new();
    for (name, e) in &v.entries {
        let mut fields = serde_json::Map::new();
        for (fname, f) in &e.fields {
            let history: Vec<Value> = f
                .history
                .iter()
                .map(|p| json!({"value": p.value.expose(), "changed_at": p.changed_at, "replaced_at": p.replaced_at}))
                .collect();
            fields.insert(
                fname.clone(),
                json!({"value": f.value.expose(), "secret": f.secret, "set_at": f.set_at,
                       "changed_at": f.changed_at, "used_at": f.used_at, "history": history}),
            );
        }
        entries.insert(
            name.clone(),
            json!({"created_at": e.created_at, "fields": fields}),
        );
    }
    json!({"history_limit": v.settings.history_limit, "entries": entries})
}

#[test]
fn golden_v1_vault_opens_with_exact_contents() {
    let dir = vectors_dir();
    let bytes = fs::read(dir.join("v1-golden.sfv")).expect("golden vault is committed");
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("v1-golden.json")).unwrap()).unwrap();
    let (data, _) = format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into()))
        .expect("the golden vault opens");
    assert_eq!(data_json(&data), expected);
    // The JSON really is what the generator meant (guards against a regenerated JSON drifting).
    assert_eq!(data_json(&golden_data()), expected);

    // And the binary reads it too.
    let tv = TestVault::empty();
    let copy = tv.home.join("golden.sfv");
    write_private(&copy, &bytes);
    let mut cmd = tv.bare_cmd();
    cmd.env("SFVAULT_PASSPHRASE", GOLDEN_PASSPHRASE);
    let out = run_cmd(
        cmd,
        &[
            "--vault",
            copy.to_str().unwrap(),
            "get",
            "-n",
            "acme-prod/ci",
            "consumer_secret",
        ],
        None,
    );
    assert_success(&out, &["get from golden"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "third-secret ünïcødé"
    );
}

#[test]
fn broken_vectors_fail_with_their_expected_errors() {
    let dir = vectors_dir().join("broken");
    let expected = fs::read_to_string(dir.join("EXPECTED.txt")).expect("EXPECTED.txt");
    let tv = TestVault::empty();
    let mut checked = 0;
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.splitn(3, ' ');
        let (file, code, words) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse::<i32>().unwrap(),
            parts.next().unwrap_or(""),
        );
        let copy = tv.home.join(file);
        write_private(&copy, &fs::read(dir.join(file)).unwrap());
        let mut cmd = tv.bare_cmd();
        cmd.env("SFVAULT_PASSPHRASE", GOLDEN_PASSPHRASE);
        let out = run_cmd(cmd, &["--vault", copy.to_str().unwrap(), "list"], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{file}: {stderr}");
        assert!(
            stderr.contains(words),
            "{file}: expected «{words}» in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{file}: printed data");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} broken vectors");
}

/// Writes the vectors. Run only to create a new format version's files.
#[test]
#[ignore]
fn write_vectors() {
    if std::env::var_os("SFVAULT_WRITE_VECTORS").is_none() {
        eprintln!("set SFVAULT_WRITE_VECTORS=1 to rewrite tests/vectors");
        return;
    }
    let dir = vectors_dir();
    let broken = dir.join("broken");
    fs::create_dir_all(&broken).unwrap();
    let data = golden_data();
    let key = VaultKey::generate(
        &SecretString::new(GOLDEN_PASSPHRASE.into()),
        KdfParams::MINIMUM,
    )
    .unwrap();
    let golden = format::seal(&data, &key).unwrap();
    fs::write(dir.join("v1-golden.sfv"), &golden).unwrap();
    fs::write(
        dir.join("v1-golden.json"),
        serde_json::to_string_pretty(&data_json(&data)).unwrap() + "\n",
    )
    .unwrap();

    let s = 32usize; // salt length written by this version
    let header_len = 153 + s;
    let mut list = String::from(
        "# file exit-code words-the-error-must-contain\n# made from v1-golden.sfv; passphrase as in FORMAT.md\n",
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
    let flip = |at: usize| {
        let mut b = golden.clone();
        b[at] ^= 0x40;
        b
    };
    put("bad-magic.sfv", &patch(0, b"SFVAULX"), 6, "wrong magic");
    put(
        "version-2.sfv",
        &patch(8, &2u16.to_le_bytes()),
        6,
        "format version 2 is not supported",
    );
    put("kdf-id-2.sfv", &patch(10, &[2]), 6, "unknown KDF id 2");
    put("aead-id-9.sfv", &patch(11, &[9]), 6, "unknown cipher id 9");
    put(
        "kdf-memory-4gib.sfv",
        &patch(12, &(4u32 << 20).to_le_bytes()),
        6,
        "memory 4194304 KiB",
    );
    put(
        "kdf-memory-1mib.sfv",
        &patch(12, &1024u32.to_le_bytes()),
        6,
        "memory 1024 KiB",
    );
    put(
        "kdf-iterations-11.sfv",
        &patch(16, &11u32.to_le_bytes()),
        6,
        "iterations 11",
    );
    put(
        "kdf-parallelism-0.sfv",
        &patch(20, &0u32.to_le_bytes()),
        6,
        "parallelism 0",
    );
    put("salt-len-17.sfv", &patch(24, &[17]), 6, "salt length 17");
    put("empty.sfv", b"", 6, "wrong magic");
    put(
        "truncated-header.sfv",
        &golden[..100],
        6,
        "truncated header",
    );
    put(
        "truncated-payload.sfv",
        &golden[..golden.len() - 1],
        6,
        "truncated or extended",
    );
    let mut extended = golden.clone();
    extended.extend_from_slice(b"extra");
    put("extended.sfv", &extended, 6, "truncated or extended");
    put(
        "payload-len-max.sfv",
        &patch(117 + s, &u32::MAX.to_le_bytes()),
        6,
        "truncated or extended",
    );
    put("flipped-kdf-salt.sfv", &flip(25), 4, "wrong passphrase");
    put(
        "flipped-wrap-nonce.sfv",
        &flip(25 + s),
        4,
        "wrong passphrase",
    );
    put(
        "flipped-wrapped-key.sfv",
        &flip(37 + s),
        4,
        "wrong passphrase",
    );
    put(
        "flipped-kdf-iterations.sfv",
        &patch(16, &3u32.to_le_bytes()),
        4,
        "wrong passphrase",
    );
    put(
        "flipped-payload-salt.sfv",
        &flip(85 + s),
        6,
        "key commitment",
    );
    put(
        "flipped-commitment.sfv",
        &flip(121 + s),
        6,
        "key commitment",
    );
    put(
        "flipped-payload.sfv",
        &flip(header_len + 3),
        6,
        "failed authentication",
    );
    put(
        "flipped-tag.sfv",
        &flip(golden.len() - 1),
        6,
        "failed authentication",
    );

    // Authentic files whose plaintext is malformed: sealed with the golden key.
    let salt = [7u8; 32];
    let plain = format::encode_payload(&data).unwrap();
    let mut trailing = plain.to_vec();
    trailing.push(0);
    let sealed = |p: Vec<u8>| format::seal_plaintext(Zeroizing::new(p), &key, &salt);
    put(
        "trailing-plaintext.sfv",
        &sealed(trailing),
        6,
        "unexpected bytes after the payload",
    );
    put(
        "short-plaintext.sfv",
        &sealed(plain[..plain.len() - 3].to_vec()),
        6,
        "payload does not decode",
    );
    // history_limit 5 then 1 entry whose key is "../x" (valid length, invalid address).
    let mut bad_name = vec![5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0];
    bad_name.extend_from_slice(b"../x");
    bad_name.extend_from_slice(&[0; 16]);
    put(
        "bad-entry-name.sfv",
        &sealed(bad_name),
        6,
        "invalid address",
    );
    // An entry count claiming 2^60 entries: must fail on the limit, not allocate.
    let mut huge = vec![5, 0, 0, 0];
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    put(
        "huge-entry-count.sfv",
        &sealed(huge),
        6,
        "payload does not decode",
    );
    // A bool that is 2.
    let mut v = VaultData::default();
    let n = EntryName::parse("a/b").unwrap();
    v.add_entry(&n, 1).unwrap();
    v.set_field(&n, "username", SecretString::new("u".into()), false, 1)
        .unwrap();
    let mut p = format::encode_payload(&v).unwrap().to_vec();
    let bool_at = 4 + 8 + 8 + 3 + 8 + 8 + 8 + "username".len() + 8 + 1;
    assert_eq!(p[bool_at], 0);
    p[bool_at] = 2;
    put("bool-2.sfv", &sealed(p), 6, "payload does not decode");
    // A private_key marked public.
    let mut v = VaultData::default();
    v.add_entry(&n, 1).unwrap();
    v.set_field(
        &n,
        "private_key",
        SecretString::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into()),
        true,
        1,
    )
    .unwrap();
    v.entries
        .get_mut("a/b")
        .unwrap()
        .fields
        .get_mut("private_key")
        .unwrap()
        .secret = false;
    put(
        "public-private-key.sfv",
        &sealed(format::encode_payload(&v).unwrap().to_vec()),
        6,
        "must be secret",
    );
    fs::write(broken.join("EXPECTED.txt"), list).unwrap();
}
