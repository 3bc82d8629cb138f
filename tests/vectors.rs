//! Golden test vectors: a vault of each format version that every future sfvault must open, and
//! deliberately broken files each with its expected exit code and error words
//! (tests/vectors/broken/EXPECTED*.txt).
//!
//! The files are committed. `SFVAULT_WRITE_VECTORS=1 cargo test --test vectors -- --ignored`
//! writes the newest version's files (`v2-*`); the version-1 files were written by version 1 of
//! this code and are never regenerated.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sfvault::secret::{SecretString, exposing};
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::{Entry, Field, Timestamp, VaultData};
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
    golden_vault_opens_with_exact_contents("v1", 0);
}

#[test]
fn golden_v2_vault_opens_with_exact_contents() {
    golden_vault_opens_with_exact_contents("v2", V2_GOLDEN_GENERATION);
}

fn golden_vault_opens_with_exact_contents(version: &str, generation: u64) {
    let dir = vectors_dir();
    let bytes =
        fs::read(dir.join(format!("{version}-golden.sfv"))).expect("golden vault is committed");
    let expected: Value = serde_json::from_str(
        &fs::read_to_string(dir.join(format!("{version}-golden.json"))).unwrap(),
    )
    .unwrap();
    let (data, _) = format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into()))
        .expect("the golden vault opens");
    assert_eq!(data_json(&data), expected);
    assert_eq!(format::parse_header(&bytes).unwrap().generation, generation);
    // The JSON really is what the generator meant (guards against a regenerated JSON drifting).
    assert_eq!(data_json(&golden_data()), expected);

    // And the binary reads it too, and its next save writes the newest version, one generation
    // on (a version 1 file counts as generation 0).
    let tv = TestVault::empty();
    let copy = tv.home.join("golden.sfv");
    write_private(&copy, &bytes);
    let golden = |args: &[&str]| {
        let mut cmd = tv.bare_cmd();
        cmd.env("SFVAULT_PASSPHRASE", GOLDEN_PASSPHRASE);
        let mut all = vec!["--vault", copy.to_str().unwrap()];
        all.extend_from_slice(args);
        run_cmd(cmd, &all, None)
    };
    let out = golden(&["get", "-n", "acme-prod/ci", "consumer_secret"]);
    assert_success(&out, &["get from golden"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "third-secret ünïcødé"
    );
    let out = golden(&["set", "acme-uat/backup", "notes", "saved again"]);
    assert_success(&out, &["set on golden"]);
    let saved = format::parse_header(&fs::read(&copy).unwrap()).unwrap();
    assert_eq!(
        (saved.version, saved.generation),
        (format::FORMAT_VERSION, generation + 1)
    );
}

/// The lists of broken vectors: tests/vectors/broken/EXPECTED*.txt.
fn expected_lists(dir: &Path) -> Vec<String> {
    let mut lists: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.starts_with("EXPECTED") && f.ends_with(".txt"))
        .collect();
    lists.sort();
    assert!(!lists.is_empty(), "no EXPECTED*.txt in {}", dir.display());
    lists
}

/// One line of an EXPECTED list: a broken file, the exit code reading it gives, and words its
/// error must contain.
struct Expected {
    file: String,
    code: i32,
    words: String,
    /// The list that names it.
    list: String,
}

/// Every line of every EXPECTED list.
fn expected_broken(dir: &Path) -> Vec<Expected> {
    let mut out = Vec::new();
    for list in expected_lists(dir) {
        let text = fs::read_to_string(dir.join(&list)).unwrap();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let mut parts = line.splitn(3, ' ');
            let file = parts.next().unwrap().to_owned();
            let code = parts
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("{list}: «{line}» has no exit code"));
            out.push(Expected {
                file,
                code,
                words: parts.next().unwrap_or("").to_owned(),
                list: list.clone(),
            });
        }
    }
    out
}

/// The broken vectors and their lists agree: every file is listed once, every listed file
/// exists.
#[test]
fn every_broken_vector_is_listed_once_and_every_listed_one_exists() {
    let dir = vectors_dir().join("broken");
    let lists = expected_lists(&dir);
    let expected = expected_broken(&dir);
    for e in &expected {
        assert!(
            dir.join(&e.file).is_file(),
            "{} lists {}, which is not in tests/vectors/broken",
            e.list,
            e.file
        );
        let lists_naming: Vec<&str> = expected
            .iter()
            .filter(|o| o.file == e.file)
            .map(|o| o.list.as_str())
            .collect();
        assert_eq!(
            lists_naming.len(),
            1,
            "{} is listed more than once: in {lists_naming:?}",
            e.file
        );
    }
    for entry in fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if lists.contains(&file) {
            continue;
        }
        assert!(
            expected.iter().any(|e| e.file == file),
            "tests/vectors/broken/{file} is in no EXPECTED*.txt: list it with its exit code \
             and error words, or remove it"
        );
    }
}

#[test]
fn broken_vectors_fail_with_their_expected_errors() {
    let dir = vectors_dir().join("broken");
    let tv = TestVault::empty();
    for Expected {
        file, code, words, ..
    } in expected_broken(&dir)
    {
        let copy = tv.home.join(&file);
        write_private(&copy, &fs::read(dir.join(&file)).unwrap());
        let mut cmd = tv.bare_cmd();
        cmd.env("SFVAULT_PASSPHRASE", GOLDEN_PASSPHRASE);
        let out = run_cmd(cmd, &["--vault", copy.to_str().unwrap(), "list"], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{file}: {stderr}");
        assert!(
            stderr.contains(&words),
            "{file}: expected «{words}» in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{file}: printed data");
    }
}

/// The generation written into the version 2 golden vault.
const V2_GOLDEN_GENERATION: u64 = 7;

/// Writes the newest format version's vectors (`v2-golden.*`, `broken/v2-*`,
/// `broken/EXPECTED-v2.txt`). Run only to create a new format version's files.
#[test]
#[ignore]
fn write_vectors() {
    if std::env::var_os("SFVAULT_WRITE_VECTORS").is_none() {
        eprintln!("set SFVAULT_WRITE_VECTORS=1 to rewrite tests/vectors");
        return;
    }
    let dir = vectors_dir();
    let broken = dir.join("broken");
    let data = golden_data();
    let key = VaultKey::generate(
        &SecretString::new(GOLDEN_PASSPHRASE.into()),
        KdfParams::MINIMUM,
    )
    .unwrap();
    let golden = format::seal(&data, &key, V2_GOLDEN_GENERATION).unwrap();
    fs::write(dir.join("v2-golden.sfv"), &golden).unwrap();
    fs::write(
        dir.join("v2-golden.json"),
        serde_json::to_string_pretty(&data_json(&data)).unwrap() + "\n",
    )
    .unwrap();

    let header_len = format::parse_header(&golden).unwrap().len;
    // The generation sits after the payload salt: before payload_len (4) and commitment (32).
    let generation_at = header_len - 32 - 4 - 8;
    assert_eq!(
        golden[generation_at..generation_at + 8],
        V2_GOLDEN_GENERATION.to_le_bytes()
    );
    let mut list = String::from(
        "# file exit-code words-the-error-must-contain\n# version 2 files, made from v2-golden.sfv; passphrase as in FORMAT.md\n",
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
        "v2-version-3.sfv",
        &patch(8, &3u16.to_le_bytes()),
        6,
        "format version 3 is not supported",
    );
    put(
        "v2-older-generation.sfv",
        &patch(generation_at, &(V2_GOLDEN_GENERATION - 1).to_le_bytes()),
        6,
        "key commitment",
    );
    put(
        "v2-truncated-generation.sfv",
        &golden[..generation_at + 4],
        6,
        "truncated header",
    );

    // Authentic files whose plaintext is not canonical: sealed with the golden key. A map is
    // encoded as a count and its pairs, so a Vec of pairs gives any order the test wants.
    let salt = [9u8; 32];
    let sealed =
        |p: Vec<u8>| format::seal_plaintext(Zeroizing::new(p), &key, &salt, V2_GOLDEN_GENERATION);
    let cfg = bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding();
    let entries: Vec<(String, Entry)> = data.entries.clone().into_iter().collect();
    // Secrets serialize only inside an `exposing` scope, as in the vault's own encoder.
    let encode_entries = |pairs: &[(String, Entry)]| {
        exposing(|| bincode::serde::encode_to_vec((&data.settings, pairs), cfg)).unwrap()
    };
    assert_eq!(
        encode_entries(&entries),
        format::encode_payload(&data).unwrap().to_vec(),
        "a Vec of pairs encodes as the map does"
    );
    let mut unsorted = entries.clone();
    unsorted.reverse();
    put(
        "v2-unsorted-entries.sfv",
        &sealed(encode_entries(&unsorted)),
        6,
        "strictly ascending",
    );
    let repeated = vec![entries[0].clone(), entries[0].clone(), entries[1].clone()];
    put(
        "v2-repeated-entries.sfv",
        &sealed(encode_entries(&repeated)),
        6,
        "strictly ascending",
    );
    // Fields: an entry whose field map is written out of order, and one with a name twice.
    let fields_of = |entry: &Entry| -> Vec<(String, Field)> {
        entry
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let encode_fields = |fields: &[(String, Field)]| {
        let (name, entry) = &entries[0];
        exposing(|| {
            bincode::serde::encode_to_vec(
                // A Vec, not an array: serde writes arrays as tuples, with no count.
                (&data.settings, vec![(name, (entry.created_at, fields))]),
                cfg,
            )
        })
        .unwrap()
    };
    let mut fields = fields_of(&entries[0].1);
    fields.swap(0, 1);
    put(
        "v2-unsorted-fields.sfv",
        &sealed(encode_fields(&fields)),
        6,
        "strictly ascending",
    );
    let mut fields = fields_of(&entries[0].1);
    fields.insert(1, fields[0].clone());
    put(
        "v2-repeated-fields.sfv",
        &sealed(encode_fields(&fields)),
        6,
        "strictly ascending",
    );
    fs::write(broken.join("EXPECTED-v2.txt"), list).unwrap();
}
