//! The command-line front: turns parsed arguments into library calls and prints results.
//! The only place that knows about terminals, prompts and output formats.

mod access_cmds;
mod admin;
mod agent_cmds;
pub mod args;
mod clipboard;
pub mod complete;
mod entries;
pub mod exit;
pub mod fast_path;
mod git_cmds;
mod handoff_cmds;
mod identity;
mod lifecycle_cmds;
mod mask;
mod oauth_cmds;
pub mod output;
mod prompt;
mod removed_cmds;
mod rotate_cmds;
mod session;
mod sf_import;
mod slice_cmds;
mod team_cmds;
mod vault_cmds;

use std::path::PathBuf;
use std::time::Duration;

use sfvault::agent::AgentPaths;
use sfvault::agent::client::AgentClient;
use sfvault::vault::Store;
use sfvault::vault::store::{DEFAULT_LOCK_TIMEOUT, OpenVault};
use sfvault::{Error, Result};

use args::{Cli, Command, GlobalArgs};
use exit::{Failure, Outcome};
use session::Session;

/// What every command needs: the store, the output mode, and how to get a passphrase.
pub struct Context {
    /// The vault file and its lock.
    pub store: Store,
    /// `--json`
    pub json: bool,
    /// `--quiet`
    pub quiet: bool,
    /// `--passphrase-fd`
    pub passphrase_fd: Option<u32>,
    /// `--identity` / `SFVAULT_IDENTITY_FILE`: unlock with this private key instead.
    pub identity: Option<PathBuf>,
    /// `--no-agent`
    pub no_agent: bool,
}

impl Context {
    fn new(global: &GlobalArgs) -> Result<Context> {
        let path = match &global.vault {
            Some(p) => p.clone(),
            None => default_vault_path()?,
        };
        let mut store = Store::new(path, lock_timeout()?);
        if let Some(dir) = rollback_marks_dir() {
            store = store.with_rollback_marks(dir);
        }
        Ok(Context {
            store,
            json: global.json,
            quiet: global.quiet,
            passphrase_fd: global.passphrase_fd,
            identity: global
                .identity
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            no_agent: global.no_agent,
        })
    }

    /// The agent's files for this vault (the vault must exist).
    pub fn agent_paths(&self) -> Result<AgentPaths> {
        AgentPaths::for_vault(self.store.path(), &self.runtime_dir())
    }

    /// sfvault's private runtime directory: `$XDG_RUNTIME_DIR/sfvault` (memory on most
    /// systems), else a `run` directory under the data dir. Agent sockets and throwaway sf homes.
    pub fn runtime_dir(&self) -> PathBuf {
        let fallback = directories::ProjectDirs::from("", "", "sfvault")
            .map(|d| d.data_dir().join("run"))
            .unwrap_or_else(|| {
                self.store
                    .path()
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("run")
            });
        let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        sfvault::agent::runtime_dir(xdg.as_deref(), &fallback)
    }

    /// The live agent of this vault, if any (and unless `--no-agent`).
    pub fn agent(&self) -> Option<AgentClient> {
        if self.no_agent || !self.store.exists() {
            return None;
        }
        AgentClient::connect(&self.agent_paths().ok()?)
    }

    /// The vault through its agent, or opened here (asking for the passphrase).
    pub fn session(&self) -> Result<Session<'_>> {
        Session::new(self)
    }

    /// Open the vault, asking for the passphrase only after the file passed its checks (up to
    /// three tries on a terminal, one from a script source).
    pub fn open(&self) -> Result<OpenVault> {
        prompt::open_vault(&self.store, self.passphrase_fd, self.identity.as_deref())
    }

    /// How a command that changes something reports it: with `--json`, `data` on stdout (one
    /// object, never a secret); else `message` on stderr, unless `--quiet`.
    pub fn done(&self, message: &str, data: serde_json::Value) -> Result<()> {
        if self.json {
            output::print_json(data)
        } else {
            self.note(message);
            Ok(())
        }
    }

    /// `--vault PATH ` (shell-quoted, with a trailing space) when the vault is not the default
    /// one, else nothing: for commands a message tells the user to run next.
    pub fn vault_flag(&self) -> String {
        let path = self.store.path();
        if default_vault_path().is_ok_and(|d| d == path) {
            String::new()
        } else {
            format!(
                "--vault {} ",
                sfvault::quote::shell_word(&path.to_string_lossy())
            )
        }
    }

    /// A progress or confirmation message on stderr, unless `--quiet`.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            output::stderr_line(message);
        }
    }
}

fn default_vault_path() -> Result<PathBuf> {
    directories::ProjectDirs::from("", "", "sfvault")
        .map(|dirs| dirs.data_dir().join("vault.sfv"))
        .ok_or_else(|| {
            Error::Usage(
                "cannot find a home directory; pass --vault PATH or set SFVAULT_PATH".into(),
            )
        })
}

/// Where this machine's rollback marks live: `$XDG_STATE_HOME/sfvault/seen` (by default
/// `~/.local/state/sfvault/seen`), outside the vault's directory so that putting back an old
/// copy of that directory does not put back its marks too. None without a home directory.
fn rollback_marks_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "sfvault")
        .and_then(|dirs| dirs.state_dir().map(|d| d.join("seen")))
}

fn lock_timeout() -> Result<Duration> {
    match std::env::var("SFVAULT_LOCK_TIMEOUT") {
        Err(_) => Ok(DEFAULT_LOCK_TIMEOUT),
        Ok(text) => text
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "SFVAULT_LOCK_TIMEOUT={text} is not a number of seconds (0 to 86400)"
                ))
            }),
    }
}

/// Run one command.
pub fn run(cli: Cli) -> Outcome {
    let ctx = Context::new(&cli.global)?;
    if sfvault::secret::harden_process().is_err() {
        ctx.note("sfvault: warning: could not disable core dumps for this process");
    }
    let result = match cli.command {
        // The commands whose failures are not only library errors.
        Command::Exec(a) => handoff_cmds::exec(&ctx, a),
        Command::Run(a) => handoff_cmds::run(&ctx, a),
        Command::Audit(a) => lifecycle_cmds::audit(&ctx, a),
        Command::Rotate(a) => lifecycle_cmds::rotate(&ctx, a),
        Command::Status => agent_cmds::status(&ctx),
        Command::Merge(a) => git_cmds::merge(&ctx, a),
        Command::Slice(c) => slice_cmds::slice(&ctx, c),
        other => dispatch(&ctx, other).map_err(Failure::from),
    };
    if sfvault::secret::memory_lock_failed() {
        ctx.note(
            "sfvault: warning: key memory could not be locked (RLIMIT_MEMLOCK); it may reach swap",
        );
    }
    result
}

fn dispatch(ctx: &Context, command: Command) -> Result<()> {
    match command {
        Command::Init(a) => vault_cmds::init(ctx, a),
        Command::Passwd(a) => vault_cmds::passwd(ctx, a),
        Command::Recipient(c) => team_cmds::recipient(ctx, c),
        Command::GitSetup => git_cmds::setup(ctx),
        Command::Completions(a) => vault_cmds::completions(a),
        Command::Unlock(a) => agent_cmds::unlock(ctx, a),
        Command::Lock => agent_cmds::lock(ctx),
        Command::Agent(a) => agent_cmds::serve(ctx, a),
        Command::Inject(a) => handoff_cmds::inject(ctx, a),
        Command::Read(a) => handoff_cmds::read(ctx, a),
        Command::ClipClear(a) => clipboard::clear_later(&a),
        Command::Export(a) => handoff_cmds::export(ctx, a),
        Command::Import(a) => handoff_cmds::import(ctx, a),
        Command::History(a) => lifecycle_cmds::history(ctx, a),
        Command::Backup(a) => lifecycle_cmds::backup(ctx, a),
        Command::Restore(a) => lifecycle_cmds::restore(ctx, a),
        Command::Config(a) if a.key.as_deref() == Some("removed-days") => {
            removed_cmds::config(ctx, a)
        }
        Command::Config(a) => lifecycle_cmds::config(ctx, a),
        Command::Login(a) => oauth_cmds::login(ctx, a),
        Command::Token(a) => oauth_cmds::token(ctx, a),
        Command::Revoke(a) => oauth_cmds::revoke(ctx, a),
        Command::Keygen(a) => oauth_cmds::keygen(ctx, a),
        Command::Add(a) => entries::add(ctx, a),
        Command::Set(a) => entries::set(ctx, a),
        Command::Get(a) => entries::get(ctx, a),
        Command::Show(a) => entries::show(ctx, a),
        Command::List(a) => entries::list(ctx, a),
        Command::Rm(a) => entries::rm(ctx, a),
        Command::Mv(a) => entries::mv(ctx, a),
        Command::Undelete(a) => removed_cmds::undelete(ctx, a),
        Command::Exec(_)
        | Command::Run(_)
        | Command::Audit(_)
        | Command::Rotate(_)
        | Command::Merge(_)
        | Command::Slice(_)
        | Command::Status => {
            unreachable!("handled by run")
        }
    }
}
