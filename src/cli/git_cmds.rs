//! A team vault in git: `merge` (git's merge driver: three versions of the vault in, the merged
//! one out) and `git-setup` (registers the driver in a clone).

use std::path::{Path, PathBuf};

use serde_json::json;
use sfvault::secret::SecretString;
use sfvault::vault::crypto::key_link;
use sfvault::vault::format::{self, Credential, VaultKey};
use sfvault::vault::merge::{self, Conflict};
use sfvault::vault::model::{self, VaultData};
use sfvault::vault::recipients::Recipient;
use sfvault::{Error, Result};

use super::Context;
use super::args::MergeArgs;
use super::exit::{self, Failure, Outcome};
use super::output::{print_json, stderr_line};
use super::prompt;

/// One version of the vault, opened.
struct Version {
    data: VaultData,
    key: VaultKey,
    generation: u64,
}

fn open_version(path: &Path, credential: &Credential) -> Result<Version> {
    let bytes = sfvault::vault::store::read_foreign(path)?;
    let header = format::parse_header(&bytes).map_err(|e| e.for_file(path, None))?;
    let (data, key) = format::open_by(&bytes, credential).map_err(|e| e.for_file(path, None))?;
    Ok(Version {
        data,
        key,
        generation: header.generation,
    })
}

/// The credential for the three versions: the identity, else one passphrase (asked once).
fn credential(ctx: &Context, ours: &Path) -> Result<Credential> {
    if let Some(path) = &ctx.identity {
        return Ok(Credential::Identity(super::identity::load(path)?));
    }
    prompt::existing_passphrase(ctx.passphrase_fd, ours)
        .map(Credential::Passphrase)
        .map_err(|e| match e.kind() {
            sfvault::ErrorKind::Locked => Error::locked(
                "sfvault merge (git's merge driver for the vault) has no way to unlock it: set \
                 SFVAULT_IDENTITY_FILE to your private key for git (`SFVAULT_IDENTITY_FILE=~/.ssh/\
                 id_ed25519 git pull`), or give a passphrase source (SFVAULT_PASSPHRASE_FILE); \
                 git shows the vault as conflicted with your version in place until you pull \
                 again",
            ),
            _ => e,
        })
}

/// `merge BASE OURS THEIRS`: exit 0 merged, 1 merged with conflicts to look at (git then
/// shows the file as conflicted, holding the merged result); other codes: nothing written.
pub fn merge(ctx: &Context, args: MergeArgs) -> Outcome {
    let credential = credential(ctx, &args.ours)?;
    let ours = open_version(&args.ours, &credential)?;
    let theirs = open_version(&args.theirs, &credential)?;
    let base_empty = std::fs::metadata(&args.base).map_or(true, |m| m.len() == 0);
    let base = if base_empty {
        None
    } else {
        Some(open_version(&args.base, &credential)?)
    };
    if let (Some(o), Some(t)) = (&ours.data.team, &theirs.data.team)
        && o.vault_id != t.vault_id
    {
        return Err(Error::corrupt(
            &args.theirs,
            "it is another vault than ours (its identity differs): not merged; someone may \
             have replaced the vault in the repository",
        )
        .into());
    }
    let now = model::now();
    let empty = VaultData::default();
    let base_data = base.as_ref().map_or(&empty, |b| &b.data);
    let mut merged = merge::merge(base_data, &ours.data, &theirs.data, now);
    let base_recipients = base
        .as_ref()
        .map_or(&[][..], |b| b.key.slots().recipients());
    let recipients = merge_recipients(
        base_recipients,
        ours.key.slots().recipients(),
        theirs.key.slots().recipients(),
    );
    let passphrase = match &credential {
        Credential::Passphrase(p) => Some(p.duplicate()),
        Credential::Identity(_) => None,
    };
    let key = result_key(
        &ours,
        &theirs,
        recipients,
        passphrase.as_ref(),
        &mut merged.data,
    )?;
    let generation = ours.generation.max(theirs.generation) + 1;
    let bytes = format::seal(&merged.data, &key, generation).map_err(Error::failed)?;
    sfvault::vault::store::write_new_file(&args.ours, &bytes, true)?;
    report(ctx, &merged, &args.ours)
}

/// Recipients after both sides' changes: added on either side kept, removed on either side
/// gone. A name taken by two different keys gets a `-theirs` suffix on their side.
fn merge_recipients(
    base: &[Recipient],
    ours: &[Recipient],
    theirs: &[Recipient],
) -> Vec<Recipient> {
    let in_list = |list: &[Recipient], r: &Recipient| list.iter().any(|x| x.key == r.key);
    let removed = |side: &[Recipient], r: &Recipient| in_list(base, r) && !in_list(side, r);
    let mut out: Vec<Recipient> = Vec::new();
    for r in ours.iter().chain(theirs) {
        if in_list(&out, r) || removed(ours, r) || removed(theirs, r) {
            continue;
        }
        let mut r = r.clone();
        if out.iter().any(|x| x.name == r.name) {
            r.name = format!("{}-theirs", r.name);
        }
        out.push(r);
    }
    out
}

/// The key of the merged file. The same data key on both sides: kept. One side moved to a new
/// data key after the other's (it carries the other key's link): the newer. Both moved
/// independently: a new data key (a passphrase slot then needs the passphrase), linked from
/// both, so every member's machine accepts it.
fn result_key(
    ours: &Version,
    theirs: &Version,
    recipients: Vec<Recipient>,
    passphrase: Option<&SecretString>,
    data: &mut VaultData,
) -> Result<VaultKey> {
    let (ko, kt) = (ours.key.data_key(), theirs.key.data_key());
    let links_of = |v: &Version| {
        v.data
            .team
            .as_ref()
            .map_or(Vec::new(), |t| t.key_links.clone())
    };
    let chosen = if ko.expose() == kt.expose() || links_of(ours).contains(&key_link(kt)) {
        Some(&ours.key)
    } else if links_of(theirs).contains(&key_link(ko)) {
        Some(&theirs.key)
    } else {
        None
    };
    if let Some(key) = chosen {
        return if key.slots().recipients() == recipients.as_slice() {
            Ok(key.clone())
        } else {
            key.with_recipients(recipients).map_err(Error::failed)
        };
    }
    let needs_passphrase =
        ours.key.passphrase_slot().is_some() || theirs.key.passphrase_slot().is_some();
    let slot = match (needs_passphrase, passphrase) {
        (false, _) => None,
        (true, Some(p)) => Some((p, ours.key.slots().kdf_or_default())),
        (true, None) => {
            return Err(Error::locked(
                "both versions moved to a new data key, and the vault has a passphrase: the \
                 merged vault needs a new passphrase slot; run the merge with the passphrase \
                 (a passphrase source instead of --identity)",
            ));
        }
    };
    if let Some(team) = &mut data.team {
        team.push_link(key_link(ko));
        team.push_link(key_link(kt));
    }
    VaultKey::rekeyed(slot, recipients).map_err(Error::failed)
}

fn report(ctx: &Context, merged: &merge::Merged, ours: &Path) -> Outcome {
    if ctx.json {
        let conflicts: Vec<_> = merged
            .conflicts
            .iter()
            .map(|c| match c {
                Conflict::Field { entry, field, kept } => {
                    json!({"entry": entry, "field": field, "kept": kept})
                }
                Conflict::RemovedAndChanged { entry, removed_by } => {
                    json!({"entry": entry, "removed_by": removed_by})
                }
                Conflict::Slice { name, kept } => json!({"slice": name, "kept": kept}),
            })
            .collect();
        print_json(json!({
            "merged": ours.display().to_string(),
            "entries": merged.data.entries.len(),
            "conflicts": conflicts,
            "ignored_older": merged.ignored.iter().map(|i| json!({"entry": i.entry, "field": i.field, "side": i.side})).collect::<Vec<_>>(),
        }))?;
    } else {
        for i in &merged.ignored {
            stderr_line(&format!(
                "sfvault merge: {} {}: {} value is older than the common ancestor's (a file put \
                 back?); not taken",
                i.entry, i.field, i.side
            ));
        }
        for c in &merged.conflicts {
            stderr_line(&match c {
                Conflict::Field { entry, field, kept } => format!(
                    "sfvault merge: CONFLICT {entry} {field}: changed on both sides; kept the \
                     newer ({kept}), the other is its newest past value. To keep the other: \
                     `sfvault {}set {entry} {field} --restore 1`; then `git add` the \
                     vault",
                    ctx.vault_flag()
                ),
                Conflict::RemovedAndChanged { entry, removed_by } => format!(
                    "sfvault merge: CONFLICT {entry}: removed by {removed_by}, changed on the \
                     other side; kept. To remove it: `sfvault {}rm {entry}`; then \
                     `git add` the vault",
                    ctx.vault_flag()
                ),
                Conflict::Slice { name, kept } if *kept == "neither" => format!(
                    "sfvault merge: CONFLICT slice {name}: dropped, another slice writes the \
                     same file; define it again with another file (`sfvault {}slice \
                     add {name} --file …`); then `git add` the vault",
                    ctx.vault_flag()
                ),
                Conflict::Slice { name, kept } => format!(
                    "sfvault merge: CONFLICT slice {name}: its definition changed on both \
                     sides; kept {kept}. Check it with `sfvault {}slice list` (a \
                     recipient dropped on one side may be back) and redefine it with `slice \
                     add {name} --replace`; then `git add` the vault",
                    ctx.vault_flag()
                ),
            });
        }
    }
    if merged.conflicts.is_empty() {
        Ok(())
    } else {
        Err(Failure::Reported(exit::FAILED))
    }
}

/// `git-setup`: the merge driver in this clone's `.git/config`, the vault's line in
/// `.gitattributes`, its companions in `.gitignore`.
pub fn setup(ctx: &Context) -> Result<()> {
    let vault = std::path::absolute(ctx.store.path())
        .map_err(|e| Error::io("cannot resolve", ctx.store.path(), e))?;
    let dir = vault.parent().unwrap_or(Path::new("/")).to_path_buf();
    let top = PathBuf::from(git(&dir, &["rev-parse", "--show-toplevel"])?.trim());
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let name = vault
        .file_name()
        .ok_or_else(|| Error::Usage("--vault names no file".into()))?
        .to_string_lossy()
        .into_owned();
    let rel_dir = dir.strip_prefix(&top).map_err(|_| {
        Error::Usage(format!(
            "{} is not inside the git repository {}",
            vault.display(),
            top.display()
        ))
    })?;
    let rel = |file: &str| {
        let p = rel_dir.join(file);
        format!("/{}", p.to_string_lossy())
    };
    let exe =
        std::env::current_exe().map_err(|e| Error::failed_with("cannot find sfvault itself", e))?;
    let driver = format!(
        "{} --vault %P merge %O %A %B",
        sfvault::quote::shell_word(&exe.to_string_lossy())
    );
    git(
        &top,
        &[
            "config",
            "merge.sfvault.name",
            "sfvault: merge vault versions field by field",
        ],
    )?;
    git(&top, &["config", "merge.sfvault.driver", &driver])?;
    let attributes = format!("{} merge=sfvault -diff", rel(&name));
    let added_attr = add_line(&top.join(".gitattributes"), &attributes)?;
    let mut ignored = Vec::new();
    for pattern in [
        rel(&format!("{name}.bak")),
        rel(&format!("{name}.lock")),
        rel(&format!(".{name}.*.tmp")),
    ] {
        if add_line(&top.join(".gitignore"), &pattern)? {
            ignored.push(pattern);
        }
    }
    ctx.done(
        &format!(
            "git merges {} field by field in this clone now (merge driver in .git/config). \
             Commit .gitattributes and .gitignore{}; each teammate runs `sfvault {}\
             git-setup` once in their clone, and gives merges their key in the environment \
             (SFVAULT_IDENTITY_FILE).",
            rel(&name),
            if added_attr || !ignored.is_empty() { " (changed)" } else { " (already set)" },
            ctx.vault_flag()
        ),
        json!({"repository": top.display().to_string(), "vault": rel(&name), "driver": driver, "gitattributes": attributes, "gitignore_added": ignored}),
    )
}

/// Run git in `dir`; its stdout, or its error.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| Error::failed_with("cannot run git", e))?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Append `line` to the file at `path` unless it is there; whether it was added.
fn add_line(path: &Path, line: &str) -> Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    if text.lines().any(|l| l.trim() == line) {
        return Ok(false);
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(line);
    new.push('\n');
    std::fs::write(path, new).map_err(|e| Error::io("cannot write", path, e))?;
    Ok(true)
}
