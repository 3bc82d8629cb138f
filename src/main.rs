//! The `sfvault` binary: parse the command line, run it, turn errors into exit codes.

mod cli;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    // Parse with an explicit Command that is then leaked instead of dropped: freeing clap's
    // tree of ~30 subcommands was 14% of the instructions of a warm `get`, and the process
    // is about to exit anyway.
    let mut command = cli::args::Cli::command();
    let matches = command.get_matches_mut();
    let args = cli::args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    std::mem::forget(command);
    if let Err(err) = cli::run(args) {
        let message = err.to_string();
        if !message.is_empty() {
            eprintln!("sfvault: {message}");
        }
        std::process::exit(err.exit_code());
    }
}
