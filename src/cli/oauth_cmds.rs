//! login, token, revoke, keygen: the OAuth flows run here, in the CLI process, with secrets read
//! from the session (agent or local) and tokens written back to the vault.

use serde_json::json;
use sfvault::oauth::http::Http;
use sfvault::oauth::web::{DEFAULT_CALLBACK, WebLogin};
use sfvault::oauth::{self, Credentials, Flow, Token, TokenCheck, ValidToken, keygen};
use sfvault::secret::SecretString;
use sfvault::timefmt::rfc3339;
use sfvault::vault::fields;
use sfvault::vault::model::{self, Entry};
use sfvault::vault::name::EntryName;
use sfvault::vault::{Change, NewField};
use sfvault::{Error, Result};

use super::Context;
use super::args::{KeygenArgs, LoginArgs, RevokeArgs, TokenArgs};
use super::output::{print, print_json};
use super::session::Session;

fn warn_password_flow(ctx: &Context, flow: Flow) {
    if flow == Flow::Password {
        ctx.note(
            "sfvault: warning: the username-password flow is blocked in orgs created since Summer '23 \
             and Salesforce is retiring it; prefer jwt or client-credentials",
        );
    }
}

/// How long an accepted token is handed out without asking Salesforce again:
/// `SFVAULT_TOKEN_CHECK_SECS` (0: ask every time), else [`oauth::CHECK_INTERVAL_SECS`].
fn check_interval() -> Result<i64> {
    match std::env::var("SFVAULT_TOKEN_CHECK_SECS") {
        Err(_) => Ok(oauth::CHECK_INTERVAL_SECS),
        Ok(text) => text
            .parse::<i64>()
            .ok()
            .filter(|s| (0..=86_400).contains(s))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "SFVAULT_TOKEN_CHECK_SECS={text} is not a number of seconds (0 to 86400)"
                ))
            }),
    }
}

/// Remember that Salesforce accepted the cached token at `now`.
fn record_check(session: &mut Session, name: &EntryName, now: model::Timestamp) -> Result<()> {
    session.apply(Change::SetComputed {
        entry: name.to_string(),
        computed: vec![NewField {
            name: fields::TOKEN_CHECKED_AT.into(),
            value: SecretString::new(now.to_string()),
            secret: false,
        }],
        fields: Vec::new(),
    })?;
    Ok(())
}

/// Keep a fresh token in the vault: the cache fields, and a refresh token if one came.
fn store(session: &mut Session, name: &EntryName, token: &Token) -> Result<()> {
    let computed = [
        (fields::ACCESS_TOKEN, token.access_token.duplicate()),
        (
            fields::INSTANCE_URL,
            SecretString::new(token.instance_url.clone()),
        ),
        ("org_id", SecretString::new(token.org_id.clone())),
        ("user_id", SecretString::new(token.user_id.clone())),
        (
            "token_issued_at",
            SecretString::new(token.issued_at_ms.to_string()),
        ),
        // Just issued: as good as checked.
        (
            fields::TOKEN_CHECKED_AT,
            SecretString::new(model::now().to_string()),
        ),
    ];
    let field = |(name, value): (&str, SecretString)| NewField {
        name: name.to_owned(),
        value,
        secret: fields::secret_by_default(name),
    };
    session.apply(Change::SetComputed {
        entry: name.to_string(),
        computed: computed.into_iter().map(field).collect(),
        fields: token
            .refresh_token
            .as_ref()
            .map(SecretString::duplicate)
            .map(|v| NewField {
                name: fields::REFRESH_TOKEN.into(),
                value: v,
                secret: true,
            })
            .into_iter()
            .collect(),
    })?;
    Ok(())
}

/// A valid token for `name`: the cached one unless stale or `refresh`, else a new one from the
/// entry's non-interactive flow (a web entry renews with its refresh token).
pub fn valid_token(
    ctx: &Context,
    session: &mut Session,
    name: &EntryName,
    refresh: bool,
) -> Result<ValidToken> {
    let entry = session.entry(name, true)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let lifetime = creds.token_lifetime_secs();
    let now = model::now();
    // Built only when a request is made (it loads the CA store), and then once.
    let mut http = None;
    if !refresh && let Some((t, checked_at)) = ValidToken::cached(&entry, lifetime, now) {
        // Accepted by Salesforce in the last minutes: handed out without asking again.
        let interval = check_interval()?;
        if checked_at.is_some_and(|at| (0..interval).contains(&(now - at))) {
            return Ok(t);
        }
        let http = http.get_or_insert_with(Http::new);
        match oauth::check_token(http, &t.instance_url, &t.access_token) {
            TokenCheck::Accepted => {
                record_check(session, name, now)?;
                return Ok(t);
            }
            TokenCheck::Unknown => return Ok(t),
            // Dropped at Salesforce (session ended, token revoked): a new one below.
            TokenCheck::Refused => {}
        }
    }
    let mut flow = creds.flow()?;
    if flow == Flow::Web {
        if !entry.fields.contains_key(fields::REFRESH_TOKEN) {
            return Err(Error::Usage(format!(
                "{name} uses the web flow and holds no refresh token: run `sfvault login {name}` first"
            )));
        }
        flow = Flow::RefreshToken;
    }
    warn_password_flow(ctx, flow);
    let http = http.get_or_insert_with(Http::new);
    let token = oauth::request_token(http, &creds, flow, now)?;
    store(session, name, &token)?;
    session.mark_used(name, &entry, &flow.read_fields().collect::<Vec<_>>());
    Ok(ValidToken {
        issued_at: now,
        expires_at: now + lifetime,
        username: entry
            .fields
            .get("username")
            .map(|f| f.value.expose().to_owned()),
        org_id: Some(token.org_id),
        instance_url: token.instance_url,
        access_token: token.access_token,
    })
}

pub fn token(ctx: &Context, args: TokenArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let mut session = ctx.session()?;
    let t = valid_token(ctx, &mut session, &name, args.refresh)?;
    if ctx.json {
        return print_json(json!({
            "access_token": t.access_token.expose(),
            "instance_url": t.instance_url,
            "issued_at": rfc3339(t.issued_at),
            "expires_at": rfc3339(t.expires_at),
            "username": t.username,
            "org_id": t.org_id,
        }));
    }
    print(&format!("{}\n", t.access_token.expose()))
}

pub fn login(ctx: &Context, args: LoginArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let forced = args.flow;
    let mut session = ctx.session()?;
    let entry = session.entry(&name, true)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let flow = match forced {
        Some(f) => f,
        None => creds.flow()?,
    };
    warn_password_flow(ctx, flow);
    let http = Http::new();
    let token = if flow == Flow::Web {
        web_login(&http, &entry, &creds, &args)?
    } else {
        oauth::request_token(&http, &creds, flow, model::now())?
    };
    store(&mut session, &name, &token)?;
    session.mark_used(&name, &entry, &flow.read_fields().collect::<Vec<_>>());
    if ctx.json {
        return print_json(json!({
            "entry": name.to_string(),
            "flow": flow.name(),
            "instance_url": token.instance_url,
            "org_id": token.org_id,
            "user_id": token.user_id,
            "refresh_token_stored": token.refresh_token.is_some(),
        }));
    }
    ctx.note(&format!(
        "Logged in {name} with the {} flow: org {}, user {}, {}{}.",
        flow.name(),
        token.org_id,
        token.user_id,
        token.instance_url,
        if token.refresh_token.is_some() {
            "; refresh token stored"
        } else {
            ""
        }
    ));
    Ok(())
}

fn web_login(
    http: &Http,
    entry: &Entry,
    creds: &Credentials<'_>,
    args: &LoginArgs,
) -> Result<Token> {
    let field = |f: &str| entry.fields.get(f).map(|v| v.value.duplicate());
    let client_id = field("consumer_key").ok_or_else(|| {
        Error::no_field(
            &args.entry,
            "consumer_key",
            format!(
                "{} has no consumer_key, which the web flow needs",
                args.entry
            ),
        )
    })?;
    let callback =
        field("callback_url").map_or(DEFAULT_CALLBACK.to_owned(), |v| v.expose().to_owned());
    let web = WebLogin::start(&callback)?;
    let login_url = creds.login_url();
    let scopes = field("scopes");
    let url = web.authorize_url(
        &login_url,
        client_id.expose(),
        scopes.as_ref().map(|s| s.expose()),
    );
    // Always printed (stderr), even with --quiet: without it the login cannot proceed.
    super::output::stderr_line(&format!(
        "Log in to Salesforce in a browser at:\n{url}\nWaiting for the redirect to {} …",
        web.redirect_uri()
    ));
    if !args.no_browser && has_display() {
        let mut opener = std::process::Command::new("xdg-open");
        for var in sfvault::unlock::PASSPHRASE_ENV_VARS {
            opener.env_remove(var);
        }
        let _ = opener
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let code = web.wait_for_code(args.timeout, super::output::stderr_line)?;
    web.exchange(
        http,
        &login_url,
        client_id.expose(),
        field("consumer_secret").as_ref(),
        &code,
    )
}

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

pub fn revoke(ctx: &Context, args: RevokeArgs) -> Result<()> {
    if let Some(admin) = args.at_salesforce.clone() {
        return super::access_cmds::revoke(ctx, args, &admin);
    }
    let name = EntryName::parse(args.entry.as_deref().unwrap_or_default())?;
    let mut session = ctx.session()?;
    let entry = session.entry(&name, true)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let tokens: Vec<(&str, &SecretString)> = [fields::REFRESH_TOKEN, fields::ACCESS_TOKEN]
        .iter()
        .filter_map(|f| entry.fields.get(f).map(|v| (*f, &v.value)))
        .collect();
    if tokens.is_empty() {
        return ctx.done(
            &format!("{name} holds no token; nothing to revoke."),
            json!({"entry": name.to_string(), "revoked": []}),
        );
    }
    let http = Http::new();
    for (_, token) in &tokens {
        oauth::revoke(&http, &creds.login_url(), token)?;
    }
    session.apply(Change::ForgetTokens {
        entry: name.to_string(),
        revoked: tokens.iter().map(|(_, t)| t.duplicate()).collect(),
    })?;
    let which: Vec<&str> = tokens.iter().map(|(f, _)| *f).collect();
    ctx.done(
        &format!("Revoked and forgot {} of {name}.", which.join(" and ")),
        json!({"entry": name.to_string(), "revoked": which}),
    )
}

pub fn keygen(ctx: &Context, args: KeygenArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let mut session = ctx.session()?;
    let entry = session.entry(&name, false)?;
    if entry.fields.contains_key("private_key") && !args.force {
        return Err(Error::failed(format!(
            "{name} already has a private_key; pass --force to replace it (the old one stays in history)"
        )));
    }
    // A 4096-bit key can take ten seconds or more: say it is working (an invalid size fails at
    // once, without this note).
    if keygen::BITS.contains(&args.bits) {
        ctx.note(&format!(
            "Generating a {}-bit RSA key{}…",
            args.bits,
            if args.bits > 2048 {
                " (this takes a few seconds)"
            } else {
                ""
            }
        ));
    }
    let certificate = new_key_pair(&mut session, &name, args.bits, args.days)?;
    print_certificate(
        ctx,
        &name,
        &certificate,
        args.bits,
        &format!(
            "The {}-bit private key of {name} is in the vault only. Upload the certificate above \
             to the connected app (Setup → App Manager → the app → Edit → Use digital signatures).",
            args.bits
        ),
    )
}

/// A new key's certificate: the PEM on stdout (for `> app.crt`) and `message` on stderr, or with
/// `--json` one object holding both the entry and the PEM.
pub fn print_certificate(
    ctx: &Context,
    name: &EntryName,
    certificate: &str,
    bits: usize,
    message: &str,
) -> Result<()> {
    if ctx.json {
        return print_json(json!({
            "entry": name.to_string(),
            "bits": bits,
            "certificate": certificate,
        }));
    }
    print(&format!("{}\n", certificate.trim_end()))?;
    ctx.note(message);
    Ok(())
}

/// Generate a key pair for `name`, store the key (old one to history) and the certificate, and
/// return the certificate (PEM): what `keygen` and `rotate … private_key` share.
pub fn new_key_pair(
    session: &mut Session,
    name: &EntryName,
    bits: usize,
    days: u32,
) -> Result<String> {
    let made = keygen::generate(bits, days, &format!("sfvault {name}"))?;
    session.apply(Change::SetComputed {
        entry: name.to_string(),
        computed: Vec::new(),
        fields: vec![
            NewField {
                name: "private_key".into(),
                value: made.private_key,
                secret: true,
            },
            NewField {
                name: "certificate".into(),
                value: SecretString::new(made.certificate.clone()),
                secret: false,
            },
        ],
    })?;
    Ok(made.certificate)
}
