//! Between entries and the forms other programs take credentials in: the environment of
//! `exec`, the env lines, JSON and SFDX auth URL of `export`, and the SFDX URL, JSON and
//! dotenv input of `import`.

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::handoff::keyfd::SecretFd;
use crate::handoff::resolve::EntrySource;
use crate::handoff::{Env, dotenv, json, sfdx};
use crate::oauth::{Credentials, Flow, ValidToken};
use crate::secret::SecretString;
use crate::timefmt::rfc3339;
use crate::vault::fields;
use crate::vault::model::Entry;
use crate::vault::name::EntryName;
use crate::vault::{Change, NewField};

fn value_of(entry: &Entry, field: &str) -> Option<SecretString> {
    entry.fields.get(field).map(|f| f.value.duplicate())
}

/// What `exec` gives its command: variables, and the in-memory key file `SF_JWT_KEY_FILE`
/// names (it must stay open until the command starts).
pub struct ExecEnv {
    /// Names and values, in the order they are set.
    pub vars: Env,
    /// The private key's memfd, when `private_key` was asked for.
    pub key_file: Option<SecretFd>,
    /// The token handed over, when one was.
    pub token: Option<ValidToken>,
}

/// The environment `exec` sets for entry `name`: `SF_CONSUMER_KEY`, `SF_USERNAME` (when held),
/// `SF_LOGIN_URL`, the token variables unless `token` is false, and `SF_<FIELD>` for each of
/// `with` (`private_key` as the file `SF_JWT_KEY_FILE`). Records the use of the fields passed.
pub fn exec_env(
    source: &mut impl EntrySource,
    name: &EntryName,
    with: &[String],
    token: bool,
) -> Result<ExecEnv> {
    let entry = source.entry(name)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let mut vars = Env::new();
    for (var, field) in [
        ("SF_CONSUMER_KEY", "consumer_key"),
        ("SF_USERNAME", "username"),
    ] {
        if let Some(v) = value_of(&entry, field) {
            vars.push((var.into(), v));
        }
    }
    vars.push(("SF_LOGIN_URL".into(), SecretString::new(creds.login_url())));
    let token = if token {
        let t = source.token(name)?;
        let instance = SecretString::new(t.instance_url.clone());
        vars.push(("SF_ACCESS_TOKEN".into(), t.access_token.duplicate()));
        vars.push(("SF_INSTANCE_URL".into(), instance.duplicate()));
        vars.push(("SF_TARGET_ORG".into(), t.access_token.duplicate()));
        vars.push(("SF_ORG_INSTANCE_URL".into(), instance));
        Some(t)
    } else {
        None
    };
    let mut key_file = None;
    for field in with {
        let value = value_of(&entry, field).ok_or_else(|| {
            Error::no_field(
                name,
                field,
                format!("{name} has no field {field} to pass with --with"),
            )
        })?;
        if field == "private_key" {
            let fd = SecretFd::new("sfvault-private-key", &value)?;
            vars.push(("SF_JWT_KEY_FILE".into(), SecretString::new(fd.path())));
            key_file = Some(fd);
        } else {
            vars.push((format!("SF_{}", field.to_ascii_uppercase()), value));
        }
    }
    let mut used = vec!["consumer_key", "username"];
    used.extend(with.iter().map(String::as_str));
    source.mark_used(name, &entry, &used);
    Ok(ExecEnv {
        vars,
        key_file,
        token,
    })
}

/// `export --format sfdx-url`: `force://KEY:SECRET:REFRESH_TOKEN@HOST` and a newline, the host
/// that of `instance_url`, else of the login URL.
pub fn export_sfdx_url(
    source: &mut impl EntrySource,
    name: &EntryName,
) -> Result<Zeroizing<String>> {
    let entry = source.entry(name)?;
    let login_url = Credentials::new(&name.to_string(), &entry).login_url();
    let need = |f: &str| {
        value_of(&entry, f).ok_or_else(|| {
            Error::no_field(
                name,
                f,
                format!(
                    "{name} has no {f}; an SFDX auth URL needs consumer_key and refresh_token \
                     (get one with `sfvault login {name} --flow web`)"
                ),
            )
        })
    };
    let (key, refresh) = (need("consumer_key")?, need("refresh_token")?);
    let (field, host_url) = value_of(&entry, "instance_url")
        .map_or(("login_url", login_url), |v| {
            ("instance_url", v.expose().to_owned())
        });
    // As sf writes it: the host and port, never a scheme (sf reads every host as https).
    let host = crate::url::check(field, &host_url)?.host_port();
    let url = sfdx::format(
        key.expose(),
        value_of(&entry, "consumer_secret").as_ref(),
        &refresh,
        &host,
    );
    let mut text = Zeroizing::new(String::with_capacity(url.len() + 1));
    text.push_str(url.expose());
    text.push('\n');
    Ok(text)
}

/// `export --format json`: one pretty JSON object and a newline: the entry's address, login
/// URL, consumer key and secret, username and flow, and, when it has a usable flow and `token`,
/// a valid token (`access_token`, `instance_url`, `issued_at`, `expires_at`, `org_id`).
pub fn export_json(
    source: &mut impl EntrySource,
    name: &EntryName,
    token: bool,
) -> Result<Zeroizing<String>> {
    json::into_text(Value::Object(export_object(source, name, token)?))
}

/// How [`export_env`] writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvStyle {
    /// `export NAME='value'`: for `eval` in a POSIX shell, values single-quoted.
    Shell,
    /// `NAME=value`, unquoted: for `docker --env-file` and other dotenv readers, which take the
    /// rest of the line as it is (a value holding a line break cannot be written).
    Dotenv,
}

/// `export --format env|dotenv`: `SF_<NAME>` for the string members of the [`export_json`]
/// object but `entry`, `flow` and the two times, and, with a token, `SF_TARGET_ORG` and
/// `SF_ORG_INSTANCE_URL` as `exec` sets them (what the Salesforce CLI reads), sorted by name.
pub fn export_env(
    source: &mut impl EntrySource,
    name: &EntryName,
    style: EnvStyle,
    token: bool,
) -> Result<Zeroizing<String>> {
    let mut obj = Value::Object(export_object(source, name, token)?);
    let members = obj.as_object().into_iter().flatten();
    let mut vars: Vec<(String, &str)> = members
        .filter(|(k, _)| !matches!(k.as_str(), "entry" | "issued_at" | "expires_at" | "flow"))
        .filter_map(|(k, v)| Some((format!("SF_{}", k.to_ascii_uppercase()), v.as_str()?)))
        .collect();
    let member = |k: &str| obj.get(k).and_then(Value::as_str);
    if let (Some(t), Some(i)) = (member("access_token"), member("instance_url")) {
        vars.push(("SF_TARGET_ORG".into(), t));
        vars.push(("SF_ORG_INSTANCE_URL".into(), i));
    }
    vars.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if style == EnvStyle::Dotenv
        && let Some((var, _)) = vars.iter().find(|(_, v)| v.contains(['\n', '\r']))
    {
        return Err(Error::Usage(format!(
            "{var} holds a line break, which a dotenv line cannot carry; use --format env or json"
        )));
    }
    // Sized before writing, so the buffer holding the secrets never moves: `export ` (7), the
    // name, `=`, and the value (shell: in quotes, each quote inside becoming '\'', 4 bytes).
    let size: usize = vars
        .iter()
        .map(|(k, v)| match style {
            EnvStyle::Shell => 7 + k.len() + 1 + 2 + v.len() + 3 * v.matches('\'').count() + 1,
            EnvStyle::Dotenv => k.len() + 1 + v.len() + 1,
        })
        .sum();
    let mut lines = Zeroizing::new(String::with_capacity(size));
    for (k, v) in &vars {
        if style == EnvStyle::Shell {
            lines.push_str("export ");
        }
        lines.push_str(k);
        lines.push('=');
        match style {
            EnvStyle::Shell => shell_quote_into(&mut lines, v),
            EnvStyle::Dotenv => lines.push_str(v),
        }
        lines.push('\n');
    }
    drop(vars);
    json::wipe(&mut obj);
    Ok(lines)
}

/// The object [`export_json`] writes and [`export_env`] turns into lines.
fn export_object(
    source: &mut impl EntrySource,
    name: &EntryName,
    token: bool,
) -> Result<Map<String, Value>> {
    let entry = source.entry(name)?;
    let creds = Credentials::new(&name.to_string(), &entry);
    let token: Option<ValidToken> = if token && creds.flow().is_ok() {
        Some(source.token(name)?)
    } else {
        None
    };
    let mut obj = Map::new();
    obj.insert("entry".into(), json!(name.to_string()));
    obj.insert("login_url".into(), json!(creds.login_url()));
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
    Ok(obj)
}

/// `value` in single quotes for a POSIX shell, appended to `out`.
fn shell_quote_into(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// Fields read by an import, checked, and the input's names that are not sfvault fields.
pub struct Imported {
    /// The fields to store, secret or not by default.
    pub fields: Vec<NewField>,
    /// Names in the input that were left out.
    pub ignored: Vec<String>,
}

/// `import --format sfdx-url`: consumer key and secret, refresh token, login URL, and the
/// refresh-token flow.
pub fn import_sfdx_url(input: &str) -> Result<Imported> {
    let u = sfdx::parse(input)?;
    let mut values = vec![("consumer_key", SecretString::new(u.client_id))];
    if let Some(s) = u.client_secret {
        values.push(("consumer_secret", s));
    }
    values.push(("refresh_token", u.refresh_token));
    values.push(("login_url", SecretString::new(u.login_url)));
    values.push(("flow", SecretString::new("refresh-token".into())));
    imported(values, Vec::new())
}

/// `import --format json`: the string members named like sfvault fields (not computed ones);
/// the rest is ignored.
pub fn import_json(input: &str) -> Result<Imported> {
    let v: Value =
        serde_json::from_str(input).map_err(|e| Error::Usage(format!("stdin is not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::Usage("expected a JSON object".into()))?;
    let (mut values, mut ignored) = (Vec::new(), Vec::new());
    for (k, v) in obj {
        let field = fields::user_fields().find(|f| f == k);
        match (field, v.as_str()) {
            (Some(f), Some(s)) => values.push((f, SecretString::new(s.to_owned()))),
            _ => ignored.push(k.clone()),
        }
    }
    imported(values, ignored)
}

/// `import --format dotenv`: the keys [`dotenv_field`] knows; the rest is ignored.
pub fn import_dotenv(input: &str) -> Result<Imported> {
    let (mut values, mut ignored) = (Vec::new(), Vec::new());
    for (k, v) in dotenv::parse(input)? {
        match dotenv_field(&k) {
            Some(f) => values.push((f, v)),
            None => ignored.push(k),
        }
    }
    imported(values, ignored)
}

/// The field an imported dotenv key stands for (`SF_CONSUMER_KEY`, `client_id`, …).
pub fn dotenv_field(key: &str) -> Option<&'static str> {
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

/// Refuse an import with no known field or with a value the field does not accept.
fn imported(values: Vec<(&str, SecretString)>, ignored: Vec<String>) -> Result<Imported> {
    if values.is_empty() {
        return Err(Error::Usage(
            "nothing to import: no known field in the input".into(),
        ));
    }
    for (f, v) in &values {
        fields::check_value(f, v)?;
    }
    let fields = values
        .into_iter()
        .map(|(f, v)| NewField {
            name: f.to_owned(),
            value: v,
            secret: fields::secret_by_default(f),
        })
        .collect();
    Ok(Imported { fields, ignored })
}

/// sf's own connected app, whose id a web login (`sf org login web`) records.
pub const SF_CLI_CLIENT_ID: &str = "PlatformCLI";

/// Largest JWT key file an sf login may name.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// `import --from-sf`: what an sf login holds that lasts, as fields: the consumer key (sf's own
/// app's when it used it), secret, username, login URL, and either the JWT key (read from the
/// file sf names: flow `jwt`) or the refresh token (flow `refresh-token`). The access token is
/// left out: a new one is obtained. A login with neither a key nor a refresh token has nothing
/// that lasts, and is refused.
pub fn import_sf_login(login: &super::sf_state::SfLogin) -> Result<Imported> {
    let mut values: Vec<(&str, SecretString)> = vec![
        (
            "consumer_key",
            SecretString::new(
                login
                    .client_id
                    .clone()
                    .unwrap_or_else(|| SF_CLI_CLIENT_ID.to_owned()),
            ),
        ),
        ("username", SecretString::new(login.username.clone())),
    ];
    if let Some(url) = login.login_url.as_ref().or(login.instance_url.as_ref()) {
        values.push((
            "login_url",
            SecretString::new(url.trim_end_matches('/').to_owned()),
        ));
    }
    if let Some(s) = &login.client_secret {
        values.push(("consumer_secret", s.duplicate()));
    }
    if let Some(path) = &login.private_key_file {
        let pem = read_key_file(path)?;
        values.push(("private_key", pem));
        values.push(("flow", SecretString::new(Flow::Jwt.name().to_owned())));
    } else if let Some(t) = &login.refresh_token {
        values.push((fields::REFRESH_TOKEN, t.duplicate()));
        values.push((
            "flow",
            SecretString::new(Flow::RefreshToken.name().to_owned()),
        ));
    } else {
        return Err(Error::Usage(format!(
            "sf's login of {} holds neither a refresh token nor a JWT key file: nothing that \
             lasts to import (log in with `sf org login web` or `sf org login jwt` first)",
            login.username
        )));
    }
    imported(values, login.left_out.clone())
}

/// Read a PEM private key file once, bounded, and check its shape: `add --private-key-file`,
/// and the key file an sf JWT login names (sf keeps only its path). Nothing is copied to disk.
pub fn read_key_file(path: &std::path::Path) -> Result<SecretString> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(Error::Usage(format!(
            "{} is larger than 64 KiB: not a PEM private key",
            path.display()
        )));
    }
    crate::unlock::strip_newline(&mut buf);
    let pem = SecretString::from_utf8(buf)
        .map_err(|_| Error::Usage(format!("{} is not a text PEM file", path.display())))?;
    if !fields::looks_like_private_key_pem(pem.expose()) {
        return Err(Error::Usage(format!(
            "{} is not a PEM private key (expected -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)",
            path.display()
        )));
    }
    Ok(pem)
}

/// The entry an sf login goes into: `ALIAS/sf` with sf's first usable alias, else the username
/// with `@` as `_at_` (`ci_at_acme.example/sf`).
pub fn sf_entry_name(login: &super::sf_state::SfLogin) -> Result<EntryName> {
    let from_alias = login
        .aliases
        .iter()
        .find_map(|a| EntryName::parse(&format!("{a}/sf")).ok());
    if let Some(name) = from_alias {
        return Ok(name);
    }
    let org: String = login
        .username
        .replace('@', "_at_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    EntryName::parse(&format!("{org}/sf"))
}

/// The change that stores imported `fields` in `name`: set on the entry (old values to history)
/// if it `exists`, else a new entry.
pub fn import_change(name: &EntryName, exists: bool, fields: Vec<NewField>) -> Change {
    if exists {
        Change::SetComputed {
            entry: name.to_string(),
            computed: Vec::new(),
            fields,
        }
    } else {
        Change::AddEntry {
            entry: name.to_string(),
            fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::memory::{ISSUED_AT, Memory, pairs};

    fn name(s: &str) -> EntryName {
        EntryName::parse(s).unwrap()
    }

    /// acme/ci (client credentials, a token), acme/web (a refresh token, an instance URL) and
    /// acme/bare (a consumer key only: no flow).
    fn source() -> Memory {
        let key = crate::pem::encode("PRIVATE KEY", &[1, 2, 3, 4]);
        Memory::with(&[
            (
                "acme/ci",
                &[
                    ("consumer_key", "3MVG9key"),
                    ("consumer_secret", "it's"),
                    ("username", "ci@acme.example"),
                    ("login_url", "https://test.salesforce.com/"),
                    ("flow", "client-credentials"),
                    ("private_key", &key),
                    ("api_pin", "1234"),
                ],
            ),
            (
                "acme/web",
                &[
                    ("consumer_key", "3MVG9web"),
                    ("refresh_token", "5Aep861"),
                    ("instance_url", "https://acme.my.salesforce.com"),
                ],
            ),
            ("acme/bare", &[("consumer_key", "3MVG9bare")]),
        ])
    }

    #[test]
    fn exec_environment_with_token_and_requested_fields() {
        let mut s = source();
        let with = ["api_pin".to_owned(), "private_key".to_owned()];
        let env = exec_env(&mut s, &name("acme/ci"), &with, true).unwrap();
        let vars = pairs(&env.vars);
        let key_path = env.key_file.as_ref().unwrap().path();
        assert_eq!(
            vars,
            [
                ("SF_CONSUMER_KEY", "3MVG9key"),
                ("SF_USERNAME", "ci@acme.example"),
                ("SF_LOGIN_URL", "https://test.salesforce.com"),
                ("SF_ACCESS_TOKEN", "token-of-acme/ci"),
                ("SF_INSTANCE_URL", "https://acme.my.salesforce.com"),
                ("SF_TARGET_ORG", "token-of-acme/ci"),
                ("SF_ORG_INSTANCE_URL", "https://acme.my.salesforce.com"),
                ("SF_API_PIN", "1234"),
                ("SF_JWT_KEY_FILE", key_path.as_str()),
            ]
        );
        let stored = s.data.field(&name("acme/ci"), "private_key").unwrap();
        let in_file = std::fs::read_to_string(&key_path).unwrap();
        assert_eq!(in_file, format!("{}\n", stored.value.expose()));
        assert_eq!(
            s.marks,
            [(
                "acme/ci".to_owned(),
                ["consumer_key", "username", "api_pin", "private_key"]
                    .map(String::from)
                    .to_vec()
            )]
        );
    }

    #[test]
    fn exec_environment_without_token_and_refusing_a_missing_field() {
        let mut s = source();
        let env = exec_env(&mut s, &name("acme/bare"), &[], false).unwrap();
        assert_eq!(
            pairs(&env.vars),
            [
                ("SF_CONSUMER_KEY", "3MVG9bare"),
                ("SF_LOGIN_URL", "https://login.salesforce.com"),
            ]
        );
        assert!(env.key_file.is_none() && s.tokens.is_empty());
        let e = exec_env(&mut s, &name("acme/bare"), &["password".into()], false).err();
        assert!(
            matches!(&e, Some(Error::NotFound { message: m, .. }) if m == "acme/bare has no field password to pass with --with"),
            "{e:?}"
        );
        let e = exec_env(&mut s, &name("acme/none"), &[], false).err();
        assert!(matches!(e, Some(Error::NotFound { .. })), "{e:?}");
    }

    #[test]
    fn sfdx_url_uses_the_instance_host_else_the_login_host() {
        let mut s = source();
        let url = export_sfdx_url(&mut s, &name("acme/web")).unwrap();
        assert_eq!(
            url.as_str(),
            "force://3MVG9web::5Aep861@acme.my.salesforce.com\n"
        );
        let e = export_sfdx_url(&mut s, &name("acme/ci")).unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { message: m, .. } if m.starts_with("acme/ci has no refresh_token; an SFDX auth URL needs")),
            "{e:?}"
        );
        let mut s = Memory::with(&[(
            "acme/uat",
            &[
                ("consumer_key", "k"),
                ("consumer_secret", "s"),
                ("refresh_token", "r"),
                ("login_url", "https://test.salesforce.com"),
            ],
        )]);
        let url = export_sfdx_url(&mut s, &name("acme/uat")).unwrap();
        assert_eq!(url.as_str(), "force://k:s:r@test.salesforce.com\n");
        assert!(s.tokens.is_empty());
    }

    #[test]
    fn json_and_env_lines_hold_the_fields_and_a_token_when_there_is_a_flow() {
        let mut s = source();
        let text = export_json(&mut s, &name("acme/ci"), true).unwrap();
        assert!(text.ends_with("}\n"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "entry": "acme/ci",
                "login_url": "https://test.salesforce.com",
                "consumer_key": "3MVG9key",
                "consumer_secret": "it's",
                "username": "ci@acme.example",
                "flow": "client-credentials",
                "access_token": "token-of-acme/ci",
                "instance_url": "https://acme.my.salesforce.com",
                "issued_at": rfc3339(ISSUED_AT),
                "expires_at": rfc3339(ISSUED_AT + 5400),
                "org_id": "00D000000000001",
            })
        );
        // The env lines: the same members, shell-quoted and exported, but for entry, flow and
        // the times; and the token again as the Salesforce CLI reads it.
        let text = export_env(&mut s, &name("acme/ci"), EnvStyle::Shell, true).unwrap();
        assert_eq!(
            text.as_str(),
            "export SF_ACCESS_TOKEN='token-of-acme/ci'\n\
             export SF_CONSUMER_KEY='3MVG9key'\n\
             export SF_CONSUMER_SECRET='it'\\''s'\n\
             export SF_INSTANCE_URL='https://acme.my.salesforce.com'\n\
             export SF_LOGIN_URL='https://test.salesforce.com'\n\
             export SF_ORG_ID='00D000000000001'\n\
             export SF_ORG_INSTANCE_URL='https://acme.my.salesforce.com'\n\
             export SF_TARGET_ORG='token-of-acme/ci'\n\
             export SF_USERNAME='ci@acme.example'\n"
        );
        assert_eq!(
            text.len(),
            text.capacity(),
            "sized exactly: never reallocated"
        );
        // dotenv: plain lines; without a token no flow runs.
        let text = export_env(&mut s, &name("acme/ci"), EnvStyle::Dotenv, false).unwrap();
        assert_eq!(
            text.as_str(),
            "SF_CONSUMER_KEY=3MVG9key\n\
             SF_CONSUMER_SECRET=it's\n\
             SF_LOGIN_URL=https://test.salesforce.com\n\
             SF_USERNAME=ci@acme.example\n"
        );
        assert_eq!(text.len(), text.capacity());
        let text = export_json(&mut s, &name("acme/bare"), true).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "entry": "acme/bare",
                "login_url": "https://login.salesforce.com",
                "consumer_key": "3MVG9bare",
            })
        );
        // A token for each export of an entry with a flow, none without one.
        assert_eq!(s.tokens, ["acme/ci", "acme/ci"]);
        let v: Value =
            serde_json::from_str(&export_json(&mut s, &name("acme/ci"), false).unwrap()).unwrap();
        assert!(v.get("access_token").is_none() && s.tokens.len() == 2);
    }

    #[test]
    fn each_import_format_maps_to_fields() {
        type Import = fn(&str) -> Result<Imported>;
        /// Name, value and secrecy of each field stored.
        type Stored<'a> = &'a [(&'a str, &'a str, bool)];
        let cases: [(Import, &str, Stored, &[&str]); 3] = [
            (
                import_sfdx_url,
                "force://3MVG9web:sec:5Aep861@acme.my.salesforce.com\n",
                &[
                    ("consumer_key", "3MVG9web", false),
                    ("consumer_secret", "sec", true),
                    ("refresh_token", "5Aep861", true),
                    ("login_url", "https://acme.my.salesforce.com", false),
                    ("flow", "refresh-token", false),
                ],
                &[],
            ),
            // Settable string members only: not computed fields, not numbers, not strangers.
            (
                import_json,
                r#"{"entry": "acme/ci", "consumer_key": "k", "password": "p", "access_token": "t",
                    "token_lifetime": 60, "pet": "cat", "username": "u@acme.example"}"#,
                &[
                    ("consumer_key", "k", false),
                    ("password", "p", true),
                    ("username", "u@acme.example", false),
                ],
                &["access_token", "entry", "pet", "token_lifetime"],
            ),
            // SF_ and OAuth spellings, any case, `export ` allowed.
            (
                import_dotenv,
                "SF_CLIENT_ID=k\nclient_secret=s\nexport SF_LOGIN_URL=https://test.salesforce.com\nHOME=/x\n",
                &[
                    ("consumer_key", "k", false),
                    ("consumer_secret", "s", true),
                    ("login_url", "https://test.salesforce.com", false),
                ],
                &["HOME"],
            ),
        ];
        for (import, input, fields, ignored) in cases {
            let i = import(input).unwrap();
            let got: Vec<(&str, &str, bool)> = i
                .fields
                .iter()
                .map(|f| (f.name.as_str(), f.value.expose(), f.secret))
                .collect();
            assert_eq!(got, fields, "{input}");
            assert_eq!(i.ignored, ignored, "{input}");
        }
        let no_secret = import_sfdx_url("force://k::r@login.salesforce.com").unwrap();
        assert!(!no_secret.fields.iter().any(|f| f.name == "consumer_secret"));
        assert_eq!(dotenv_field("sf_security_token"), Some("security_token"));
        assert_eq!(dotenv_field("SF_ACCESS_TOKEN"), None);
    }

    #[test]
    fn imports_refuse_nothing_known_bad_input_and_bad_values() {
        let usage = |r: Result<Imported>| matches!(r, Err(Error::Usage(_)));
        assert!(usage(import_json("{\"pet\": \"cat\"}")));
        assert!(usage(import_dotenv("HOME=/x\n")));
        assert!(usage(import_json("[1, 2]")));
        assert!(usage(import_json("consumer_key=k")));
        assert!(usage(import_dotenv("not a line\n")));
        assert!(usage(import_sfdx_url("https://k::r@login.salesforce.com")));
        let e = import_json(r#"{"consumer_key": "k", "login_url": "http://evil.example"}"#).err();
        assert!(
            matches!(e, Some(Error::Unsafe(_) | Error::Usage(_))),
            "{e:?}"
        );
        assert!(usage(import_json(r#"{"flow": "telepathy"}"#)));
        assert!(usage(import_dotenv("SF_USERNAME=\n")));
    }

    #[test]
    fn an_import_adds_a_new_entry_or_sets_an_existing_one() {
        let fields = || import_dotenv("SF_CONSUMER_KEY=k\n").unwrap().fields;
        let n = name("acme/ci");
        assert_eq!(
            import_change(&n, false, fields()),
            Change::AddEntry {
                entry: "acme/ci".into(),
                fields: fields(),
            }
        );
        assert_eq!(
            import_change(&n, true, fields()),
            Change::SetComputed {
                entry: "acme/ci".into(),
                computed: Vec::new(),
                fields: fields(),
            }
        );
    }
}
