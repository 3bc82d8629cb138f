//! The test harness: a `TestVault` gives each test its own temp HOME, TMPDIR and vault, and runs
//! the real `sfvault` binary in a new session (no controlling terminal, so nothing can prompt)
//! with a clean environment.

#![allow(dead_code)]

pub mod fake_sf;
pub mod golden;
pub mod pty;
pub mod rotation_world;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The passphrase of every test vault.
pub const PASSPHRASE: &str = "test passphrase, not a real one";

/// One isolated sfvault world.
pub struct TestVault {
    /// Owns the directory; removed on drop.
    pub root: tempfile::TempDir,
    /// HOME for the binary.
    pub home: PathBuf,
    /// TMPDIR for the binary.
    pub tmp: PathBuf,
    /// The vault file.
    pub vault: PathBuf,
    /// A 0600 file holding `PASSPHRASE`.
    pub pass_file: PathBuf,
}

impl TestVault {
    /// A world with no vault yet.
    pub fn empty() -> TestVault {
        let root = tempfile::tempdir().expect("temp dir");
        let home = root.path().join("home");
        let tmp = root.path().join("tmp");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        let pass_file = root.path().join("passphrase");
        write_private(&pass_file, format!("{PASSPHRASE}\n").as_bytes());
        let vault = home.join(".local/share/sfvault/vault.sfv");
        let run = root.path().join("run");
        fs::create_dir_all(&run).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
        TestVault {
            root,
            home,
            tmp,
            vault,
            pass_file,
        }
    }

    /// A world with an initialised vault at the minimum KDF cost.
    pub fn new() -> TestVault {
        let tv = TestVault::empty();
        tv.ok(&INIT_MIN_KDF);
        tv
    }

    /// The binary with a clean environment, HOME/TMPDIR/XDG dirs inside the world, and no
    /// passphrase source.
    pub fn bare_cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfvault"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", self.root.path().join("run"))
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
        // A new session has no controlling terminal: /dev/tty cannot be opened, so the binary
        // must take its passphrase from the sources given, or fail fast.
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                let _ = rustix::process::setsid();
                Ok(())
            });
        }
        cmd
    }

    /// The binary, unlocking through `SFVAULT_PASSPHRASE_FILE`.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.env("SFVAULT_PASSPHRASE_FILE", &self.pass_file);
        cmd
    }

    /// Run with args (and optional stdin) through [`TestVault::cmd`].
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run_cmd(self.cmd(), args, stdin)
    }

    /// Run and require success; returns stdout as text.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert_success(&out, args);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run with stdin and require success.
    pub fn ok_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run(args, Some(stdin));
        assert_success(&out, args);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run and require exit `code`; returns stderr as text.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args, None);
        assert_code(&out, code, args);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The agent's runtime directory in this world (`$XDG_RUNTIME_DIR/sfvault`).
    pub fn agent_dir(&self) -> PathBuf {
        self.root.path().join("run/sfvault")
    }

    /// `get ENTRY FIELD` without the trailing newline.
    pub fn get(&self, entry: &str, field: &str) -> String {
        self.ok(&["get", "-n", entry, field])
    }
}

/// Run `cmd` with `args` through assert_cmd, feeding `stdin` if given.
pub fn run_cmd(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Output {
    cmd.args(args);
    let mut cmd = assert_cmd::Command::from_std(cmd);
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes.to_vec());
    }
    cmd.output().expect("run sfvault")
}

/// Fail the test with the command's output unless it succeeded.
pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "sfvault {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fail the test unless the command exited with `code`.
pub fn assert_code(out: &Output, code: i32, args: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "sfvault {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With `--json`, a failure's stdout is exactly one error object with its exit code and kind:
/// `{"error": {"code": N, "kind": "…", "message": "…"}}`. Returns the message.
pub fn assert_json_error(out: &Output, kind: &str) -> String {
    let code = out.status.code().expect("exited");
    let text = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {text}"));
    let error = &value["error"];
    assert_eq!(value.as_object().map(|o| o.len()), Some(1), "{text}");
    assert_eq!(error["code"], code, "{text}");
    assert_eq!(error["kind"], kind, "{text}");
    let message = error["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty(), "{text}");
    message
}

/// Write a file with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether the long proof campaigns (SIGKILL during saves, racing writers, every byte of a file
/// damaged) run in full: in CI (`CI` set, as CI runs .ci/run) or with `SFVAULT_FULL_PROOFS=1`.
/// Otherwise each runs a sample that asserts the same things, so that a local `cargo test`
/// stays quick.
pub fn full_proofs() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("CI") || set("SFVAULT_FULL_PROOFS")
}

/// How many rounds a campaign runs: `full` in a full run ([`full_proofs`]), else `sample`. Says
/// which on stderr.
pub fn campaign_rounds(what: &str, full: usize, sample: usize) -> usize {
    if full_proofs() {
        eprintln!("{what}: the full campaign, {full} rounds");
        full
    } else {
        eprintln!(
            "{what}: a sample of {sample} rounds of {full} (set SFVAULT_FULL_PROOFS=1 for all)"
        );
        sample
    }
}

/// The positions in `0..len` a campaign damages: every one in a full run ([`full_proofs`]), else
/// about `sample` spread evenly over the whole length from a start that changes from run to run
/// (printed), so that local runs cover different bytes over time.
pub fn campaign_positions(what: &str, len: usize, sample: usize) -> Vec<usize> {
    if full_proofs() || len <= sample {
        eprintln!("{what}: all {len} positions");
        return (0..len).collect();
    }
    let stride = len.div_ceil(sample.max(1));
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize
        % stride;
    eprintln!(
        "{what}: every {stride}th of {len} positions from {start} (set SFVAULT_FULL_PROOFS=1 for all)"
    );
    (start..len).step_by(stride).collect()
}

/// `init` at the minimum KDF cost (19 MiB, 2 passes, 1 lane), which keeps tests quick.
pub const INIT_MIN_KDF: [&str; 7] = [
    "init",
    "--kdf-memory",
    "19",
    "--kdf-iterations",
    "2",
    "--kdf-parallelism",
    "1",
];

/// A random-looking canary, unique per call, that no file would hold by chance.
pub fn canary(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Letters and digits only, padded to a multiple of 4: a canary must also be a valid
    // base64 line, so that it can sit inside a PEM key body that sfvault accepts.
    let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut canary = format!("CANARY{tag}{t:x}x{n}x{}", std::process::id());
    while canary.len() % 4 != 0 {
        canary.push('Q');
    }
    canary
}

/// A syntactically valid PEM private key block holding a canary (never parsed as RSA here).
pub fn fake_pem(canary: &str) -> String {
    format!(
        "-----BEGIN PRIVATE KEY-----\n{canary}\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    )
}

impl Drop for TestVault {
    /// Stop any agent this world started (it would also stop by itself once the vault file is
    /// deleted with the temp dir).
    fn drop(&mut self) {
        if self.agent_dir().exists() {
            let _ = run_cmd(self.bare_cmd(), &["lock"], None);
        }
    }
}

/// A copy of the sfvault binary at `dest`, mode 0755 (for running as another user, who may not
/// reach the target directory), once it can be executed: another test thread that forked while
/// the copy was open for writing holds that fd until its child execs, and exec of the copy
/// fails with ETXTBSY meanwhile.
pub fn copy_of_binary(dest: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(env!("CARGO_BIN_EXE_sfvault"), dest).unwrap();
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    let started = std::time::Instant::now();
    while let Err(e) = std::process::Command::new(dest).arg("--version").output() {
        assert!(
            e.raw_os_error() == Some(26) && started.elapsed() < std::time::Duration::from_secs(10),
            "cannot run {}: {e}",
            dest.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    dest.to_path_buf()
}
