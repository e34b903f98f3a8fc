//! The `taskgate` binary: parse the command line, start logging, dispatch.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = taskgate::cli::Cli::parse();
    taskgate::logging::init();
    match taskgate::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskgate: {e}");
            ExitCode::FAILURE
        }
    }
}
