//! The vault core, driven through the real binary: round trips, passphrases, tampering,
//! hostile headers, leaks, script unlocking, concurrency, permissions.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const ORGS: [&str; 3] = ["acme-prod", "acme-uat", "acme-dev1"];
const APPS: [&str; 3] = ["ci", "backup", "integration"];

/// Every known field with a value; secret ones hold canaries.
fn known_fields(entry: &str) -> Vec<(&'static str, String, bool)> {
    vec![
        ("consumer_key", format!("3MVG9-{entry}-key"), false),
        (
            "username",
            format!("ci@{}.example.com", entry.replace('/', ".")),
            false,
        ),
        ("login_url", "https://test.salesforce.com".into(), false),
        ("flow", "jwt".into(), false),
        ("scopes", "api refresh_token".into(), false),
        (
            "callback_url",
            "http://localhost:1717/OauthRedirect".into(),
            false,
        ),
        ("consumer_secret", canary("secret"), true),
        ("private_key", fake_pem(&canary("pem")), true),
        ("password", canary("password"), true),
        ("security_token", canary("sectoken"), true),
        ("refresh_token", canary("refresh"), true),
    ]
}

/// Fill 3 orgs × 3 apps with all known fields; returns (entry, field, value, secret).
fn fill(tv: &TestVault) -> Vec<(String, &'static str, String, bool)> {
    let mut all = Vec::new();
    for org in ORGS {
        for app in APPS {
            let entry = format!("{org}/{app}");
            tv.ok(&["add", &entry, "--no-secret"]);
            for (field, value, secret) in known_fields(&entry) {
                if secret {
                    tv.ok_stdin(&["set", &entry, field, "-"], value.as_bytes());
                } else {
                    tv.ok(&["set", &entry, field, &value]);
                }
                all.push((entry.clone(), field, value, secret));
            }
        }
    }
    all
}

#[test]
fn round_trip_of_every_known_field_and_json_without_secrets() {
    let tv = TestVault::new();
    let all = fill(&tv);
    for (entry, field, value, _) in &all {
        assert_eq!(&tv.get(entry, field), value, "{entry} {field}");
        // Without -n, exactly one newline is added.
        assert_eq!(tv.ok(&["get", entry, field]), format!("{value}\n"));
    }
    let secrets: Vec<&String> = all.iter().filter(|a| a.3).map(|a| &a.2).collect();
    let list = tv.ok(&["list", "--json"]);
    let parsed: Value = serde_json::from_str(&list).expect("list --json parses");
    assert_eq!(parsed.as_array().unwrap().len(), 9);
    for org in ORGS {
        for app in APPS {
            let show = tv.ok(&["show", &format!("{org}/{app}"), "--json"]);
            let v: Value = serde_json::from_str(&show).expect("show --json parses");
            assert_eq!(v["fields"].as_object().unwrap().len(), 11);
            assert_eq!(v["fields"]["consumer_key"]["secret"], false);
            assert!(v["fields"]["consumer_secret"].get("value").is_none());
            for s in &secrets {
                assert!(!show.contains(s.as_str()), "show --json leaked a secret");
            }
            let human = tv.ok(&["show", &format!("{org}/{app}")]);
            for s in &secrets {
                assert!(!human.contains(s.as_str()), "show leaked a secret");
            }
        }
    }
    for s in &secrets {
        assert!(!list.contains(s.as_str()), "list --json leaked a secret");
        // PEM canaries sit inside the PEM; check the canary line too.
        for line in s.lines() {
            assert!(!list.contains(line) || line.starts_with("-----") || line.starts_with("MII"));
        }
    }
    let human_list = tv.ok(&["list", "acme-*/ci"]);
    assert_eq!(human_list.lines().count(), 4, "{human_list}");
    // --reveal shows secrets when asked.
    let revealed = tv.ok(&["show", "acme-prod/ci", "--json", "--reveal"]);
    let v: Value = serde_json::from_str(&revealed).unwrap();
    let want = &all
        .iter()
        .find(|a| a.0 == "acme-prod/ci" && a.1 == "consumer_secret")
        .unwrap()
        .2;
    assert_eq!(
        v["fields"]["consumer_secret"]["value"].as_str(),
        Some(want.as_str())
    );
}

#[test]
fn wrong_passphrase_writes_nothing_and_passwd_switches_passphrases() {
    let tv = TestVault::new();
    tv.ok_stdin(&["add", "acme/ci", "--consumer-key", "K1"], b"s3cret");
    let before = fs::read(&tv.vault).unwrap();
    let out = support::run_cmd(
        {
            let mut c = tv.bare_cmd();
            c.env("SFVAULT_PASSPHRASE", "not the passphrase");
            c
        },
        &["set", "acme/ci", "username", "someone"],
        None,
    );
    assert_code(&out, 4, &["set with wrong passphrase"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert_eq!(fs::read(&tv.vault).unwrap(), before, "vault bytes changed");

    let new_pass = tv.root.path().join("new-pass");
    write_private(&new_pass, b"a brand new passphrase\n");
    let mut c = tv.cmd();
    c.env("SFVAULT_NEW_PASSPHRASE_FILE", &new_pass);
    assert_success(&run_cmd(c, &["passwd"], None), &["passwd"]);
    tv.fails(&["get", "acme/ci", "consumer_key"], 4);
    let mut c = tv.bare_cmd();
    c.env("SFVAULT_PASSPHRASE_FILE", &new_pass);
    let out = run_cmd(c, &["get", "-n", "acme/ci", "consumer_secret"], None);
    assert_success(&out, &["get with new passphrase"]);
    assert_eq!(out.stdout, b"s3cret");
    // passwd changed the data key too: an old copy plus the old passphrase gives no key to
    // what is saved from now on.
    use sfvault::secret::SecretString;
    use sfvault::vault::format;
    let (_, old_key) = format::open(&before, &SecretString::new(PASSPHRASE.into())).unwrap();
    let now_bytes = fs::read(&tv.vault).unwrap();
    let (_, new_key) = format::open(
        &now_bytes,
        &SecretString::new("a brand new passphrase".into()),
    )
    .unwrap();
    assert_ne!(old_key.data_key().expose(), new_key.data_key().expose());
}

#[test]
fn every_byte_flip_and_truncation_is_refused_cleanly() {
    let tv = TestVault::new();
    tv.ok_stdin(&["add", "a/b", "--consumer-key", "k"], b"v");
    let good = fs::read(&tv.vault).unwrap();
    // A second save, so that .bak is the first version and must still open.
    tv.ok(&["set", "a/b", "username", "u"]);
    let good2 = fs::read(&tv.vault).unwrap();
    assert_ne!(good, good2);
    let damaged = tv.home.join("damaged.sfv");
    let check = |bytes: &[u8], what: &str| {
        write_private(&damaged, bytes);
        let out = run_cmd(
            tv.cmd(),
            &["--vault", damaged.to_str().unwrap(), "list", "--json"],
            None,
        );
        let code = out.status.code();
        assert!(
            code == Some(6) || code == Some(4),
            "{what}: exit {code:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No data: only the error object that --json asks for.
        let kind = if code == Some(6) {
            "corrupt"
        } else {
            "wrong-passphrase"
        };
        assert_json_error(&out, kind);
    };
    let positions = campaign_positions("byte flips and truncations", good2.len(), 24);
    for &i in &positions {
        let mut b = good2.clone();
        b[i] ^= 0x01 << (i % 8);
        check(&b, &format!("flip at {i}"));
        check(&good2[..i], &format!("truncated to {i}"));
    }
    check(&good2[..good2.len() - 1], "without its last byte");
    let mut extended = good2.clone();
    extended.push(0);
    check(&extended, "extended by one byte");
    // The backup of the real vault opens and holds the first version.
    let bak = tv.vault.with_file_name("vault.sfv.bak");
    assert_eq!(fs::read(&bak).unwrap(), good);
    let out = run_cmd(
        tv.cmd(),
        &[
            "--vault",
            bak.to_str().unwrap(),
            "get",
            "-n",
            "a/b",
            "consumer_key",
        ],
        None,
    );
    assert_success(&out, &["get from .bak"]);
    assert_eq!(out.stdout, b"k");
}

#[test]
fn a_4gib_kdf_header_is_refused_before_allocating() {
    let tv = TestVault::new();
    let mut bytes = fs::read(&tv.vault).unwrap();
    bytes[12..16].copy_from_slice(&(4u32 * 1024 * 1024).to_le_bytes());
    write_private(&tv.vault, &bytes);
    let mut cmd = tv.cmd();
    // Cap the address space at 1 GiB: an attempt to allocate 4 GiB would abort, not exit 6.
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let limit = rustix::process::Rlimit {
                current: Some(1 << 30),
                maximum: Some(1 << 30),
            };
            let _ = rustix::process::setrlimit(rustix::process::Resource::As, limit);
            Ok(())
        });
    }
    let started = Instant::now();
    let out = run_cmd(cmd, &["list"], None);
    assert_code(&out, 6, &["list with 4 GiB KDF"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memory 4194304 KiB"), "{err}");
}

#[test]
fn no_secret_byte_reaches_any_file_outside_the_ciphertext() {
    let tv = TestVault::new();
    let secret = canary("leak-secret");
    let pem = fake_pem(&canary("leak-pem"));
    let key_file = tv.root.path().join("server.key");
    write_private(&key_file, pem.as_bytes());
    tv.ok_stdin(
        &[
            "add",
            "acme/ci",
            "--consumer-key",
            "K",
            "--private-key-file",
            key_file.to_str().unwrap(),
        ],
        secret.as_bytes(),
    );
    fs::remove_file(&key_file).unwrap();
    let rotated = canary("leak-rotated");
    tv.ok_stdin(
        &["set", "acme/ci", "consumer_secret", "-"],
        rotated.as_bytes(),
    );
    tv.ok(&["get", "acme/ci", "consumer_secret"]);
    tv.ok(&["show", "acme/ci", "--reveal"]);
    tv.ok(&["mv", "acme/ci", "acme/ci2"]);
    tv.ok(&["list", "--json"]);
    let pem_canary = pem.lines().nth(1).unwrap().to_owned();
    let files = files_under(tv.root.path());
    assert!(
        files.len() >= 4,
        "expected vault, .bak, .lock, passphrase: {files:?}"
    );
    for f in files {
        let bytes = fs::read(&f).unwrap();
        for needle in [&secret, &rotated, &pem_canary] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds a secret",
                f.display()
            );
        }
    }
    // TMPDIR got nothing at all.
    assert!(files_under(&tv.tmp).is_empty());
}

#[test]
fn each_script_source_unlocks_and_no_source_fails_fast() {
    let tv = TestVault::new();
    tv.ok(&["add", "a/b", "--consumer-key", "K", "--no-secret"]);
    let get = ["get", "-n", "a/b", "consumer_key"];

    // SFVAULT_PASSPHRASE_FILE (what tv.cmd uses)
    assert_eq!(tv.ok(&get), "K");

    // --passphrase-fd 3 3<file
    let mut sh = tv.bare_cmd();
    sh.env("SFVAULT_BIN", env!("CARGO_BIN_EXE_sfvault"))
        .env("PASS", &tv.pass_file)
        .env_remove("SFVAULT_PASSPHRASE_FILE");
    let out = {
        let mut c = std::process::Command::new("/bin/sh");
        c.env_clear();
        for (k, v) in sh.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        run_cmd(
            c,
            &[
                "-c",
                "exec \"$SFVAULT_BIN\" --passphrase-fd 3 get -n a/b consumer_key 3<\"$PASS\"",
            ],
            None,
        )
    };
    assert_success(&out, &["--passphrase-fd 3"]);
    assert_eq!(out.stdout, b"K");

    // SFVAULT_PASSPHRASE_CMD
    let mut c = tv.bare_cmd();
    c.env(
        "SFVAULT_PASSPHRASE_CMD",
        format!("cat '{}'", tv.pass_file.display()),
    );
    let out = run_cmd(c, &get, None);
    assert_success(&out, &["SFVAULT_PASSPHRASE_CMD"]);
    assert_eq!(out.stdout, b"K");

    // SFVAULT_PASSPHRASE
    let mut c = tv.bare_cmd();
    c.env("SFVAULT_PASSPHRASE", PASSPHRASE);
    assert_eq!(run_cmd(c, &get, None).stdout, b"K");

    // Nothing: exit 5 within a second, no prompt.
    let started = Instant::now();
    let out = run_cmd(tv.bare_cmd(), &get, None);
    assert_code(&out, 5, &["no source"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    // A failing command is exit 5 too; a loose passphrase file is refused (exit 10).
    let mut c = tv.bare_cmd();
    c.env("SFVAULT_PASSPHRASE_CMD", "exit 1");
    assert_code(&run_cmd(c, &get, None), 5, &["failing cmd"]);
    fs::set_permissions(&tv.pass_file, fs::Permissions::from_mode(0o644)).unwrap();
    let err = tv.fails(&get, 10);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn two_writers_at_once_lose_nothing() {
    let tv = TestVault::new();
    std::thread::scope(|s| {
        for w in 0..2 {
            let tv = &tv;
            s.spawn(move || {
                for i in 0..50 {
                    tv.ok(&[
                        "add",
                        &format!("w{w}/app{i}"),
                        "--consumer-key",
                        &format!("k{w}-{i}"),
                        "--no-secret",
                    ]);
                }
            });
        }
    });
    let list: Value = serde_json::from_str(&tv.ok(&["list", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 100, "lost entries: {names:?}");
    for w in 0..2 {
        for i in 0..50 {
            let n = format!("w{w}/app{i}");
            assert!(names.contains(&n.as_str()), "{n} missing");
        }
    }
}

#[test]
fn a_held_lock_gives_exit_9_naming_the_holder() {
    let tv = TestVault::new();
    tv.ok(&["add", "a/b", "--consumer-key", "K", "--no-secret"]);
    let lock_path = tv.vault.with_file_name("vault.sfv.lock");
    let lock = fs::OpenOptions::new().write(true).open(&lock_path).unwrap();
    lock.lock().unwrap();
    let busy = |expected: &str| {
        let mut c = tv.cmd();
        c.env("SFVAULT_LOCK_TIMEOUT", "0.3");
        let out = run_cmd(c, &["set", "a/b", "username", "x"], None);
        assert_code(&out, 9, &["set while locked"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "expected {expected:?} in {err}");
    };
    // A live holder's pid is named; a dead one's (left by a crash) is not.
    let me = std::process::id().to_string();
    fs::write(&lock_path, &me).unwrap();
    busy(&format!("process {me}"));
    fs::write(&lock_path, "4194303").unwrap();
    busy("another process");
    // Readers do not need the lock.
    assert_eq!(tv.get("a/b", "consumer_key"), "K");
    drop(lock);
    tv.ok(&["set", "a/b", "username", "x"]);
    // A writer clears its pid when it lets go: a later holder (flock(1), say) is not
    // mistaken for it.
    assert_eq!(fs::read(&lock_path).unwrap(), b"");
}

#[test]
fn usage_errors_not_found_and_unsafe_files() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    // Secrets never from argv.
    let err = tv.fails(&["set", "acme/ci", "consumer_secret", "hunter2"], 2);
    assert!(!err.contains("hunter2"), "the refused secret was echoed");
    tv.fails(&["set", "acme/ci", "my_token", "hunter2"], 2);
    tv.ok(&["set", "acme/ci", "notes", "weekly", "--public"]);
    assert_eq!(tv.get("acme/ci", "notes"), "weekly");
    // Hostile names.
    for bad in [
        "../etc",
        "a/../../b",
        "acme",
        &"x".repeat(10_000),
        "a\u{1}/b",
    ] {
        let err = tv.fails(&["show", bad], 2);
        assert!(
            err.len() < 400,
            "error echoes too much: {} bytes",
            err.len()
        );
    }
    tv.fails(&["get", "acme/ci", "Bad-Field"], 2);
    // Not found.
    tv.fails(&["get", "acme/none", "consumer_key"], 3);
    tv.fails(&["get", "acme/ci", "password"], 3);
    tv.fails(&["rm", "acme/none", "--yes"], 3);
    // rm without --yes and no terminal: refused, nothing removed.
    tv.fails(&["rm", "acme/ci"], 2);
    tv.ok(&["mv", "acme/ci", "acme/ci2"]);
    tv.fails(&["get", "acme/ci", "consumer_key"], 3);
    tv.ok(&["rm", "acme/ci2", "--yes"]);
    tv.fails(&["show", "acme/ci2"], 3);
    // Bad values.
    tv.fails(&["set", "acme/x", "flow", "magic"], 2);
    tv.ok(&["add", "acme/x", "--no-secret"]);
    tv.fails(&["set", "acme/x", "flow", "magic"], 2);
    tv.fails(
        &["set", "acme/x", "login_url", "http://login.salesforce.com"],
        10,
    );
    let out = tv.run(
        &["set", "acme/x", "my_secret", "-"],
        Some(&[0xff, 0xfe, 0x00]),
    );
    assert_code(&out, 2, &["invalid utf-8"]);
    let big = vec![b'a'; 2 * 1024 * 1024];
    let out = tv.run(&["set", "acme/x", "my_secret", "-"], Some(&big));
    assert_code(&out, 2, &["2 MiB stdin"]);
    // init over an existing vault is refused.
    tv.fails(&["init"], 1);
    // KDF options out of range are usage errors.
    let other = TestVault::empty();
    other.fails(&["init", "--kdf-memory", "4096"], 2);
    other.fails(&["init", "--kdf-iterations", "1"], 2);
    // A vault readable by others is refused with a chmod hint.
    fs::set_permissions(&tv.vault, fs::Permissions::from_mode(0o644)).unwrap();
    let err = tv.fails(&["list"], 10);
    assert!(err.contains("chmod 600"), "{err}");
    fs::set_permissions(&tv.vault, fs::Permissions::from_mode(0o600)).unwrap();
    // A symlinked vault path is refused.
    let link = tv.home.join("link.sfv");
    std::os::unix::fs::symlink(&tv.vault, &link).unwrap();
    tv.fails(&["--vault", link.to_str().unwrap(), "list"], 10);
    // A vault in a directory others can write to (even sticky, like /tmp) is refused.
    let dir = tv.vault.parent().unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = tv.fails(&["list"], 10);
    assert!(err.contains("writable by other users"), "{err}");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    // No vault at all.
    TestVault::empty().fails(&["list"], 3);
}

#[test]
fn default_kdf_cost_opens_and_is_timed() {
    let tv = TestVault::empty();
    tv.ok(&["init"]);
    let bytes = fs::read(&tv.vault).unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[12..16].try_into().unwrap()),
        64 * 1024
    );
    assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 3);
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 4);
    tv.ok(&["add", "a/b", "--consumer-key", "K", "--no-secret"]);
    let started = Instant::now();
    assert_eq!(tv.get("a/b", "consumer_key"), "K");
    eprintln!("open+get at the default KDF: {:?}", started.elapsed());
}

#[test]
fn completions_and_help_teach() {
    let tv = TestVault::empty();
    let bash = tv.ok(&["completions", "bash"]);
    // The registration of the dynamic engine: the binary answers each Tab.
    assert!(bash.contains("SFVAULT_COMPLETE") && bash.contains("complete -o nospace"));
    let help = tv.ok(&["--help"]);
    for word in ["Quick start", "SFVAULT_PASSPHRASE_FILE", "Exit codes"] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    tv.fails(&["frobnicate"], 2);
}

/// A full or closed stderr changes nothing but the messages: exit codes stay the documented
/// ones (no panic, exit 101) and writes still happen.
#[test]
fn a_full_stderr_keeps_exit_codes_and_writes() {
    let tv = TestVault::new();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let status = |args: &[&str]| {
        let mut c = tv.cmd();
        c.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(full());
        c.status().unwrap().code()
    };
    assert_eq!(
        status(&["add", "a/b", "--consumer-key", "K", "--no-secret"]),
        Some(0)
    );
    assert_eq!(status(&["get", "a/b", "nosuch"]), Some(3));
    assert_eq!(status(&["get", "a/b"]), Some(2));
    assert_eq!(tv.get("a/b", "consumer_key"), "K");
}

/// Make a FIFO at `path` (no writer will ever open it).
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_fifo_at_the_vault_path_or_as_a_backup_is_refused_at_once() {
    let tv = TestVault::new();
    fs::remove_file(&tv.vault).unwrap();
    mkfifo(&tv.vault);
    let started = Instant::now();
    let err = tv.fails(&["get", "acme/ci", "consumer_key"], 2);
    assert!(err.contains("FIFO"), "{err}");
    tv.fails(&["list"], 2);
    tv.fails(&["backup", tv.home.join("b.sfv").to_str().unwrap()], 2);
    let restore_from = tv.home.join("pipe.sfv");
    mkfifo(&restore_from);
    let other = TestVault::new();
    let err = other.fails(&["restore", restore_from.to_str().unwrap()], 2);
    assert!(err.contains("FIFO"), "{err}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "FIFO refusals took {took:?}");
    eprintln!("five FIFO refusals took {took:?}");
}

#[test]
fn an_agent_whose_vault_becomes_a_fifo_stops_and_lock_returns_fast() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    tv.ok(&["unlock", "--timeout", "10m"]);
    fs::remove_file(&tv.vault).unwrap();
    mkfifo(&tv.vault);
    let started = Instant::now();
    let out = tv.run(&["get", "acme/ci", "consumer_key"], None);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let _ = tv.run(&["lock"], None);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "get + lock took {took:?}");
    // The agent is gone (it stops rather than serve a vault it cannot re-read).
    let status = tv.run(&["status"], None);
    assert_ne!(status.status.code(), Some(0), "{status:?}");
}

#[test]
fn restore_asks_before_a_costlier_kdf_and_reads_nothing_over_the_cap() {
    let tv = TestVault::new();
    let foreign = tv.home.join("sent-to-me.sfv");
    let mut bytes = fs::read(&tv.vault).unwrap();
    // The same file asking for 40 MiB instead of the minimum 19 MiB (its key wrap then fails).
    bytes[12..16].copy_from_slice(&(40u32 * 1024).to_le_bytes());
    write_private(&foreign, &bytes);
    let err = tv.fails(&["restore", foreign.to_str().unwrap()], 2);
    assert!(
        err.contains("more key-derivation work") && err.contains("40 MiB") && err.contains("--yes"),
        "{err}"
    );
    // With --yes the work is done, and the altered header fails as a wrong passphrase would.
    tv.fails(&["restore", "--yes", foreign.to_str().unwrap()], 4);
    // A file over the 256 MiB cap is refused from its size, before a byte is read.
    let huge = tv.home.join("huge.sfv");
    let f = fs::File::create(&huge).unwrap();
    f.set_len(300 * 1024 * 1024).unwrap();
    let started = Instant::now();
    let err = tv.fails(&["restore", huge.to_str().unwrap()], 6);
    assert!(err.contains("over the 256 MiB limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A vault in a shared directory (/tmp) is refused without advice to open or close /tmp: that
/// directory is not the user's to change.
#[test]
fn a_vault_in_a_shared_directory_gets_no_chmod_advice() {
    let tv = TestVault::empty();
    let path = format!("/tmp/sfvault-test-{}.sfv", std::process::id());
    let mut args = vec!["--vault", path.as_str()];
    args.extend(support::INIT_MIN_KDF);
    let out = tv.run(&args, None);
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(!err.contains("chmod"), "{err}");
    assert!(err.contains("not yours to close"), "{err}");
}
