//! Team vaults: `recipient add`, `recipient rm`, `recipient list`. Each changes who can open
//! the vault by writing new key slots (src/vault/slots.rs); a removal also draws a new data key.

use serde_json::{Value, json};
use sfvault::secret::SecretString;
use sfvault::vault::VaultKey;
use sfvault::vault::format::{self, Credential};
use sfvault::vault::recipients::{self, ParsedKey, Recipient};
use sfvault::vault::store::OpenVault;
use sfvault::{Error, Result};

use super::Context;
use super::args::{RecipientAddArgs, RecipientCommand, RecipientRmArgs};
use super::output::{print, print_json, table};
use super::prompt;

/// `recipient add|rm|list`.
pub fn recipient(ctx: &Context, command: RecipientCommand) -> Result<()> {
    match command {
        RecipientCommand::Add(a) => add(ctx, a),
        RecipientCommand::Rm(a) => rm(ctx, a),
        RecipientCommand::List => list(ctx),
    }
}

/// The keys named by `arg`: a key itself, or a file of keys (a `.pub` file, a recipients file)
/// or an age identity file, whose public keys are taken.
fn keys_of(arg: &str) -> Result<Vec<ParsedKey>> {
    let path = std::path::Path::new(arg);
    let looks_like_key = arg.starts_with("age1") || arg.starts_with("ssh-");
    if looks_like_key || !path.exists() {
        return recipients::parse_key(arg)
            .map(|k| vec![k])
            .map_err(|e| Error::Usage(format!("{e} (or name a file that holds the key)")));
    }
    let text = sfvault::vault::store::read_foreign(path)?;
    let from_identities = recipients::public_keys_of_age_identities(&text);
    let keys = if from_identities.is_empty() {
        recipients::read_key_lines(&text[..])
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
    } else {
        from_identities
            .iter()
            .map(|k| recipients::parse_key(k))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::Usage)?
    };
    if keys.is_empty() {
        return Err(Error::Usage(format!(
            "{} holds no public key",
            path.display()
        )));
    }
    Ok(keys)
}

/// The recipients named by `init --recipient` arguments: each a key or a file of keys, named
/// by its SSH comment or its kind; names and keys unique.
pub fn recipients_of(args: &[String]) -> Result<Vec<Recipient>> {
    let mut list: Vec<Recipient> = Vec::new();
    for arg in args {
        for key in keys_of(arg)? {
            let mut name = recipients::default_name(&key);
            if list.iter().any(|r| r.key == key.key) {
                continue;
            }
            let base = name.clone();
            let mut n = 2;
            while list.iter().any(|r| r.name == name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            recipients::check_name(&name).map_err(Error::Usage)?;
            list.push(Recipient { name, key: key.key });
        }
    }
    if list.len() > recipients::MAX_RECIPIENTS {
        return Err(Error::Usage(format!(
            "a vault has at most {} recipients",
            recipients::MAX_RECIPIENTS
        )));
    }
    Ok(list)
}

fn add(ctx: &Context, args: RecipientAddArgs) -> Result<()> {
    let keys = keys_of(&args.key)?;
    if keys.len() > 1 && args.name.is_some() {
        return Err(Error::Usage(format!(
            "--name names one key, and {} holds {}: add them one by one",
            args.key,
            keys.len()
        )));
    }
    let mut vault = ctx.open()?;
    let mut list = vault.key().slots().recipients().to_vec();
    let mut added = Vec::new();
    for key in &keys {
        let name = match &args.name {
            Some(n) => n.clone(),
            None => recipients::default_name(key),
        };
        recipients::check_name(&name).map_err(Error::Usage)?;
        if let Some(same) = list.iter().find(|r| r.key == key.key) {
            return Err(Error::Usage(format!(
                "that key is already a recipient, named {}",
                same.name
            )));
        }
        if list.iter().any(|r| r.name == name) {
            return Err(Error::Usage(format!(
                "a recipient is already named {name}; pick another with --name"
            )));
        }
        list.push(Recipient {
            name: name.clone(),
            key: key.key.clone(),
        });
        added.push(json!({"name": name, "kind": key.kind.to_string(), "key": key.key}));
    }
    if list.len() > recipients::MAX_RECIPIENTS {
        return Err(Error::Usage(format!(
            "a vault has at most {} recipients",
            recipients::MAX_RECIPIENTS
        )));
    }
    let count = list.len();
    let new_key = vault.key().with_recipients(list).map_err(Error::failed)?;
    let was_team = vault.data.team.is_some();
    vault.rekey(new_key)?;
    let names: Vec<&str> = added.iter().filter_map(|a| a["name"].as_str()).collect();
    let mut message = format!(
        "Added {} as recipient{} of {} ({count} in all): they unlock it with \
         `sfvault --identity FILE` (their private key).",
        names.join(", "),
        if names.len() == 1 { "" } else { "s" },
        ctx.store.path().display()
    );
    if !was_team {
        message.push_str(
            " The vault is now a team vault (format version 4): sfvault releases before it \
             cannot open it.",
        );
    }
    ctx.done(
        &message,
        json!({"vault": ctx.store.path().display().to_string(), "added": added, "recipients": count}),
    )
}

fn rm(ctx: &Context, args: RecipientRmArgs) -> Result<()> {
    let (mut vault, typed) = open_keeping_passphrase(ctx)?;
    let list = vault.key().slots().recipients().to_vec();
    if !list.iter().any(|r| r.name == args.name) {
        return Err(Error::NotFound {
            missing: sfvault::error::Missing::Recipient {
                name: args.name.clone(),
            },
            message: format!(
                "no recipient named {} (`sfvault recipient list` shows them)",
                args.name
            ),
        });
    }
    let remaining: Vec<Recipient> = list.into_iter().filter(|r| r.name != args.name).collect();
    let has_passphrase = vault.key().passphrase_slot().is_some();
    if remaining.is_empty() && !has_passphrase {
        return Err(Error::Usage(format!(
            "{} is the last way to open this vault (it has no passphrase): add another \
             recipient first, or a passphrase with `sfvault passwd`",
            args.name
        )));
    }
    let question = format!(
        "Stop {} from opening later versions of the vault (a new data key)? Copies made \
         before stay readable to them.",
        args.name
    );
    if !prompt::confirm_unless_yes(args.yes, &format!("removing {}", args.name), &question)? {
        return ctx.done(
            "Nothing changed.",
            json!({"removed": Value::Null, "recipients": remaining.len() + 1}),
        );
    }
    let passphrase = if has_passphrase {
        Some(match typed {
            Some(p) => p,
            None => passphrase_of(ctx, &vault)?,
        })
    } else {
        None
    };
    let kdf = vault.key().slots().kdf_or_default();
    let count = remaining.len();
    let new_key = VaultKey::rekeyed(passphrase.as_ref().map(|p| (p, kdf)), remaining)
        .map_err(Error::failed)?;
    vault.rekey(new_key)?;
    ctx.done(
        &format!(
            "Removed {} ({count} recipient{} left); the vault has a new data key, so nothing \
             saved from now on opens with their key. Copies made before (git history, \
             backups, {}) still do: rotate at Salesforce the secrets they could read \
             (`sfvault rotate ORG/APP consumer --at-salesforce --admin ADMIN_ENTRY` for an External \
             Client App, `sfvault rotate ORG/APP consumer_secret` after a rotation in Setup, \
             `sfvault rotate ORG/APP private_key --at-salesforce --admin ADMIN_ENTRY`).",
            args.name,
            if count == 1 { "" } else { "s" },
            ctx.store.backup_path().display()
        ),
        json!({"vault": ctx.store.path().display().to_string(), "removed": args.name, "recipients": count, "new_data_key": true}),
    )
}

/// Open the vault and keep the passphrase it was opened with (a new passphrase slot needs
/// it, and `--passphrase-fd` can be read only once); by identity, no passphrase is kept.
fn open_keeping_passphrase(ctx: &Context) -> Result<(OpenVault, Option<SecretString>)> {
    let header = format::parse_header(&ctx.store.read_bytes()?)
        .map_err(|e| e.for_file(ctx.store.path(), None))?;
    if ctx.identity.is_some() || header.slots.passphrase.is_none() {
        return Ok((ctx.open()?, None));
    }
    let pass = prompt::existing_passphrase(ctx.passphrase_fd, ctx.store.path())?;
    let vault = ctx.store.open(&pass)?;
    Ok((vault, Some(pass)))
}

/// The vault's passphrase, asked for and checked against its slot (the vault was opened by
/// identity, and its new passphrase slot needs it).
fn passphrase_of(ctx: &Context, vault: &OpenVault) -> Result<SecretString> {
    ctx.note("The vault also has a passphrase; its slot is rewritten for the new data key.");
    let pass = prompt::existing_passphrase(ctx.passphrase_fd, ctx.store.path())?;
    match vault
        .key()
        .slots()
        .unlock(&Credential::Passphrase(pass.duplicate()))
    {
        Ok(k) if k.data_key().expose() == vault.key().data_key().expose() => Ok(pass),
        _ => Err(Error::WrongPassphrase {
            path: ctx.store.path().to_path_buf(),
            backup: None,
        }),
    }
}

/// `recipient list`: from the file's header, without unlocking. The list is authenticated
/// with the rest of the header when the vault is opened: an altered list makes it fail.
fn list(ctx: &Context) -> Result<()> {
    let bytes = ctx.store.read_bytes()?;
    let header = format::parse_header(&bytes).map_err(|e| e.for_file(ctx.store.path(), None))?;
    let rows: Vec<(String, String, String)> = header
        .slots
        .recipients()
        .iter()
        .map(|r| {
            let kind = recipients::parse_key(&r.key)
                .map(|p| p.kind.to_string())
                .unwrap_or_else(|_| "unknown".into());
            (r.name.clone(), kind, r.key.clone())
        })
        .collect();
    let passphrase = header.slots.passphrase.is_some();
    if ctx.json {
        return print_json(json!({
            "vault": ctx.store.path().display().to_string(),
            "passphrase": passphrase,
            "recipients": rows.iter().map(|(n, k, key)| json!({"name": n, "kind": k, "key": key})).collect::<Vec<_>>(),
        }));
    }
    if rows.is_empty() {
        ctx.note(&format!(
            "{} has no recipients: only its passphrase opens it (`sfvault recipient add KEY`).",
            ctx.store.path().display()
        ));
        return Ok(());
    }
    let table_rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(n, k, key)| vec![n, k, short_key(&key)])
        .collect();
    print(&table(&["NAME", "KIND", "KEY"], &table_rows))?;
    ctx.note(if passphrase {
        "The passphrase opens it too."
    } else {
        "No passphrase: only these keys open it."
    });
    Ok(())
}

/// A key short enough for a table row: age keys whole, SSH keys' type and first characters.
fn short_key(key: &str) -> String {
    if key.len() <= 64 {
        return key.to_owned();
    }
    format!("{}…{}", &key[..40], &key[key.len() - 12..])
}
