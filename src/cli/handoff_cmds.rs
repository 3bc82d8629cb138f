//! exec, run, inject, export, import: credentials handed to other programs through the
//! environment, in-memory files and stdout, never through files on disk. What is handed over
//! (references resolved, formats mapped) is `sfvault::handoff`'s; here are the arguments, the
//! inputs read, the stdout check and the exec.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;

use sfvault::handoff::mapping::EnvStyle;
use sfvault::handoff::sf_home::{self, SfHome, SfOrg};
use sfvault::handoff::{Env, Lazy, Reference, Resolver, dotenv, mapping, template};
use sfvault::oauth::ValidToken;
use sfvault::secret::SecretString;
use sfvault::unlock::PASSPHRASE_ENV_VARS;
use sfvault::vault::name::{EntryName, check_field_name, quoted};
use sfvault::{Error, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use zeroize::Zeroizing;

use super::Context;
use super::args::{
    ExecArgs, ExportArgs, ExportFormat, ImportArgs, ImportFormat, InjectArgs, ReadArgs, RunArgs,
};
use super::exit::{self, Failure, Outcome};
use super::output::print;
use super::prompt;

/// Set in the environment of what `exec` runs: the entry (`ORG/APP`), for prompts; and, for the
/// shell `exec` opens, the mark that refuses a shell inside it.
pub const ENTRY_VAR: &str = "SFVAULT_ENTRY";

/// The user's shell for `exec` with no command: `$SHELL`, else /bin/sh.
fn user_shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| OsString::from("/bin/sh"))
}

pub fn exec(ctx: &Context, mut args: ExecArgs) -> Outcome {
    let name = EntryName::parse(&args.entry)?;
    for f in &args.with {
        check_field_name(f)?;
    }
    let shell = args.command.is_empty();
    if shell {
        if let Some(outer) = std::env::var_os(ENTRY_VAR).filter(|v| !v.is_empty()) {
            return Err(Error::Usage(format!(
                "this shell already holds the environment of {} ({ENTRY_VAR} is set): `exit` \
                 it first, or run one command with `sfvault exec {name} -- CMD`",
                outer.to_string_lossy()
            ))
            .into());
        }
        args.command = vec![user_shell()];
    }
    let mut session = ctx.session()?;
    if args.refresh {
        // A new token now; exec_env then hands it out as the cached one.
        super::oauth_cmds::valid_token(ctx, &mut session, &name, true)?;
    }
    let mut env = mapping::exec_env(&mut session, &name, &args.with, !args.no_token)?;
    set_var(&mut env.vars, ENTRY_VAR, &name.to_string());
    // What sf cannot take from its environment goes into a throwaway sf home: a target org
    // whose token is not a classic one, and a Dev Hub (a hub token would go to the target org's
    // instance).
    let jwt_target = env
        .token
        .as_ref()
        .filter(|t| !sf_home::is_classic_token(t.access_token.expose()));
    let hub = match &args.dev_hub {
        Some(hub) => {
            let hub = EntryName::parse(hub)?;
            let t = super::oauth_cmds::valid_token(ctx, &mut session, &hub, false)?;
            Some((hub, t))
        }
        None => None,
    };
    drop(session);
    let own_home = jwt_target.is_some() || hub.is_some();
    if shell {
        ctx.note(&format!(
            "sfvault: {} with the environment of {name} ({ENTRY_VAR}={name}{}); `exit` leaves it",
            args.command[0].to_string_lossy(),
            if own_home {
                ", HOME a throwaway sf home"
            } else {
                ""
            }
        ));
    }
    if !own_home {
        // The key file (env.key_file) stays open until the command has replaced this process.
        return exec_command(&args.command, &env.vars);
    }
    let sf_name = |entry: &EntryName, t: &ValidToken| {
        t.username
            .clone()
            .unwrap_or_else(|| format!("{}.{}@sfvault.invalid", entry.org(), entry.app()))
    };
    let mut orgs_owned = Vec::new();
    if let Some(t) = jwt_target {
        let user = sf_name(&name, t);
        set_var(&mut env.vars, "SF_TARGET_ORG", &user);
        orgs_owned.push((user, t, false));
    }
    if let Some((hub_name, t)) = &hub {
        let user = sf_name(hub_name, t);
        set_var(&mut env.vars, "SF_TARGET_DEV_HUB", &user);
        match orgs_owned.iter_mut().find(|(u, _, _)| *u == user) {
            // The target org is its own Dev Hub: one auth file, marked as a hub.
            Some(target) => target.2 = true,
            None => orgs_owned.push((user, t, true)),
        }
    }
    let orgs: Vec<SfOrg<'_>> = orgs_owned
        .iter()
        .map(|(user, t, is_dev_hub)| SfOrg {
            username: user,
            access_token: &t.access_token,
            instance_url: &t.instance_url,
            login_url: &t.instance_url,
            org_id: t.org_id.as_deref(),
            is_dev_hub: *is_dev_hub,
        })
        .collect();
    let home = SfHome::create(&ctx.runtime_dir(), &orgs)?;
    run_command_with_home(&args.command, &env.vars, home)
}

/// Set `var` in `env`, replacing a value already there.
fn set_var(env: &mut Env, var: &str, value: &str) {
    env.retain(|(k, _)| k != var);
    env.push((var.to_owned(), SecretString::new(value.to_owned())));
}

/// Run `command` as a child with `HOME` = the throwaway sf home (and the user's own XDG
/// directories kept, so sf's plugins and settings are found), wait for it while passing on
/// SIGINT, SIGTERM, SIGHUP and SIGQUIT, then remove the home. The exit code is the command's
/// (128 + N when a signal N ended it).
fn run_command_with_home(command: &[OsString], env: &Env, home: SfHome) -> Outcome {
    let (mut cmd, program) = command_with(command, env)?;
    if let Some(real) = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()) {
        for (var, sub) in [
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_DATA_HOME", ".local/share"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_STATE_HOME", ".local/state"),
        ] {
            if std::env::var_os(var).is_none() {
                cmd.env(var, real.join(sub));
            }
        }
    }
    cmd.env("HOME", home.path())
        .env("SF_USE_GENERIC_UNIX_KEYCHAIN", "true");
    let outcome = wait_passing_signals(cmd, &program, |_| Vec::new());
    drop(home);
    outcome
}

/// Start `cmd` as a child, `attach` threads to it (output pumps), wait for it while passing
/// on SIGINT, SIGTERM, SIGHUP and SIGQUIT, then for the threads. The exit code is the
/// command's (128 + N when a signal N ended it).
fn wait_passing_signals(
    mut cmd: std::process::Command,
    program: &OsString,
    attach: impl FnOnce(&mut std::process::Child) -> Vec<std::thread::JoinHandle<()>>,
) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let signals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];
    let mut caught = Signals::new(signals)
        .map_err(|e| Error::failed_with("cannot catch signals to pass them on", e))?;
    sfvault::secret::restore_core_limit();
    let mut child = cmd.spawn().map_err(|err| spawn_failure(program, &err))?;
    let threads = attach(&mut child);
    let handle = caught.handle();
    let pid = rustix::process::Pid::from_raw(child.id() as i32);
    let forwarder = std::thread::spawn(move || {
        for sig in caught.forever() {
            if let (Some(pid), Some(sig)) = (pid, rustix::process::Signal::from_named_raw(sig)) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    for t in threads {
        let _ = t.join();
    }
    let status = status.map_err(|e| Error::failed_with("cannot wait for the command", e))?;
    match status.code().or_else(|| status.signal().map(|s| 128 + s)) {
        Some(0) => Ok(()),
        Some(code) => Err(Failure::Reported(
            u8::try_from(code).unwrap_or(exit::FAILED),
        )),
        None => Err(Failure::Reported(exit::FAILED)),
    }
}

/// Replace this process with `command`, its environment extended by `env` (and stripped of
/// sfvault's passphrase variables). Returns only if the command could not be started.
fn exec_command(command: &[OsString], env: &Env) -> Outcome {
    let (mut cmd, program) = command_with(command, env)?;
    sfvault::secret::restore_core_limit();
    let err = cmd.exec();
    Err(spawn_failure(&program, &err))
}

/// `command` (program and arguments) with its environment extended by `env` and stripped of
/// sfvault's passphrase variables; and the program, for messages.
fn command_with(command: &[OsString], env: &Env) -> Result<(std::process::Command, OsString)> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| Error::Usage("no command given after --".into()))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for var in PASSPHRASE_ENV_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v.expose());
    }
    Ok((cmd, program.clone()))
}

/// A command that could not be started, as shells report it: 127 not found, 126 otherwise.
fn spawn_failure(program: &OsString, err: &std::io::Error) -> Failure {
    let shown = program.to_string_lossy();
    match err.kind() {
        std::io::ErrorKind::NotFound => Failure::Spawn {
            code: exit::COMMAND_NOT_FOUND,
            message: format!("{}: command not found", quoted(&shown)),
        },
        _ => Failure::Spawn {
            code: exit::NOT_EXECUTABLE,
            message: format!("cannot run {}: {err}", quoted(&shown)),
        },
    }
}

pub fn run(ctx: &Context, args: RunArgs) -> Outcome {
    let mut resolver = Resolver::new(Lazy::new(|| ctx.session()));
    let mut env = resolver.resolve_env(std::env::vars_os())?;
    if let Some(path) = &args.env_file {
        let text = read_bounded_file(path, dotenv::MAX_ENV_FILE_LEN)?;
        env.extend(resolver.resolve_env_file(&path.display().to_string(), &text)?);
    }
    let secrets = args
        .mask
        .then(|| super::mask::Secrets::new(resolver.secret_values()))
        .filter(|s| !s.is_empty());
    resolver.finish();
    match secrets {
        Some(secrets) => run_masked(&args.command, &env, secrets),
        None => exec_command(&args.command, &env),
    }
}

/// Run `command` with its stdout and stderr through pipes, every secret value in them
/// concealed on the way to sfvault's own stdout and stderr.
fn run_masked(command: &[OsString], env: &Env, secrets: super::mask::Secrets) -> Outcome {
    use std::process::Stdio;
    let (mut cmd, program) = command_with(command, env)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let secrets = std::sync::Arc::new(secrets);
    wait_passing_signals(cmd, &program, |child| {
        let out = child.stdout.take().map(|from| {
            let secrets = std::sync::Arc::clone(&secrets);
            std::thread::spawn(move || secrets.pump(from, std::io::stdout()))
        });
        let err = child.stderr.take().map(|from| {
            let secrets = std::sync::Arc::clone(&secrets);
            std::thread::spawn(move || secrets.pump(from, std::io::stderr()))
        });
        out.into_iter().chain(err).collect()
    })
}

pub fn read(ctx: &Context, args: ReadArgs) -> Result<()> {
    let reference = Reference::parse(&args.reference)?;
    // --clip: find the tool before asking for the passphrase.
    let clip = args.clip.clip.then(super::clipboard::find).transpose()?;
    let mut resolver = Resolver::new(ctx.session()?);
    let value = resolver.resolve(&reference)?;
    resolver.finish();
    if let Some(tool) = clip {
        let what = reference.to_string();
        return super::clipboard::copy(ctx, tool, &what, &value, args.clip.clip_seconds);
    }
    if ctx.json {
        return super::output::print_json(serde_json::json!({
            "reference": reference.to_string(),
            "entry": reference.entry.to_string(),
            "field": reference.field,
            "value": value.expose(),
        }));
    }
    let mut text = Zeroizing::new(String::with_capacity(value.len() + 1));
    text.push_str(value.expose());
    if !args.no_newline {
        text.push('\n');
    }
    print(&text)
}

fn read_bounded_file(path: &std::path::Path, max: usize) -> Result<Zeroizing<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if buf.len() > max {
        return Err(Error::Usage(format!(
            "{} is larger than {} KiB",
            path.display(),
            max / 1024
        )));
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| Error::Usage(format!("{} is not UTF-8 text", path.display())))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Refuse to print plaintext secrets into a regular file unless forced (pipes, terminals and
/// /dev/null are fine).
fn check_stdout_safe(force: bool) -> Result<()> {
    let stat = rustix::fs::fstat(std::io::stdout())
        .map_err(|e| Error::failed_with("cannot inspect stdout", e))?;
    if !force
        && rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
    {
        return Err(Error::Unsafe(
            "stdout is a regular file: sfvault does not write plaintext secrets to disk; pipe the \
             output to the program that needs it, or pass --force-plaintext if you must"
                .into(),
        ));
    }
    Ok(())
}

pub fn inject(ctx: &Context, args: InjectArgs) -> Result<()> {
    check_stdout_safe(args.force_plaintext)?;
    let text = match &args.input {
        Some(path) => read_bounded_file(path, template::MAX_TEMPLATE_LEN)?,
        None if prompt::stdin_is_terminal() => {
            ctx.note(
                "Reading the template from the terminal: type or paste it, then press Ctrl-D on \
                 an empty line (or give a file with -i TEMPLATE).",
            );
            Zeroizing::new(prompt::read_stdin_limited(
                "the template",
                template::MAX_TEMPLATE_LEN,
            )?)
        }
        None => Zeroizing::new(prompt::read_stdin_limited(
            "the template",
            template::MAX_TEMPLATE_LEN,
        )?),
    };
    let mut resolver = Resolver::new(Lazy::new(|| ctx.session()));
    let out = resolver.render(&text)?;
    resolver.finish();
    print(&out)
}

pub fn export(ctx: &Context, args: ExportArgs) -> Result<()> {
    let format = match (args.format, ctx.json) {
        (Some(format), false) => format,
        (None | Some(ExportFormat::Json), true) => ExportFormat::Json,
        (Some(_), true) => {
            return Err(Error::Usage(
                "--json means --format json: give one format".into(),
            ));
        }
        (None, false) => {
            return Err(Error::Usage(
                "which format? --format env, dotenv, json or sfdx-url (--json is json)".into(),
            ));
        }
    };
    check_stdout_safe(args.force_plaintext)?;
    let name = EntryName::parse(&args.entry)?;
    let mut session = ctx.session()?;
    let token = !args.no_token;
    let text = match format {
        ExportFormat::SfdxUrl => mapping::export_sfdx_url(&mut session, &name)?,
        ExportFormat::Env => mapping::export_env(&mut session, &name, EnvStyle::Shell, token)?,
        ExportFormat::Dotenv => mapping::export_env(&mut session, &name, EnvStyle::Dotenv, token)?,
        ExportFormat::Json => mapping::export_json(&mut session, &name, token)?,
    };
    print(&text)
}

/// The regular file stdin was redirected from (`< .env`), if it was one.
fn stdin_file() -> Option<std::path::PathBuf> {
    let path = std::fs::read_link("/proc/self/fd/0").ok()?;
    std::fs::metadata(&path).ok()?.is_file().then_some(path)
}

pub fn import(ctx: &Context, args: ImportArgs) -> Result<()> {
    if let Some(names) = &args.from_sf {
        return super::sf_import::import_from_sf(ctx, names, args.logout);
    }
    let (Some(entry), Some(format)) = (&args.entry, args.format) else {
        return Err(Error::Usage(
            "import needs ORG/APP and --format (or --from-sf)".into(),
        ));
    };
    let name = EntryName::parse(entry)?;
    let read = || prompt::read_stdin_limited("the import", 1024 * 1024);
    let input = Zeroizing::new(if prompt::stdin_is_terminal() {
        let what = match format {
            ImportFormat::SfdxUrl => "the SFDX auth URL",
            ImportFormat::Json => "the JSON",
            ImportFormat::Dotenv => "the KEY=VALUE lines",
        };
        // What is pasted holds secrets: echo off while it is read.
        prompt::read_terminal_quietly(
            || {
                ctx.note(&format!(
                    "Reading {what} for {name} from the terminal (not shown): paste, then press \
                     Ctrl-D on an empty line (or redirect a file: < FILE)."
                ))
            },
            read,
        )?
    } else {
        read()?
    });
    let imported = match format {
        ImportFormat::SfdxUrl => mapping::import_sfdx_url(&input)?,
        ImportFormat::Json => mapping::import_json(&input)?,
        ImportFormat::Dotenv => mapping::import_dotenv(&input)?,
    };
    let count = imported.fields.len();
    let mut session = ctx.session()?;
    let exists = session.entry(&name, false).is_ok();
    let field_names: Vec<String> = imported.fields.iter().map(|f| f.name.clone()).collect();
    session.apply(mapping::import_change(&name, exists, imported.fields))?;
    if ctx.json {
        return super::output::print_json(serde_json::json!({
            "entry": name.to_string(),
            "created": !exists,
            "fields": field_names,
            "not_imported": imported.ignored,
        }));
    }
    ctx.note(&format!("Imported {count} fields into {name}."));
    let source = stdin_file();
    let source_name = source
        .as_ref()
        .map_or("the source".to_owned(), |p| p.display().to_string());
    if !imported.ignored.is_empty() {
        // Never advise deleting what was not fully imported.
        ctx.note(&format!(
            "Not imported (not sfvault fields): {}. Keep {source_name} until they are stored \
             elsewhere.",
            imported.ignored.join(", ")
        ));
        return Ok(());
    }
    match source
        .as_deref()
        .map(|p| (p, super::output::shred_advice(p)))
    {
        Some((path, Some(advice))) => ctx.note(&format!(
            "{} is a plaintext copy of what the vault now holds; remove it: {advice}",
            path.display()
        )),
        Some((_, None)) => {}
        None => ctx.note("If these credentials came from a file, it can go now: shred -u FILE"),
    }
    Ok(())
}
