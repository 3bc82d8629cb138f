//! `audit --at-salesforce ADMIN` and `revoke --at-salesforce ADMIN`: who holds OAuth access to
//! the org, held against the vault (the library's `access`), and revoking what was found.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;
use sfvault::access::{self, Finding, Limits};
use sfvault::oauth::{self, http::Http};
use sfvault::salesforce::Admin;
use sfvault::vault::fields::{APP_LABEL, APP_NAME};
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
    let started = Instant::now();
    let mut progress = |line: &str| ctx.note(&format!("sfvault: {line}"));
    let org = access::collect(&admin, &mut progress)?;
    let elapsed = started.elapsed();
    // The vault's entries of this org: those under the admin entry's ORG.
    let prefix = format!("{}/", login.name.org());
    let entries: BTreeMap<_, _> = session
        .entries()?
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .collect();
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
    if org.counted_oauth_tokens != org.oauth_tokens.len() as u64 {
        ctx.note(&format!(
            "sfvault: warning: {} OauthToken rows were counted and {} read: tokens came or went meanwhile",
            org.counted_oauth_tokens,
            org.oauth_tokens.len()
        ));
    }
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

pub fn revoke(ctx: &Context, args: RevokeArgs, admin_arg: &str) -> Result<()> {
    let mut session = ctx.session()?;
    let login = super::admin::login(ctx, &mut session, admin_arg)?;
    let admin_fields = session.entry(&login.name, false)?.fields;
    let admin_label = [APP_LABEL, APP_NAME]
        .iter()
        .find_map(|f| admin_fields.get(f).map(|v| v.value.expose().to_lowercase()));
    let is_admin_user = |user: &str| login.identity.iter().any(|i| i == user);
    let http = Http::new();
    let admin = Admin::new(&http, &login.instance_url, login.token.duplicate())?;
    let refuse_own = || {
        Error::Usage(format!(
            "that would revoke the admin session's own token ({} at Salesforce): revoke it in Setup, or \
             name another user with --user",
            login.name
        ))
    };
    if let Some(id) = &args.token {
        let parts: Vec<&str> = id.split('/').collect();
        let [app, user, token] = parts[..] else {
            return Err(Error::Usage(format!(
                "--token takes APP_ID/USER_ID/TOKEN_ID, as `audit --at-salesforce --json` names a token (token_id), not {}",
                sfvault::quote::quoted(id)
            )));
        };
        let admin_app = admin
            .consumers(app)?
            .is_some_and(|c| c.iter().any(|c| Some(&c.key) == login.key.as_ref()));
        if admin_app && is_admin_user(user) {
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
        let consumers = admin
            .consumers(app)?
            .ok_or_else(|| Error::failed(format!("the org has no External Client App {app}")))?;
        let admin_app = consumers.iter().any(|c| Some(&c.key) == login.key.as_ref());
        let user = args.user.as_deref();
        if admin_app && user.is_none_or(is_admin_user) {
            return Err(refuse_own());
        }
        let what = match user {
            Some(u) => format!(
                "{} token(s) of user {u} for app {app}",
                admin.usage_tokens(app, u)?.len()
            ),
            None => format!(
                "every token of app {app} ({} user(s))",
                admin.usage_users(app)?.unwrap_or_default().len()
            ),
        };
        if !prompt::confirm_unless_yes(args.yes, "revoking tokens", &format!("Revoke {what}?"))? {
            return Err(Error::Usage("not revoked".into()));
        }
        let done = admin.revoke_usage(app, user, None)?;
        return report(ctx, usize::from(done), 0, done);
    }
    // A classic connected app, by its name: each token revoked with its DeleteToken.
    let label = app.to_lowercase();
    let rows = match &args.user {
        Some(u) => admin.oauth_tokens(Some(u))?,
        None => admin.all_oauth_tokens()?.0,
    };
    let own_app_unknown_or_this = admin_label.as_ref().is_none_or(|l| *l == label);
    let (mine, theirs): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .filter(|r| r.app_name.to_lowercase() == label)
        .partition(|r| own_app_unknown_or_this && is_admin_user(&r.user_id));
    if theirs.is_empty() {
        if !mine.is_empty() {
            return Err(refuse_own());
        }
        return Err(Error::NotFound {
            missing: sfvault::error::Missing::Entry {
                entry: app.to_owned(),
            },
            message: format!(
                "no OAuth token of a connected app named {}",
                sfvault::quote::quoted(app)
            ),
        });
    }
    if !mine.is_empty() {
        ctx.note(&format!(
            "sfvault: leaving {} token(s) of the admin's own user alone (the admin session may be one of them)",
            mine.len()
        ));
    }
    if !prompt::confirm_unless_yes(
        args.yes,
        "revoking tokens",
        &format!("Revoke {} token(s) of connected app {app}?", theirs.len()),
    )? {
        return Err(Error::Usage("not revoked".into()));
    }
    let mut revoked = 0;
    for row in &theirs {
        oauth::revoke(&http, &login.instance_url, &row.delete_token)?;
        revoked += 1;
    }
    report(ctx, revoked, mine.len(), true)
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
