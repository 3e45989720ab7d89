//! How a command ends: its exit code, and the errors that decide it.
//!
//! 0 ok, 1 key not found, 2 usage or limit error (clap's own usage errors
//! exit 2 too, and so do a missing key file, a bad `--server` URL and a
//! parameter the server refused), 3 everything else: corruption, I/O
//! errors, a data directory locked by another process, a server that cannot
//! be reached, a write that did not commit. Scripts can tell "fix the
//! command" (2) from "look at the data" (3).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use logkv_log::LogError;
use logkv_store::StoreError;

/// Where `logkv serve` listens for JSON-RPC unless configured otherwise.
const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:7380";

/// A command's outcome when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    NotFound,
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    Store(StoreError),
    Log(LogError),
    /// The value's file or stdin could not be read.
    ReadValue {
        from: String,
        source: io::Error,
    },
    /// The value's file or stdin holds more than `max_value_bytes`.
    ValueTooLarge {
        from: String,
        limit: usize,
    },
    /// Stdout could not be written.
    Output(io::Error),
    /// A key file could not be written or read.
    Key(logkv_runtime::keyfile::KeyfileError),
    /// The signing key file does not exist.
    NoKey {
        path: PathBuf,
    },
    /// A call to the server of `--server` or `--remote` failed.
    Remote(logkv_client::Error),
    /// The async runtime the server's client runs on cannot start.
    Runtime(io::Error),
    /// `logkv serve` could not start or stop cleanly.
    Serve(logkv_server::ServeError),
    /// `logkv log trim` did not trim.
    Trim(crate::trim::TrimError),
    /// `logkv repair` did not repair.
    Repair(crate::repair::RepairCmdError),
    /// A checkpoint, compaction, restore, export or import did not run.
    Maintenance(crate::maintenance_cmds::MaintenanceError),
    /// Input that is not what the command takes (bad hex, bad JSON, a body
    /// that does not parse).
    BadInput(String),
    /// `logkv bench` (the evaluation harness) failed.
    #[cfg(feature = "bench")]
    Bench(String),
    /// The node failed otherwise than in its store (a bad system record, an
    /// entry it could not build).
    Node(logkv_runtime::node::NodeError),
    /// The runtime applied the write's transaction but did not commit it
    /// (its result string says why, e.g. a permission the node's key lacks).
    NotCommitted {
        version: u64,
        result: String,
    },
    /// `inspect` found damage that is not a torn tail.
    Damaged {
        damaged: usize,
        file: PathBuf,
        offset: u64,
        detail: String,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Store(e @ StoreError::Locked { holder, .. }) => {
                write!(f, "{e}; ")?;
                match serve_url(holder) {
                    Some(url) => write!(
                        f,
                        "it is held by a running logkv server: talk to it with --server {url} (or LOGKV_SERVER)"
                    ),
                    None => write!(
                        f,
                        "if that is a running logkv server, talk to it with --server {DEFAULT_SERVER_URL} (or \
                         LOGKV_SERVER)"
                    ),
                }
            }
            CliError::Store(e) => e.fmt(f),
            CliError::Log(e) => e.fmt(f),
            CliError::ReadValue { from, source } => write!(f, "cannot read the value from {from}: {source}"),
            CliError::ValueTooLarge { from, limit } => {
                write!(f, "the value from {from} is over max_value_bytes ({limit})")
            }
            CliError::Output(e) => write!(f, "cannot write to stdout: {e}"),
            CliError::Key(e) => e.fmt(f),
            CliError::NoKey { path } => write!(
                f,
                "no signing key at {0}: create one with `logkv key new --out {0}` and ask the stream's admin \
                 to grant its address writer rights (`logkv acl grant-writer ADDRESS`)",
                path.display()
            ),
            CliError::Remote(e) => e.fmt(f),
            CliError::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
            CliError::Serve(e) => e.fmt(f),
            CliError::Trim(e) => e.fmt(f),
            CliError::Repair(e) => e.fmt(f),
            CliError::Maintenance(e) => e.fmt(f),
            CliError::BadInput(why) => f.write_str(why),
            #[cfg(feature = "bench")]
            CliError::Bench(why) => write!(f, "bench: {why}"),
            CliError::Node(e) => e.fmt(f),
            CliError::NotCommitted { version, result } => {
                write!(f, "the transaction at version {version} was not committed: {result}")
            }
            CliError::Damaged { damaged, file, offset, detail } => write!(
                f,
                "corruption: {damaged} damaged segment(s); first in {} at offset {offset}: {detail}",
                file.display()
            ),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Store(e)
    }
}

impl From<logkv_runtime::node::NodeError> for CliError {
    fn from(e: logkv_runtime::node::NodeError) -> Self {
        match e {
            logkv_runtime::node::NodeError::Store(e) => CliError::Store(e),
            e => CliError::Node(e),
        }
    }
}

impl From<crate::trim::TrimError> for CliError {
    fn from(e: crate::trim::TrimError) -> Self {
        CliError::Trim(e)
    }
}

impl From<logkv_client::Error> for CliError {
    fn from(e: logkv_client::Error) -> Self {
        CliError::Remote(e)
    }
}

/// Whether a call to a server failed for what the command asked for (a bad
/// URL or CA file, a parameter the server refused), not for the server or
/// the network.
pub fn is_usage(e: &logkv_client::Error) -> bool {
    matches!(
        e,
        logkv_client::Error::BadUrl { .. }
            | logkv_client::Error::CaCert { .. }
            | logkv_client::Error::Rpc { code: -32602, .. }
    )
}

/// The JSON-RPC URL of the `logkv serve` whose lock holder line is
/// `holder` (`pid N (COMMAND LINE)`): its `--http` address if the command
/// line gives one (a wildcard host reached over loopback), else the
/// default; `None` if the holder is not a server.
pub fn serve_url(holder: &str) -> Option<String> {
    let command = holder.split_once('(')?.1.trim_end_matches(')');
    let mut words = command.split_whitespace();
    words.by_ref().find(|w| *w == "serve")?;
    let mut http = None;
    while let Some(word) = words.next() {
        if let Some(addr) = word.strip_prefix("--http=") {
            http = Some(addr);
        } else if word == "--http" {
            http = words.next();
        }
    }
    Some(match http {
        None => DEFAULT_SERVER_URL.to_string(),
        Some(addr) => {
            let addr = addr.replacen("0.0.0.0:", "127.0.0.1:", 1).replacen("[::]:", "[::1]:", 1);
            format!("http://{addr}")
        }
    })
}

impl From<LogError> for CliError {
    fn from(e: LogError) -> Self {
        CliError::Log(e)
    }
}

const NOT_FOUND: u8 = 1;
const USAGE: u8 = 2;
const DAMAGE_OR_IO: u8 = 3;

impl Outcome {
    pub fn code(self) -> ExitCode {
        match self {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::NotFound => ExitCode::from(NOT_FOUND),
        }
    }
}

impl CliError {
    pub fn code(&self) -> ExitCode {
        let usage = matches!(
            self,
            CliError::Store(
                StoreError::LimitExceeded { .. }
                    | StoreError::EmptyKey
                    | StoreError::Config(_)
                    | StoreError::Log(LogError::LimitExceeded { .. } | LogError::Config(_))
            ) | CliError::ValueTooLarge { .. }
                | CliError::BadInput(_)
                | CliError::Key(logkv_runtime::keyfile::KeyfileError::Exists { .. })
                | CliError::NoKey { .. }
        ) || matches!(self, CliError::Remote(e) if is_usage(e))
            || matches!(self, CliError::Serve(e) if e.is_usage())
            || matches!(self, CliError::Trim(e) if e.is_usage())
            || matches!(self, CliError::Repair(e) if e.is_usage())
            || matches!(self, CliError::Maintenance(e) if e.is_usage());
        ExitCode::from(if usage { USAGE } else { DAMAGE_OR_IO })
    }

    /// Whether stdout was closed by its reader (`logkv scan | head`): not a
    /// failure worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

#[cfg(test)]
mod tests {
    use super::serve_url;

    #[test]
    fn the_suggested_url_is_the_holding_servers_http_address() {
        assert_eq!(serve_url("pid 7 (logkv put k)"), None, "not a server");
        assert_eq!(serve_url("pid 7 (/bin/logkv serve)").as_deref(), Some("http://127.0.0.1:7380"));
        let holder = "pid 7 (logkv serve --resp 0.0.0.0:1 --http 0.0.0.0:8080 --data-dir d)";
        assert_eq!(
            serve_url(holder).as_deref(),
            Some("http://127.0.0.1:8080"),
            "a wildcard is reached over loopback"
        );
        assert_eq!(serve_url("pid 7 (logkv serve --http=[::]:9)").as_deref(), Some("http://[::1]:9"));
    }
}
