//! Asking a running agent. Every call is one connection; the agent's uid is checked like the
//! agent checks ours.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::agent::AgentPaths;
use crate::agent::protocol::{
    self, FrameError, MAX_RESPONSE_LEN, PROTOCOL_VERSION, Request, Response,
};
use crate::error::{Error, Result};

/// How long to wait for an answer: a write may wait for the vault lock and fsync.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `lock` waits for the agent to stop (it checks for a stop every 100 ms).
pub const STOP_WAIT: Duration = Duration::from_secs(5);

/// A live agent for one vault.
#[derive(Debug)]
pub struct AgentClient {
    paths: AgentPaths,
    pid: u32,
    /// The connection made to find the agent, kept for the first request (one connection less
    /// per command: the agent serves connections one at a time).
    first: std::cell::RefCell<Option<UnixStream>>,
}

impl AgentClient {
    /// The agent serving `paths.vault`, if one is alive and runs as our uid.
    pub fn connect(paths: &AgentPaths) -> Option<AgentClient> {
        let stream = UnixStream::connect(&paths.socket).ok()?;
        let cred = rustix::net::sockopt::socket_peercred(&stream).ok()?;
        if cred.uid != rustix::process::geteuid() {
            return None;
        }
        Some(AgentClient {
            paths: paths.clone(),
            pid: cred.pid.as_raw_nonzero().get() as u32,
            first: std::cell::RefCell::new(Some(stream)),
        })
    }

    /// The agent's process id (from the socket's peer credentials).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Send `request` and return the answer; an agent-side error comes back as
    /// [`Error::Remote`] with the agent's exit-code class.
    pub fn call(&self, request: &Request) -> Result<Response> {
        let unreachable = |e: std::io::Error| {
            Error::Other(format!(
                "the agent for {} stopped answering ({e}); run the command again",
                self.paths.vault.display()
            ))
        };
        // The agent did not carry the request out: the caller may go on without it.
        let gone = |e: std::io::Error| {
            Error::AgentGone(format!(
                "the agent for {} is gone ({e})",
                self.paths.vault.display()
            ))
        };
        let mut stream = match self.first.borrow_mut().take() {
            Some(stream) => stream,
            None => UnixStream::connect(&self.paths.socket).map_err(gone)?,
        };
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .map_err(unreachable)?;
        // A request that could not be written whole was not carried out: the agent acts only on
        // complete frames. That is "gone", and the caller may go on without the agent.
        protocol::write_frame(&mut stream, request).map_err(gone)?;
        match protocol::read_frame::<Response>(&mut stream, MAX_RESPONSE_LEN) {
            Ok(Response::Error { code, message }) => Err(Error::Remote { code, message }),
            Ok(response) => Ok(response),
            Err(FrameError::Version(v)) => Err(Error::Other(format!(
                "the running agent (pid {}) speaks protocol version {v} and this sfvault speaks \
                 {PROTOCOL_VERSION}: run `sfvault lock`, then `sfvault unlock`",
                self.pid
            ))),
            // Reset: the agent closed with our request unread (it stopped while we queued),
            // so nothing was carried out and the caller may go on without it. Any other
            // failure may come after the agent acted: the caller must not repeat it blindly.
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Err(gone(e))
            }
            Err(FrameError::Io(e)) => Err(unreachable(e)),
            Err(e) => Err(Error::Other(format!(
                "the agent's answer is unreadable: {e}"
            ))),
        }
    }

    /// Ask the agent to lock; if it cannot be asked (another protocol version), end it with
    /// SIGTERM, which is safe: it holds nothing unsaved. Returns once the agent has stopped
    /// (so an `unlock` right after cannot meet it), or fails after [`STOP_WAIT`].
    pub fn lock(&self) -> Result<()> {
        self.ask_to_stop()?;
        if super::server::wait_for_release(&self.paths.socket, STOP_WAIT) {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "agent pid {} was told to lock but is still running after {} s",
                self.pid,
                STOP_WAIT.as_secs()
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
                    return Err(Error::Other(format!(
                        "process {} on {} is not an sfvault agent; not stopping it",
                        self.pid,
                        self.paths.socket.display()
                    )));
                }
                let pid = rustix::process::Pid::from_raw(self.pid as i32)
                    .ok_or_else(|| Error::Other("the agent has no pid".into()))?;
                rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                    .map_err(|e| Error::Other(format!("cannot stop agent pid {}: {e}", self.pid)))
            }
        }
    }
}
