//! Keeping credentials fresh and safe: rotate, history, audit, backup, restore, config.

use serde_json::{Value, json};
use sfvault::audit::{self, VaultFacts};
use sfvault::rotation::past_state;
use sfvault::timefmt::{age, rfc3339};
use sfvault::unlock::Source;
use sfvault::vault::KdfParams;
use sfvault::vault::fields;
use sfvault::vault::format::{self, Credential, VaultKey};
use sfvault::vault::model::{self, SetOutcome};
use sfvault::vault::name::{EntryName, check_field_name};
use sfvault::vault::store::{read_foreign, write_new_file};
use sfvault::vault::{Change, ChangeOutcome, NewField};
use sfvault::{Error, Result};
use zeroize::Zeroizing;

use super::Context;
use super::args::{AuditArgs, BackupArgs, ConfigArgs, HistoryArgs, RestoreArgs, RotateArgs};
use super::exit::{self, Failure, Outcome};
use super::output::{print, print_json, table};
use super::prompt;

/// Where Salesforce regenerates each rotatable credential.
fn where_to_rotate(field: &str) -> Option<&'static str> {
    match field {
        "consumer_secret" => Some(
            "Now make Salesforce match: Setup → App Manager → (the app) ▸ View → Manage Consumer Details → \
             Generate. Until then the old secret (kept in history) is the one that works. For an External \
             Client App sfvault can regenerate key and secret at Salesforce itself, with an overlap window: \
             sfvault rotate ORG/APP consumer --at-salesforce --admin ADMIN.",
        ),
        "password" => Some(
            "Change the password in Salesforce too (Setup → Users, or the user's own settings).",
        ),
        "security_token" => {
            Some("Reset it in Salesforce: (user) → Settings → Reset My Security Token.")
        }
        _ => None,
    }
}

pub fn rotate(ctx: &Context, args: RotateArgs) -> Outcome {
    let name = EntryName::parse(&args.entry)?;
    check_field_name(&args.field)?;
    if super::rotate_cmds::wanted(&args) {
        return super::rotate_cmds::rotate(ctx, args, &name);
    }
    rotate_in_vault(ctx, args, name).map_err(Failure::from)
}

/// `rotate ORG/APP FIELD` without Salesforce: a new value from the prompt or stdin (or a new key).
fn rotate_in_vault(ctx: &Context, args: RotateArgs, name: EntryName) -> Result<()> {
    if args.admin.is_some() {
        return Err(Error::Usage(
            "--admin goes with --at-salesforce, --resume, --abort or --retire".into(),
        ));
    }
    if !fields::is_user_secret(&args.field) {
        return Err(Error::Usage(format!(
            "rotate replaces secrets ({}); use `sfvault set` for {}",
            fields::user_secrets().collect::<Vec<_>>().join(", "),
            args.field
        )));
    }
    let mut session = ctx.session()?;
    session.field(&name, &args.field)?; // must exist: rotation replaces something
    if args.field == "private_key" {
        let certificate =
            super::oauth_cmds::new_key_pair(&mut session, &name, args.bits, args.days)?;
        return super::oauth_cmds::print_certificate(
            ctx,
            &name,
            &certificate,
            args.bits,
            &format!(
                "New {}-bit key for {name}; the old one is in history. Upload the certificate \
                 above to the connected app (Edit → Use digital signatures) before the next login.",
                args.bits
            ),
        );
    }
    let value = prompt::field_value(&args.field, None, true, &name.to_string())?;
    let outcome = session.apply(Change::SetField {
        entry: name.to_string(),
        field: NewField {
            name: args.field.clone(),
            value,
            secret: true,
        },
    })?;
    if outcome == ChangeOutcome::Field(SetOutcome::Unchanged) {
        return Err(Error::Usage(format!(
            "the new {} is the same as the current one",
            args.field
        )));
    }
    let mut message = format!(
        "{name} {} rotated; the old value is kept in history.",
        args.field
    );
    if let Some(hint) = where_to_rotate(&args.field) {
        message.push('\n');
        message.push_str(hint);
    }
    ctx.done(
        &message,
        json!({"entry": name.to_string(), "field": args.field, "rotated": true}),
    )
}

pub fn history(ctx: &Context, args: HistoryArgs) -> Result<()> {
    let name = EntryName::parse(&args.entry)?;
    if let Some(f) = &args.field {
        check_field_name(f)?;
    }
    let entry = ctx.session()?.entry_with_history(&name, args.reveal)?;
    if let Some(f) = &args.field
        && !entry.fields.contains_key(f)
    {
        return Err(Error::no_field(
            &name,
            f,
            format!("{name} has no field {f}"),
        ));
    }
    let now = model::now();
    // Values (secrets with --reveal) go straight into what is printed: JSON values wiped by
    // print_json, or zeroizing table cells; json! is given no variable holding one (it copies).
    let mut rows: Vec<Vec<Zeroizing<String>>> = Vec::new();
    let mut items = Vec::new();
    for (field, f) in entry
        .fields
        .iter()
        .filter(|(k, _)| args.field.as_ref().is_none_or(|f| f == *k))
    {
        let visible = !f.secret || args.reveal;
        let mut versions = vec![(0, &f.value, f.changed_at, None)];
        for (i, past) in f.history.iter().rev().enumerate() {
            versions.push((i + 1, &past.value, past.changed_at, Some(past.replaced_at)));
        }
        for (index, value, changed_at, replaced_at) in versions {
            if ctx.json {
                let mut item = json!({"field": field, "index": index, "current": index == 0,
                                      "changed_at": rfc3339(changed_at)});
                match replaced_at {
                    None => item["used_at"] = json!(f.used_at.map(rfc3339)),
                    Some(t) => {
                        item["replaced_at"] = json!(rfc3339(t));
                        if let Some(state) = past_state(&entry, field, t, now) {
                            item["at_salesforce"] = json!(state);
                        }
                    }
                }
                item["value"] = if visible {
                    Value::String(value.expose().to_owned())
                } else {
                    Value::Null
                };
                items.push(item);
                continue;
            }
            let replaced = replaced_at.map_or("-".to_owned(), |t| {
                let at_salesforce = past_state(&entry, field, t, now)
                    .map(|s| format!("; at Salesforce: {s}"))
                    .unwrap_or_default();
                format!("{} ({} ago{at_salesforce})", rfc3339(t), age(now, t))
            });
            // A certificate or key is summarised: its lines and a fingerprint tell versions
            // apart without flooding the table (the whole value: --json, or `get`).
            let shown = if !visible {
                "********".to_owned()
            } else if value.expose().contains('\n') {
                format!(
                    "({} lines, sha256 {}…)",
                    value.expose().lines().count(),
                    sfvault::rotation::fingerprint(value)
                )
            } else {
                value.expose().to_owned()
            };
            let index = if index == 0 {
                "current".to_owned()
            } else {
                index.to_string()
            };
            rows.push(
                [field.clone(), index, rfc3339(changed_at), replaced, shown]
                    .map(Zeroizing::new)
                    .into(),
            );
        }
    }
    if ctx.json {
        return print_json(Value::Array(items));
    }
    print(&table(&["FIELD", "#", "SET", "REPLACED", "VALUE"], &rows))?;
    ctx.note(&format!(
        "Bring back a past value with: sfvault set {name} FIELD --restore N"
    ));
    Ok(())
}

pub fn audit(ctx: &Context, args: AuditArgs) -> Outcome {
    if let Some(admin) = &args.at_salesforce {
        return super::access_cmds::audit(ctx, &args, admin);
    }
    let bytes = ctx.store.read_bytes()?;
    let header = format::parse_header(&bytes).map_err(|e| e.for_file(ctx.store.path(), None))?;
    let mut session = ctx.session()?;
    let mut entries = session.entries()?;
    // Key sizes need the keys themselves.
    for (name, entry) in entries.iter_mut() {
        if entry.fields.contains_key("private_key") {
            *entry = session.entry(&EntryName::parse(name)?, true)?;
        }
    }
    let findings = audit::audit(
        &entries,
        &VaultFacts {
            kdf: header.slots.kdf_or_default(),
        },
        args.max_age.as_secs() as i64,
        model::now(),
    );
    if ctx.json {
        print_json(json!({"entries": entries.len(), "findings": findings}))?;
    } else if findings.is_empty() {
        ctx.note(&format!(
            "{} entries audited: nothing found.",
            entries.len()
        ));
    } else {
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                vec![
                    f.entry.clone(),
                    f.field.clone().unwrap_or_default(),
                    f.kind.to_owned(),
                    f.detail.clone(),
                ]
            })
            .collect();
        print(&table(&["ENTRY", "FIELD", "PROBLEM", "DETAIL"], &rows))?;
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Failure::Reported(exit::FAILED))
    }
}

pub fn backup(ctx: &Context, args: BackupArgs) -> Result<()> {
    let dest = backup_destination(ctx, &args.path, model::now())?;
    match args.backup_passphrase_fd {
        None => ctx.store.backup_to(&dest, args.force)?,
        Some(fd) => {
            let vault = ctx.open()?;
            let pass = Source::Fd(fd).read()?;
            // A new data key: the copy must not share a key with the vault.
            let key = VaultKey::generate(&pass, vault.key().slots().kdf_or_default())
                .map_err(Error::failed)?;
            let bytes =
                format::seal(&vault.data, &key, vault.generation()).map_err(Error::failed)?;
            // Under the vault's lock like every other write: a save's clean-up of stale temp
            // files must not meet this one (a copy may be written beside the vault).
            let _guard = ctx.store.lock()?;
            write_new_file(&dest, &bytes, args.force)?;
        }
    }
    let done = format!(
        "Backed up {} to {} (encrypted).",
        ctx.store.path().display(),
        dest.display()
    );
    let dir = sfvault::fs_safety::dir_of(&dest);
    let private = sfvault::fs_safety::check_vault_dir(&dir).is_ok();
    let message = if private {
        format!(
            "{done} Check it with: sfvault --vault {} list",
            dest.display()
        )
    } else {
        // Still written (it is encrypted and authenticated), but others could delete or
        // replace it, and sfvault will not open a vault there; `restore` still reads it.
        format!(
            "{done}\nsfvault: warning: {} is not a private directory (another user owns it or \
             may write to it): the copy could be deleted or replaced there, and sfvault will not \
             open it as a vault. `sfvault restore {}` still reads it back.",
            dir.display(),
            dest.display()
        )
    };
    ctx.done(
        &message,
        json!({
            "vault": ctx.store.path().display().to_string(),
            "backup": dest.display().to_string(),
            "private_dir": private,
        }),
    )
}

/// Where `backup PATH` writes. A directory (existing, or named with a trailing `/`) gets
/// `DIR/<vault file stem>-<UTC time>.sfv` inside it, as `cp FILE DIR/` would put the file
/// there, with a name that keeps earlier backups in the same directory (and no `:`, which
/// FAT-formatted USB sticks refuse). A missing directory is a usage error naming it.
fn backup_destination(
    ctx: &Context,
    path: &std::path::Path,
    now: model::Timestamp,
) -> Result<std::path::PathBuf> {
    let names_dir = path.as_os_str().as_encoded_bytes().ends_with(b"/");
    if path.is_dir() {
        let stem = ctx
            .store
            .path()
            .file_stem()
            .map_or_else(|| "vault".into(), |s| s.to_string_lossy().into_owned());
        let stamp: String = rfc3339(now)
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        return Ok(path.join(format!("{stem}-{stamp}.sfv")));
    }
    let dir = if names_dir {
        path.to_path_buf()
    } else {
        sfvault::fs_safety::dir_of(path)
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "directory {} does not exist; create it first (mkdir -p {}) or pick another path",
            dir.display(),
            shell_word(&dir)
        )));
    }
    Ok(path.to_path_buf())
}

/// A path as one shell word, for commands printed to be copied.
fn shell_word(path: &std::path::Path) -> String {
    sfvault::quote::shell_word(&path.to_string_lossy())
}

pub fn restore(ctx: &Context, args: RestoreArgs) -> Result<()> {
    let bytes = read_foreign(&args.path)?;
    // A header that does not parse is corrupt whatever the reason.
    let header = format::parse_header(&bytes).map_err(|e| e.for_file(&args.path, None))?;
    let key = match &ctx.identity {
        // A team vault's copy, opened by a member's key (no KDF to pay for).
        Some(identity) => header
            .slots
            .unlock(&Credential::Identity(super::identity::load(identity)?))
            .map_err(|e| e.for_file(&args.path, None))?,
        None => {
            confirm_kdf_cost(ctx, &args, &header.slots.kdf_or_default())?;
            prompt::with_passphrase(ctx.passphrase_fd, &args.path, |passphrase| {
                header
                    .slots
                    .unlock(&Credential::Passphrase(passphrase.duplicate()))
                    .map_err(|e| e.for_file(&args.path, None))
            })?
        }
    };
    let data = format::open_with_key(&bytes, &key).map_err(|e| e.for_file(&args.path, None))?;
    let generation = ctx.store.restore(&data, &key, header.generation)?;
    ctx.done(
        &format!(
            "Restored {} entries from {} into {} (now its newest version, generation \
             {generation}); the replaced file is {}.",
            data.entries.len(),
            args.path.display(),
            ctx.store.path().display(),
            ctx.store.backup_path().display()
        ),
        json!({
            "vault": ctx.store.path().display().to_string(),
            "from": args.path.display().to_string(),
            "entries": data.entries.len(),
            "generation": generation,
            "replaced_file": ctx.store.backup_path().display().to_string(),
        }),
    )
}

/// A file from elsewhere can ask for up to 1 GiB and 10 passes of Argon2id, paid before its
/// passphrase can be checked: when it asks for more than the current vault (or the defaults,
/// without one), say so and ask, or require `--yes`.
fn confirm_kdf_cost(ctx: &Context, args: &RestoreArgs, asked: &KdfParams) -> Result<()> {
    let (reference, whose) = match ctx
        .store
        .read_bytes()
        .ok()
        .and_then(|b| format::parse_header(&b).ok())
    {
        Some(h) => (h.slots.kdf_or_default(), "the current vault's"),
        None => (KdfParams::DEFAULT, "the defaults'"),
    };
    if !asked.costlier_than(&reference) {
        return Ok(());
    }
    let what = format!(
        "{} asks for more key-derivation work ({}) than {} ({}): opening it takes that memory \
         and time before its passphrase can be checked",
        args.path.display(),
        asked.describe(),
        whose,
        reference.describe()
    );
    if prompt::confirm_unless_yes(args.yes, &what, &format!("{what}. Go on?"))? {
        Ok(())
    } else {
        Err(Error::Usage("nothing was restored".into()))
    }
}

pub fn config(ctx: &Context, args: ConfigArgs) -> Result<()> {
    let mut session = ctx.session()?;
    match (args.key.as_deref(), args.value) {
        (Some("history-limit"), None) => {
            let limit = session.history_limit()?;
            if ctx.json {
                print_json(json!({"history-limit": limit}))
            } else {
                print(&format!("history-limit {limit}\n"))
            }
        }
        (None, _) => {
            let limit = session.history_limit()?;
            let (days, _) = session.removed()?;
            if ctx.json {
                print_json(json!({"history-limit": limit, "removed-days": days}))
            } else {
                print(&format!("history-limit {limit}\nremoved-days {days}\n"))
            }
        }
        (Some("history-limit"), Some(v)) => {
            let n: u32 = v
                .parse()
                .map_err(|_| Error::Usage(format!("history-limit {v:?}: a number 0..=100")))?;
            let current = session.history_limit()?;
            let what = format!(
                "lowering history-limit from {current} to {n} deletes every field's past values beyond the newest {n}"
            );
            if n < current
                && !prompt::confirm_unless_yes(args.yes, &what, &format!("{what}. Go on?"))?
            {
                return ctx.done(
                    "Nothing changed.",
                    json!({"history-limit": current, "changed": false}),
                );
            }
            session.apply(Change::SetHistoryLimit(n))?;
            ctx.done(
                &format!("Each field now keeps its last {n} past values."),
                json!({"history-limit": n, "changed": true}),
            )
        }
        (Some(other), _) => Err(Error::Usage(format!(
            "unknown setting {other:?}; settings: history-limit, removed-days"
        ))),
    }
}
