//! A team vault shared through real git (issue 18): a bare repository, one clone per member,
//! each member with their own HOME (so their own rollback and team marks) and their own key
//! made by `age-keygen` or `ssh-keygen`. Fresh clones open without a chmod; a vault put in place
//! by someone with push access but no key, an older version pushed back, and a file a removed
//! member re-encrypted with the key they still hold are all refused. A CI runner reads only its
//! slice, follows a rotation through `slice sync`, and refuses a slice substituted by push.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sfvault::vault::format::{self, Credential};
use sfvault::vault::recipients;
use support::*;

/// One person: their world (HOME, state), their clone of the team repository, their key.
struct Member {
    world: TestVault,
    clone: PathBuf,
    identity: PathBuf,
    public: String,
}

/// Run git in `dir`, requiring success; returns stdout.
fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .output()
        .expect("git is needed by this test");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn keygen(dir: &Path, name: &str, ssh: bool) -> (PathBuf, String) {
    if ssh {
        let path = dir.join(format!("{name}_ed25519"));
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen is needed by this test (apt-get install openssh-client)");
        assert!(ok.success());
        let public = fs::read_to_string(path.with_extension("pub")).unwrap();
        (path, public.trim().to_owned())
    } else {
        let path = dir.join(format!("{name}.age"));
        let out = Command::new("age-keygen")
            .arg("-o")
            .arg(&path)
            .output()
            .expect("age-keygen is needed by this test (apt-get install age)");
        assert!(out.status.success());
        let out = Command::new("age-keygen")
            .arg("-y")
            .arg(&path)
            .output()
            .unwrap();
        (
            path,
            String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        )
    }
}

impl Member {
    /// A member with a key; `ssh` picks an SSH ed25519 key, else an age one. Not cloned yet.
    fn new(name: &str, ssh: bool) -> Member {
        let world = TestVault::empty();
        let keys = world.root.path().join("keys");
        fs::create_dir_all(&keys).unwrap();
        let (identity, public) = keygen(&keys, name, ssh);
        let clone = world.root.path().join("repo");
        Member {
            world,
            clone,
            identity,
            public,
        }
    }

    fn vault(&self) -> PathBuf {
        self.clone.join("team.sfv")
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.clone, &self.world.home, args)
    }

    /// git with this member's key in the environment (for the merge driver), not requiring
    /// success.
    fn git_as_member(&self, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(&self.clone)
            .env("HOME", &self.world.home)
            .env("XDG_DATA_HOME", self.world.home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", self.world.root.path().join("run"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("SFVAULT_IDENTITY_FILE", &self.identity)
            .env_remove("SFVAULT_PASSPHRASE_FILE")
            .args(args)
            .output()
            .unwrap()
    }

    /// `git-setup` in this member's clone.
    fn git_setup(&self) {
        let out = self.sf(&["git-setup"], None);
        assert_success(&out, &["git-setup"]);
    }

    fn clone_from(&self, bare: &Path) {
        git(
            self.world.root.path(),
            &self.world.home,
            &["clone", "-q", bare.to_str().unwrap(), "repo"],
        );
    }

    /// sfvault on the team vault of this member's clone, unlocked by their key.
    fn sf(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.world.bare_cmd();
        cmd.arg("--vault")
            .arg(self.vault())
            .arg("--identity")
            .arg(&self.identity);
        run_cmd(cmd, args, stdin)
    }

    /// sfvault on another vault file of this member's clone (a slice), unlocked by their key.
    fn sf_at(&self, file: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.world.bare_cmd();
        cmd.arg("--vault")
            .arg(self.clone.join(file))
            .arg("--identity")
            .arg(&self.identity);
        run_cmd(cmd, args, stdin)
    }

    fn sf_ok(&self, args: &[&str]) -> String {
        let out = self.sf(args, None);
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    fn get(&self, entry: &str, field: &str) -> String {
        self.sf_ok(&["get", "-n", entry, field])
    }

    fn commit_and_push(&self, message: &str) {
        self.commit_files_and_push(&["team.sfv"], message);
    }

    fn commit_files_and_push(&self, files: &[&str], message: &str) {
        let mut add = vec!["add"];
        add.extend(files);
        self.git(&add);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["push", "-q", "origin", "main"]);
    }

    /// `get` from the slice `ci/ci.sfv` of this member's clone, required to succeed.
    fn slice_get(&self, field: &str) -> String {
        let out = self.sf_at("ci/ci.sfv", &["get", "-n", "acme-prod/ci", field], None);
        assert_success(&out, &["get from the slice", field]);
        String::from_utf8(out.stdout).unwrap()
    }

    fn pull(&self) {
        self.git(&["pull", "-q", "--no-rebase", "origin", "main"]);
    }
}

/// A bare repository, alice's clone holding a team vault (no passphrase) for alice and `others`,
/// with one entry, pushed. Returns the bare repository's path (inside alice's world).
fn team(alice: &Member, others: &[&Member]) -> PathBuf {
    let bare = alice.world.root.path().join("team.git");
    git(
        alice.world.root.path(),
        &alice.world.home,
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    alice.clone_from(&bare);
    let mut cmd = alice.world.bare_cmd();
    cmd.arg("--vault").arg(alice.vault()).args([
        "init",
        "--no-passphrase",
        "--recipient",
        &alice.public,
    ]);
    for m in others {
        cmd.arg("--recipient").arg(&m.public);
    }
    assert_success(&run_cmd(cmd, &[], None), &["init the team vault"]);
    let out = alice.sf(
        &["add", "acme-prod/ci", "--consumer-key", "3MVGteam"],
        Some(b"team-secret-v1"),
    );
    assert_success(&out, &["add"]);
    alice.commit_and_push("team vault");
    bare
}

#[test]
fn a_fresh_clone_opens_without_chmod_and_a_passphrase_vault_in_git_is_refused() {
    let alice = Member::new("alice", false);
    let bob = Member::new("bob", true);
    let bare = team(&alice, &[&bob]);
    bob.clone_from(&bare);
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(bob.vault()).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o044,
        0o044,
        "git checked it out readable by others: {mode:o}"
    );
    assert_eq!(bob.get("acme-prod/ci", "consumer_secret"), "team-secret-v1");
    // Bob saves; the file stays a team vault and alice reads his change after a pull.
    let out = bob.sf(&["set", "acme-prod/ci", "username", "ci@acme.com"], None);
    assert_success(&out, &["set by bob"]);
    bob.commit_and_push("username");
    alice.pull();
    assert_eq!(alice.get("acme-prod/ci", "username"), "ci@acme.com");

    // A vault that still has a passphrase slot, checked out readable by others: refused, and
    // the message says why and what to do.
    let carol = Member::new("carol", false);
    let tv = TestVault::new();
    tv.ok(&["recipient", "add", &carol.public, "--name", "carol"]);
    fs::set_permissions(&tv.vault, fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = tv.bare_cmd();
    cmd.arg("--identity").arg(&carol.identity);
    let out = run_cmd(cmd, &["list"], None);
    assert_code(&out, 10, &["list a readable passphrase vault"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("passwd --remove"), "{said}");
    // Writable by others is refused even without a passphrase slot.
    fs::set_permissions(bob.vault(), fs::Permissions::from_mode(0o666)).unwrap();
    assert_code(
        &bob.sf(&["list"], None),
        10,
        &["list a world-writable team vault"],
    );
}

#[test]
fn a_vault_put_in_place_by_someone_without_a_key_is_refused() {
    let alice = Member::new("alice", false);
    let bob = Member::new("bob", true);
    let mallory = Member::new("mallory", false);
    let bare = team(&alice, &[&bob]);
    bob.clone_from(&bare);
    assert_eq!(bob.get("acme-prod/ci", "consumer_secret"), "team-secret-v1");
    // Mallory can push but holds no key: she makes her own vault, encrypted to bob's public
    // key (public, in the old file's header) and hers, with her own "secret", and pushes it.
    mallory.clone_from(&bare);
    fs::remove_file(mallory.vault()).unwrap();
    let mut cmd = mallory.world.bare_cmd();
    cmd.arg("--vault").arg(mallory.vault()).args([
        "init",
        "--no-passphrase",
        "--recipient",
        &bob.public,
        "--recipient",
        &mallory.public,
    ]);
    assert_success(&run_cmd(cmd, &[], None), &["mallory's init"]);
    let out = mallory.sf(
        &["add", "acme-prod/ci", "--consumer-key", "3MVGteam"],
        Some(b"mallory-controls-this"),
    );
    assert_success(&out, &["mallory's add"]);
    mallory.commit_and_push("innocent-looking update");
    bob.pull();
    let out = bob.sf(&["get", "acme-prod/ci", "consumer_secret"], None);
    assert_code(&out, 6, &["get from the substituted vault"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("another vault"), "{said}");
    assert!(out.stdout.is_empty());
    // Told deliberately (restore), bob's sfvault takes it.
    let path = bob.vault();
    assert_success(
        &bob.sf(&["restore", path.to_str().unwrap(), "--yes"], None),
        &["restore to adopt"],
    );
    assert_eq!(
        bob.get("acme-prod/ci", "consumer_secret"),
        "mallory-controls-this"
    );
}

#[test]
fn an_older_version_pushed_back_is_refused() {
    let alice = Member::new("alice", false);
    let bob = Member::new("bob", true);
    let bare = team(&alice, &[&bob]);
    let first = alice.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let out = alice.sf(
        &["set", "acme-prod/ci", "consumer_secret"],
        Some(b"team-secret-v2"),
    );
    assert_success(&out, &["rotate in the vault"]);
    alice.commit_and_push("new secret");
    bob.clone_from(&bare);
    assert_eq!(bob.get("acme-prod/ci", "consumer_secret"), "team-secret-v2");
    // Someone pushes the old file back (a revert of the rotation, or a forced push).
    alice.git(&["checkout", "-q", &first, "--", "team.sfv"]);
    alice.commit_and_push("revert");
    bob.pull();
    let out = bob.sf(&["get", "acme-prod/ci", "consumer_secret"], None);
    assert_code(&out, 6, &["get the rolled-back vault"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("older copy"));
}

#[test]
fn a_removed_member_cannot_push_a_file_made_with_the_old_key() {
    let alice = Member::new("alice", false);
    let bob = Member::new("bob", true);
    let carol = Member::new("carol", false);
    let bare = team(&alice, &[&bob, &carol]);
    carol.clone_from(&bare);
    assert_eq!(
        carol.get("acme-prod/ci", "consumer_secret"),
        "team-secret-v1"
    );
    let before = fs::read(carol.vault()).unwrap();
    // Alice removes carol: a new data key, pushed; bob pulls and reads.
    let listed = alice.sf_ok(&["recipient", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let carol_name = listed["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == carol.public.as_str())
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_success(
        &alice.sf(&["recipient", "rm", &carol_name, "--yes"], None),
        &["rm carol"],
    );
    alice.commit_and_push("remove carol");
    bob.clone_from(&bare);
    assert_eq!(bob.get("acme-prod/ci", "consumer_secret"), "team-secret-v1");
    carol.pull();
    assert_code(&carol.sf(&["list"], None), 4, &["carol after her removal"]);
    // Carol still holds the old data key (from the old file): she re-seals the old contents
    // under it, with a generation far ahead and her own entry, and pushes.
    let id =
        recipients::load_identity("carol", &fs::read(&carol.identity).unwrap(), |_| None).unwrap();
    let (mut data, old_key) = format::open_by(&before, &Credential::Identity(id)).unwrap();
    let name = sfvault::vault::EntryName::parse("acme-prod/phish").unwrap();
    data.add_entry(&name, 1).unwrap();
    let forged = format::seal(&data, &old_key, 1000).unwrap();
    fs::write(carol.vault(), forged).unwrap();
    carol.commit_and_push("forged");
    bob.pull();
    let out = bob.sf(&["list"], None);
    assert_code(&out, 6, &["list the forged vault"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("does not come from"), "{said}");
}

#[test]
fn git_merges_concurrent_edits_field_by_field_and_a_real_conflict_is_one_command_away() {
    let alice = Member::new("alice", false);
    let bob = Member::new("bob", true);
    let carol = Member::new("carol", false);
    let bare = team(&alice, &[&bob, &carol]);
    alice.git_setup();
    let attributes = fs::read_to_string(alice.clone.join(".gitattributes")).unwrap();
    assert!(
        attributes.contains("/team.sfv merge=sfvault"),
        "{attributes}"
    );
    let ignored = fs::read_to_string(alice.clone.join(".gitignore")).unwrap();
    assert!(ignored.contains("/team.sfv.bak"), "{ignored}");
    alice.git(&["add", ".gitattributes", ".gitignore"]);
    alice.commit_and_push("merge driver");
    bob.clone_from(&bare);
    bob.git_setup();
    // Different entries and different fields on each side: a clean merge under git.
    assert_success(
        &alice.sf(&["set", "acme-prod/ci", "username", "ci@acme.com"], None),
        &["alice sets username"],
    );
    assert_success(
        &alice.sf(
            &["add", "acme-uat/ci", "--consumer-key", "uat"],
            Some(b"uat-secret"),
        ),
        &["alice adds uat"],
    );
    alice.commit_and_push("alice's edits");
    assert_success(
        &bob.sf(
            &[
                "set",
                "acme-prod/ci",
                "login_url",
                "https://test.salesforce.com",
            ],
            None,
        ),
        &["bob sets login_url"],
    );
    assert_success(
        &bob.sf(
            &["add", "acme-dev/ci", "--consumer-key", "dev"],
            Some(b"dev-secret"),
        ),
        &["bob adds dev"],
    );
    bob.git(&["commit", "-q", "-am", "bob's edits"]);
    let out = bob.git_as_member(&["pull", "-q", "--no-rebase", "origin", "main"]);
    assert!(
        out.status.success(),
        "clean merge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bob.get("acme-prod/ci", "username"), "ci@acme.com");
    assert_eq!(
        bob.get("acme-prod/ci", "login_url"),
        "https://test.salesforce.com"
    );
    assert_eq!(bob.get("acme-uat/ci", "consumer_secret"), "uat-secret");
    assert_eq!(bob.get("acme-dev/ci", "consumer_secret"), "dev-secret");
    bob.git(&["push", "-q", "origin", "main"]);
    // Every recipient opens the merged result.
    carol.clone_from(&bare);
    assert_eq!(carol.get("acme-dev/ci", "consumer_secret"), "dev-secret");
    alice.pull();
    assert_eq!(alice.get("acme-dev/ci", "consumer_secret"), "dev-secret");

    // The same field on both sides: git stops with a conflict; the merged file holds the newer
    // value with the other in history, and one sfvault command picks the other.
    assert_success(
        &alice.sf(
            &["set", "acme-prod/ci", "consumer_secret"],
            Some(b"alice-rotated"),
        ),
        &["alice rotates"],
    );
    alice.commit_and_push("alice rotates");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_success(
        &bob.sf(
            &["set", "acme-prod/ci", "consumer_secret"],
            Some(b"bob-rotated"),
        ),
        &["bob rotates"],
    );
    bob.git(&["commit", "-q", "-am", "bob rotates"]);
    let out = bob.git_as_member(&["pull", "-q", "--no-rebase", "origin", "main"]);
    assert!(!out.status.success(), "git shows the conflict");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("CONFLICT acme-prod/ci consumer_secret"),
        "{said}"
    );
    assert!(said.contains("--restore 1"), "{said}");
    // The command named is for the team vault of this clone, not the user's default vault.
    assert!(
        said.contains("sfvault --vault 'team.sfv' set acme-prod/ci consumer_secret --restore 1"),
        "{said}"
    );
    assert_eq!(bob.get("acme-prod/ci", "consumer_secret"), "bob-rotated");
    assert_success(
        &bob.sf(
            &["set", "acme-prod/ci", "consumer_secret", "--restore", "1"],
            None,
        ),
        &["keep alice's value"],
    );
    bob.git(&["add", "team.sfv"]);
    bob.git(&["commit", "-q", "-m", "resolved"]);
    bob.git(&["push", "-q", "origin", "main"]);
    alice.pull();
    assert_eq!(
        alice.get("acme-prod/ci", "consumer_secret"),
        "alice-rotated"
    );
    carol.pull();
    assert_eq!(
        carol.get("acme-prod/ci", "consumer_secret"),
        "alice-rotated"
    );
}

#[test]
fn recipient_changes_on_both_sides_merge_and_a_removed_member_stays_out() {
    let alice = Member::new("alice", false);
    let bob = Member::new("bob", true);
    let carol = Member::new("carol", false);
    let dave = Member::new("dave", true);
    let bare = team(&alice, &[&bob, &carol]);
    alice.git_setup();
    alice.git(&["add", ".gitattributes", ".gitignore"]);
    alice.commit_and_push("merge driver");
    bob.clone_from(&bare);
    bob.git_setup();
    // Alice adds dave (same data key); bob removes carol (a new data key), concurrently.
    assert_success(
        &alice.sf(&["recipient", "add", &dave.public, "--name", "dave"], None),
        &["add dave"],
    );
    alice.commit_and_push("add dave");
    let listed: serde_json::Value =
        serde_json::from_str(&bob.sf_ok(&["recipient", "list", "--json"])).unwrap();
    let carol_name = listed["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == carol.public.as_str())
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_success(
        &bob.sf(&["recipient", "rm", &carol_name, "--yes"], None),
        &["rm carol"],
    );
    bob.git(&["commit", "-q", "-am", "remove carol"]);
    let out = bob.git_as_member(&["pull", "-q", "--no-rebase", "origin", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bob.git(&["push", "-q", "origin", "main"]);
    // Dave is in, carol is out, and alice's machine (which knew the old key) accepts the new.
    dave.clone_from(&bare);
    assert_eq!(
        dave.get("acme-prod/ci", "consumer_secret"),
        "team-secret-v1"
    );
    carol.clone_from(&bare);
    assert_code(&carol.sf(&["list"], None), 4, &["carol after the merge"]);
    alice.pull();
    assert_eq!(
        alice.get("acme-prod/ci", "consumer_secret"),
        "team-secret-v1"
    );
}

/// Alice's slice `ci` of `acme-prod/ci` for `to` (public keys), committed and pushed with the
/// team vault.
fn slice_for(alice: &Member, to: &[&str]) {
    let mut args = vec![
        "slice",
        "add",
        "ci",
        "--file",
        "ci/ci.sfv",
        "--entry",
        "acme-prod/ci",
    ];
    for key in to {
        args.extend(["--to", key]);
    }
    let out = alice.sf(&args, None);
    assert_success(&out, &["slice add"]);
    alice.commit_files_and_push(&["team.sfv", "ci/ci.sfv"], "slice ci");
}

#[test]
fn a_ci_runner_reads_only_its_slice_and_follows_a_rotation() {
    let alice = Member::new("alice", false);
    let ci = Member::new("ci", false);
    let bare = team(&alice, &[]);
    let out = alice.sf(
        &["add", "acme-uat/ci", "--consumer-key", "3MVGuat"],
        Some(b"uat-secret"),
    );
    assert_success(&out, &["add uat"]);
    slice_for(&alice, &[&ci.public]);
    ci.clone_from(&bare);

    // The runner opens its slice, sees only its entry, and cannot open the team vault.
    assert_eq!(ci.slice_get("consumer_key"), "3MVGteam");
    let listed = ci.sf_at("ci/ci.sfv", &["list", "--json"], None);
    assert_success(&listed, &["list the slice"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("acme-prod/ci") && !listed.contains("acme-uat"),
        "{listed}"
    );
    assert_code(
        &ci.sf(&["list"], None),
        4,
        &["the runner on the team vault"],
    );
    // Read-only there: a change is refused and the file is untouched.
    let before = fs::read(ci.clone.join("ci/ci.sfv")).unwrap();
    let out = ci.sf_at(
        "ci/ci.sfv",
        &["set", "acme-prod/ci", "username", "x@acme.com"],
        None,
    );
    assert_code(&out, 1, &["set on the slice"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("slice sync"));
    assert_eq!(fs::read(ci.clone.join("ci/ci.sfv")).unwrap(), before);
    // Reads that record their use (exec) keep nothing, and leave the checkout clean.
    let out = ci.sf_at(
        "ci/ci.sfv",
        &["exec", "acme-prod/ci", "--no-token", "--", "true"],
        None,
    );
    assert_success(&out, &["exec from the slice"]);
    assert_eq!(fs::read(ci.clone.join("ci/ci.sfv")).unwrap(), before);
    let status = ci.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(status.trim().is_empty(), "the runner's checkout: {status}");

    // Alice rotates; the slice is out of date until synced; a second sync writes nothing.
    let out = alice.sf(
        &["set", "acme-prod/ci", "consumer_secret"],
        Some(b"team-secret-v2"),
    );
    assert_success(&out, &["rotate in the vault"]);
    assert_code(
        &alice.sf(&["slice", "sync", "--check"], None),
        1,
        &["check"],
    );
    let out = alice.sf(&["--json", "slice", "sync"], None);
    assert_success(&out, &["sync"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"written\""));
    let synced = fs::read(alice.clone.join("ci/ci.sfv")).unwrap();
    assert_success(
        &alice.sf(&["slice", "sync", "--check"], None),
        &["check again"],
    );
    assert_success(&alice.sf(&["slice", "sync"], None), &["sync again"]);
    assert_eq!(fs::read(alice.clone.join("ci/ci.sfv")).unwrap(), synced);
    alice.commit_files_and_push(&["team.sfv", "ci/ci.sfv"], "rotated");

    // The runner pulls (its machine saw the older slice) and reads the new value only: no
    // history in a slice.
    ci.pull();
    assert_eq!(ci.slice_get("consumer_secret"), "team-secret-v2");
    let history = ci.sf_at(
        "ci/ci.sfv",
        &["history", "acme-prod/ci", "consumer_secret", "--reveal"],
        None,
    );
    assert_success(&history, &["history of the slice"]);
    assert!(
        contains(&history.stdout, b"team-secret-v2"),
        "--reveal shows values"
    );
    assert!(
        !contains(&history.stdout, b"team-secret-v1")
            && !contains(&history.stderr, b"team-secret-v1"),
        "the slice holds no past values"
    );
}

#[test]
fn a_slice_recipient_dropped_or_a_slice_pushed_by_an_outsider_gets_nothing_new() {
    let alice = Member::new("alice", false);
    let ci = Member::new("ci", false);
    let old_runner = Member::new("old-runner", true);
    let mallory = Member::new("mallory", false);
    let bare = team(&alice, &[]);
    slice_for(&alice, &[&ci.public, &old_runner.public]);
    ci.clone_from(&bare);
    old_runner.clone_from(&bare);
    for m in [&ci, &old_runner] {
        let got = m.sf_at(
            "ci/ci.sfv",
            &["get", "-n", "acme-prod/ci", "consumer_secret"],
            None,
        );
        assert_success(&got, &["both runners read the first slice"]);
    }

    // The old runner is dropped: the slice gets a new key, linked from the old one, so the
    // runner that stays (whose machine knew the old key) takes it, and the dropped one cannot
    // open it.
    let out = alice.sf(
        &[
            "slice",
            "add",
            "ci",
            "--replace",
            "--file",
            "ci/ci.sfv",
            "--entry",
            "acme-prod/ci",
            "--to",
            &ci.public,
        ],
        None,
    );
    assert_success(&out, &["drop a slice recipient"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("new data key"));
    alice.commit_files_and_push(&["team.sfv", "ci/ci.sfv"], "drop old runner");
    ci.pull();
    old_runner.pull();
    assert_eq!(ci.slice_get("consumer_secret"), "team-secret-v1");
    assert_code(
        &old_runner.sf_at("ci/ci.sfv", &["list"], None),
        4,
        &["the dropped runner"],
    );

    // Mallory can push but opens nothing: she puts a vault of her own, encrypted to the
    // runner's public key, where the slice was. The runner's machine refuses it.
    mallory.clone_from(&bare);
    let fake = mallory.clone.join("ci/ci.sfv");
    fs::remove_file(&fake).unwrap();
    let mut cmd = mallory.world.bare_cmd();
    cmd.arg("--vault")
        .arg(&fake)
        .args(["init", "--no-passphrase", "--recipient", &ci.public]);
    assert_success(&run_cmd(cmd, &[], None), &["mallory's slice"]);
    let mut cmd = mallory.world.bare_cmd();
    cmd.arg("--vault")
        .arg(&fake)
        .arg("--identity")
        .arg(&ci.identity);
    let out = run_cmd(
        cmd,
        &["add", "acme-prod/ci", "--consumer-key", "3MVGteam"],
        Some(b"mallory-controls-this"),
    );
    assert_success(
        &out,
        &["mallory's entry (made with a copy of no secret: a test shortcut)"],
    );
    mallory.commit_files_and_push(&["ci/ci.sfv"], "refresh ci slice");
    ci.pull();
    let out = ci.sf_at(
        "ci/ci.sfv",
        &["get", "acme-prod/ci", "consumer_secret"],
        None,
    );
    assert_code(&out, 6, &["the substituted slice"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("another vault"));
    assert!(out.stdout.is_empty());
    // A directory of the slice's path replaced by a symbolic link (git checks them out) is
    // refused: the slice would be written wherever it points.
    let elsewhere = alice.world.root.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let ci_dir = alice.clone.join("ci");
    fs::rename(&ci_dir, alice.world.root.path().join("ci-kept")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &ci_dir).unwrap();
    let out = alice.sf(&["slice", "sync"], None);
    assert_code(&out, 10, &["sync through a symlinked directory"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert!(
        fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "nothing written there"
    );
    fs::remove_file(&ci_dir).unwrap();
    fs::rename(alice.world.root.path().join("ci-kept"), &ci_dir).unwrap();

    // Alice's next sync puts the real slice back (a newer generation than the fake).
    alice.pull();
    let out = alice.sf(&["slice", "sync"], None);
    assert_success(&out, &["sync over the fake"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote"));
    alice.commit_files_and_push(&["ci/ci.sfv"], "restore ci slice");
    ci.pull();
    assert_eq!(ci.slice_get("consumer_secret"), "team-secret-v1");
}
