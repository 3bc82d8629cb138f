//! The `sfvault` binary: parse the command line, run it, turn errors into exit codes.

mod cli;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args =
        cli::fast_path::parse(&argv, std::env::var_os).unwrap_or_else(|| parse_with_clap(argv));
    match cli::run(args) {
        Ok(()) => ExitCode::from(cli::exit::SUCCESS),
        Err(failure) => {
            if let Some(message) = failure.message().filter(|m| !m.is_empty()) {
                // Not eprintln!: it panics (exit 101) when stderr is closed or full, and the
                // exit code is the part scripts rely on.
                let _ = writeln!(std::io::stderr(), "sfvault: {message}");
            }
            failure.code()
        }
    }
}

/// Parse with clap (exits with its message on an error, help or version).
fn parse_with_clap(argv: Vec<OsString>) -> cli::args::Cli {
    // The Command is leaked instead of dropped: freeing clap's tree of ~30 subcommands was 14%
    // of the instructions of a short command, and the process is about to exit anyway.
    let mut command = cli::args::Cli::command();
    let matches = command
        .try_get_matches_from_mut(argv)
        .unwrap_or_else(|e| e.exit());
    let args = cli::args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    std::mem::forget(command);
    args
}
