//! The agent's serving loop. One connection at a time, one request per connection: requests
//! take microseconds, and serialising them means the vault is never touched concurrently.
//!
//! Every connection's peer uid is checked (SO_PEERCRED) before a byte is read; other users are
//! refused and logged. A watchdog thread ends the agent on its idle timeout (which `Status` does
//! not extend), its maximum lifetime, or when the vault file is re-keyed or replaced.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::agent::protocol::{self, AgentStatus, FrameError, MAX_REQUEST_LEN, Request, Response};
use crate::error::{Error, Result};
use crate::vault::model;
use crate::vault::name::EntryName;
use crate::vault::store::OpenVault;

/// How long a client may take to send its whole request (the agent serves one at a time).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to take the whole answer (a large `list` is tens of MiB).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the watchdog looks at the clock and the vault file.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// When the agent stops on its own.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Lock after this long without a request (status requests do not count).
    pub idle_timeout: Option<Duration>,
    /// Lock this long after start, whatever the activity.
    pub max_lifetime: Option<Duration>,
}

/// Why the agent stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `sfvault lock`.
    Locked,
    /// No request within the idle timeout.
    IdleTimeout,
    /// The maximum lifetime ran out.
    MaxLifetime,
    /// The vault file was re-keyed, replaced by another vault, or removed.
    VaultReplaced(String),
    /// The socket file was removed (e.g. the runtime directory was cleaned).
    SocketRemoved,
}

struct State<'a> {
    vault: OpenVault,
    last_activity: Instant,
    started: Instant,
    stop: Option<StopReason>,
    socket: SocketFile<'a>,
}

impl State<'_> {
    /// Decide to stop: the socket file goes at once, so no new client can connect to an agent
    /// that will not answer; clients then find no agent and unlock by themselves.
    fn stop(&mut self, reason: StopReason) {
        self.socket.remove();
        self.stop.get_or_insert(reason);
    }
}

/// The socket path and the inode we bound, so we only ever remove our own socket.
struct SocketFile<'a> {
    path: &'a Path,
    ino: Option<u64>,
}

impl SocketFile<'_> {
    fn is_ours(&self) -> bool {
        self.ino.is_some() && std::fs::symlink_metadata(self.path).map(|m| m.ino()).ok() == self.ino
    }

    fn remove(&mut self) {
        if self.ino.is_some() && std::fs::metadata(self.path).map(|m| m.ino()).ok() == self.ino {
            let _ = std::fs::remove_file(self.path);
        }
        self.ino = None;
    }
}

/// Serve `vault` on `listener` (bound at `socket`) until a stop reason arises; `log` receives
/// one line per notable event (never a secret). The vault and its key are dropped (zeroized)
/// when this returns, and the socket file is removed.
pub fn serve(
    vault: OpenVault,
    listener: UnixListener,
    socket: &Path,
    limits: Limits,
    log: &(dyn Fn(&str) + Sync),
) -> StopReason {
    let now = Instant::now();
    let state = Mutex::new(State {
        vault,
        last_activity: now,
        started: now,
        stop: None,
        socket: SocketFile {
            path: socket,
            ino: std::fs::metadata(socket).map(|m| m.ino()).ok(),
        },
    });
    std::thread::scope(|scope| {
        scope.spawn(|| watchdog(&state, &listener, limits));
        for stream in listener.incoming() {
            if lock(&state).stop.is_some() {
                break;
            }
            match stream {
                Ok(stream) => handle(&state, stream, limits, log),
                Err(e) => {
                    log(&format!("accept failed: {e}"));
                    std::thread::sleep(WATCH_INTERVAL);
                }
            }
            if lock(&state).stop.is_some() {
                break;
            }
        }
        // Let the watchdog finish if we stopped on a request.
        lock(&state).stop(StopReason::Locked);
    });
    let reason = lock(&state).stop.clone().unwrap_or(StopReason::Locked);
    log(&format!("stopped: {reason:?}"));
    reason
}

fn lock<'s, 'a>(state: &'s Mutex<State<'a>>) -> MutexGuard<'s, State<'a>> {
    // A panic while holding the lock cannot leave the vault half-saved (saves are atomic), so a
    // poisoned lock is still usable.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn watchdog(state: &Mutex<State<'_>>, listener: &UnixListener, limits: Limits) {
    loop {
        std::thread::sleep(WATCH_INTERVAL);
        let mut st = lock(state);
        if st.stop.is_some() {
            return;
        }
        let now = Instant::now();
        let passed = |since: Instant, limit: Option<Duration>| {
            limit.is_some_and(|t| since.checked_add(t).is_none_or(|deadline| now >= deadline))
        };
        if passed(st.last_activity, limits.idle_timeout) {
            st.stop(StopReason::IdleTimeout);
        } else if passed(st.started, limits.max_lifetime) {
            st.stop(StopReason::MaxLifetime);
        } else if !st.socket.is_ours() {
            // Without its socket nobody can reach (or lock) this agent: stop rather than hold
            // the key unreachably.
            st.stop(StopReason::SocketRemoved);
        } else if let Err(e) = st.vault.refresh() {
            // Whatever the failure (re-keyed, removed, unreadable, made unsafe, replaced by a
            // directory or by something that is not a vault of ours), the file this agent
            // unlocked is no longer there to serve: wipe the key rather than keep it while
            // refusing every request. Saves are atomic renames: no half-written file is seen.
            st.stop(StopReason::VaultReplaced(e.to_string()));
        }
        if st.stop.is_some() {
            drop(st);
            // Wake the blocked accept (Linux returns EINVAL from accept on a shut-down
            // listener), so the loop sees the stop even if the socket file was deleted.
            let _ = rustix::net::shutdown(listener, rustix::net::Shutdown::Read);
            return;
        }
    }
}

/// One connection with one deadline for a whole read or write, not one per system call: a
/// client trickling a byte at a time cannot hold the agent, which serves one at a time.
struct Deadline<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl<'a> Deadline<'a> {
    fn new(stream: &'a UnixStream, within: Duration) -> Deadline<'a> {
        Deadline {
            stream,
            deadline: Instant::now() + within,
        }
    }

    /// Time left; an error once it has run out.
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        (&mut &*self.stream).read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        (&mut &*self.stream).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn handle(
    state: &Mutex<State<'_>>,
    stream: UnixStream,
    limits: Limits,
    log: &(dyn Fn(&str) + Sync),
) {
    match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(cred) if cred.uid == rustix::process::geteuid() => {}
        Ok(cred) => {
            log(&format!(
                "refused a connection from uid {} (pid {}): only uid {} may use this agent",
                cred.uid.as_raw(),
                cred.pid.as_raw_nonzero(),
                rustix::process::geteuid().as_raw()
            ));
            return;
        }
        Err(e) => {
            log(&format!("refused a connection whose peer is unknown: {e}"));
            return;
        }
    }
    let mut input = Deadline::new(&stream, READ_TIMEOUT);
    let mut head = [0u8; 10];
    if input.read_exact(&mut head).is_err() {
        return; // a wake-up connection, or a client that gave up
    }
    let request = match protocol::decode_frame::<Request>(&head, &mut input, MAX_REQUEST_LEN) {
        Ok(r) => r,
        Err(FrameError::Version(v)) => {
            log(&format!("a client of protocol version {v} connected"));
            let _ = protocol::write_version_only(Deadline::new(&stream, WRITE_TIMEOUT));
            return;
        }
        Err(e) => {
            log(&format!("malformed request: {e}"));
            let _ = protocol::write_frame(
                Deadline::new(&stream, WRITE_TIMEOUT),
                &Response::Error {
                    code: 2,
                    message: format!("the agent could not read the request: {e}"),
                },
            );
            return;
        }
    };
    let response = {
        let mut st = lock(state);
        answer(&mut st, request, limits).unwrap_or_else(|e| Response::Error {
            code: e.exit_code(),
            message: e.to_string(),
        })
    };
    let _ = protocol::write_frame(Deadline::new(&stream, WRITE_TIMEOUT), &response);
}

fn answer(st: &mut State<'_>, request: Request, limits: Limits) -> Result<Response> {
    if st.stop.is_some() {
        return Err(Error::Locked("the agent is locking; unlock again".into()));
    }
    if request == Request::Lock {
        // Honoured whatever state the vault file is in.
        st.stop(StopReason::Locked);
        return Ok(Response::Locked);
    }
    if request != Request::Status {
        st.last_activity = Instant::now();
    }
    if let Err(e) = st.vault.refresh() {
        // As in the watchdog: a vault that cannot be re-read ends the agent.
        st.stop(StopReason::VaultReplaced(e.to_string()));
        return Err(e);
    }
    Ok(match request {
        Request::Status => Response::Status(status(st, limits)),
        Request::Field { entry, field } => {
            let name = EntryName::parse(&entry)?;
            let mut f = st.vault.data.field(&name, &field)?.clone();
            f.history.clear();
            Response::Field(f)
        }
        Request::Entry {
            entry,
            reveal,
            history,
        } => {
            let name = EntryName::parse(&entry)?;
            Response::Entry(st.vault.data.entry(&name)?.view(reveal, history))
        }
        Request::List => Response::Entries(
            st.vault
                .data
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.masked()))
                .collect(),
        ),
        Request::Apply(change) => {
            let now = model::now();
            Response::Applied(st.vault.update(|data| change.apply(data, now))?)
        }
        Request::Lock => Response::Locked, // answered above
    })
}

fn status(st: &State<'_>, limits: Limits) -> AgentStatus {
    let now = Instant::now();
    let left_of = |since: Instant, limit: Option<Duration>| {
        limit.map(|t| t.saturating_sub(now.saturating_duration_since(since)))
    };
    let idle_left = left_of(st.last_activity, limits.idle_timeout);
    let life_left = left_of(st.started, limits.max_lifetime);
    let left = match (idle_left, life_left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    AgentStatus {
        vault: st.vault.store().path().display().to_string(),
        pid: std::process::id(),
        idle_timeout_secs: limits.idle_timeout.map_or(0, |t| t.as_secs()),
        locks_in_secs: left.map(|d| d.as_secs()),
        history_limit: st.vault.data.settings.history_limit,
    }
}

/// The agent's claim on its socket: an exclusive lock on `SOCKET.lock`, held for the agent's
/// life, so two agents for one vault can never both bind (and one never removes the other's
/// socket).
pub struct Claim {
    _lock: std::fs::File,
}

/// Wait up to `within` for the agent on `socket` to give up its claim, which it does only
/// after it has closed its listener, removed its socket and wiped its key. True once released
/// (or if no agent ever claimed this socket).
pub fn wait_for_release(socket: &Path, within: Duration) -> bool {
    // Taken and let go at once (closing the file releases it).
    match std::fs::File::open(claim_path(socket)) {
        Ok(claim) => lock_within(&claim, within),
        Err(_) => true,
    }
}

/// The file whose exclusive lock is an agent's claim on `socket`.
pub fn claim_path(socket: &Path) -> PathBuf {
    socket.with_extension("lock")
}

/// Try to take `file`'s exclusive lock, every 5 ms, for up to `within`.
fn lock_within(file: &std::fs::File, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if file.try_lock().is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Claim the socket path and bind it (mode 0600), replacing a stale socket left by a dead
/// agent. Fails if another agent holds the claim.
pub fn bind(path: &Path) -> Result<(UnixListener, Claim)> {
    let lock_path = claim_path(path);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::io("cannot open", &lock_path, e))?;
    // `lock` and `unlock` probe the claim with a brief lock of their own (see
    // [`wait_for_release`]): allow a moment so a probe is not taken for another agent.
    if !lock_within(&lock, Duration::from_millis(200)) {
        return Err(Error::Other(format!(
            "an agent is already running on {}",
            path.display()
        )));
    }
    let claim = Claim { _lock: lock };
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(Error::Other(format!(
                "an agent is already running on {}",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::io("cannot remove the stale socket", path, e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| Error::io("cannot listen on", path, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot restrict", path, e))?;
    Ok((listener, claim))
}
