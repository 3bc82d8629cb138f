//! Everyday hand-off use (issue 17), through the real binary: `read` by reference, `exec`
//! opening a shell, `run --mask`, `get --clip`/`read --clip`, the hints before reading a
//! terminal, and `run` naming the variable on every failure.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_sf::{AppConfig, FakeSalesforce, vault_with_app};
use support::*;

const KEY: &str = "3MVG9everydayKey";

/// A vault whose `acme/ci` uses the client-credentials flow against a fake Salesforce.
fn setup() -> (TestVault, FakeSalesforce, AppConfig) {
    let app = AppConfig {
        consumer_key: KEY.into(),
        consumer_secret: canary("everyday-secret"),
        username: "ci@acme.example.com".into(),
        ..AppConfig::default()
    };
    vault_with_app(app, "client-credentials")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An executable shell script at `path`.
fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn read_prints_one_value_by_reference() {
    let (tv, sf, app) = setup();
    assert_eq!(
        tv.ok(&["read", "sfvault://acme/ci/consumer_key"]),
        format!("{KEY}\n")
    );
    assert_eq!(
        tv.ok(&["read", "-n", "sfvault://acme/ci/consumer_secret"]),
        app.consumer_secret
    );
    // The pseudo-fields run the entry's flow: one token for both.
    let token = tv.ok(&["read", "--no-newline", "sfvault://acme/ci/access_token"]);
    assert!(sf.is_live(&token), "{token}");
    assert_eq!(
        tv.ok(&["read", "sfvault://acme/ci/instance_url"]),
        format!("{}\n", sf.url)
    );
    assert_eq!(sf.count("/services/oauth2/token"), 1);
    let json: Value =
        serde_json::from_str(&tv.ok(&["--json", "read", "sfvault://acme/ci/username"])).unwrap();
    assert_eq!(json["value"], app.username.as_str());
    assert_eq!(json["reference"], "sfvault://acme/ci/username");
    // A malformed reference: exit 2, saying what one looks like, before any unlock.
    for bad in [
        "acme/ci/consumer_key",
        "sfvault://acme/ci",
        "sfvault://acme/ci/Bad",
    ] {
        let out = run_cmd(tv.bare_cmd(), &["read", bad], None);
        assert_code(&out, 2, &["read", bad]);
        assert!(
            text(&out.stderr).contains("sfvault://ORG/APP/FIELD"),
            "{}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
    // Missing: exit 3, nothing on stdout.
    for missing in [
        "sfvault://acme/ci/password",
        "sfvault://acme/nope/consumer_key",
    ] {
        let out = tv.run(&["read", missing], None);
        assert_code(&out, 3, &["read", missing]);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn exec_without_a_command_opens_the_users_shell_with_the_environment() {
    let (tv, _sf, _) = setup();
    let shell = tv.root.path().join("fake-shell");
    script(
        &shell,
        "printf 'shell SFVAULT_ENTRY=%s SF_CONSUMER_KEY=%s token=%s\\n' \"$SFVAULT_ENTRY\" \"$SF_CONSUMER_KEY\" \"${SF_ACCESS_TOKEN:+yes}\"; exit 4",
    );
    let mut cmd = tv.cmd();
    cmd.env("SHELL", &shell);
    let out = run_cmd(cmd, &["exec", "acme/ci"], None);
    assert_eq!(out.status.code(), Some(4), "the shell's exit code: {out:?}");
    assert_eq!(
        text(&out.stdout),
        format!("shell SFVAULT_ENTRY=acme/ci SF_CONSUMER_KEY={KEY} token=yes\n")
    );
    let note = text(&out.stderr);
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(
        note.contains(shell.to_str().unwrap())
            && note.contains("acme/ci")
            && note.contains("`exit`"),
        "{note}"
    );
    // A command run by exec sees the marker too.
    let seen = tv.ok(&[
        "exec",
        "acme/ci",
        "--no-token",
        "--",
        "printenv",
        "SFVAULT_ENTRY",
    ]);
    assert_eq!(seen, "acme/ci\n");
    // No SHELL: /bin/sh, which reads its commands from stdin here.
    let out = tv.run(
        &["exec", "acme/ci", "--no-token"],
        Some(b"echo \"in sh: $SFVAULT_ENTRY $SF_USERNAME\"\n"),
    );
    assert_success(&out, &["exec with /bin/sh"]);
    assert_eq!(text(&out.stdout), "in sh: acme/ci ci@acme.example.com\n");
    // Inside such a shell, another is refused (exit 2) before any unlock.
    let mut cmd = tv.bare_cmd();
    cmd.env("SHELL", &shell).env("SFVAULT_ENTRY", "acme/other");
    let out = run_cmd(cmd, &["exec", "acme/ci"], None);
    assert_code(&out, 2, &["nested exec"]);
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("acme/other") && err.contains("SFVAULT_ENTRY"),
        "{err}"
    );
}

#[test]
fn run_mask_conceals_secrets_split_across_writes_and_keeps_the_exit_code() {
    let (tv, sf, app) = setup();
    let secret = app.consumer_secret.clone();
    let (head, tail) = secret.split_at(secret.len() / 2);
    // The secret is written in two pieces with a pause between them, on stdout and stderr;
    // the token whole; the consumer key (not secret) stays readable.
    let child = format!(
        "printf 'out %s' '{head}'; sleep 0.2; printf '%s end\\n' '{tail}'; \
         printf 'err %s' '{head}' >&2; sleep 0.2; printf '%s\\n' '{tail}' >&2; \
         echo \"token $T key $K\"; exit 7"
    );
    let with_env = || {
        let mut cmd = tv.cmd();
        cmd.env("S", "sfvault://acme/ci/consumer_secret")
            .env("T", "sfvault://acme/ci/access_token")
            .env("K", "sfvault://acme/ci/consumer_key");
        cmd
    };
    let out = run_cmd(
        with_env(),
        &["run", "--mask", "--", "sh", "-c", &child],
        None,
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        stdout,
        format!("out <concealed by sfvault> end\ntoken <concealed by sfvault> key {KEY}\n")
    );
    assert_eq!(stderr, "err <concealed by sfvault>\n");
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    assert_eq!(sf.issued().len(), 1);
    // Without --mask the output is the command's own (exec: no pipes).
    let out = run_cmd(with_env(), &["run", "--", "sh", "-c", &child], None);
    assert_eq!(out.status.code(), Some(7));
    assert!(text(&out.stdout).starts_with(&format!("out {secret} end\n")));
    // A signal that ends the command is told as 128 + N.
    let out = run_cmd(
        with_env(),
        &["run", "--mask", "--", "sh", "-c", "kill -TERM $$"],
        None,
    );
    assert_eq!(out.status.code(), Some(128 + 15));
}

/// A fake clipboard tool `name` in `bin`: copying keeps stdin in `dir/clipboard`, pasting
/// prints it, `--clear` empties it; every argv is logged in `dir/argv`.
fn fake_clipboard_tool(bin: &Path, name: &str, dir: &Path) {
    let d = dir.display();
    let body = format!(
        "echo \"{name} $*\" >> '{d}/argv'\n\
         case \" $* \" in\n\
         *' -out '*|*' --output '*|*' --no-newline '*) cat '{d}/clipboard' 2>/dev/null ;;\n\
         *' --clear '*) : > '{d}/clipboard' ;;\n\
         *) cat > '{d}/clipboard.new' && mv '{d}/clipboard.new' '{d}/clipboard' ;;\n\
         esac"
    );
    script(&bin.join(name), &body);
}

/// Wait (at most 15 s) until `f` holds `want`.
fn wait_for_content(f: &Path, want: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if fs::read_to_string(f).is_ok_and(|c| c == want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn clip_copies_through_stdin_and_clears_only_its_own_value() {
    let (tv, _sf, app) = setup();
    let dir = tv.root.path().join("clip");
    let bin = tv.root.path().join("bin");
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&bin).unwrap();
    for tool in ["xclip", "wl-copy", "wl-paste"] {
        fake_clipboard_tool(&bin, tool, &dir);
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let clipboard = dir.join("clipboard");
    let secret = app.consumer_secret.clone();

    // X11: xclip, cleared after 1 s.
    let mut cmd = tv.cmd();
    cmd.env("PATH", &path).env("DISPLAY", ":42");
    let out = run_cmd(
        cmd,
        &[
            "get",
            "--clip",
            "--clip-seconds",
            "1",
            "acme/ci",
            "consumer_secret",
        ],
        None,
    );
    assert_success(&out, &["get --clip"]);
    assert!(out.stdout.is_empty(), "printed: {}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        "copied acme/ci consumer_secret to the clipboard; it clears in 1 s\n"
    );
    assert_eq!(fs::read_to_string(&clipboard).unwrap(), secret);
    assert!(
        wait_for_content(&clipboard, ""),
        "the clipboard was not cleared"
    );
    let argv = fs::read_to_string(dir.join("argv")).unwrap();
    assert!(
        argv.starts_with("xclip -selection clipboard -in\n"),
        "{argv}"
    );
    assert!(
        argv.contains("-out"),
        "the clearer did not read back: {argv}"
    );
    assert!(!argv.contains(&secret), "the value reached argv");
    // No file but the (fake) clipboard and the vault ever held it.
    for f in files_under(tv.root.path()) {
        if f.starts_with(&dir) || f.extension().is_some_and(|e| e == "sfv" || e == "bak") {
            continue;
        }
        assert!(
            !contains(&fs::read(&f).unwrap_or_default(), secret.as_bytes()),
            "{} holds the value",
            f.display()
        );
    }

    // Wayland: wl-copy; the user copies something else before the delay: it stays.
    fs::remove_file(dir.join("argv")).unwrap();
    let mut cmd = tv.cmd();
    cmd.env("PATH", &path)
        .env("WAYLAND_DISPLAY", "wayland-0")
        .env("DISPLAY", ":42");
    let out = run_cmd(
        cmd,
        &[
            "read",
            "-c",
            "--clip-seconds",
            "1",
            "sfvault://acme/ci/consumer_key",
        ],
        None,
    );
    assert_success(&out, &["read --clip"]);
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("copied sfvault://acme/ci/consumer_key to the clipboard"));
    assert_eq!(fs::read_to_string(&clipboard).unwrap(), KEY);
    fs::write(&clipboard, "something the user copied").unwrap();
    let started = Instant::now();
    while !fs::read_to_string(dir.join("argv")).is_ok_and(|a| a.contains("wl-paste")) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no clearer ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_to_string(&clipboard).unwrap(),
        "something the user copied"
    );
    let argv = fs::read_to_string(dir.join("argv")).unwrap();
    assert!(!argv.contains("--clear"), "{argv}");

    // No display, no tool: exit 1 naming what was looked for, nothing printed, no unlock.
    let empty = tv.root.path().join("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    for (path, display) in [
        (empty.to_str().unwrap(), Some(":42")),
        (path.as_str(), None),
    ] {
        let mut cmd = tv.bare_cmd();
        cmd.env("PATH", path);
        if let Some(d) = display {
            cmd.env("DISPLAY", d);
        }
        let out = run_cmd(cmd, &["get", "--clip", "acme/ci", "consumer_secret"], None);
        assert_code(&out, 1, &["get --clip without a clipboard"]);
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        for named in ["wl-copy", "xclip", "xsel", "DISPLAY"] {
            assert!(err.contains(named), "{named} not named: {err}");
        }
    }
}

/// A new pseudo-terminal: the master, and the path of its slave.
fn pty() -> (fs::File, PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a descriptor this function owns; ptsname_r writes into
    // the buffer given, of the size given.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_owned();
        (fs::File::from_raw_fd(master), PathBuf::from(path))
    }
}

/// Run `args` with a terminal on stdin: wait for the first stderr line (the hint, printed
/// before anything is typed), then type `input` and Ctrl-D; the hint, stdout and exit code.
fn with_terminal_stdin(tv: &TestVault, args: &[&str], input: &str) -> (String, String, i32) {
    let (mut master, slave) = pty();
    let tty = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave)
        .unwrap();
    let mut cmd = tv.cmd();
    cmd.args(args)
        .stdin(Stdio::from(tty))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    let hint = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no hint before reading the terminal");
    master.write_all(input.as_bytes()).unwrap();
    master.write_all(b"\n\x04").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(master);
    (hint, text(&out.stdout), out.status.code().unwrap_or(-1))
}

#[test]
fn reading_a_terminal_says_so_first() {
    let (tv, _sf, _) = setup();
    let (hint, out, code) =
        with_terminal_stdin(&tv, &["inject"], "key={{ sfvault://acme/ci/consumer_key }}");
    assert!(
        hint.contains("terminal") && hint.contains("Ctrl-D"),
        "{hint}"
    );
    assert_eq!(code, 0);
    assert_eq!(out, format!("key={KEY}\n"));
    let (hint, _, code) = with_terminal_stdin(
        &tv,
        &["import", "acme/typed", "--format", "dotenv"],
        "SF_CONSUMER_KEY=typed-key",
    );
    assert!(
        hint.contains("terminal") && hint.contains("Ctrl-D"),
        "{hint}"
    );
    assert_eq!(code, 0);
    assert_eq!(tv.get("acme/typed", "consumer_key"), "typed-key");
    // From a pipe there is no hint.
    let out = tv.run(&["inject"], Some(b"plain\n"));
    assert_success(&out, &["inject from a pipe"]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn run_names_the_variable_whatever_the_failure() {
    let (tv, _sf, _) = setup();
    let marker = tv.root.path().join("ran");
    let touch = ["--", "touch", marker.to_str().unwrap()];
    let env_file = tv.root.path().join("refs.env");
    fs::write(
        &env_file,
        "# refs\nOK=sfvault://acme/ci/username\nGONE=sfvault://acme/gone/username\n",
    )
    .unwrap();
    let file = env_file.to_str().unwrap();

    let mut args = vec!["run", "--env-file", file];
    args.extend(touch);
    let out = tv.run(&args, None);
    assert_code(&out, 3, &args);
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("sfvault: GONE ({file} line 3): ")),
        "{err}"
    );

    // A malformed reference in the environment: exit 2, named.
    let mut cmd = tv.cmd();
    cmd.env("BAD_REF", "sfvault://acme/ci/Not-A-Field");
    let out = run_cmd(cmd, &[&["run"][..], &touch].concat(), None);
    assert_code(&out, 2, &["run with a malformed reference"]);
    assert!(
        text(&out.stderr).starts_with("sfvault: BAD_REF: "),
        "{}",
        text(&out.stderr)
    );

    // Locked with no way to ask: exit 5, named.
    let mut cmd = tv.bare_cmd();
    cmd.env("LOCKED_REF", "sfvault://acme/ci/consumer_key");
    let out = run_cmd(cmd, &[&["run"][..], &touch].concat(), None);
    assert_code(&out, 5, &["run while locked"]);
    let err = text(&out.stderr);
    assert!(
        err.starts_with("sfvault: LOCKED_REF: ") && err.contains("the command was not run"),
        "{err}"
    );

    // Salesforce refusing the token: exit 7, named.
    _sf.fail_next(400, "invalid_client", "client identifier invalid");
    let mut cmd = tv.cmd();
    cmd.env("TOKEN_REF", "sfvault://acme/ci/access_token");
    let out = run_cmd(cmd, &[&["run"][..], &touch].concat(), None);
    assert_code(&out, 7, &["run with a refused token"]);
    assert!(
        text(&out.stderr).starts_with("sfvault: TOKEN_REF: Salesforce refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(!marker.exists(), "the command ran");
}

/// Not a check: the cost of `run --mask`, for docs/PERFORMANCE.md. `cargo test --release --test
/// everyday -- --ignored --nocapture measure_run_mask`: 100 MB of base64 text (the alphabet of
/// keys and tokens, so the prefilter passes over as little as it can) through `cat`, as
/// `run -- cat` (exec, no pipe) and `run --mask -- cat` with one secret and with a PEM key
/// too (a pattern per line), output to /dev/null; medians of 5.
#[test]
#[ignore = "a measurement, run by hand"]
fn measure_run_mask() {
    let (tv, _sf, _) = setup();
    tv.ok_stdin(
        &["set", "acme/ci", "private_key", "-"],
        fake_pem(&canary("mask-key")).as_bytes(),
    );
    tv.ok(&["unlock", "--timeout", "15m"]);
    let big = tv.root.path().join("text100");
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            "head -c 75000000 /dev/urandom | base64 -w 76 | head -c 100000000 > \"$1\"",
            "sh",
            big.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let median = |args: &[&str], refs: &[(&str, &str)]| {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let mut cmd = tv.bare_cmd();
                cmd.args(args)
                    .stdout(fs::File::create("/dev/null").unwrap());
                for (k, v) in refs {
                    cmd.env(k, v);
                }
                let started = Instant::now();
                assert!(cmd.status().unwrap().success());
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[2]
    };
    let file = big.to_str().unwrap();
    let secret = [("S", "sfvault://acme/ci/consumer_secret")];
    let both = [
        ("S", "sfvault://acme/ci/consumer_secret"),
        ("K", "sfvault://acme/ci/private_key"),
    ];
    let plain = median(&["run", "--", "cat", file], &secret);
    let one = median(&["run", "--mask", "--", "cat", file], &secret);
    let key = median(&["run", "--mask", "--", "cat", file], &both);
    eprintln!(
        "100 MB through cat: run {plain:.0} ms; run --mask, one secret {one:.0} ms (+{:.0}); \
         a secret and a PEM key {key:.0} ms (+{:.0})",
        one - plain,
        key - plain
    );
    tv.ok(&["lock"]);
}

#[test]
fn exec_opens_an_interactive_shell_on_a_real_terminal_and_exit_leaves_it() {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let (tv, _sf, _) = setup();
    let (mut master, slave) = pty();
    let tty = || {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave)
            .unwrap()
    };
    let mut cmd = tv.cmd();
    cmd.env("SHELL", "/bin/sh")
        .env("PS1", "$ ")
        .args(["exec", "acme/ci", "--no-token"])
        .stdin(Stdio::from(tty()))
        .stdout(Stdio::from(tty()))
        .stderr(Stdio::from(tty()));
    // After bare_cmd's setsid: the terminal becomes the controlling one, as in a login.
    // SAFETY: ioctl on the child's own stdin, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let _ = tx.send(seen.clone());
        }
    });
    let wait_for = |what: &str| {
        let started = Instant::now();
        loop {
            let seen = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {what:?} on the terminal"));
            if text(&seen).contains(what) {
                return text(&seen);
            }
            assert!(started.elapsed() < Duration::from_secs(20));
        }
    };
    wait_for("`exit` leaves it");
    master
        .write_all(b"echo \"inside:$SFVAULT_ENTRY:$SF_CONSUMER_KEY\"\n")
        .unwrap();
    wait_for(&format!("inside:acme/ci:{KEY}"));
    master.write_all(b"exit 6\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(6),
        "exit leaves the shell, its code kept"
    );
}
