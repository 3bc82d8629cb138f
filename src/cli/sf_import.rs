//! `import --from-sf`: the orgs the Salesforce CLI is logged in to come into the vault, each
//! proven with a token request from the vault; sf's own copies are logged out only when asked
//! (`--logout`) and only once proven. Reading sf's files is `sfvault::handoff::sf_state`'s.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use sfvault::handoff::mapping;
use sfvault::handoff::sf_state::{self, SfKey, SfLogin};
use sfvault::vault::name::EntryName;
use sfvault::{Error, Result};

use super::Context;
use super::output::print_json;

/// Where sf keeps its logins: `~/.sfdx`.
fn sfdx_dir() -> Result<PathBuf> {
    directories::BaseDirs::new()
        .map(|d| d.home_dir().join(".sfdx"))
        .ok_or_else(|| Error::Usage("cannot find a home directory, so not sf's either".into()))
}

/// sf's encryption key: `~/.sfdx/key.json`, else the libsecret keychain through `secret-tool`.
fn sf_key(dir: &std::path::Path) -> Result<SfKey> {
    if let Some(key) = SfKey::from_key_file(&dir.join("key.json"))? {
        return Ok(key);
    }
    let out = Command::new("secret-tool")
        .args(["lookup", "user", "local", "domain", "sfdx"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text =
                sfvault::secret::SecretString::from_utf8(zeroize::Zeroizing::new(out.stdout))
                    .map_err(|_| Error::Usage("sf's keychain entry is not text".into()))?;
            SfKey::from_text(text.expose())
        }
        _ => Err(Error::no_field(
            &"sf",
            "key",
            format!(
                "sf's encryption key is in neither {} nor the keychain (secret-tool): is sf \
                 logged in to anything on this machine?",
                dir.join("key.json").display()
            ),
        )),
    }
}

/// What happened to one org.
struct Outcome {
    username: String,
    entry: Option<EntryName>,
    proven: bool,
    logged_out: bool,
    problem: Option<String>,
}

pub fn import_from_sf(ctx: &Context, names: &[String], logout: bool) -> Result<()> {
    let dir = sfdx_dir()?;
    let files = sf_state::auth_files(&dir)?;
    if files.is_empty() {
        return Err(Error::no_field(
            &"sf",
            "logins",
            format!(
                "sf is logged in to nothing here ({} holds no USERNAME.json)",
                dir.display()
            ),
        ));
    }
    let key = sf_key(&dir)?;
    let aliases = sf_state::aliases(&dir)?;
    let logins: Vec<SfLogin> = files
        .iter()
        .map(|f| sf_state::read_login(f, &key, &aliases))
        .collect::<Result<_>>()?;
    let wanted: Vec<&SfLogin> = if names.is_empty() {
        logins.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                logins
                    .iter()
                    .find(|l| l.username == *n || l.aliases.contains(n))
                    .ok_or_else(|| {
                        Error::no_field(
                            &"sf",
                            n,
                            format!("sf has no login with the alias or username {n}"),
                        )
                    })
            })
            .collect::<Result<_>>()?
    };
    let mut session = ctx.session()?;
    let mut outcomes = Vec::new();
    for login in wanted {
        let mut outcome = Outcome {
            username: login.username.clone(),
            entry: None,
            proven: false,
            logged_out: false,
            problem: None,
        };
        let stored = mapping::import_sf_login(login).and_then(|imported| {
            let name = mapping::sf_entry_name(login)?;
            let exists = session.entry(&name, false).is_ok();
            session.apply(mapping::import_change(&name, exists, imported.fields))?;
            Ok(name)
        });
        match stored {
            Err(e) => outcome.problem = Some(e.to_string()),
            Ok(name) => {
                // Proven: the vault's copy gets a token by itself.
                match super::oauth_cmds::valid_token(ctx, &mut session, &name, true) {
                    Ok(_) => outcome.proven = true,
                    Err(e) => outcome.problem = Some(format!("imported, not proven: {e}")),
                }
                outcome.entry = Some(name);
            }
        }
        if outcome.proven && logout {
            match sf_logout(&login.username) {
                Ok(()) => outcome.logged_out = true,
                Err(e) => outcome.problem = Some(e),
            }
        }
        report(ctx, &outcome, login, logout);
        outcomes.push(outcome);
    }
    if ctx.json {
        print_json(json!(
            outcomes
                .iter()
                .map(|o| json!({
                    "username": o.username,
                    "entry": o.entry.as_ref().map(ToString::to_string),
                    "proven": o.proven,
                    "logged_out": o.logged_out,
                    "problem": o.problem,
                }))
                .collect::<Vec<_>>()
        ))?;
    }
    let failed = outcomes.iter().filter(|o| !o.proven).count();
    if failed > 0 {
        return Err(Error::failed(format!(
            "{failed} of {} sf logins were not imported and proven; sf still holds them",
            outcomes.len()
        )));
    }
    Ok(())
}

fn report(ctx: &Context, o: &Outcome, login: &SfLogin, logout: bool) {
    let entry = o.entry.as_ref().map_or("-".to_owned(), ToString::to_string);
    let line = match (&o.problem, o.proven, o.logged_out) {
        (Some(p), _, _) => format!("{}: {p}", o.username),
        (None, true, true) => format!(
            "{} → {entry}: imported, proven with a new token; sf logged out of it",
            o.username
        ),
        (None, true, false) => {
            let keep = if logout {
                ""
            } else {
                " (`sfvault import --from-sf --logout` or `sf org logout` when you are ready)"
            };
            format!(
                "{} → {entry}: imported, proven with a new token; sf still holds its own copy in {}{keep}",
                o.username,
                login.file.display()
            )
        }
        (None, false, _) => format!("{}: not proven", o.username),
    };
    ctx.note(&line);
    if !login.left_out.is_empty() && o.proven {
        ctx.note(&format!(
            "  left out: {} (a new token is obtained when needed)",
            login.left_out.join(", ")
        ));
    }
}

/// `sf org logout --target-org USERNAME --no-prompt`, with sf from PATH.
fn sf_logout(username: &str) -> std::result::Result<(), String> {
    let out = Command::new("sf")
        .args([
            "org",
            "logout",
            "--target-org",
            username,
            "--no-prompt",
            "--json",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("imported and proven, but sf could not be run to log out: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "imported and proven, but `sf org logout` failed (exit {}); sf still holds it",
            out.status.code().unwrap_or(-1)
        ))
    }
}
