//! "Prove it holds": crash safety under SIGKILL at random moments, a full disk, many writers,
//! tampering between vaults, canary leak scans over every command, non-dumpable processes,
//! hostile ownership. Counts are printed (run with --nocapture) and recorded in SECURITY.md.
//!
//! The crash and concurrency campaigns run in full in CI, or locally with
//! `SFVAULT_FULL_PROOFS=1`; a plain local `cargo test` runs a sample of each
//! (support::full_proofs).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use sfvault::secret::SecretString;
use sfvault::vault::format;
use support::*;

/// Public state of a vault: entry → field → value.
type State = BTreeMap<String, BTreeMap<String, String>>;

fn state_of(bytes: &[u8]) -> State {
    let (data, _) = format::open(bytes, &SecretString::new(PASSPHRASE.into()))
        .expect("after a kill the vault must still open with its passphrase");
    data.entries
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                e.fields
                    .iter()
                    .map(|(f, v)| (f.clone(), v.value.expose().to_owned()))
                    .collect(),
            )
        })
        .collect()
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn sigkill_at_random_moments_during_saves_never_loses_or_mixes() {
    let tv = TestVault::new();
    let seed = std::env::var("SFVAULT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    let saves: usize = std::env::var("SFVAULT_CRASH_SAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| campaign_rounds("crash test", 500, 40));
    eprintln!("crash test: seed {seed}, {saves} saves");
    let mut rng = Lcg(seed);
    // How long one save takes, to spread kill points over the whole of it.
    let started = Instant::now();
    tv.ok(&[
        "--no-agent",
        "add",
        "base/e",
        "--consumer-key",
        "k0",
        "--no-secret",
    ]);
    let span = started.elapsed().as_micros() as u64 * 12 / 10;
    let mut state = state_of(&fs::read(&tv.vault).unwrap());
    let (mut killed, mut before, mut after) = (0, 0, 0);
    let mut live: Vec<String> = vec!["base/e".into()];
    for i in 0..saves {
        let (args, next): (Vec<String>, State) = {
            let mut next = state.clone();
            let op = i % 3;
            if op == 0 || live.len() < 2 {
                let name = format!("org{}/app{i}", i % 7);
                next.entry(name.clone())
                    .or_default()
                    .insert("consumer_key".into(), format!("k{i}"));
                live.push(name.clone());
                (
                    vec![
                        "add".into(),
                        name,
                        "--consumer-key".into(),
                        format!("k{i}"),
                        "--no-secret".into(),
                    ],
                    next,
                )
            } else if op == 1 {
                let name = live[rng.next() as usize % live.len()].clone();
                next.get_mut(&name)
                    .unwrap()
                    .insert("notes".into(), format!("v{i}"));
                (
                    vec![
                        "set".into(),
                        name,
                        "notes".into(),
                        format!("v{i}"),
                        "--public".into(),
                    ],
                    next,
                )
            } else {
                let name = live.remove(rng.next() as usize % live.len());
                next.remove(&name);
                (vec!["rm".into(), name, "--yes".into()], next)
            }
        };
        let mut cmd = tv.cmd();
        cmd.arg("--no-agent")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.next() % span.max(1)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed += 1;
        }
        let now = state_of(&fs::read(&tv.vault).unwrap());
        if now == state {
            before += 1;
            // The change did not happen: undo it in our model.
            if args[0] == "add" {
                live.pop();
            } else if args[0] == "rm" {
                live.push(args[1].clone());
            }
        } else if now == next {
            after += 1;
            state = next;
        } else {
            panic!(
                "save {i} ({args:?}) left a state that is neither before nor after (seed {seed})"
            );
        }
    }
    // Killed writers leave temp files (ciphertext); the next save under the lock removes them.
    tv.ok(&["--no-agent", "add", "final/e", "--no-secret"]);
    let stray = files_under(tv.vault.parent().unwrap())
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".tmp"))
        .count();
    eprintln!(
        "crash test: {saves} saves, {killed} killed mid-run, {before} left the old state, {after} the new, \
         0 lost or mixed; {stray} stray temp files"
    );
    assert!(
        killed > saves / 10,
        "too few kills landed ({killed}): the kill points do not cover the write path"
    );
    assert!(before > 0 && after > 0);
    assert_eq!(stray, 0, "stale temp files were not cleaned up");
}

#[test]
fn a_full_disk_leaves_the_old_vault_intact_with_a_clear_error() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let before = fs::read(&tv.vault).unwrap();
    let limit = before.len() as u64 + 256;
    let mut cmd = tv.cmd();
    // SAFETY: setrlimit and signal are async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let _ = rustix::process::setrlimit(
                rustix::process::Resource::Fsize,
                rustix::process::Rlimit {
                    current: Some(limit),
                    maximum: Some(limit),
                },
            );
            Ok(())
        });
    }
    let big = "x".repeat(4096);
    let out = run_cmd(cmd, &["set", "acme/ci", "notes", &big, "--public"], None);
    assert_code(&out, 1, &["set on a full disk"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write") && err.contains("nothing was replaced"),
        "{err}"
    );
    assert_eq!(fs::read(&tv.vault).unwrap(), before, "the vault changed");
    assert!(
        !files_under(tv.vault.parent().unwrap())
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".tmp")),
        "a temp file was left behind"
    );
    assert_eq!(tv.get("acme/ci", "consumer_key"), "K");
}

/// Writers racing at once.
const WRITERS: usize = 8;

/// `WRITERS` processes each adding `each` entries at once, through the agent or not; returns
/// how many entries the vault then holds.
fn race(tv: &TestVault, agent: bool, each: usize) -> usize {
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            s.spawn(move || {
                for i in 0..each {
                    let name = format!("w{w}{}/app{i}", if agent { "a" } else { "d" });
                    let out = if agent {
                        run_cmd(
                            tv.bare_cmd(),
                            &["add", &name, "--consumer-key", "k", "--no-secret"],
                            None,
                        )
                    } else {
                        tv.run(
                            &[
                                "--no-agent",
                                "add",
                                &name,
                                "--consumer-key",
                                "k",
                                "--no-secret",
                            ],
                            None,
                        )
                    };
                    assert_success(&out, &["racing add", &name]);
                }
            });
        }
    });
    let list: Value = serde_json::from_str(&tv.ok(&["--no-agent", "list", "--json"])).unwrap();
    list.as_array().unwrap().len()
}

#[test]
fn eight_writers_with_and_without_the_agent_lose_nothing() {
    let tv = TestVault::new();
    let each = campaign_rounds("concurrency: adds per writer", 50, 6);
    let all = WRITERS * each;
    assert_eq!(race(&tv, false, each), all, "writes lost without the agent");
    tv.ok(&["unlock"]);
    assert_eq!(
        race(&tv, true, each),
        2 * all,
        "writes lost through the agent"
    );
    eprintln!(
        "concurrency: {WRITERS} x {each} writes without and {WRITERS} x {each} with the agent: \
         {n} of {n} present",
        n = 2 * all
    );
}

#[test]
fn swapping_header_fields_or_payloads_between_vaults_is_detected_and_so_is_rollback() {
    let a = TestVault::new();
    let b = TestVault::new();
    a.ok(&["add", "a/a", "--consumer-key", "A", "--no-secret"]);
    b.ok(&["add", "b/b", "--consumer-key", "B", "--no-secret"]);
    b.ok(&["set", "b/b", "username", "u"]); // one more save: another generation than A's
    let (va, vb) = (fs::read(&a.vault).unwrap(), fs::read(&b.vault).unwrap());
    let s = va[24] as usize;
    // Version 2: ... payload_salt(32) generation(8) payload_len(4) commitment(32).
    let header = 161 + s;
    let target = a.home.join("mixed.sfv");
    let mut checked = 0;
    // Every header field of A on B's file, and B's payload under A's header.
    // The fields that differ between two vaults (version, ids and KDF costs are equal here).
    let fields = [
        (25, 25 + s),
        (25 + s, 37 + s),
        (37 + s, 85 + s),
        (85 + s, 117 + s),
        (117 + s, 125 + s),
        (129 + s, 161 + s),
    ];
    for (from, to) in fields {
        let mut m = vb.clone();
        m[from..to].copy_from_slice(&va[from..to]);
        assert_ne!(m, vb, "field {from}..{to} differs between the vaults");
        write_private(&target, &m);
        let out = a.run(
            &["--vault", target.to_str().unwrap(), "list", "--json"],
            None,
        );
        let code = out.status.code();
        assert!(
            code == Some(4) || code == Some(6),
            "swap {from}..{to}: exit {code:?}"
        );
        checked += 1;
    }
    let mut m = va[..header].to_vec();
    m.extend_from_slice(&vb[header..]);
    m[125 + s..129 + s].copy_from_slice(&((vb.len() - header) as u32).to_le_bytes());
    write_private(&target, &m);
    let code = a
        .run(&["--vault", target.to_str().unwrap(), "list"], None)
        .status
        .code();
    assert_eq!(code, Some(6), "B's payload under A's header");
    // Rollback: an older authentic copy under the same passphrase is refused (exit 6), from
    // this machine's mark of the newest generation it saw (tests/rollback.rs has the rest).
    a.ok(&["set", "a/a", "consumer_key", "A2"]);
    let bak = a.vault.with_file_name("vault.sfv.bak");
    fs::copy(&bak, &a.vault).unwrap();
    let err = a.fails(&["get", "a/a", "consumer_key"], 6);
    assert!(err.contains("older copy"), "{err}");
    eprintln!(
        "tampering: {checked} header-field swaps and 1 payload swap detected; rollback refused"
    );
}

#[test]
fn canaries_from_every_command_reach_no_file_argv_or_stderr() {
    let tv = TestVault::new();
    let secret = canary("leak-consumer-secret");
    let pem = fake_pem(&canary("leak-pem"));
    let pem_line = pem.lines().nth(1).unwrap().to_owned();
    let rotated = canary("leak-rotated");
    let user_secret = canary("leak-user");
    let refresh = canary("leak-refresh");
    let canaries = [
        secret.as_str(),
        pem_line.as_str(),
        rotated.as_str(),
        user_secret.as_str(),
        refresh.as_str(),
        PASSPHRASE,
    ];
    let key_file = tv.root.path().join("in.key");
    write_private(&key_file, pem.as_bytes());
    let mut stderr = String::new();
    let mut run = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = tv.cmd();
        // For `run --mask`: a reference the child prints, to stdout and stderr.
        cmd.env("S", "sfvault://acme/ci/consumer_secret");
        let out = run_cmd(cmd, args, stdin);
        assert_success(&out, args);
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(
        &[
            "add",
            "acme/ci",
            "--consumer-key",
            "K",
            "--username",
            "u@x",
            "--private-key-file",
            key_file.to_str().unwrap(),
        ],
        Some(secret.as_bytes()),
    );
    run(
        &["set", "acme/ci", "refresh_token", "-"],
        Some(refresh.as_bytes()),
    );
    fs::remove_file(&key_file).unwrap();
    run(
        &["set", "acme/ci", "my_token", "-"],
        Some(user_secret.as_bytes()),
    );
    run(&["get", "acme/ci", "consumer_secret"], None);
    run(&["show", "acme/ci", "--reveal"], None);
    run(&["show", "acme/ci", "--json"], None);
    run(&["list", "--json"], None);
    run(&["history", "acme/ci", "--reveal"], None);
    run(
        &["rotate", "acme/ci", "consumer_secret"],
        Some(rotated.as_bytes()),
    );
    run(
        &[
            "export",
            "acme/ci",
            "--format",
            "sfdx-url",
            "--force-plaintext",
        ],
        None,
    );
    run(
        &["inject", "--force-plaintext"],
        Some(b"s={{ sfvault://acme/ci/consumer_secret }}"),
    );
    run(
        &[
            "exec",
            "acme/ci",
            "--no-token",
            "--with",
            "consumer_secret",
            "--with",
            "private_key",
            "--",
            "sh",
            "-c",
            "cat \"$SF_JWT_KEY_FILE\" >/dev/null",
        ],
        None,
    );
    run(&["read", "sfvault://acme/ci/consumer_secret"], None);
    let masked = run(
        &[
            "run",
            "--mask",
            "--",
            "sh",
            "-c",
            "printf '%s\\n' \"$S\" \"$S\" >&2; printf '%s' \"$S\"",
        ],
        None,
    );
    assert!(!masked.is_empty());
    run(&["--json", "rm", "acme/ci", "--yes"], None);
    run(&["list", "--removed", "--json"], None);
    run(&["undelete", "acme/ci"], None);
    run(&["mv", "acme/ci", "acme/ci2"], None);
    let backup = tv.home.join("b.sfv");
    run(&["backup", backup.to_str().unwrap()], None);
    run(&["restore", backup.to_str().unwrap()], None);
    run(&["unlock"], None);
    // The agent's argv and environment.
    let status: Value = serde_json::from_slice(&run(&["status", "--json"], None)).unwrap();
    let pid = status["agent_pid"].as_i64().unwrap();
    let agent_argv = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let agent_env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    run(&["get", "acme/ci2", "my_token"], None);
    let _ = tv.run(&["audit"], None);
    run(&["lock"], None);
    let mut files_checked = 0;
    for needle in canaries {
        assert!(!stderr.contains(needle), "stderr holds a canary");
        assert!(
            !contains(&agent_argv, needle.as_bytes()) && !contains(&agent_env, needle.as_bytes()),
            "agent argv/env holds a canary"
        );
        for f in files_under(tv.root.path()) {
            if f == tv.pass_file {
                continue; // the passphrase file holds the passphrase, by design
            }
            assert!(
                !contains(&fs::read(&f).unwrap(), needle.as_bytes()),
                "{} holds a canary",
                f.display()
            );
            files_checked += 1;
        }
    }
    eprintln!(
        "leaks: {} canaries × {} file reads, stderr of 24 commands, the agent's argv and environment: 0 found",
        canaries.len(),
        files_checked
    );
}

#[test]
fn the_agent_and_an_unlocked_cli_are_not_dumpable() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run sfvault as another user");
        return;
    }
    let tv = TestVault::empty();
    // Hand the whole world to nobody, so that /proc ownership tells dumpability apart: a
    // non-dumpable process's /proc files belong to root, a dumpable one's to its own user.
    for f in files_under(tv.root.path()).iter().chain(
        [
            tv.root.path().to_path_buf(),
            tv.home.clone(),
            tv.tmp.clone(),
            tv.root.path().join("run"),
        ]
        .iter(),
    ) {
        let _ = std::os::unix::fs::chown(f, Some(65534), Some(65534));
    }
    let bin = copy_of_binary(&tv.root.path().join("sfvault-copy"));
    let nobody = |args: &[&str], stdin: Stdio| {
        let mut c = std::process::Command::new(&bin);
        c.env_clear()
            .env("HOME", &tv.home)
            .env("XDG_DATA_HOME", tv.home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", tv.root.path().join("run"))
            .env("SFVAULT_PASSPHRASE_FILE", &tv.pass_file)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .uid(65534)
            .gid(65534);
        c
    };
    let ok = |c: &mut std::process::Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    ok(&mut nobody(&INIT_MIN_KDF, Stdio::null()));
    ok(&mut nobody(
        &["add", "a/b", "--consumer-key", "K", "--no-secret"],
        Stdio::null(),
    ));
    ok(&mut nobody(&["unlock"], Stdio::null()));
    let st: Value =
        serde_json::from_slice(&ok(&mut nobody(&["status", "--json"], Stdio::null()))).unwrap();
    let agent = st["agent_pid"].as_i64().unwrap();
    let owner = fs::metadata(format!("/proc/{agent}/status")).unwrap().uid();
    assert_eq!(
        owner, 0,
        "the agent (uid 65534) is dumpable: its /proc files belong to it"
    );
    let limits = fs::read_to_string(format!("/proc/{agent}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().nth(4) == Some("0"),
        "core dumps enabled: {core}"
    );
    ok(&mut nobody(&["lock"], Stdio::null()));
    // An unlocked CLI: `set` opens the vault, then waits for its value on stdin.
    let mut child = nobody(&["--no-agent", "set", "a/b", "my_secret"], Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let owner = fs::metadata(format!("/proc/{}/status", child.id()))
        .unwrap()
        .uid();
    child.stdin.take().unwrap().write_all(b"v").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(owner, 0, "an unlocked sfvault (uid 65534) is dumpable");
    // Control: a dumpable process of nobody has /proc files owned by nobody.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("1")
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    let control = fs::metadata(format!("/proc/{}/status", sleeper.id()))
        .unwrap()
        .uid();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(
        control, 65534,
        "the ownership test cannot tell dumpability apart here"
    );
}

#[test]
fn a_vault_directory_owned_by_another_user_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let tv = TestVault::new();
    let dir = tv.vault.parent().unwrap();
    std::os::unix::fs::chown(dir, Some(65534), None).unwrap();
    let err = tv.fails(&["list"], 10);
    assert!(err.contains("belongs to another user"), "{err}");
    std::os::unix::fs::chown(dir, Some(0), None).unwrap();
    std::os::unix::fs::chown(&tv.vault, Some(65534), None).unwrap();
    tv.fails(&["list"], 10);
}
