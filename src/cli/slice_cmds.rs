//! Slices (src/vault/slice.rs): `slice add`, `slice sync`, `slice list`, `slice rm`. The
//! definitions live in the team vault; each slice file is written under the team vault's lock.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sfvault::error::Missing;
use sfvault::fs_safety::dir_of;
use sfvault::vault::EntryName;
use sfvault::vault::model::{self, TeamState, VaultData};
use sfvault::vault::slice::{self, MAX_SLICE_RECIPIENTS, MAX_SLICES, Published, Slice};
use sfvault::vault::store::{LockGuard, OpenVault, Store};
use sfvault::{Error, Result};

use super::Context;
use super::args::{SliceAddArgs, SliceCommand, SliceRmArgs, SliceSyncArgs};
use super::exit::{self, Failure, Outcome};
use super::output::{print, print_json, stderr_line, table};

/// `slice add|sync|list|rm`.
pub fn slice(ctx: &Context, command: SliceCommand) -> Outcome {
    match command {
        SliceCommand::Add(a) => add(ctx, a).map_err(Failure::from),
        SliceCommand::Sync(a) => sync(ctx, a),
        SliceCommand::List => list(ctx).map_err(Failure::from),
        SliceCommand::Rm(a) => rm(ctx, a).map_err(Failure::from),
    }
}

/// The store of `slice`'s file, beside the team vault.
fn slice_store(ctx: &Context, slice: &Slice) -> Result<Store> {
    Ok(Store::new(
        slice.path_in(&dir_of(ctx.store.path()))?,
        ctx.store.lock_timeout(),
    ))
}

fn no_slice(name: &str) -> Error {
    Error::NotFound {
        missing: Missing::Slice {
            name: name.to_owned(),
        },
        message: format!("no slice named {name} (`sfvault slice list` shows them)"),
    }
}

/// Open the team vault; a slice cannot define slices.
fn open_team(ctx: &Context) -> Result<OpenVault> {
    let vault = ctx.open()?;
    if vault.data.is_slice() {
        return Err(slice::read_only());
    }
    Ok(vault)
}

fn add(ctx: &Context, args: SliceAddArgs) -> Result<()> {
    slice::check_name(&args.name).map_err(Error::Usage)?;
    slice::check_file(&args.file).map_err(Error::Usage)?;
    let entries = args
        .entries
        .iter()
        .map(|e| EntryName::parse(e))
        .collect::<Result<Vec<_>>>()?;
    let recipients = super::team_cmds::recipients_of(&args.to)?;
    if recipients.len() > MAX_SLICE_RECIPIENTS {
        return Err(Error::Usage(format!(
            "a slice has at most {MAX_SLICE_RECIPIENTS} recipients"
        )));
    }
    refuse_vault_files(ctx, &args.file)?;
    let mut vault = open_team(ctx)?;
    for name in &entries {
        vault.data.entry(name)?;
    }
    let was_team = vault.data.team.is_some();
    let now = model::now();
    let new_key = vault.update(|data| define(data, &args, &entries, recipients, now))?;
    let defined = find(&vault.data, &args.name)?.clone();
    let guard = ctx.store.lock()?;
    let published =
        slice_store(ctx, &defined)?.publish(&guard, &defined, &defined.contents(&vault.data)?)?;
    drop(guard);
    let generation = match published {
        Published::Written { generation } | Published::Unchanged { generation } => generation,
        Published::Stale { .. } => unreachable!("publish writes"),
    };
    let mut message = format!(
        "Slice {}: {} entr{} for {} written to {} (generation {generation}). Commit it with the \
         team vault; after its entries change, `sfvault slice sync` rewrites it.",
        defined.name,
        defined.entries.len(),
        if defined.entries.len() == 1 {
            "y"
        } else {
            "ies"
        },
        defined
            .recipients
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        defined.file,
    );
    if new_key {
        message.push_str(
            " A recipient was dropped: the slice has a new data key. Copies already pushed \
             still open with the dropped key: rotate at Salesforce what they held.",
        );
    }
    if !was_team {
        message.push_str(
            " The team vault is now format version 4: sfvault releases before it cannot open it.",
        );
    }
    ctx.done(
        &message,
        json!({
            "slice": defined.name,
            "file": defined.file,
            "entries": defined.entries,
            "recipients": defined.recipients.iter().map(|r| json!({"name": r.name, "key": r.key})).collect::<Vec<_>>(),
            "generation": generation,
            "new_data_key": new_key,
        }),
    )
}

/// Refuse a slice file that is the team vault or one of its companions.
fn refuse_vault_files(ctx: &Context, file: &str) -> Result<()> {
    let vault = ctx.store.path();
    let target = dir_of(vault).join(file);
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let vault_name = name(vault).unwrap_or_default();
    let same_dir = target.parent() == Some(dir_of(vault).as_path());
    if same_dir
        && name(&target).is_some_and(|n| {
            n == vault_name || n == format!("{vault_name}.bak") || n == format!("{vault_name}.lock")
        })
    {
        return Err(Error::Usage(format!(
            "{file} is the team vault or one of its companions; pick another file for the slice"
        )));
    }
    Ok(())
}

/// Add or redefine the slice in `data`; returns whether its data key changed.
fn define(
    data: &mut VaultData,
    args: &SliceAddArgs,
    entries: &[EntryName],
    recipients: Vec<sfvault::vault::recipients::Recipient>,
    now: model::Timestamp,
) -> Result<bool> {
    let team = data.team.get_or_insert_with(TeamState::new);
    if let Some(other) = team
        .slices
        .iter()
        .find(|s| s.file == args.file && s.name != args.name)
    {
        return Err(Error::Usage(format!(
            "slice {} is already written to {}; pick another file",
            other.name, args.file
        )));
    }
    match team.slices.iter_mut().find(|s| s.name == args.name) {
        Some(existing) if args.replace => existing.redefine(&args.file, entries, recipients, now),
        Some(_) => Err(Error::failed(format!(
            "slice {} exists; redefine it with --replace (the whole definition: file, entries, \
             recipients), or pick another name",
            args.name
        ))),
        None if args.replace => Err(no_slice(&args.name)),
        None => {
            if team.slices.len() >= MAX_SLICES {
                return Err(Error::Usage(format!(
                    "a vault defines at most {MAX_SLICES} slices"
                )));
            }
            team.slices.push(Slice::new(
                &args.name, &args.file, entries, recipients, now,
            )?);
            Ok(false)
        }
    }
}

fn find<'d>(data: &'d VaultData, name: &str) -> Result<&'d Slice> {
    data.team
        .as_ref()
        .and_then(|t| t.slices.iter().find(|s| s.name == name))
        .ok_or_else(|| no_slice(name))
}

/// The slices named (all when none), in definition order.
fn selected<'d>(data: &'d VaultData, names: &[String]) -> Result<Vec<&'d Slice>> {
    let all: &[Slice] = data.team.as_ref().map_or(&[], |t| &t.slices);
    if all.is_empty() {
        return Err(Error::NotFound {
            missing: Missing::Slice {
                name: names.first().cloned().unwrap_or_default(),
            },
            message: "this vault defines no slices (`sfvault slice add NAME --file FILE --entry \
                      ORG/APP --to KEY`)"
                .into(),
        });
    }
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    names.iter().map(|n| find(data, n)).collect()
}

fn state_name(state: Published) -> (&'static str, Option<u64>) {
    match state {
        Published::Unchanged { generation } => ("up-to-date", Some(generation)),
        Published::Written { generation } => ("written", Some(generation)),
        Published::Stale { generation } => ("out-of-date", generation),
    }
}

/// What became of one slice: its state, or the error that stopped it.
type SliceResult = (String, String, Result<Published>);

fn sync(ctx: &Context, args: SliceSyncArgs) -> Outcome {
    let mut vault = open_team(ctx)?;
    let guard = ctx.store.lock()?;
    // The newest version, now that no one else can save it.
    vault.refresh()?;
    let chosen: Vec<Slice> = selected(&vault.data, &args.names)?
        .into_iter()
        .cloned()
        .collect();
    let results: Vec<SliceResult> = chosen
        .iter()
        .map(|s| {
            let state = s
                .contents(&vault.data)
                .and_then(|contents| publish_or_check(ctx, &guard, s, &contents, args.check));
            (s.name.clone(), s.file.clone(), state)
        })
        .collect();
    drop(guard);
    report_sync(ctx, &results, args.check)
}

fn publish_or_check(
    ctx: &Context,
    guard: &LockGuard,
    slice: &Slice,
    contents: &VaultData,
    check: bool,
) -> Result<Published> {
    let store = slice_store(ctx, slice)?;
    if check {
        store.slice_state(slice, contents)
    } else {
        store.publish(guard, slice, contents)
    }
}

fn report_sync(ctx: &Context, results: &[SliceResult], check: bool) -> Outcome {
    let stale: Vec<&str> = results
        .iter()
        .filter(|(_, _, r)| matches!(r, Ok(Published::Stale { .. })))
        .map(|(n, _, _)| n.as_str())
        .collect();
    if ctx.json {
        let rows: Vec<Value> = results
            .iter()
            .map(|(name, file, r)| match r {
                Ok(state) => {
                    let (state, generation) = state_name(*state);
                    json!({"slice": name, "file": file, "state": state, "generation": generation})
                }
                Err(e) => {
                    json!({"slice": name, "file": file, "state": "failed", "error": e.to_string()})
                }
            })
            .collect();
        print_json(json!({"vault": ctx.store.path().display().to_string(), "slices": rows}))?;
    } else {
        for (name, file, r) in results {
            match r {
                Ok(Published::Written { generation }) => ctx.note(&format!(
                    "Slice {name}: wrote {file} (generation {generation})."
                )),
                Ok(Published::Unchanged { .. }) => {
                    ctx.note(&format!("Slice {name}: {file} is up to date."))
                }
                Ok(Published::Stale { .. }) => stderr_line(&format!(
                    "sfvault: slice {name}: {file} is out of date; `sfvault slice sync {name}` \
                     rewrites it"
                )),
                Err(e) => stderr_line(&format!("sfvault: slice {name}: {e}")),
            }
        }
    }
    if let Some(code) = results
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().err())
        .map(|e| exit::for_kind(e.kind()))
        .next()
    {
        return Err(Failure::Reported(code));
    }
    if check && !stale.is_empty() {
        return Err(Failure::Reported(exit::FAILED));
    }
    Ok(())
}

fn list(ctx: &Context) -> Result<()> {
    let vault = open_team(ctx)?;
    let slices: &[Slice] = vault.data.team.as_ref().map_or(&[], |t| &t.slices);
    let states: Vec<(&'static str, Option<u64>)> = slices
        .iter()
        .map(|s| {
            s.contents(&vault.data)
                .and_then(|c| slice_store(ctx, s)?.slice_state(s, &c))
                .map_or_else(
                    |e| match e.kind() {
                        sfvault::ErrorKind::NotFound => ("entry-missing", None),
                        _ => ("failed", None),
                    },
                    state_name,
                )
        })
        .collect();
    if ctx.json {
        let rows: Vec<Value> = slices
            .iter()
            .zip(&states)
            .map(|(s, (state, generation))| {
                json!({
                    "slice": s.name,
                    "file": s.file,
                    "entries": s.entries,
                    "recipients": s.recipients.iter().map(|r| json!({"name": r.name, "key": r.key})).collect::<Vec<_>>(),
                    "state": state,
                    "generation": generation,
                })
            })
            .collect();
        return print_json(
            json!({"vault": ctx.store.path().display().to_string(), "slices": rows}),
        );
    }
    if slices.is_empty() {
        ctx.note(
            "This vault defines no slices (`sfvault slice add NAME --file FILE --entry ORG/APP \
             --to KEY`).",
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = slices
        .iter()
        .zip(&states)
        .map(|(s, (state, _))| {
            vec![
                s.name.clone(),
                s.file.clone(),
                s.entries.join(" "),
                s.recipients
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                (*state).to_owned(),
            ]
        })
        .collect();
    print(&table(
        &["SLICE", "FILE", "ENTRIES", "RECIPIENTS", "STATE"],
        &rows,
    ))
}

fn rm(ctx: &Context, args: SliceRmArgs) -> Result<()> {
    let mut vault = open_team(ctx)?;
    find(&vault.data, &args.name)?;
    let removed = vault.update(|data| {
        let team = data.team.as_mut().ok_or_else(|| no_slice(&args.name))?;
        let at = team
            .slices
            .iter()
            .position(|s| s.name == args.name)
            .ok_or_else(|| no_slice(&args.name))?;
        Ok(team.slices.remove(at))
    })?;
    let path: PathBuf = dir_of(ctx.store.path()).join(&removed.file);
    ctx.done(
        &format!(
            "Forgot slice {}. Its file {} is left as it is: delete it (`git rm {}`), and if \
             its recipients should lose access, rotate at Salesforce what it held (copies in \
             git history stay readable to them).",
            removed.name,
            path.display(),
            removed.file
        ),
        json!({"removed": removed.name, "file": removed.file}),
    )
}
