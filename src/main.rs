//! The `sfvault` binary: parse the command line, run it, turn errors into exit codes.

mod cli;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::FromArgMatches;

fn main() -> ExitCode {
    // A Tab in a shell whose completion script called us: answer and exit.
    cli::complete::complete_if_asked();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args =
        cli::fast_path::parse(&argv, std::env::var_os).unwrap_or_else(|| parse_with_clap(argv));
    let json = args.global.json;
    match cli::run(args) {
        Ok(()) => ExitCode::from(cli::exit::SUCCESS),
        Err(failure) => {
            if let Some(message) = failure.message().filter(|m| !m.is_empty()) {
                // Not eprintln!: it panics (exit 101) when stderr is closed or full, and the
                // exit code is the part scripts rely on.
                let _ = writeln!(std::io::stderr(), "sfvault: {message}");
            }
            if let Some(object) = failure.json().filter(|_| json) {
                // A script reads the error from stdout too, never parsing stderr.
                let _ = cli::output::print(&format!("{object}\n"));
            }
            failure.code()
        }
    }
}

/// Parse with clap (exits with its message on an error, help or version; with `--json` on the
/// line, a usage error is also the JSON error object on stdout).
fn parse_with_clap(argv: Vec<OsString>) -> cli::args::Cli {
    let json = argv.iter().skip(1).any(|a| a == "--json");
    // The Command is leaked instead of dropped: freeing clap's tree of ~30 subcommands was 14%
    // of the instructions of a short command, and the process is about to exit anyway.
    let mut command = cli::args::command();
    let matches = command
        .try_get_matches_from_mut(argv)
        .and_then(|m| cli::args::Cli::from_arg_matches(&m))
        .unwrap_or_else(|e| usage_exit(e, json));
    std::mem::forget(command);
    matches
}

fn usage_exit(error: clap::Error, json: bool) -> ! {
    if json && error.use_stderr() {
        let message = first_paragraph(&error.to_string());
        let object = serde_json::json!({
            "error": {"code": 2, "kind": "usage", "message": message}
        });
        let _ = cli::output::print(&format!("{object}\n"));
    }
    error.exit()
}

/// Clap's message up to its first blank line, on one line, without the `error: ` prefix.
fn first_paragraph(text: &str) -> String {
    let lines: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}
