//! The everyday entry commands: add, set, get, show, list, rm, mv.

use serde_json::{Map, Value, json};
use sfvault::secret::SecretString;
use sfvault::timefmt::{age, age_days, rfc3339};
use sfvault::vault::fields::{self, DEFAULT_LOGIN_URL};
use sfvault::vault::model::{self, Entry, SetOutcome};
use sfvault::vault::name::{EntryName, check_field_name, quoted};
use sfvault::vault::{Change, ChangeOutcome, NewField};
use sfvault::{Error, Result};
use zeroize::Zeroizing;

use super::Context;
use super::args::{AddArgs, GetArgs, ListArgs, MvArgs, RmArgs, SetArgs, ShowArgs};
use super::output::{print, print_json, table};
use super::prompt;

pub fn add(ctx: &Context, args: AddArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let mut public = Vec::new();
    for (field, value) in [
        ("consumer_key", args.consumer_key),
        ("username", args.username),
        ("login_url", args.login_url),
        ("flow", args.flow.map(|f| f.name().to_owned())),
    ] {
        if let Some(value) = value {
            let value = SecretString::new(value);
            fields::check_value(field, &value)?;
            public.push((field, value));
        }
    }
    let key_pem = args
        .private_key_file
        .as_deref()
        .map(sfvault::handoff::mapping::read_key_file)
        .transpose()?;
    let mut session = ctx.session()?;
    if session.entry(&name, false).is_ok() {
        return Err(Error::failed(format!(
            "{name} already exists; change it with `sfvault set {name} FIELD`"
        )));
    }
    // Before any prompt: the save would refuse a name that differs only by case.
    let key = name.to_string();
    if let Some(twin) = session
        .entries()?
        .into_keys()
        .find(|k| *k != key && k.eq_ignore_ascii_case(&key))
    {
        return Err(Error::Usage(format!(
            "{name} differs only by case from the existing {twin}; use {twin}, or pick a name \
             that differs by more than case"
        )));
    }
    // A flow that never sends a consumer secret (jwt) is not asked for one; one that cannot
    // work without it says so when the answer is empty.
    let flow_reads_secret = args
        .flow
        .is_none_or(|f| f.read_fields().any(|field| field == "consumer_secret"));
    let secret = if args.no_secret {
        None
    } else if !flow_reads_secret {
        let flow = args.flow.map_or("", |f| f.name());
        ctx.note(&format!(
            "The {flow} flow sends no consumer secret, so none was asked for (store one anyway \
             with `sfvault set {name} consumer_secret`)."
        ));
        None
    } else {
        let required_by = args
            .flow
            .filter(|f| f.required_fields().any(|field| field == "consumer_secret"))
            .map(|f| f.name());
        let secret = prompt::consumer_secret(&name.to_string(), required_by)?;
        if secret.is_none() {
            ctx.note(&format!(
                "No consumer secret stored; add one later with `sfvault set {name} consumer_secret`."
            ));
        }
        secret
    };
    let secrets = secret
        .map(|v| ("consumer_secret", v))
        .into_iter()
        .chain(key_pem.map(|v| ("private_key", v)));
    let fields: Vec<NewField> = public
        .into_iter()
        .chain(secrets)
        .map(|(field, value)| NewField {
            name: field.to_owned(),
            value,
            secret: fields::secret_by_default(field),
        })
        .collect();
    let count = fields.len();
    let field_names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    session.apply(Change::AddEntry {
        entry: name.to_string(),
        fields,
    })?;
    let mut message = format!("Added {name} ({count} fields).");
    if let Some(advice) = args
        .private_key_file
        .as_deref()
        .and_then(super::output::shred_advice)
    {
        message.push_str(&format!(
            "\nThe private key is now in the vault; delete the plaintext copy: {advice}"
        ));
    }
    ctx.done(
        &message,
        json!({"entry": name.to_string(), "fields": field_names}),
    )
}

pub fn set(ctx: &Context, args: SetArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    check_field_name(&args.field)?;
    if args.public && !fields::may_be_public(&args.field) {
        return Err(Error::Usage(format!("{} is always secret", args.field)));
    }
    if let Some(value) = args.value.as_deref().filter(|v| *v != "-") {
        // Fail before the KDF on a value that could never be stored.
        fields::check_value(&args.field, &SecretString::new(value.to_owned()))?;
    }
    let mut session = ctx.session()?;
    if let Some(index) = args.restore {
        session.apply(Change::RestoreField {
            entry: name.to_string(),
            field: args.field.clone(),
            index,
        })?;
        return ctx.done(
            &format!(
                "{name} {}: past value {index} restored (the replaced value is kept in history).",
                args.field
            ),
            json!({"entry": name.to_string(), "field": args.field, "restored": index}),
        );
    }
    // The entry must exist (a missing field is fine: set adds it); a field that exists keeps
    // its secrecy unless --public.
    let existing_secret = session
        .entry(&name, false)?
        .fields
        .get(&args.field)
        .map(|f| f.secret);
    let secret = if args.public {
        false
    } else {
        existing_secret.unwrap_or_else(|| fields::secret_by_default(&args.field))
    };
    if secret
        && args.value.as_deref().is_some_and(|v| v != "-")
        && fields::may_be_public(&args.field)
    {
        return Err(Error::Usage(format!(
            "{} is secret and is never taken from the command line (it would stay in shell \
             history and be visible in `ps`): omit the value to be prompted, or pass `-` and \
             pipe it on stdin; if {} is not a secret, add --public to store it as plain text",
            args.field, args.field
        )));
    }
    let value = prompt::field_value(&args.field, args.value, secret, &name.to_string())?;
    let outcome = session.apply(Change::SetField {
        entry: name.to_string(),
        field: NewField {
            name: args.field.clone(),
            value,
            secret,
        },
    })?;
    let outcome = match outcome {
        ChangeOutcome::Field(o) => o,
        ChangeOutcome::Done => SetOutcome::Changed,
    };
    let (what, state) = match outcome {
        SetOutcome::Created => ("set", "created"),
        SetOutcome::Changed => ("changed (the old value is kept in history)", "changed"),
        SetOutcome::Unchanged => ("unchanged (same value)", "unchanged"),
    };
    ctx.done(
        &format!("{name} {}: {what}.", args.field),
        json!({"entry": name.to_string(), "field": args.field, "secret": secret, "outcome": state}),
    )
}

pub fn get(ctx: &Context, args: GetArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    check_field_name(&args.field)?;
    // --clip: find the tool before asking for the passphrase.
    let clip = args.clip.clip.then(super::clipboard::find).transpose()?;
    let mut session = ctx.session()?;
    if fields::from_valid_token(&args.field) {
        // Pseudo-fields: a valid token from the entry's flow, renewed when stale.
        let t = super::oauth_cmds::valid_token(ctx, &mut session, &name, false)?;
        let value = if args.field == fields::ACCESS_TOKEN {
            t.access_token
        } else {
            SecretString::new(t.instance_url)
        };
        return get_output(ctx, clip, &args, &name, &value);
    }
    let field = match session.field(&name, &args.field) {
        // Not stored, but the flows use a default: that is the value in effect.
        Err(e @ Error::NotFound { .. }) if args.field == "login_url" => {
            if session.entry(&name, false).is_err() {
                return Err(e);
            }
            ctx.note(&format!(
                "{name} has no login_url set; flows use the default {DEFAULT_LOGIN_URL}"
            ));
            let default = SecretString::new(DEFAULT_LOGIN_URL.to_owned());
            return get_output(ctx, clip, &args, &name, &default);
        }
        other => other?,
    };
    get_output(ctx, clip, &args, &name, &field.value)
}

/// `get`'s value to the clipboard (`--clip`), else printed.
fn get_output(
    ctx: &Context,
    clip: Option<super::clipboard::Tool>,
    args: &GetArgs,
    name: &EntryName,
    value: &SecretString,
) -> Result<()> {
    match clip {
        Some(tool) => super::clipboard::copy(
            ctx,
            tool,
            &format!("{name} {}", args.field),
            value,
            args.clip.clip_seconds,
        ),
        None => print_value(ctx, name, &args.field, value, args.no_newline),
    }
}

fn print_value(
    ctx: &Context,
    name: &EntryName,
    field: &str,
    value: &SecretString,
    no_newline: bool,
) -> Result<()> {
    if ctx.json {
        return print_json(json!({
            "entry": name.to_string(),
            "field": field,
            "value": value.expose(),
        }));
    }
    let mut text = Zeroizing::new(String::with_capacity(value.len() + 1));
    text.push_str(value.expose());
    if !no_newline {
        text.push('\n');
    }
    print(&text)
}

pub fn show(ctx: &Context, args: ShowArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    let entry = ctx.session()?.entry(&name, args.reveal)?;
    let entry = &entry;
    let now = model::now();
    if ctx.json {
        return print_json(entry_json(&name, entry, now, args.reveal));
    }
    print(&format!(
        "{name}  (created {})\n",
        rfc3339(entry.created_at)
    ))?;
    // Zeroizing cells: with --reveal they hold secrets.
    let rows: Vec<Vec<Zeroizing<String>>> = entry
        .fields
        .iter()
        .map(|(field, f)| {
            let shown = if f.secret && !args.reveal {
                "********".to_owned()
            } else if f.value.expose().contains('\n') {
                format!(
                    "({} lines; `sfvault get {name} {field}`)",
                    f.value.expose().lines().count()
                )
            } else {
                f.value.expose().to_owned()
            };
            let mut notes = format!("changed {} ago", age(now, f.changed_at));
            if !f.history.is_empty() {
                notes.push_str(&format!(", {} past", f.history.len()));
            }
            Vec::from(
                [
                    format!("  {field}"),
                    shown,
                    if f.secret { "yes" } else { "" }.to_owned(),
                    notes,
                ]
                .map(Zeroizing::new),
            )
        })
        .collect();
    print(&table(&["  FIELD", "VALUE", "SECRET", "AGE"], &rows))
}

/// An entry as JSON: every field with its dates; values only for non-secret fields or `reveal`.
fn entry_json(name: &EntryName, entry: &Entry, now: model::Timestamp, reveal: bool) -> Value {
    let mut fields = Map::new();
    for (field, f) in &entry.fields {
        let mut obj = Map::new();
        obj.insert("secret".into(), json!(f.secret));
        if !f.secret || reveal {
            obj.insert("value".into(), json!(f.value.expose()));
        }
        obj.insert("set_at".into(), json!(rfc3339(f.set_at)));
        obj.insert("changed_at".into(), json!(rfc3339(f.changed_at)));
        obj.insert("age_days".into(), json!(age_days(now, f.changed_at)));
        obj.insert("used_at".into(), json!(f.used_at.map(rfc3339)));
        obj.insert("history".into(), json!(f.history.len()));
        fields.insert(field.clone(), Value::Object(obj));
    }
    // Built by moving `fields` in: json!'s `"fields": fields` would copy every (revealed)
    // value into a second tree, and drop the first one unwiped.
    let mut out = Map::new();
    out.insert("entry".into(), json!(name.to_string()));
    out.insert("org".into(), json!(name.org()));
    out.insert("app".into(), json!(name.app()));
    out.insert(
        "flow".into(),
        json!(entry.fields.get("flow").map(|f| f.value.expose())),
    );
    out.insert("created_at".into(), json!(rfc3339(entry.created_at)));
    out.insert("fields".into(), Value::Object(fields));
    Value::Object(out)
}

pub fn list(ctx: &Context, args: ListArgs) -> Result<()> {
    if args.removed {
        return super::removed_cmds::list(ctx, args.pattern.as_deref());
    }
    let entries = ctx.session()?.entries()?;
    let now = model::now();
    let matching: Vec<(EntryName, &Entry)> = entries
        .iter()
        .filter(|(key, _)| {
            args.pattern
                .as_deref()
                .is_none_or(|p| matches_pattern(p, key))
        })
        .filter_map(|(key, e)| EntryName::parse(key).ok().map(|n| (n, e)))
        .collect();
    if ctx.json {
        let items: Vec<Value> = matching
            .iter()
            .map(|(name, entry)| entry_json(name, entry, now, false))
            .collect();
        return print_json(Value::Array(items));
    }
    if matching.is_empty() {
        ctx.note(match &args.pattern {
            Some(_) => "No entry matches.",
            None => "The vault is empty; add an entry with `sfvault add ORG/APP`.",
        });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = matching
        .iter()
        .map(|(name, entry)| {
            let oldest_secret = entry
                .fields
                .values()
                .filter(|f| f.secret)
                .map(|f| f.changed_at)
                .min();
            vec![
                name.to_string(),
                entry
                    .fields
                    .get("flow")
                    .map_or("-".to_owned(), |f| f.value.expose().to_owned()),
                entry.fields.len().to_string(),
                oldest_secret.map_or("-".to_owned(), |t| age(now, t)),
            ]
        })
        .collect();
    print(&table(&["ENTRY", "FLOW", "FIELDS", "OLDEST SECRET"], &rows))
}

/// A glob with `*` and `?` when the pattern has one, else a substring test.
pub(super) fn matches_pattern(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return text.contains(pattern);
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative wildcard match with single backtrack point: linear-ish, no recursion.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

pub fn rm(ctx: &Context, args: RmArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    if args.purge {
        return super::removed_cmds::purge(ctx, &name, args.yes);
    }
    let mut session = ctx.session()?;
    let count = session.entry(&name, false)?.fields.len();
    let (days, _) = session.removed()?;
    let question = format!("Remove {name} and its {count} fields?");
    if !prompt::confirm_unless_yes(args.yes, &format!("removing {name}"), &question)? {
        return ctx.done(
            "Nothing removed.",
            json!({"entry": name.to_string(), "removed": false}),
        );
    }
    session.apply(Change::RemoveEntry {
        entry: name.to_string(),
    })?;
    let message = if days == 0 {
        format!(
            "Removed {name} (removed-days is 0: nothing is kept for undelete; the previous vault \
             version is in {}).",
            ctx.store.backup_path().display()
        )
    } else {
        format!("Removed {name} (kept for {days} days: `sfvault undelete {name}`).")
    };
    ctx.done(
        &message,
        json!({"entry": name.to_string(), "removed": true, "kept_days": days}),
    )
}

pub fn mv(ctx: &Context, args: MvArgs) -> Result<()> {
    let from = EntryName::parse(&args.old)?;
    let to = EntryName::parse(&args.new)?;
    if from == to {
        return Err(Error::Usage(format!(
            "{} and {} are the same entry",
            quoted(&args.old),
            quoted(&args.new)
        )));
    }
    ctx.session()?.apply(Change::RenameEntry {
        from: from.to_string(),
        to: to.to_string(),
    })?;
    ctx.done(
        &format!("Renamed {from} to {to}."),
        json!({"from": from.to_string(), "to": to.to_string()}),
    )
}

#[cfg(test)]
mod tests {
    use super::matches_pattern;

    #[test]
    fn patterns() {
        assert!(matches_pattern("acme", "acme-prod/ci"));
        assert!(matches_pattern("acme-*/ci", "acme-prod/ci"));
        assert!(!matches_pattern("acme-*/ci", "acme-prod/backup"));
        assert!(matches_pattern("*/c?", "x/ci"));
        assert!(!matches_pattern("*/c?", "x/cix"));
        assert!(matches_pattern("*", ""));
    }
}
