//! Asking a running agent. Every call is one connection; the agent's uid is checked like the
//! agent checks ours.
//!
//! Nothing here waits on the agent without a limit ([`Timeouts`]): connecting is non-blocking
//! (a full listen queue is "no agent", not a hang), and an agent that does not answer a read in
//! time is taken for gone, so the command unlocks by itself as if no agent ran.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent::AgentPaths;
use crate::agent::deadline::Deadline;
use crate::agent::protocol::{
    self, FrameError, HEADER_LEN, MAX_RESPONSE_LEN, PROTOCOL_VERSION, Request, Response,
};
use crate::error::{Error, Result};

/// How long `lock` waits for the agent to stop (it stops within
/// [`super::server::STOP_GRACE`]).
pub const STOP_WAIT: Duration = Duration::from_secs(5);

/// How long a client waits on an agent, by step and by kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To connect. A listen queue still full after this is "no agent".
    pub connect: Duration,
    /// To hand over a whole request (the agent itself allows 5 s).
    pub send: Duration,
    /// Until the answer to a read (status, field, entry, list) starts. The agent answers in
    /// microseconds unless another client's change holds the vault, which waits at most the
    /// vault's lock timeout (10 s by default) and an fsync. Past this, the read is repeated
    /// without the agent.
    pub read_answer: Duration,
    /// Until the answer to a change starts: it may wait for the vault's file lock and an
    /// fsync, and, possibly carried out, it is never repeated without the agent.
    pub change_answer: Duration,
    /// Until the answer to `lock` starts (the agent answers it without touching the vault;
    /// past this `lock` ends the agent with SIGTERM).
    pub lock_answer: Duration,
    /// Longest pause while an answer is arriving. There is no limit on the whole transfer: a
    /// `list` of a large vault is tens of MiB, and the agent itself gives up after 30 s.
    pub transfer_stall: Duration,
}

impl Timeouts {
    /// The limits every command uses.
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_millis(500),
        send: Duration::from_secs(5),
        read_answer: Duration::from_secs(12),
        change_answer: Duration::from_secs(60),
        lock_answer: Duration::from_secs(2),
        transfer_stall: Duration::from_secs(10),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

/// A live agent for one vault.
#[derive(Debug)]
pub struct AgentClient {
    paths: AgentPaths,
    pid: u32,
    timeouts: Timeouts,
    /// The connection made to find the agent, kept for the first request (one connection less
    /// per command).
    first: std::cell::RefCell<Option<UnixStream>>,
}

impl AgentClient {
    /// The agent serving `paths.vault`, if one is alive and runs as our uid.
    pub fn connect(paths: &AgentPaths) -> Option<AgentClient> {
        AgentClient::connect_with(paths, Timeouts::DEFAULT)
    }

    /// [`AgentClient::connect`] with other time limits.
    pub fn connect_with(paths: &AgentPaths, timeouts: Timeouts) -> Option<AgentClient> {
        let stream = connect_within(&paths.socket, timeouts.connect).ok()?;
        let cred = rustix::net::sockopt::socket_peercred(&stream).ok()?;
        if cred.uid != rustix::process::geteuid() {
            return None;
        }
        Some(AgentClient {
            paths: paths.clone(),
            pid: cred.pid.as_raw_nonzero().get() as u32,
            timeouts,
            first: std::cell::RefCell::new(Some(stream)),
        })
    }

    /// The agent's process id (from the socket's peer credentials).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Send `request` and return the answer; an agent-side error comes back as
    /// [`Error::Remote`] with the agent's error kind.
    ///
    /// [`Error::AgentGone`] means the caller may go on without the agent: the request was not
    /// carried out, or it is a read (anything but [`Request::Apply`]), which is safe to repeat;
    /// that includes an agent that did not answer within its time limit.
    pub fn call(&self, request: &Request) -> Result<Response> {
        let vault = self.paths.vault.display();
        let unreachable = |e: std::io::Error| {
            Error::failed(format!(
                "the agent for {vault} stopped answering ({e}); the change may or may not have \
                 been made: check with `sfvault show`, then run the command again if needed"
            ))
        };
        let gone = |e: std::io::Error| Error::AgentGone {
            reason: if is_timeout(&e) {
                format!("the agent for {vault} did not answer in time")
            } else {
                format!("the agent for {vault} is gone ({e})")
            },
            source: Some(e),
        };
        let (answer_within, repeatable) = match request {
            Request::Apply(_) => (self.timeouts.change_answer, false),
            Request::Lock => (self.timeouts.lock_answer, true),
            _ => (self.timeouts.read_answer, true),
        };
        let stream = self.send(request).map_err(gone)?;
        match self.receive(&stream, answer_within) {
            Ok(Response::Error { kind, message }) => Err(Error::Remote { kind, message }),
            Ok(response) => Ok(response),
            Err(FrameError::Version(v)) => Err(Error::failed(format!(
                "the running agent (pid {}) speaks protocol version {v} and this sfvault speaks \
                 {PROTOCOL_VERSION}: run `sfvault lock`, then `sfvault unlock`",
                self.pid
            ))),
            // A read is safe to repeat without the agent, whatever happened. A change is only
            // if the agent closed with our request unread (reset: it stopped while we queued).
            // Any other failure may come after the agent acted: it must not be repeated blindly.
            Err(FrameError::Io(e))
                if repeatable || e.kind() == std::io::ErrorKind::ConnectionReset =>
            {
                Err(gone(e))
            }
            Err(FrameError::Io(e)) => Err(unreachable(e)),
            Err(e) => Err(Error::failed(format!(
                "the agent's answer is unreadable: {e}"
            ))),
        }
    }

    /// Write `request` whole on a connection (the first one, kept from [`AgentClient::connect`],
    /// or a new one). A request not written whole was not carried out: the agent acts only on
    /// complete frames.
    fn send(&self, request: &Request) -> std::io::Result<UnixStream> {
        if let Some(stream) = self.first.borrow_mut().take() {
            match protocol::write_frame(Deadline::new(&stream, self.timeouts.send), request) {
                Ok(()) => return Ok(stream),
                // The agent dropped the connection we kept (we waited too long to use it, or
                // it was making room): nothing was read, so a new one may carry the request.
                Err(e) if is_closed(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let stream = connect_within(&self.paths.socket, self.timeouts.connect)?;
        protocol::write_frame(Deadline::new(&stream, self.timeouts.send), request)?;
        Ok(stream)
    }

    /// Read the answer: its header within `within`, then the body with no pause longer than
    /// [`Timeouts::transfer_stall`].
    fn receive(&self, stream: &UnixStream, within: Duration) -> Result<Response, FrameError> {
        let mut head = [0u8; HEADER_LEN];
        Deadline::new(stream, within)
            .read_exact(&mut head)
            .map_err(FrameError::Io)?;
        stream
            .set_read_timeout(Some(self.timeouts.transfer_stall))
            .map_err(FrameError::Io)?;
        protocol::decode_frame(&head, stream, MAX_RESPONSE_LEN)
    }

    /// Ask the agent to lock; if it cannot be asked (another protocol version, or no answer in
    /// time), end it with SIGTERM, on which it wipes its key and exits: it holds nothing
    /// unsaved. Returns once the agent has stopped (so an `unlock` right after cannot meet it),
    /// or fails after [`STOP_WAIT`].
    pub fn lock(&self) -> Result<()> {
        self.ask_to_stop()?;
        if super::server::wait_for_release(&self.paths.socket, STOP_WAIT) {
            Ok(())
        } else {
            Err(Error::failed(format!(
                "agent pid {} was told to lock but is still running after {} s; end it with \
                 `kill -KILL {}`",
                self.pid,
                STOP_WAIT.as_secs(),
                self.pid
            )))
        }
    }

    fn ask_to_stop(&self) -> Result<()> {
        match self.call(&Request::Lock) {
            Ok(_) => Ok(()),
            Err(_) => {
                // Only ever signal a process that is an sfvault agent: the peer of a socket
                // could be anything that bound it.
                let cmdline =
                    std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
                if !cmdline.split(|b| *b == 0).any(|arg| arg == b"__agent") {
                    return Err(Error::failed(format!(
                        "process {} on {} is not an sfvault agent; not stopping it",
                        self.pid,
                        self.paths.socket.display()
                    )));
                }
                let pid = rustix::process::Pid::from_raw(self.pid as i32)
                    .ok_or_else(|| Error::failed("the agent has no pid"))?;
                rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                    .map_err(|e| Error::failed(format!("cannot stop agent pid {}: {e}", self.pid)))
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

/// Connect to the Unix socket at `path` without ever blocking longer than `within`.
///
/// The connect is non-blocking. On Linux a Unix-socket connect either completes at once or,
/// when the listener's queue is full, fails with EAGAIN: there is no pending connection to
/// poll for, so it is tried again every few milliseconds until `within` has passed. (Should it
/// report EINPROGRESS, as other kinds of socket do, the socket is polled for the rest of
/// `within`.) The stream returned is blocking again.
pub(crate) fn connect_within(path: &Path, within: Duration) -> std::io::Result<UnixStream> {
    use rustix::io::Errno;
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let deadline = Instant::now() + within;
    let addr = SocketAddrUnix::new(path)?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the agent's listen queue stayed full",
                    ));
                }
                std::thread::sleep(left.min(Duration::from_millis(5)));
            }
            Err(Errno::INPROGRESS) => {
                wait_writable(&fd, deadline)?;
                if let Err(e) = rustix::net::sockopt::socket_error(&fd)? {
                    return Err(e.into());
                }
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Poll `fd` until it is writable (a connect in progress has completed), or fail at `deadline`.
fn wait_writable(fd: &OwnedFd, deadline: Instant) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(fd, PollFlags::OUT)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
