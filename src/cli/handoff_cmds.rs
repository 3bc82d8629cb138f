//! exec, run, inject, export, import: credentials handed to other programs through the
//! environment, in-memory files and stdout, never through files on disk.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;

use serde_json::{Map, Value, json};
use sfvault::handoff::keyfd::SecretFd;
use sfvault::handoff::template::{self, Piece};
use sfvault::handoff::{Reference, dotenv, sfdx};
use sfvault::oauth::Credentials;
use sfvault::secret::SecretString;
use sfvault::timefmt::rfc3339;
use sfvault::unlock::PASSPHRASE_ENV_VARS;
use sfvault::vault::fields;
use sfvault::vault::model::Entry;
use sfvault::vault::name::{EntryName, check_field_name, quoted};
use sfvault::vault::{Change, NewField};
use sfvault::{Error, Result};
use zeroize::Zeroizing;

use super::Context;
use super::args::{
    ExecArgs, ExportArgs, ExportFormat, ImportArgs, ImportFormat, InjectArgs, RunArgs,
};
use super::exit::{self, Failure, Outcome};
use super::oauth_cmds::{ValidToken, valid_token};
use super::output::print;
use super::prompt;
use super::session::Session;

/// Environment for the child: names and secret values.
type Env = Vec<(String, SecretString)>;

fn value_of(entry: &Entry, field: &str) -> Option<SecretString> {
    entry.fields.get(field).map(|f| f.value.duplicate())
}

fn token_env(env: &mut Env, t: ValidToken) {
    let instance = SecretString::new(t.instance_url);
    env.push(("SF_ACCESS_TOKEN".into(), t.access_token.duplicate()));
    env.push(("SF_INSTANCE_URL".into(), instance.duplicate()));
    env.push(("SF_TARGET_ORG".into(), t.access_token));
    env.push(("SF_ORG_INSTANCE_URL".into(), instance));
}

pub fn exec(ctx: &Context, args: ExecArgs) -> Outcome {
    let name = EntryName::parse(&args.entry)?;
    for f in &args.with {
        check_field_name(f)?;
    }
    let mut session = ctx.session()?;
    let entry = session.entry(&name, true)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let mut env: Env = Vec::new();
    for (var, field) in [
        ("SF_CONSUMER_KEY", "consumer_key"),
        ("SF_USERNAME", "username"),
    ] {
        if let Some(v) = value_of(&entry, field) {
            env.push((var.into(), v));
        }
    }
    env.push(("SF_LOGIN_URL".into(), SecretString::new(creds.login_url())));
    if !args.no_token {
        token_env(&mut env, valid_token(ctx, &mut session, &name, false)?);
    }
    let mut key_file = None;
    for field in &args.with {
        let value = value_of(&entry, field).ok_or_else(|| {
            Error::no_field(
                &name,
                field,
                format!("{name} has no field {field} to pass with --with"),
            )
        })?;
        if field == "private_key" {
            let fd = SecretFd::new("sfvault-private-key", &value)?;
            env.push(("SF_JWT_KEY_FILE".into(), SecretString::new(fd.path())));
            key_file = Some(fd);
        } else {
            env.push((format!("SF_{}", field.to_ascii_uppercase()), value));
        }
    }
    let mut used = vec!["consumer_key", "username"];
    used.extend(args.with.iter().map(String::as_str));
    session.mark_used(&name, &entry, &used);
    drop(session);
    let result = exec_command(&args.command, &env);
    drop(key_file);
    result
}

/// Replace this process with `command`, its environment extended by `env` (and stripped of
/// sfvault's passphrase variables). Returns only if the command could not be started.
fn exec_command(command: &[OsString], env: &Env) -> Outcome {
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
    sfvault::secret::restore_core_limit();
    let err = cmd.exec();
    let shown = program.to_string_lossy();
    Err(match err.kind() {
        std::io::ErrorKind::NotFound => Failure::Spawn {
            code: exit::COMMAND_NOT_FOUND,
            message: format!("{}: command not found", quoted(&shown)),
        },
        _ => Failure::Spawn {
            code: exit::NOT_EXECUTABLE,
            message: format!("cannot run {}: {err}", quoted(&shown)),
        },
    })
}

/// Resolves references, fetching each entry once and each token at most once.
struct Resolver<'c> {
    ctx: &'c Context,
    session: Option<Session<'c>>,
    entries: BTreeMap<EntryName, Entry>,
    tokens: BTreeMap<EntryName, ValidToken>,
    used: BTreeMap<EntryName, Vec<String>>,
}

impl<'c> Resolver<'c> {
    /// Record the use of every field resolved.
    fn finish(self) {
        let Resolver {
            mut session,
            entries,
            used,
            ..
        } = self;
        let Some(session) = session.as_mut() else {
            return;
        };
        for (name, fields) in &used {
            if let Some(entry) = entries.get(name) {
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                session.mark_used(name, entry, &refs);
            }
        }
    }

    fn new(ctx: &'c Context) -> Self {
        Resolver {
            ctx,
            session: None,
            entries: BTreeMap::new(),
            tokens: BTreeMap::new(),
            used: BTreeMap::new(),
        }
    }

    fn session(&mut self) -> Result<&mut Session<'c>> {
        if self.session.is_none() {
            self.session = Some(self.ctx.session()?);
        }
        Ok(self.session.as_mut().expect("just set"))
    }

    fn resolve(&mut self, r: &Reference) -> Result<SecretString> {
        if fields::from_valid_token(&r.field) {
            if !self.tokens.contains_key(&r.entry) {
                let ctx = self.ctx;
                let t = valid_token(ctx, self.session()?, &r.entry, false)?;
                self.tokens.insert(r.entry.clone(), t);
            }
            let t = &self.tokens[&r.entry];
            return Ok(if r.field == fields::ACCESS_TOKEN {
                t.access_token.duplicate()
            } else {
                SecretString::new(t.instance_url.clone())
            });
        }
        if !self.entries.contains_key(&r.entry) {
            let e = self.session()?.entry(&r.entry, true)?;
            self.entries.insert(r.entry.clone(), e);
        }
        self.used
            .entry(r.entry.clone())
            .or_default()
            .push(r.field.clone());
        value_of(&self.entries[&r.entry], &r.field).ok_or_else(|| {
            Error::no_field(
                &r.entry,
                &r.field,
                format!("{r}: {} has no field {}", r.entry, r.field),
            )
        })
    }
}

pub fn run(ctx: &Context, args: RunArgs) -> Outcome {
    let mut resolver = Resolver::new(ctx);
    let mut env: Env = Vec::new();
    for (key, value) in std::env::vars_os() {
        let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
            continue;
        };
        if Reference::looks_like(value) {
            let r = Reference::parse(value)?;
            env.push((
                key.to_owned(),
                resolver.resolve(&r).map_err(|e| in_var(key, e))?,
            ));
        }
    }
    if let Some(path) = &args.env_file {
        let text = read_bounded_file(path, dotenv::MAX_ENV_FILE_LEN)?;
        for (key, value) in dotenv::parse(&text)? {
            let value = if Reference::looks_like(value.expose()) {
                let r = Reference::parse(value.expose())?;
                resolver.resolve(&r).map_err(|e| in_var(&key, e))?
            } else {
                value
            };
            env.push((key, value));
        }
    }
    resolver.finish();
    exec_command(&args.command, &env)
}

fn in_var(var: &str, e: Error) -> Error {
    match e {
        Error::NotFound { missing, message } => Error::NotFound {
            missing,
            message: format!("{var}: {message}; the command was not run"),
        },
        other => other,
    }
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
        None => Zeroizing::new(prompt::read_stdin_limited(
            "the template",
            template::MAX_TEMPLATE_LEN,
        )?),
    };
    let pieces = template::parse(&text)?;
    let mut resolver = Resolver::new(ctx);
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    for piece in &pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(r) => out.push_str(resolver.resolve(r)?.expose()),
        }
    }
    resolver.finish();
    print(&out)
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn export(ctx: &Context, args: ExportArgs) -> Result<()> {
    check_stdout_safe(args.force_plaintext)?;
    let name = EntryName::parse(&args.entry)?;
    let mut session = ctx.session()?;
    let entry = session.entry(&name, true)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let login_url = creds.login_url();
    let text: Zeroizing<String> = match args.format {
        ExportFormat::SfdxUrl => {
            let need = |f: &str| {
                value_of(&entry, f).ok_or_else(|| {
                    Error::no_field(
                        &name,
                        f,
                        format!(
                            "{name} has no {f}; an SFDX auth URL needs consumer_key and \
                             refresh_token (get one with `sfvault login {name} --flow web`)"
                        ),
                    )
                })
            };
            let (key, refresh) = (need("consumer_key")?, need("refresh_token")?);
            let (field, host_url) = value_of(&entry, "instance_url")
                .map_or(("login_url", login_url.clone()), |v| {
                    ("instance_url", v.expose().to_owned())
                });
            let host = sfvault::url::check(field, &host_url)?.host_port();
            let url = sfdx::format(
                key.expose(),
                value_of(&entry, "consumer_secret").as_ref(),
                &refresh,
                &host,
            );
            Zeroizing::new(format!("{}\n", url.expose()))
        }
        ExportFormat::Env | ExportFormat::Json => {
            let token = if creds.flow().is_ok() {
                Some(valid_token(ctx, &mut session, &name, false)?)
            } else {
                None
            };
            let mut obj = Map::new();
            obj.insert("entry".into(), json!(name.to_string()));
            obj.insert("login_url".into(), json!(login_url));
            for f in ["consumer_key", "consumer_secret", "username", "flow"] {
                if let Some(v) = value_of(&entry, f) {
                    obj.insert(f.into(), json!(v.expose()));
                }
            }
            if let Some(t) = token {
                obj.insert("access_token".into(), json!(t.access_token.expose()));
                obj.insert("instance_url".into(), json!(t.instance_url));
                obj.insert("issued_at".into(), json!(rfc3339(t.issued_at)));
                obj.insert("expires_at".into(), json!(rfc3339(t.expires_at)));
                obj.insert("org_id".into(), json!(t.org_id));
            }
            if matches!(args.format, ExportFormat::Json) {
                Zeroizing::new(format!(
                    "{}\n",
                    serde_json::to_string_pretty(&Value::Object(obj)).unwrap_or_default()
                ))
            } else {
                let mut lines = String::new();
                for (k, v) in &obj {
                    if let (Some(v), false) = (
                        v.as_str(),
                        matches!(k.as_str(), "entry" | "issued_at" | "expires_at" | "flow"),
                    ) {
                        lines.push_str(&format!(
                            "SF_{}={}\n",
                            k.to_ascii_uppercase(),
                            shell_quote(v)
                        ));
                    }
                }
                Zeroizing::new(lines)
            }
        }
    };
    print(&text)
}

/// The regular file stdin was redirected from (`< .env`), if it was one.
fn stdin_file() -> Option<std::path::PathBuf> {
    let path = std::fs::read_link("/proc/self/fd/0").ok()?;
    std::fs::metadata(&path).ok()?.is_file().then_some(path)
}

/// Field names an imported dotenv key stands for.
fn dotenv_field(key: &str) -> Option<&'static str> {
    Some(match key.to_ascii_uppercase().trim_start_matches("SF_") {
        "CONSUMER_KEY" | "CLIENT_ID" => "consumer_key",
        "CONSUMER_SECRET" | "CLIENT_SECRET" => "consumer_secret",
        "USERNAME" => "username",
        "PASSWORD" => "password",
        "SECURITY_TOKEN" => "security_token",
        "LOGIN_URL" => "login_url",
        "REFRESH_TOKEN" => "refresh_token",
        "FLOW" => "flow",
        "SCOPES" => "scopes",
        "CALLBACK_URL" => "callback_url",
        _ => return None,
    })
}

pub fn import(ctx: &Context, args: ImportArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let input = Zeroizing::new(prompt::read_stdin_limited("the import", 1024 * 1024)?);
    let mut values: Vec<(&'static str, SecretString)> = Vec::new();
    let mut ignored = Vec::new();
    match args.format {
        ImportFormat::SfdxUrl => {
            let u = sfdx::parse(&input)?;
            values.push(("consumer_key", SecretString::new(u.client_id)));
            if let Some(s) = u.client_secret {
                values.push(("consumer_secret", s));
            }
            values.push(("refresh_token", u.refresh_token));
            values.push(("login_url", SecretString::new(u.login_url)));
            values.push(("flow", SecretString::new("refresh-token".into())));
        }
        ImportFormat::Json => {
            let v: Value = serde_json::from_str(&input)
                .map_err(|e| Error::Usage(format!("stdin is not JSON: {e}")))?;
            let obj = v
                .as_object()
                .ok_or_else(|| Error::Usage("expected a JSON object".into()))?;
            for (k, v) in obj {
                let field = fields::user_fields().find(|f| f == k);
                match (field, v.as_str()) {
                    (Some(f), Some(s)) => values.push((f, SecretString::new(s.to_owned()))),
                    _ => ignored.push(k.clone()),
                }
            }
        }
        ImportFormat::Dotenv => {
            for (k, v) in dotenv::parse(&input)? {
                match dotenv_field(&k) {
                    Some(f) => values.push((f, v)),
                    None => ignored.push(k),
                }
            }
        }
    }
    if values.is_empty() {
        return Err(Error::Usage(
            "nothing to import: no known field in the input".into(),
        ));
    }
    for (f, v) in &values {
        fields::check_value(f, v)?;
    }
    let new_fields: Vec<NewField> = values
        .into_iter()
        .map(|(f, v)| NewField {
            name: f.to_owned(),
            value: v,
            secret: fields::secret_by_default(f),
        })
        .collect();
    let count = new_fields.len();
    let mut session = ctx.session()?;
    let change = if session.entry(&name, false).is_ok() {
        Change::SetComputed {
            entry: name.to_string(),
            computed: Vec::new(),
            fields: new_fields,
        }
    } else {
        Change::AddEntry {
            entry: name.to_string(),
            fields: new_fields,
        }
    };
    session.apply(change)?;
    ctx.note(&format!("Imported {count} fields into {name}."));
    if !ignored.is_empty() {
        ctx.note(&format!(
            "Ignored (not sfvault fields): {}",
            ignored.join(", ")
        ));
    }
    match stdin_file() {
        Some(path) => ctx.note(&format!(
            "{} is a plaintext copy of what the vault now holds; remove it: shred -u {}",
            path.display(),
            path.display()
        )),
        None => ctx.note("If these credentials came from a file, it can go now: shred -u FILE"),
    }
    Ok(())
}
