//! Prompts as a person meets them, driven through a pseudo-terminal (tests/support/pty.rs):
//! which questions `add` asks, what an empty Enter does, three passphrase tries on a terminal
//! and one from a script, the terminal's echo after Ctrl-C or SIGTERM at a hidden prompt, and
//! the messages around them (issue #17).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use support::pty::PtyChild;
use support::{PASSPHRASE, TestVault, assert_code, canary, fake_pem, run_cmd, write_private};

/// `sfvault ARGS` on a new terminal, with no passphrase source (it must ask), stderr piped.
fn on_terminal(tv: &TestVault, args: &[&str]) -> PtyChild {
    let mut cmd = tv.bare_cmd();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    PtyChild::spawn(cmd, None)
}

/// Type the vault's passphrase at its prompt.
fn unlock(t: &mut PtyChild) {
    t.expect("Passphrase for ");
    assert!(!t.echo_on(), "a hidden prompt showed with echo on");
    t.line(PASSPHRASE);
}

fn show(tv: &TestVault, entry: &str) -> String {
    tv.ok(&["show", entry])
}

#[test]
fn a_jwt_add_asks_only_for_the_passphrase() {
    let tv = TestVault::new();
    let key = tv.root.path().join("k.pem");
    write_private(&key, fake_pem(&canary("jwt-add")).as_bytes());
    let key = key.to_str().unwrap();
    let mut t = on_terminal(
        &tv,
        &[
            "add",
            "acme/ci",
            "--consumer-key",
            "K",
            "--username",
            "u@acme.example.com",
            "--flow",
            "jwt",
            "--private-key-file",
            key,
        ],
    );
    unlock(&mut t);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert!(!t.screen().contains("consumer_secret"), "{}", t.screen());
    assert!(err.contains("Added acme/ci (4 fields)"), "{err}");
    assert!(
        err.contains("The jwt flow sends no consumer secret, so none was asked for"),
        "{err}"
    );
    let shown = show(&tv, "acme/ci");
    assert!(!shown.contains("consumer_secret"), "{shown}");
    assert!(shown.contains("private_key"), "{shown}");
}

#[test]
fn an_empty_consumer_secret_asks_again_and_never_loses_the_entry() {
    let tv = TestVault::new();
    // No flow: an empty Enter explains, a second one adds the entry without a secret.
    let mut t = on_terminal(&tv, &["add", "acme/one", "--consumer-key", "K1"]);
    unlock(&mut t);
    t.expect("consumer_secret for acme/one (hidden): ");
    assert!(!t.echo_on(), "a hidden prompt showed with echo on");
    t.line("");
    let said = t.expect("or type the secret.");
    assert!(said.contains("Press Enter again"), "{said}");
    assert!(said.contains("--no-secret"), "{said}");
    t.expect("consumer_secret for acme/one (hidden): ");
    t.line("");
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert!(
        err.contains(
            "No consumer secret stored; add one later with `sfvault set acme/one consumer_secret`"
        ),
        "{err}"
    );
    assert!(!show(&tv, "acme/one").contains("consumer_secret"));

    // No flow, Enter by mistake, then the secret: stored.
    let mut t = on_terminal(&tv, &["add", "acme/two", "--consumer-key", "K2"]);
    unlock(&mut t);
    t.expect("consumer_secret for acme/two (hidden): ");
    t.line("");
    t.expect("or type the secret.");
    t.expect("(hidden): ");
    t.line("s3cret-two");
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!t.screen().contains("s3cret-two"), "echoed: {}", t.screen());
    assert_eq!(tv.get("acme/two", "consumer_secret"), "s3cret-two");

    // A flow that cannot work without one says so and asks again.
    let mut t = on_terminal(
        &tv,
        &[
            "add",
            "acme/three",
            "--consumer-key",
            "K3",
            "--flow",
            "client-credentials",
        ],
    );
    unlock(&mut t);
    t.expect("consumer_secret for acme/three (hidden): ");
    t.line("");
    let said = t.expect("(hidden): ");
    assert!(
        said.contains("The client-credentials flow needs a consumer secret"),
        "{said}"
    );
    t.line("s3cret-three");
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(tv.get("acme/three", "consumer_secret"), "s3cret-three");
}

#[test]
fn an_empty_secret_value_is_asked_again() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let mut t = on_terminal(&tv, &["set", "acme/ci", "api_key"]);
    unlock(&mut t);
    t.expect("api_key for acme/ci (hidden): ");
    t.line("");
    let said = t.expect("(hidden): ");
    assert!(said.contains("A value cannot be empty"), "{said}");
    t.line("the-key");
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(tv.get("acme/ci", "api_key"), "the-key");
}

#[test]
fn a_terminal_gets_three_passphrase_tries_and_an_empty_one_is_not_a_try() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let get = ["get", "-n", "acme/ci", "consumer_key"];

    let mut t = on_terminal(&tv, &get);
    t.expect("Passphrase for ");
    t.line("wrong one");
    t.expect("Wrong passphrase; try again (2 tries left).");
    t.expect("Passphrase for ");
    t.line("");
    t.expect("Empty passphrase; type the vault's passphrase (Ctrl-C to stop).");
    t.expect("Passphrase for ");
    t.line("wrong two");
    t.expect("Wrong passphrase; try again (1 try left).");
    t.expect("Passphrase for ");
    t.line(PASSPHRASE);
    let (status, out, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert_eq!(out, "K");

    // Three wrong: exit 4, plainly a wrong passphrase; the previous version is named because
    // it exists (the add above saved one).
    let mut t = on_terminal(&tv, &get);
    for wrong in ["one", "two", "three"] {
        t.expect("Passphrase for ");
        t.line(wrong);
    }
    let (status, out, err) = t.wait_output();
    assert_eq!(status.code(), Some(4), "{err}\n{}", t.screen());
    assert!(out.is_empty());
    assert!(err.starts_with("sfvault: wrong passphrase for "), "{err}");
    let bak = format!("{}.bak holds the previous version", tv.vault.display());
    assert!(err.contains(&bak), "{err}");
    assert_eq!(t.screen().matches("Passphrase for ").count(), 3);
}

#[test]
fn a_script_source_gets_one_try_even_with_a_terminal() {
    let tv = TestVault::new();
    let mut cmd = tv.bare_cmd();
    cmd.env("SFVAULT_PASSPHRASE", "not the passphrase")
        .args(["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut t = PtyChild::spawn(cmd, None);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(!t.screen().contains("Passphrase"), "{}", t.screen());
    // A vault that was never saved twice has no previous version: none is named.
    assert!(err.contains("wrong passphrase for "), "{err}");
    assert!(!err.contains(".bak"), "{err}");
}

#[test]
fn unlock_gives_three_tries_too() {
    let tv = TestVault::new();
    let mut t = on_terminal(&tv, &["unlock", "--timeout", "1m"]);
    t.expect("Passphrase for ");
    t.line("wrong");
    t.expect("Wrong passphrase; try again (2 tries left).");
    unlock(&mut t);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    tv.ok(&["lock"]);
}

/// Ctrl-C typed at the passphrase prompt (the terminal sends SIGINT): echo is back, and the
/// process died of SIGINT as it would have without a handler.
#[test]
fn ctrl_c_at_a_hidden_prompt_gives_the_terminal_back_and_dies_of_sigint() {
    let tv = TestVault::new();
    let mut t = on_terminal(&tv, &["list"]);
    t.expect("Passphrase for ");
    assert!(!t.echo_on(), "a hidden prompt showed with echo on");
    t.send(b"half typ");
    t.send(b"\x03");
    let status = t.wait();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(t.echo_on(), "echo left off after Ctrl-C");
}

#[test]
fn ctrl_c_in_a_script_at_the_secret_prompt_gives_the_terminal_back() {
    // As in the issue: sfvault inside a script, the user presses Ctrl-C at a hidden prompt
    // after typing the passphrase. The whole foreground group (the script too) gets SIGINT.
    let tv = TestVault::new();
    let mut cmd = tv.bare_cmd();
    let mut sh = Command::new("/bin/sh");
    sh.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.env("SFVAULT", env!("CARGO_BIN_EXE_sfvault"))
        .args([
            "-c",
            "\"$SFVAULT\" add acme/ci --consumer-key K; echo still-running",
        ])
        .stderr(Stdio::piped());
    cmd = sh;
    let mut t = PtyChild::spawn(cmd, None);
    unlock(&mut t);
    t.expect("consumer_secret for acme/ci (hidden): ");
    assert!(!t.echo_on(), "a hidden prompt showed with echo on");
    t.send(b"\x03");
    let status = t.wait();
    assert!(t.echo_on(), "echo left off after Ctrl-C");
    assert!(!t.screen().contains("still-running"), "{}", t.screen());
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

#[test]
fn sigterm_at_a_hidden_prompt_gives_the_terminal_back() {
    let tv = TestVault::new();
    let mut t = on_terminal(&tv, &["list"]);
    t.expect("Passphrase for ");
    assert!(!t.echo_on(), "a hidden prompt showed with echo on");
    t.terminate();
    let status = t.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(t.echo_on(), "echo left off after SIGTERM");
}

#[test]
fn init_without_a_terminal_says_it_needs_a_new_passphrase() {
    let tv = TestVault::empty();
    let out = run_cmd(tv.bare_cmd(), &support::INIT_MIN_KDF, None);
    assert_code(&out, 5, &["init with no terminal"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("there is no terminal to ask for the new passphrase; give it with SFVAULT_PASSPHRASE_FILE"),
        "{err}"
    );
    assert!(!err.contains("locked"), "{err}");
    assert!(!tv.vault.exists());
}

#[test]
fn keygen_says_it_is_working() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let out = tv.run(&["keygen", "acme/ci", "--bits", "2048"], None);
    assert_code(&out, 0, &["keygen"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Generating a 2048-bit RSA key…\n"), "{err}");
    let out = tv.run(&["--quiet", "keygen", "acme/ci", "--force"], None);
    assert_code(&out, 0, &["keygen --quiet"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An invalid size fails without the note.
    let err = tv.fails(&["keygen", "acme/ci", "--force", "--bits", "1024"], 2);
    assert!(!err.contains("Generating"), "{err}");
}

#[test]
fn secrets_on_the_command_line_are_refused_with_the_reason() {
    let tv = TestVault::new();
    let secret = canary("argv-secret");
    let eq = format!("--consumer-secret={secret}");
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "add",
                "acme/ci",
                "--consumer-key",
                "K",
                "--consumer-secret",
                &secret,
            ],
            "sfvault set ORG/APP consumer_secret -",
        ),
        (
            &["add", "acme/ci", &eq],
            "sfvault set ORG/APP consumer_secret -",
        ),
        (
            &["add", "acme/ci", "--consumer-secret"],
            "asks for it (hidden)",
        ),
        (
            &["set", "acme/ci", "--password", &secret],
            "sfvault set ORG/APP password -",
        ),
        (
            &["add", "acme/ci", "--private-key", &secret],
            "--private-key-file",
        ),
    ];
    for (args, how) in cases {
        let out = tv.run(args, None);
        assert_code(&out, 2, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("secrets are never taken from the command line")
                && err.contains("`ps`")
                && err.contains(how),
            "{args:?}: {err}"
        );
        assert!(!err.contains("similar argument"), "{err}");
        assert!(!err.contains(&secret), "the secret was repeated: {err}");
    }
    tv.fails(&["show", "acme/ci"], 3);
    // Hidden: not in help, not in any completion script.
    let help = tv.ok(&["add", "--help"]);
    assert!(!help.contains("--consumer-secret"), "{help}");
    // What the completion engine offers after `add --` (the scripts ask the binary on Tab).
    let mut cmd = tv.bare_cmd();
    cmd.env("SFVAULT_COMPLETE", "fish")
        .args(["--", "sfvault", "add", "acme/x", "--"]);
    let offered = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert!(offered.contains("--no-secret"), "{offered}");
    for flag in [
        "consumer-secret",
        "security-token",
        "refresh-token",
        "private-key\t",
        "password",
    ] {
        assert!(
            !offered.contains(&format!("--{flag}")),
            "completes --{flag}: {offered}"
        );
    }
    // The fast `get` parser hands anything unusual to clap, which still refuses it.
    let out = tv.run(
        &["get", "acme/ci", "consumer_key", "--consumer-secret", "x"],
        None,
    );
    assert_code(&out, 2, &["get --consumer-secret"]);
}

#[test]
fn without_a_terminal_an_empty_consumer_secret_names_no_secret() {
    let tv = TestVault::new();
    let out = tv.run(&["add", "acme/ci", "--consumer-key", "K"], Some(b""));
    assert_code(&out, 2, &["add with an empty stdin"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the consumer secret on stdin is empty; nothing was stored")
            && err.contains("--no-secret"),
        "{err}"
    );
    tv.fails(&["show", "acme/ci"], 3);
    // A jwt entry does not read stdin for a secret it would never send.
    let key = tv.root.path().join("k.pem");
    write_private(&key, fake_pem(&canary("jwt-piped")).as_bytes());
    let args = [
        "add",
        "acme/ci",
        "--consumer-key",
        "K",
        "--flow",
        "jwt",
        "--private-key-file",
        key.to_str().unwrap(),
    ];
    tv.ok_stdin(&args, b"not-a-secret-to-keep");
    assert!(!tv.ok(&["show", "acme/ci"]).contains("consumer_secret"));
}

#[test]
fn init_on_a_terminal_asks_twice_and_again_after_an_empty_or_a_mismatch() {
    let tv = TestVault::empty();
    let mut t = on_terminal(&tv, &support::INIT_MIN_KDF);
    t.expect("New passphrase: ");
    assert!(!t.echo_on(), "a hidden prompt showed with echo on");
    t.line("");
    t.expect("The passphrase cannot be empty.");
    t.expect("New passphrase: ");
    t.line(PASSPHRASE);
    t.expect("Repeat the new passphrase: ");
    t.line("something else");
    t.expect("The two passphrases differ; try again.");
    t.expect("New passphrase: ");
    t.line(PASSPHRASE);
    t.expect("Repeat the new passphrase: ");
    t.line(PASSPHRASE);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}\n{}", t.screen());
    assert!(t.echo_on());
    assert!(!t.screen().contains(PASSPHRASE), "echoed: {}", t.screen());
    // The vault opens with what was typed.
    tv.ok(&["list"]);
}

#[test]
fn a_dash_with_the_terminal_as_stdin_asks_hidden_instead_of_echoing() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let mut t = on_terminal(&tv, &["set", "acme/ci", "consumer_secret", "-"]);
    unlock(&mut t);
    t.expect("consumer_secret for acme/ci (hidden): ");
    assert!(!t.echo_on(), "the secret would be echoed");
    t.line("typed-secret");
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        !t.screen().contains("typed-secret"),
        "echoed: {}",
        t.screen()
    );
    assert_eq!(tv.get("acme/ci", "consumer_secret"), "typed-secret");
}

#[test]
fn a_name_that_differs_only_by_case_is_refused_before_any_prompt() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme-prod/ci", "--consumer-key", "K", "--no-secret"]);
    let mut t = on_terminal(&tv, &["add", "ACME-Prod/CI", "--consumer-key", "K"]);
    unlock(&mut t);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("differs only by case from the existing acme-prod/ci"),
        "{err}"
    );
    assert!(
        !t.screen().contains("consumer_secret for"),
        "asked first: {}",
        t.screen()
    );
}

#[test]
fn restore_gives_three_tries_on_a_terminal_too() {
    let tv = TestVault::new();
    tv.ok(&["add", "acme/ci", "--consumer-key", "K", "--no-secret"]);
    let backup = tv.root.path().join("b.sfv");
    tv.ok(&["backup", backup.to_str().unwrap()]);
    let mut t = on_terminal(&tv, &["restore", backup.to_str().unwrap(), "--yes"]);
    t.expect("Passphrase for ");
    t.line("not it");
    t.expect("Wrong passphrase; try again (2 tries left).");
    t.expect("Passphrase for ");
    t.line(PASSPHRASE);
    let (status, _, err) = t.wait_output();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("Restored 1 entries"), "{err}");
}
