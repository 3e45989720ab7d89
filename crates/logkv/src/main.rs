//! The `logkv` command-line tool: one command per run against a data
//! directory. Exit codes are in [`exit`].

mod cli;
mod commands;
mod exit;
mod inspect;
mod progress;
mod runtime_cmds;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Store(command) => commands::run(&cli.global, command),
        Command::Inspect => inspect::run(&cli.global.data_dir),
        Command::Key(command) => runtime_cmds::key(command),
        Command::Tx(command) => runtime_cmds::tx(command),
    };
    match result {
        Ok(outcome) => outcome.code(),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logkv: {e}");
            e.code()
        }
    }
}
