//! Review of #17: defects found by an independent review, each shown through the real binary.

mod support;

use sfvault::secret::SecretString;
use sfvault::vault::model::{RemovedEntry, VaultData, now};
use sfvault::vault::{EntryName, KdfParams, Store, VaultKey};
use support::*;

/// A removed copy whose time is later than this machine's clock (the vault was last saved on a
/// machine whose clock was ahead, or the clock was set back): removing the same name again must
/// not write a vault that no longer opens ("copies not oldest first" is refused on decode).
#[test]
fn rm_after_the_clock_went_back_leaves_a_vault_that_opens() {
    let tv = TestVault::empty();
    let mut data = VaultData::default();
    let n = EntryName::parse("acme/ci").unwrap();
    let ahead = now() + 3600;
    data.add_entry(&n, ahead - 60).unwrap();
    let old = data.remove_entry(&n).unwrap();
    data.removed.insert(
        "acme/ci".into(),
        vec![RemovedEntry {
            removed_at: ahead,
            entry: old,
        }],
    );
    let key =
        VaultKey::generate(&SecretString::new(PASSPHRASE.into()), KdfParams::MINIMUM).unwrap();
    Store::new(&tv.vault, std::time::Duration::from_secs(5))
        .create(&data, &key)
        .unwrap();

    tv.ok(&["add", "acme/ci", "--consumer-key", "newest", "--no-secret"]);
    tv.ok(&["rm", "acme/ci", "--yes"]);
    // The vault still opens, and the copy just removed is the one undelete brings back.
    tv.ok(&["list"]);
    tv.ok(&["undelete", "acme/ci"]);
    assert_eq!(tv.get("acme/ci", "consumer_key"), "newest");
}

/// `sfvault ARGS` on a new terminal (stdin too), no passphrase source, output piped.
fn on_terminal(tv: &TestVault, args: &[&str]) -> support::pty::PtyChild {
    let mut cmd = tv.bare_cmd();
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    support::pty::PtyChild::spawn(cmd, None)
}

/// Paste `pem` on the terminal as a person would (lines ended by Enter), then Ctrl-D on the
/// empty line after it.
fn paste(t: &mut support::pty::PtyChild, pem: &str) {
    t.send(format!("{}\r", pem.replace('\n', "\r")).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(200));
    t.send(b"\x04");
}

/// `set ORG/APP private_key -` with the terminal as stdin: SECURITY.md says it prompts hidden
/// instead of an echoed read, but a PEM was read with echo on, so the private key was shown on
/// the screen (and kept in the terminal's scrollback).
#[test]
fn a_private_key_pasted_for_set_dash_is_not_echoed() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let body = canary("pasted-dash");
    let pem = fake_pem(&body);
    let mut t = on_terminal(&tv, &["set", "acme/ci", "private_key", "-"]);
    t.expect("Passphrase for ");
    t.line(PASSPHRASE);
    t.expect("Ctrl-D");
    paste(&mut t, &pem);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert!(!t.screen().contains(&body), "echoed: {}", t.screen());
    assert!(t.echo_on());
    assert_eq!(tv.get("acme/ci", "private_key"), pem);
}

/// `set ORG/APP private_key` (no value) on a terminal: the hidden prompt read one line of the
/// pasted PEM, and the rest of the key stayed in the terminal's input for the shell to run as
/// commands (and keep in its history file).
#[test]
fn a_private_key_pasted_at_the_set_prompt_is_read_whole() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let body = canary("pasted-prompt");
    let pem = fake_pem(&body);
    let mut t = on_terminal(&tv, &["set", "acme/ci", "private_key"]);
    t.expect("Passphrase for ");
    t.line(PASSPHRASE);
    t.expect("private_key for acme/ci");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!t.echo_on(), "the key would be echoed");
    paste(&mut t, &pem);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert!(!t.screen().contains(&body), "echoed: {}", t.screen());
    assert_eq!(tv.get("acme/ci", "private_key"), pem);
}

/// `import` with the terminal as stdin: the hint (#17 item 8) says to paste, but what is pasted
/// (a consumer secret, an SFDX auth URL with its refresh token) was echoed on the screen.
#[test]
fn secrets_pasted_for_import_are_not_echoed() {
    let tv = TestVault::new();
    let secret = canary("import-paste");
    let mut t = on_terminal(&tv, &["import", "acme/ci", "--format", "dotenv"]);
    // The hint goes to stderr (piped here); give sfvault a moment to be reading.
    let started = std::time::Instant::now();
    while t.echo_on() && started.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    paste(
        &mut t,
        &format!("SF_CONSUMER_KEY=3MVG9key\nSF_CONSUMER_SECRET={secret}"),
    );
    t.expect("Passphrase for ");
    t.line(PASSPHRASE);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert!(!t.screen().contains(&secret), "echoed: {}", t.screen());
    assert!(t.echo_on());
    assert_eq!(tv.get("acme/ci", "consumer_secret"), secret);
}

/// `rm` with removed-days 0 says the previous version is in `.bak`; `rm --purge` is the
/// documented way to destroy a leaked secret "also in vault.sfv.bak", but once nothing is kept
/// it answers "no entry" (exit 3) and leaves the secret in `.bak`.
#[test]
fn purge_after_rm_with_nothing_kept_clears_the_bak_copy() {
    let tv = TestVault::new();
    tv.ok(&["config", "removed-days", "0", "--yes"]);
    let secret = canary("purge-bak");
    tv.ok_stdin(
        &["add", "acme/leak", "--consumer-key", "K"],
        secret.as_bytes(),
    );
    tv.ok(&["rm", "acme/leak", "--yes"]);
    let bak = tv.vault.with_extension("sfv.bak");
    let held = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        let data = sfvault::vault::format::open(&bytes, &SecretString::new(PASSPHRASE.into()))
            .unwrap()
            .0;
        data.entries.contains_key("acme/leak")
    };
    assert!(
        held(&bak),
        "the test's premise: .bak holds the removed entry"
    );
    let out = tv.run(&["rm", "--purge", "acme/leak", "--yes"], None);
    assert_success(&out, &["rm", "--purge"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no earlier version"), "{said}");
    assert!(!held(&bak), ".bak still holds the secret after rm --purge");
    // A name that never existed, with no .bak to clear, stays an error.
    std::fs::remove_file(&bak).unwrap();
    let out = tv.run(&["rm", "--purge", "acme/never", "--yes"], None);
    assert_code(&out, 3, &["rm", "--purge", "acme/never"]);
}
