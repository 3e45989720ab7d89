//! `logkv-eval`: the evaluation harness's binary (also reachable as
//! `logkv bench`).
//!
//! ```text
//! cargo run --release -p logkv-eval -- run --config smoke
//! cargo run --release -p logkv-eval --features peers -- run --config full
//! ```

use std::process::ExitCode;

use clap::Parser;

/// The evaluation harness of logkv.
#[derive(Debug, Parser)]
#[command(name = "logkv-eval", version)]
struct Cli {
    #[command(subcommand)]
    command: logkv_eval::cli::Command,
}

fn main() -> ExitCode {
    match logkv_eval::cli::main(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logkv-eval: {e}");
            ExitCode::FAILURE
        }
    }
}
