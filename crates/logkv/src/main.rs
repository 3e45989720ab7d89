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
mod repair;
mod runtime_cmds;
mod serve;
mod trim;

use std::process::ExitCode;

use clap::{ArgMatches, FromArgMatches};
use logkv_server::config::{self, ConfigFile};

use crate::cli::{Cli, Command, LogCommand, TxCommand};
use crate::maintenance_cmds::CheckpointCommand;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let file = cli.global.config.clone().map_or(ConfigFile::Default, ConfigFile::Given);
    // `repair` gets every setting `serve` does, the same way.
    let serving = matches!(cli.command, Command::Serve(_) | Command::Repair(_));
    let loaded = match config::load(&file, deepest(&matches), serving) {
        Ok(loaded) => loaded,
        Err(e) => return fail(exit::CliError::BadInput(e.to_string())),
    };
    cli.global.store = loaded.config.store.clone();
    let local_only = matches!(
        cli.command,
        Command::Inspect
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Key(_)
            | Command::Tx(TxCommand::Body(_))
            | Command::Serve(_)
            | Command::Repair(_)
            | Command::Log(_)
            | Command::Restore(_)
            | Command::Migrate(_)
    );
    #[cfg(feature = "bench")]
    let local_only = local_only || matches!(cli.command, Command::Bench(_));
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
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cli::command(), "logkv", &mut script);
            print_bytes(&script)
        }
        Command::Man { out: Some(dir) } => clap_mangen::generate_to(cli::command(), &dir)
            .map(|()| exit::Outcome::Ok)
            .map_err(|e| exit::CliError::BadInput(format!("cannot write the manual pages into {}: {e}", dir.display()))),
        Command::Man { out: None } => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(cli::command()).render(&mut page) {
                Ok(()) => print_bytes(&page),
                Err(e) => Err(exit::CliError::Output(e)),
            }
        }
        Command::Inspect => inspect::run(&cli.global.store.data_dir),
        Command::Key(command) => runtime_cmds::key(command),
        Command::Tx(TxCommand::Body(command)) => runtime_cmds::tx(command),
        Command::Tx(TxCommand::Submit(args)) => commands::submit(&cli.global, args),
        Command::Acl(command) => acl::run(&cli.global, command),
        Command::Serve(args) => serve::run(loaded, &args),
        Command::Repair(args) => repair::run(loaded, &args),
        Command::Log(LogCommand::Trim(args)) => {
            trim::run(args, &loaded.config.nats, cli.global.server_ca.as_deref())
        }
        Command::Checkpoint(args) => match args.command {
            None => maintenance_cmds::checkpoint(&cli.global, args.target),
            Some(CheckpointCommand::Export(args)) => backup_cmds::export(&cli.global, args),
            Some(CheckpointCommand::Import(args)) => backup_cmds::import(&cli.global, *args, &loaded.config.nats),
        },
        Command::Compact(args) => maintenance_cmds::compact(&cli.global, args),
        Command::Restore(args) => backup_cmds::restore(&cli.global, args),
        Command::Migrate(args) => migrate::migrate(&cli.global, args),
        #[cfg(feature = "bench")]
        Command::Bench(command) => {
            logkv_eval::child::set_prefix(vec!["bench".into()]);
            logkv_eval::cli::main(command).map(|()| exit::Outcome::Ok).map_err(exit::CliError::Bench)
        }
    };
    match result {
        Ok(outcome) => outcome.code(),
        Err(e) => fail(e),
    }
}

/// Writes generated text to stdout.
fn print_bytes(bytes: &[u8]) -> Result<exit::Outcome, exit::CliError> {
    use std::io::Write;
    std::io::stdout().write_all(bytes).map(|()| exit::Outcome::Ok).map_err(exit::CliError::Output)
}

/// Reports `e` and gives its exit code (a reader that went away is not an
/// error).
fn fail(e: exit::CliError) -> ExitCode {
    if e.is_broken_pipe() {
        return ExitCode::SUCCESS;
    }
    eprintln!("logkv: {e}");
    e.code()
}

/// The innermost subcommand's matches, where every flag given (global
/// ones included) is found.
fn deepest(matches: &ArgMatches) -> &ArgMatches {
    match matches.subcommand() {
        Some((_, sub)) => deepest(sub),
        None => matches,
    }
}
