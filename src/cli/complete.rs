//! Shell completion of commands, options, entry names and fields: clap_complete's dynamic
//! engine. The shell's registration script (from `sfvault completions SHELL`) calls the binary
//! with [`VAR`] set on each Tab; entry names and an entry's fields come from a running agent
//! only, so a Tab never prompts, never runs the KDF, and offers no names while locked.

use std::ffi::{OsStr, OsString};

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Shells};
use sfvault::agent::protocol::{Request, Response};
use sfvault::vault::fields::FIELDS;
use sfvault::vault::name::EntryName;
use sfvault::{Error, Result};

use super::Context;
use super::args::GlobalArgs;

/// The environment variable the registration script sets to ask for completions.
pub const VAR: &str = "SFVAULT_COMPLETE";

/// When the shell asks for completions ([`VAR`] set), print them and exit; else return at once
/// (one environment lookup).
pub fn complete_if_asked() {
    if std::env::var_os(VAR).is_some() {
        CompleteEnv::with_factory(completing_command)
            .var(VAR)
            .complete();
    }
}

/// The registration script for `shell` (bash, zsh, fish, elvish, powershell): what a user
/// sources from their shell's start-up file.
pub fn registration(shell: &str) -> Result<String> {
    let shells = Shells::builtins();
    let completer = shells.completer(shell).ok_or_else(|| {
        let names: Vec<&str> = shells.names().collect();
        Error::Usage(format!(
            "no completion for {shell:?}; shells: {}",
            names.join(", ")
        ))
    })?;
    // The binary as it was run: a path is made absolute, a bare name found through PATH.
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| "sfvault".into());
    let bin = std::path::Path::new(&argv0);
    let program = if bin.components().count() > 1 {
        std::path::absolute(bin).unwrap_or_else(|_| bin.to_path_buf())
    } else {
        bin.to_path_buf()
    };
    let mut out = Vec::new();
    completer
        .write_registration(
            VAR,
            "sfvault",
            "sfvault",
            &program.to_string_lossy(),
            &mut out,
        )
        .map_err(|e| Error::failed_with("cannot write the completion script", e))?;
    String::from_utf8(out).map_err(|e| Error::failed_with("completion script", e))
}

/// The parser, with value completers on every argument that names an entry or a field.
fn completing_command() -> clap::Command {
    let mut cmd = super::args::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |mut sub| {
            // mut_arg moves an argument to the end: positionals get their places pinned first.
            let positionals: Vec<String> = sub
                .get_positionals()
                .map(|a| a.get_id().to_string())
                .collect();
            for (i, id) in positionals.iter().enumerate() {
                sub = sub.mut_arg(id, |a| a.index(i + 1));
            }
            let ids: Vec<(String, bool)> = sub
                .get_arguments()
                .map(|a| (a.get_id().to_string(), a.get_action().takes_values()))
                .collect();
            for (id, takes_values) in ids {
                let completer = match id.as_str() {
                    _ if !takes_values => continue,
                    "entry" | "admin" | "at_salesforce" | "dev_hub" | "old" => {
                        ArgValueCompleter::new(entries)
                    }
                    "field" | "with" => ArgValueCompleter::new(fields),
                    "reference" => ArgValueCompleter::new(references),
                    _ => continue,
                };
                sub = sub.mut_arg(&id, |a| a.add(completer));
            }
            sub
        });
    }
    cmd
}

/// The words of the command line being completed (after the registration script's `--`).
fn words() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The vault the command line names (`--vault P`, `--vault=P`, else `SFVAULT_PATH`, else the
/// default), through its agent, if one runs.
fn agent_answer(request: &Request) -> Option<Response> {
    let words = words();
    let mut vault = None;
    for (i, w) in words.iter().enumerate() {
        let w = w.to_string_lossy();
        if w == "--vault" {
            vault = words.get(i + 1).map(std::path::PathBuf::from);
        } else if let Some(path) = w.strip_prefix("--vault=") {
            vault = Some(path.into());
        }
    }
    let vault = vault.or_else(|| {
        std::env::var_os("SFVAULT_PATH")
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    let ctx = Context::new(&GlobalArgs {
        vault,
        json: false,
        quiet: true,
        passphrase_fd: None,
        identity: None,
        no_agent: false,
    })
    .ok()?;
    ctx.agent()?.call(request).ok()
}

/// Every entry name, from the agent (none while locked).
fn entry_names() -> Vec<String> {
    match agent_answer(&Request::List) {
        Some(Response::Entries(map)) => map.into_keys().collect(),
        _ => Vec::new(),
    }
}

/// The fields worth offering for `entry`: its own (from the agent), then every known one.
fn field_names(entry: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Some(entry) = entry
        && let Some(Response::Entries(map)) = agent_answer(&Request::List)
        && let Some(e) = map.get(entry)
    {
        names.extend(e.fields.keys().cloned());
    }
    for spec in FIELDS {
        if !names.iter().any(|n| n == spec.name) {
            names.push(spec.name.to_owned());
        }
    }
    names
}

fn candidates(names: Vec<String>, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    names
        .into_iter()
        .filter(|n| n.starts_with(&*prefix))
        .map(CompletionCandidate::new)
        .collect()
}

fn entries(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(entry_names(), current)
}

/// Fields of the entry named earlier on the line (the first word that is an `ORG/APP`).
fn fields(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    let entry = words
        .iter()
        .skip(1)
        .map(|w| w.to_string_lossy())
        .find(|w| w.as_ref() != current.to_string_lossy() && EntryName::parse(w).is_ok())
        .map(|w| w.into_owned());
    candidates(field_names(entry.as_deref()), current)
}

/// `sfvault://ORG/APP/FIELD`: entries first, then that entry's fields.
fn references(current: &OsStr) -> Vec<CompletionCandidate> {
    const SCHEME: &str = "sfvault://";
    let text = current.to_string_lossy();
    let rest = text.strip_prefix(SCHEME).unwrap_or("");
    let parts: Vec<&str> = rest.splitn(3, '/').collect();
    let names = if parts.len() == 3 {
        let entry = format!("{}/{}", parts[0], parts[1]);
        field_names(Some(&entry))
            .into_iter()
            .map(|f| format!("{SCHEME}{entry}/{f}"))
            .collect()
    } else {
        entry_names()
            .into_iter()
            .map(|e| format!("{SCHEME}{e}/"))
            .collect()
    };
    candidates(names, current)
}
