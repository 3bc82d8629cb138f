//! `--clip`: a value copied to the desktop's clipboard with the tool it has (wl-copy on
//! Wayland, xclip or xsel on X11, pbcopy on macOS), then cleared by a detached process after
//! a delay, if the clipboard still holds that value.
//!
//! The value reaches the tool on its stdin, never in its argv. The clearer is this binary
//! again (`__clip-clear`), started in its own session so that closing the terminal does not
//! stop it; it gets a random salt and the SHA-256 of salt and value on its stdin, never the
//! value, and compares that with what the clipboard holds when the time is up.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use sfvault::secret::SecretString;
use sfvault::unlock::PASSPHRASE_ENV_VARS;
use sfvault::{Error, Result};
use zeroize::Zeroizing;

use super::Context;
use super::args::ClipClearArgs;

/// Largest clipboard content the clearer reads back to compare (a value is at most 1 MiB).
const MAX_READ_BACK: usize = 1024 * 1024;

/// A clipboard tool: how it copies stdin, prints the clipboard, and clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// wl-clipboard (Wayland): wl-copy and wl-paste.
    WlCopy,
    /// xclip (X11).
    Xclip,
    /// xsel (X11).
    Xsel,
    /// macOS: pbcopy and pbpaste.
    Pbcopy,
}

impl Tool {
    const ALL: [Tool; 4] = [Tool::WlCopy, Tool::Xclip, Tool::Xsel, Tool::Pbcopy];

    /// The name the user knows it by (and `__clip-clear --tool` takes).
    pub fn name(self) -> &'static str {
        match self {
            Tool::WlCopy => "wl-copy",
            Tool::Xclip => "xclip",
            Tool::Xsel => "xsel",
            Tool::Pbcopy => "pbcopy",
        }
    }

    fn parse(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The command that puts its stdin on the clipboard.
    fn copy(self) -> (&'static str, &'static [&'static str]) {
        match self {
            // A stated type: without one, wl-copy runs xdg-mime on its copy of the value.
            Tool::WlCopy => ("wl-copy", &["--type", "text/plain"]),
            Tool::Xclip => ("xclip", &["-selection", "clipboard", "-in"]),
            Tool::Xsel => ("xsel", &["--clipboard", "--input"]),
            Tool::Pbcopy => ("pbcopy", &[]),
        }
    }

    /// The command that prints the clipboard as it is.
    fn paste(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Tool::WlCopy => ("wl-paste", &["--no-newline"]),
            Tool::Xclip => ("xclip", &["-selection", "clipboard", "-out"]),
            Tool::Xsel => ("xsel", &["--clipboard", "--output"]),
            Tool::Pbcopy => ("pbpaste", &[]),
        }
    }
}

/// `program` found as an executable file in a directory of `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// The clipboard tool of this desktop: wl-copy (with wl-paste) when `WAYLAND_DISPLAY` is set;
/// else xclip or xsel when `DISPLAY` is set; pbcopy (with pbpaste) on macOS. None: an error
/// naming what was looked for (exit 1).
pub fn find() -> Result<Tool> {
    let has = |tool: Tool| on_path(tool.copy().0).is_some() && on_path(tool.paste().0).is_some();
    let wayland = set("WAYLAND_DISPLAY");
    let x11 = set("DISPLAY");
    let candidates: &[Tool] = if cfg!(target_os = "macos") {
        &[Tool::Pbcopy]
    } else {
        &[Tool::WlCopy, Tool::Xclip, Tool::Xsel]
    };
    let usable = |tool: &Tool| match tool {
        Tool::WlCopy => wayland,
        Tool::Xclip | Tool::Xsel => x11,
        Tool::Pbcopy => true,
    };
    if let Some(tool) = candidates.iter().copied().filter(usable).find(|t| has(*t)) {
        return Ok(tool);
    }
    if cfg!(target_os = "macos") {
        return Err(Error::failed(
            "--clip: pbcopy and pbpaste were not found on PATH; leave out --clip to print the value",
        ));
    }
    let state = |var: &str, yes: bool| {
        if yes {
            format!("{var} is set")
        } else {
            format!("{var} is not set")
        }
    };
    Err(Error::failed(format!(
        "--clip: no clipboard to copy to: looked for wl-copy and wl-paste (Wayland; {}) and \
         xclip or xsel (X11; {}) on PATH; install wl-clipboard, xclip or xsel in a desktop \
         session, or leave out --clip to print the value",
        state("WAYLAND_DISPLAY", wayland),
        state("DISPLAY", x11),
    )))
}

/// A tool's command with no terminal and no passphrase variables: stdout and stderr go to
/// /dev/null, since wl-copy and xclip stay in the background to serve the clipboard and would
/// hold a pipe (`$(sfvault get --clip …)`) open.
fn command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    for var in PASSPHRASE_ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Put `bytes` on the clipboard with `tool`, through its stdin.
fn put(tool: Tool, bytes: &[u8]) -> Result<()> {
    let (program, args) = tool.copy();
    let mut child = command(program, args)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::failed_with(format!("--clip: cannot run {program}"), e))?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(bytes));
    let status = child
        .wait()
        .map_err(|e| Error::failed_with(format!("--clip: cannot wait for {program}"), e))?;
    if !status.success() {
        return Err(Error::failed(format!(
            "--clip: {program} failed ({status}); try `echo test | {program}` to see why"
        )));
    }
    if let Some(Err(e)) = written {
        return Err(Error::failed_with(
            format!("--clip: cannot write to {program}"),
            e,
        ));
    }
    Ok(())
}

/// SHA-256 of `salt` and `bytes`.
fn fingerprint(salt: &[u8], bytes: &[u8]) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt);
    ctx.update(bytes);
    ctx.finish()
}

/// Copy `value` to the clipboard with `tool` and start the clearer for `seconds`; `what` names
/// the value in the note on stderr ("acme/ci consumer_secret").
pub fn copy(
    ctx: &Context,
    tool: Tool,
    what: &str,
    value: &SecretString,
    seconds: u32,
) -> Result<()> {
    let mut salt = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut salt[..])
        .map_err(|_| Error::failed("--clip: no randomness for the clipboard check"))?;
    let print = fingerprint(&salt[..], value.expose().as_bytes());
    // The clearer first: if it cannot start, the value never reaches the clipboard; if the
    // copy fails after it started, it finds something else there and leaves it.
    start_clearer(ctx, tool, seconds, &salt[..], print.as_ref())?;
    put(tool, value.expose().as_bytes())?;
    if ctx.json {
        return super::output::print_json(serde_json::json!({
            "copied": what,
            "tool": tool.name(),
            "clears_in_secs": seconds,
        }));
    }
    ctx.note(&format!(
        "copied {what} to the clipboard; it clears in {seconds} s"
    ));
    Ok(())
}

/// Start `sfvault __clip-clear` detached (its own session, no terminal, output to /dev/null),
/// giving it the salt and fingerprint on its stdin. Not waited for.
fn start_clearer(ctx: &Context, tool: Tool, seconds: u32, salt: &[u8], print: &[u8]) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::failed_with("--clip: cannot find sfvault's own binary", e))?;
    let mut cmd = Command::new(&exe);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    for var in PASSPHRASE_ENV_VARS {
        cmd.env_remove(var);
    }
    // --vault only so that the clearer starts where no default vault path can be found.
    cmd.args([
        OsStr::new("--vault"),
        ctx.store.path().as_os_str(),
        OsStr::new("__clip-clear"),
        OsStr::new("--tool"),
        OsStr::new(tool.name()),
        OsStr::new("--seconds"),
        OsStr::new(&seconds.to_string()),
    ])
    .stdin(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let _ = rustix::process::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::failed_with("--clip: cannot start the clipboard clearer", e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut message = Zeroizing::new(Vec::with_capacity(salt.len() + print.len()));
    message.extend_from_slice(salt);
    message.extend_from_slice(print);
    stdin.write_all(&message).map_err(|e| {
        Error::failed_with("--clip: cannot hand the check to the clipboard clearer", e)
    })?;
    Ok(())
}

/// `__clip-clear`: read salt and fingerprint from stdin, wait, and clear the clipboard if what
/// it holds still has that fingerprint.
pub fn clear_later(args: &ClipClearArgs) -> Result<()> {
    let tool = Tool::parse(&args.tool)
        .ok_or_else(|| Error::Usage(format!("unknown clipboard tool {}", args.tool)))?;
    let input = sfvault::secret::read_unbuffered(std::io::stdin(), 64)
        .map_err(|e| Error::failed_with("cannot read the clipboard check", e))?;
    if input.len() != 64 {
        return Err(Error::Usage(
            "the clipboard check is 64 bytes on stdin".into(),
        ));
    }
    let (salt, print) = input.split_at(32);
    std::thread::sleep(std::time::Duration::from_secs(u64::from(args.seconds)));
    let (program, paste_args) = tool.paste();
    let mut child = command(program, paste_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::failed_with(format!("cannot run {program}"), e))?;
    let held = child
        .stdout
        .take()
        .map(|out| sfvault::secret::read_unbuffered(out, MAX_READ_BACK))
        .transpose()
        .map_err(|e| Error::failed_with(format!("cannot read from {program}"), e))?;
    let _ = child.wait();
    let Some(held) = held else { return Ok(()) };
    let now = fingerprint(salt, &held);
    let same = now.as_ref().len() == print.len()
        && now
            .as_ref()
            .iter()
            .zip(print)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        // The user copied something else since: leave it.
        return Ok(());
    }
    match tool {
        Tool::WlCopy => {
            let _ = command("wl-copy", &["--clear"])
                .stdin(Stdio::null())
                .status();
        }
        Tool::Xsel => {
            let _ = command("xsel", &["--clipboard", "--clear"])
                .stdin(Stdio::null())
                .status();
        }
        Tool::Xclip | Tool::Pbcopy => put(tool, b"")?,
    }
    Ok(())
}
