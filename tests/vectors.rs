//! Golden test vectors: a vault of each format version that every future sfvault must open, and
//! deliberately broken files each with its expected exit code and error words
//! (tests/vectors/broken/EXPECTED*.txt).
//!
//! The files are committed. `SFVAULT_WRITE_VECTORS=1 cargo test --test vectors -- --ignored`
//! writes version 3's files (`v3-*`; version 4's are in tests/vectors_v4.rs); older versions' files were written by the code of
//! their version and are never regenerated.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sfvault::secret::{SecretString, exposing};
use sfvault::vault::KdfParams;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::{Entry, RemovedEntry, Settings};
use support::golden::*;
use support::*;
use zeroize::Zeroizing;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

#[test]
fn golden_v1_vault_opens_with_exact_contents() {
    golden_vault_opens_with_exact_contents("v1", 0);
}

#[test]
fn golden_v2_vault_opens_with_exact_contents() {
    golden_vault_opens_with_exact_contents("v2", V2_GOLDEN_GENERATION);
}

#[test]
fn golden_v3_vault_opens_with_exact_contents() {
    let dir = vectors_dir();
    let bytes = fs::read(dir.join("v3-golden.sfv")).expect("golden vault is committed");
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("v3-golden.json")).unwrap()).unwrap();
    let (data, _) = format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into()))
        .expect("the golden vault opens");
    assert_eq!(data_json_v3(&data), expected);
    assert_eq!(data_json_v3(&golden_data_v3()), expected);
    let header = format::parse_header(&bytes).unwrap();
    assert_eq!(
        (header.version, header.generation),
        (3, V3_GOLDEN_GENERATION)
    );
    golden_vault_opens_with_exact_contents("v3", V3_GOLDEN_GENERATION);
}

/// A version 1 or 2 file holds nothing removed: it opens with an empty removed map and the
/// default retention, and its entries are exactly those of the version 3 golden file's.
#[test]
fn older_versions_open_with_nothing_removed() {
    for version in ["v1", "v2"] {
        let bytes = fs::read(vectors_dir().join(format!("{version}-golden.sfv"))).unwrap();
        let (data, _) = format::open(&bytes, &SecretString::new(GOLDEN_PASSPHRASE.into())).unwrap();
        assert!(data.removed.is_empty(), "{version}");
        assert_eq!(data.settings.removed_days, 30, "{version}");
        assert_eq!(data.entries, golden_data_v3().entries, "{version}");
    }
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
    assert_eq!(format::parse_header(&bytes).unwrap().generation, generation);
    if version != "v3" {
        assert_eq!(data_json(&data), expected);
        // The JSON really is what the generator meant (guards against a regenerated JSON
        // drifting).
        assert_eq!(data_json(&golden_data()), expected);
    }

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
        (format::PASSPHRASE_FORMAT_VERSION, generation + 1)
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
/// The generation written into the version 3 golden vault.
const V3_GOLDEN_GENERATION: u64 = 11;

/// Writes the newest format version's vectors (`v3-golden.*`, `broken/v3-*`,
/// `broken/EXPECTED-v3.txt`). Run only to create a new format version's files. (The version 2
/// files were written by this function as it was in version 2: the same damage, named `v2-*`.)
#[test]
#[ignore]
fn write_vectors() {
    if std::env::var_os("SFVAULT_WRITE_VECTORS").is_none() {
        eprintln!("set SFVAULT_WRITE_VECTORS=1 to rewrite tests/vectors");
        return;
    }
    let dir = vectors_dir();
    let broken = dir.join("broken");
    let data = golden_data_v3();
    let key = VaultKey::generate(
        &SecretString::new(GOLDEN_PASSPHRASE.into()),
        KdfParams::MINIMUM,
    )
    .unwrap();
    let golden = format::seal(&data, &key, V3_GOLDEN_GENERATION).unwrap();
    fs::write(dir.join("v3-golden.sfv"), &golden).unwrap();
    fs::write(
        dir.join("v3-golden.json"),
        serde_json::to_string_pretty(&data_json_v3(&data)).unwrap() + "\n",
    )
    .unwrap();

    let header_len = format::parse_header(&golden).unwrap().len;
    // The generation sits after the payload salt: before payload_len (4) and commitment (32).
    let generation_at = header_len - 32 - 4 - 8;
    let mut list = String::from(
        "# file exit-code words-the-error-must-contain\n# version 3 files, made from v3-golden.sfv; passphrase as in FORMAT.md\n",
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
        "v3-version-4.sfv",
        &patch(8, &4u16.to_le_bytes()),
        6,
        "format version 4 is not supported",
    );
    put(
        "v3-older-generation.sfv",
        &patch(generation_at, &(V3_GOLDEN_GENERATION - 1).to_le_bytes()),
        6,
        "key commitment",
    );

    // Authentic files whose plaintext breaks a rule of the removed map: sealed with the golden
    // key. A map is encoded as a count and its pairs, so a Vec of pairs gives any shape.
    let salt = [9u8; 32];
    let sealed = |p: Vec<u8>| {
        format::seal_plaintext(Zeroizing::new(p), &key, &salt, V3_GOLDEN_GENERATION, 3).unwrap()
    };
    let cfg = bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding();
    let entries: Vec<(String, Entry)> = data.entries.clone().into_iter().collect();
    let removed: Vec<(String, Vec<RemovedEntry>)> = data.removed.clone().into_iter().collect();
    // Secrets serialize only inside an `exposing` scope, as in the vault's own encoder.
    let encode = |settings: &Settings, removed: &[(String, Vec<RemovedEntry>)]| {
        exposing(|| bincode::serde::encode_to_vec((settings, &entries, removed), cfg)).unwrap()
    };
    assert_eq!(
        encode(&data.settings, &removed),
        format::encode_payload(&data, format::PASSPHRASE_FORMAT_VERSION)
            .unwrap()
            .to_vec(),
        "Vecs of pairs encode as the maps do"
    );
    let (name, copies) = removed[0].clone();
    let mut two = vec![
        ("acme-zz/later".to_owned(), copies.clone()),
        (name.clone(), copies.clone()),
    ];
    put(
        "v3-unsorted-removed.sfv",
        &sealed(encode(&data.settings, &two)),
        6,
        "strictly ascending",
    );
    two[0].0 = name.clone();
    put(
        "v3-repeated-removed.sfv",
        &sealed(encode(&data.settings, &two)),
        6,
        "strictly ascending",
    );
    put(
        "v3-removed-no-copies.sfv",
        &sealed(encode(&data.settings, &[(name.clone(), Vec::new())])),
        6,
        "has 0 copies",
    );
    let six: Vec<RemovedEntry> = (0..6).map(|_| copies[0].clone()).collect();
    put(
        "v3-removed-six-copies.sfv",
        &sealed(encode(&data.settings, &[(name.clone(), six)])),
        6,
        "has 6 copies",
    );
    let mut newest_first = copies.clone();
    newest_first.reverse();
    put(
        "v3-removed-newest-first.sfv",
        &sealed(encode(&data.settings, &[(name.clone(), newest_first)])),
        6,
        "not oldest first",
    );
    put(
        "v3-removed-bad-name.sfv",
        &sealed(encode(
            &data.settings,
            &[("acme dev/old".to_owned(), copies)],
        )),
        6,
        "invalid address",
    );
    let long = Settings {
        removed_days: 3651,
        ..data.settings.clone()
    };
    put(
        "v3-removed-days-3651.sfv",
        &sealed(encode(&long, &removed)),
        6,
        "removed_days 3651",
    );
    let mut trailing = format::encode_payload(&data, format::PASSPHRASE_FORMAT_VERSION)
        .unwrap()
        .to_vec();
    trailing.push(0);
    put(
        "v3-trailing-plaintext.sfv",
        &sealed(trailing),
        6,
        "unexpected bytes after the payload",
    );
    fs::write(broken.join("EXPECTED-v3.txt"), list).unwrap();
}
