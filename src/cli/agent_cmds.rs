//! unlock, lock, status, and the agent process itself (`__agent`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sfvault::agent::client::{AgentClient, STOP_WAIT};
use sfvault::agent::protocol::{Request, Response};
use sfvault::agent::server;
use sfvault::agent::server::StopReason;
use sfvault::secret::{AllMemory, SecretKey};
use sfvault::unlock::PASSPHRASE_ENV_VARS;
use sfvault::{Error, ErrorKind, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use zeroize::Zeroize;

use super::Context;
use super::args::{AgentArgs, UnlockArgs};
use super::exit::{self, Failure, Outcome};
use super::output::{print, print_json};

pub fn unlock(ctx: &Context, args: UnlockArgs) -> Result<()> {
    if let Some(agent) = find_agent(ctx) {
        return note_already_unlocked(ctx, &agent);
    }
    if ctx.store.exists() {
        // Before the KDF: an agent that is stopping (timeout, vault replaced) has removed its
        // socket but may hold its claim for a moment, and another `unlock` may be starting one.
        let paths = ctx.agent_paths()?;
        if !server::wait_for_release(&paths.socket, STOP_WAIT) {
            if let Some(agent) = find_agent(ctx) {
                return note_already_unlocked(ctx, &agent);
            }
            return Err(Error::failed(format!(
                "an agent for {} is still stopping after {} s; try again",
                paths.vault.display(),
                STOP_WAIT.as_secs()
            )));
        }
    }
    let vault = ctx.open()?;
    let paths = ctx.agent_paths()?;
    let dir = paths.socket.parent().expect("socket has a directory");
    sfvault::fs_safety::ensure_private_dir(dir)?;
    let log = sfvault::fs_safety::open_private_file(&paths.log, "the agent log", true)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::failed_with("cannot find the sfvault executable", e))?;
    let mut command = Command::new(exe);
    command
        .arg("--vault")
        .arg(&paths.vault)
        .arg("__agent")
        .arg("--idle-secs")
        .arg(args.timeout.as_secs().to_string())
        .arg("--lifetime-secs")
        .arg(args.max_lifetime.as_secs().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    for var in PASSPHRASE_ENV_VARS {
        command.env_remove(var);
    }
    // One malloc arena (unless the user chose otherwise): the agent's connection threads
    // mostly wait, and glibc would give each busy thread its own arena, reserving 64 MiB of
    // address space apiece, which counts against `ulimit -v`.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        command.env("MALLOC_ARENA_MAX", "1");
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::failed_with("cannot start the agent", e))?;
    // The data key goes through a pipe: never argv, environment or disk.
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(vault.key().data_key().expose())
        .map_err(|e| Error::failed_with("cannot hand the key to the agent", e))?;
    drop(stdin);
    drop(vault);
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| Error::failed_with("the agent did not start", e))?;
    if line.trim() != "ready" {
        let _ = child.wait();
        return Err(Error::failed(format!(
            "the agent did not start; see {}",
            paths.log.display()
        )));
    }
    let timeout = until(args.timeout.as_secs(), args.max_lifetime.as_secs());
    ctx.done(
        &format!(
            "Unlocked {} {timeout} (agent pid {}).",
            paths.vault.display(),
            child.id()
        ),
        json!({
            "vault": paths.vault.display().to_string(),
            "agent_pid": child.id(),
            "already": false,
            "idle_timeout_secs": args.timeout.as_secs(),
            "max_lifetime_secs": args.max_lifetime.as_secs(),
        }),
    )
}

fn note_already_unlocked(ctx: &Context, agent: &AgentClient) -> Result<()> {
    ctx.done(
        &format!(
            "{} is already unlocked (agent pid {}); `sfvault lock` first to change its timeout.",
            ctx.store.path().display(),
            agent.pid()
        ),
        json!({
            "vault": ctx.store.path().display().to_string(),
            "agent_pid": agent.pid(),
            "already": true,
        }),
    )
}

fn find_agent(ctx: &Context) -> Option<AgentClient> {
    // `unlock` and `lock` look for an agent even with --no-agent.
    if !ctx.store.exists() {
        return None;
    }
    AgentClient::connect(&ctx.agent_paths().ok()?)
}

/// When the agent will lock, for the `unlock` message.
fn until(idle_secs: u64, lifetime_secs: u64) -> String {
    match (idle_secs, lifetime_secs) {
        (0, 0) => "until `sfvault lock`".to_owned(),
        (0, l) => format!("for {} or until `sfvault lock`", human(l)),
        (i, 0) => format!("until {} without use", human(i)),
        (i, l) => format!("until {} without use, {} at most", human(i), human(l)),
    }
}

fn human(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub fn lock(ctx: &Context) -> Result<()> {
    match find_agent(ctx) {
        Some(agent) => {
            agent.lock()?;
            ctx.done(
                &format!(
                    "Locked {} (agent pid {} stopped).",
                    ctx.store.path().display(),
                    agent.pid()
                ),
                json!({"vault": ctx.store.path().display().to_string(), "locked": true,
                       "agent_stopped": agent.pid()}),
            )
        }
        None => ctx.done(
            "No agent is running for this vault; it is locked.",
            json!({"vault": ctx.store.path().display().to_string(), "locked": true,
                   "agent_stopped": null}),
        ),
    }
}

fn report_locked(ctx: &Context) -> Outcome {
    let last = ctx
        .agent_paths()
        .ok()
        .and_then(|paths| read_log_tail(&paths.log))
        .and_then(|tail| last_stop(&tail));
    if ctx.json {
        let last = last.map(|l| json!({"at": l.at, "reason": l.reason, "logged": l.logged}));
        print_json(json!({
            "unlocked": false,
            "vault": ctx.store.path().display().to_string(),
            "last_agent": last,
        }))?;
    } else {
        let mut text = format!("locked: {}\n", ctx.store.path().display());
        match last {
            Some(l) if l.logged => {
                text.push_str(&format!("the last agent {} at {}\n", l.reason, l.at));
            }
            Some(l) => text.push_str(&format!("the last agent (started {}) {}\n", l.at, l.reason)),
            None => {}
        }
        print(&text)?;
    }
    Err(Failure::Reported(exit::LOCKED))
}

/// How the last agent of a vault ended, from its log.
#[derive(Debug, PartialEq, Eq)]
struct LastStop {
    /// When, as the log line's RFC 3339 time (when it started, if it did not log its end).
    at: String,
    /// Why, in words (the [`StopReason`] display), or that it ended without saying.
    reason: String,
    /// Whether the agent logged its end (else it was killed, or the machine went down).
    logged: bool,
}

/// The last 16 KiB of the agent log (its own 0600 file; still read bounded, never followed
/// through a symlink, and only as text to search).
fn read_log_tail(path: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 16 * 1024;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32,
        )
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    file.seek(SeekFrom::Start(meta.len().saturating_sub(TAIL)))
        .ok()?;
    let mut bytes = Vec::new();
    file.take(TAIL).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The last agent's end in a log's tail: its `stopped:` line, or, when the last agent that
/// started has no such line after its start, that it ended without saying (killed).
fn last_stop(tail: &str) -> Option<LastStop> {
    let mut last: Option<LastStop> = None;
    for line in tail.lines() {
        let Some((at, message)) = line.split_once(' ') else {
            continue;
        };
        let printable = |s: &str| s.chars().filter(|c| !c.is_control()).take(300).collect();
        if let Some(reason) = message.strip_prefix(server::STOPPED_PREFIX) {
            last = Some(LastStop {
                at: printable(at),
                reason: printable(reason),
                logged: true,
            });
        } else if message.starts_with("agent pid ") && message.contains(" serving ") {
            last = Some(LastStop {
                at: printable(at),
                reason: "ended without logging why: killed, or the machine restarted".to_owned(),
                logged: false,
            });
        }
    }
    last
}

pub fn status(ctx: &Context) -> Outcome {
    if !ctx.store.exists() {
        return Err(sfvault::vault::store::no_vault(ctx.store.path()).into());
    }
    let Some(agent) = find_agent(ctx) else {
        return report_locked(ctx);
    };
    let st = match agent.call(&Request::Status) {
        // It stopped, or did not answer in time: as with no agent.
        Err(e) if matches!(e.kind(), ErrorKind::AgentGone | ErrorKind::Locked) => {
            return report_locked(ctx);
        }
        other => other?,
    };
    let Response::Status(st) = st else {
        return Err(Error::failed("the agent answered status with something else").into());
    };
    if ctx.json {
        print_json(json!({
            "unlocked": true,
            "vault": st.vault,
            "agent_pid": st.pid,
            "idle_timeout_secs": st.idle_timeout_secs,
            "locks_in_secs": st.locks_in_secs,
        }))?;
        return Ok(());
    }
    let left = st
        .locks_in_secs
        .map_or("until `sfvault lock`".to_owned(), |s| {
            format!("locks in {}", human_left(s))
        });
    print(&format!(
        "unlocked: {} (agent pid {}, {left})\n",
        st.vault, st.pid
    ))?;
    Ok(())
}

fn human_left(secs: u64) -> String {
    format!("{}m{:02}s", secs / 60, secs % 60)
}

/// The agent process: detach, take the key from stdin, open the vault, serve. SIGTERM, SIGINT
/// and SIGHUP stop it like `lock` (key wiped, socket removed, exit 0).
pub fn serve(ctx: &Context, args: AgentArgs) -> Result<()> {
    // A new session: no controlling terminal, no SIGHUP when the shell that unlocked exits.
    let _ = rustix::process::setsid();
    // From here on these signals are caught, and acted on once the agent exists.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::failed_with("agent: cannot catch signals", e))?;
    // Before the vault is decrypted, so its pages are locked from the start.
    let all_memory = sfvault::secret::lock_all_memory();
    let mut key = SecretKey::zeroed();
    // Straight from the pipe into locked memory: std's stdin buffer would keep a copy.
    sfvault::secret::read_key_unbuffered(std::io::stdin(), &mut key)
        .map_err(|e| Error::failed_with("agent: no key on stdin", e))?;
    let vault = ctx.store.open_with_data_key(key)?;
    let paths = ctx.agent_paths()?;
    let (listener, _claim) = server::bind(&paths.socket)?;
    let limits = server::Limits {
        idle_timeout: nonzero(args.idle_secs),
        max_lifetime: nonzero(args.lifetime_secs),
    };
    let agent = server::Agent::new(vault, listener, &paths.socket, limits, Arc::new(log_line));
    let stopper = agent.stopper();
    std::thread::Builder::new()
        .name("agent-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                stopper.stop(StopReason::Signal(signal_name(signal).into()));
            }
        })
        .map_err(|e| Error::failed_with("agent: cannot watch for signals", e))?;
    log_line(&format!(
        "agent pid {} serving {} on {}",
        std::process::id(),
        paths.vault.display(),
        paths.socket.display()
    ));
    if sfvault::secret::memory_lock_failed() {
        log_line(
            "warning: the key could not be locked in memory (RLIMIT_MEMLOCK); it may reach swap",
        );
    }
    match all_memory {
        AllMemory::Locked => log_line("all memory locked: decrypted entries never reach swap"),
        AllMemory::LimitTooLow(bytes) => log_line(&format!(
            "note: decrypted entries are not locked in memory, only the key (RLIMIT_MEMLOCK is \
             {} KiB; `ulimit -l unlimited` before unlock locks them all)",
            bytes / 1024
        )),
        AllMemory::Refused => {
            log_line("warning: mlockall refused; decrypted entries may reach swap")
        }
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"ready\n").and_then(|()| out.flush());
    }
    agent.serve();
    Ok(())
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

fn nonzero(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// One timestamped line on stderr, which `unlock` pointed at the agent log.
fn log_line(message: &str) {
    let mut line = format!(
        "{} {message}\n",
        sfvault::timefmt::rfc3339(sfvault::vault::model::now())
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    line.zeroize();
}

#[cfg(test)]
mod tests {
    use super::{LastStop, last_stop, until};

    #[test]
    fn the_last_agent_end_is_read_from_its_log() {
        let log = "2026-11-30T10:00:00Z agent pid 7 serving /v on /s\n\
                   2026-11-30T10:15:00Z stopped: locked itself: no request within its idle timeout\n";
        assert_eq!(
            last_stop(log),
            Some(LastStop {
                at: "2026-11-30T10:15:00Z".into(),
                reason: "locked itself: no request within its idle timeout".into(),
                logged: true,
            })
        );
        // A later agent that never logged its end was killed.
        let killed = format!("{log}2026-11-30T11:00:00Z agent pid 9 serving /v on /s\n");
        let killed = last_stop(&killed).unwrap();
        assert!(
            !killed.logged && killed.at == "2026-11-30T11:00:00Z",
            "{killed:?}"
        );
        assert_eq!(last_stop("garbage\n\u{1b}[2J\n"), None);
    }

    #[test]
    fn the_unlock_message_names_every_limit_set() {
        assert_eq!(until(0, 0), "until `sfvault lock`");
        assert_eq!(until(0, 2), "for 2s or until `sfvault lock`");
        assert_eq!(until(900, 0), "until 15m without use");
        assert_eq!(until(900, 7200), "until 15m without use, 2h at most");
    }
}
