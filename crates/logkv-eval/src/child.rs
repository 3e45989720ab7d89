//! Running the harness's own binary as a child process: each measurement
//! gets a process of its own, for clean memory and I/O counters, and so a
//! writer can be killed with `kill -9`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

static PREFIX: OnceLock<Vec<String>> = OnceLock::new();
static EXE: OnceLock<PathBuf> = OnceLock::new();

/// Runs children from `exe` instead of the running binary: integration
/// tests run inside a test binary and point this at the harness's own.
pub fn set_exe(exe: impl Into<PathBuf>) {
    let _ = EXE.set(exe.into());
}

/// Sets the arguments that reach the harness's commands from the running
/// binary (`["bench"]` inside `logkv`); the default is none (`logkv-eval`).
pub fn set_prefix(args: Vec<String>) {
    let _ = PREFIX.set(args);
}

/// A command running this binary's harness subcommand `sub`.
pub fn command(sub: &str) -> std::io::Result<Command> {
    let exe = match EXE.get() {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    let mut c = Command::new(exe);
    c.args(PREFIX.get().map(Vec::as_slice).unwrap_or_default()).arg(sub);
    Ok(c)
}
