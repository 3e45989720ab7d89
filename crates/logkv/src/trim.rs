//! `logkv log trim`: removes a shared log's entries below a position, so
//! it does not grow forever (docs/distributed.md). Any shared log: a
//! JetStream stream or a file log of entries.
//!
//! Trimming is safe below the oldest position any node still needs: with
//! `--nodes`, each node is asked how far its newest checkpoint reaches
//! (`admin_nodeInfo`'s `sharedLog.checkpointThrough`) and the log is
//! trimmed below the smallest of those + 1. A node without a checkpoint
//! needs the whole log, so then nothing is trimmed. `--below` trims where
//! it is told: a node behind that point can no longer catch up from the
//! log and must be started from another node's checkpoint.

use std::fmt;
use std::io::Write;
use std::path::Path;

use clap::{ArgGroup, Args};
use logkv_nats::ConfigError;
use logkv_runtime::shared_log::{SharedLog, SharedLogError};
use logkv_server::config::NatsSettings;
use logkv_server::shared_log::{self, LogChoice, OpenError};
use serde_json::Value;

use crate::exit::{CliError, Outcome};
use crate::remote::Remote;

/// `logkv log trim` flags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("point").required(true).args(["below", "nodes"])))]
pub struct TrimArgs {
    /// The shared log: nats://HOST:PORT[,HOST:PORT...], tls://... or file:DIR.
    #[arg(long, env = "LOGKV_LOG", value_name = "URL")]
    pub log: String,
    /// The JetStream stream's name.
    #[arg(long, env = "LOGKV_LOG_STREAM", value_name = "NAME", default_value = "logkv")]
    pub log_stream: String,
    /// Purge every position below SEQ (SEQ becomes the first kept; a
    /// file log keeps whole files). Nodes that have not applied up to
    /// SEQ - 1 can no longer catch up from the log.
    #[arg(long, value_name = "SEQ")]
    pub below: Option<u64>,
    /// Ask these nodes (their JSON-RPC URLs) how far their newest
    /// checkpoints reach and purge only what all of them have covered;
    /// name every node of the log.
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    pub nodes: Option<Vec<String>>,
    /// The nodes' admin token (`admin_nodeInfo` is an administrative call).
    #[arg(long, env = "LOGKV_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The NATS connection's flags; `main` passes their values layered
    /// over the file and the environment (`config::load`).
    #[command(flatten)]
    pub nats: NatsSettings,
}

/// Why the log was not trimmed.
#[derive(Debug)]
pub enum TrimError {
    /// `--log` or `--log-stream` cannot be used.
    Config(ConfigError),
    /// `--log file`: a node's own file log is not a shared log.
    NotShared,
    /// The log cannot be reached or does not exist.
    Open(OpenError),
    /// Reading or purging the log failed.
    Log(SharedLogError),
    /// The async runtime cannot start.
    Runtime(std::io::Error),
    /// A node of `--nodes` did not answer as expected.
    Node { url: String, error: logkv_client::Error },
    /// A node does not follow this log.
    OtherLog { url: String, follows: String },
    /// A node has no checkpoint: it needs the whole log.
    NoCheckpoint { url: String },
}

impl fmt::Display for TrimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrimError::Config(e) => e.fmt(f),
            TrimError::NotShared => f.write_str("--log file is a node's own log; name a shared log to trim"),
            TrimError::Open(e) => e.fmt(f),
            TrimError::Log(e) => e.fmt(f),
            TrimError::Runtime(e) => write!(f, "runtime: {e}"),
            TrimError::Node { url, error } => write!(f, "node {url}: {error}"),
            TrimError::OtherLog { url, follows } => {
                write!(f, "node {url} does not follow this log (it follows {follows}); nothing trimmed")
            }
            TrimError::NoCheckpoint { url } => write!(
                f,
                "node {url} has no checkpoint (no sharedLog.checkpointThrough), so it needs the whole log; \
                 nothing trimmed"
            ),
        }
    }
}

impl TrimError {
    /// Whether the fault is in the command (bad flags), not in the
    /// servers, the nodes or the log.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            TrimError::Config(_) | TrimError::NotShared | TrimError::Log(SharedLogError::Refused(_))
        ) || matches!(self, TrimError::Open(e) if e.is_usage())
            || matches!(self, TrimError::Node { error, .. } if crate::exit::is_usage(error))
    }
}

/// Runs `logkv log trim`; `nats` is the loaded NATS connection settings,
/// `ca_cert` `--server-ca`, for nodes reached over https.
pub fn run(args: TrimArgs, nats: &NatsSettings, ca_cert: Option<&Path>) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    // The replica count is the stream's own: an existing stream is opened
    // whatever it is.
    let choice = LogChoice::parse(&args.log, &args.log_stream, 1, nats).map_err(TrimError::Config)?;
    let log = choice.ok_or(TrimError::NotShared)?.open_existing().map_err(TrimError::Open)?;
    let trimmed = trim(&log, &args, ca_cert, &mut out);
    log.close();
    let (purged, below, first) = trimmed?;
    writeln!(
        out,
        "purged {purged} entries below position {below} of {log}; it now starts at position {first}"
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

/// Trims `log` where `args` say; returns what was purged, the point and
/// the log's first position after.
fn trim(
    log: &impl SharedLog,
    args: &TrimArgs,
    ca_cert: Option<&Path>,
    out: &mut impl Write,
) -> Result<(u64, u64, u64), CliError> {
    let below = match args.below {
        Some(below) => below,
        None => {
            let mut oldest = None::<u64>;
            for url in args.nodes.iter().flatten() {
                let node = Remote::connect(url, ca_cert, args.admin_token.as_deref())?;
                let through = checkpoint_through(&node, &log.identity())?;
                writeln!(out, "node {url}: checkpoint through position {through}")
                    .map_err(CliError::Output)?;
                oldest = Some(oldest.map_or(through, |o| o.min(through)));
            }
            oldest.expect("clap requires --below or --nodes with a value").saturating_add(1)
        }
    };
    let (purged, first) = shared_log::block_on(async {
        let purged = log.trim_below(below).await?;
        Ok::<_, SharedLogError>((purged, log.first_position().await?))
    })
    .map_err(TrimError::Runtime)?
    .map_err(TrimError::Log)?;
    Ok((purged, below, first))
}

/// The position `node`'s newest checkpoint reaches on the log of
/// identity `log`.
fn checkpoint_through(node: &Remote, log: &str) -> Result<u64, TrimError> {
    let url = node.client.url();
    let node_error = |error| TrimError::Node { url: url.to_string(), error };
    let info = node.block_on(node.client.node_info()).map_err(node_error)?;
    let shared_log = &info["sharedLog"];
    let follows = shared_log["log"].as_str();
    if follows != Some(log) {
        let follows = follows.unwrap_or("no shared log").to_string();
        return Err(TrimError::OtherLog { url: url.to_string(), follows });
    }
    match &shared_log["checkpointThrough"] {
        Value::Null => Err(TrimError::NoCheckpoint { url: url.to_string() }),
        through => through.as_u64().ok_or_else(|| {
            let detail = format!("sharedLog.checkpointThrough is {through}, not a position");
            node_error(logkv_client::Error::BadAnswer { method: "admin_nodeInfo".into(), detail })
        }),
    }
}
