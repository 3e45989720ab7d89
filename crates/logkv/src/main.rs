//! The `logkv` command-line tool: one command per run against a data
//! directory or, with `--server`, a running server ([`remote`]). Exit codes
//! are in [`exit`].

mod acl;
mod backup_cmds;
mod cli;
mod commands;
mod exit;
mod inspect;
mod maintenance_cmds;
mod migrate;
mod progress;
mod remote;
mod runtime_cmds;
mod serve;
mod trim;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, LogCommand, TxCommand};
use crate::maintenance_cmds::CheckpointCommand;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let local_only = matches!(
        cli.command,
        Command::Inspect
            | Command::Key(_)
            | Command::Tx(TxCommand::Body(_))
            | Command::Serve(_)
            | Command::Log(_)
            | Command::Restore(_)
            | Command::Migrate(_)
            | Command::Bench(_)
    );
    let admin = matches!(cli.command, Command::Checkpoint(_) | Command::Compact(_));
    let server_flag = matches.value_source("server") == Some(clap::parser::ValueSource::CommandLine);
    let result = match cli.command {
        _ if local_only && server_flag => Err(exit::CliError::BadInput(
            "--server applies to put, get, del, scan, history, tx submit and acl; this command does not talk to a server"
                .into(),
        )),
        _ if admin && server_flag => Err(exit::CliError::BadInput(
            "checkpoint and compact ask a running node with --remote URL (and --admin-token), not --server".into(),
        )),
        Command::Store(command) => commands::run(&cli.global, command),
        Command::Inspect => inspect::run(&cli.global.data_dir),
        Command::Key(command) => runtime_cmds::key(command),
        Command::Tx(TxCommand::Body(command)) => runtime_cmds::tx(command),
        Command::Tx(TxCommand::Submit(args)) => commands::submit(&cli.global, args),
        Command::Acl(command) => acl::run(&cli.global, command),
        Command::Serve(args) => serve::run(&cli.global, *args, &matches),
        Command::Log(LogCommand::Trim(args)) => trim::run(args),
        Command::Checkpoint(args) => match args.command {
            None => maintenance_cmds::checkpoint(&cli.global, args.target),
            Some(CheckpointCommand::Export(args)) => backup_cmds::export(&cli.global, args),
            Some(CheckpointCommand::Import(args)) => backup_cmds::import(&cli.global, args),
        },
        Command::Compact(args) => maintenance_cmds::compact(&cli.global, args),
        Command::Restore(args) => backup_cmds::restore(&cli.global, args),
        Command::Migrate(args) => migrate::migrate(&cli.global, args),
        Command::Bench(command) => {
            logkv_eval::child::set_prefix(vec!["bench".into()]);
            logkv_eval::cli::main(command).map(|()| exit::Outcome::Ok).map_err(exit::CliError::Bench)
        }
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
