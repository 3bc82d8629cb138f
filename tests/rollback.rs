//! Rollback: an older authentic copy put back in place (the `.bak`, an old backup, a synced
//! folder going back in time) is refused with exit 6, by the CLI and by a running agent;
//! `restore` is the deliberate way back; what a machine never saw it cannot know.

mod support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;

/// A vault with one entry whose `username` went a -> b; returns the world and a copy of the
/// file as it was when `username` was `a`.
fn vault_with_an_older_copy() -> (TestVault, Vec<u8>) {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    tv.ok(&["set", "acme/ci", "username", "a"]);
    let older = fs::read(&tv.vault).unwrap();
    tv.ok(&["set", "acme/ci", "username", "b"]);
    (tv, older)
}

/// Put `bytes` in place of the vault the way a sync tool or `cp` would (a new 0600 file).
fn put_back(tv: &TestVault, bytes: &[u8]) {
    let staging = tv.vault.with_extension("put-back");
    write_private(&staging, bytes);
    fs::rename(&staging, &tv.vault).unwrap();
}

fn marks_dir(tv: &TestVault) -> PathBuf {
    tv.home.join(".local/state/sfvault/seen")
}

#[test]
fn an_older_copy_and_the_bak_are_refused_with_exit_6() {
    let (tv, older) = vault_with_an_older_copy();
    assert_eq!(tv.get("acme/ci", "username"), "b");
    let started = Instant::now();
    put_back(&tv, &older);
    let err = tv.fails(&["get", "acme/ci", "username"], 6);
    assert!(
        err.contains("older copy of this vault") && err.contains("restore"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Writes are refused too: nothing is saved on top of an older copy.
    tv.fails(&["set", "acme/ci", "username", "c"], 6);
    // The .bak is the version before the last save: older, so refused too.
    let bak = fs::read(tv.vault.with_extension("sfv.bak")).unwrap();
    put_back(&tv, &bak);
    tv.fails(&["list"], 6);
}

#[test]
fn restore_is_the_deliberate_way_back_and_becomes_the_newest() {
    let (tv, older) = vault_with_an_older_copy();
    let backup = tv.home.join("older.sfv");
    write_private(&backup, &older);
    tv.ok(&["restore", backup.to_str().unwrap()]);
    assert_eq!(tv.get("acme/ci", "username"), "a");
    tv.ok(&["set", "acme/ci", "username", "c"]);
    assert_eq!(tv.get("acme/ci", "username"), "c");
    // The restored copy was saved as a newer generation than anything seen: the file the
    // restore replaced (b) is now the older one.
    let replaced = fs::read(&backup).unwrap();
    put_back(&tv, &replaced);
    tv.fails(&["get", "acme/ci", "username"], 6);
    // Restoring the vault file itself, as the refusal suggests, adopts it as it is.
    let err = tv.fails(&["get", "acme/ci", "username"], 6);
    let word = format!("'{}'", tv.vault.display());
    let suggested = format!("sfvault --vault {word} restore {word}");
    assert!(err.contains(&suggested), "{err}");
    tv.ok(&["restore", tv.vault.to_str().unwrap()]);
    assert_eq!(tv.get("acme/ci", "username"), "a");
}

#[test]
fn a_running_agent_refuses_an_older_copy() {
    let (tv, older) = vault_with_an_older_copy();
    tv.ok(&["unlock", "--timeout", "5m"]);
    assert_eq!(tv.get("acme/ci", "username"), "b");
    put_back(&tv, &older);
    let out = tv.run(&["get", "acme/ci", "username"], None);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains('a'));
    let _ = tv.run(&["lock"], None);
}

#[test]
fn a_copy_from_before_a_passphrase_change_is_refused() {
    let (tv, _) = vault_with_an_older_copy();
    let new_pass = tv.root.path().join("new-pass");
    write_private(&new_pass, b"another test passphrase\n");
    let mut cmd = tv.cmd();
    cmd.env("SFVAULT_NEW_PASSPHRASE_FILE", &new_pass);
    assert_success(&run_cmd(cmd, &["passwd"], None), &["passwd"]);
    // The .bak is the last version under the old key and passphrase.
    let bak = fs::read(tv.vault.with_extension("sfv.bak")).unwrap();
    put_back(&tv, &bak);
    let err = tv.fails(&["get", "acme/ci", "username"], 6);
    assert!(err.contains("before its key was changed here"), "{err}");
}

#[test]
fn an_altered_mark_is_refused_and_a_missing_one_is_a_first_sight() {
    let (tv, older) = vault_with_an_older_copy();
    let marks: Vec<PathBuf> = fs::read_dir(marks_dir(&tv))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with(".lock"))
        .collect();
    assert_eq!(marks.len(), 1, "one mark for one vault and key: {marks:?}");
    // Lowering the recorded generation by hand does not authenticate.
    let mut bytes = fs::read(&marks[0]).unwrap();
    bytes[8] = 0;
    fs::write(&marks[0], &bytes).unwrap();
    let err = tv.fails(&["get", "acme/ci", "username"], 6);
    assert!(err.contains("altered"), "{err}");
    // The documented limit: without any mark (a machine that never saw the newer copy, or a
    // deleted mark), the older copy cannot be known to be older.
    fs::remove_dir_all(marks_dir(&tv)).unwrap();
    put_back(&tv, &older);
    assert_eq!(tv.get("acme/ci", "username"), "a");
}

#[test]
fn each_path_has_its_own_marks_so_backups_still_open() {
    let (tv, _) = vault_with_an_older_copy();
    let backup = tv.home.join("b.sfv");
    tv.ok(&["backup", backup.to_str().unwrap()]);
    tv.ok(&["set", "acme/ci", "username", "later"]);
    // The backup is older than the vault, but it is another file: it opens where it is.
    assert_eq!(
        tv.ok(&[
            "--vault",
            backup.to_str().unwrap(),
            "get",
            "-n",
            "acme/ci",
            "username"
        ]),
        "b"
    );
}

/// Offset of the generation field of a version 2 file.
fn generation_at(bytes: &[u8]) -> usize {
    117 + bytes[24] as usize
}

fn generation_of(path: &std::path::Path) -> u64 {
    sfvault::vault::format::parse_header(&fs::read(path).unwrap())
        .unwrap()
        .generation
}

/// Rewrite the generation field in place (same inode, as a hostile writer could).
fn patch_generation(path: &std::path::Path, generation: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let at = generation_at(&fs::read(path).unwrap());
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&generation.to_le_bytes()).unwrap();
}

#[test]
fn a_generation_rewritten_while_a_command_waits_is_never_saved_from() {
    use std::io::Write;
    for forged in [u64::MAX, 0] {
        let (tv, _) = vault_with_an_older_copy();
        let before = generation_of(&tv.vault);
        let mut cmd = tv.cmd();
        cmd.args(["--no-agent", "set", "acme/ci", "note", "-", "--public"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // The vault is open (its key in hand) and `set` waits for its value on stdin.
        std::thread::sleep(Duration::from_millis(1500));
        patch_generation(&tv.vault, forged);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"value").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(6), "forged {forged}: {out:?}");
        // Nothing was saved on top of the forged header.
        assert_eq!(generation_of(&tv.vault), forged);
        patch_generation(&tv.vault, before);
        assert_eq!(tv.get("acme/ci", "username"), "b");
        tv.ok(&["set", "acme/ci", "username", "c"]);
        assert_eq!(generation_of(&tv.vault), before + 1);
    }
}

#[test]
fn restore_ignores_the_unauthenticated_generation_of_the_file_it_replaces() {
    let (tv, older) = vault_with_an_older_copy();
    let seen = generation_of(&tv.vault);
    let backup = tv.home.join("older.sfv");
    write_private(&backup, &older);
    patch_generation(&tv.vault, u64::MAX);
    tv.fails(&["get", "acme/ci", "username"], 6);
    tv.ok(&["restore", backup.to_str().unwrap()]);
    assert_eq!(generation_of(&tv.vault), seen + 1);
    tv.ok(&["set", "acme/ci", "username", "d"]);
    assert_eq!(generation_of(&tv.vault), seen + 2);
}

#[test]
fn a_held_marks_lock_delays_nothing_for_long() {
    let (tv, _) = vault_with_an_older_copy();
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(marks_dir(&tv).join(".lock"))
        .unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    tv.ok(&["set", "acme/ci", "username", "held"]);
    tv.ok(&["--no-agent", "get", "acme/ci", "username"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(lock);
    assert_eq!(tv.get("acme/ci", "username"), "held");
}
