//! Team vaults (issue 18): recipients made by the real `age-keygen` (Debian's age package) and
//! `ssh-keygen`, the real `age` tool reading and writing the wrapped key, the binary unlocking
//! by identity, removal with a new data key, and the agent.
//!
//! The tools are required: CI installs them (`.ci/run`); a machine without them fails here
//! with the command that installs them, it never skips.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sfvault::secret::{SecretKey, SecretString};
use sfvault::vault::format;
use support::*;

/// Run a tool, requiring it to exist and succeed; returns its stdout and stderr.
fn tool(program: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!(
            "{program} is needed by this test ({e}); install it: `apt-get install age openssh-client`"
        )
    });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An identity made by `age-keygen`: its file (0600) and its public key.
fn age_identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.age"));
    tool("age-keygen", &["-o", path.to_str().unwrap()]);
    let (public, _) = tool("age-keygen", &["-y", path.to_str().unwrap()]);
    (path, public.trim().to_owned())
}

/// A key pair made by `ssh-keygen` (no passphrase): the private key's path and the `.pub`'s.
fn ssh_identity(dir: &Path, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let path = dir.join(format!("{name}_{kind}"));
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", name];
    if kind == "rsa" {
        args.extend(["-b", "2048"]);
    }
    args.extend(["-f", path.to_str().unwrap()]);
    tool("ssh-keygen", &args);
    let public = path.with_file_name(format!("{name}_{kind}.pub"));
    (path, public)
}

/// The binary with no passphrase source, unlocking with `identity`.
fn as_member(tv: &TestVault, identity: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = tv.bare_cmd();
    cmd.arg("--identity").arg(identity);
    run_cmd(cmd, args, None)
}

fn member_gets(tv: &TestVault, identity: &Path, entry: &str, field: &str) -> String {
    let out = as_member(tv, identity, &["get", "-n", entry, field]);
    assert_success(&out, &["get by identity", identity.to_str().unwrap()]);
    String::from_utf8(out.stdout).unwrap()
}

fn keys_dir(tv: &TestVault) -> PathBuf {
    let dir = tv.root.path().join("keys");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A vault with one entry whose secret is `secret`.
fn vault_with_secret(secret: &str) -> TestVault {
    let tv = TestVault::new();
    tv.ok_stdin(
        &["add", "acme/ci", "--consumer-key", "3MVGkey"],
        secret.as_bytes(),
    );
    tv
}

#[test]
fn age_and_ssh_identities_of_recipients_open_the_vault_and_others_do_not() {
    let tv = vault_with_secret("team-secret-1");
    let keys = keys_dir(&tv);
    let (alice, alice_pub) = age_identity(&keys, "alice");
    let (bob, bob_pub) = ssh_identity(&keys, "bob", "ed25519");
    let (carol, carol_pub) = ssh_identity(&keys, "carol", "rsa");
    let (eve, _) = age_identity(&keys, "eve");
    tv.ok(&["recipient", "add", &alice_pub, "--name", "alice"]);
    tv.ok(&["recipient", "add", bob_pub.to_str().unwrap()]);
    tv.ok(&["recipient", "add", carol_pub.to_str().unwrap()]);
    let listed: serde_json::Value =
        serde_json::from_str(&tv.ok(&["recipient", "list", "--json"])).unwrap();
    let names: Vec<&str> = listed["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"], "{listed}");
    assert_eq!(listed["passphrase"], true);
    assert_eq!(listed["recipients"][2]["kind"], "ssh-rsa");
    for identity in [&alice, &bob, &carol] {
        assert_eq!(
            member_gets(&tv, identity, "acme/ci", "consumer_secret"),
            "team-secret-1"
        );
    }
    // A stranger's key: exit 4, and the message says what to do.
    let out = as_member(&tv, &eve, &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 4, &["get by a stranger"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("recipient add"), "{said}");
    // The passphrase still opens it, and a member's change is seen by the passphrase user.
    let out = {
        let mut cmd = tv.bare_cmd();
        cmd.arg("--identity").arg(&bob);
        run_cmd(cmd, &["set", "acme/ci", "username", "ci@acme.com"], None)
    };
    assert_success(&out, &["set by identity"]);
    assert_eq!(tv.get("acme/ci", "username"), "ci@acme.com");
    // The file is a version 4 vault now.
    let header = format::parse_header(&fs::read(&tv.vault).unwrap()).unwrap();
    assert_eq!(header.version, 4);
}

#[test]
fn an_identity_readable_by_others_is_refused_and_a_private_key_is_no_recipient() {
    let tv = vault_with_secret("s");
    let keys = keys_dir(&tv);
    let (alice, alice_pub) = age_identity(&keys, "alice");
    tv.ok(&["recipient", "add", &alice_pub, "--name", "alice"]);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&alice, fs::Permissions::from_mode(0o644)).unwrap();
    let out = as_member(&tv, &alice, &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 10, &["get with a loose identity file"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    // Giving the private key where the public one belongs is refused, and not echoed.
    let secret_line = fs::read_to_string(&alice)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    let err = tv.fails(&["recipient", "add", &secret_line, "--name", "x"], 2);
    assert!(err.contains("private key"), "{err}");
    assert!(!err.contains(&secret_line[20..]), "{err}");
    // The same key twice, or a name taken: refused.
    let err = tv.fails(&["recipient", "add", &alice_pub, "--name", "again"], 2);
    assert!(err.contains("already a recipient"), "{err}");
}

#[test]
fn the_age_tool_unwraps_the_vault_key_and_a_key_wrapped_by_age_opens_the_vault() {
    let tv = vault_with_secret("interop-secret");
    let keys = keys_dir(&tv);
    let (alice, alice_pub) = age_identity(&keys, "alice");
    let (bob, bob_pub) = age_identity(&keys, "bob");
    tv.ok(&["recipient", "add", &alice_pub, "--name", "alice"]);
    // sfvault → age: the recipient slot is an age file; `age -d` gives the 32-byte data key.
    let bytes = fs::read(&tv.vault).unwrap();
    let header = format::parse_header(&bytes).unwrap();
    let wrapped = header.slots.recipients.as_ref().unwrap().wrapped.clone();
    let wrapped_path = keys.join("wrapped.age");
    fs::write(&wrapped_path, &wrapped).unwrap();
    let out = Command::new("age")
        .args(["-d", "-i"])
        .arg(&alice)
        .arg(&wrapped_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 32, "the data key");
    let data_key = SecretKey::from_slice(out.stdout[..].try_into().unwrap());
    let (data, _) = format::open(&bytes, &SecretString::new(PASSPHRASE.into())).unwrap();
    // age → sfvault: the data key wrapped by the age tool to bob opens the vault for bob.
    let key_path = keys.join("data.key");
    fs::write(&key_path, &out.stdout).unwrap();
    let rewrapped = keys.join("rewrapped.age");
    tool(
        "age",
        &[
            "-r",
            &bob_pub,
            "-o",
            rewrapped.to_str().unwrap(),
            key_path.to_str().unwrap(),
        ],
    );
    let key = format::key_for_data_key(&bytes, data_key)
        .unwrap()
        .with_wrapped_key(fs::read(&rewrapped).unwrap());
    let resealed = format::seal(&data, &key, header.generation + 1).unwrap();
    fs::write(&tv.vault, resealed).unwrap();
    assert_eq!(
        member_gets(&tv, &bob, "acme/ci", "consumer_secret"),
        "interop-secret"
    );
    // Alice's stanza is gone from the age file age made: she no longer opens this one.
    assert_code(
        &as_member(&tv, &alice, &["get", "acme/ci", "consumer_key"]),
        4,
        &["alice after the rewrap"],
    );
}

#[test]
fn a_removed_recipient_cannot_open_later_saves_but_copies_from_before_still_open() {
    let tv = vault_with_secret("before-removal");
    let keys = keys_dir(&tv);
    let (alice, alice_pub) = age_identity(&keys, "alice");
    let (bob, bob_pub) = ssh_identity(&keys, "bob", "ed25519");
    tv.ok(&["recipient", "add", &alice_pub, "--name", "alice"]);
    tv.ok(&[
        "recipient",
        "add",
        bob_pub.to_str().unwrap(),
        "--name",
        "bob",
    ]);
    let before = fs::read(&tv.vault).unwrap();
    let old_key = format::open(&before, &SecretString::new(PASSPHRASE.into()))
        .unwrap()
        .1;
    let err = tv.fails(&["recipient", "rm", "alice"], 2);
    assert!(err.contains("--yes"), "{err}");
    tv.fails(&["recipient", "rm", "nobody", "--yes"], 3);
    let out = tv.run(&["recipient", "rm", "alice", "--yes"], None);
    assert_success(&out, &["recipient rm"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("rotate"), "{said}");
    tv.ok_stdin(&["set", "acme/ci", "consumer_secret"], b"after-removal");
    // Alice: refused on the vault; the remaining member and the passphrase open it.
    assert_code(
        &as_member(&tv, &alice, &["get", "acme/ci", "consumer_key"]),
        4,
        &["removed member"],
    );
    assert_eq!(
        member_gets(&tv, &bob, "acme/ci", "consumer_secret"),
        "after-removal"
    );
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "after-removal");
    // A new data key: the old one opens nothing saved now, and the vault keeps its link.
    let after = fs::read(&tv.vault).unwrap();
    assert!(format::open_with_key(&after, &old_key).is_err());
    let (data, new_key) = format::open(&after, &SecretString::new(PASSPHRASE.into())).unwrap();
    assert_ne!(new_key.data_key().expose(), old_key.data_key().expose());
    let team = data.team.expect("team state");
    assert_eq!(
        team.key_links,
        [sfvault::vault::crypto::key_link(old_key.data_key())]
    );
    // What the issue says plainly: a copy from before the removal still opens for her.
    let copy = tv.root.path().join("old-copy.sfv");
    fs::write(&copy, &before).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = tv.bare_cmd();
    cmd.arg("--vault").arg(&copy).arg("--identity").arg(&alice);
    let out = run_cmd(cmd, &["get", "-n", "acme/ci", "consumer_secret"], None);
    assert_success(&out, &["old copy by the removed member"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before-removal");
}

#[test]
fn a_vault_without_a_passphrase_opens_only_by_identity() {
    let tv = TestVault::empty();
    let keys = keys_dir(&tv);
    let (alice, alice_pub) = age_identity(&keys, "alice");
    let (bob, bob_pub) = ssh_identity(&keys, "bob", "ed25519");
    let mut cmd = tv.bare_cmd();
    cmd.args(["init", "--no-passphrase", "--recipient", &alice_pub]);
    cmd.arg("--recipient").arg(&bob_pub);
    let out = run_cmd(cmd, &[], None);
    assert_success(&out, &["init --no-passphrase"]);
    let out = {
        let mut cmd = tv.bare_cmd();
        cmd.arg("--identity").arg(&alice);
        run_cmd(
            cmd,
            &["add", "acme/ci", "--consumer-key", "K"],
            Some(b"no-pass-secret"),
        )
    };
    assert_success(&out, &["add by identity"]);
    assert_eq!(
        member_gets(&tv, &bob, "acme/ci", "consumer_secret"),
        "no-pass-secret"
    );
    // A passphrase source is no way in: exit 5 naming --identity, before any prompt.
    let err = tv.fails(&["get", "acme/ci", "consumer_key"], 5);
    assert!(err.contains("--identity"), "{err}");
    // Names default to the SSH comment, or the key's kind and first characters.
    let listed: serde_json::Value = serde_json::from_slice(
        &run_cmd(tv.bare_cmd(), &["recipient", "list", "--json"], None).stdout,
    )
    .unwrap();
    assert_eq!(listed["passphrase"], false, "{listed}");
    let alice_name = listed["recipients"][0]["name"].as_str().unwrap().to_owned();
    assert!(alice_name.starts_with("age-"), "{listed}");
    assert_eq!(listed["recipients"][1]["name"], "bob", "{listed}");
    // The last way in cannot be removed.
    let out = as_member(&tv, &alice, &["recipient", "rm", &alice_name, "--yes"]);
    assert_success(&out, &["rm alice"]);
    let out = as_member(&tv, &bob, &["recipient", "rm", "bob", "--yes"]);
    assert_code(&out, 2, &["rm the last recipient"]);
    // passwd adds a passphrase back; --remove takes it away again.
    let mut cmd = tv.bare_cmd();
    cmd.arg("--identity")
        .arg(&bob)
        .env("SFVAULT_NEW_PASSPHRASE_FILE", &tv.pass_file);
    assert_success(&run_cmd(cmd, &["passwd"], None), &["passwd by identity"]);
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "no-pass-secret");
    tv.ok(&["passwd", "--remove"]);
    tv.fails(&["get", "acme/ci", "consumer_key"], 5);
    assert_eq!(
        member_gets(&tv, &bob, "acme/ci", "consumer_secret"),
        "no-pass-secret"
    );
}

#[test]
fn the_agent_unlocks_by_identity_and_follows_recipient_changes() {
    let tv = vault_with_secret("agent-secret");
    let keys = keys_dir(&tv);
    let (alice, alice_pub) = age_identity(&keys, "alice");
    let (_, carol_pub) = age_identity(&keys, "carol");
    tv.ok(&["recipient", "add", &alice_pub, "--name", "alice"]);
    let out = as_member(&tv, &alice, &["unlock", "--timeout", "5m"]);
    assert_success(&out, &["unlock by identity"]);
    let via_agent = |args: &[&str]| run_cmd(tv.bare_cmd(), args, None);
    let out = via_agent(&["get", "-n", "acme/ci", "consumer_secret"]);
    assert_success(&out, &["get through the agent"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "agent-secret");
    // Another process adds a recipient (same data key, new slots): the agent keeps working
    // and saves with the new slots.
    tv.ok(&[
        "--no-agent",
        "recipient",
        "add",
        &carol_pub,
        "--name",
        "carol",
    ]);
    let out = via_agent(&["set", "acme/ci", "username", "u@acme.com"]);
    assert_success(&out, &["set through the agent after recipient add"]);
    let listed = tv.ok(&["recipient", "list", "--json"]);
    assert!(listed.contains("carol"), "{listed}");
    assert_eq!(tv.get("acme/ci", "username"), "u@acme.com");
    // Another process removes alice (a new data key): the agent's key opens nothing now.
    tv.ok(&["--no-agent", "recipient", "rm", "alice", "--yes"]);
    let out = via_agent(&["get", "acme/ci", "consumer_key"]);
    assert!(
        !out.status.success(),
        "the agent still answered with the old key"
    );
    let _ = via_agent(&["lock"]);
}
