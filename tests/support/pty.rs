//! A pseudo-terminal for tests that type at prompts: the binary runs in a new session whose
//! controlling terminal is the pty's slave (so `/dev/tty` is the pty), and the test reads what
//! it writes there and types through the master, with timeouts. No tmux needed.
//!
//! The pty's file descriptors are opened close-on-exec, so no other test's child inherits them.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for a prompt or an exit before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A child process on a pseudo-terminal.
pub struct PtyChild {
    child: Child,
    master: File,
    /// Kept open by the test: the terminal's settings can be read after the child is gone.
    slave: File,
    /// Everything the child wrote to the terminal so far.
    seen: Vec<u8>,
    /// Where the next [`PtyChild::expect`] starts looking in `seen`.
    cursor: usize,
}

fn check(ret: libc::c_int, what: &str) {
    assert!(
        ret == 0,
        "{what} failed: {}",
        std::io::Error::last_os_error()
    );
}

/// A new pty: (master, slave), both close-on-exec.
fn open_pty() -> (File, File) {
    // SAFETY: plain libc calls on a descriptor owned here; ptsname_r writes into `name`, whose
    // length is passed.
    let (master, name) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = File::from(OwnedFd::from_raw_fd(fd));
        check(libc::grantpt(fd), "grantpt");
        check(libc::unlockpt(fd), "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        check(
            libc::ptsname_r(fd, name.as_mut_ptr(), name.len()),
            "ptsname_r",
        );
        let name = CStr::from_ptr(name.as_ptr()).to_str().unwrap().to_owned();
        (master, name)
    };
    // std opens with O_CLOEXEC.
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .unwrap_or_else(|e| panic!("open {name}: {e}"));
    (master, slave)
}

impl PtyChild {
    /// Start `cmd` on a new pty. stdin is the terminal too unless `stdin` is given (e.g. a
    /// pipe's `Stdio`); stdout and stderr stay as `cmd` has them (pipes are read by
    /// [`PtyChild::wait_output`]).
    pub fn spawn(mut cmd: Command, stdin: Option<Stdio>) -> PtyChild {
        let (master, slave) = open_pty();
        let slave_fd = slave.as_raw_fd();
        cmd.stdin(stdin.unwrap_or_else(|| Stdio::from(slave.try_clone().unwrap())));
        // SAFETY: between fork and exec only async-signal-safe calls: setsid, ioctl. The slave
        // descriptor is still open in the child (close-on-exec closes it only at exec).
        unsafe {
            cmd.pre_exec(move || {
                // (Already a session leader if the command's own pre_exec called setsid.)
                let _ = libc::setsid();
                if libc::ioctl(slave_fd, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start sfvault on a pty");
        PtyChild {
            child,
            master,
            slave,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// Read what the child wrote to the terminal for up to `wait` (less if something came).
    fn pump(&mut self, wait: Duration) {
        let mut fds = [libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: poll on one pollfd owned here.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if ready > 0 && fds[0].revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 4096];
            // Linux gives EIO once no process holds the slave; we hold it, so only data.
            if let Ok(n) = self.master.read(&mut buf) {
                self.seen.extend_from_slice(&buf[..n]);
            }
        }
    }

    /// Wait until the terminal shows `text` (after what earlier calls matched); returns what
    /// came since then. Fails the test after [`TIMEOUT`], with everything seen.
    pub fn expect(&mut self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let hay = &self.seen[self.cursor..];
            if let Some(at) = hay.windows(text.len()).position(|w| w == text.as_bytes()) {
                let got = String::from_utf8_lossy(&hay[..at + text.len()]).into_owned();
                self.cursor += at + text.len();
                return got;
            }
            if started.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                panic!(
                    "the terminal never showed {text:?}; it showed:\n{}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Drain what is left, then one last look.
                self.pump(Duration::from_millis(100));
                let hay = &self.seen[self.cursor..];
                if hay.windows(text.len()).any(|w| w == text.as_bytes()) {
                    continue;
                }
                panic!(
                    "sfvault exited ({status}) before the terminal showed {text:?}; it showed:\n{}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            self.pump(Duration::from_millis(50));
        }
    }

    /// Type `bytes` (`b"\r"` is Enter, `b"\x03"` is Ctrl-C).
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Send SIGTERM to the child.
    pub fn terminate(&mut self) {
        // SAFETY: kill with the pid of our own child, which has not been reaped yet.
        let ret = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        check(ret, "kill");
    }

    /// Type `line` and Enter.
    pub fn line(&mut self, line: &str) {
        self.send(format!("{line}\r").as_bytes());
    }

    /// Whether the terminal echoes what is typed (its ECHO flag, as the child left it).
    pub fn echo_on(&self) -> bool {
        // SAFETY: tcgetattr fills a termios owned here.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        check(
            unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut t) },
            "tcgetattr",
        );
        t.c_lflag & libc::ECHO != 0
    }

    /// Wait (at most [`TIMEOUT`]) until the terminal's echo is `on`.
    pub fn wait_echo(&mut self, on: bool) {
        let started = Instant::now();
        while self.echo_on() != on {
            assert!(
                started.elapsed() < TIMEOUT,
                "the terminal's echo never turned {}",
                if on { "on" } else { "off" }
            );
            self.pump(Duration::from_millis(20));
        }
    }

    /// Everything the terminal showed so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Wait for the child to end (reading the terminal meanwhile): its status, stdout and
    /// stderr (empty unless piped; small outputs only, read once it ended).
    pub fn wait_output(&mut self) -> (ExitStatus, String, String) {
        let status = self.wait();
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut p) = self.child.stdout.take() {
            let _ = p.read_to_string(&mut out);
        }
        if let Some(mut p) = self.child.stderr.take() {
            let _ = p.read_to_string(&mut err);
        }
        (status, out, err)
    }

    /// Wait for the child to end (reading the terminal meanwhile); fails the test after
    /// [`TIMEOUT`].
    pub fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.pump(Duration::from_millis(50));
                return status;
            }
            if started.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                panic!(
                    "sfvault did not exit; the terminal showed:\n{}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            self.pump(Duration::from_millis(50));
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
