//! unlock, lock, status, and the agent process itself (`__agent`).

use std::io::{BufRead, BufReader, Write};
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
    ctx.note(&format!(
        "Unlocked {} {timeout} (agent pid {}).",
        paths.vault.display(),
        child.id()
    ));
    Ok(())
}

fn note_already_unlocked(ctx: &Context, agent: &AgentClient) -> Result<()> {
    ctx.note(&format!(
        "{} is already unlocked (agent pid {}); `sfvault lock` first to change its timeout.",
        ctx.store.path().display(),
        agent.pid()
    ));
    Ok(())
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
            ctx.note(&format!(
                "Locked {} (agent pid {} stopped).",
                ctx.store.path().display(),
                agent.pid()
            ));
        }
        None => ctx.note("No agent is running for this vault; it is locked."),
    }
    Ok(())
}

fn report_locked(ctx: &Context) -> Outcome {
    if ctx.json {
        print_json(json!({"unlocked": false, "vault": ctx.store.path().display().to_string()}))?;
    } else {
        print(&format!("locked: {}\n", ctx.store.path().display()))?;
    }
    Err(Failure::Reported(exit::LOCKED))
}

pub fn status(ctx: &Context) -> Outcome {
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
    use super::until;

    #[test]
    fn the_unlock_message_names_every_limit_set() {
        assert_eq!(until(0, 0), "until `sfvault lock`");
        assert_eq!(until(0, 2), "for 2s or until `sfvault lock`");
        assert_eq!(until(900, 0), "until 15m without use");
        assert_eq!(until(900, 7200), "until 15m without use, 2h at most");
    }
}
