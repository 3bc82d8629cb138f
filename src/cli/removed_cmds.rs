//! Removed entries: what `rm` keeps for a while, `undelete`, `list --removed`, `rm --purge` and
//! the `removed-days` setting.

use serde_json::{Value, json};
use sfvault::timefmt::{age, rfc3339};
use sfvault::vault::Change;
use sfvault::vault::model::{self, MAX_REMOVED_DAYS, RemovedEntry};
use sfvault::vault::name::EntryName;
use sfvault::{Error, Result};

use super::Context;
use super::args::{ConfigArgs, UndeleteArgs};
use super::entries::matches_pattern;
use super::output::{print, print_json, table};
use super::prompt;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// When a copy removed at `removed_at` stops being kept, with `days` of retention.
fn kept_until(removed_at: model::Timestamp, days: u32) -> model::Timestamp {
    removed_at.saturating_add(i64::from(days) * DAY)
}

/// `list --removed [PATTERN]`: what `undelete` can bring back, most recent removal first under
/// each address; dates, field names and the flow, never a value.
pub fn list(ctx: &Context, pattern: Option<&str>) -> Result<()> {
    let (days, removed) = ctx.session()?.removed()?;
    let now = model::now();
    let mut copies: Vec<(EntryName, &RemovedEntry)> = Vec::new();
    for (key, list) in &removed {
        if pattern.is_some_and(|p| !matches_pattern(p, key)) {
            continue;
        }
        let Ok(name) = EntryName::parse(key) else {
            continue;
        };
        copies.extend(list.iter().rev().map(|r| (name.clone(), r)));
    }
    let flow = |r: &RemovedEntry| {
        r.entry
            .fields
            .get("flow")
            .map(|f| f.value.expose().to_owned())
    };
    if ctx.json {
        let items: Vec<Value> = copies
            .iter()
            .map(|(name, r)| {
                json!({
                    "entry": name.to_string(),
                    "org": name.org(),
                    "app": name.app(),
                    "removed_at": rfc3339(r.removed_at),
                    "kept_until": rfc3339(kept_until(r.removed_at, days)),
                    "created_at": rfc3339(r.entry.created_at),
                    "flow": flow(r),
                    "fields": r.entry.fields.keys().collect::<Vec<_>>(),
                })
            })
            .collect();
        return print_json(Value::Array(items));
    }
    if copies.is_empty() {
        ctx.note(&if pattern.is_some() && !removed.is_empty() {
            "No removed entry matches.".to_owned()
        } else if days == 0 {
            "No removed entry is kept (removed-days is 0).".to_owned()
        } else {
            format!("No removed entry is kept (rm keeps them for {days} days).")
        });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = copies
        .iter()
        .map(|(name, r)| {
            vec![
                name.to_string(),
                format!("{} ({} ago)", rfc3339(r.removed_at), age(now, r.removed_at)),
                rfc3339(kept_until(r.removed_at, days)),
                flow(r).unwrap_or_else(|| "-".to_owned()),
                r.entry.fields.len().to_string(),
            ]
        })
        .collect();
    print(&table(
        &["ENTRY", "REMOVED", "KEPT UNTIL", "FLOW", "FIELDS"],
        &rows,
    ))?;
    ctx.note("Bring one back with: sfvault undelete ORG/APP [--as NEW/NAME]");
    Ok(())
}

/// `undelete ORG/APP [--as NEW]`: the most recently removed copy, with its fields and history.
pub fn undelete(ctx: &Context, args: UndeleteArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let target = args.target.as_deref().map(EntryName::parse).transpose()?;
    let mut session = ctx.session()?;
    let (_, removed) = session.removed()?;
    // For the message only; the change itself finds the copy again under the lock.
    let copy = removed.get(&name.to_string()).and_then(|l| l.last());
    session.apply(Change::Undelete {
        entry: name.to_string(),
        target: target.as_ref().map(ToString::to_string),
    })?;
    let shown = match &target {
        Some(t) if *t != name => format!("{name} as {t}"),
        _ => name.to_string(),
    };
    let message = match copy {
        Some(r) => format!(
            "Brought back {shown} (removed {}) with its {} fields and their history.",
            rfc3339(r.removed_at),
            r.entry.fields.len()
        ),
        None => format!("Brought back {shown}."),
    };
    ctx.done(
        &message,
        json!({
            "entry": target.as_ref().unwrap_or(&name).to_string(),
            "from": name.to_string(),
            "removed_at": copy.map(|r| rfc3339(r.removed_at)),
        }),
    )
}

/// `rm --purge ORG/APP`: the entry and every removed copy of it, for good; then the vault is
/// saved once more so that `.bak` (the version before) no longer holds them either.
pub fn purge(ctx: &Context, name: &EntryName, yes: bool) -> Result<()> {
    let mut session = ctx.session()?;
    let live = match session.entry(name, false) {
        Ok(_) => 1,
        Err(e) if e.kind() == sfvault::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let (_, removed) = session.removed()?;
    let kept = removed.get(&name.to_string()).map_or(0, Vec::len);
    if live + kept == 0 {
        return purge_backup_only(ctx, &mut session, name, yes);
    }
    let what = match (live, kept) {
        (1, 0) => format!("{name}"),
        (0, k) => format!("the {k} removed cop{} of {name}", plural_y(k)),
        (_, k) => format!("{name} and its {k} removed cop{}", plural_y(k)),
    };
    let question = format!("Destroy {what} for good (no undelete)?");
    if !prompt::confirm_unless_yes(yes, &format!("purging {name}"), &question)? {
        return ctx.done(
            "Nothing removed.",
            json!({"entry": name.to_string(), "purged": false}),
        );
    }
    session.apply(Change::PurgeEntry {
        entry: name.to_string(),
    })?;
    let bak = ctx.store.backup_path();
    if let Err(e) = session.apply(Change::Rewrite) {
        return Err(Error::failed(format!(
            "{what} was destroyed, but the vault could not be saved again, so {} (the previous \
             version) still holds it: {e}; run `sfvault rm --purge` again or delete that file",
            bak.display()
        )));
    }
    ctx.done(
        &format!(
            "Destroyed {what} for good; {} no longer holds it either. Copies made elsewhere \
             (`sfvault backup`, git, sync tools) still do: if a secret leaked, rotate it at \
             Salesforce.",
            bak.display()
        ),
        json!({"entry": name.to_string(), "purged": true, "live": live == 1, "removed_copies": kept}),
    )
}

/// `rm --purge` of a name that is neither in the vault nor kept as removed: after `rm` with
/// removed-days 0, only `.bak` (the version before) still holds it. Saving the vault again
/// replaces `.bak` with the current version, which costs only the one-step undo it offered.
fn purge_backup_only(
    ctx: &Context,
    session: &mut super::session::Session,
    name: &EntryName,
    yes: bool,
) -> Result<()> {
    let bak = ctx.store.backup_path();
    if !bak.exists() {
        return Err(Error::no_entry(name));
    }
    let question = format!(
        "{name} is not in the vault and no removed copy is kept, but {} (the previous version) \
         may still hold it. Replace it with the current version (the last change can then no \
         longer be undone from it)?",
        bak.display()
    );
    if !prompt::confirm_unless_yes(yes, &format!("purging {name}"), &question)? {
        return ctx.done(
            "Nothing changed.",
            json!({"entry": name.to_string(), "purged": false, "backup_replaced": false}),
        );
    }
    session.apply(Change::Rewrite)?;
    ctx.done(
        &format!(
            "{name} was not in the vault; {} now holds the current version, so no earlier \
             version of it remains there. Copies made elsewhere (`sfvault backup`, git, sync \
             tools) still do: if a secret leaked, rotate it at Salesforce.",
            bak.display()
        ),
        json!({"entry": name.to_string(), "purged": false, "backup_replaced": true}),
    )
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 { "y" } else { "ies" }
}

/// `config removed-days [N]`: show or set how many days `rm` keeps an entry.
pub fn config(ctx: &Context, args: ConfigArgs) -> Result<()> {
    let mut session = ctx.session()?;
    let (current, removed) = session.removed()?;
    let Some(value) = args.value else {
        return if ctx.json {
            print_json(json!({"removed-days": current}))
        } else {
            print(&format!("removed-days {current}\n"))
        };
    };
    let days: u32 = value
        .parse()
        .ok()
        .filter(|d| *d <= MAX_REMOVED_DAYS)
        .ok_or_else(|| {
            Error::Usage(format!(
                "removed-days {value:?}: a number of days 0..={MAX_REMOVED_DAYS} (0: rm keeps nothing)"
            ))
        })?;
    let now = model::now();
    let dropped = removed
        .values()
        .flatten()
        .filter(|r| days == 0 || kept_until(r.removed_at, days) <= now)
        .count();
    if dropped > 0 {
        let what = format!(
            "removed-days {days} deletes {dropped} removed entr{} kept for undelete now",
            if dropped == 1 { "y" } else { "ies" }
        );
        if !prompt::confirm_unless_yes(args.yes, &what, &format!("{what}. Go on?"))? {
            return ctx.done(
                "Nothing changed.",
                json!({"removed-days": current, "changed": false}),
            );
        }
    }
    session.apply(Change::SetRemovedDays(days))?;
    let message = if days == 0 {
        "rm now removes entries for good (nothing is kept for undelete).".to_owned()
    } else {
        format!("rm now keeps removed entries for {days} days.")
    };
    ctx.done(&message, json!({"removed-days": days, "changed": true}))
}
