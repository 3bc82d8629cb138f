//! Rotation, history, audit and backups, through the real binary. Time is injected by writing
//! vault fixtures with the library (fields changed 40 days ago), so the binary has no clock hook.

mod support;

use std::fs;

use serde_json::Value;
use sfvault::secret::SecretString;
use sfvault::vault::model::{VaultData, now};
use sfvault::vault::{EntryName, KdfParams, Store, VaultKey};
use support::*;

const DAY: i64 = 86_400;

#[test]
fn seven_changes_keep_five_past_values_and_restore_2_brings_back_the_right_one() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    for i in 0..7 {
        tv.ok_stdin(
            &["set", "acme/ci", "consumer_secret", "-"],
            format!("secret-{i}").as_bytes(),
        );
    }
    let h: Value =
        serde_json::from_str(&tv.ok(&["history", "acme/ci", "consumer_secret", "--json"])).unwrap();
    let items = h.as_array().unwrap();
    assert_eq!(items.len(), 6, "current + 5 past");
    assert!(
        items.iter().all(|i| i["value"].is_null()),
        "history showed secret values without --reveal"
    );
    for i in &items[1..] {
        assert!(
            i["changed_at"].as_str().unwrap().ends_with('Z')
                && i["replaced_at"].as_str().unwrap().ends_with('Z')
        );
    }
    let revealed: Value = serde_json::from_str(&tv.ok(&[
        "history",
        "acme/ci",
        "consumer_secret",
        "--json",
        "--reveal",
    ]))
    .unwrap();
    let values: Vec<&str> = revealed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        [
            "secret-6", "secret-5", "secret-4", "secret-3", "secret-2", "secret-1"
        ]
    );
    tv.ok(&["set", "acme/ci", "consumer_secret", "--restore", "2"]);
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "secret-4");
    tv.fails(&["set", "acme/ci", "consumer_secret", "--restore", "9"], 3);
    // rotate keeps the old value and says where Salesforce regenerates it.
    let out = tv.run(
        &["rotate", "acme/ci", "consumer_secret"],
        Some(b"secret-new"),
    );
    assert_success(&out, &["rotate"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Manage Consumer Details"));
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "secret-new");
    tv.fails(&["rotate", "acme/ci", "consumer_key"], 2);
    // The history limit is a vault setting; lowering it deletes past values, so it must be
    // confirmed (no terminal here: --yes), and nothing changes without it.
    let err = tv.fails(&["config", "history-limit", "2"], 2);
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(
        tv.ok(&["config", "history-limit"]).trim(),
        "history-limit 5"
    );
    tv.ok(&["config", "history-limit", "2", "--yes"]);
    assert_eq!(
        tv.ok(&["config", "history-limit"]).trim(),
        "history-limit 2"
    );
    let h: Value =
        serde_json::from_str(&tv.ok(&["history", "acme/ci", "consumer_secret", "--json"])).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 3);
}

/// (entry, kind) of each finding in an `audit --json` report.
fn findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["entry"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Write a vault at `tv.vault` whose contents were made at chosen times.
fn fixture(tv: &TestVault, kdf: KdfParams, build: impl FnOnce(&mut VaultData)) {
    let mut data = VaultData::default();
    build(&mut data);
    let key = VaultKey::generate(&SecretString::new(PASSPHRASE.into()), kdf).unwrap();
    Store::new(&tv.vault, std::time::Duration::from_secs(5))
        .create(&data, &key)
        .unwrap();
}

fn add(data: &mut VaultData, entry: &str, at: i64, fields: &[(&str, &str)], used: bool) {
    let name = EntryName::parse(entry).unwrap();
    data.add_entry(&name, at).unwrap();
    for (f, v) in fields {
        let secret = sfvault::vault::fields::secret_by_default(f);
        data.set_field(&name, f, SecretString::new((*v).into()), secret, at)
            .unwrap();
    }
    if used {
        let names: Vec<String> = fields.iter().map(|(f, _)| (*f).to_owned()).collect();
        data.mark_used(&name, &names, now()).unwrap();
    }
}

fn cc(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("consumer_key", "3MVG9key".into()),
        ("consumer_secret", secret.into()),
        ("login_url", "https://acme.my.salesforce.com".into()),
        ("flow", "client-credentials".into()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn audit_flags_exactly_the_stale_entries_and_a_clean_vault_passes() {
    let now = now();
    let tv = TestVault::empty();
    let (old_secret, fresh_secret) = (canary("old"), canary("fresh"));
    fixture(&tv, KdfParams::DEFAULT, |d| {
        add(
            d,
            "acme-prod/ci",
            now - 40 * DAY,
            &as_refs(&cc(&old_secret)),
            true,
        );
        add(
            d,
            "acme-uat/ci",
            now - 45 * DAY,
            &as_refs(&cc(&old_secret)),
            true,
        );
        add(
            d,
            "acme-dev1/ci",
            now - 10 * DAY,
            &as_refs(&cc(&fresh_secret)),
            true,
        );
    });
    let out = tv.run(&["audit", "--max-age", "30d", "--json"], None);
    assert_code(&out, 1, &["audit stale"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains(&old_secret) && !text.contains(&fresh_secret),
        "audit printed a secret"
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    let mut stale = findings(&report);
    stale.sort();
    assert_eq!(
        stale,
        [
            ("acme-prod/ci".to_owned(), "stale".to_owned()),
            ("acme-uat/ci".to_owned(), "stale".to_owned())
        ]
    );
    // With a 60-day limit the same vault is clean.
    assert_success(
        &tv.run(&["audit", "--max-age", "60d"], None),
        &["audit clean"],
    );
    // list --json shows ages.
    let list: Value = serde_json::from_str(&tv.ok(&["list", "--json"])).unwrap();
    let prod = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"] == "acme-prod/ci")
        .unwrap();
    assert_eq!(prod["fields"]["consumer_secret"]["age_days"], 40);
    assert!(!list.to_string().contains(&old_secret));
}

#[test]
fn audit_finds_missing_weak_expiring_unused_insecure_and_a_weak_kdf() {
    let now = now();
    let tv = TestVault::empty();
    // A 1024-bit key, too weak for Salesforce.
    let weak = {
        use rsa::pkcs8::EncodePrivateKey;
        let k = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let der = k.to_pkcs8_der().unwrap();
        sfvault::oauth::pem::encode("PRIVATE KEY", der.as_bytes()).to_string()
    };
    fixture(&tv, KdfParams::MINIMUM, |d| {
        add(
            d,
            "a/jwt-missing",
            now,
            &[("consumer_key", "k"), ("flow", "jwt")],
            true,
        );
        add(
            d,
            "a/weak",
            now,
            &[
                ("consumer_key", "k"),
                ("username", "u"),
                ("flow", "jwt"),
                ("private_key", &weak),
            ],
            true,
        );
        add(d, "a/unused", now - 20 * DAY, &as_refs(&cc("s")), false);
        add(
            d,
            "a/http",
            now,
            &[
                ("consumer_key", "k"),
                ("consumer_secret", "s"),
                ("flow", "client-credentials"),
                ("login_url", "http://127.0.0.1:9"),
            ],
            true,
        );
    });
    // A certificate that expires in 10 days, via keygen.
    tv.ok(&[
        "add",
        "a/expiring",
        "--consumer-key",
        "k",
        "--username",
        "u",
        "--flow",
        "jwt",
        "--no-secret",
    ]);
    tv.ok(&["keygen", "a/expiring", "--days", "10"]);
    let out = tv.run(&["audit", "--json"], None);
    assert_code(&out, 1, &["audit"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = findings(&report);
    for want in [
        ("(vault)", "weak-kdf"),
        ("a/jwt-missing", "missing"),
        ("a/weak", "weak-key"),
        ("a/unused", "never-used"),
        ("a/http", "insecure-login-url"),
        ("a/expiring", "certificate-expiring"),
    ] {
        assert!(
            found.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {found:?}"
        );
    }
    let human = tv.run(&["audit"], None);
    assert_code(&human, 1, &["audit human"]);
    assert!(!String::from_utf8_lossy(&human.stdout).contains("PRIVATE KEY"));
}

#[test]
fn backup_then_damage_then_restore_and_a_damaged_backup_is_refused() {
    let tv = TestVault::new();
    for i in 0..5 {
        tv.ok_stdin(
            &[
                "add",
                &format!("acme/app{i}"),
                "--consumer-key",
                &format!("K{i}"),
            ],
            format!("S{i}").as_bytes(),
        );
    }
    let backup = tv.home.join("backup.sfv");
    tv.ok(&["backup", backup.to_str().unwrap()]);
    tv.fails(&["backup", backup.to_str().unwrap()], 1); // no overwrite without --force
    tv.ok(&["backup", backup.to_str().unwrap(), "--force"]);
    // Into a directory others may write to: written (it is encrypted), with a warning and
    // no advice to open it there, which sfvault would refuse.
    let shared = tv.root.path().join("shared");
    fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let exposed = shared.join("backup.sfv");
    let out = tv.run(&["backup", exposed.to_str().unwrap()], None);
    assert_success(&out, &["backup into a shared dir"]);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("not a private directory") && !note.contains("list"),
        "{note}"
    );
    assert_eq!(fs::read(&exposed).unwrap(), fs::read(&backup).unwrap());
    let out = tv.run(&["backup", backup.to_str().unwrap(), "--force"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Check it with"));
    // Damage the vault.
    let bytes = fs::read(&tv.vault).unwrap();
    fs::write(&tv.vault, &bytes[..bytes.len() / 2]).unwrap();
    tv.fails(&["list"], 6);
    // A damaged backup is refused and the (damaged) vault is left exactly as it was.
    let bad = tv.home.join("bad.sfv");
    let mut b = fs::read(&backup).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    write_private(&bad, &b);
    let before = fs::read(&tv.vault).unwrap();
    tv.fails(&["restore", bad.to_str().unwrap()], 6);
    assert_eq!(fs::read(&tv.vault).unwrap(), before);
    // The good backup restores every entry.
    tv.ok(&["restore", backup.to_str().unwrap()]);
    for i in 0..5 {
        assert_eq!(
            tv.get(&format!("acme/app{i}"), "consumer_secret"),
            format!("S{i}")
        );
    }
    assert_eq!(
        fs::read(tv.vault.with_file_name("vault.sfv.bak")).unwrap(),
        before,
        ".bak is the replaced file"
    );
    // A backup under another passphrase opens with that one only.
    let other = tv.home.join("other.sfv");
    let pass2 = tv.root.path().join("pass2");
    write_private(&pass2, b"backup passphrase\n");
    let mut sh = std::process::Command::new("/bin/sh");
    sh.env_clear();
    for (k, v) in tv.cmd().get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.env("BIN", env!("CARGO_BIN_EXE_sfvault"))
        .env("P2", &pass2)
        .env("OUT", &other);
    let out = run_cmd(
        sh,
        &[
            "-c",
            "\"$BIN\" backup \"$OUT\" --backup-passphrase-fd 4 4<\"$P2\"",
        ],
        None,
    );
    assert_success(&out, &["backup with another passphrase"]);
    tv.fails(&["--vault", other.to_str().unwrap(), "list"], 4);
    let mut c = tv.bare_cmd();
    c.env("SFVAULT_PASSPHRASE_FILE", &pass2);
    let out = run_cmd(
        c,
        &[
            "--vault",
            other.to_str().unwrap(),
            "get",
            "-n",
            "acme/app3",
            "consumer_secret",
        ],
        None,
    );
    assert_success(&out, &["open other backup"]);
    assert_eq!(out.stdout, b"S3");
}
