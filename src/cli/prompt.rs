//! Everything that talks to the terminal or reads stdin: passphrases, secret values,
//! confirmations. Nothing here hangs without a terminal: it fails at once instead.
//!
//! Hidden prompts turn echo off on the terminal and put it back however the prompt ends: on
//! return, on an error, and when a signal (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) ends the process
//! meanwhile (see [`hidden_line`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use sfvault::secret::SecretString;
use sfvault::unlock::{self, Source};
use sfvault::vault::Store;
use sfvault::vault::format::{Credential, KeySlots, OpenError};
use sfvault::vault::store::OpenVault;
use sfvault::{Error, ErrorKind, Result};
use zeroize::Zeroizing;

/// Largest value accepted from stdin or a file (a 4096-bit PEM key is about 3 KiB).
pub const MAX_VALUE_LEN: usize = 1024 * 1024;

/// Whether a controlling terminal can be opened for prompts.
pub fn terminal_available() -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Whether stdin is a terminal (else it carries a value from a pipe or file).
pub fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin())
}

/// The first script source that is configured, in the contract's order:
/// `--passphrase-fd`, `SFVAULT_PASSPHRASE_FILE`, `SFVAULT_PASSPHRASE_CMD`, `SFVAULT_PASSPHRASE`.
pub fn script_source(fd: Option<u32>) -> Option<Source> {
    if let Some(fd) = fd {
        return Some(Source::Fd(fd));
    }
    if let Some(path) = std::env::var_os("SFVAULT_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        return Some(Source::File(path.into()));
    }
    if let Some(cmd) = std::env::var("SFVAULT_PASSPHRASE_CMD")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Some(Source::Command(cmd));
    }
    std::env::var("SFVAULT_PASSPHRASE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| Source::Value(SecretString::new(v)))
}

/// How many passphrases a terminal user may type before the command gives up (as sudo, gpg and
/// op allow). A script source gets one: it would only give the same answer again.
pub const PASSPHRASE_TRIES: u32 = 3;

/// How many empty answers in a row a hidden prompt takes before it gives up.
const EMPTY_ANSWERS: u32 = 3;

/// The passphrase of an existing vault: a script source, else a hidden prompt, else exit 5.
/// One passphrase, not checked here (see [`open_vault`] for the tries on a terminal).
pub fn existing_passphrase(fd: Option<u32>, vault: &Path) -> Result<SecretString> {
    if let Some(source) = script_source(fd) {
        return source.read();
    }
    if !terminal_available() {
        return Err(no_source_error());
    }
    ask_passphrase(vault)
}

/// `unlock` with the passphrase of the file at `path` (a backup for `restore`): one try from a
/// script source, up to [`PASSPHRASE_TRIES`] on a terminal, as [`open_vault`] gives the vault.
pub fn with_passphrase<T>(
    fd: Option<u32>,
    path: &Path,
    mut unlock: impl FnMut(&SecretString) -> Result<T>,
) -> Result<T> {
    if script_source(fd).is_some() {
        return unlock(&existing_passphrase(fd, path)?);
    }
    with_tries(|| unlock(&existing_passphrase(fd, path)?))
}

/// Open the vault of `store`: with an identity (`--identity`, `SFVAULT_IDENTITY_FILE`), by
/// that key, first; else with a script source, one try (a wrong passphrase is exit 4); else on
/// a terminal, up to [`PASSPHRASE_TRIES`] passphrases, each through the KDF. The file is read
/// and its header checked before the identity is used or any prompt shows.
pub fn open_vault(store: &Store, fd: Option<u32>, identity: Option<&Path>) -> Result<OpenVault> {
    if let Some(path) = identity {
        return store.open_with(|_| Ok(Credential::Identity(super::identity::load(path)?)));
    }
    if let Some(source) = script_source(fd) {
        return store.open_with(|slots| {
            needs_passphrase_slot(slots, store.path())?;
            source.read().map(Credential::Passphrase)
        });
    }
    with_tries(|| {
        store.open_with(|slots| {
            needs_passphrase_slot(slots, store.path())?;
            if !terminal_available() {
                return Err(no_source_error());
            }
            ask_passphrase(store.path()).map(Credential::Passphrase)
        })
    })
}

/// A vault opened only by identities is exit 5 before any passphrase is asked for.
fn needs_passphrase_slot(slots: &KeySlots, path: &Path) -> Result<()> {
    if slots.passphrase.is_some() {
        return Ok(());
    }
    Err(OpenError::NoPassphrase.for_file(path, None))
}

/// Run `attempt` again while it fails with a wrong passphrase, up to [`PASSPHRASE_TRIES`]
/// times in all, saying how many tries are left.
fn with_tries<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt() {
            Err(e) if e.kind() == ErrorKind::WrongPassphrase && tries < PASSPHRASE_TRIES => {
                let left = PASSPHRASE_TRIES - tries;
                say(&format!(
                    "Wrong passphrase; try again ({left} {} left).",
                    if left == 1 { "try" } else { "tries" }
                ));
            }
            other => return other,
        }
    }
}

/// The passphrase of `vault`, typed on the terminal: an empty answer is asked again (it is
/// not a try), end of input gives up.
fn ask_passphrase(vault: &Path) -> Result<SecretString> {
    let prompt = format!("Passphrase for {}: ", vault.display());
    for _ in 0..EMPTY_ANSWERS {
        match hidden_line(&prompt)? {
            None => {
                return Err(Error::locked(
                    "no passphrase was typed (end of input); nothing was unlocked",
                ));
            }
            Some(pass) if pass.is_empty() => {
                say("Empty passphrase; type the vault's passphrase (Ctrl-C to stop).");
            }
            Some(pass) => return Ok(pass),
        }
    }
    Err(Error::locked(format!(
        "empty passphrase {EMPTY_ANSWERS} times; nothing was unlocked"
    )))
}

/// A new passphrase: from `source` if given (once), else typed twice on the terminal. With
/// neither, exit 5 naming `ways`, the places a new passphrase can come from instead.
pub fn new_passphrase(source: Option<Source>, ways: &str) -> Result<SecretString> {
    if let Some(source) = source {
        return source.read();
    }
    if !terminal_available() {
        return Err(Error::locked(format!(
            "there is no terminal to ask for the new passphrase; give it with {ways}"
        )));
    }
    loop {
        let Some(first) = hidden_line("New passphrase: ")? else {
            return Err(no_new_passphrase());
        };
        if first.is_empty() {
            say("The passphrase cannot be empty.");
            continue;
        }
        if first.len() < 12 {
            say(&format!(
                "Note: {} characters is short; a phrase of several words is stronger.",
                first.expose().chars().count()
            ));
        }
        let Some(second) = hidden_line("Repeat the new passphrase: ")? else {
            return Err(no_new_passphrase());
        };
        if first == second {
            return Ok(first);
        }
        say("The two passphrases differ; try again.");
    }
}

fn no_new_passphrase() -> Error {
    Error::locked("no new passphrase was typed (end of input); nothing was changed")
}

fn no_source_error() -> Error {
    Error::locked(
        "the vault is locked and there is no terminal to ask for the passphrase; give it with \
         --passphrase-fd N, SFVAULT_PASSPHRASE_FILE, SFVAULT_PASSPHRASE_CMD or SFVAULT_PASSPHRASE",
    )
}

/// Ask `prompt` on the terminal with echo off and read one line (without its newline); `None`
/// at end of input. Echo comes back before this returns, whatever happened, and a signal that
/// ends the process meanwhile puts the terminal back first ([`echo::EchoOff`]).
pub fn hidden_line(prompt: &str) -> Result<Option<SecretString>> {
    let tty = echo::tty().map_err(|e| Error::Locked {
        message: "cannot open the terminal".into(),
        source: Some(Box::new(e)),
    })?;
    let read_error = |e: std::io::Error| Error::Locked {
        message: "cannot read from the terminal".into(),
        source: Some(Box::new(e)),
    };
    let line = {
        // Echo off before the prompt shows: nothing typed after it is ever echoed.
        let _quiet = echo::EchoOff::new(tty).map_err(read_error)?;
        (&*tty)
            .write_all(prompt.as_bytes())
            .map_err(|e| Error::failed_with("cannot write to the terminal", e))?;
        read_line(tty).map_err(read_error)?
    };
    let Some(mut bytes) = line else {
        // Echo was off: the user's Ctrl-D left the cursor on the prompt line.
        let _ = (&*tty).write_all(b"\n");
        return Ok(None);
    };
    unlock::strip_newline(&mut bytes);
    SecretString::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Usage("the typed value is not valid UTF-8".into()))
}

/// Longest line a hidden prompt reads (a terminal's own line limit is 4 KiB).
const MAX_TYPED_LEN: usize = 16 * 1024;

/// One line from the terminal (canonical mode: the kernel edits the line), without its
/// newline; `None` at end of input (Ctrl-D). rpassword reads it (its own zeroizing buffer),
/// from the terminal as a plain reader: echo and the signals that must put echo back are
/// [`echo::EchoOff`]'s, since rpassword restores the terminal only on a normal return. The
/// reader bounds the line and tells end of input from an empty line.
fn read_line(tty: &File) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let input = BoundedTty {
        tty: tty.try_clone()?,
        read: 0,
        state: std::sync::Arc::default(),
    };
    let state = std::sync::Arc::clone(&input.state);
    let config = rpassword::ConfigBuilder::new()
        .input_reader(input)
        .password_feedback_hide()
        .build();
    let line = rpassword::read_password_with_config(config)?;
    let (too_long, at_end) = *state.lock().unwrap_or_else(|p| p.into_inner());
    if too_long {
        return Err(std::io::Error::other(format!(
            "the typed line is longer than {} KiB",
            MAX_TYPED_LEN / 1024
        )));
    }
    Ok((!(line.is_empty() && at_end)).then(|| Zeroizing::new(line.into_bytes())))
}

/// The terminal as rpassword's input: at most [`MAX_TYPED_LEN`] bytes, recording (too long,
/// end of input) for the caller.
struct BoundedTty {
    tty: File,
    read: usize,
    state: std::sync::Arc<std::sync::Mutex<(bool, bool)>>,
}

impl std::io::Read for BoundedTty {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read >= MAX_TYPED_LEN {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
            return Ok(0);
        }
        let room = buf.len().min(MAX_TYPED_LEN - self.read);
        let n = loop {
            match self.tty.read(&mut buf[..room]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        }
        self.read += n;
        Ok(n)
    }
}

/// A line of the dialogue on the terminal (after a prompt's answer): where the prompt is, even
/// when stderr goes to a log. Falls back to stderr.
fn say(line: &str) {
    match echo::tty() {
        Ok(mut tty) => {
            let _ = tty.write_all(format!("{line}\n").as_bytes());
        }
        Err(_) => super::output::stderr_line(line),
    }
}

/// A value for `field`: `-` reads stdin; no argument reads stdin when it is not a terminal, else
/// prompts (hidden for secrets). `arg` is only accepted for non-secret fields.
pub fn field_value(
    field: &str,
    arg: Option<String>,
    secret: bool,
    entry: &str,
) -> Result<SecretString> {
    let multi_line = matches!(field, "private_key" | "certificate");
    match arg.as_deref() {
        // A PEM on the terminal (with `-` or at the prompt) is pasted: read whole, up to
        // Ctrl-D, with a hint first (a one-line prompt would leave the rest of the key to the
        // shell), and with echo off when secret.
        Some("-") | None if multi_line && stdin_is_terminal() => pasted(field, entry, secret),
        // `-` with the terminal as stdin: a one-line value gets the prompt (hidden when
        // secret) rather than an echoed, silent read.
        Some("-") if stdin_is_terminal() => field_value(field, None, secret, entry),
        Some("-") => read_stdin(field),
        Some(_) if secret => Err(Error::Usage(format!(
            "{field} is secret and is never taken from the command line (it would stay in shell \
             history and be visible in `ps`); omit the value to be prompted, or pass `-` and pipe it on stdin"
        ))),
        Some(_) => Ok(SecretString::new(arg.unwrap_or_default())),
        None if !stdin_is_terminal() => read_stdin(field),
        None if secret => hidden_value(field, entry),
        None => visible(&format!("{field} for {entry}: ")),
    }
}

/// A multi-line value (a PEM) pasted on the terminal that is stdin, read up to Ctrl-D; echo is
/// off meanwhile when it is secret (back however the read ends, see [`echo::EchoOff`]).
fn pasted(field: &str, entry: &str, secret: bool) -> Result<SecretString> {
    let _quiet = secret
        .then(|| {
            echo::tty()
                .ok()
                .and_then(|tty| echo::EchoOff::new(tty).ok())
        })
        .flatten();
    say(&format!(
        "Reading {field} for {entry} from the terminal{}: paste it, then press Ctrl-D on an \
         empty line (or pipe it: `… | sfvault set {entry} {field} -`).",
        if secret { " (not shown)" } else { "" }
    ));
    read_stdin(field)
}

/// A secret value typed on the terminal: an empty answer is asked again, saying why (a
/// value is never empty); end of input gives up.
fn hidden_value(field: &str, entry: &str) -> Result<SecretString> {
    let prompt = format!("{field} for {entry} (hidden): ");
    for _ in 0..EMPTY_ANSWERS {
        match hidden_line(&prompt)? {
            None => break,
            Some(value) if value.is_empty() => say(&format!(
                "A value cannot be empty; type the {field} (Ctrl-C to stop)."
            )),
            Some(value) => return Ok(value),
        }
    }
    Err(Error::Usage(format!(
        "no value was typed for {field}; nothing was stored"
    )))
}

/// The consumer secret of a new entry (`add`), or `None` for an entry without one.
///
/// From stdin when it is not a terminal (an empty one is refused). Else typed, hidden:
/// `required_by` names the flow that cannot work without one, and an empty answer is asked
/// again, saying so; otherwise an empty answer asks for a second Enter to confirm the entry
/// has no secret (as `--no-secret`). Nothing typed is thrown away.
pub fn consumer_secret(entry: &str, required_by: Option<&str>) -> Result<Option<SecretString>> {
    const FIELD: &str = "consumer_secret";
    if !stdin_is_terminal() {
        let value = read_stdin(FIELD)?;
        if value.is_empty() {
            return Err(Error::Usage(
                "the consumer secret on stdin is empty; nothing was stored (for an entry \
                 without one, pass --no-secret)"
                    .into(),
            ));
        }
        return Ok(Some(value));
    }
    let prompt = format!("{FIELD} for {entry} (hidden): ");
    let mut empty = 0;
    loop {
        let Some(value) = hidden_line(&prompt)? else {
            return Err(Error::Usage(
                "no consumer secret was typed (end of input); nothing was stored (for an \
                 entry without one, pass --no-secret)"
                    .into(),
            ));
        };
        if !value.is_empty() {
            return Ok(Some(value));
        }
        empty += 1;
        match required_by {
            None if empty == 1 => say(&format!(
                "Empty. Press Enter again to add {entry} without a consumer secret (as \
                 --no-secret does), or type the secret."
            )),
            None => return Ok(None),
            Some(flow) if empty < EMPTY_ANSWERS => say(&format!(
                "The {flow} flow needs a consumer secret; type it (Ctrl-C to stop; \
                 --no-secret adds an entry without one)."
            )),
            Some(flow) => {
                return Err(Error::Usage(format!(
                    "no consumer secret was typed, and the {flow} flow needs one; nothing was \
                     stored (for an entry without one, pass --no-secret)"
                )));
            }
        }
    }
}

/// `read` (of stdin, which is the terminal) with the terminal's echo off meanwhile: what is
/// pasted there may hold secrets. `before` runs once echo is off (the hint to paste).
pub fn read_terminal_quietly<T>(
    before: impl FnOnce(),
    read: impl FnOnce() -> Result<T>,
) -> Result<T> {
    // Without a controlling terminal to turn echo off on, read as before.
    let _quiet = echo::tty()
        .ok()
        .and_then(|tty| echo::EchoOff::new(tty).ok());
    before();
    read()
}

/// Read all of stdin as UTF-8 text, at most `max` bytes.
pub fn read_stdin_limited(what: &str, max: usize) -> Result<String> {
    let buf = sfvault::secret::read_unbuffered(std::io::stdin(), max)
        .map_err(|e| Error::failed(format!("cannot read {what} from stdin: {e}")))?;
    if buf.len() > max {
        return Err(Error::Usage(format!(
            "{what} on stdin is larger than {} KiB",
            max / 1024
        )));
    }
    std::str::from_utf8(&buf)
        .map(str::to_owned)
        .map_err(|_| Error::Usage(format!("{what} on stdin is not valid UTF-8")))
}

/// Read a whole value from stdin, bounded, as UTF-8, with one trailing newline removed.
pub fn read_stdin(field: &str) -> Result<SecretString> {
    let mut buf = sfvault::secret::read_unbuffered(std::io::stdin(), MAX_VALUE_LEN)
        .map_err(|e| Error::failed(format!("cannot read {field} from stdin: {e}")))?;
    if buf.len() > MAX_VALUE_LEN {
        return Err(Error::Usage(format!(
            "the value of {field} on stdin is larger than {} KiB",
            MAX_VALUE_LEN / 1024
        )));
    }
    unlock::strip_newline(&mut buf);
    SecretString::from_utf8(buf)
        .map_err(|_| Error::Usage(format!("the value of {field} on stdin is not valid UTF-8")))
}

fn visible(prompt: &str) -> Result<SecretString> {
    let mut tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Error::Usage(format!(
                "no terminal to ask: {prompt}give the value as an argument"
            ))
        })?;
    tty.write_all(prompt.as_bytes())
        .map_err(|e| Error::failed_with("cannot write to the terminal", e))?;
    let mut line = String::new();
    BufReader::new(tty)
        .read_line(&mut line)
        .map_err(|e| Error::failed_with("cannot read from the terminal", e))?;
    let mut bytes = Zeroizing::new(line.into_bytes());
    unlock::strip_newline(&mut bytes);
    SecretString::from_utf8(bytes).map_err(|_| Error::Usage("the value is not valid UTF-8".into()))
}

/// Confirm something that deletes data: true at once with `--yes`; else ask `question` on the
/// terminal; with no terminal, refuse (exit 2) saying `what` needs `--yes`.
pub fn confirm_unless_yes(yes: bool, what: &str, question: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !terminal_available() {
        return Err(Error::Usage(format!(
            "{what}: no terminal to confirm it; pass --yes"
        )));
    }
    confirm(question)
}

/// Ask a yes/no question on the terminal; `false` unless the answer starts with y.
fn confirm(question: &str) -> Result<bool> {
    let answer = visible(&format!("{question} [y/N] "))?;
    Ok(answer.expose().trim().to_ascii_lowercase().starts_with('y'))
}

/// Echo off on the terminal for the time of a hidden prompt, and back on however it ends.
///
/// Dropping [`EchoOff`] puts the terminal settings back. A signal that ends the process while
/// it lives (SIGINT from Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) would skip that: during the prompt
/// those signals go to a handler that puts the saved settings back (`tcsetattr` is
/// async-signal-safe) and then lets the signal end the process with its default action, so the
/// exit status still says "killed by SIGINT" (130 in a shell). Signals the process ignores stay
/// ignored, and the previous dispositions come back when the prompt ends.
mod echo {
    use std::fs::{File, OpenOptions};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::termios::{self, LocalModes, OptionalActions, Termios};

    /// The controlling terminal, opened once and kept: the signal handler reaches it here.
    static TTY: OnceLock<File> = OnceLock::new();
    /// The terminal's settings before the first hidden prompt: what a signal puts back.
    static SAVED: OnceLock<Termios> = OnceLock::new();
    /// Whether echo is off (the handler restores only then).
    static ACTIVE: AtomicBool = AtomicBool::new(false);

    const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

    /// The controlling terminal (`/dev/tty`), read and write.
    pub fn tty() -> std::io::Result<&'static File> {
        if let Some(tty) = TTY.get() {
            return Ok(tty);
        }
        let file = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        Ok(TTY.get_or_init(|| file))
    }

    /// Echo is off while this lives.
    pub struct EchoOff {
        tty: &'static File,
        before: Termios,
        previous: Vec<(libc::c_int, libc::sigaction)>,
    }

    impl EchoOff {
        /// Turn echo off on `tty` (the typed newline is still echoed), with the signal
        /// handlers in place first.
        pub fn new(tty: &'static File) -> std::io::Result<EchoOff> {
            let before = termios::tcgetattr(tty)?;
            let _ = SAVED.set(before.clone());
            let mut quiet = before.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            quiet.local_modes.insert(LocalModes::ECHONL);
            let guard = EchoOff {
                tty,
                before,
                previous: catch_signals(),
            };
            ACTIVE.store(true, Ordering::SeqCst);
            termios::tcsetattr(tty, OptionalActions::Now, &quiet)?;
            Ok(guard)
        }
    }

    impl Drop for EchoOff {
        fn drop(&mut self) {
            let _ = termios::tcsetattr(self.tty, OptionalActions::Now, &self.before);
            ACTIVE.store(false, Ordering::SeqCst);
            for (signal, action) in &self.previous {
                // SAFETY: puts back a disposition sigaction itself returned for this signal.
                #[allow(unsafe_code)]
                unsafe {
                    libc::sigaction(*signal, action, std::ptr::null_mut());
                }
            }
        }
    }

    /// Runs in signal context: only async-signal-safe calls (an atomic load, `tcsetattr`,
    /// `getpid`, `kill`), no allocation, no lock.
    extern "C" fn restore_then_die(signal: libc::c_int) {
        if ACTIVE.load(Ordering::SeqCst)
            && let (Some(tty), Some(saved)) = (TTY.get(), SAVED.get())
        {
            let _ = termios::tcsetattr(tty, OptionalActions::Now, saved);
        }
        // SA_RESETHAND gave the signal its default action back on entry; it is blocked until
        // this handler returns, and then ends the process as it would have without us.
        if let Some(signal) = rustix::process::Signal::from_named_raw(signal) {
            let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
        }
    }

    /// Install [`restore_then_die`] for each of [`SIGNALS`] that is not ignored; returns the
    /// dispositions replaced, to put back.
    fn catch_signals() -> Vec<(libc::c_int, libc::sigaction)> {
        let mut previous = Vec::with_capacity(SIGNALS.len());
        for signal in SIGNALS {
            // SAFETY: sigaction only reads `action` and writes `old`, both plain C structs
            // owned here (all-zero is a valid value for both: no flags, an empty mask); the
            // handler installed is async-signal-safe (see restore_then_die).
            #[allow(unsafe_code)]
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                    || old.sa_sigaction == libc::SIG_IGN
                {
                    continue;
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = restore_then_die as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        previous
    }
}
