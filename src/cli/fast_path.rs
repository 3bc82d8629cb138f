//! A hand-written parser for the plain forms of the hot command, `sfvault get`, tried before clap.
//!
//! Scripts call `get` in loops, and with an agent running the answer takes microseconds, so a
//! warm get is mostly process start-up. clap builds its whole tree of ~30 subcommands with their
//! help texts on every run: about 40% of the instructions of a warm get (callgrind). This parser
//! knows only
//!
//! ```text
//! sfvault [GLOBAL…] get [GLOBAL… | -n | --no-newline]… ENTRY FIELD
//! GLOBAL = --vault PATH | --vault=PATH | --json | --quiet | -q | --no-agent
//! ```
//!
//! with every word valid UTF-8, each flag at most once and no positional word starting with `-`.
//! Anything else (help, version, errors, other commands, `--`, `--passphrase-fd`, repeated flags)
//! returns `None` and goes to clap, so clap keeps the last word on what is valid and on every
//! message. The tests check that whenever this parser answers, clap gives the same answer, and
//! that clap reads no environment variable for such a line that [`MIRRORED_ENV`] does not name.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::args::{Cli, ClipArgs, Command, GetArgs, GlobalArgs};

/// The environment variables that clap reads for a plain `get` line (for the global options
/// and `get`'s own), each with the id of the argument it sets: this parser reads each one and
/// does with it what clap does. A test walks clap's definitions and fails on any variable not
/// named here; [`parse`] takes the list apart, so a new entry does not compile until the parser
/// handles it.
pub const MIRRORED_ENV: [(&str, &str); 2] = [
    ("vault", "SFVAULT_PATH"),
    ("identity", "SFVAULT_IDENTITY_FILE"),
];

/// The parsed command line if it is a plain `get`, else `None` (parse it with clap).
///
/// `argv` includes the program name; `env` looks up an environment variable (one of
/// [`MIRRORED_ENV`]): `std::env::var_os` outside tests.
pub fn parse(argv: &[OsString], env: impl Fn(&'static str) -> Option<OsString>) -> Option<Cli> {
    let [(_, vault_var), (_, identity_var)] = MIRRORED_ENV;
    let vault_env = env(vault_var);
    let vault_env = vault_env.as_deref();
    let mut global = GlobalArgs {
        vault: None,
        json: false,
        quiet: false,
        passphrase_fd: None,
        identity: match env(identity_var) {
            // clap refuses an empty value from the environment: its error to report.
            Some(v) if v.is_empty() => return None,
            v => v.map(PathBuf::from),
        },
        no_agent: false,
    };
    let mut no_newline = false;
    let mut seen_get = false;
    let mut positionals: Vec<String> = Vec::with_capacity(2);
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        let word = word.to_str()?;
        match word {
            "--vault" => {
                let value = words.next()?.to_str()?;
                set_vault(&mut global.vault, value)?;
            }
            "--json" => set_flag(&mut global.json)?,
            "--quiet" | "-q" => set_flag(&mut global.quiet)?,
            "--no-agent" => set_flag(&mut global.no_agent)?,
            "-n" | "--no-newline" if seen_get => set_flag(&mut no_newline)?,
            "get" if !seen_get => seen_get = true,
            _ => {
                if let Some(value) = word.strip_prefix("--vault=") {
                    set_vault(&mut global.vault, value)?;
                } else if word.starts_with('-') || !seen_get || positionals.len() == 2 {
                    return None;
                } else {
                    positionals.push(word.to_owned());
                }
            }
        }
    }
    // clap refuses an empty SFVAULT_PATH even when --vault is given (it applies the global
    // option's environment value at the subcommand too), so that case is clap's to report.
    if !seen_get || positionals.len() != 2 || vault_env.is_some_and(OsStr::is_empty) {
        return None;
    }
    if global.vault.is_none() {
        global.vault = vault_env.map(PathBuf::from);
    }
    let field = positionals.pop()?;
    let entry = positionals.pop()?;
    Some(Cli {
        global,
        command: Command::Get(GetArgs {
            entry,
            field,
            no_newline,
            clip: ClipArgs::default(),
        }),
    })
}

/// Set a flag the first time; a repeated flag is clap's error to report.
fn set_flag(flag: &mut bool) -> Option<()> {
    if *flag {
        return None;
    }
    *flag = true;
    Some(())
}

/// Set the vault path the first time, if it is a plain value (not empty, not option-like).
fn set_vault(vault: &mut Option<PathBuf>, value: &str) -> Option<()> {
    if vault.is_some() || value.is_empty() || value.starts_with('-') {
        return None;
    }
    *vault = Some(PathBuf::from(value));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use proptest::prelude::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("sfvault")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// An environment holding nothing but `SFVAULT_PATH`, set to `value` if given.
    fn vault_env(value: Option<&'static str>) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            (name == "SFVAULT_PATH")
                .then_some(value)
                .flatten()
                .map(OsString::from)
        }
    }

    /// The fast parser's answer, checked against clap's: if it answers, clap must agree.
    fn check_agrees(words: &[&str]) -> Option<String> {
        let argv = argv(words);
        // This process's environment, which clap reads too (SFVAULT_PATH is normally unset
        // under `cargo test`).
        let fast = parse(&argv, std::env::var_os)?;
        let clap = Cli::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("fast path accepted {words:?}, clap refused: {e}"));
        let (fast, clap) = (format!("{fast:?}"), format!("{clap:?}"));
        assert_eq!(fast, clap, "fast path and clap differ for {words:?}");
        Some(fast)
    }

    #[test]
    fn plain_gets_take_the_fast_path_and_match_clap() {
        for words in [
            &["get", "acme-prod/ci", "consumer_key"][..],
            &["--vault", "/tmp/v.sfv", "get", "acme/ci", "username"],
            &["--vault=/tmp/v.sfv", "get", "acme/ci", "username"],
            &["get", "acme/ci", "username", "--vault", "/tmp/v.sfv"],
            &["get", "-n", "acme/ci", "consumer_key"],
            &["get", "acme/ci", "consumer_key", "--no-newline"],
            &[
                "--no-agent",
                "-q",
                "--json",
                "get",
                "acme/ci",
                "consumer_key",
            ],
            &["get", "acme/ci", "--quiet", "access_token", "--no-agent"],
            &["get", "get", "get"],
        ] {
            assert!(check_agrees(words).is_some(), "{words:?} should be fast");
        }
    }

    #[test]
    fn everything_else_is_left_to_clap() {
        for words in [
            &[][..],
            &["get"],
            &["get", "acme/ci"],
            &["get", "acme/ci", "a", "b"],
            &["--help"],
            &["get", "--help"],
            &["-V"],
            &["list"],
            &["show", "acme/ci"],
            &["-n", "get", "acme/ci", "consumer_key"],
            &["get", "--", "acme/ci", "consumer_key"],
            &["get", "-x", "consumer_key"],
            &["get", "acme/ci", "consumer_key", "-qn"],
            &["--json", "--json", "get", "a/b", "c"],
            &["get", "a/b", "c", "-n", "-n"],
            &["--vault", "get", "a/b", "c"],
            &["--vault=", "get", "a/b", "c"],
            &["--vault", "/a", "--vault", "/b", "get", "a/b", "c"],
            &["--passphrase-fd", "3", "get", "a/b", "c"],
            &["get", "a/b", "c", "--vault"],
        ] {
            assert!(
                parse(&argv(words), vault_env(None)).is_none(),
                "{words:?} is clap's"
            );
        }
    }

    #[test]
    fn sfvault_path_is_used_only_without_vault_and_never_when_empty() {
        let words = argv(&["get", "a/b", "c"]);
        let vault = |cli: Option<Cli>| cli.and_then(|c| c.global.vault);
        assert_eq!(
            vault(parse(&words, vault_env(Some("/env.sfv")))),
            Some(PathBuf::from("/env.sfv"))
        );
        assert!(parse(&words, vault_env(Some(""))).is_none());
        let with_flag = argv(&["--vault", "/flag.sfv", "get", "a/b", "c"]);
        assert!(
            parse(&with_flag, vault_env(Some(""))).is_none(),
            "clap refuses this one"
        );
        assert_eq!(
            vault(parse(&with_flag, vault_env(Some("/env.sfv")))),
            Some(PathBuf::from("/flag.sfv"))
        );
        assert_eq!(vault(parse(&words, vault_env(None))), None);
    }

    /// The arguments of a `get` line in `cli` (the global options and `get`'s own) that read an
    /// environment variable not in [`MIRRORED_ENV`], as "ID reads VAR".
    fn unmirrored_env(mut cli: clap::Command) -> Vec<String> {
        // Building propagates the global options to the subcommands.
        cli.build();
        let get = cli
            .find_subcommand("get")
            .expect("sfvault has a get command");
        cli.get_arguments()
            .chain(get.get_arguments())
            .filter_map(|arg| Some((arg.get_id().as_str(), arg.get_env()?.to_string_lossy())))
            .filter(|(id, var)| !MIRRORED_ENV.contains(&(id, var)))
            .map(|(id, var)| format!("--{id} reads {var}"))
            // A global option is in both lists.
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// clap fills an argument from the environment only where the fast path does the same:
    /// otherwise `VAR=x sfvault get …` would mean one thing to clap and another to the fast path.
    #[test]
    fn every_environment_variable_clap_reads_for_get_is_mirrored() {
        let unmirrored = unmirrored_env(Cli::command());
        assert!(
            unmirrored.is_empty(),
            "the fast path does not mirror {unmirrored:?}: handle each in `parse` and add it \
             to MIRRORED_ENV, or have `parse` decline when it is set"
        );
        // And each mirrored variable is still one that clap reads, for that argument.
        let mut cli = Cli::command();
        cli.build();
        let get = cli.find_subcommand("get").unwrap();
        for (id, var) in MIRRORED_ENV {
            let arg = get
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("MIRRORED_ENV names --{id}, which `get` lacks"));
            assert_eq!(
                arg.get_env().and_then(OsStr::to_str),
                Some(var),
                "MIRRORED_ENV: clap's --{id} does not read {var}"
            );
        }
    }

    /// The check above sees a variable added to a global option or to `get` alone.
    #[test]
    fn an_environment_variable_added_to_get_or_a_global_option_is_caught() {
        let global = Cli::command().arg(
            clap::Arg::new("token")
                .long("token")
                .global(true)
                .env("SFVAULT_TOKEN"),
        );
        assert_eq!(unmirrored_env(global), ["--token reads SFVAULT_TOKEN"]);
        let own = Cli::command().mut_subcommand("get", |get| {
            get.mut_arg("no_newline", |arg| arg.env("SFVAULT_NO_NEWLINE"))
        });
        assert_eq!(
            unmirrored_env(own),
            ["--no_newline reads SFVAULT_NO_NEWLINE"]
        );
        let renamed = Cli::command().mut_arg("vault", |arg| arg.env("SFVAULT_VAULT"));
        assert_eq!(unmirrored_env(renamed), ["--vault reads SFVAULT_VAULT"]);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_words_are_left_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let mut words = argv(&["get", "a/b"]);
        words.push(OsString::from_vec(vec![b'c', 0xff]));
        assert!(parse(&words, vault_env(None)).is_none());
    }

    const WORDS: &[&str] = &[
        "get",
        "list",
        "help",
        "--vault",
        "--vault=/v",
        "--vault=",
        "/v",
        "--json",
        "-q",
        "--quiet",
        "--no-agent",
        "-n",
        "--no-newline",
        "--",
        "-",
        "-x",
        "-qn",
        "a/b",
        "key",
        "",
        "--passphrase-fd",
        "3",
        "-h",
        "--version",
    ];

    /// Option groups of a valid `get`, placed before or after the subcommand.
    const GROUPS: &[&[&str]] = &[
        &["--vault", "/v"],
        &["--vault=/v"],
        &["--json"],
        &["-q"],
        &["--quiet"],
        &["--no-agent"],
        &["-n"],
        &["--no-newline"],
    ];

    /// A `get` command line built from option groups around `get ENTRY FIELD`, then mutated by
    /// inserting and deleting words: most are near-misses that only clap should accept or refuse.
    fn near_valid() -> impl Strategy<Value = Vec<&'static str>> {
        let groups = || proptest::collection::vec(prop::sample::select(GROUPS), 0..4);
        let inserts = proptest::collection::vec((0..12usize, prop::sample::select(WORDS)), 0..2);
        let deletes = proptest::collection::vec(0..12usize, 0..2);
        (groups(), groups(), 0..3usize, inserts, deletes).prop_map(
            |(before, after, split, inserts, deletes)| {
                let mut words: Vec<&str> = before.concat();
                words.push("get");
                let split = split.min(after.len());
                words.extend(after[..split].concat());
                words.extend(["a/b", "key"]);
                words.extend(after[split..].concat());
                for (at, word) in inserts {
                    words.insert(at.min(words.len()), word);
                }
                for at in deletes {
                    if at < words.len() {
                        words.remove(at);
                    }
                }
                words
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Whatever the words, the fast path either declines or agrees with clap.
        #[test]
        fn never_disagrees_with_clap(picks in proptest::collection::vec(0..WORDS.len(), 0..8)) {
            let words: Vec<&str> = picks.iter().map(|&i| WORDS[i]).collect();
            check_agrees(&words);
        }

        /// Near-valid `get` lines: the fast path either declines or agrees with clap.
        #[test]
        fn near_misses_never_disagree_with_clap(words in near_valid()) {
            check_agrees(&words);
        }
    }
}
