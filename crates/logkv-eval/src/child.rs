//! Running the harness's own binary as a child process: each measurement
//! gets a process of its own, for clean memory and I/O counters, and so a
//! writer can be killed with `kill -9`.

use std::process::Command;
use std::sync::OnceLock;

static PREFIX: OnceLock<Vec<String>> = OnceLock::new();

/// Sets the arguments that reach the harness's commands from the running
/// binary (`["bench"]` inside `logkv`); the default is none (`logkv-eval`).
pub fn set_prefix(args: Vec<String>) {
    let _ = PREFIX.set(args);
}

/// A command running this binary's harness subcommand `sub`.
pub fn command(sub: &str) -> std::io::Result<Command> {
    let mut c = Command::new(std::env::current_exe()?);
    c.args(PREFIX.get().map(Vec::as_slice).unwrap_or_default()).arg(sub);
    Ok(c)
}
