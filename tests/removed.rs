//! Removed entries (#17): `rm` keeps an entry for `undelete` (format version 3), `list --removed`,
//! `rm --purge`, `config removed-days` and the retention; names that differ only by case; backups
//! into a directory. Through the real binary.

mod support;

use std::fs;
use std::path::Path;

use serde_json::Value;
use sfvault::secret::SecretString;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::{RemovedEntry, VaultData, now};
use sfvault::vault::{EntryName, KdfParams, Store};
use support::*;

/// A vault with `acme/ci`: public and secret fields, a secret with two past values.
fn with_entry() -> TestVault {
    let tv = TestVault::new();
    tv.ok_stdin(
        &[
            "add",
            "acme/ci",
            "--consumer-key",
            "3MVG9key",
            "--username",
            "ci@acme.example",
            "--flow",
            "client-credentials",
        ],
        b"secret-one",
    );
    tv.ok_stdin(&["set", "acme/ci", "consumer_secret", "-"], b"secret-two");
    tv.ok_stdin(&["set", "acme/ci", "consumer_secret", "-"], b"secret-three");
    tv.ok(&["set", "acme/ci", "notes", "weekly", "--public"]);
    tv
}

/// What an entry is, as the binary shows it: every field with its dates and every past value.
fn everything(tv: &TestVault, entry: &str) -> (Value, Value) {
    let show: Value = serde_json::from_str(&tv.ok(&["show", entry, "--reveal", "--json"])).unwrap();
    let history: Value =
        serde_json::from_str(&tv.ok(&["history", entry, "--reveal", "--json"])).unwrap();
    (show, history)
}

/// The vault file's contents, opened with the library.
fn contents(path: &Path) -> VaultData {
    let bytes = fs::read(path).unwrap();
    format::open(&bytes, &SecretString::new(PASSPHRASE.into()))
        .unwrap()
        .0
}

#[test]
fn rm_then_undelete_restores_every_field_and_its_history() {
    let tv = with_entry();
    let before = everything(&tv, "acme/ci");
    let out = tv.run(&["rm", "acme/ci", "--yes"], None);
    assert_success(&out, &["rm"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Removed acme/ci (kept for 30 days: `sfvault undelete acme/ci`)"),
        "{said}"
    );
    // Kept in the vault, encrypted: the file is version 3 and holds it under `removed`.
    let header = format::parse_header(&fs::read(&tv.vault).unwrap()).unwrap();
    assert_eq!(header.version, 3);
    let data = contents(&tv.vault);
    assert!(data.entries.is_empty());
    assert_eq!(data.removed["acme/ci"].len(), 1);
    assert!(!contains(&fs::read(&tv.vault).unwrap(), b"secret-three"));

    tv.ok(&["undelete", "acme/ci"]);
    let mut after = everything(&tv, "acme/ci");
    let mut before = before;
    // `show` ages move with the clock; everything else is the same.
    for v in [&mut before.0, &mut after.0] {
        for f in v["fields"].as_object_mut().unwrap().values_mut() {
            f.as_object_mut().unwrap().remove("age_days");
        }
    }
    assert_eq!(after, before);
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "secret-three");
    assert!(contents(&tv.vault).removed.is_empty());
    // Nothing left to bring back.
    let err = tv.fails(&["undelete", "acme/ci"], 3);
    assert!(err.contains("sfvault list --removed"), "{err}");
}

#[test]
fn undelete_after_several_saves_and_a_passwd() {
    let tv = with_entry();
    tv.ok(&["rm", "acme/ci", "--yes"]);
    for i in 0..4 {
        tv.ok(&["add", &format!("acme/app{i}"), "--no-secret"]);
    }
    tv.ok(&["rm", "acme/app0", "--yes"]);
    let new_pass = tv.root.path().join("new-pass");
    write_private(&new_pass, b"a brand new passphrase\n");
    let mut cmd = tv.cmd();
    cmd.env("SFVAULT_NEW_PASSPHRASE_FILE", &new_pass);
    assert_success(&run_cmd(cmd, &["passwd"], None), &["passwd"]);
    write_private(&tv.pass_file, b"a brand new passphrase\n");
    tv.ok(&["set", "acme/app1", "notes", "after passwd", "--public"]);

    let listed: Value = serde_json::from_str(&tv.ok(&["list", "--removed", "--json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entry"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme/app0", "acme/ci"]);
    tv.ok(&["undelete", "acme/ci"]);
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "secret-three");
    let history: Value = serde_json::from_str(&tv.ok(&[
        "history",
        "acme/ci",
        "consumer_secret",
        "--reveal",
        "--json",
    ]))
    .unwrap();
    let values: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["secret-three", "secret-two", "secret-one"]);
}

#[test]
fn list_removed_shows_dates_never_values() {
    let tv = with_entry();
    tv.ok(&["rm", "acme/ci", "--yes"]);
    let table = tv.ok(&["list", "--removed"]);
    assert!(table.contains("acme/ci"), "{table}");
    assert!(table.contains("client-credentials"), "{table}");
    let json = tv.ok(&["list", "--removed", "--json"]);
    let items: Value = serde_json::from_str(&json).unwrap();
    let item = &items[0];
    assert_eq!(item["entry"], "acme/ci");
    assert!(item["removed_at"].as_str().unwrap().ends_with('Z'));
    assert!(item["kept_until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(item["fields"].as_array().unwrap().len(), 5);
    for text in [&table, &json] {
        for secret in ["secret-one", "secret-two", "secret-three"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    // A pattern filters as `list` does.
    assert!(tv.ok(&["list", "--removed", "other"]).is_empty());
}

#[test]
fn removed_entries_are_not_entries_anywhere() {
    let tv = with_entry();
    tv.ok(&["add", "acme/other", "--no-secret"]);
    tv.ok(&["rm", "acme/ci", "--yes"]);
    let list = tv.ok(&["list"]);
    assert!(!list.contains("acme/ci"), "{list}");
    let json: Value = serde_json::from_str(&tv.ok(&["list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    tv.fails(&["show", "acme/ci"], 3);
    tv.fails(&["get", "acme/ci", "consumer_secret"], 3);
    tv.fails(&["history", "acme/ci"], 3);
    tv.fails(&["export", "acme/ci", "--format", "env", "--no-token"], 3);
    let out = tv.run(
        &["inject"],
        Some(b"x={{ sfvault://acme/ci/consumer_secret }}\n"),
    );
    assert_code(&out, 3, &["inject"]);
    let mut cmd = tv.cmd();
    cmd.env("SECRET", "sfvault://acme/ci/consumer_secret");
    assert_code(&run_cmd(cmd, &["run", "--", "true"], None), 3, &["run"]);
    let out = tv.run(&["--json", "audit"], None);
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audit["entries"], 1, "{audit}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("acme/ci"));
    // Nor is it a name that blocks: a new acme/ci may be added, and removed again.
    tv.ok(&["add", "acme/ci", "--no-secret"]);
    tv.ok(&["rm", "acme/ci", "--yes"]);
    assert_eq!(contents(&tv.vault).removed["acme/ci"].len(), 2);
}

#[test]
fn undelete_refuses_a_taken_name_and_brings_it_back_as_another() {
    let tv = with_entry();
    tv.ok(&["rm", "acme/ci", "--yes"]);
    tv.ok(&["add", "acme/ci", "--no-secret"]);
    let err = tv.fails(&["undelete", "acme/ci"], 2);
    assert!(err.contains("--as"), "{err}");
    tv.ok(&["undelete", "acme/ci", "--as", "acme/ci-old"]);
    assert_eq!(tv.get("acme/ci-old", "consumer_secret"), "secret-three");
    assert_eq!(tv.get("acme/ci-old", "consumer_key"), "3MVG9key");
    // --as a name that differs only by case from an entry: refused too.
    tv.ok(&["rm", "acme/ci", "--yes"]);
    let err = tv.fails(&["undelete", "acme/ci", "--as", "ACME/CI-OLD"], 2);
    assert!(err.contains("acme/ci-old"), "{err}");
}

#[test]
fn rm_purge_destroys_the_entry_its_removed_copies_and_the_bak_copy() {
    let tv = with_entry();
    tv.ok(&["rm", "acme/ci", "--yes"]);
    tv.ok_stdin(&["add", "acme/ci", "--consumer-key", "k2"], b"secret-four");
    // Without a terminal, a purge needs --yes.
    tv.fails(&["rm", "--purge", "acme/ci"], 2);
    let out = tv.run(&["rm", "--purge", "acme/ci", "--yes"], None);
    assert_success(&out, &["rm --purge"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("for good"), "{said}");
    let bak = tv.vault.with_extension("sfv.bak");
    for file in [&tv.vault, &bak] {
        let data = contents(file);
        assert!(!data.entries.contains_key("acme/ci"), "{}", file.display());
        assert!(data.removed.is_empty(), "{}", file.display());
    }
    tv.fails(&["undelete", "acme/ci"], 3);
    // Purged again: nothing in the vault holds it, so .bak is replaced once more, and said so.
    let out = tv.run(&["rm", "--purge", "acme/ci", "--yes", "--json"], None);
    assert_success(&out, &["rm --purge again"]);
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["purged"], false, "{said}");
    assert_eq!(said["backup_replaced"], true, "{said}");
}

#[test]
fn removed_days_zero_keeps_nothing_and_lowering_asks() {
    let tv = with_entry();
    tv.ok(&["add", "acme/two", "--no-secret"]);
    tv.ok(&["rm", "acme/two", "--yes"]);
    assert_eq!(tv.ok(&["config", "removed-days"]), "removed-days 30\n");
    // Lowering drops what is kept: confirmed, or --yes.
    let err = tv.fails(&["config", "removed-days", "0"], 2);
    assert!(err.contains("--yes"), "{err}");
    tv.fails(&["config", "removed-days", "3651"], 2);
    tv.ok(&["config", "removed-days", "0", "--yes"]);
    assert!(contents(&tv.vault).removed.is_empty());
    let out = tv.run(&["rm", "acme/ci", "--yes"], None);
    assert_success(&out, &["rm"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed-days is 0"));
    assert!(contents(&tv.vault).removed.is_empty());
    tv.fails(&["undelete", "acme/ci"], 3);
    tv.ok(&["config", "removed-days", "7"]);
    assert_eq!(contents(&tv.vault).settings.removed_days, 7);
}

#[test]
fn copies_past_the_retention_are_not_shown_and_are_dropped_at_the_next_save() {
    let tv = TestVault::empty();
    let day = 86_400;
    let t = now();
    let mut data = VaultData::default();
    let entry = |at: i64| {
        let mut d = VaultData::default();
        let n = EntryName::parse("acme/x").unwrap();
        d.add_entry(&n, at).unwrap();
        d.remove_entry(&n).unwrap()
    };
    data.removed.insert(
        "acme/old".into(),
        vec![RemovedEntry {
            removed_at: t - 31 * day,
            entry: entry(t - 40 * day),
        }],
    );
    data.removed.insert(
        "acme/recent".into(),
        vec![
            RemovedEntry {
                removed_at: t - 45 * day,
                entry: entry(t - 50 * day),
            },
            RemovedEntry {
                removed_at: t - 29 * day,
                entry: entry(t - 50 * day),
            },
        ],
    );
    let key =
        VaultKey::generate(&SecretString::new(PASSPHRASE.into()), KdfParams::MINIMUM).unwrap();
    Store::new(&tv.vault, std::time::Duration::from_secs(5))
        .create(&data, &key)
        .unwrap();

    let listed: Value = serde_json::from_str(&tv.ok(&["list", "--removed", "--json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entry"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme/recent"]);
    tv.fails(&["undelete", "acme/old"], 3);
    // Reading dropped nothing; the next save does.
    assert_eq!(contents(&tv.vault).removed.len(), 2);
    tv.ok(&["add", "acme/new", "--no-secret"]);
    let data = contents(&tv.vault);
    assert_eq!(data.removed.keys().collect::<Vec<_>>(), ["acme/recent"]);
    assert_eq!(data.removed["acme/recent"].len(), 1);
    assert_eq!(data.removed["acme/recent"][0].removed_at, t - 29 * day);
}

#[test]
fn at_most_five_copies_under_one_name() {
    let tv = TestVault::new();
    for i in 0..7 {
        tv.ok(&[
            "add",
            "acme/ci",
            "--consumer-key",
            &format!("k{i}"),
            "--no-secret",
        ]);
        tv.ok(&["rm", "acme/ci", "--yes"]);
    }
    let copies = &contents(&tv.vault).removed["acme/ci"];
    assert_eq!(copies.len(), 5);
    tv.ok(&["undelete", "acme/ci"]);
    assert_eq!(tv.get("acme/ci", "consumer_key"), "k6");
}

#[test]
fn names_that_differ_only_by_case_are_refused() {
    let tv = TestVault::new();
    tv.ok(&["add", "ACME-Prod/CI", "--no-secret"]);
    let err = tv.fails(&["add", "acme-prod/ci", "--no-secret"], 2);
    assert!(err.contains("ACME-Prod/CI"), "{err}");
    tv.ok(&["add", "acme-prod/backup", "--no-secret"]);
    let err = tv.fails(&["mv", "acme-prod/backup", "Acme-Prod/ci"], 2);
    assert!(err.contains("ACME-Prod/CI"), "{err}");
    let out = tv.run(
        &["import", "acme-prod/Ci", "--format", "dotenv"],
        Some(b"SF_CONSUMER_KEY=3MVG9x\n"),
    );
    assert_code(&out, 2, &["import"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ACME-Prod/CI"));
    // Renaming an entry to another case of its own name is fine.
    tv.ok(&["mv", "ACME-Prod/CI", "acme-prod/ci"]);
    let list = tv.ok(&["list"]);
    assert!(
        list.contains("acme-prod/ci") && !list.contains("ACME-Prod/CI"),
        "{list}"
    );
}

#[test]
fn a_vault_that_already_holds_a_case_pair_still_opens() {
    let tv = TestVault::empty();
    let mut data = VaultData::default();
    for name in ["ACME/ci", "acme/ci"] {
        data.add_entry(&EntryName::parse(name).unwrap(), 1).ok();
    }
    // `add_entry` refuses the second now: put it in as an older version would have.
    if !data.entries.contains_key("acme/ci") {
        let mut other = VaultData::default();
        let n = EntryName::parse("acme/ci").unwrap();
        other.add_entry(&n, 1).unwrap();
        data.entries
            .insert("acme/ci".into(), other.remove_entry(&n).unwrap());
    }
    let key =
        VaultKey::generate(&SecretString::new(PASSPHRASE.into()), KdfParams::MINIMUM).unwrap();
    Store::new(&tv.vault, std::time::Duration::from_secs(5))
        .create(&data, &key)
        .unwrap();
    let list = tv.ok(&["list"]);
    assert!(
        list.contains("ACME/ci") && list.contains("acme/ci"),
        "{list}"
    );
    tv.ok(&["set", "acme/ci", "notes", "still works", "--public"]);
}

#[test]
fn backup_into_a_directory_and_into_a_missing_one() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--no-secret"]);
    let dir = tv.home.join("backups");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for arg in [format!("{}/", dir.display()), dir.display().to_string()] {
        let out = tv.run(&["backup", &arg, "--force"], None);
        assert_success(&out, &["backup", &arg]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains("Is a directory"), "{said}");
    }
    let files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!files.is_empty());
    for f in &files {
        // vault-YYYYMMDDTHHMMSSZ.sfv
        assert!(
            f.starts_with("vault-2") && f.ends_with("Z.sfv") && !f.contains(':'),
            "{f}"
        );
        let mut cmd = tv.cmd();
        cmd.args(["--vault", dir.join(f).to_str().unwrap()]);
        let out = run_cmd(cmd, &["list"], None);
        assert_success(&out, &["list of the backup"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("acme/ci"));
    }

    let missing = tv.home.join("nope/deeper");
    for arg in [
        format!("{}/x.sfv", missing.display()),
        format!("{}/", missing.display()),
    ] {
        let err = tv.fails(&["backup", &arg], 2);
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        // Never a temporary file's name (`.x.sfv.XXXXXX.tmp`).
        assert!(!err.contains(".x.sfv."), "{err}");
    }
    assert!(!missing.exists());
}

#[test]
fn the_v3_golden_vault_brings_back_its_removed_entry() {
    let tv = TestVault::empty();
    let copy = tv.home.join("golden.sfv");
    let golden =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v3-golden.sfv"))
            .unwrap();
    write_private(&copy, &golden);
    let golden_cmd = |args: &[&str]| {
        let mut cmd = tv.bare_cmd();
        cmd.env("SFVAULT_PASSPHRASE", "correct horse battery staple");
        let mut all = vec!["--vault", copy.to_str().unwrap()];
        all.extend_from_slice(args);
        run_cmd(cmd, &all, None)
    };
    let out = golden_cmd(&["list", "--removed", "--json"]);
    assert_success(&out, &["list --removed"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_success(&golden_cmd(&["undelete", "acme-dev/old"]), &["undelete"]);
    let out = golden_cmd(&["get", "-n", "acme-dev/old", "consumer_secret"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "removed-secret-2");
}

#[test]
fn undelete_and_list_removed_through_the_agent() {
    let tv = with_entry();
    tv.ok(&["unlock", "--timeout", "5m"]);
    // From here on no passphrase source: only the agent can answer.
    let agent = |args: &[&str]| run_cmd(tv.bare_cmd(), args, None);
    assert_success(&agent(&["rm", "acme/ci", "--yes"]), &["rm"]);
    let out = agent(&["list", "--removed"]);
    assert_success(&out, &["list --removed"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("acme/ci"));
    assert_success(&agent(&["undelete", "acme/ci"]), &["undelete"]);
    let out = agent(&["get", "-n", "acme/ci", "consumer_secret"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secret-three");
    assert_success(&agent(&["rm", "--purge", "acme/ci", "--yes"]), &["purge"]);
    assert_success(&agent(&["config", "removed-days", "3"]), &["config"]);
    tv.ok(&["lock"]);
    assert_eq!(contents(&tv.vault).settings.removed_days, 3);
}
