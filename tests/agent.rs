//! The agent, driven through the real binary: unlock once, fetch many times without a
//! passphrase; lock, timeouts, status that does not keep it alive, other uids refused,
//! interleaved writers, SIGKILL, re-keying, and protocol versions.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

fn unlocked(timeout: &str) -> TestVault {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "KEY-1", "--no-secret"]);
    tv.ok(&["unlock", "--timeout", timeout]);
    tv
}

/// Run with no passphrase source at all: only the agent can answer.
fn agent_only(tv: &TestVault, args: &[&str]) -> std::process::Output {
    run_cmd(tv.bare_cmd(), args, None)
}

fn agent_pid(tv: &TestVault) -> i32 {
    let out = agent_only(tv, &["status", "--json"]);
    assert_success(&out, &["status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["agent_pid"].as_i64().unwrap() as i32
}

#[test]
fn unlock_once_then_200_gets_without_a_passphrase() {
    let tv = unlocked("15m");
    let started = Instant::now();
    for i in 0..200 {
        let out = agent_only(&tv, &["get", "-n", "acme/ci", "consumer_key"]);
        assert_success(&out, &["get", &i.to_string()]);
        assert_eq!(out.stdout, b"KEY-1", "get #{i}");
    }
    eprintln!("200 warm gets (debug build): {:?}", started.elapsed());
    // Writes go through the agent too, and reach the file.
    let out = agent_only(&tv, &["set", "acme/ci", "username", "ci@acme.com"]);
    assert_success(&out, &["set via agent"]);
    assert_eq!(
        tv.ok(&["--no-agent", "get", "-n", "acme/ci", "username"]),
        "ci@acme.com"
    );
}

/// `get` has a hand-written parser in front of clap for speed: every spelling, whichever
/// parser takes it, must give the same answer, and clap's errors must stay clap's.
#[test]
fn every_spelling_of_get_gives_the_same_answer() {
    let tv = unlocked("15m");
    let vault = tv.vault.to_str().unwrap().to_owned();
    let vault_eq = format!("--vault={vault}");
    let spellings: &[&[&str]] = &[
        &["get", "-n", "acme/ci", "consumer_key"],
        &["get", "acme/ci", "consumer_key", "--no-newline"],
        &["--vault", &vault, "get", "acme/ci", "-n", "consumer_key"],
        &[&vault_eq, "-q", "get", "acme/ci", "consumer_key", "-n"],
        &["get", "acme/ci", "consumer_key", "-n", "--vault", &vault],
        &["get", "-qn", "acme/ci", "consumer_key"],
        &["get", "-n", "--", "acme/ci", "consumer_key"],
    ];
    for args in spellings {
        let out = agent_only(&tv, args);
        assert_success(&out, args);
        assert_eq!(out.stdout, b"KEY-1", "{args:?}");
    }
    let out = agent_only(&tv, &["get", "acme/ci", "consumer_key"]);
    assert_eq!(out.stdout, b"KEY-1\n");
    let out = agent_only(&tv, &["--json", "get", "acme/ci", "consumer_key"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["value"], "KEY-1");

    // SFVAULT_PATH names the vault; --vault wins over it; an empty one is a usage error.
    let elsewhere = tv.root.path().join("elsewhere.sfv");
    let with_env = |value: &std::ffi::OsStr, args: &[&str]| {
        let mut cmd = tv.bare_cmd();
        cmd.env("XDG_DATA_HOME", tv.root.path().join("empty"))
            .env("SFVAULT_PATH", value);
        run_cmd(cmd, args, None)
    };
    let out = with_env(
        tv.vault.as_os_str(),
        &["get", "-n", "acme/ci", "consumer_key"],
    );
    assert_success(&out, &["get with SFVAULT_PATH"]);
    assert_eq!(out.stdout, b"KEY-1");
    let out = with_env(
        elsewhere.as_os_str(),
        &["get", "acme/ci", "consumer_key", "--vault", &vault],
    );
    assert_eq!(out.stdout, b"KEY-1\n");
    let out = with_env(elsewhere.as_os_str(), &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 3, &["get from a missing vault"]);
    let out = with_env("".as_ref(), &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 2, &["get with an empty SFVAULT_PATH"]);
    // clap refuses an empty one even next to --vault; so must the fast path.
    let out = with_env(
        "".as_ref(),
        &["--vault", &vault, "get", "acme/ci", "consumer_key"],
    );
    assert_code(&out, 2, &["get --vault with an empty SFVAULT_PATH"]);
    let out = with_env("".as_ref(), &["--vault", &vault, "list"]);
    assert_code(&out, 2, &["list --vault with an empty SFVAULT_PATH"]);

    for bad in [
        &["get", "acme/ci"][..],
        &["get", "acme/ci", "consumer_key", "extra"],
        &["-n", "get", "acme/ci", "consumer_key"],
        &["--json", "--json", "get", "acme/ci", "consumer_key"],
        &["get", "acme/ci", "consumer_key", "--vault"],
    ] {
        let out = agent_only(&tv, bad);
        assert_code(&out, 2, bad);
        if bad.contains(&"--json") {
            assert_json_error(&out, "usage");
        } else {
            assert!(out.stdout.is_empty(), "{bad:?}");
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("try '--help'"),
            "{bad:?}: clap's message, got {err}"
        );
    }
}

#[test]
fn lock_and_timeout_leave_no_way_in_without_a_passphrase() {
    let tv = unlocked("15m");
    tv.ok(&["lock"]);
    let out = agent_only(&tv, &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 5, &["get after lock"]);
    assert_code(&agent_only(&tv, &["status"]), 5, &["status after lock"]);

    let tv = unlocked("2s");
    assert_success(
        &agent_only(&tv, &["get", "acme/ci", "consumer_key"]),
        &["get before timeout"],
    );
    std::thread::sleep(Duration::from_millis(2600));
    let out = agent_only(&tv, &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 5, &["get after timeout"]);
}

/// `lock` returns only once the agent has stopped (given up its claim on the socket, which it
/// does after closing it and wiping its key), so a script can unlock again at once.
#[test]
fn lock_returns_only_once_the_agent_is_gone() {
    let tv = unlocked("15m");
    let paths = sfvault::agent::AgentPaths::for_vault(&tv.vault, &tv.agent_dir()).unwrap();
    let claim = sfvault::agent::server::claim_path(&paths.socket);
    for round in 0..5 {
        tv.ok(&["lock"]);
        let file = fs::File::open(&claim).unwrap();
        assert!(
            file.try_lock().is_ok(),
            "round {round}: the agent still holds its claim after lock returned"
        );
        drop(file);
        tv.ok(&["unlock", "--timeout", "15m"]);
    }
    tv.ok(&["lock"]);
}

#[test]
fn status_does_not_extend_the_idle_timeout() {
    let tv = unlocked("2s");
    let started = Instant::now();
    let mut last_unlocked = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(5) {
        let out = agent_only(&tv, &["status"]);
        match out.status.code() {
            Some(0) => last_unlocked = started.elapsed(),
            Some(5) => break,
            other => panic!("status exited {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(
        last_unlocked < Duration::from_millis(2400),
        "still unlocked after {last_unlocked:?} of status polling with a 2 s timeout"
    );
    assert_code(&agent_only(&tv, &["status"]), 5, &["final status"]);
}

#[test]
fn another_uid_is_refused_by_the_agent() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let tv = unlocked("15m");
    // Open the filesystem path to the socket so the connection reaches the agent: the agent's
    // own peer-uid check is what is under test here.
    let bin = copy_of_binary(&tv.root.path().join("sfvault-copy"));
    for dir in [
        tv.root.path().to_path_buf(),
        tv.root.path().join("run"),
        tv.agent_dir(),
        tv.home.clone(),
        tv.home.join(".local"),
        tv.home.join(".local/share"),
        tv.vault.parent().unwrap().to_path_buf(),
    ] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).unwrap();
    }
    let socket = fs::read_dir(tv.agent_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("agent socket");
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).unwrap();
    let mut cmd = std::process::Command::new(&bin);
    cmd.env_clear()
        .env("HOME", &tv.home)
        .env("XDG_RUNTIME_DIR", tv.root.path().join("run"))
        .env("XDG_DATA_HOME", tv.home.join(".local/share"))
        .uid(65534)
        .gid(65534);
    let out = run_cmd(
        cmd,
        &[
            "--vault",
            tv.vault.to_str().unwrap(),
            "get",
            "acme/ci",
            "consumer_key",
        ],
        None,
    );
    assert!(!out.status.success(), "nobody got a value: {:?}", out);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("KEY-1"));
    let log_path = socket.with_extension("log");
    // The agent logs the refusal when it gets to the connection: wait for it (bounded).
    let started = Instant::now();
    let mut log = String::new();
    while started.elapsed() < Duration::from_secs(3) {
        log = fs::read_to_string(&log_path).unwrap();
        if log.contains("refused") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        log.contains("refused a connection from uid 65534"),
        "agent log: {log}"
    );
    // The agent still serves its owner.
    for dir in [tv.agent_dir(), tv.vault.parent().unwrap().to_path_buf()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(
        agent_only(&tv, &["get", "-n", "acme/ci", "consumer_key"]).stdout,
        b"KEY-1"
    );
}

#[test]
fn writes_through_the_agent_and_without_it_interleave_without_loss() {
    let tv = unlocked("15m");
    std::thread::scope(|s| {
        let tv = &tv;
        s.spawn(move || {
            for i in 0..25 {
                let out = agent_only(
                    tv,
                    &[
                        "add",
                        &format!("agent/app{i}"),
                        "--consumer-key",
                        "A",
                        "--no-secret",
                    ],
                );
                assert_success(&out, &["add via agent"]);
            }
        });
        s.spawn(move || {
            for i in 0..25 {
                tv.ok(&[
                    "--no-agent",
                    "add",
                    &format!("direct/app{i}"),
                    "--consumer-key",
                    "D",
                    "--no-secret",
                ]);
            }
        });
    });
    for args in [
        &["list", "--json"][..],
        &["--no-agent", "list", "--json"][..],
    ] {
        let out = if args[0] == "list" {
            agent_only(&tv, args)
        } else {
            tv.run(args, None)
        };
        assert_success(&out, args);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 51, "{args:?}: entries lost");
    }
}

/// Commands racing an agent that locks (here: many lock/unlock rounds) never fail: a request
/// the stopping agent did not read is carried out without it.
#[test]
fn commands_racing_a_lock_fall_back_instead_of_failing() {
    let tv = unlocked("15m");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let failures = std::sync::Mutex::new(Vec::new());
    let gets = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let out = tv.run(&["get", "-n", "acme/ci", "consumer_key"], None);
                    gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !out.status.success() || out.stdout != b"KEY-1" {
                        failures
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&out.stderr).into_owned());
                    }
                }
            });
        }
        for _ in 0..12 {
            std::thread::sleep(Duration::from_millis(150));
            tv.ok(&["lock"]);
            tv.ok(&["unlock", "--timeout", "15m"]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    eprintln!("{} gets raced 12 lock/unlock rounds", gets.into_inner());
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        failures.first()
    );
    tv.ok(&["lock"]);
}

/// Every reader gives the same answer through the agent as without it: `history --reveal`
/// shows past secrets, `show --reveal` only current ones.
#[test]
fn history_and_show_answer_alike_with_and_without_the_agent() {
    let tv = unlocked("15m");
    for secret in ["OLD-SECRET-1", "OLD-SECRET-2", "NEW-SECRET"] {
        tv.ok_stdin(
            &["set", "acme/ci", "consumer_secret", "-"],
            secret.as_bytes(),
        );
    }
    for args in [
        &[
            "history",
            "acme/ci",
            "consumer_secret",
            "--reveal",
            "--json",
        ][..],
        &["history", "acme/ci", "--json"],
        &["show", "acme/ci", "--reveal", "--json"],
        &["show", "acme/ci", "--json"],
    ] {
        let through_agent = agent_only(&tv, args);
        assert_success(&through_agent, args);
        let direct: Vec<&str> = std::iter::once("--no-agent")
            .chain(args.iter().copied())
            .collect();
        let direct = tv.ok(&direct);
        assert_eq!(
            String::from_utf8_lossy(&through_agent.stdout),
            direct,
            "{args:?}"
        );
    }
    let revealed = tv.ok(&["history", "acme/ci", "consumer_secret", "--reveal"]);
    assert!(revealed.contains("OLD-SECRET-1") && revealed.contains("OLD-SECRET-2"));
    let shown = tv.ok(&["show", "acme/ci", "--reveal", "--json"]);
    assert!(
        shown.contains("NEW-SECRET") && !shown.contains("OLD-SECRET"),
        "{shown}"
    );
}

/// A client that trickles its request a byte a second is cut off after the 5 s a whole
/// request may take, and meanwhile others are served.
#[test]
fn a_trickling_client_cannot_hold_the_agent() {
    let tv = unlocked("15m");
    let paths = sfvault::agent::AgentPaths::for_vault(&tv.vault, &tv.agent_dir()).unwrap();
    let mut slow = std::os::unix::net::UnixStream::connect(&paths.socket).unwrap();
    let trickler = std::thread::spawn(move || {
        for byte in b"SFVA\x02\x00\x10\x00\x00\x00\x00\x00" {
            if slow.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = agent_only(&tv, &["get", "-n", "acme/ci", "consumer_key"]);
    let waited = started.elapsed();
    assert_eq!(out.stdout, b"KEY-1");
    assert!(
        waited < Duration::from_secs(3),
        "get waited {waited:?} behind the trickler"
    );
    trickler.join().unwrap();
}

/// A vault made unsafe (loose mode) or replaced by a file that is not a vault ends the agent:
/// it wipes its key instead of keeping it while refusing every request.
#[test]
fn an_unsafe_or_foreign_vault_file_stops_the_agent() {
    let tv = unlocked("15m");
    let stopped_within = |limit: Duration| {
        let started = Instant::now();
        while started.elapsed() < limit {
            if agent_only(&tv, &["status"]).status.code() == Some(5) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    fs::set_permissions(&tv.vault, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        stopped_within(Duration::from_secs(3)),
        "agent kept a key for a 0644 vault"
    );
    fs::set_permissions(&tv.vault, fs::Permissions::from_mode(0o600)).unwrap();

    tv.ok(&["unlock"]);
    let good = fs::read(&tv.vault).unwrap();
    let foreign = tv.vault.with_extension("foreign");
    write_private(&foreign, b"not a vault at all");
    fs::rename(&foreign, &tv.vault).unwrap();
    assert!(
        stopped_within(Duration::from_secs(3)),
        "agent kept a key for a foreign file"
    );
    write_private(&foreign, &good);
    fs::rename(&foreign, &tv.vault).unwrap();
    assert_eq!(tv.get("acme/ci", "consumer_key"), "KEY-1");

    // A directory loosened under a running agent (the file's stamp does not change).
    tv.ok(&["unlock"]);
    let dir = tv.vault.parent().unwrap().to_path_buf();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(
        stopped_within(Duration::from_secs(3)),
        "agent kept a key in a 0777 directory"
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

    // The vault path turned into a directory.
    tv.ok(&["unlock"]);
    let aside = tv.vault.with_extension("aside");
    fs::rename(&tv.vault, &aside).unwrap();
    fs::create_dir(&tv.vault).unwrap();
    assert!(
        stopped_within(Duration::from_secs(3)),
        "agent kept a key for a directory"
    );
    fs::remove_dir(&tv.vault).unwrap();
    fs::rename(&aside, &tv.vault).unwrap();
    assert_eq!(tv.get("acme/ci", "consumer_key"), "KEY-1");
}

/// Where it cannot fail later (unlimited RLIMIT_MEMLOCK or CAP_IPC_LOCK), the agent locks all
/// its memory, decrypted entries included; elsewhere its log says it did not.
#[test]
fn the_agent_locks_all_its_memory_where_allowed() {
    let tv = unlocked("15m");
    let pid = agent_pid(&tv);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let log = fs::read_dir(tv.agent_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect::<String>();
    // The agent inherits this process's capabilities and limits: allowed means CAP_IPC_LOCK
    // (bit 14 of CapEff) or an unlimited RLIMIT_MEMLOCK; root without the capability (a
    // default Docker container) is not allowed.
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = own
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap();
    let unlimited = rustix::process::getrlimit(rustix::process::Resource::Memlock)
        .current
        .is_none();
    if cap_eff & (1 << 14) != 0 || unlimited {
        let locked = log.contains("all memory locked");
        assert!(locked || log.contains("mlockall refused"), "{log}");
        if locked {
            // Far more than the one locked key page: the heap holding the entries is in.
            assert!(locked_kib > 1024, "VmLck {locked_kib} kB");
        }
    } else {
        assert!(log.contains("not locked in memory, only the key"), "{log}");
    }
}

#[test]
fn sigkill_of_the_agent_loses_nothing() {
    let tv = unlocked("15m");
    for i in 0..5 {
        assert_success(
            &agent_only(
                &tv,
                &["set", "acme/ci", "notes", &format!("v{i}"), "--public"],
            ),
            &["set"],
        );
    }
    let pid = agent_pid(&tv);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The stale socket is ignored: no agent, no passphrase → exit 5.
    assert_code(
        &agent_only(&tv, &["get", "acme/ci", "notes"]),
        5,
        &["get after kill"],
    );
    // With a passphrase the data is all there, and unlock works again.
    assert_eq!(tv.get("acme/ci", "notes"), "v4");
    assert_eq!(tv.get("acme/ci", "consumer_key"), "KEY-1");
    tv.ok(&["unlock"]);
    assert_eq!(
        agent_only(&tv, &["get", "-n", "acme/ci", "notes"]).stdout,
        b"v4"
    );
}

#[test]
fn a_passphrase_change_locks_the_agent() {
    let tv = unlocked("15m");
    let new_pass = tv.root.path().join("new-pass");
    write_private(&new_pass, b"another passphrase entirely\n");
    let mut cmd = tv.cmd();
    cmd.env("SFVAULT_NEW_PASSPHRASE_FILE", &new_pass);
    assert_success(&run_cmd(cmd, &["passwd"], None), &["passwd"]);
    // At once, before the agent has noticed: the command falls back to unlocking by itself.
    let mut c = tv.bare_cmd();
    c.env("SFVAULT_PASSPHRASE_FILE", &new_pass);
    let out = run_cmd(c, &["get", "-n", "acme/ci", "consumer_key"], None);
    assert_success(&out, &["get right after passwd"]);
    assert_eq!(out.stdout, b"KEY-1");
    std::thread::sleep(Duration::from_millis(400));
    assert_code(
        &agent_only(&tv, &["get", "acme/ci", "consumer_key"]),
        5,
        &["get after passwd"],
    );
}

#[test]
fn a_changed_vault_is_reloaded_by_the_agent() {
    let tv = unlocked("15m");
    tv.ok(&[
        "--no-agent",
        "set",
        "acme/ci",
        "username",
        "written-directly",
    ]);
    assert_eq!(
        agent_only(&tv, &["get", "-n", "acme/ci", "username"]).stdout,
        b"written-directly"
    );
}

#[test]
fn agents_of_another_protocol_version_are_named_not_misread() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    // A fake agent of version 7 on this vault's socket.
    let paths = sfvault::agent::AgentPaths::for_vault(&tv.vault, &tv.agent_dir()).unwrap();
    fs::create_dir_all(tv.agent_dir()).unwrap();
    fs::set_permissions(tv.agent_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let listener = UnixListener::bind(&paths.socket).unwrap();
    let fake = std::thread::spawn(move || {
        // The client's probe carries its request: one connection for `get`, one for `lock`.
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = [0u8; 10];
            if s.read_exact(&mut head).is_ok() {
                let _ = s.write_all(b"SFVA\x07\x00\x00\x00\x00\x00");
            }
        }
    });
    let out = agent_only(&tv, &["get", "acme/ci", "consumer_key"]);
    assert_code(&out, 1, &["get against a v7 agent"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("protocol version 7") && err.contains("sfvault lock"),
        "{err}"
    );
    // `lock` falls back to SIGTERM only for real agents: the socket's peer here is this test
    // process, which must survive.
    let out = agent_only(&tv, &["lock"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an sfvault agent"));
    fake.join().unwrap();
    // And a real agent answers a client of another version with its own version.
    let tv2 = unlocked("15m");
    let paths = sfvault::agent::AgentPaths::for_vault(&tv2.vault, &tv2.agent_dir()).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(&paths.socket).unwrap();
    s.write_all(b"SFVA\x09\x00\x00\x00\x00\x00").unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert_eq!(&reply[..4], b"SFVA");
    assert_eq!(
        u16::from_le_bytes([reply[4], reply[5]]),
        sfvault::agent::protocol::PROTOCOL_VERSION
    );
    // Garbage is answered with an error, and the agent keeps serving.
    let mut s = std::os::unix::net::UnixStream::connect(&paths.socket).unwrap();
    s.write_all(&[0xff; 64]).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(
        agent_only(&tv2, &["get", "-n", "acme/ci", "consumer_key"]).stdout,
        b"KEY-1"
    );
}

#[test]
fn an_agent_whose_socket_vanished_stops_and_huge_timeouts_are_refused() {
    let tv = unlocked("0");
    let pid = agent_pid(&tv);
    let socket = fs::read_dir(tv.agent_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .unwrap();
    fs::remove_file(&socket).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Gone, or a zombie waiting for a reaper (this sandbox's init does not reap).
    let state = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let running = state
        .lines()
        .any(|l| l.starts_with("State:") && !l.contains("Z (zombie)"));
    assert!(
        !running,
        "the agent kept the key with no socket to reach it"
    );
    // Durations that would overflow are usage errors, not a crashing agent.
    tv.fails(&["unlock", "--timeout", "9223372036854775807"], 2);
    tv.fails(&["unlock", "--max-lifetime", "99999d"], 2);
}

// ---- Robustness against stray connections, hostile frames, stuck vault reads, signals ----

/// The agent's socket in `tv`'s world.
fn socket_of(tv: &TestVault) -> std::path::PathBuf {
    sfvault::agent::AgentPaths::for_vault(&tv.vault, &tv.agent_dir())
        .unwrap()
        .socket
}

/// Run `cmd` with `args`, killing it (and failing the test) if it has not finished within
/// `limit`: a test of something that used to hang must not hang the suite.
fn run_within(
    mut cmd: std::process::Command,
    args: &[&str],
    limit: Duration,
) -> (std::process::Output, Duration) {
    use std::process::Stdio;
    let started = Instant::now();
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (out, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "sfvault {args:?} still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True once process `pid` has exited (gone, or a zombie nobody reaped: this sandbox's init
/// does not reap).
fn has_exited(pid: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !status
        .lines()
        .any(|l| l.starts_with("State:") && !l.contains("Z (zombie)"))
}

/// The exit code of zombie `pid` (field 52 of /proc/PID/stat), if it is still unreaped.
fn zombie_exit_code(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    // `rest` starts at field 3 (state); exit_code is field 52.
    let raw: i32 = fields.get(52 - 3)?.parse().ok()?;
    Some(raw >> 8)
}

/// Wait up to `limit` for `what`; how long it took, or None.
fn within(limit: Duration, mut what: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if what() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A Unix listener on `path` with the given backlog, that never accepts.
fn never_accepting(path: &std::path::Path, backlog: i32) -> std::os::fd::OwnedFd {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType, bind, listen, socket};
    let fd = socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
    listen(&fd, backlog).unwrap();
    fd
}

/// The agent serves connections side by side: silent connections held open by a stray process
/// of the same user (here: 40, then 200, more than the agent keeps) do not delay a `get`.
#[test]
fn silent_connections_do_not_hold_up_a_get() {
    let tv = unlocked("15m");
    let socket = socket_of(&tv);
    let get = || {
        let (out, took) = run_within(
            tv.bare_cmd(),
            &["get", "-n", "acme/ci", "consumer_key"],
            Duration::from_secs(70),
        );
        assert_success(&out, &["get"]);
        assert_eq!(out.stdout, b"KEY-1");
        took
    };
    let alone = get();
    for count in [40, 200] {
        let silent: Vec<_> = (0..count)
            .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let crowded = get();
        eprintln!("warm get alone {alone:?}, with {count} silent connections {crowded:?}");
        assert!(
            crowded < Duration::from_secs(3),
            "get took {crowded:?} behind {count} silent connections"
        );
        drop(silent);
    }
}

/// A socket whose listen queue is full (an agent that stopped accepting) is "no agent": the
/// command unlocks by itself at once instead of blocking in connect(); and an agent that
/// accepts but never answers is given up on in a bounded time, with the same fallback.
#[test]
fn an_agent_that_does_not_accept_or_answer_counts_as_none() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "KEY-1", "--no-secret"]);
    fs::create_dir_all(tv.agent_dir()).unwrap();
    fs::set_permissions(tv.agent_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let socket = socket_of(&tv);

    // Listen queue full: a backlog of 0 holds one pending connection.
    let listener = never_accepting(&socket, 0);
    let mut queued = Vec::new();
    loop {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, socket_with};
        let c = socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        match rustix::net::connect(&c, &SocketAddrUnix::new(&socket).unwrap()) {
            Ok(()) => queued.push(c),
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => panic!("connect: {e}"),
        }
        assert!(queued.len() < 64, "the listen queue never filled");
    }
    let (out, took) = run_within(
        tv.cmd(),
        &["get", "-n", "acme/ci", "consumer_key"],
        Duration::from_secs(30),
    );
    assert_success(&out, &["get with a full listen queue"]);
    assert_eq!(out.stdout, b"KEY-1");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // With no passphrase source: as with no agent, "locked" (5), promptly.
    let (out, took) = run_within(
        tv.bare_cmd(),
        &["get", "acme/ci", "consumer_key"],
        Duration::from_secs(30),
    );
    assert_code(&out, 5, &["get with a full listen queue, no passphrase"]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(queued);
    drop(listener);
    fs::remove_file(&socket).unwrap();

    // Accepts into its queue but never answers: read requests fall back once the answer is
    // overdue (a read is safe to repeat here).
    let _listener = never_accepting(&socket, 16);
    let (out, took) = run_within(
        tv.cmd(),
        &["get", "-n", "acme/ci", "consumer_key"],
        Duration::from_secs(70),
    );
    assert_success(&out, &["get from an agent that never answers"]);
    assert_eq!(out.stdout, b"KEY-1");
    eprintln!("get gave up on a silent agent after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// A request whose body declares a huge string cannot make the agent reserve memory for it:
/// under an address-space limit it used to abort, leaving a stale socket.
#[test]
fn a_hostile_length_cannot_make_the_agent_allocate() {
    let tv = unlocked("15m");
    let pid = agent_pid(&tv);
    let status_kib = |key: &str| -> u64 {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    // Room for threads and arenas, not for a 255 MiB buffer.
    let limit = status_kib("VmSize:") * 1024 + (100 << 20);
    rustix::process::prlimit(
        rustix::process::Pid::from_raw(pid),
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
    .unwrap();
    // Request::Field (variant 1) whose entry declares 255 MiB and carries nothing.
    let mut hostile = b"SFVA\x02\x00\x0c\x00\x00\x00".to_vec();
    hostile.extend_from_slice(&1u32.to_le_bytes());
    hostile.extend_from_slice(&(255u64 << 20).to_le_bytes());
    let hwm_before = status_kib("VmHWM:");
    let mut s = std::os::unix::net::UnixStream::connect(socket_of(&tv)).unwrap();
    s.write_all(&hostile).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        String::from_utf8_lossy(&reply).contains("could not read the request"),
        "reply {reply:?}"
    );
    let out = agent_only(&tv, &["get", "-n", "acme/ci", "consumer_key"]);
    assert_success(&out, &["get after a hostile request"]);
    assert_eq!(out.stdout, b"KEY-1");
    let hwm = status_kib("VmHWM:");
    eprintln!(
        "agent after a {}-byte hostile request: VmHWM {hwm_before} -> {hwm} kB, VmPeak {} kB",
        hostile.len(),
        status_kib("VmPeak:")
    );
    // (The absolute peak depends on the build: a debug binary's own code is most of it.)
    assert!(
        hwm < hwm_before + 2048,
        "VmHWM {hwm_before} -> {hwm} kB after a hostile request"
    );
}

/// A vault read that blocks (a FIFO put at the vault's path) holds the vault, not the agent:
/// the idle timeout still fires and `lock` still works, and either way the agent removes its
/// socket and exits in a bounded time.
#[test]
fn a_blocked_vault_read_cannot_keep_the_agent_alive() {
    let tv = unlocked("2s");
    let aside = tv.vault.with_extension("aside");
    let fifo_in_place = || {
        fs::rename(&tv.vault, &aside).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &tv.vault,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    };
    // Wake any reader still blocked on the FIFO, then put the vault back.
    let restore = || {
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&tv.vault);
        fs::remove_file(&tv.vault).unwrap();
        fs::rename(&aside, &tv.vault).unwrap();
    };
    use std::os::unix::fs::OpenOptionsExt;

    // The idle timeout (2 s) fires although the vault cannot be read.
    let pid = agent_pid(&tv);
    let socket = socket_of(&tv);
    fifo_in_place();
    let exited = within(Duration::from_secs(8), || {
        !socket.exists() && has_exited(pid)
    });
    restore();
    assert!(
        exited.is_some(),
        "the agent outlived its idle timeout while a vault read blocked"
    );

    // `lock` while a read blocks: answered, and the agent gone, in a bounded time.
    tv.ok(&["unlock", "--timeout", "15m"]);
    let pid = agent_pid(&tv);
    fifo_in_place();
    std::thread::sleep(Duration::from_millis(300)); // the agent's re-read is now blocked
    let (out, took) = run_within(tv.bare_cmd(), &["lock"], Duration::from_secs(70));
    let gone = within(Duration::from_secs(3), || {
        !socket.exists() && has_exited(pid)
    });
    restore();
    assert_success(&out, &["lock"]);
    eprintln!("lock with a blocked vault read took {took:?}");
    assert!(took < Duration::from_secs(5), "lock took {took:?}");
    assert!(gone.is_some(), "the agent survived lock");
}

/// SIGTERM, SIGINT and SIGHUP make the agent wipe its key, remove its socket and exit 0 at
/// once, like `lock`.
#[test]
fn signals_stop_the_agent_cleanly() {
    let tv = unlocked("15m");
    let socket = socket_of(&tv);
    for signal in [
        rustix::process::Signal::TERM,
        rustix::process::Signal::INT,
        rustix::process::Signal::HUP,
    ] {
        let pid = agent_pid(&tv);
        let sent = Instant::now();
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), signal)
            .unwrap();
        let gone = within(Duration::from_secs(3), || {
            !socket.exists() && has_exited(pid)
        });
        eprintln!("{signal:?}: socket removed and agent exited after {gone:?}");
        assert!(
            gone.is_some(),
            "{signal:?}: socket present {}, exited {}",
            socket.exists(),
            has_exited(pid)
        );
        assert!(sent.elapsed() < Duration::from_secs(1), "{signal:?}");
        if let Some(code) = zombie_exit_code(pid) {
            assert_eq!(code, 0, "{signal:?}: exit code");
        }
        let log = fs::read_to_string(socket.with_extension("log")).unwrap();
        assert!(
            log.lines().last().unwrap_or("").contains("stopped"),
            "{signal:?}: {log}"
        );
        // No stale socket: the next command finds no agent and unlock starts a new one.
        assert_code(&agent_only(&tv, &["status"]), 5, &["status"]);
        tv.ok(&["unlock", "--timeout", "15m"]);
    }
}

/// The agent's claim file is 0600 (an existing looser one is tightened), and its log is never
/// opened through a symlink nor anything but a regular file.
#[test]
fn the_agent_claim_is_private_and_its_log_is_a_plain_file() {
    use std::os::unix::fs::MetadataExt;
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "KEY-1", "--no-secret"]);
    let socket = socket_of(&tv);
    let claim = sfvault::agent::server::claim_path(&socket);
    let log = socket.with_extension("log");
    let mode = |p: &std::path::Path| fs::symlink_metadata(p).unwrap().mode() & 0o777;

    // Created under a umask of 022: still 0600.
    let mut cmd = tv.cmd();
    // SAFETY: umask is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
            Ok(())
        });
    }
    assert_success(&run_cmd(cmd, &["unlock"], None), &["unlock"]);
    assert_eq!(mode(&claim), 0o600, "new claim file");
    tv.ok(&["lock"]);
    // An existing 0644 one is tightened.
    fs::set_permissions(&claim, fs::Permissions::from_mode(0o644)).unwrap();
    tv.ok(&["unlock"]);
    assert_eq!(mode(&claim), 0o600, "existing claim file");
    tv.ok(&["lock"]);

    // A symlink at the log path is refused, and its target untouched.
    let target = tv.root.path().join("elsewhere.txt");
    write_private(&target, b"untouched");
    fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let out = tv.run(&["unlock"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "unlock through a symlinked log");
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"untouched");
    assert!(!socket.exists());
    fs::remove_file(&log).unwrap();

    // A FIFO at the log path: refused at once, not waited on.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &log,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let (out, took) = run_within(tv.cmd(), &["unlock"], Duration::from_secs(20));
    assert!(!out.status.success(), "unlock with a FIFO log");
    assert!(took < Duration::from_secs(5));
    assert!(!socket.exists());
    fs::remove_file(&log).unwrap();
    tv.ok(&["unlock"]);
    assert_eq!(
        agent_only(&tv, &["get", "-n", "acme/ci", "consumer_key"]).stdout,
        b"KEY-1"
    );
}
