//! The agent's serving loop.
//!
//! Connections are served side by side, at most [`MAX_CONNECTIONS`] at once: a stray process of
//! the same user holding connections open (or trickling its request) cannot delay anyone else.
//! Several threads wait in `accept` on the one listener and each serves the connection it
//! accepted itself; a thread that accepts when no other is waiting starts another first. So a
//! request normally costs no thread start and no hand-over between threads (a thread started
//! per connection cost the agent ~130 µs of CPU per request, three times the request itself),
//! and there is always a thread waiting for the next connection. Requests that touch the vault are still answered one at a time, under the
//! vault's mutex, which is held only while answering, never while reading or writing a socket.
//!
//! Every connection's peer uid is checked (SO_PEERCRED) before a byte is read; other users are
//! refused and logged.
//!
//! When to stop is decided outside the vault's mutex: the stop reason and the socket file sit
//! behind a small mutex of their own, the last activity in an atomic. So a vault re-read that
//! blocks (or a slow save) never delays the idle timeout, the maximum lifetime, `lock` or a
//! signal: a watchdog thread that never touches the vault watches the clock and the socket
//! file, and a separate re-reader only ever *tries* the vault's mutex to notice a vault file
//! re-keyed or replaced. Once a stop is decided the socket file goes at once, and [`Agent::serve`]
//! returns within [`STOP_GRACE`], having wiped the key unless something still holds the vault.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::agent::deadline::Deadline;
use crate::agent::protocol::{
    self, AgentStatus, FrameError, HEADER_LEN, MAX_REQUEST_LEN, Request, Response,
};
use crate::error::{Error, ErrorKind, Result};
use crate::fs_safety::lock_within;
use crate::vault::model;
use crate::vault::name::EntryName;
use crate::vault::store::OpenVault;

/// How long a client may take to send its whole request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to take the whole answer (a large `list` is tens of MiB).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the watchdog looks at the clock and the socket, and the re-reader at the vault.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Most connections served at once (one accepting thread each).
///
/// A new connection beyond it first makes room: the connection that has waited longest
/// without sending its whole request (a silent or trickling one: real clients send theirs as
/// soon as they connect) is cut, and the newcomer waits up to [`ADMIT_WAIT`] for its thread to
/// end. If every connection is past its request (all waiting for the vault or sending answers),
/// the newcomer is closed at once, unread: its client sees the agent gone and unlocks by itself,
/// as with no agent.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a new connection waits for a free place when [`MAX_CONNECTIONS`] are served.
const ADMIT_WAIT: Duration = Duration::from_millis(100);
/// Stack of a connection thread: decoding and answering need little, and 64 of them stay small.
const CONNECTION_STACK: usize = 512 * 1024;

/// Once a stop is decided, how long [`Agent::serve`] waits for a request that holds the vault
/// (a save in progress) before returning anyway: the process then exits, and its memory, key
/// included, goes with it.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

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
    /// A signal (SIGTERM, SIGINT, SIGHUP), by name.
    Signal(String),
}

impl std::fmt::Display for StopReason {
    /// Why the agent stopped, in the words `status` shows (and the log's `stopped:` line holds).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Locked => f.write_str("locked by `sfvault lock`"),
            StopReason::IdleTimeout => {
                f.write_str("locked itself: no request within its idle timeout")
            }
            StopReason::MaxLifetime => f.write_str("locked itself: its maximum lifetime ran out"),
            StopReason::VaultReplaced(why) => {
                write!(f, "locked itself: the vault file changed under it ({why})")
            }
            StopReason::SocketRemoved => f.write_str(
                "locked itself: its socket file was removed (runtime directory cleaned?)",
            ),
            StopReason::Signal(name) => write!(f, "stopped by {name}"),
        }
    }
}

/// What starts the agent log's last line, before the [`StopReason`] in words.
pub const STOPPED_PREFIX: &str = "stopped: ";

/// A log sink: one line per notable event, never a secret.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// What every thread of the agent shares.
struct Shared {
    /// The vault, `None` once wiped. Held only while answering a request or re-reading.
    vault: Mutex<Option<OpenVault>>,
    /// The vault's path, for `status` without the vault.
    vault_path: String,
    /// A stop was decided: read without any lock.
    stopping: AtomicBool,
    /// The stop reason and the socket file; never held across anything that can block.
    control: Mutex<Control>,
    /// The socket path and the inode we bound, so we only ever remove our own socket.
    socket: SocketFile,
    started: Instant,
    /// Milliseconds from `started` to the last request that counts as activity.
    last_activity_ms: AtomicU64,
    connections: Mutex<Connections>,
    /// Signalled whenever a connection ends.
    place_freed: Condvar,
    /// The threads that accept connections.
    acceptors: Mutex<Acceptors>,
    limits: Limits,
    log: Log,
}

struct Control {
    stop: Option<StopReason>,
    /// A second handle on the listener, to wake the accept loop (shut down, accept fails).
    waker: Option<Arc<UnixListener>>,
}

/// The connections being served.
#[derive(Default)]
struct Connections {
    next_id: u64,
    /// Every connection with a thread, by age.
    open: BTreeMap<u64, Arc<UnixStream>>,
    /// Those still reading their request, oldest first: the ones cut to make room.
    reading: BTreeSet<u64>,
}

/// Threads that accept (and then serve) connections.
#[derive(Default)]
struct Acceptors {
    /// Threads waiting in `accept`.
    waiting: usize,
    /// All of them, the main thread included.
    total: usize,
}

struct SocketFile {
    path: PathBuf,
    ino: Option<u64>,
}

impl SocketFile {
    fn is_ours(&self) -> bool {
        self.ino.is_some()
            && std::fs::symlink_metadata(&self.path).map(|m| m.ino()).ok() == self.ino
    }

    fn remove(&self) {
        if self.is_ours() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave the vault half-saved (saves are atomic), so a
    // poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handle that stops a running (or not yet started) agent, e.g. from a signal handler thread.
#[derive(Clone)]
pub struct Stopper(Arc<Shared>);

impl Stopper {
    /// Decide to stop for `reason` (the first reason decided is the one reported). The socket
    /// file goes at once; [`Agent::serve`] returns soon after.
    pub fn stop(&self, reason: StopReason) {
        self.0.stop(reason);
    }
}

/// An agent ready to serve one vault on a bound socket.
pub struct Agent {
    shared: Arc<Shared>,
    listener: Arc<UnixListener>,
}

impl Agent {
    /// An agent for `vault` on `listener`, bound at `socket` (see [`bind`]); `log` receives one
    /// line per notable event (never a secret).
    pub fn new(
        vault: OpenVault,
        listener: UnixListener,
        socket: &Path,
        limits: Limits,
        log: Log,
    ) -> Agent {
        let listener = Arc::new(listener);
        let shared = Arc::new(Shared {
            vault_path: vault.store().path().display().to_string(),
            vault: Mutex::new(Some(vault)),
            stopping: AtomicBool::new(false),
            control: Mutex::new(Control {
                stop: None,
                waker: Some(Arc::clone(&listener)),
            }),
            socket: SocketFile {
                path: socket.to_path_buf(),
                ino: std::fs::metadata(socket).map(|m| m.ino()).ok(),
            },
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            connections: Mutex::new(Connections::default()),
            place_freed: Condvar::new(),
            acceptors: Mutex::new(Acceptors::default()),
            limits,
            log,
        });
        Agent { shared, listener }
    }

    /// A handle to stop this agent from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.shared))
    }

    /// Serve until a stop reason arises. Returns once the socket file is removed and the vault
    /// and its key are dropped (zeroized), or after [`STOP_GRACE`] if a request still holds the
    /// vault then (the caller is expected to exit, which ends that request too).
    pub fn serve(self) -> StopReason {
        let Agent { shared, listener } = self;
        let spawn = |name: &str, f: fn(&Shared)| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(name.into())
                .stack_size(CONNECTION_STACK)
                .spawn(move || f(&shared))
        };
        if let Err(e) = spawn("agent-watchdog", watchdog).and(spawn("agent-reread", reread)) {
            // Without a watchdog the time limits would not hold: do not serve at all.
            shared.stop(StopReason::Locked);
            (shared.log)(&format!("cannot start the watchdog: {e}"));
        }
        lock(&shared.acceptors).total += 1;
        accept_and_serve(&shared, &listener, true);
        drop(listener);
        shared.finish()
    }
}

/// Serve `vault` on `listener` (bound at `socket`) until a stop reason arises: [`Agent::new`]
/// then [`Agent::serve`].
pub fn serve(
    vault: OpenVault,
    listener: UnixListener,
    socket: &Path,
    limits: Limits,
    log: Log,
) -> StopReason {
    Agent::new(vault, listener, socket, limits, log).serve()
}

impl Shared {
    fn stop(&self, reason: StopReason) {
        let mut control = lock(&self.control);
        // The socket file goes at once, so no new client can connect to an agent that will not
        // answer; clients then find no agent and unlock by themselves.
        self.socket.remove();
        control.stop.get_or_insert(reason);
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(listener) = &control.waker {
            // Wake the blocked accept (Linux fails accept on a shut-down listener), so the loop
            // sees the stop even if the socket file was deleted.
            let _ = rustix::net::shutdown(&**listener, rustix::net::Shutdown::Read);
        }
    }

    /// After the accept loop: cut connections still sending requests, let answers being
    /// written finish and wipe the key (waiting at most [`STOP_GRACE`] in all, for a request
    /// or a re-read that holds the vault), report why.
    fn finish(&self) -> StopReason {
        self.stop(StopReason::Locked); // no-op but for the reason if already stopped
        lock(&self.control).waker = None;
        {
            let mut connections = lock(&self.connections);
            for id in std::mem::take(&mut connections.reading) {
                // Shut our reading side only: the client, whose request we never read, sees a
                // reset or a broken pipe, i.e. "agent gone", and carries on without us.
                if let Some(stream) = connections.open.get(&id) {
                    let _ = stream.shutdown(std::net::Shutdown::Read);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        // Let the answers being written finish (the answer to `lock` among them): returning
        // ends the process, and them with it.
        {
            let mut connections = lock(&self.connections);
            while !connections.open.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                connections = self
                    .place_freed
                    .wait_timeout(connections, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let wiped = loop {
            let mut vault = match self.vault.try_lock() {
                Ok(vault) => vault,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(std::sync::TryLockError::WouldBlock) => break false,
            };
            // Dropped here: the key and every decrypted value are zeroized.
            drop(vault.take());
            break true;
        };
        if !wiped {
            (self.log)(&format!(
                "a request still held the vault after {} s (a blocked read of the vault \
                 file?); exiting without waiting for it",
                STOP_GRACE.as_secs()
            ));
        }
        let reason = lock(&self.control)
            .stop
            .clone()
            .unwrap_or(StopReason::Locked);
        (self.log)(&format!("{STOPPED_PREFIX}{reason}"));
        reason
    }

    fn note_activity(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.fetch_max(ms, Ordering::SeqCst);
    }

    fn last_activity(&self) -> Instant {
        self.started + Duration::from_millis(self.last_activity_ms.load(Ordering::SeqCst))
    }

    /// Take a place for a new connection (see [`MAX_CONNECTIONS`]); `None`: no place.
    ///
    /// At the cap, the connection that has waited longest without sending its request is cut
    /// and its place taken at once (its thread lets go as soon as its read fails), so that the
    /// next accepting thread cannot take it first; only when every connection is past its
    /// request does the newcomer wait (up to [`ADMIT_WAIT`]) for a place.
    fn admit(&self, stream: &Arc<UnixStream>) -> Option<u64> {
        let mut connections = lock(&self.connections);
        if connections.open.len() >= MAX_CONNECTIONS {
            if let Some(oldest) = connections.reading.pop_first() {
                if let Some(cut) = connections.open.remove(&oldest) {
                    // Its thread's read ends at once (see `done_reading`).
                    let _ = cut.shutdown(std::net::Shutdown::Read);
                }
            } else {
                let deadline = Instant::now() + ADMIT_WAIT;
                while connections.open.len() >= MAX_CONNECTIONS {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    connections = self
                        .place_freed
                        .wait_timeout(connections, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        let id = connections.next_id;
        connections.next_id += 1;
        connections.open.insert(id, Arc::clone(stream));
        connections.reading.insert(id);
        Some(id)
    }

    /// Connection `id` is done reading its request; false if it was cut meanwhile (to make
    /// room, or because the agent is stopping).
    fn done_reading(&self, id: u64) -> bool {
        lock(&self.connections).reading.remove(&id)
    }

    fn release(&self, id: u64) {
        let mut connections = lock(&self.connections);
        connections.open.remove(&id);
        connections.reading.remove(&id);
        self.place_freed.notify_all();
    }
}

/// Accept connections and serve each on this thread, until the agent stops. A thread that
/// accepts while no other waits in `accept` first starts one more (up to one per connection
/// place, plus one to make room at the cap). Extra threads end once two others wait; the main
/// thread (`permanent`) stays until the stop.
fn accept_and_serve(shared: &Arc<Shared>, listener: &Arc<UnixListener>, permanent: bool) {
    loop {
        lock(&shared.acceptors).waiting += 1;
        let accepted = listener.accept();
        let start_another = {
            let mut acceptors = lock(&shared.acceptors);
            acceptors.waiting -= 1;
            let start = acceptors.waiting == 0 && acceptors.total <= MAX_CONNECTIONS;
            if start {
                acceptors.total += 1;
            }
            start
        };
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        if start_another {
            let (shared2, listener2) = (Arc::clone(shared), Arc::clone(listener));
            let spawned = std::thread::Builder::new()
                .name("agent-connection".into())
                .stack_size(CONNECTION_STACK)
                .spawn(move || accept_and_serve(&shared2, &listener2, false));
            if let Err(e) = spawned {
                lock(&shared.acceptors).total -= 1;
                (shared.log)(&format!("cannot start another connection thread: {e}"));
            }
        }
        match accepted {
            Ok((stream, _)) => serve_one(shared, stream),
            Err(e) => {
                (shared.log)(&format!("accept failed: {e}"));
                std::thread::sleep(WATCH_INTERVAL);
            }
        }
        if !permanent {
            let mut acceptors = lock(&shared.acceptors);
            if acceptors.waiting >= 2 {
                acceptors.total -= 1;
                return;
            }
        }
    }
    lock(&shared.acceptors).total -= 1;
}

/// Check a new connection's peer, take a place for it and serve it on this thread.
fn serve_one(shared: &Shared, stream: UnixStream) {
    match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(cred) if cred.uid == rustix::process::geteuid() => {}
        Ok(cred) => {
            (shared.log)(&format!(
                "refused a connection from uid {} (pid {}): only uid {} may use this agent",
                cred.uid.as_raw(),
                cred.pid.as_raw_nonzero(),
                rustix::process::geteuid().as_raw()
            ));
            return;
        }
        Err(e) => {
            (shared.log)(&format!("refused a connection whose peer is unknown: {e}"));
            return;
        }
    }
    let stream = Arc::new(stream);
    let Some(id) = shared.admit(&stream) else {
        return; // closed unread: the client carries on without the agent
    };
    /// Gives the connection's place back however serving it ends.
    struct Place<'a>(&'a Shared, u64);
    impl Drop for Place<'_> {
        fn drop(&mut self) {
            self.0.release(self.1);
        }
    }
    let place = Place(shared, id);
    handle(shared, place.1, &stream);
}

/// Watch the clock and the socket file, never the vault: the time limits hold whatever holds
/// the vault.
fn watchdog(shared: &Shared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(WATCH_INTERVAL);
        let now = Instant::now();
        let passed = |since: Instant, limit: Option<Duration>| {
            limit.is_some_and(|t| since.checked_add(t).is_none_or(|deadline| now >= deadline))
        };
        if passed(shared.last_activity(), shared.limits.idle_timeout) {
            shared.stop(StopReason::IdleTimeout);
        } else if passed(shared.started, shared.limits.max_lifetime) {
            shared.stop(StopReason::MaxLifetime);
        } else if !shared.socket.is_ours() {
            // Without its socket nobody can reach (or lock) this agent: stop rather than hold
            // the key unreachably.
            shared.stop(StopReason::SocketRemoved);
        }
    }
}

/// Notice a vault file that was re-keyed, replaced or made unsafe, when the vault is free: a
/// request in progress re-reads it anyway, and a re-read that blocks holds up only this thread.
fn reread(shared: &Shared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(WATCH_INTERVAL);
        let mut vault = match shared.vault.try_lock() {
            Ok(vault) => vault,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => continue,
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Some(open) = vault.as_mut() else { return };
        if let Err(e) = open.refresh() {
            drop(vault);
            // Whatever the failure (re-keyed, removed, unreadable, made unsafe, replaced by a
            // directory or by something that is not a vault of ours), the file this agent
            // unlocked is no longer there to serve: wipe the key rather than keep it while
            // refusing every request. Saves are atomic renames: no half-written file is seen.
            shared.stop(StopReason::VaultReplaced(e.to_string()));
        }
    }
}

/// Serve connection `id`: read one request (within [`READ_TIMEOUT`]), answer it.
fn handle(shared: &Shared, id: u64, stream: &UnixStream) {
    let mut input = Deadline::new(stream, READ_TIMEOUT);
    let mut head = [0u8; HEADER_LEN];
    if input.read_exact(&mut head).is_err() {
        return; // a client that gave up, or a connection cut to make room
    }
    let decoded = protocol::decode_frame::<Request>(&head, &mut input, MAX_REQUEST_LEN);
    let cut = !shared.done_reading(id);
    let request = match decoded {
        // Cut as its last bytes arrived: not acted on, and the client is told so (locked: it
        // carries on without the agent).
        Ok(_) if cut => {
            let _ = protocol::write_frame(
                Deadline::new(stream, WRITE_TIMEOUT),
                &Response::Error {
                    kind: ErrorKind::Locked,
                    message: "the agent was too busy or stopping to take this request".into(),
                },
            );
            return;
        }
        // Cut while reading: say nothing (the client sees the agent gone).
        Err(_) if cut => return,
        Ok(r) => r,
        Err(FrameError::Version(v)) => {
            (shared.log)(&format!("a client of protocol version {v} connected"));
            let _ = protocol::write_version_only(Deadline::new(stream, WRITE_TIMEOUT));
            return;
        }
        Err(e) => {
            (shared.log)(&format!("malformed request: {e}"));
            let _ = protocol::write_frame(
                Deadline::new(stream, WRITE_TIMEOUT),
                &Response::Error {
                    kind: ErrorKind::Usage,
                    message: format!("the agent could not read the request: {e}"),
                },
            );
            return;
        }
    };
    let response = answer(shared, request).unwrap_or_else(|e| Response::Error {
        kind: e.kind(),
        message: e.to_string(),
    });
    let _ = protocol::write_frame(Deadline::new(stream, WRITE_TIMEOUT), &response);
}

fn locking() -> Error {
    Error::locked("the agent is locking; unlock again")
}

fn answer(shared: &Shared, request: Request) -> Result<Response> {
    if request == Request::Lock {
        // Honoured whatever state the vault (file) is in: it needs neither.
        shared.stop(StopReason::Locked);
        return Ok(Response::Locked);
    }
    if shared.stopping.load(Ordering::SeqCst) {
        return Err(locking());
    }
    if request != Request::Status {
        shared.note_activity();
    }
    let mut guard = lock(&shared.vault);
    // A stop decided while this request waited for the vault wins.
    if shared.stopping.load(Ordering::SeqCst) {
        return Err(locking());
    }
    let vault = guard.as_mut().ok_or_else(locking)?;
    if let Err(e) = vault.refresh() {
        drop(guard);
        // As in the re-reader: a vault that cannot be re-read ends the agent.
        shared.stop(StopReason::VaultReplaced(e.to_string()));
        return Err(e);
    }
    Ok(match request {
        Request::Status => Response::Status(status(shared, vault)),
        Request::Field { entry, field } => {
            let name = EntryName::parse(&entry)?;
            let mut f = vault.data.field(&name, &field)?.clone();
            f.history.clear();
            Response::Field(f)
        }
        Request::Entry {
            entry,
            reveal,
            history,
        } => {
            let name = EntryName::parse(&entry)?;
            Response::Entry(vault.data.entry(&name)?.view(reveal, history))
        }
        Request::List => Response::Entries(
            vault
                .data
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.masked()))
                .collect(),
        ),
        Request::Apply(change) => {
            let now = model::now();
            Response::Applied(vault.update(|data| change.apply(data, now))?)
        }
        Request::Removed => Response::Removed {
            removed_days: vault.data.settings.removed_days,
            removed: vault.data.removed_view(model::now()),
        },
        Request::Lock => Response::Locked, // answered above
    })
}

fn status(shared: &Shared, vault: &OpenVault) -> AgentStatus {
    let now = Instant::now();
    let limits = shared.limits;
    let left_of = |since: Instant, limit: Option<Duration>| {
        limit.map(|t| t.saturating_sub(now.saturating_duration_since(since)))
    };
    let idle_left = left_of(shared.last_activity(), limits.idle_timeout);
    let life_left = left_of(shared.started, limits.max_lifetime);
    let left = match (idle_left, life_left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    AgentStatus {
        vault: shared.vault_path.clone(),
        pid: std::process::id(),
        idle_timeout_secs: limits.idle_timeout.map_or(0, |t| t.as_secs()),
        locks_in_secs: left.map(|d| d.as_secs()),
        history_limit: vault.data.settings.history_limit,
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
        Ok(claim) => lock_within(&claim, within).unwrap_or(false),
        Err(_) => true,
    }
}

/// The file whose exclusive lock is an agent's claim on `socket`.
pub fn claim_path(socket: &Path) -> PathBuf {
    socket.with_extension("lock")
}

/// Claim the socket path and bind it (mode 0600), replacing a stale socket left by a dead
/// agent. Fails if another agent holds the claim.
pub fn bind(path: &Path) -> Result<(UnixListener, Claim)> {
    let lock =
        crate::fs_safety::open_private_file(&claim_path(path), "the agent's claim file", false)?;
    // `lock` and `unlock` probe the claim with a brief lock of their own (see
    // [`wait_for_release`]): allow a moment so a probe is not taken for another agent.
    if !lock_within(&lock, Duration::from_millis(200)).unwrap_or(false) {
        return Err(Error::failed(format!(
            "an agent is already running on {}",
            path.display()
        )));
    }
    let claim = Claim { _lock: lock };
    if path.exists() {
        // Non-blocking: whatever listens there (if anything) cannot hold us up.
        if crate::agent::client::connect_within(path, Duration::from_millis(500)).is_ok() {
            return Err(Error::failed(format!(
                "an agent is already running on {}",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::io("cannot remove the stale socket", path, e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| Error::io("cannot listen on", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot restrict", path, e))?;
    Ok((listener, claim))
}
