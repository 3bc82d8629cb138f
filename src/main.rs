//! The `sfvault` binary: parse the command line, run it, turn errors into exit codes.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::args::Cli::parse();
    if let Err(err) = cli::run(args) {
        let message = err.to_string();
        if !message.is_empty() {
            eprintln!("sfvault: {message}");
        }
        std::process::exit(err.exit_code());
    }
}
