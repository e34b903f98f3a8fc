//! The `taskgate` binary: parse the command line, start logging, dispatch.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = taskgate::cli::Cli::parse();
    taskgate::logging::init();
    let outcome = taskgate::cli::run(cli);
    // Log lines still waiting for their batch come before the last word.
    taskgate::logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskgate: {e}");
            ExitCode::FAILURE
        }
    }
}
