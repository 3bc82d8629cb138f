//! `audit --at-salesforce ADMIN` and `revoke --at-salesforce ADMIN`: who holds OAuth access to
//! the org, held against the vault (the library's `access`), and revoking what was found.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;
use sfvault::access::{self, Finding, Limits};
use sfvault::oauth::{self, http::Http};
use sfvault::salesforce::Admin;
use sfvault::vault::fields::APP_ID;
use sfvault::vault::model;
use sfvault::{Error, Result};

use super::Context;
use super::args::{AuditArgs, RevokeArgs};
use super::exit::{self, Failure, Outcome};
use super::output::{print, print_json, table};
use super::prompt;

pub fn audit(ctx: &Context, args: &AuditArgs, admin_arg: &str) -> Outcome {
    let mut session = ctx.session()?;
    let login = super::admin::login(ctx, &mut session, admin_arg)?;
    let http = Http::new();
    let admin = Admin::new(&http, &login.instance_url, login.token)?;
    // The vault's entries of this org: those under the admin entry's ORG.
    let prefix = format!("{}/", login.name.org());
    let entries: BTreeMap<_, _> = session
        .entries()?
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .collect();
    let entry_app_ids: Vec<String> = entries
        .values()
        .filter_map(|e| e.fields.get(APP_ID).map(|f| f.value.expose().to_owned()))
        .filter(|id| !id.is_empty())
        .collect();
    let started = Instant::now();
    let mut progress = |line: &str| ctx.note(&format!("sfvault: {line}"));
    let org = access::collect(&admin, &entry_app_ids, &mut progress)?;
    let elapsed = started.elapsed();
    let limits = Limits {
        max_idle_secs: args.max_idle.as_secs() as i64,
        max_age_secs: args.max_age.as_secs() as i64,
        admin: login.name.to_string(),
    };
    let findings = access::findings(&org, &entries, &limits, model::now());
    let tokens = org.ecas.iter().map(|e| e.tokens.len()).sum::<usize>() + org.oauth_tokens.len();
    let labels: BTreeSet<String> = org
        .oauth_tokens
        .iter()
        .map(|r| r.app_name.to_lowercase())
        .collect();
    let apps = org.ecas.len() + labels.len();
    ctx.note(&format!(
        "sfvault: {tokens} tokens of {apps} apps read in {} requests ({} ms); {} entries of {} held against them",
        admin.requests(),
        elapsed.as_millis(),
        entries.len(),
        login.name.org()
    ));
    if ctx.json {
        print_json(json!({
            "org": login.instance_url,
            "apps": apps,
            "tokens": tokens,
            "requests": admin.requests(),
            "entries": entries.len(),
            "findings": findings,
        }))?;
    } else if findings.is_empty() {
        ctx.note("sfvault: nothing found.");
    } else {
        print(&grouped(&findings))?;
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Failure::Reported(exit::FAILED))
    }
}

/// The findings as one table per app, for people.
fn grouped(findings: &[Finding]) -> String {
    let mut by_app: BTreeMap<(&str, Option<&str>), Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        by_app
            .entry((f.app.as_str(), f.app_id.as_deref()))
            .or_default()
            .push(f);
    }
    let mut out = String::new();
    for ((app, id), items) in by_app {
        let title = match (app, id) {
            ("", _) => "(no app found)".to_owned(),
            (a, Some(id)) => format!("{a} ({id})"),
            (a, None) => a.to_owned(),
        };
        out.push_str(&format!("== {title}\n"));
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|f| {
                let who = f
                    .entry
                    .clone()
                    .or_else(|| f.username.clone())
                    .or_else(|| f.user_id.clone())
                    .unwrap_or_default();
                vec![f.kind.to_owned(), who, f.detail.clone()]
            })
            .collect();
        out.push_str(&table(&["KIND", "ENTRY OR USER", "DETAIL"], &rows));
        out.push('\n');
    }
    out
}

/// An id typed by the user (`--token` parts, `--user`, `--app`): the same check as ids from
/// answers, but a usage error (exit 2).
fn typed_id(what: &str, id: &str) -> Result<()> {
    sfvault::salesforce::check_id(what, id).map_err(|e| Error::Usage(e.to_string()))
}

pub fn revoke(ctx: &Context, args: RevokeArgs, admin_arg: &str) -> Result<()> {
    if let Some(u) = &args.user {
        typed_id("--user", u)?;
    }
    let token_parts = match &args.token {
        Some(id) => {
            let parts: Vec<String> = id.split('/').map(str::to_owned).collect();
            if parts.len() != 3 {
                return Err(Error::Usage(format!(
                    "--token takes APP_ID/USER_ID/TOKEN_ID, as `audit --at-salesforce --json` names a token \
                     (token_id), not {}",
                    sfvault::quote::quoted(id)
                )));
            }
            for (what, part) in ["app id", "user id", "token id"].iter().zip(&parts) {
                typed_id(what, part)?;
            }
            Some(parts)
        }
        None => None,
    };
    let mut session = ctx.session()?;
    let login = super::admin::login(ctx, &mut session, admin_arg)?;
    // The admin session's own token is among the admin user's tokens: those are never revoked
    // here, whatever app they belong to (its app may be renamed, or its key rotated).
    if login.identity.is_empty() {
        return Err(Error::Unsafe(format!(
            "sfvault cannot tell which tokens are the admin session's own ({} has no user id): run \
             `sfvault token {} --refresh` first",
            login.name, login.name
        )));
    }
    let is_admin_user = |user: &str| login.identity.iter().any(|i| i == user);
    let refuse_own = || {
        Error::Unsafe(format!(
            "that would revoke tokens of the admin's own user ({} at Salesforce), the admin session among \
             them: revoke those in Setup",
            login.name
        ))
    };
    let http = Http::new();
    let admin = Admin::new(&http, &login.instance_url, login.token.duplicate())?;
    if let Some(parts) = token_parts {
        let (app, user, token) = (&parts[0], &parts[1], &parts[2]);
        if is_admin_user(user) {
            return Err(refuse_own());
        }
        if !prompt::confirm_unless_yes(
            args.yes,
            "revoking a token",
            &format!("Revoke token {token} of user {user} for app {app}?"),
        )? {
            return Err(Error::Usage("not revoked".into()));
        }
        let done = admin.revoke_usage(app, Some(user), Some(token))?;
        return report(ctx, usize::from(done), 0, done);
    }
    let app = args.app.as_deref().unwrap_or_default();
    if app.starts_with("0x") {
        typed_id("--app", app)?;
        let users: Vec<String> = match &args.user {
            Some(u) if is_admin_user(u) => return Err(refuse_own()),
            Some(u) => vec![u.clone()],
            None => admin
                .usage_users(app)?
                .ok_or_else(|| Error::NotFound {
                    missing: sfvault::error::Missing::Entry {
                        entry: app.to_owned(),
                    },
                    message: format!("the org has no External Client App {app} with OAuth usage"),
                })?
                .into_iter()
                .map(|u| u.id)
                .collect(),
        };
        let (own, others): (Vec<String>, Vec<String>) =
            users.into_iter().partition(|u| is_admin_user(u));
        if others.is_empty() {
            return if own.is_empty() {
                report(ctx, 0, 0, false)
            } else {
                Err(refuse_own())
            };
        }
        let mut tokens = 0;
        for u in &others {
            tokens += admin.usage_tokens(app, u)?.len();
        }
        let question = match &args.user {
            Some(u) => format!("Revoke the {tokens} token(s) of user {u} for app {app}?"),
            None => format!(
                "Revoke the {tokens} token(s) of {} user(s) for app {app}?",
                others.len()
            ),
        };
        if !prompt::confirm_unless_yes(args.yes, "revoking tokens", &question)? {
            return Err(Error::Usage("not revoked".into()));
        }
        // The whole app at once only when the admin's user holds none of its tokens.
        if own.is_empty() && args.user.is_none() {
            let done = admin.revoke_usage(app, None, None)?;
            return report(ctx, if done { tokens } else { 0 }, 0, done);
        }
        for u in &others {
            admin.revoke_usage(app, Some(u), None)?;
        }
        return report(ctx, tokens, own.len(), true);
    }
    // A classic connected app, by its exact name: each token revoked with its DeleteToken.
    let rows = match &args.user {
        Some(u) => {
            if admin.count_oauth_tokens(Some(u))? >= sfvault::salesforce::usage::OAUTH_TOKEN_CAP {
                return Err(Error::failed(format!(
                    "user {u} holds more OAuth tokens than one query returns: revoke them in Setup"
                )));
            }
            admin.oauth_tokens(Some(u))?
        }
        None => admin.all_oauth_tokens()?.0,
    };
    let (mine, theirs): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .filter(|r| r.app_name == app)
        .partition(|r| is_admin_user(&r.user_id));
    if theirs.is_empty() {
        if !mine.is_empty() {
            return Err(refuse_own());
        }
        return Err(Error::NotFound {
            missing: sfvault::error::Missing::Entry {
                entry: app.to_owned(),
            },
            message: format!(
                "no OAuth token of a connected app named exactly {}{}",
                sfvault::quote::quoted(app),
                args.user
                    .as_ref()
                    .map(|u| format!(" held by user {u}"))
                    .unwrap_or_default()
            ),
        });
    }
    if !mine.is_empty() {
        ctx.note(&format!(
            "sfvault: leaving {} token(s) of the admin's own user alone (the admin session may be one of them)",
            mine.len()
        ));
    }
    let question = format!(
        "Revoke {} token(s) of connected app {app}{}?",
        theirs.len(),
        args.user
            .as_ref()
            .map(|u| format!(" held by user {u}"))
            .unwrap_or_default()
    );
    if !prompt::confirm_unless_yes(args.yes, "revoking tokens", &question)? {
        return Err(Error::Usage("not revoked".into()));
    }
    for (done, row) in theirs.iter().enumerate() {
        if let Err(e) = oauth::revoke(&http, &login.instance_url, &row.delete_token) {
            ctx.note(&format!(
                "sfvault: {done} of {} token(s) were revoked before this failure",
                theirs.len()
            ));
            return Err(e);
        }
    }
    report(ctx, theirs.len(), mine.len(), true)
}

fn report(ctx: &Context, revoked: usize, skipped: usize, found: bool) -> Result<()> {
    if ctx.json {
        return print_json(json!({"revoked": revoked, "skipped_own": skipped, "found": found}));
    }
    if found {
        print(&format!(
            "revoked: {revoked} (Salesforce confirmed each){}\n",
            if skipped > 0 {
                format!("; {skipped} of the admin's own left alone")
            } else {
                String::new()
            }
        ))
    } else {
        print("nothing to revoke: Salesforce had no such token (404)\n")
    }
}
